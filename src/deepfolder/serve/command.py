"""``deepfolder serve``'s options and its start: check the host and token, print the
address, run the server. Imports the web framework only when the server starts, so the
rest of the command line works without the ``serve`` extra."""

from __future__ import annotations

import argparse
import importlib.util
from pathlib import Path

from rich.console import Console

DEFAULT_PORT = 8765
SERVE_MODULES = ("fastapi", "uvicorn", "sse_starlette")


class ServeSetupError(Exception):
    """The server cannot start as asked; the message says what to do."""


def add_serve_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "runs",
        type=Path,
        nargs="*",
        metavar="RUNS_DIR",
        help="run or batch directories, or directories holding them (runs/ is always "
        "listed too); new runs are written into the first (default runs/)",
    )
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=DEFAULT_PORT, help=f"port (default {DEFAULT_PORT})")
    p.add_argument(
        "--token",
        help="required on every request (?token=… once, then a cookie); with a host other "
        "than loopback one is generated and printed when not given",
    )
    p.add_argument(
        "--folder",
        type=Path,
        action="append",
        default=[],
        metavar="DIR",
        help="an input folder the New-run page may start runs on (repeatable)",
    )
    p.add_argument("--model", default="", help="the model the New-run page suggests")


def forwarded_settings(args: argparse.Namespace) -> list[str]:
    """The settings options of ``serve`` given again to every run it starts."""
    out: list[str] = []
    if getattr(args, "config", None):
        out += ["--config", str(Path(args.config).resolve())]
    if getattr(args, "preset", "default") != "default":
        out += ["--preset", args.preset]
    if getattr(args, "cache_dir", None):
        out += ["--cache-dir", str(Path(args.cache_dir).resolve())]
    if getattr(args, "no_dense", False):
        out.append("--no-dense")
    return out


def run_serve(args: argparse.Namespace, console: Console) -> int:
    missing = [m for m in SERVE_MODULES if importlib.util.find_spec(m) is None]
    if missing:
        raise ServeSetupError(
            f"deepfolder serve needs {', '.join(missing)}: pip install 'deepfolder[serve]'"
        )
    from deepfolder.serve.app import ServeConfig, new_token, serve
    from deepfolder.settings import is_loopback

    roots = [Path(r) for r in args.runs] or [Path("runs")]
    default = Path("runs")
    if default.is_dir() and all(r.resolve() != default.resolve() for r in roots):
        roots.append(default)  # the default place of runs is always listed too
    for folder in args.folder:
        if not folder.is_dir():
            raise ServeSetupError(f"--folder {folder}: not a directory")
    token = args.token
    if token is None and not is_loopback(args.host):
        token = new_token()
    config = ServeConfig(
        roots=roots,
        folders=list(args.folder),
        token=token,
        model=args.model,
        run_args=forwarded_settings(args),
    )
    shown = f"[{args.host}]" if ":" in args.host else args.host
    address = f"http://{shown}:{args.port}/" + (f"?token={token}" if token else "")
    console.print(f"deepfolder serve: {address}  (Ctrl-C to stop)")
    console.print("runs from: " + ", ".join(str(r) for r in roots))
    serve(config, args.host, args.port)
    return 0
