"""``deepfolder run``: folder + request → checked, cited report and a full record.

Order of work: resolve the request → choose the run directory (never inside the input
folder) → ingest (cached) → model → tools → agent or pipeline policy → render →
validate ⇄ revise → write every output file.

Two ways a run fails without a report, both keeping the trace, turns.txt and usage.json:
a :class:`ModelError` (the endpoint failed after its retries) is re-raised naming the run
directory; an empty final answer returns a failed :class:`RunResult` whose ``error``
says why, and no report.md is written.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rich.console import Console

from deepfolder.agent.loop import run_agent
from deepfolder.agent.pipeline import run_pipeline
from deepfolder.agent.prompts import (
    AGENT_SYSTEM,
    describe_constraints,
    language_name,
    task_message,
)
from deepfolder.agent.recording import RecordedModel
from deepfolder.agent.state import Conversation, RunState
from deepfolder.llm.base import ChatModel, ModelError, set_retry_listener
from deepfolder.records import Evidence, FinalAnswerStep, NoteStep, Step, TaskStep
from deepfolder.report.render import finalize_markdown, markdown_to_html, title_of
from deepfolder.request_model import parse_request
from deepfolder.runner.outputs import comparison_text, write_json, write_text
from deepfolder.runner.request import choose_run_dir, resolve_request
from deepfolder.runner.resume import (
    ResumePlan,
    mark_finished,
    mark_stopped,
    record_inputs,
    start_run_record,
)
from deepfolder.runner.revision import Revisor
from deepfolder.settings import Settings
from deepfolder.tools import available_tools
from deepfolder.tools.base import ToolContext
from deepfolder.trace.recorder import RunRecorder
from deepfolder.validate.command import write_evidence
from deepfolder.validate.length import count_length


@dataclass
class RunResult:
    run_dir: Path
    report_path: Path
    passed: bool
    failures: list[str]
    cut_short: bool
    error: str | None = None
    """Why the run produced no report (an empty final answer); None when it did."""


def choose_policy(settings: Settings, model: ChatModel) -> str:
    if settings.agent.policy != "auto":
        return settings.agent.policy
    return "pipeline" if model.is_local else "agent"


def run_task(
    folder: Path,
    request: str | None,
    settings: Settings,
    *,
    out: Path | None = None,
    model: ChatModel | None = None,
    console: Console | None = None,
    vision: ChatModel | None = None,
    resume: ResumePlan | None = None,
    on_run_dir: Callable[[Path], None] | None = None,
) -> RunResult:
    """Run one task end to end and write the run directory.

    ``model`` replaces the settings' chat model and ``vision`` the settings' vision model
    (``model.vision_model``); tests pass fake models here. ``resume`` continues an
    interrupted run in its own directory (``runner/resume.py``; folder, request and
    settings then come from the plan). ``on_run_dir`` is told the run directory as soon
    as it exists, so a caller can print the resume command when the run is stopped.
    """
    console = console or Console(stderr=True)
    if resume is not None:
        folder, request, settings = resume.folder, resume.request, resume.settings
    folder = folder.expanduser()
    if not folder.is_dir():
        from deepfolder.runner.request import RunSetupError

        raise RunSetupError(f"{folder} is not a folder; give the folder that holds the materials")
    request_text, request_origin = resolve_request(folder, request)
    if model is None:  # before any work, so a missing key or package fails at once
        from deepfolder.llm.registry import create_chat_model

        model = create_chat_model(settings)
    if resume is None:
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
        start_run_record(run_dir, folder, settings)  # last: a run.json means resumable
        console.print(f"[bold]deepfolder run[/] {folder} → {run_dir}")
    else:
        run_dir = resume.run_dir
        model = resume.wrap(model)  # recorded calls are answered from the trace
        console.print(f"[bold]deepfolder run --resume[/] {run_dir} ({folder})")
    if on_run_dir is not None:
        on_run_dir(run_dir)
    try:
        return _run_in(run_dir, folder, request_text, settings, model, console, vision, resume)
    except BaseException as exc:  # Ctrl-C, a model that stays down, our own bug
        mark_stopped(run_dir, f"{type(exc).__name__}: {exc}")
        raise


def _run_in(
    run_dir: Path,
    folder: Path,
    request_text: str,
    settings: Settings,
    model: ChatModel,
    console: Console,
    vision: ChatModel | None,
    resume: ResumePlan | None,
) -> RunResult:

    from deepfolder.ingest import ingest_folder
    from deepfolder.runner.progress import ingest_progress

    started = time.time()
    with ingest_progress(console) as progress:
        corpus = ingest_folder(folder, settings, progress=progress)
    if resume is None or not (run_dir / "ingest_report.json").exists():
        write_json(run_dir / "ingest_report.json", corpus.report.to_dict())
        record_inputs(run_dir, ((f.path, f.sha256) for f in corpus.report.files))
    failed = corpus.report.failures
    console.print(
        f"indexed {len(corpus.report.files) - len(failed)} file(s), {corpus.index.count()} passages "
        f"in {time.time() - started:.1f}s"
        + (f"; {len(failed)} failed (see ingest_report.json)" if failed else "")
    )

    constraints = parse_request(request_text)
    language = constraints.language
    ctx = ToolContext(
        index=corpus.index,
        settings=settings,
        folder=folder,
        run_dir=run_dir,
        index_dir=corpus.index_dir,
        data_files=list(corpus.data_files),
        language=language,
    )
    from deepfolder.analysis.sandbox import SandboxLimits

    a = settings.analysis
    ctx.sandbox_limits = SandboxLimits(
        wall_s=a.wall_s, cpu_s=a.cpu_s, memory_mb=a.memory_mb, output_chars=a.output_chars
    )
    if vision is None:
        vision = _vision_model(settings)
    if vision is not None:
        ctx.vision = resume.wrap(vision) if resume else vision
    tools = available_tools(ctx)
    policy = choose_policy(settings, model)
    from deepfolder.agent.brief import build_brief

    brief = build_brief(corpus.index, vision_available=vision is not None)
    for f in brief.unreadable:
        console.print(f"[yellow]{f.source.display_name}: {f.problem}[/]")

    recorder = RunRecorder(run_dir, console=console, price=_pricer(settings))
    if resume is not None:
        resume.attach(recorder)
    set_retry_listener(model, recorder.record_retry)  # retries are steps of the run
    if ctx.vision is not None:  # the vision model's calls belong in the trace too
        set_retry_listener(ctx.vision, recorder.record_retry)
        ctx.vision = RecordedModel(ctx.vision, recorder.record, "vision", lambda: recorder.turn)
    try:
        summary = corpus.summary()
        if brief.files:  # the user's own files, from the files themselves, with citations
            ctx.remember(brief.evidence)
            head = (
                "用户提供的文件（摘要）"
                if language.startswith("zh")
                else "The user's files (brief)"
            )
            summary += f"\n\n{head}:\n{brief.render(language)}"
        system = AGENT_SYSTEM.format(
            language_name=language_name(language), constraints=describe_constraints(constraints)
        )
        conv = Conversation(
            messages=[
                {"role": "system", "content": system},
                {"role": "user", "content": task_message(request_text, summary)},
            ]
        )
        recorder.record(
            TaskStep(turn=0, request=request_text, folder_summary=summary, policy=policy)
        )
        recorder.milestone(
            f"{policy} policy with {model.name}; tools: {', '.join(t.name for t in tools)}"
        )
        state = RunState(
            model=model,
            ctx=ctx,
            tools={t.name: t for t in tools},
            request=request_text,
            constraints=constraints,
            language=language,
            conv=conv,
            max_tokens=min(settings.model.max_output_tokens, 2048),
            brief=brief,
        )
        steps: Iterator[Step]
        if policy == "pipeline":
            steps = run_pipeline(state)
        else:
            steps = run_agent(
                model,
                tools,
                ctx,
                conv,
                max_turns=settings.agent.max_turns,
                max_input_tokens=settings.agent.max_input_tokens_per_run,
                keep_recent=settings.agent.tool_result_keep_recent,
                max_tokens=settings.model.max_output_tokens,
            )
        final = _final_answer(steps, recorder)
        if not final.text.strip():
            error = (
                f"the model's final answer was empty ({final.reason or 'no reason given'}); "
                f"no report was written. The trace is kept in {run_dir}"
            )
            recorder.record(NoteStep(turn=final.turn, message=error, level="error"))
            recorder.append_turns_block("Run failed", [error])
            return RunResult(run_dir, run_dir / "report.md", False, [error], True, error)
        recorder.milestone(f"draft written ({len(final.text)} characters); validating")

        def citable(eid: str) -> Evidence | None:
            return ctx.seen.get(eid) or ctx.created.get(eid)

        original_md, _ = finalize_markdown(
            final.text, citable, language, constraints.reference_section
        )
        write_text(run_dir / "report.original.md", original_md)

        revisor = Revisor(
            state=state,
            policy=policy,
            recorder=recorder,
            citable=citable,
            run_dir=run_dir,
            judge=_judge(settings, model),
            settings=settings,
        )
        final_raw, validation = revisor.validate_and_revise(final.text)
        final_md, rendered = finalize_markdown(
            final_raw, citable, language, constraints.reference_section
        )
        if rendered.dropped:
            recorder.record(
                NoteStep(
                    turn=recorder.turn,
                    level="warning",
                    message=f"removed {len(rendered.dropped)} citation(s) to ids never returned in this run: "
                    + ", ".join(sorted(set(rendered.dropped))[:10]),
                )
            )
        write_text(run_dir / "report.md", final_md)
        title = title_of(final_md, "deepfolder report")
        write_text(
            run_dir / "report.html",
            markdown_to_html(final_md, title=title, base_dir=run_dir, language=language),
        )
        unit = (
            constraints.length.unit
            if constraints.length
            else ("字" if language == "zh" else "words")
        )
        write_text(
            run_dir / "comparison.txt",
            comparison_text(original_md, final_md, lambda t: f"{count_length(t, unit)} {unit}"),
        )
        # every evidence shown to the model or created by its tools, for `deepfolder check`
        shown_or_made = {**ctx.created, **ctx.seen}
        write_evidence(run_dir / "evidence.jsonl", list(shown_or_made.values()), set(ctx.seen))
        write_json(run_dir / "validation.json", validation.to_dict())
        failures = list(validation.failures)
        recorder.append_turns_block(
            "Validation (final)",
            failures if failures else ["all checks passed"],
        )
        if final.cut_short:
            recorder.append_turns_block("Run cut short", [final.reason])
    except ModelError as exc:  # the endpoint failed after its retries: say where the trace is
        failed_turn = recorder.turn + 1  # the call that failed, as its retries are numbered
        recorder.record(NoteStep(turn=failed_turn, message=f"model error: {exc}", level="error"))
        recorder.append_turns_block("Run failed", [f"model error: {exc}"])
        raise ModelError(f"{exc} (the trace is kept in {run_dir})") from exc
    finally:
        if ctx.sandbox is not None:  # the run's own analysis worker
            with contextlib.suppress(Exception):  # closing must not hide the report
                ctx.sandbox.close()
        corpus.close()
        recorder.close()
    report_path = run_dir / ("report.html" if constraints.format == "html" else "report.md")
    if resume is not None:
        resume.record_outcome()
        o = resume.outcome()
        console.print(
            f"resumed: {o['replayed_model_calls']} model call(s) replayed from the trace, "
            f"{o['new_model_calls']} new"
        )
    mark_finished(run_dir, report_path)
    return RunResult(run_dir, report_path, not failures, failures, final.cut_short)


def _final_answer(steps: Iterator[Step], recorder: RunRecorder) -> FinalAnswerStep:
    """Record the policy's steps; its final answer (an empty one when it gave none)."""
    final: FinalAnswerStep | None = None
    for step in steps:
        recorder.record(step)
        if isinstance(step, FinalAnswerStep):
            final = step
    if final is None:
        final = FinalAnswerStep(turn=recorder.turn, text="", cut_short=True, reason="no answer")
        recorder.record(final)
    return final


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


def _judge(settings: Settings, model: ChatModel) -> ChatModel | None:
    mode = settings.validate_.support_judge
    if mode == "model" or (mode == "auto" and not model.is_local):
        return model
    return None
