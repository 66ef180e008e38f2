"""Run directories and a live server for the tests of ``deepfolder serve``.

The runs are real ``run_task`` runs with fake models: one over the bundled demo folder
citing PDF pages and articles, one over a folder holding the generated slide video
(``tests/fixtures/make_slide_video.py``) with a subtitle track, ingested without OCR and
speech recognition so it takes seconds. The server is uvicorn in a thread on a free
loopback port; the browser is Debian's chromium driven by Playwright.
"""

from __future__ import annotations

import re
import shutil
import socket
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from deepfolder.llm.fake import ScriptedModel, tool_call
from deepfolder.runner.run import run_task
from deepfolder.settings import Settings, load_settings

TESTS = Path(__file__).resolve().parent
DEMO = TESTS.parent / "examples" / "demo"
CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = TESTS / "artifacts"
"""Screenshots of the browser tests (ignored by git)."""
ID_RE = re.compile(r"E[0-9a-f]{8}")


def run_settings(cache: Path, **over: Any) -> Settings:
    data: dict[str, Any] = {
        "cache_dir": str(cache),
        "retrieval": {"dense": False},
        "validate": {"max_revisions": 0, "support_judge": "local"},
    }
    data.update(over)
    return load_settings(overrides=data, environ={})


def citing_agent(queries: list[str], n_citations: int = 6) -> ScriptedModel:
    """A fake agent that searches ``queries`` and writes one sentence per evidence id it
    was shown (up to ``n_citations``), each citing that id."""

    def answer(messages: list[dict[str, Any]], tools: Any) -> str:
        shown = "\n".join(str(m.get("content")) for m in messages if m["role"] == "tool")
        ids = list(dict.fromkeys(ID_RE.findall(shown)))[:n_citations]
        sentences = "".join(f"材料第{k}处说明了相关情况 [{i}]。" for k, i in enumerate(ids, 1))
        return f"# 报告\n\n## 要点\n\n{sentences}\n"

    steps: list[Any] = [tool_call("search", {"query": q}) for q in queries]
    return ScriptedModel([*steps, answer], name="fake:agent")


def demo_run(root: Path) -> Path:
    """A run over the demo folder citing its PDF's pages and its articles."""
    out = root / "runs" / "demo-run"
    run_task(
        DEMO,
        "写一段关于电子书借阅的总结，标注来源。",
        run_settings(root / "cache"),
        out=out,
        model=citing_agent(["老年人 电子书 数字鸿沟", "电子书借阅量 增长"]),
    )
    return out


def video_run(root: Path) -> Path:
    """A run over a folder with the narrated slide video, citing its time windows."""
    sys.path.insert(0, str(TESTS / "fixtures"))
    from make_slide_video import make_slide_video

    folder = root / "video-folder"
    folder.mkdir(parents=True)
    make_slide_video(folder, with_subtitles=True, name="lecture.mp4")
    out = root / "runs" / "video-run"
    run_task(
        folder,
        "Summarise the quarterly review video with citations.",
        run_settings(root / "cache", ingest={"asr": False, "ocr": False}),
        out=out,
        model=citing_agent(["demand east region", "hire engineers supply chain"], 4),
    )
    return out


def chromium_missing() -> str | None:
    """Why the browser tests cannot run here, or None."""
    try:
        import playwright  # noqa: F401
    except ImportError:
        return "playwright is not installed (pip install playwright==1.65.2)"
    if not CHROMIUM.exists() and shutil.which("chromium") is None:
        return "Debian's chromium is not installed (apt-get install chromium)"
    return None


def free_port() -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    return sock


@contextmanager
def live_server(app: Any) -> Iterator[str]:
    """Serve ``app`` on a free loopback port in a thread; yields its base URL."""
    import uvicorn

    sock = free_port()
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="on"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("the test server did not start")
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    finally:
        server.should_exit = True
        thread.join(timeout=30)
        sock.close()


@contextmanager
def chromium_page() -> Iterator[Any]:
    """A headless chromium page (1400×900)."""
    from playwright.sync_api import sync_playwright

    executable = str(CHROMIUM) if CHROMIUM.exists() else shutil.which("chromium")
    with sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=executable,
            headless=True,
            args=["--no-sandbox", "--autoplay-policy=no-user-gesture-required"],
        )
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 900})
            yield page
        finally:
            browser.close()
