"""Which tools a run offers: every registered tool whose availability rule holds."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest

from deepfolder.records import Locator, Segment, Source
from deepfolder.settings import Settings
from deepfolder.tools import available_tools
from deepfolder.tools.base import ToolContext, ToolOutput, tool
from memory_index import MemoryIndex

CORE = ["search", "read", "list_sources", "count_length"]


def _context(tmp_path: Path, kinds: list[str], data_files: list[str] | None = None) -> ToolContext:
    index = MemoryIndex()
    sources = [Source(id=f"f{i}.{k}", path=f"f{i}.{k}", kind=k) for i, k in enumerate(kinds)]
    index.add(sources, [Segment.create(s.id, "text", Locator(chunk=1)) for s in sources])
    return ToolContext(
        index=index,  # type: ignore[arg-type]
        settings=Settings(),
        folder=tmp_path,
        data_files=data_files or [],
    )


@pytest.mark.parametrize(
    ("kinds", "data_files", "expected"),
    [
        (["pdf", "text"], [], CORE),
        (["sheet"], ["sales.csv"], [*CORE, "run_python"]),
        (["image"], [], [*CORE, "inspect_image"]),
        (["audio"], [], [*CORE, "transcript"]),
        (["video", "pdf"], [], [*CORE, "transcript", "inspect_video"]),
    ],
)
def test_a_run_offers_the_tools_its_folder_can_use(
    tmp_path: Path, kinds: list[str], data_files: list[str], expected: list[str]
) -> None:
    ctx = _context(tmp_path, kinds, data_files)
    assert [t.name for t in available_tools(ctx)] == expected


def test_an_availability_rule_is_declared_with_the_tool(tmp_path: Path) -> None:
    @tool(available=lambda ctx: bool(ctx.data_files))
    def needs_data(ctx: ToolContext, x: int) -> ToolOutput:
        """Needs data.

        Args:
            x: A number.
        """
        return ToolOutput(text=str(x))

    assert needs_data.parameters["required"] == ["x"]
    assert not needs_data.is_available(_context(tmp_path, ["pdf"]))
    assert needs_data.is_available(_context(tmp_path, ["sheet"], ["a.csv"]))


def test_each_tool_keeps_its_own_state_for_the_run(tmp_path: Path) -> None:
    @dataclass
    class Counter:
        calls: int = 0

    ctx = _context(tmp_path, ["pdf"])
    ctx.state_of(Counter).calls += 1
    ctx.state_of(Counter).calls += 1
    assert ctx.state_of(Counter).calls == 2
    assert _context(tmp_path, ["pdf"]).state_of(Counter).calls == 0
