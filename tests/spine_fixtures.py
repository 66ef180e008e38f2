"""Small real indexes for the spine's tests (agent, tools, report, runner)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from deepfolder.agent.state import Conversation, RunState
from deepfolder.index import open_index
from deepfolder.index.base import Index
from deepfolder.llm.base import ChatModel
from deepfolder.records import Locator, Segment, Source
from deepfolder.request_model import parse_request
from deepfolder.settings import Settings, load_settings
from deepfolder.tools import core, search
from deepfolder.tools.base import Tool, ToolContext

CORE_TOOLS: list[Tool] = [*search.TOOLS, *core.TOOLS]
"""The tools every run has, whatever its folder holds."""

RUN_OUTPUTS = [
    "report.md",
    "report.html",
    "report.original.md",
    "comparison.txt",
    "trace.jsonl",
    "turns.txt",
    "usage.json",
    "settings.json",
    "validation.json",
    "evidence.jsonl",
    "request.txt",
    "ingest_report.json",
    "run.json",
]
"""Every file a run directory holds (docs/architecture.md, "What a run leaves behind")."""

PAGES = {
    1: "青禾区共有社区图书馆14家，2023年起开通电子书借阅服务。",
    2: "2024年全区电子书借阅量为8.6万册次，比2023年增长69%。",
    3: "建议在每家图书馆设置每周一次的数字助老辅导时段。",
}
ARTICLES = [
    ("夜间开放受欢迎", "社区图书馆延长开放时间至晚上十点，夜间读者以上班族为主。"),
    (
        "Unified accounts",
        "Cities that merged reader accounts report fewer abandoned registrations.",
    ),
]


def test_settings(tmp_path: Path) -> Settings:
    return load_settings(
        overrides={"cache_dir": str(tmp_path / "cache"), "retrieval": {"dense": False}},
        environ={},
    )


def small_index(tmp_path: Path, settings: Settings) -> Index:
    index = open_index(tmp_path / "index", settings)
    pdf = Source(id="report.pdf", path="report.pdf", kind="pdf", meta={"pages": 3})
    segs = [
        Segment.create(pdf.id, text, Locator(page=p, chunk=1), seq=p - 1)
        for p, text in PAGES.items()
    ]
    articles, article_segs = collection(ARTICLES)
    index.add([pdf, *articles], [*segs, *article_segs])
    return index


def collection(
    pages: Sequence[tuple[str, str]], path: str = "long_context.json"
) -> tuple[list[Source], list[Segment]]:
    """The sources and one-chunk segments of a web-page collection of (title, text)."""
    sources, segments = [], []
    for i, (title, text) in enumerate(pages):
        art = Source(id=f"{path}#{i}", path=path, kind="article", title=title, article=i)
        sources.append(art)
        segments.append(Segment.create(art.id, text, Locator(article=i, chunk=1), seq=0))
    return sources, segments


def small_context(tmp_path: Path) -> ToolContext:
    settings = test_settings(tmp_path)
    return ToolContext(
        index=small_index(tmp_path, settings),
        settings=settings,
        folder=tmp_path,
        run_dir=tmp_path / "run",
        language="zh",
    )


def run_state(
    ctx: ToolContext,
    request: str,
    model: ChatModel,
    *,
    tools: Sequence[Tool] = CORE_TOOLS,
    conv: Conversation | None = None,
) -> RunState:
    """A Chinese pipeline run's state over ``ctx`` for ``request`` (system prompt "s")."""
    return RunState(
        model=model,
        ctx=ctx,
        tools={t.name: t for t in tools},
        request=request,
        constraints=parse_request(request),
        language="zh",
        conv=conv or Conversation(messages=[{"role": "system", "content": "s"}]),
    )
