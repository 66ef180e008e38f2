"""``deepfolder serve`` without a browser: the runs list, each kind of evidence view, the
safety rules (token, files only by evidence id, no traversal, inputs read-only) and
background runs (start, progress events, cancel, resume) against the scripted server."""

from __future__ import annotations

import json
import os
import re
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from deepfolder.cli import main
from deepfolder.records import Evidence, Locator, Segment, Source
from deepfolder.report.render import finalize_markdown, markdown_to_html
from deepfolder.serve.app import ServeConfig, create_app
from deepfolder.serve.catalog import path_id
from deepfolder.serve.evidence import passage_char_ranges
from deepfolder.serve.pages import annotate_citations
from deepfolder.settings import is_loopback
from scripted_server import ScriptedServer, completion, tool_call
from serve_fixtures import demo_run

TESTS = Path(__file__).resolve().parents[1]


def tree_digest(folder: Path) -> list[tuple[str, bytes]]:
    return [
        (str(p.relative_to(folder)), p.read_bytes())
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    ]


def write_run(run_dir: Path, folder: Path, evidence: list[Evidence], body: str) -> None:
    """A run directory as ``deepfolder run`` leaves it, for the files the viewer reads."""
    run_dir.mkdir(parents=True)
    by_id = {e.id: e for e in evidence}
    markdown, _ = finalize_markdown(body, by_id.get, "en")
    (run_dir / "report.md").write_text(markdown, encoding="utf-8")
    html = markdown_to_html(markdown, title="t", base_dir=run_dir, language="en")
    (run_dir / "report.html").write_text(html, encoding="utf-8")
    lines = [
        json.dumps({"segment": e.segment.to_dict(), "source": e.source.to_dict(), "seen": True})
        for e in evidence
    ]
    (run_dir / "evidence.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    record = {"status": "finished", "folder": str(folder), "started_at": "2026-11-28T10:00:00"}
    (run_dir / "run.json").write_text(json.dumps(record), encoding="utf-8")
    (run_dir / "request.txt").write_text("a request", encoding="utf-8")
    (run_dir / "usage.json").write_text(
        json.dumps({"models": {"fake": {}}, "total": {"cost": 0.0}})
    )
    (run_dir / "validation.json").write_text(
        json.dumps({"passed": True, "checks": [], "support": []})
    )


def evidence(source: Source, text: str, locator: Locator) -> Evidence:
    return Evidence(Segment.create(source.id, text, locator), source)


@pytest.fixture
def folder_run(tmp_path: Path) -> dict[str, Any]:
    """A folder with a sheet, a text file, an image and a secret beside it, and a run
    citing them plus two records whose paths try to leave the folder."""
    folder = tmp_path / "folder"
    folder.mkdir()
    (folder / "sales.csv").write_text(
        "month,region,amount\n" + "".join(f"{m},east,{m * 10}\n" for m in range(1, 31)),
        encoding="utf-8",
    )
    (folder / "notes.md").write_text(
        "# Notes\n\nIntro line.\n\nThe harvest doubled in 2023\nafter the new irrigation.\n\nEnd.\n",
        encoding="utf-8",
    )
    from PIL import Image

    Image.new("RGB", (40, 20), "white").save(folder / "poster.png")
    (tmp_path / "secret.txt").write_text("TOP SECRET", encoding="utf-8")
    (folder / "link.txt").symlink_to(tmp_path / "secret.txt")
    sheet = Source("sales.csv", "sales.csv", "sheet")
    notes = Source("notes.md", "notes.md", "markdown")
    image = Source("poster.png", "poster.png", "image")
    analysis = Source(
        "run:analysis/1", "analysis/analysis_1.md", "analysis", meta={"code": "print(6 * 7)"}
    )
    evs = {
        "sheet": evidence(sheet, "month,region,amount\n5,east,50\n6,east,60", Locator(rows=(6, 7))),
        "notes": evidence(
            notes, "The harvest doubled in 2023 after the new irrigation.", Locator(chunk=2)
        ),
        "image": evidence(image, "LIBRARY HOURS", Locator(chunk=1)),
        "analysis": evidence(analysis, "42", Locator()),
        "up": evidence(Source("../secret.txt", "../secret.txt", "image"), "x", Locator()),
        "abs": evidence(Source("/etc/passwd", "/etc/passwd", "image"), "y", Locator()),
        "link": evidence(Source("link.txt", "link.txt", "image"), "z", Locator()),
    }
    body = "# Report\n\n" + "".join(f"Claim {k} [{e.id}].\n\n" for k, e in evs.items())
    runs = tmp_path / "runs"
    write_run(runs / "good", folder, list(evs.values()), body)
    return {"folder": folder, "runs": runs, "evidence": evs, "run": path_id(runs / "good")}


def client_for(runs: Path, **config: Any) -> TestClient:
    return TestClient(create_app(ServeConfig(roots=[runs], **config)))


def test_each_kind_of_evidence_shows_its_exact_place(folder_run: dict[str, Any]) -> None:
    client = client_for(folder_run["runs"])
    before = tree_digest(folder_run["folder"])
    evs, rid = folder_run["evidence"], folder_run["run"]

    def view(kind: str) -> dict[str, Any]:
        reply = client.get(f"/api/runs/{rid}/evidence/{evs[kind].id}")
        assert reply.status_code == 200, reply.text
        return reply.json()

    sheet = view("sheet")
    assert sheet["view"] == "sheet"
    assert sheet["header"] == ["month", "region", "amount"]
    assert sheet["rows"] == [[6, "5", "east", "50"], [7, "6", "east", "60"]]  # header is row 1
    notes = view("notes")
    assert notes["view"] == "document" and notes["found"]
    assert notes["match"] == "The harvest doubled in 2023\nafter the new irrigation."
    assert notes["before"].startswith("# Notes") and notes["after"] == "\n\nEnd.\n"
    image = view("image")
    assert image["view"] == "image" and image["text"] == "LIBRARY HOURS"
    assert (
        client.get(image["file_url"]).content == (folder_run["folder"] / "poster.png").read_bytes()
    )
    analysis = view("analysis")
    assert analysis["view"] == "computed" and analysis["code"] == "print(6 * 7)"
    assert tree_digest(folder_run["folder"]) == before, "inputs stay read-only"


def test_files_are_served_only_by_evidence_id_inside_the_folder(folder_run: dict[str, Any]) -> None:
    client = client_for(folder_run["runs"])
    evs, rid = folder_run["evidence"], folder_run["run"]
    for kind in ("up", "abs", "link"):
        view = client.get(f"/api/runs/{rid}/evidence/{evs[kind].id}").json()
        assert view["view"] == "text"
        assert "outside" in view["problem"] or "not a path inside" in view["problem"], kind
        reply = client.get(f"/api/runs/{rid}/evidence/{evs[kind].id}/file")
        assert reply.status_code == 404 and "SECRET" not in reply.text, kind
    for url in (
        f"/api/runs/{rid}/evidence/..%2F..%2Fsecret.txt/file",
        f"/api/runs/{rid}/evidence/E00000000/file",
        "/api/runs/..%2Ffolder/evidence/x/file",
        "/static/..%2Fcatalog.py",
        "/static/../app.py",
        f"/runs/{rid}/..%2F..%2Fsecret.txt",
    ):
        reply = client.get(url)
        assert reply.status_code == 404, url
        assert "SECRET" not in reply.text and "Catalog" not in reply.text, url


def test_token_is_required_on_every_request_when_set(folder_run: dict[str, Any]) -> None:
    client = client_for(folder_run["runs"], token="s3cret")
    assert client.get("/").status_code == 401
    assert client.get("/?token=wrong").status_code == 401
    reply = client.get("/?token=s3cret")
    assert (
        reply.status_code == 200
        and "default-src 'self'" in reply.headers["content-security-policy"]
    )
    assert client.get(f"/runs/{folder_run['run']}").status_code == 200  # the cookie now
    bare = client_for(folder_run["runs"], token="s3cret")
    assert bare.get("/", headers={"Authorization": "Bearer s3cret"}).status_code == 200
    assert is_loopback("127.0.0.1") and is_loopback("::1") and not is_loopback("0.0.0.0")


def test_serve_command_needs_a_token_off_loopback(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    started: list[tuple[ServeConfig, str, int]] = []
    monkeypatch.setattr("deepfolder.serve.app.serve", lambda c, h, p: started.append((c, h, p)))
    assert main(["serve", str(tmp_path), "--host", "0.0.0.0", "--port", "9001"]) == 0
    config, host, port = started[-1]
    assert config.token and (host, port) == ("0.0.0.0", 9001)
    assert f"?token={config.token}" in capsys.readouterr().err
    assert main(["serve", str(tmp_path)]) == 0
    assert started[-1][0].token is None and started[-1][1] == "127.0.0.1"
    assert main(["serve", str(tmp_path), "--folder", str(tmp_path / "nope")]) == 2


def test_bad_run_directories_show_a_message_and_keep_the_list(
    folder_run: dict[str, Any], tmp_path: Path
) -> None:
    runs = folder_run["runs"]
    (runs / "broken").mkdir()
    (runs / "broken" / "run.json").write_text("{not json", encoding="utf-8")
    (runs / "half").mkdir()
    (runs / "half" / "report.md").write_text("# r\n", encoding="utf-8")
    (runs / "half" / "validation.json").write_text("[1, 2]", encoding="utf-8")
    batch = runs / "batch-1"
    (batch / "runs" / "001").mkdir(parents=True)
    (batch / "batch.json").write_text("{}", encoding="utf-8")
    (batch / "summary.json").write_text(
        json.dumps(
            {"tasks": [{"task": "001", "state": "done", "passed": True}], "totals": {"tasks": 1}}
        )
    )
    page = client_for(runs).get("/")
    assert page.status_code == 200
    text = page.text
    assert "run.json is not valid JSON" in text
    assert "validation.json is not in the expected form" in text
    assert "good" in text and "Batch batch-1" in text and "<td>001</td>" in text
    broken = client_for(runs).get(f"/runs/{path_id(runs / 'broken')}")
    assert broken.status_code == 404 and "report.html is missing" in broken.text


def test_citations_take_their_sentences_verdicts() -> None:
    body = (
        '<p>Sales rose 12% in May. <a href="#E00000001">a.pdf, p. 1</a> '
        'The sky is green. <a href="#E00000001">a.pdf, p. 1</a> <a href="#E00000002">b</a></p>'
    )
    support = [
        {
            "sentence": "Sales rose 12% in May.",
            "evidence_ids": ["E00000001"],
            "verdict": "supported",
            "reason": "ok",
        },
        {
            "sentence": "The sky is green.",
            "evidence_ids": ["E00000001"],
            "verdict": "unsupported",
            "reason": "no",
        },
    ]
    out = annotate_citations(body, support)
    classes = [c.split('"')[0] for c in out.split('class="cite ')[1:]]
    assert classes == ["v-supported", "v-unsupported", "v-unchecked"]
    assert 'title="unsupported: no"' in out


def test_passage_boxes_ignore_the_page_text_layout() -> None:
    page = "Title\r\nThe harvest dou-\r\nbled in 2023 after\r\nthe rain.\r\nOther text"
    ranges = passage_char_ranges(page, "The harvest dou-bled in 2023 after the rain.")
    assert [page[a : b + 1] for a, b in ranges] == [
        "The harvest dou-\r\nbled in 2023 after\r\nthe rain."
    ]
    assert passage_char_ranges(page, "nowhere on this page") == []


def test_pdf_citation_of_the_demo_gets_its_page_and_boxes(tmp_path: Path) -> None:
    run_dir = demo_run(tmp_path)
    client = client_for(tmp_path / "runs")
    rid = path_id(run_dir)
    reply = client.get(f"/runs/{rid}")
    report = reply.text
    script_src = re.search(r"script-src ([^;]+)", reply.headers["content-security-policy"])
    assert script_src and script_src.group(1) == "'self'", "no inline script may run"
    assert re.search(r'<li><a href="#E[0-9a-f]{8}" class="ref-id">', report)
    records = [json.loads(x) for x in (run_dir / "evidence.jsonl").read_text("utf-8").splitlines()]
    pdf = next(
        r for r in records if r["source"]["kind"] == "pdf" and f"#{r['segment']['id']}" in report
    )
    view = client.get(f"/api/runs/{rid}/evidence/{pdf['segment']['id']}").json()
    assert view["view"] == "pdf" and view["page"] == pdf["segment"]["locator"]["page"]
    assert view["highlights"] and all(
        0 <= x <= 1 and 0 <= y <= 1 for x, y, _, _ in view["highlights"]
    )
    png = client.get(view["page_url"])
    assert png.status_code == 200 and png.content.startswith(b"\x89PNG")
    assert client.get(f"/api/runs/{rid}/evidence/{pdf['segment']['id']}/file").status_code == 404
    assert client.get(f"/runs/{rid}/checks").status_code == 200
    trace = client.get(f"/runs/{rid}/trace").text
    assert "model call" in trace and "tool call · search" in trace


# --- background runs -------------------------------------------------------------------


def slow_agent(body: dict[str, Any]) -> dict[str, Any]:
    messages = body["messages"]
    if "response_format" in body:
        return completion('{"verdict": "supported", "reason": "stated"}')
    observations = [str(m.get("content") or "") for m in messages if m["role"] == "tool"]
    if not observations:
        return completion(None, tool_calls=[tool_call("search", {"query": "harvest"}, "c0")])
    ids = [
        w
        for w in observations[0].replace("]", " ").replace("[", " ").split()
        if w.startswith("E") and len(w) == 9
    ]
    return completion(f"# Harvest\n\nThe harvest doubled in 2023 [{ids[0]}].\n")


def wait_for(predicate: Any, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.2)


@pytest.mark.reliability
def test_a_run_is_cancelled_then_resumed_from_the_server(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DEEPFOLDER_ALLOW_MODEL_REQUESTS", "1")  # the model is on 127.0.0.1
    folder = tmp_path / "folder"
    folder.mkdir()
    (folder / "notes.md").write_text(
        "The harvest doubled in 2023 after the rain.\n", encoding="utf-8"
    )
    asked = threading.Event()
    release = threading.Event()

    def hold_second(n: int, body: dict[str, Any]) -> bool | None:
        if n == 2:
            asked.set()
            release.wait(60)
            return False  # never answered: the run is cancelled while it waits
        return None

    with ScriptedServer(slow_agent, tmp_path / "requests.jsonl") as server:
        server.on_request = hold_second
        config = {"model": {"max_retries": 0, "timeout_s": 60}}
        (tmp_path / "config.json").write_text(json.dumps(config), encoding="utf-8")
        client = client_for(
            tmp_path / "runs",
            folders=[folder],
            run_args=[
                "--cache-dir",
                str(tmp_path / "cache"),
                "--no-dense",
                "--config",
                str(tmp_path / "config.json"),
            ],
        )
        with client:
            job = client.post(
                "/api/jobs",
                json={
                    "folder": 0,
                    "request": "Summarise the notes.",
                    "model": "vllm:m",
                    "base_url": server.base_url,
                },
            ).json()
            assert asked.wait(120), "the run never asked the model"
            assert client.post(f"/api/jobs/{job['job']}/cancel").json()["state"] in (
                "running",
                "cancelled",
            )
            wait_for(lambda: client.get(f"/api/jobs/{job['job']}").json()["state"] != "running")
            release.set()
            assert client.get(f"/api/jobs/{job['job']}").json()["state"] == "cancelled"
            run_dir = next((tmp_path / "runs").glob("folder-*"))
            assert json.loads((run_dir / "run.json").read_text())["status"] == "stopped"
            assert "Resume" in client.get("/").text

            server.on_request = None
            again = client.post(f"/api/runs/{job['run']}/resume").json()
            events = client.get(f"/api/jobs/{again['job']}/events").text
            assert "event: step" in events and "event: end" in events
            assert client.get(f"/api/jobs/{again['job']}").json()["state"] == "finished"
            assert json.loads((run_dir / "run.json").read_text())["status"] == "finished"
            assert "The harvest doubled in 2023" in client.get(f"/runs/{again['run']}").text
            assert os.path.exists(run_dir / "report.md")
