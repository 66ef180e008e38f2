"""The ``deepfolder`` command line. ``main(argv) -> int`` is tested in-process."""

from __future__ import annotations

import argparse
import signal
import sys
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.markup import escape

from deepfolder import __version__

EPILOG = """\
Models: with nothing configured, deepfolder runs an embedded local model (Qwen2.5-Coder
1.5B Instruct, carried in PyPI packages) on the CPU. To use an endpoint, pass
--model provider:model (openai, deepseek, qwen, vllm, sglang, ollama, llamacpp,
openrouter, custom) and set its key, e.g. OPENAI_API_KEY, DEEPSEEK_API_KEY,
DASHSCOPE_API_KEY or DEEPFOLDER_API_KEY; --base-url for self-hosted servers.
Settings can also come from a JSON config file (--config, $DEEPFOLDER_CONFIG or
~/.config/deepfolder/config.json) and DEEPFOLDER_* environment variables; a key or
variable deepfolder does not know is an error that names the nearest valid one.
"""


def _add_settings_args(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("settings")
    g.add_argument("--config", type=Path, help="JSON settings file (see docs/settings.md)")
    g.add_argument("--preset", default="default", help="named preset: default, fast, thorough")
    g.add_argument("--cache-dir", help="index and model cache (default ~/.cache/deepfolder)")
    g.add_argument("--no-dense", action="store_true", help="lexical search only (no embeddings)")


def _add_model_args(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("model")
    g.add_argument("--model", help="'provider:model' or 'embedded' (default: embedded)")
    g.add_argument("--base-url", help="OpenAI-compatible base URL for the model")
    g.add_argument("--api-key-env", help="environment variable holding the API key")
    g.add_argument("--vision-model", help="'provider:model' of a vision-capable model")
    g.add_argument("--threads", type=int, help="CPU threads for the embedded model")
    g.add_argument(
        "--embedded-model",
        choices=["qwen2.5-coder-1.5b", "qwen2.5-coder-0.5b"],
        help="which packaged local model to run",
    )


def _add_policy_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--policy", choices=["auto", "agent", "pipeline"], help="agent loop or pipeline")
    p.add_argument("--max-turns", type=int, help="model turns before the agent must answer")
    p.add_argument("--max-revisions", type=int, help="validation/revision rounds")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="deepfolder",
        description="Research over a local folder: index it, let an LLM agent search and read "
        "it, write a cited report, and check every citation and constraint.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"deepfolder {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    run = sub.add_parser(
        "run",
        help="write a cited report on a folder for a request",
        description="Index FOLDER, research REQUEST with the agent (or the section pipeline "
        "for small local models), validate and revise, and write the run directory: "
        "report.md, report.html, report.original.md, comparison.txt, validation.json, "
        "trace.jsonl, turns.txt, usage.json, settings.json, evidence.jsonl. Exit status: 0 "
        "with a report; 1 with --strict when checks still fail; 2 for a usage or setup "
        "error; 3 when the model endpoint failed after its retries or the model's final "
        "answer was empty (no report is written; the trace is kept).",
    )
    run.add_argument("folder", type=Path, nargs="?", help="folder of materials (never written to)")
    run.add_argument(
        "request",
        nargs="?",
        help="the request; default: FOLDER/query.txt, or the entry for FOLDER's name in a "
        "query.jsonl beside FOLDER",
    )
    run.add_argument("--out", type=Path, help="run directory (default runs/<folder>-<time>/)")
    _add_policy_args(run)
    run.add_argument("--strict", action="store_true", help="exit 1 when validation still fails")
    run.add_argument(
        "--resume",
        type=Path,
        metavar="RUN_DIR",
        help="continue an interrupted run in RUN_DIR (its folder, request and settings); "
        "recorded model calls are replayed, not sent again",
    )
    run.add_argument(
        "--material-notes",
        type=Path,
        metavar="FILE",
        help="a JSON list of the task's descriptions of its files ([{name, type, "
        "description}], a benchmark's multimodal entries): a file in the folder gets its "
        "description in the brief; one not there becomes a source of its own, cited as "
        "the task's description, and the report says it was missing (default: the "
        "multimodal entries of the query.jsonl line the request comes from)",
    )
    run.add_argument(
        "--force",
        action="store_true",
        help="with --resume: resume even when the settings or the folder's files changed "
        "(recorded in the trace)",
    )
    _add_model_args(run)
    _add_settings_args(run)

    batch = sub.add_parser(
        "batch",
        help="run many tasks with the same settings, one run directory each (resumable)",
        description="Run every task of CASES_DIR: a benchmark's layout (query.jsonl beside "
        "the task folders) or a folder of task folders each holding query.txt. Writes "
        "BATCH_DIR/batch.json (the state of every task), runs/TASK/ (one run directory per "
        "task), logs/TASK.log, and summary.md, summary.csv and summary.json. A task's "
        "crash, bad folder or timeout is recorded and the batch goes on. Exit status: 0 "
        "when every task is done; 1 when some failed or timed out; 2 for a usage or setup "
        "error; 130 when interrupted (continue with --resume).",
    )
    batch.add_argument("cases", type=Path, metavar="CASES_DIR", help="the tasks (never written to)")
    batch.add_argument("--tasks", nargs="+", metavar="TASK", help="run only these tasks")
    batch.add_argument(
        "--out",
        type=Path,
        metavar="BATCH_DIR",
        help="batch directory (default runs/batch-<cases>-<time>/)",
    )
    batch.add_argument(
        "--jobs",
        type=int,
        metavar="N",
        help="tasks at once (default 1 with the embedded model, 4 with an endpoint)",
    )
    batch.add_argument(
        "--timeout-per-task",
        type=float,
        metavar="S",
        help="stop a task after S seconds (recorded as timed out; --resume continues it)",
    )
    batch.add_argument(
        "--engine",
        choices=("local", "ray"),
        help="local: worker processes on this machine (default); ray: each task a Ray "
        "task on a cluster (pip extra `ray`; see --ray-address)",
    )
    batch.add_argument(
        "--ray-address",
        metavar="ADDR",
        help="with --engine ray: the cluster to join (host:port of its head, or "
        "ray://host:10001); default: $RAY_ADDRESS, else a local Ray instance",
    )
    batch.add_argument(
        "--resume",
        action="store_true",
        help="continue the batch in --out (default: the newest batch of CASES_DIR under "
        "runs/): done tasks are skipped, interrupted runs continue with run --resume",
    )
    _add_policy_args(batch)
    _add_model_args(batch)
    _add_settings_args(batch)

    ingest = sub.add_parser(
        "ingest",
        help="build or refresh the index of a folder (incremental)",
        description="Scan, extract and index FOLDER into the cache; unchanged files are not "
        "re-processed. Prints files by kind, passages, failures and time per phase.",
    )
    ingest.add_argument("folder", type=Path)
    _add_settings_args(ingest)

    search = sub.add_parser(
        "search",
        help="search a folder the way the agent's search tool does",
        description="Ingest FOLDER if needed, then print what the agent's search tool returns.",
    )
    search.add_argument("folder", type=Path)
    search.add_argument("query")
    search.add_argument("-k", type=int, default=8, help="number of results")
    search.add_argument("--mode", choices=["hybrid", "lexical", "dense"], help="search mode")
    search.add_argument("--source", action="append", help="only this source (repeatable)")
    _add_settings_args(search)

    check = sub.add_parser(
        "check",
        help="re-run the validator on a finished run (or a bare report file)",
        description="Validate RUN_DIR/report.md (or a report file given with --request) and "
        "write validation.json beside it. Exits 1 when any check fails.",
    )
    check.add_argument("path", type=Path, help="a run directory, or a report file with --request")
    check.add_argument("--request", help="the request (default: the run's request.txt)")

    from deepfolder.server.command import add_mcp_parser

    add_mcp_parser(sub)
    _add_model_args(sub.choices["mcp"])
    _add_settings_args(sub.choices["mcp"])

    ev = sub.add_parser("eval", help="built-in evaluations", description="Built-in evaluations.")
    ev_sub = ev.add_subparsers(dest="eval_command", metavar="WHAT")
    er = ev_sub.add_parser(
        "retrieval",
        help="recall@k / MRR / latency of search on SQuAD/CMRC-format data",
        description="Each passage of DATA becomes a document chunked by the normal chunker; "
        "a question is found at rank k when a result at rank <= k comes from its passage and "
        "contains a gold answer. Prints one row per mode: recall@k, MRR, latency p50/p95.",
    )
    from deepfolder.eval.retrieval import add_eval_arguments

    add_eval_arguments(er)
    _add_settings_args(er)

    rep = ev_sub.add_parser(
        "reports",
        help="measure finished reports (no model needed); --judge, --compare",
        description="Measure every run of PATH (run or batch directories) without a model: "
        "instruction checks, length, citations and their support, coverage of the user's "
        "files, repetition, language, cost. --judge adds IR, FA, CC, IF, DQ scores (0-100) "
        "from a judge model; --compare lines up a baseline's runs by task with deltas, "
        "win/tie/loss and paired bootstrap 95% intervals. Prints the table and writes "
        "eval.json, eval.md and eval.html (with charts) to --out.",
    )
    from deepfolder.eval.reports_command import add_report_arguments

    add_report_arguments(rep)
    _add_settings_args(rep)

    sv = sub.add_parser(
        "serve",
        help="browse runs in a local web viewer: every citation opens its evidence",
        description="A local web app over run and batch directories: reports whose "
        "citations open the cited PDF page, video second, sheet rows or passage; checks; "
        "the trace; new runs started and watched live. Binds 127.0.0.1 by default; any "
        "other host needs a token. The settings options are given to every run it starts.",
    )
    from deepfolder.serve.command import add_serve_arguments

    add_serve_arguments(sv)
    _add_settings_args(sv)
    return parser


def _settings_from(args: argparse.Namespace) -> Any:
    from deepfolder.settings import load_settings

    return load_settings(preset=args.preset, config_path=args.config, overrides=_overrides(args))


def _overrides(args: argparse.Namespace) -> dict[str, Any]:
    """The settings given explicitly on the command line."""
    overrides: dict[str, Any] = {}

    def put(section: str, key: str, value: Any) -> None:
        if value is not None:
            overrides.setdefault(section, {})[key] = value

    put("model", "model", getattr(args, "model", None))
    put("model", "base_url", getattr(args, "base_url", None))
    put("model", "api_key_env", getattr(args, "api_key_env", None))
    put("model", "vision_model", getattr(args, "vision_model", None))
    put("embedded", "n_threads", getattr(args, "threads", None))
    put("embedded", "name", getattr(args, "embedded_model", None))
    put("agent", "policy", getattr(args, "policy", None))
    put("agent", "max_turns", getattr(args, "max_turns", None))
    put("validate", "max_revisions", getattr(args, "max_revisions", None))
    if getattr(args, "no_dense", False):
        put("retrieval", "dense", False)
    if getattr(args, "cache_dir", None):
        overrides["cache_dir"] = args.cache_dir
    return overrides


def _cmd_run(args: argparse.Namespace, console: Console) -> int:
    from deepfolder.llm.base import ModelError
    from deepfolder.runner.resume import FinishedRun, prepare_resume, resume_command
    from deepfolder.runner.run import run_task

    run_dirs: list[Path] = []
    try:
        if args.resume is not None:
            if args.folder is not None or args.out is not None or args.material_notes:
                raise _UserError(
                    "--resume takes only the run directory: its folder, request, material "
                    "notes and output directory are the run's own"
                )
            plan = prepare_resume(args.resume, _overrides(args), force=args.force)
            if isinstance(plan, FinishedRun):
                console.print(
                    f"{plan.run_dir} already finished; nothing to do (report: {plan.report_path})"
                )
                return 0
            result = run_task(
                plan.folder,
                None,
                plan.settings,
                console=console,
                resume=plan,
                on_run_dir=run_dirs.append,
            )
        else:
            if args.folder is None:
                raise _UserError("give the folder of materials, or --resume RUN_DIR")
            result = run_task(
                args.folder,
                args.request,
                _settings_from(args),
                out=args.out,
                console=console,
                on_run_dir=run_dirs.append,
                material=_material_entries(args.material_notes),
            )
    except KeyboardInterrupt:
        console.print("\n[yellow]interrupted[/]: the trace is complete up to the last step")
        for run_dir in run_dirs:
            console.print(f"resume with: {resume_command(run_dir)}")
        return 130
    except ModelError as exc:
        console.print(f"[red]model error:[/] {exc}")
        for run_dir in run_dirs:
            console.print(f"the trace is intact; resume with: {resume_command(run_dir)}")
        return 3
    if result.error:  # no report: the model gave nothing to report
        console.print(f"[red]model error:[/] {result.error}")
        for run_dir in run_dirs:
            console.print(f"the trace is intact; resume with: {resume_command(run_dir)}")
        return 3
    console.print(f"\n[bold green]report:[/] {result.report_path}")
    if result.failures:
        console.print(
            f"[red]validation FAILED[/]: {len(result.failures)} check(s) still failing "
            "(validation.json):"
        )
        for failure in result.failures[:10]:
            console.print(f"  - {failure}")
    else:
        console.print("[green]all checks passed[/]")
    if result.cut_short:
        console.print("[yellow]the run was cut short; see turns.txt[/]")
    return 1 if args.strict and result.failures else 0


def _material_entries(path: Path | None) -> list[Any] | None:
    from deepfolder.agent.task_material import read_entries

    if path is None:
        return None  # the run may find them itself, beside its request in query.jsonl
    try:
        return read_entries(path)
    except ValueError as exc:
        raise _UserError(str(exc)) from exc


def _cmd_batch(args: argparse.Namespace, console: Console) -> int:
    from deepfolder.runner.batch import resume_batch, start_batch

    command = ["deepfolder", *args.argv]
    if args.resume:
        if args.tasks:
            raise _UserError("--resume continues the batch's own tasks; leave out --tasks")
        if _overrides(args) or args.config is not None or args.preset != "default":
            raise _UserError(
                "--resume runs with the batch's own settings (BATCH_DIR/config.json); leave "
                "out the model and settings options"
            )
        return resume_batch(
            args.cases,
            args.out,
            jobs=args.jobs,
            timeout_s=args.timeout_per_task,
            command=command,
            console=console,
            engine=args.engine,
            ray_address=args.ray_address,
        )
    return start_batch(
        args.cases,
        _settings_from(args),
        out=args.out,
        only=args.tasks,
        jobs=args.jobs,
        timeout_s=args.timeout_per_task,
        command=command,
        console=console,
        engine=args.engine or "local",
        ray_address=args.ray_address,
    )


def _open_corpus(args: argparse.Namespace, console: Console) -> Any:
    from deepfolder.ingest import ingest_folder
    from deepfolder.runner.progress import ingest_progress

    if not args.folder.is_dir():
        raise _UserError(f"{args.folder} is not a folder")
    settings = _settings_from(args)
    with ingest_progress(console) as progress:
        return ingest_folder(args.folder, settings, progress=progress), settings


def _cmd_ingest(args: argparse.Namespace, console: Console) -> int:
    from deepfolder.ingest import format_ingest_table

    corpus, _ = _open_corpus(args, console)
    console.print(format_ingest_table(corpus.report))
    console.print(f"index: {corpus.index_dir} ({corpus.index.count()} passages)")
    return 0


def _cmd_search(args: argparse.Namespace, console: Console) -> int:
    from deepfolder.tools.base import ToolContext
    from deepfolder.tools.search import search

    corpus, settings = _open_corpus(args, console)
    from deepfolder.request_model import detect_language

    ctx = ToolContext(
        index=corpus.index,
        settings=settings,
        folder=args.folder,
        index_dir=corpus.index_dir,
        language=detect_language(args.query),
    )
    arguments: dict[str, Any] = {"query": args.query, "k": args.k}
    if args.mode:
        arguments["mode"] = args.mode
    if args.source:
        arguments["sources"] = args.source
    out = search(ctx, arguments)
    print(out.text)  # results on stdout, progress on stderr
    return 0


def _cmd_check(args: argparse.Namespace, console: Console) -> int:
    from deepfolder.validate.command import check_run_dir

    _, code = check_run_dir(args.path, args.request, console=console)
    return code


def _cmd_eval(args: argparse.Namespace, console: Console) -> int:
    if args.eval_command == "reports":
        from deepfolder.eval.reports import EvalInputError
        from deepfolder.eval.reports_command import run_reports_from_args

        try:
            return run_reports_from_args(args, _settings_from(args), console)
        except EvalInputError as exc:
            raise _UserError(str(exc)) from exc
    if args.eval_command != "retrieval":
        raise _UserError(
            "say what to evaluate: deepfolder eval retrieval DATA.json, or deepfolder eval "
            "reports RUN_OR_BATCH_DIR..."
        )
    from deepfolder.eval.retrieval import run_eval_from_args

    return int(run_eval_from_args(args, _settings_from(args)) or 0)


def _cmd_serve(args: argparse.Namespace, console: Console) -> int:
    from deepfolder.serve.command import ServeSetupError, run_serve

    try:
        return run_serve(args, console)
    except ServeSetupError as exc:
        raise _UserError(str(exc)) from exc


class _UserError(Exception):
    pass


def _cmd_mcp(args: argparse.Namespace, console: Console) -> int:
    from deepfolder.server.command import serve_mcp

    return serve_mcp(args, _settings_from(args), console)


COMMANDS = {
    "run": _cmd_run,
    "batch": _cmd_batch,
    "ingest": _cmd_ingest,
    "search": _cmd_search,
    "check": _cmd_check,
    "eval": _cmd_eval,
    "mcp": _cmd_mcp,
    "serve": _cmd_serve,
}


def _stop_on_sigint() -> None:
    """Ctrl-C stops a run gracefully (exit 130, the resume command) however deepfolder
    was started: a shell starts background jobs with SIGINT ignored, and Python then
    leaves it ignored, so a batch's timeout, the viewer's cancel and ``kill -INT``
    (all SIGINT) were lost on a run or batch started that way."""
    if signal.getsignal(signal.SIGINT) == signal.SIG_IGN:
        signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})


def main(argv: list[str] | None = None) -> int:
    _stop_on_sigint()
    parser = build_parser()
    args = parser.parse_args(argv)
    args.argv = list(sys.argv[1:] if argv is None else argv)  # recorded by batch
    if not args.command:
        parser.print_help()
        return 2
    console = Console(stderr=True)
    from deepfolder.llm.base import ModelConfigError, ModelError
    from deepfolder.runner.request import RunSetupError
    from deepfolder.settings import SettingsError
    from deepfolder.validate.command import CheckError

    try:
        return COMMANDS[args.command](args, console)
    except (
        _UserError,
        RunSetupError,
        SettingsError,
        ModelConfigError,
        CheckError,
        FileNotFoundError,
    ) as exc:
        # escaped: rich would take "[type=…]" in pydantic's messages, or a path, for markup
        console.print(f"[red]error:[/] {escape(str(exc))}")
        return 2
    except ModelError as exc:
        console.print(f"[red]model error:[/] {exc}")
        return 3
    except KeyboardInterrupt:
        console.print("[yellow]interrupted[/]")
        return 130


if __name__ == "__main__":
    sys.exit(main())
