"""``deepfolder mcp`` in real MCP sessions: the SDK's own client spawns it over stdio and
reaches it over streamable HTTP on the demo folder; ``research`` runs with a fake model."""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import anyio
import anyio.to_thread
import httpx2
import pytest
from mcp import Client, StdioServerParameters
from mcp.client.stdio import stdio_client

from deepfolder.cli import main
from deepfolder.llm.fake import ScriptedModel, tool_call
from deepfolder.server.app import build_server, parse_source_uri, source_uri
from deepfolder.server.folder import FolderService
from deepfolder.settings import McpServerSettings, Settings, load_settings
from deepfolder.tools.base import ToolContext
from deepfolder.tools.mcp_servers import connect_mcp_servers
from memory_index import MemoryIndex

ROOT = Path(__file__).resolve().parents[2]
DEMO = ROOT / "examples" / "demo"
PDF = "社区图书馆调研报告.pdf"
REQUEST = "写一段关于电子书借阅的总结，标注来源。"
LONG_REQUEST = "写一份不少于2000字的报告，分为背景、现状、建议三部分。"


def server_args(cache: Path) -> list[str]:
    return ["-m", "deepfolder.cli", "mcp", str(DEMO), "--no-dense", "--cache-dir", str(cache)]


def server_env(**extra: str) -> dict[str, str]:
    """What the server process needs: our sources and no real model requests."""
    path = os.pathsep.join(p for p in (str(ROOT / "src"), os.environ.get("PYTHONPATH")) if p)
    return {"PYTHONPATH": path, "DEEPFOLDER_ALLOW_MODEL_REQUESTS": "0", **extra}


async def exercise(client: Client) -> None:
    """What every transport must do: list the tools, search and read with exact
    locators and evidence ids, check a compliant and a failing report."""
    names = {t.name for t in (await client.list_tools()).tools}
    assert {"search", "read", "list_sources", "count_length", "check_report", "research"} <= names
    assert "run_python" not in names  # the folder is only read
    search_tool = next(t for t in (await client.list_tools()).tools if t.name == "search")
    assert search_tool.input_schema["required"] == ["query"]
    assert search_tool.input_schema["properties"]["mode"]["enum"] == ["hybrid", "lexical", "dense"]

    found = await client.call_tool("search", {"query": "电子书借阅量", "k": 3})
    assert not found.is_error
    evidence = found.structured_content["evidence"]
    top = next(e for e in evidence if e["source"] == PDF)
    assert re.fullmatch(r"E[0-9a-f]{8}", top["id"])
    assert top["locator"]["page"] == 2 and top["label"] == f"{PDF}, p. 2"
    assert "8.6万册次" in top["text"]
    text = found.content[0].text
    assert f"[{top['id']}] {PDF}, p. 2" in text and "<material" in text

    read = await client.call_tool("read", {"evidence_id": top["id"], "around": 0})
    assert [e["id"] for e in read.structured_content["evidence"]] == [top["id"]]
    by_place = await client.call_tool("read", {"source": PDF, "page": 2, "around": 0})
    assert top["id"] in {e["id"] for e in by_place.structured_content["evidence"]}
    assert all(e["locator"]["page"] == 2 for e in by_place.structured_content["evidence"])

    bad = await client.call_tool("read", {"evidence_id": "Edeadbeef"})
    assert bad.is_error and "unknown evidence id 'Edeadbeef'" in bad.content[0].text
    wrong = await client.call_tool("search", {"query": "x", "k": "many"})
    assert wrong.is_error and "'k' must be an integer" in wrong.content[0].text

    report = f"# 电子书借阅\n\n2024年全区电子书借阅量为8.6万册次，比2023年增长69% [{top['id']}]。\n"
    good = await client.call_tool("check_report", {"report": report, "request": REQUEST})
    assert not good.is_error, good.content[0].text
    assert good.structured_content["passed"] is True
    assert good.structured_content["failures"] == []
    failing = "# 报告\n\n电子书很好 [Edeadbeef]。\n"
    failed = await client.call_tool("check_report", {"report": failing, "request": LONG_REQUEST})
    assert failed.structured_content["passed"] is False
    failures = "\n".join(failed.structured_content["failures"])
    assert "length" in failures and "[Edeadbeef] does not exist" in failures

    resources = (await client.list_resources()).resources
    pdf = next(r for r in resources if r.name == PDF)
    assert parse_source_uri(str(pdf.uri)) == (PDF, {})
    page = await client.read_resource(f"{pdf.uri}?page=2")
    assert f"[{top['id']}] {PDF}, p. 2" in page.contents[0].text


@pytest.mark.parametrize("mode", ["auto", "legacy"])  # legacy: the initialize handshake
def test_stdio_session_on_the_demo(tmp_path: Path, mode: str) -> None:
    params = StdioServerParameters(
        command=sys.executable, args=server_args(tmp_path / "cache"), env=server_env()
    )

    async def main() -> None:
        with (tmp_path / "server.log").open("w", encoding="utf-8") as log:
            transport = stdio_client(params, errlog=log)
            async with Client(transport, read_timeout_seconds=120, mode=mode) as c:
                await exercise(c)

    anyio.run(main)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def http_server(tmp_path: Path) -> Iterator[str]:
    """``deepfolder mcp --transport http`` on a free loopback port, with a bearer token."""
    port = free_port()
    log = (tmp_path / "server.log").open("w", encoding="utf-8")
    env = {**os.environ, **server_env(DEEPFOLDER_MCP_TOKEN="s3cret")}
    http = ["--transport", "http", "--port", str(port)]
    proc = subprocess.Popen(
        [sys.executable, *server_args(tmp_path / "cache"), *http],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}/mcp"
    try:
        deadline = time.time() + 60
        while time.time() < deadline:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                assert proc.poll() is None, (tmp_path / "server.log").read_text()
                time.sleep(0.2)
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=20)
        log.close()


@asynccontextmanager
async def bearer_client(url: str, token: str) -> AsyncIterator[Client]:
    from mcp.client.streamable_http import streamable_http_client
    from mcp.shared._httpx_utils import create_mcp_http_client

    headers = {"Authorization": f"Bearer {token}"}
    async with (
        create_mcp_http_client(headers=headers) as http,
        Client(streamable_http_client(url, http_client=http)) as client,
    ):
        yield client


def test_http_session_on_the_demo(http_server: str, monkeypatch: pytest.MonkeyPatch) -> None:
    refused = httpx2.post(http_server, json={}, timeout=10)
    assert refused.status_code == 401  # the token is required once it is set

    async def main() -> None:
        async with bearer_client(http_server, "s3cret") as client:
            await exercise(client)

    anyio.run(main)

    # deepfolder's own MCP client (tools.mcp_servers) reaches the same server by URL
    monkeypatch.setenv("FOLDER_TOKEN", "s3cret")
    config = McpServerSettings(
        name="demo", url=http_server, bearer_token_env="FOLDER_TOKEN", tools=["search"]
    )
    servers = connect_mcp_servers([config], timeout_s=60)
    try:
        assert servers.problems == []
        tools = servers.tools(taken={"search", "read"})
        assert [t.name for t in tools] == ["demo_search"]  # the clash gets the server's name
        ctx = ToolContext(index=MemoryIndex(), settings=Settings(), folder=Path("."))
        output = tools[0](ctx, {"query": "电子书借阅量", "k": 1})
    finally:
        servers.close()
    assert not output.is_error, output.text
    [ev] = output.evidence
    assert ev.citation_label() == 'mcp:demo, search({"k": 1, "query": "电子书借阅量"})'
    assert "8.6万册次" in ev.segment.text and ctx.seen[ev.id] is ev


def test_research_is_a_full_run_with_progress(tmp_path: Path) -> None:
    def answer(messages: list[dict[str, Any]], tools: Any) -> str:
        ids = re.findall(r"\[(E[0-9a-f]{8})\]", messages[-1]["content"])
        return f"# 电子书借阅\n\n## 增长\n\n电子书借阅量增长69% [{ids[0]}]。\n"

    model = ScriptedModel(
        [
            tool_call("search", {"query": "电子书借阅量"}),
            answer,
            '{"verdict": "supported", "reason": "the page states it"}',
        ],
        name="fake:agent",
    )
    settings = load_settings(
        overrides={
            "cache_dir": str(tmp_path / "cache"),
            "retrieval": {"dense": False},
            "validate": {"max_revisions": 0},
        },
        environ={},
    )
    service = FolderService(DEMO, settings, runs_dir=tmp_path / "runs", model=model)
    service.start()
    progress: list[str] = []

    async def on_progress(done: float, total: float | None, message: str | None) -> None:
        progress.append(message or "")

    async def main() -> Any:
        async with Client(build_server(service)) as client:
            return await client.call_tool(
                "research", {"request": REQUEST}, progress_callback=on_progress
            )

    try:
        result = anyio.run(main)
    finally:
        service.close()
    assert not result.is_error, result.content[0].text
    data = result.structured_content
    run_dir = Path(data["run_dir"])
    assert run_dir.parent == tmp_path / "runs" and (run_dir / "trace.jsonl").is_file()
    assert data["report"] == (run_dir / "report.md").read_text(encoding="utf-8")
    assert f"[{PDF}, 第2页](#E" in data["report"]
    assert model.remaining == 0
    assert any("deepfolder run" in m for m in progress)
    assert any("agent policy with fake:agent" in m for m in progress)
    lines = (run_dir / "evidence.jsonl").read_text(encoding="utf-8").splitlines()
    evidence = [json.loads(line) for line in lines]
    assert any(e["source"]["id"] == PDF for e in evidence)


def test_source_uris_round_trip() -> None:
    uri = source_uri("long_context_articles.json#3")
    assert uri == "deepfolder://source/long_context_articles.json%233"
    assert parse_source_uri(uri + "?chunk=2") == ("long_context_articles.json#3", {"chunk": "2"})


def test_calls_wait_for_the_ingest_and_hear_its_progress(tmp_path: Path) -> None:
    settings = load_settings(
        overrides={"cache_dir": str(tmp_path / "cache"), "retrieval": {"dense": False}},
        environ={},
    )
    service = FolderService(DEMO, settings)  # not started yet: the index is not ready
    progress: list[str] = []

    async def on_progress(done: float, total: float | None, message: str | None) -> None:
        progress.append(message or "")

    async def main() -> Any:
        async with Client(build_server(service)) as client, anyio.create_task_group() as tg:
            tg.start_soon(anyio.to_thread.run_sync, _start_later, service)
            return await client.call_tool("list_sources", {}, progress_callback=on_progress)

    try:
        result = anyio.run(main)
    finally:
        service.close()
    assert not result.is_error and PDF in result.content[0].text
    assert progress and progress[0].startswith("indexing demo: ")


def _start_later(service: FolderService) -> None:
    time.sleep(0.5)
    service.start().join()


def test_cli_refuses_what_it_cannot_serve(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("DEEPFOLDER_MCP_TOKEN", raising=False)
    cache = ["--cache-dir", str(tmp_path / "cache"), "--no-dense"]
    assert main(["mcp", str(tmp_path / "missing"), *cache]) == 2
    assert "is not a folder" in " ".join(capsys.readouterr().err.split())
    open_host = ["--transport", "http", "--host", "0.0.0.0"]
    assert main(["mcp", str(DEMO), *open_host, *cache]) == 2
    assert "set DEEPFOLDER_MCP_TOKEN" in " ".join(capsys.readouterr().err.split())
