"""MCP tool servers in the agent: settings, start failures, allow-lists, evidence."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from deepfolder.settings import McpServerSettings, SettingsError, load_settings
from deepfolder.tools.mcp_servers import call_label, connect_mcp_servers, result_evidence

TOOL_SERVER = Path(__file__).resolve().parents[1] / "mcp_tool_server.py"


def test_a_server_is_a_command_or_a_url() -> None:
    with pytest.raises(SettingsError, match="either 'command'"):
        load_settings(
            overrides={
                "tools": {"mcp_servers": [{"name": "x", "command": "a", "url": "http://b"}]}
            },
            environ={},
        )
    with pytest.raises(SettingsError, match="comand"):
        load_settings(
            overrides={"tools": {"mcp_servers": [{"name": "x", "comand": "a"}]}}, environ={}
        )
    with pytest.raises(SettingsError, match="name"):
        load_settings(
            overrides={"tools": {"mcp_servers": [{"name": "two words", "command": "a"}]}},
            environ={},
        )


def test_start_failures_and_allow_lists_are_problems(tmp_path: Path) -> None:
    configs = [
        McpServerSettings(name="gone", command=str(tmp_path / "missing")),
        McpServerSettings(
            name="stats",
            command=sys.executable,
            args=[str(TOOL_SERVER)],
            tools=["library_stats", "weather"],
        ),
    ]
    heard: list[str] = []
    servers = connect_mcp_servers(configs, timeout_s=60, log_dir=tmp_path, on_problem=heard.append)
    try:
        assert [t.name for t in servers.tools(taken=set())] == ["library_stats"]
    finally:
        servers.close()
    assert heard == servers.problems
    assert "'gone' did not start (FileNotFoundError" in servers.problems[0]
    assert "'stats' has no tool named weather" in servers.problems[1]
    assert (tmp_path / "stats.log").is_file()  # the server's standard error is kept


def test_result_evidence_is_located_by_server_tool_and_arguments() -> None:
    a = result_evidence("stats", "library_stats", {"branch": "东区"}, "48213")
    b = result_evidence("stats", "library_stats", {"branch": "东区"}, "48213")
    assert a.id == b.id and a.source.kind == "mcp" and a.source.id == "mcp:stats/library_stats"
    assert a.citation_label("zh") == 'mcp:stats, library_stats({"branch": "东区"})'
    other = result_evidence("stats", "library_stats", {"branch": "西区"}, "48213")
    assert other.id != a.id
    # brackets would end a Markdown link's text: the citation shows parentheses, the
    # locator keeps the exact arguments
    listed = result_evidence("kb", "lookup", {"ids": [1, 2]}, "two records")
    assert listed.segment.locator.call == 'lookup({"ids": [1, 2]})'
    assert listed.citation_label() == 'mcp:kb, lookup({"ids": (1, 2)})'
    assert len(result_evidence("kb", "q", {"q": "x" * 500}, "t").citation_label()) < 180
    assert call_label("t", {"q": "x" * 5000}).endswith("…)")
