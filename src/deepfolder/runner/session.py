"""One run as typed state, built in stages; ``runner/run.py`` runs them in order.

- :func:`open_run`: the request (command line, ``query.txt`` or ``query.jsonl``), the
  model (before any work, so a missing key or package fails at once), and a new run
  directory (never inside the input folder) holding ``request.txt``, ``settings.json``
  and ``run.json``; a resumed run takes its own directory instead, and its model answers
  the recorded calls from the trace.
- :func:`prepare`: ingest (cached), the tools' context and the tools, the policy, the
  brief of the user's files, the recorder, and the :class:`RunState` both policies and
  the revisor share. No model has been asked anything yet.
- :meth:`RunSession.draft`: the policy (agent loop or pipeline) writes the draft, every
  step recorded; :meth:`RunSession.keep_original` renders it to ``report.original.md``.
- :meth:`RunSession.revise`: validate ⇄ revise (``runner/revision.py``).
- :meth:`RunSession.write_outputs`: the report (Markdown and HTML), the comparison, the
  evidence and the validation; :meth:`RunSession.finish` marks the run finished, the
  very last write.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rich.console import Console
from rich.markup import escape

from deepfolder.agent.brief import build_brief
from deepfolder.agent.grounding import missing_notes
from deepfolder.agent.loop import run_agent
from deepfolder.agent.pipeline import run_pipeline
from deepfolder.agent.recording import RecordedModel
from deepfolder.agent.state import Conversation, RunState
from deepfolder.agent.task_material import (
    MATERIAL_NOTES,
    MaterialEntry,
    absent_notes,
    apply_entries,
    parse_entries,
    read_entries,
    write_entries,
)
from deepfolder.analysis.sandbox import SandboxLimits
from deepfolder.llm.base import ChatModel, ModelError, set_retry_listener
from deepfolder.prompts.writing import (
    AGENT_SYSTEM,
    describe_constraints,
    language_name,
    task_message,
)
from deepfolder.records import Evidence, FinalAnswerStep, NoteStep, Step, TaskStep
from deepfolder.report.render import finalize_markdown, markdown_to_html, title_of
from deepfolder.request_model import RequestConstraints, parse_request
from deepfolder.runner.outputs import comparison_text, write_json, write_text
from deepfolder.runner.request import (
    RunSetupError,
    choose_run_dir,
    query_jsonl_material,
    resolve_request,
)
from deepfolder.runner.resume import (
    ResumePlan,
    mark_finished,
    record_inputs,
    start_run_record,
)
from deepfolder.runner.revision import Revisor
from deepfolder.settings import Settings
from deepfolder.tools import available_tools
from deepfolder.tools.base import ToolContext
from deepfolder.trace.recorder import RunRecorder
from deepfolder.validate.checks import ValidationReport
from deepfolder.validate.command import write_evidence
from deepfolder.validate.length import count_length

if TYPE_CHECKING:
    from deepfolder.ingest.pipeline import Corpus
    from deepfolder.tools.mcp_servers import McpToolServers


# -- open: the run directory, before any work -------------------------------------------
@dataclass
class RunSetup:
    """A run whose directory exists, before any work: where it writes, the folder, the
    request, the settings, the model, the console, and the plan when it resumes."""

    run_dir: Path
    folder: Path
    request: str
    settings: Settings
    model: ChatModel
    console: Console
    resume: ResumePlan | None


def open_run(
    folder: Path,
    request: str | None,
    settings: Settings,
    *,
    out: Path | None,
    model: ChatModel | None,
    console: Console,
    resume: ResumePlan | None,
    material: list[MaterialEntry] | None = None,
) -> RunSetup:
    """Resolve the request and the model, then write a new run directory, or take the
    interrupted run's own (``resume``: folder, request and settings come from the plan;
    the task's ``material`` entries from its ``material_notes.json``). Without
    ``material``, a request found in a ``query.jsonl`` line brings that line's
    ``multimodal`` entries.
    Raises :class:`RunSetupError` naming what to fix."""
    if resume is not None:
        folder, request, settings = resume.folder, resume.request, resume.settings
    folder = folder.expanduser()
    if not folder.is_dir():
        raise RunSetupError(f"{folder} is not a folder; give the folder that holds the materials")
    request_text, request_origin = resolve_request(folder, request)
    if material is None and request_origin.endswith(f"(task {folder.name})"):
        material = _jsonl_material(folder)  # the benchmark's line may describe files
    if model is None:  # before any work, so a missing key or package fails at once
        from deepfolder.llm.registry import create_chat_model

        model = create_chat_model(settings)
    if resume is not None:
        model = resume.wrap(model)  # recorded calls are answered from the trace
        console.print(f"[bold]deepfolder run --resume[/] {resume.run_dir} ({folder})")
        return RunSetup(resume.run_dir, folder, request_text, settings, model, console, resume)
    run_dir = choose_run_dir(folder, out)
    write_text(run_dir / "request.txt", request_text + "\n")
    write_json(
        run_dir / "settings.json",
        {
            "settings": settings.to_json_dict(),
            "settings_hash": settings.settings_hash(),
            "ingest_hash": settings.ingest_hash(),
            "request_from": request_origin,
        },
    )
    if material:
        write_entries(run_dir / MATERIAL_NOTES, material)
    start_run_record(run_dir, folder, settings)  # last: a run.json means resumable
    console.print(f"[bold]deepfolder run[/] {folder} → {run_dir}")
    return RunSetup(run_dir, folder, request_text, settings, model, console, None)


# -- prepare: ingest, tools, brief, recorder, the writing state -------------------------
def prepare(setup: RunSetup, vision: ChatModel | None) -> RunSession:
    """Ingest the folder and wire what the policy needs. ``vision`` replaces the
    settings' vision model (tests pass a fake one)."""
    corpus = _ingest(setup)
    constraints = parse_request(setup.request)
    ctx = _tool_context(setup, corpus, constraints.language, vision)
    tools = available_tools(ctx)
    policy = choose_policy(setup.settings, setup.model)
    brief = build_brief(corpus.index, vision_available=ctx.vision is not None)
    absent = apply_entries(brief, _material_entries(setup.run_dir))
    for f in brief.unreadable:
        setup.console.print(f"[yellow]{f.source.display_name}: {f.problem}[/]")
    recorder = _recorder(setup, ctx)
    if ctx.mcp is not None:  # from now on a server that dies mid-run is on record too
        ctx.mcp.on_problem = lambda message: _mcp_problem(setup.console, recorder, message)
    summary = corpus.summary()
    zh = constraints.language.startswith("zh")
    if brief.files:  # the user's own files, from the files themselves, with citations
        ctx.remember(brief.evidence)
        head = "用户提供的文件（摘要）" if zh else "The user's files (brief)"
        summary += f"\n\n{head}:\n{brief.render(constraints.language)}"
    notes = missing_notes(constraints.material_kinds, brief, constraints.language)
    notes += absent_notes(absent, constraints.language)
    if notes:  # the request's material the folder lacks: the report says so (the
        # unreadable files' problems are in the brief already)
        head = "报告须说明缺少的材料" if zh else "Missing material the report must mention"
        summary += f"\n\n{head}:\n" + "\n".join(f"- {n}" for n in notes)
    state = RunState(
        model=setup.model,
        ctx=ctx,
        tools={t.name: t for t in tools},
        request=setup.request,
        constraints=constraints,
        language=constraints.language,
        conv=_conversation(setup.request, constraints, summary),
        max_tokens=min(setup.settings.model.max_output_tokens, 2048),
        brief=brief,
        absent_notes=absent_notes(absent, constraints.language),
    )
    return RunSession(setup, corpus, state, policy, recorder, summary)


def _jsonl_material(folder: Path) -> list[MaterialEntry]:
    jsonl = folder.parent / "query.jsonl"
    try:
        return parse_entries(query_jsonl_material(folder), f"{jsonl} (task {folder.name})")
    except ValueError as exc:
        raise RunSetupError(f"{exc} (its multimodal entries)") from exc


def _material_entries(run_dir: Path) -> list[MaterialEntry]:
    """The task's own material entries (``--material-notes``), kept in the run directory."""
    path = run_dir / MATERIAL_NOTES
    if not path.exists():
        return []
    try:
        return read_entries(path)
    except ValueError as exc:
        raise RunSetupError(str(exc)) from exc


def choose_policy(settings: Settings, model: ChatModel) -> str:
    if settings.agent.policy != "auto":
        return settings.agent.policy
    return "pipeline" if model.is_local else "agent"


def _ingest(setup: RunSetup) -> Corpus:
    """The folder's index (cached); ``ingest_report.json`` and the inputs' hashes in
    ``run.json`` are written once (a resumed run keeps the record it started from)."""
    from deepfolder.ingest import ingest_folder
    from deepfolder.runner.progress import ingest_progress

    started = time.time()
    with ingest_progress(setup.console) as progress:
        corpus = ingest_folder(setup.folder, setup.settings, progress=progress)
    run_dir = setup.run_dir
    if setup.resume is None or not (run_dir / "ingest_report.json").exists():
        write_json(run_dir / "ingest_report.json", corpus.report.to_dict())
        record_inputs(run_dir, ((f.path, f.sha256) for f in corpus.report.files))
    failed = corpus.report.failures
    setup.console.print(
        f"indexed {len(corpus.report.files) - len(failed)} file(s), {corpus.index.count()} passages "
        f"in {time.time() - started:.1f}s"
        + (f"; {len(failed)} failed (see ingest_report.json)" if failed else "")
    )
    return corpus


def _tool_context(
    setup: RunSetup, corpus: Corpus, language: str, vision: ChatModel | None
) -> ToolContext:
    """What the tools reach in this run: the index, the data files the analysis may read
    and its sandbox's limits, the vision model (a resumed run's answers from the trace)."""
    a = setup.settings.analysis
    ctx = ToolContext(
        index=corpus.index,
        settings=setup.settings,
        folder=setup.folder,
        run_dir=setup.run_dir,
        index_dir=corpus.index_dir,
        data_files=list(corpus.data_files),
        language=language,
        sandbox_limits=SandboxLimits(
            wall_s=a.wall_s, cpu_s=a.cpu_s, memory_mb=a.memory_mb, output_chars=a.output_chars
        ),
    )
    if setup.settings.tools.mcp_servers:
        ctx.mcp = _mcp_servers(setup)
    if vision is None:
        vision = _vision_model(setup.settings)
    if vision is not None:
        ctx.vision = setup.resume.wrap(vision) if setup.resume else vision
    return ctx


def _mcp_servers(setup: RunSetup) -> McpToolServers:
    """Connect the MCP tool servers of the settings; one that fails to start is printed
    (and recorded when the draft starts) and the run goes on without it."""
    from deepfolder.tools.mcp_servers import McpUnavailable, connect_mcp_servers

    t = setup.settings.tools
    try:
        return connect_mcp_servers(
            t.mcp_servers,
            timeout_s=t.mcp_connect_timeout_s,
            log_dir=setup.run_dir / "mcp_servers",
            on_problem=lambda message: setup.console.print(f"[yellow]{escape(message)}[/]"),
        )
    except McpUnavailable as exc:
        raise RunSetupError(str(exc)) from exc


def _mcp_problem(console: Console, recorder: RunRecorder, message: str) -> None:
    console.print(f"[yellow]{escape(message)}[/]")
    recorder.record(NoteStep(turn=recorder.turn, message=message, level="warning"))


def _recorder(setup: RunSetup, ctx: ToolContext) -> RunRecorder:
    """The recorder of every step. It hears the models' retries (steps of the run) and
    the vision model's calls; a resumed run's recorder skips what the trace holds."""
    recorder = RunRecorder(setup.run_dir, console=setup.console, price=_pricer(setup.settings))
    if setup.resume is not None:
        setup.resume.attach(recorder)
    set_retry_listener(setup.model, recorder.record_retry)
    if ctx.vision is not None:  # the vision model's calls belong in the trace too
        set_retry_listener(ctx.vision, recorder.record_retry)
        ctx.vision = RecordedModel(ctx.vision, recorder.record, "vision", lambda: recorder.turn)
    return recorder


def _conversation(request: str, constraints: RequestConstraints, summary: str) -> Conversation:
    system = AGENT_SYSTEM.format(
        language_name=language_name(constraints.language),
        constraints=describe_constraints(constraints),
    )
    return Conversation(
        messages=[
            {"role": "system", "content": system},
            {"role": "user", "content": task_message(request, summary)},
        ]
    )


def _pricer(settings: Settings) -> Any:
    try:
        from deepfolder.llm.pricing import cost_of
    except ImportError:
        return None
    return lambda model_name, usage: cost_of(model_name, usage, settings)


def _vision_model(settings: Settings) -> ChatModel | None:
    if not settings.model.vision_model:
        return None
    from deepfolder.llm.registry import create_vision_model

    return create_vision_model(settings)


# -- the prepared run: draft → validate ⇄ revise → write -------------------------------
@dataclass
class RunSession:
    """A prepared run: its setup, the ingested corpus, the writing state, the policy
    that writes the draft, the recorder every step goes through, and the folder summary
    the task carries."""

    setup: RunSetup
    corpus: Corpus
    state: RunState
    policy: str
    recorder: RunRecorder
    summary: str

    @property
    def run_dir(self) -> Path:
        return self.setup.run_dir

    def citable(self, eid: str) -> Evidence | None:
        """Evidence the run may cite: shown to the model or created by its tools."""
        return self.state.ctx.seen.get(eid) or self.state.ctx.created.get(eid)

    def render(self, raw: str) -> tuple[str, list[str]]:
        """The draft's Markdown with readable citations; the ids it cited but may not."""
        c = self.state.constraints
        md, rendered = finalize_markdown(
            raw, self.citable, self.state.language, c.reference_section
        )
        return md, rendered.dropped

    def draft(self) -> FinalAnswerStep:
        """The task, then the policy's steps, all recorded; its final answer (an empty
        one when it gave none)."""
        state, settings = self.state, self.setup.settings
        self.recorder.record(
            TaskStep(turn=0, request=state.request, folder_summary=self.summary, policy=self.policy)
        )
        if state.ctx.mcp is not None:  # servers that did not start, on record
            for problem in state.ctx.mcp.problems:
                self.recorder.record(NoteStep(turn=0, message=problem, level="warning"))
        self.recorder.milestone(
            f"{self.policy} policy with {state.model.name}; tools: {', '.join(state.tools)}"
        )
        steps: Iterator[Step]
        if self.policy == "pipeline":
            steps = run_pipeline(state)
        else:
            steps = run_agent(
                state.model,
                list(state.tools.values()),
                state.ctx,
                state.conv,
                max_turns=settings.agent.max_turns,
                max_input_tokens=settings.agent.max_input_tokens_per_run,
                keep_recent=settings.agent.tool_result_keep_recent,
                max_tokens=settings.model.max_output_tokens,
            )
        final: FinalAnswerStep | None = None
        for step in steps:
            self.recorder.record(step)
            if isinstance(step, FinalAnswerStep):
                final = step
        if final is None:
            final = FinalAnswerStep(
                turn=self.recorder.turn, text="", cut_short=True, reason="no answer"
            )
            self.recorder.record(final)
        return final

    def no_report(self, final: FinalAnswerStep) -> str:
        """An empty final answer ends the run without a report: why, recorded."""
        error = (
            f"the model's final answer was empty ({final.reason or 'no reason given'}); "
            f"no report was written. The trace is kept in {self.run_dir}"
        )
        self.recorder.record(NoteStep(turn=final.turn, message=error, level="error"))
        self.recorder.append_turns_block("Run failed", [error])
        return error

    def keep_original(self, raw: str) -> str:
        """The draft as the policy wrote it, rendered and written to report.original.md."""
        self.recorder.milestone(f"draft written ({len(raw)} characters); validating")
        original_md, _ = self.render(raw)
        write_text(self.run_dir / "report.original.md", original_md)
        return original_md

    def revise(self, raw: str) -> tuple[str, ValidationReport]:
        """Validate ⇄ revise, a bounded number of rounds; the revised raw draft and the
        last validation."""
        revisor = Revisor(
            state=self.state,
            policy=self.policy,
            recorder=self.recorder,
            citable=self.citable,
            run_dir=self.run_dir,
            judge=_judge(self.setup.settings, self.state.model),
            settings=self.setup.settings,
        )
        return revisor.validate_and_revise(raw)

    def write_outputs(
        self, original_md: str, raw: str, validation: ValidationReport, final: FinalAnswerStep
    ) -> list[str]:
        """report.md and report.html, comparison.txt, evidence.jsonl, validation.json and
        the closing blocks of turns.txt; the checks that still fail."""
        ctx, unit = self.state.ctx, self.state.unit
        final_md = self._write_report(raw)
        write_text(
            self.run_dir / "comparison.txt",
            comparison_text(original_md, final_md, lambda t: f"{count_length(t, unit)} {unit}"),
        )
        # every evidence shown to the model or created by its tools, for `deepfolder check`
        shown_or_made = {**ctx.created, **ctx.seen}
        write_evidence(self.run_dir / "evidence.jsonl", list(shown_or_made.values()), set(ctx.seen))
        write_json(self.run_dir / "validation.json", validation.to_dict())
        failures = list(validation.failures)
        self.recorder.append_turns_block(
            "Validation (final)", failures if failures else ["all checks passed"]
        )
        if final.cut_short:
            self.recorder.append_turns_block("Run cut short", [final.reason])
        return failures

    def _write_report(self, raw: str) -> str:
        """report.md and report.html from the revised draft; citations to ids never
        returned in this run are removed, with a warning in the trace."""
        final_md, dropped = self.render(raw)
        if dropped:
            self.recorder.record(
                NoteStep(
                    turn=self.recorder.turn,
                    level="warning",
                    message=f"removed {len(dropped)} citation(s) to ids never returned in this run: "
                    + ", ".join(sorted(set(dropped))[:10]),
                )
            )
        write_text(self.run_dir / "report.md", final_md)
        title = title_of(final_md, "deepfolder report")
        write_text(
            self.run_dir / "report.html",
            markdown_to_html(
                final_md, title=title, base_dir=self.run_dir, language=self.state.language
            ),
        )
        return final_md

    def model_failed(self, exc: ModelError) -> ModelError:
        """Record that the endpoint failed after its retries; the error to raise, which
        says where the trace is."""
        failed_turn = self.recorder.turn + 1  # the call that failed, as its retries are numbered
        self.recorder.record(
            NoteStep(turn=failed_turn, message=f"model error: {exc}", level="error")
        )
        self.recorder.append_turns_block("Run failed", [f"model error: {exc}"])
        return ModelError(f"{exc} (the trace is kept in {self.run_dir})")

    def close(self) -> None:
        """Stop the run's analysis worker, close the index and the trace."""
        if self.state.ctx.sandbox is not None:
            with contextlib.suppress(Exception):  # closing must not hide the report
                self.state.ctx.sandbox.close()
        if self.state.ctx.mcp is not None:
            self.state.ctx.mcp.close()
        self.corpus.close()
        self.recorder.close()

    def finish(self) -> Path:
        """Mark the run finished, its very last write; the report's path. A resumed run
        first records how many calls it replayed and sent."""
        name = "report.html" if self.state.constraints.format == "html" else "report.md"
        report_path = self.run_dir / name
        resume = self.setup.resume
        if resume is not None:
            resume.record_outcome()
            o = resume.outcome()
            self.setup.console.print(
                f"resumed: {o['replayed_model_calls']} model call(s) replayed from the trace, "
                f"{o['new_model_calls']} new"
            )
        mark_finished(self.run_dir, report_path)
        return report_path


def _judge(settings: Settings, model: ChatModel) -> ChatModel | None:
    mode = settings.validate_.support_judge
    if mode == "model" or (mode == "auto" and not model.is_local):
        return model
    return None
