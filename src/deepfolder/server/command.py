"""``deepfolder mcp FOLDER [--transport stdio|http] [--host H] [--port N]``.

Its arguments and the start of the server. This module imports nothing of the ``mcp``
SDK at module level, so ``deepfolder --help`` works without the extra; without it,
``deepfolder mcp`` says which extra to install.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.markup import escape

from deepfolder.settings import Settings

TOKEN_ENV = "DEEPFOLDER_MCP_TOKEN"


def add_mcp_parser(sub: Any) -> argparse.ArgumentParser:
    p: argparse.ArgumentParser = sub.add_parser(
        "mcp",
        help="serve a folder's search, reading, checking and research tools over MCP",
        description="Serve FOLDER to MCP clients (desktop assistants, IDE agents): the tools "
        "search, read, list_sources, count_length (and inspect_image, inspect_video, "
        "transcript when the folder has such files), check_report and research, and each "
        "source as a resource. The folder is indexed (cached) as the server starts and "
        "is never written to. stdio by default; --transport http serves streamable HTTP "
        f"at http://HOST:PORT/mcp, on 127.0.0.1 unless --host says otherwise (then ${TOKEN_ENV} "
        "must hold a bearer token every request carries).",
    )
    p.add_argument("folder", type=Path, help="folder of materials (never written to)")
    p.add_argument("--transport", choices=["stdio", "http"], default="stdio")
    p.add_argument("--host", default="127.0.0.1", help="HTTP: address to listen on")
    p.add_argument("--port", type=int, default=8765, help="HTTP: port to listen on")
    p.add_argument(
        "--runs",
        type=Path,
        help="where research() writes its run directories (default <cache>/runs)",
    )
    p.add_argument(
        "--language",
        choices=["en", "zh"],
        default="en",
        help="language of the locator labels in results (p. 2 / 第2页)",
    )
    return p


def serve_mcp(args: argparse.Namespace, settings: Settings, console: Console) -> int:
    """Start the server; returns the exit status when it stops (2: cannot start)."""
    try:
        from deepfolder.server.app import serve_http, serve_stdio
        from deepfolder.server.folder import FolderService
        from deepfolder.settings import is_loopback
    except ImportError as exc:
        console.print(
            f"[red]error:[/] deepfolder mcp needs the 'mcp' extra: pip install "
            f"'deepfolder[mcp]' ({escape(str(exc))})"
        )
        return 2
    token = os.environ.get(TOKEN_ENV) or None
    if args.transport == "http" and not is_loopback(args.host) and token is None:
        console.print(
            f"[red]error:[/] --host {escape(args.host)} is not a loopback address: set "
            f"{TOKEN_ENV} to a bearer token the clients will send"
        )
        return 2
    try:
        service = FolderService(args.folder, settings, runs_dir=args.runs, language=args.language)
    except ValueError as exc:
        console.print(f"[red]error:[/] {escape(str(exc))}")
        return 2
    service.start()
    try:
        if args.transport == "http":
            console.print(f"deepfolder mcp: http://{args.host}:{args.port}/mcp ({service.folder})")
            serve_http(service, args.host, args.port, token)
        else:
            import anyio

            anyio.run(serve_stdio, service)
    finally:
        service.close()
    return 0
