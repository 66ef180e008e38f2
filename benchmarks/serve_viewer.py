"""``deepfolder serve`` in headless chromium: first paint of a report page with 50
citations, and the time from a click on a citation to the evidence pane shown.

Two real runs made with a fake agent (seconds, no model): the demo folder with a report
of 50 cited sentences (PDF pages and articles), and the generated slide video with a
subtitle track. The server runs in this process (uvicorn on a loopback port); the
browser is Debian's chromium through Playwright.

- first paint: ``first-contentful-paint`` of a fresh load of the report page (new
  browser context each time, so nothing is cached), median of N loads;
- click → pane: from the click handler to the pane marked ready — for a PDF page, when
  the rendered page image is decoded and the passage boxes are placed (first view of a
  page: rendered by pdfium on the server; again: from the server's page cache); for a
  video, when the player has seeked to the cited second.

Usage: ``python benchmarks/serve_viewer.py [--loads 5]``; writes
``benchmarks/out/serve_viewer.json``.
"""

from __future__ import annotations

import argparse
import json
import re
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))

from deepfolder.llm.fake import ScriptedModel, tool_call  # noqa: E402
from deepfolder.runner.run import run_task  # noqa: E402
from deepfolder.serve.app import ServeConfig, create_app  # noqa: E402
from deepfolder.serve.catalog import path_id  # noqa: E402
from serve_fixtures import (  # noqa: E402
    CHROMIUM,
    DEMO,
    chromium_missing,
    live_server,
    run_settings,
    video_run,
)

N_CITATIONS = 50
FIRST_PAINT = """new Promise(resolve => new PerformanceObserver(list => {
  const fcp = list.getEntries().find(e => e.name === 'first-contentful-paint');
  if (fcp) resolve(fcp.startTime);
}).observe({type: 'paint', buffered: true}))"""
QUERIES = [
    "电子书借阅量 增长",
    "老年人 数字鸿沟",
    "地方文献 数字化",
    "夜间开放",
    "少儿 电子读物",
    "统一读者账号",
]


def fifty_citation_run(root: Path) -> Path:
    def answer(messages: list[dict[str, Any]], tools: Any) -> str:
        """One clause of the evidence per sentence, each cited to its passage."""
        shown = "\n".join(str(m.get("content")) for m in messages if m["role"] == "tool")
        blocks = re.findall(
            r"\[(E[0-9a-f]{8})\][^\n]*\n<material[^>]*>\n(.*?)\n</material>", shown, re.S
        )
        cited: dict[str, str] = {}
        for eid, text in blocks:
            for clause in re.findall(r"[^。！？，；\n]{6,}", text):
                cited.setdefault(clause.strip() + "。", eid)
        pairs = list(cited.items())[: N_CITATIONS + 1]  # the draft clean-up drops one
        paragraphs = [
            "".join(f"{s[:-1]} [{e}]{s[-1]}" for s, e in pairs[k : k + 5])
            for k in range(0, len(pairs), 5)
        ]
        return "# 报告\n\n## 要点\n\n" + "\n\n".join(paragraphs) + "\n"

    steps: list[Any] = [tool_call("search", {"query": q}) for q in QUERIES]
    out = root / "runs" / "fifty"
    run_task(
        DEMO,
        "写一份关于电子书借阅的总结，标注来源。",
        run_settings(root / "cache"),
        out=out,
        model=ScriptedModel([*steps, answer], name="fake:agent"),
    )
    return out


def median_ms(values: list[float]) -> str:
    return f"{statistics.median(values):.0f} ms (min {min(values):.0f}, max {max(values):.0f}, n={len(values)})"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--loads", type=int, default=5, help="page loads / clicks per measure")
    args = parser.parse_args()
    if chromium_missing():
        print(f"skipped: {chromium_missing()}")
        return 0
    from playwright.sync_api import sync_playwright

    root = Path(tempfile.mkdtemp(prefix="serve-bench-"))
    t0 = time.perf_counter()
    fifty, video = fifty_citation_run(root), video_run(root)
    print(f"runs made in {time.perf_counter() - t0:.1f} s")
    results: dict[str, Any] = {}
    with live_server(create_app(ServeConfig(roots=[root / "runs"]))) as url, sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=["--no-sandbox"])
        report_url = f"{url}/runs/{path_id(fifty)}"
        paints, pdf_first, pdf_again, video_clicks = [], [], [], []
        for _ in range(args.loads):
            context = browser.new_context(viewport={"width": 1400, "height": 900})
            page = context.new_page()
            page.goto(report_url, wait_until="load")
            n_links = page.locator("article.report a.cite").count()
            fcp = page.evaluate(FIRST_PAINT)
            paints.append(float(fcp))
            context.close()
        results["citations_on_page"] = n_links
        # click → pane: each PDF citation of a page not yet shown, then the same again
        context = browser.new_context(viewport={"width": 1400, "height": 900})
        page = context.new_page()
        page.goto(report_url)
        pdf_links = page.locator('article.report a.cite:has-text(".pdf")')
        by_page: dict[str, int] = {}
        for i in range(pdf_links.count()):
            by_page.setdefault(pdf_links.nth(i).inner_text(), i)
        for rounds, bucket in ((1, pdf_first), (args.loads, pdf_again)):
            for _ in range(rounds):
                for i in by_page.values():
                    link = pdf_links.nth(i)
                    eid = (link.get_attribute("href") or "")[1:]
                    page.locator("#pane-close").click() if page.locator(
                        "#pane"
                    ).is_visible() else None
                    link.click()
                    page.wait_for_selector(f'#pane[data-ready="{eid}"]')
                    last = page.evaluate("deepfolderTimings.clicks.at(-1)")
                    bucket.append(last["shown"] - last["start"])
        page.goto(f"{url}/runs/{path_id(video)}")
        video_links = page.locator('article.report a.cite:has-text("lecture.mp4")')
        for k in range(args.loads):
            link = video_links.nth(k % video_links.count())
            eid = (link.get_attribute("href") or "")[1:]
            link.click()
            page.wait_for_selector(f'#pane[data-ready="{eid}"]')
            last = page.evaluate("deepfolderTimings.clicks.at(-1)")
            video_clicks.append(last["shown"] - last["start"])
        context.close()
        browser.close()
    results.update(
        first_paint_ms=paints,
        pdf_first_view_ms=pdf_first,
        pdf_cached_ms=pdf_again,
        video_seeked_ms=video_clicks,
    )
    print(
        f"report page with {results['citations_on_page']} citations, first paint: {median_ms(paints)}"
    )
    print(f"click → PDF page shown, first view of the page: {median_ms(pdf_first)}")
    print(f"click → PDF page shown, page cached: {median_ms(pdf_again)}")
    print(f"click → video seeked to the cited second: {median_ms(video_clicks)}")
    out = REPO / "benchmarks" / "out"
    out.mkdir(parents=True, exist_ok=True)
    (out / "serve_viewer.json").write_text(json.dumps(results, indent=1), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
