"""``deepfolder eval reports PATH... [--judge MODEL] [--compare OTHER...] [--out DIR]``.

Measures every run of the given run or batch directories (:mod:`.reports`), asks the
judge when one is given (:mod:`.judge`), lines up two sets of runs by task when
``--compare`` is given (:mod:`.compare`), prints the tables and writes ``eval.json``,
``eval.md`` and ``eval.html`` (:mod:`.reports_output`) into the output directory; the
judge's calls go to ``OUT/judge/`` (``trace.jsonl``, ``turns.txt``, ``usage.json``).
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rich.console import Console

from deepfolder.eval.compare import RESAMPLES, SEED, compare_runs
from deepfolder.eval.judge import Judge, JudgeCache, RunMaterial, task_material
from deepfolder.eval.reports import EvalInputError, RunEval, evaluate_run, find_runs, load_run
from deepfolder.eval.reports_output import (
    better,
    charts,
    html_report,
    markdown_report,
    metric_keys,
    print_tables,
    summary,
)
from deepfolder.llm.base import ChatModel
from deepfolder.settings import Settings
from deepfolder.trace.recorder import RunRecorder
from deepfolder.validate.checks import ValidationReport


@dataclass(frozen=True, slots=True)
class EvalOptions:
    judge_claims: int = 20
    material_chars: int = 4000
    resamples: int = RESAMPLES
    seed: int = SEED


def add_report_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("paths", type=Path, nargs="+", metavar="PATH", help="run or batch directories")
    p.add_argument(
        "--compare",
        type=Path,
        nargs="+",
        metavar="OTHER",
        help="the baseline: run or batch directories to compare PATH's runs with, by task "
        "(Δ = PATH − OTHER)",
    )
    p.add_argument("--out", type=Path, help="output directory (default runs/eval-<time>/)")
    p.add_argument("--label", help="name of PATH's runs in the tables (default: the paths)")
    p.add_argument("--compare-label", help="name of the baseline's runs (default: the paths)")
    p.add_argument(
        "--judge",
        metavar="MODEL",
        help="also score IR, FA, CC, IF, DQ with this model: 'provider:model' or 'embedded'",
    )
    p.add_argument("--judge-base-url", help="OpenAI-compatible base URL of the judge")
    p.add_argument("--judge-api-key-env", help="environment variable holding the judge's key")
    p.add_argument(
        "--judge-cache",
        type=Path,
        help="judge results cache (default CACHE_DIR/eval-judge)",
    )
    p.add_argument(
        "--judge-claims", type=int, default=20, help="cited claims the judge checks per report"
    )
    p.add_argument(
        "--material-chars",
        type=int,
        default=4000,
        help="characters of the user's files the judge reads for the key points",
    )
    p.add_argument(
        "--resamples", type=int, default=RESAMPLES, help="bootstrap resamples (--compare)"
    )
    p.add_argument("--seed", type=int, default=SEED, help="bootstrap seed (--compare)")


def judge_settings(settings: Settings, args: argparse.Namespace) -> Settings:
    """The settings with the judge as the model, at temperature 0."""
    update: dict[str, Any] = {"model": args.judge, "temperature": 0.0}
    if args.judge_base_url:
        update["base_url"] = args.judge_base_url
    if args.judge_api_key_env:
        update["api_key_env"] = args.judge_api_key_env
    return settings.model_copy(update={"model": settings.model.model_copy(update=update)})


def run_reports_from_args(args: argparse.Namespace, settings: Settings, console: Console) -> int:
    judge_model: ChatModel | None = None
    if args.judge:
        from deepfolder.llm.registry import create_chat_model

        settings = judge_settings(settings, args)
        judge_model = create_chat_model(settings)
    out = args.out or Path("runs") / f"eval-{time.strftime('%Y%m%d-%H%M%S')}"
    cache = args.judge_cache or settings.cache_path() / "eval-judge"
    options = EvalOptions(args.judge_claims, args.material_chars, args.resamples, args.seed)
    run_reports(
        args.paths,
        args.compare,
        out,
        labels=(args.label, args.compare_label),
        console=console,
        judge_model=judge_model,
        judge_cache=cache,
        settings=settings,
        options=options,
    )
    return 0


def _set_name(paths: Sequence[Path]) -> str:
    names = [Path(p).resolve().name or str(p) for p in paths]
    return "+".join(names) if len(names) <= 3 else f"{names[0]}+{len(names) - 1} more"


def measure_set(
    paths: Sequence[Path],
) -> tuple[list[RunEval], dict[str, ValidationReport]]:
    """Every run of ``paths`` measured, and each run's re-validation by its directory."""
    runs: list[RunEval] = []
    validations: dict[str, ValidationReport] = {}
    seen: dict[str, str] = {}
    for path in paths:
        for task, run_dir, missing in find_runs(path):
            if task in seen:
                raise EvalInputError(
                    f"task {task!r} appears twice on one side ({seen[task]} and {run_dir}); "
                    "give each set of runs once, the other with --compare"
                )
            seen[task] = str(run_dir)
            if missing:
                runs.append(RunEval(task, str(run_dir), error=missing))
                continue
            run, validation = evaluate_run(task, run_dir)
            runs.append(run)
            validations[str(run_dir)] = validation
    return runs, validations


def judge_runs(
    judge: Judge,
    runs: Sequence[RunEval],
    validations: dict[str, ValidationReport],
    material_chars: int,
) -> None:
    """Key points once per task (from all its runs' material), then each run's scores."""
    by_task: dict[str, list[RunEval]] = {}
    for run in runs:
        if not run.error:
            by_task.setdefault(run.task, []).append(run)
    for task, task_runs in by_task.items():
        dirs = [Path(r.run_dir) for r in task_runs]
        material, origin = task_material(dirs, material_chars)
        request = load_run(dirs[0])[1]
        points = judge.key_points(task, request, material)
        for run in task_runs:
            report, request, evidence, _, _ = load_run(Path(run.run_dir))
            found = RunMaterial(
                task,
                request,
                report,
                evidence,
                validations[run.run_dir],
                run.details.get("user_files", []),
                material,
            )
            run.judge = {**judge.score_run(found, points), "material_from": origin}


def run_reports(
    paths: Sequence[Path],
    compare: Sequence[Path] | None,
    out: Path,
    *,
    labels: tuple[str | None, str | None] = (None, None),
    console: Console,
    judge_model: ChatModel | None = None,
    judge_cache: Path | None = None,
    settings: Settings | None = None,
    options: EvalOptions | None = None,
) -> dict[str, Any]:
    """Measure, judge, compare and write everything; returns what ``eval.json`` holds."""
    options = options or EvalOptions()
    runs, validations = measure_set(paths)
    sets: list[tuple[str, list[RunEval]]] = [(labels[0] or _set_name(paths), runs)]
    if compare:
        baseline, more = measure_set(compare)
        validations.update(more)
        name = labels[1] or _set_name(compare)
        sets.append((name if name != sets[0][0] else f"{name} (baseline)", baseline))
    out.mkdir(parents=True, exist_ok=True)
    judge_info = None
    if judge_model is not None:
        judge_info = _judge_all(judge_model, sets, validations, out, judge_cache, settings, options)
    comparison = None
    if compare:
        keys = metric_keys([r for _, rs in sets for r in rs])
        comparison = compare_runs(
            sets[0][1],
            sets[1][1],
            [(k, better(k)) for k in keys],
            resamples=options.resamples,
            seed=options.seed,
        )
    data = {
        "sets": [
            {
                "name": name,
                "runs": [r.to_dict() for r in rs],
                "means": summary(rs, metric_keys(rs)),
            }
            for name, rs in sets
        ],
        "comparison": comparison,
        "judge": judge_info,
    }
    (out / "eval.json").write_text(
        json.dumps(data, ensure_ascii=False, indent=2, default=str) + "\n", encoding="utf-8"
    )
    (out / "eval.md").write_text(markdown_report(sets, comparison, judge_info), encoding="utf-8")
    (out / "eval.html").write_text(
        html_report(sets, comparison, judge_info, charts(sets, comparison)), encoding="utf-8"
    )
    print_tables(console, sets, comparison)
    console.print(f"written: {out / 'eval.json'}, eval.md, eval.html")
    return data


def _judge_all(
    model: ChatModel,
    sets: Sequence[tuple[str, Sequence[RunEval]]],
    validations: dict[str, ValidationReport],
    out: Path,
    cache_dir: Path | None,
    settings: Settings | None,
    options: EvalOptions,
) -> dict[str, Any]:
    from deepfolder.llm.pricing import cost_of

    judge_dir = out / "judge"
    judge_dir.mkdir(parents=True, exist_ok=True)
    recorder = RunRecorder(
        judge_dir,
        price=lambda name, usage: cost_of(name, usage, settings),
        live=False,
    )
    judge = Judge(
        model,
        JudgeCache(cache_dir or out / "judge-cache"),
        recorder.record,
        max_claims=options.judge_claims,
    )
    try:
        judge_runs(judge, [r for _, rs in sets for r in rs], validations, options.material_chars)
    finally:
        recorder.close()
    return {**judge.version, "calls": judge.calls, "cache_hits": judge.cache_hits}
