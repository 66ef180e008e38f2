"""``deepfolder run``: folder + request → checked, cited report and a full record.

:func:`run_task` is the sequence of a run's stages (``runner/session.py``): open the
run directory (never inside the input folder) → prepare (ingest, tools, brief) → draft
(agent loop or pipeline) → validate ⇄ revise → write every output file.

Two ways a run fails without a report, both keeping the trace, turns.txt and usage.json:
a :class:`ModelError` (the endpoint failed after its retries) is re-raised naming the run
directory; an empty final answer returns a failed :class:`RunResult` whose ``error``
says why, and no report.md is written. Any exception that ends a run (Ctrl-C too) marks
it ``stopped`` in ``run.json``, so ``deepfolder run --resume`` can continue it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from rich.console import Console

from deepfolder.agent.task_material import MaterialEntry
from deepfolder.llm.base import ChatModel, ModelError
from deepfolder.runner.resume import ResumePlan, mark_stopped
from deepfolder.runner.session import open_run, prepare
from deepfolder.settings import Settings


@dataclass
class RunResult:
    run_dir: Path
    report_path: Path
    passed: bool
    failures: list[str]
    cut_short: bool
    error: str | None = None
    """Why the run produced no report (an empty final answer); None when it did."""


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
    material: list[MaterialEntry] | None = None,
) -> RunResult:
    """Run one task end to end and write the run directory.

    ``model`` replaces the settings' chat model and ``vision`` the settings' vision model
    (``model.vision_model``); tests pass fake models here. ``resume`` continues an
    interrupted run in its own directory (``runner/resume.py``; folder, request and
    settings then come from the plan). ``on_run_dir`` is told the run directory as soon
    as it exists, so a caller can print the resume command when the run is stopped.
    ``material`` is the task's description of its files (``agent/task_material.py``).
    """
    console = console or Console(stderr=True)
    setup = open_run(
        folder,
        request,
        settings,
        out=out,
        model=model,
        console=console,
        resume=resume,
        material=material,
    )
    run_dir = setup.run_dir
    if on_run_dir is not None:
        on_run_dir(run_dir)
    try:
        run = prepare(setup, vision)
        try:
            final = run.draft()
            if not final.text.strip():
                error = run.no_report(final)
                return RunResult(run_dir, run_dir / "report.md", False, [error], True, error)
            original_md = run.keep_original(final.text)
            revised, validation = run.revise(final.text)
            failures = run.write_outputs(original_md, revised, validation, final)
        except ModelError as exc:  # the endpoint failed after its retries: say where the trace is
            raise run.model_failed(exc) from exc
        finally:
            run.close()
        return RunResult(run_dir, run.finish(), not failures, failures, final.cut_short)
    except BaseException as exc:  # Ctrl-C, a model that stays down, our own bug
        mark_stopped(run_dir, f"{type(exc).__name__}: {exc}")
        raise
