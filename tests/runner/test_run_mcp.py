"""A run whose agent uses a tool of an external MCP server (a real stdio session with
``tests/mcp_tool_server.py``) and cites its result; servers that fail are recorded."""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path
from typing import Any

from deepfolder.llm.fake import ScriptedModel, tool_call
from deepfolder.runner.run import run_task
from deepfolder.settings import load_settings
from deepfolder.validate.command import check_run_dir

ROOT = Path(__file__).resolve().parents[2]
DEMO = ROOT / "examples" / "demo"
TOOL_SERVER = ROOT / "tests" / "mcp_tool_server.py"


def test_agent_cites_an_mcp_tool_result(tmp_path: Path) -> None:
    servers = [
        {"name": "stats", "command": sys.executable, "args": [str(TOOL_SERVER)]},
        {"name": "missing", "command": str(tmp_path / "no-such-server")},
    ]
    settings = load_settings(
        overrides={
            "cache_dir": str(tmp_path / "cache"),
            "retrieval": {"dense": False},
            "validate": {"max_revisions": 0},
            "tools": {"mcp_servers": servers},
        },
        environ={},
    )

    def answer(messages: list[dict[str, Any]], tools: Any) -> str:
        shown = "\n".join(str(m.get("content") or "") for m in messages if m["role"] == "tool")
        eid = re.search(r"\[(E[0-9a-f]{8})\] mcp:stats, library_stats", shown)
        assert eid, shown
        return f"# 图书馆\n\n## 访客\n\n中心馆2024年接待访客48213人次，比2023年增长12% [{eid.group(1)}]。\n"

    model = ScriptedModel(
        [
            tool_call("library_stats", {"branch": "Central"}, id="c1"),
            tool_call("crash", {}, id="c2"),  # the server dies mid-run
            tool_call("library_stats", {"branch": "East"}, id="c3"),
            answer,
            '{"verdict": "supported", "reason": "the tool result states it"}',
        ],
        name="fake:agent",
    )
    out = tmp_path / "run"
    result = run_task(
        DEMO, "写一段关于中心馆访客的总结，标注来源。", settings, out=out, model=model
    )
    assert model.remaining == 0

    offered = model.calls[0][1] or []
    names = [spec["function"]["name"] for spec in offered]
    assert names[:2] == ["search", "read"]  # deepfolder's own first
    assert "library_stats" in names and "stats_search" in names  # a clash gets the prefix
    assert names.count("search") == 1

    steps = [json.loads(line) for line in (out / "trace.jsonl").read_text("utf-8").splitlines()]
    calls = [s for s in steps if s["kind"] == "tool_call"]
    assert [c["name"] for c in calls] == ["library_stats", "crash", "library_stats"]
    results = {s["call_id"]: s for s in steps if s["kind"] == "tool_result"}
    assert "48213 visitors" in results["c1"]["content"] and results["c1"]["evidence_ids"]
    assert results["c2"]["is_error"] and "MCP server 'stats' failed" in results["c2"]["content"]
    assert results["c3"]["is_error"] and "no longer available" in results["c3"]["content"]
    notes = [s["message"] for s in steps if s["kind"] == "note"]
    assert any("'missing' did not start" in n for n in notes)
    assert any("'stats' stopped answering" in n for n in notes)

    report = (out / "report.md").read_text(encoding="utf-8")
    eid = results["c1"]["evidence_ids"][0]
    assert f'[mcp:stats, library_stats({{"branch": "Central"}})](#{eid})' in report
    html = (out / "report.html").read_text(encoding="utf-8")
    assert f'href="#{eid}"' in html and "mcp:stats, library_stats(" in html
    evidence = {
        json.loads(line)["segment"]["id"]: json.loads(line)
        for line in (out / "evidence.jsonl").read_text(encoding="utf-8").splitlines()
    }
    assert evidence[eid]["source"]["kind"] == "mcp"
    assert evidence[eid]["segment"]["locator"] == {"call": 'library_stats({"branch": "Central"})'}
    validation = json.loads((out / "validation.json").read_text(encoding="utf-8"))
    cited = [c for c in validation["citations"] if eid in c["ids"]]
    assert cited and not cited[0]["problems"], cited
    assert result.report_path == out / "report.md"
    # `deepfolder check` resolves the citation from the run directory alone
    checked, _ = check_run_dir(out)
    assert all(not c.problems for c in checked.citations if eid in c.ids)
