"""``deepfolder serve`` in a real browser: Debian's chromium, headless, through Playwright.

One server over two real runs (the demo folder; the generated slide video): a PDF
citation opens its page with the passage boxed, an article citation highlights the
chunk, a video citation seeks the player to the cited second; a run started from the
New-run page against the scripted OpenAI-compatible server streams its steps and
finishes. Screenshots go to ``tests/artifacts/``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from deepfolder.serve.app import ServeConfig, create_app
from deepfolder.serve.catalog import path_id
from scripted_server import ScriptedServer, completion, tool_call
from serve_fixtures import (
    ARTIFACTS,
    chromium_missing,
    chromium_page,
    demo_run,
    live_server,
    video_run,
)

pytestmark = pytest.mark.skipif(chromium_missing() is not None, reason=str(chromium_missing()))


def scripted_agent(body: dict[str, Any]) -> dict[str, Any]:
    """Search once, then answer citing the first id shown."""
    messages = body["messages"]
    if "response_format" in body:
        return completion('{"verdict": "supported", "reason": "the passage states it"}')
    observations = [str(m.get("content") or "") for m in messages if m["role"] == "tool"]
    if not observations:
        return completion(None, tool_calls=[tool_call("search", {"query": "电子书"}, "c0")])
    ids = re.findall(r"E[0-9a-f]{8}", observations[0])
    return completion(f"# 电子书\n\n电子书借阅量增长明显 [{ids[0]}]。\n")


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    root = tmp_path_factory.mktemp("serve")
    runs = {"demo": demo_run(root), "video": video_run(root)}
    folder = root / "new-folder"
    folder.mkdir()
    (folder / "notes.md").write_text(
        "# 图书馆\n\n2024年全区电子书借阅量为8.6万册次，比2023年增长69%。\n", encoding="utf-8"
    )
    config = ServeConfig(
        roots=[root / "runs"],
        folders=[folder],
        model="vllm:test-model",
        run_args=["--cache-dir", str(root / "cache"), "--no-dense", "--max-revisions", "0"],
    )
    ARTIFACTS.mkdir(exist_ok=True)
    with live_server(create_app(config)) as url, chromium_page() as page:
        yield {"url": url, "page": page, "runs": runs, "root": root}


def evidence_of(run_dir: Path) -> dict[str, dict[str, Any]]:
    lines = (run_dir / "evidence.jsonl").read_text(encoding="utf-8").splitlines()
    records = [json.loads(line) for line in lines]
    return {r["segment"]["id"]: r for r in records}


def test_pdf_and_article_citations_open_the_exact_evidence(served: dict[str, Any]) -> None:
    page, run_dir = served["page"], served["runs"]["demo"]
    evidence = evidence_of(run_dir)
    page.goto(f"{served['url']}/runs/{path_id(run_dir)}")
    links = page.locator("article.report a.cite")
    assert links.count() >= 4
    # every citation is coloured by its sentence's support verdict, the reason on hover
    classes = [links.nth(i).get_attribute("class") or "" for i in range(links.count())]
    assert all(re.search(r"v-(supported|weak|unsupported)", c) for c in classes), classes
    assert "lexical overlap" in (links.first.get_attribute("title") or "")

    pdf_link = page.locator('article.report a.cite:has-text(".pdf")').first
    eid = (pdf_link.get_attribute("href") or "")[1:]
    cited = evidence[eid]["segment"]
    pdf_link.click()
    page.wait_for_selector(f'#pane[data-ready="{eid}"]')
    assert page.locator(".pane-page").inner_text().startswith(f"Page {cited['locator']['page']}")
    assert page.locator("#pane .hl").count() > 0, "the passage is boxed on the page"
    assert page.locator("#pane mark.passage").inner_text().strip() == cited["text"].strip()
    page.screenshot(path=str(ARTIFACTS / "serve-pdf.png"))

    article_link = page.locator('article.report a.cite:has-text("long_context_articles")').first
    eid = (article_link.get_attribute("href") or "")[1:]
    article_link.click()
    page.wait_for_selector(f'#pane[data-ready="{eid}"]')
    chunk = page.locator("#pane mark.chunk")
    assert chunk.inner_text().strip() == evidence[eid]["segment"]["text"].strip()
    assert chunk.is_visible()
    assert (
        page.locator("#pane .document").inner_text().startswith(evidence[eid]["source"]["title"])
    ), "the whole article is shown around the chunk"
    page.screenshot(path=str(ARTIFACTS / "serve-article.png"))


def test_video_citation_seeks_to_the_cited_second(served: dict[str, Any]) -> None:
    page, run_dir = served["page"], served["runs"]["video"]
    evidence = evidence_of(run_dir)
    page.goto(f"{served['url']}/runs/{path_id(run_dir)}")
    link = page.locator('article.report a.cite:has-text("lecture.mp4")').last
    eid = (link.get_attribute("href") or "")[1:]
    start = evidence[eid]["segment"]["locator"]["start"]
    assert start > 1, "the test needs a window that does not start at 0"
    link.click()
    page.wait_for_selector(f'#pane[data-ready="{eid}"]')
    current = page.evaluate("document.querySelector('#pane video').currentTime")
    assert abs(current - start) <= 1.0, (current, start)
    assert page.evaluate("document.querySelector('#pane video').error") is None
    page.screenshot(path=str(ARTIFACTS / "serve-video.png"))


def test_a_run_started_from_the_page_streams_and_finishes(
    served: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DEEPFOLDER_ALLOW_MODEL_REQUESTS", "1")  # the server is on 127.0.0.1
    page = served["page"]
    with ScriptedServer(scripted_agent, served["root"] / "requests.jsonl") as model_server:
        page.goto(f"{served['url']}/new")
        page.fill("textarea[name=request]", "写一句关于电子书借阅的总结，标注来源。")
        page.fill("input[name=base_url]", model_server.base_url)
        page.click("form#new-run button[type=submit]")
        page.wait_for_selector('#job:not([data-state="running"])', timeout=120_000)
        state = page.get_attribute("#job", "data-state")
        assert state == "finished", page.locator("#job-end").inner_text()
        steps = page.locator("#job-steps li").all_inner_texts()
        assert any(s.startswith("model call") for s in steps), steps
        assert any(s.startswith("tool search") for s in steps), steps
        page.screenshot(path=str(ARTIFACTS / "serve-new-run.png"))
        page.click("#job-report")
        page.wait_for_selector("article.report a.cite")
        assert "电子书借阅量增长明显" in page.locator("article.report").inner_text()
