"""The folder an MCP server serves: ingested once, its tools called by name.

:class:`FolderService` is the synchronous half of ``deepfolder mcp`` (the protocol is in
``server/app.py``). It ingests the folder (cached, as ``deepfolder run`` does) in a
background thread and publishes the ingest's progress, then serves:

- the agent's own tools, unchanged: ``search``, ``read``, ``list_sources``,
  ``count_length`` and, when the folder has such files, ``inspect_image``,
  ``inspect_video`` and ``transcript`` — the same functions, argument schemas, evidence
  ids and locators the agent sees, taken from the tool registry;
- ``check_report``: the validator of ``deepfolder check`` on a report text and a request;
- ``research``: a full ``deepfolder run`` for a request, its console lines reported as
  progress;
- each source as text, all of it or one place of it (a page, a slide, a chunk, a time
  window, a row), as passages with their evidence ids.

The folder is only read. Tools that call the vision model use ``model.vision_model``;
``run_python`` is not served (it is the agent's scratchpad, not the folder's).
Calls are serialised: the index and the tools' state belong to one thread at a time,
except ``research``, which opens its own run.
"""

from __future__ import annotations

import io
import itertools
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rich.console import Console

from deepfolder.ingest import Corpus, ingest_folder
from deepfolder.llm.base import ChatModel
from deepfolder.prompts.material import quote_material
from deepfolder.records import Evidence, Source
from deepfolder.request_model import parse_request
from deepfolder.runner.run import run_task
from deepfolder.settings import Settings
from deepfolder.tools import available_tools
from deepfolder.tools.base import Tool, ToolArgumentError, ToolContext, ToolOutput, tool
from deepfolder.tools.core import at_place
from deepfolder.validate.checks import validate_report

SERVED_TOOLS = (
    "search",
    "read",
    "list_sources",
    "inspect_image",
    "inspect_video",
    "transcript",
    "count_length",
)
"""The agent's tools an MCP client may call, as the agent calls them."""

PLACES: dict[str, type] = {
    "page": int,
    "slide": int,
    "chunk": int,
    "row": int,
    "start": float,
    "end": float,
}
"""The places of a source a resource read may ask for, as ``read`` takes them."""

Progress = Callable[[float, float | None, str], None]
"""``(progress, total, message)``: told as a long call goes on."""


@dataclass
class IngestProgress:
    """Where the folder's ingest is: the phase and its count, and how it ended."""

    phase: str = "starting"
    done: int = 0
    total: int = 0
    error: str | None = None
    """Why the folder could not be indexed; None while it goes on and when it worked."""


class FolderService:
    """One folder's index and tools for an MCP server; :meth:`start` ingests it."""

    def __init__(
        self,
        folder: Path,
        settings: Settings,
        *,
        runs_dir: Path | None = None,
        language: str = "en",
        model: ChatModel | None = None,
        vision: ChatModel | None = None,
    ) -> None:
        """``model`` and ``vision`` replace the settings' models (tests pass fake ones);
        ``runs_dir`` is where ``research`` writes its run directories."""
        self.folder = folder.expanduser().resolve()
        if not self.folder.is_dir():
            raise ValueError(f"{folder} is not a folder; give the folder that holds the materials")
        self.settings = settings
        self.runs_dir = (runs_dir or settings.cache_path() / "runs").expanduser().resolve()
        self.language = language
        self.model = model
        self.vision = vision
        self.progress = IngestProgress()
        self.ready = threading.Event()
        """Set when the ingest has ended, well or not."""
        self.corpus: Corpus | None = None
        self.ctx: ToolContext | None = None
        self._tools: dict[str, Tool] = {}
        self._lock = threading.Lock()
        self._local = threading.local()
        self._run_numbers = itertools.count(1)

    # -- ingest -----------------------------------------------------------------------
    def start(self) -> threading.Thread:
        """Ingest the folder in a background thread; :attr:`ready` is set when it ends."""
        thread = threading.Thread(target=self.ingest, name="deepfolder-ingest", daemon=True)
        thread.start()
        return thread

    def ingest(self) -> None:
        """Index the folder (cached) and make its tools; a failure is kept in
        ``progress.error`` and every later call answers with it."""
        try:
            corpus = ingest_folder(
                self.folder, self.settings, progress=self._on_ingest, notice=self._on_notice
            )
            ctx = ToolContext(
                index=corpus.index,
                settings=self.settings,
                folder=self.folder,
                index_dir=corpus.index_dir,
                data_files=list(corpus.data_files),
                language=self.language,
                vision=self.vision or _vision_model(self.settings),
            )
            served = [t for t in available_tools(ctx) if t.name in SERVED_TOOLS]
            self._tools = {
                t.name: t for t in [*served, self._check_report_tool(), self._research_tool()]
            }
            self.corpus, self.ctx = corpus, ctx
            self.progress.phase = "ready"
        except Exception as exc:  # reported to every client call, never a dead server
            self.progress.error = f"{self.folder} could not be indexed: {type(exc).__name__}: {exc}"
        finally:
            self.ready.set()

    def _on_ingest(self, phase: str, done: int, total: int) -> None:
        self.progress.phase, self.progress.done, self.progress.total = phase, done, total

    def _on_notice(self, message: str) -> None:
        self.progress.phase = message

    def close(self) -> None:
        if self.corpus is not None:
            self.corpus.close()

    # -- tools ------------------------------------------------------------------------
    def tools(self) -> list[Tool]:
        """The tools served, once the ingest has ended (none when it failed)."""
        return list(self._tools.values())

    def call(self, name: str, arguments: dict[str, Any], progress: Progress | None) -> ToolOutput:
        """Call one served tool. The caller's mistakes (an unknown tool, bad arguments,
        an unknown evidence id) come back as an error output; other exceptions raise."""
        if self.progress.error is not None:
            return ToolOutput(text=self.progress.error, is_error=True)
        found = self._tools.get(name)
        if found is None or self.ctx is None:
            return ToolOutput(
                text=f"no tool named {name!r}; the tools are: {', '.join(self._tools)}",
                is_error=True,
            )
        try:
            if name == "research":  # a run of its own; other calls go on meanwhile
                self._local.progress = progress
                return found(self.ctx, arguments)
            with self._lock:
                return found(self.ctx, arguments)
        except ToolArgumentError as exc:
            return ToolOutput(text=f"{name}(): {exc}", is_error=True)

    def _check_report_tool(self) -> Tool:
        def check_report(ctx: ToolContext, report: str, request: str) -> ToolOutput:
            """Check a report against its request the way `deepfolder check` does: length,
            sections, format, citations (each [E…] id must be one this server returned,
            and its passage must support the sentence), numbers and placeholders.
            Returns the failing checks; an empty list means the report passes.

            Args:
                report: The report (Markdown or HTML) citing evidence ids like [E1a2b3c4d].
                request: The request the report answers, with its length, sections and
                    format.
            """
            constraints = parse_request(request)
            result = validate_report(
                report,
                constraints,
                resolve=ctx.resolve,
                seen_ids=set(ctx.seen),
                settings=ctx.settings,
            )
            failures = result.failures
            lines = [f"- {f}" for f in failures] or ["all checks passed"]
            head = "FAILED" if failures else "passed"
            text = f"validation {head}: {len(failures)} failing check(s)\n" + "\n".join(lines)
            data = {
                "passed": result.passed,
                "failures": failures,
                "warnings": result.warnings,
                "checks": [c.to_dict() for c in result.checks],
            }
            return ToolOutput(text=text, data=data, quoted=True)

        return tool(check_report)

    def _research_tool(self) -> Tool:
        def research(ctx: ToolContext, request: str) -> ToolOutput:
            """Write a cited report on the folder for a request: a full `deepfolder run`
            (research with the agent, validate, revise). It takes minutes; progress is
            reported as it goes. Returns the report and its run directory.

            Args:
                request: What the report should be, with its length, sections and
                    language, e.g. "写一份1500字的调研报告，分为背景、发现、建议三部分".
            """
            if not request.strip():
                raise ToolArgumentError("the request is empty; say what report to write.")
            return self._run(request)

        return tool(research)

    def _run(self, request: str) -> ToolOutput:
        progress: Progress | None = getattr(self._local, "progress", None)
        lines = _ConsoleLines(lambda n, line: progress(n, None, line) if progress else None)
        console = Console(file=lines, force_terminal=False, no_color=True, width=160)
        stamp = time.strftime("%Y%m%d-%H%M%S")
        out = self.runs_dir / f"{self.folder.name}-{stamp}-{next(self._run_numbers)}"
        result = run_task(
            self.folder,
            request,
            self.settings,
            out=out,
            model=self.model,
            console=console,
            vision=self.vision,
        )
        if result.error is not None:
            return ToolOutput(text=f"no report: {result.error}", is_error=True, quoted=True)
        report = result.report_path.read_text(encoding="utf-8")
        checks = "all checks passed" if result.passed else "; ".join(result.failures)
        text = f"run directory: {result.run_dir}\nvalidation: {checks}\n\n" + quote_material(
            report, label=result.report_path.name
        )
        data = {
            "report": report,
            "run_dir": str(result.run_dir),
            "report_path": str(result.report_path),
            "passed": result.passed,
            "failures": result.failures,
            "cut_short": result.cut_short,
        }
        return ToolOutput(text=text, data=data, quoted=True)

    # -- sources as resources ---------------------------------------------------------
    def sources(self) -> list[Source]:
        if self.ctx is None:
            return []
        return sorted(self.ctx.index.sources(), key=lambda s: s.id)

    def passages(self, source_id: str, place: dict[str, str]) -> list[Evidence]:
        """The passages of one source, all of them or those at ``place`` (page, slide,
        chunk, row, start, end as text); they become citable like ``read``'s."""
        if self.ctx is None:
            raise ToolArgumentError(self.progress.error or "the folder is not indexed yet")
        with self._lock:
            index = self.ctx.index
            source = index.source(source_id)
            if source is None:
                raise ToolArgumentError(
                    f"no source {source_id!r}; list the resources or call list_sources()"
                )
            values = _place(place)
            segments = index.segments_of(source.id)
            chosen = [s for s in segments if at_place(s, **values)]
            if not chosen:
                raise ToolArgumentError(
                    f"{source.display_name} has nothing at {place}; "
                    f"it has {len(segments)} passage(s)"
                )
            evidence = [Evidence(s, source) for s in chosen]
            self.ctx.remember(evidence)
            return evidence


def _place(place: dict[str, str]) -> dict[str, Any]:
    unknown = sorted(set(place) - set(PLACES))
    if unknown:
        raise ToolArgumentError(
            f"unknown place {', '.join(unknown)}; a place is one of {', '.join(PLACES)}"
        )
    values: dict[str, Any] = dict.fromkeys(PLACES)
    for key, text in place.items():
        try:
            values[key] = PLACES[key](text)
        except ValueError:
            raise ToolArgumentError(f"{key}={text!r} is not a number") from None
    return values


def evidence_record(ev: Evidence, language: str) -> dict[str, Any]:
    """One evidence as structured content: id, source, locator, readable label, text."""
    return {
        "id": ev.id,
        "source": ev.source.id,
        "path": ev.source.path,
        "kind": ev.source.kind,
        "locator": ev.segment.locator.to_dict(),
        "label": ev.citation_label(language),
        "text": ev.segment.text,
    }


class _ConsoleLines(io.StringIO):
    """A file for a rich Console that hands on each complete line, numbered."""

    def __init__(self, emit: Callable[[int, str], None]) -> None:
        super().__init__()
        self._emit = emit
        self._buffer = ""
        self._count = 0

    def write(self, text: str) -> int:
        self._buffer += text
        while "\n" in self._buffer:
            line, self._buffer = self._buffer.split("\n", 1)
            if line.strip():
                self._count += 1
                self._emit(self._count, line.strip())
        return len(text)


def _vision_model(settings: Settings) -> ChatModel | None:
    if not settings.model.vision_model:
        return None
    from deepfolder.llm.registry import create_vision_model

    return create_vision_model(settings)
