"""Where a task's request comes from, and where its run directory goes."""

from __future__ import annotations

import contextlib
import json
import time
from pathlib import Path
from typing import Any


class RunSetupError(ValueError):
    """The run cannot start; the message names the file or value and what to do."""


def resolve_request(folder: Path, request: str | None) -> tuple[str, str]:
    """The request text and where it came from.

    Order: the command line; ``FOLDER/query.txt``; a ``query.jsonl`` beside the folder
    whose ``task`` equals the folder's name (the benchmark's layout).
    """
    if request and request.strip():
        return request.strip(), "command line"
    query_txt = folder / "query.txt"
    if query_txt.is_file():
        text = query_txt.read_text(encoding="utf-8-sig").strip()
        if text:
            return text, str(query_txt)
    jsonl = folder.parent / "query.jsonl"
    if jsonl.is_file():
        for n, line in enumerate(jsonl.read_text(encoding="utf-8-sig").splitlines(), 1):
            if not line.strip():
                continue
            try:
                entry = json.loads(line)
            except json.JSONDecodeError as exc:
                raise RunSetupError(f"{jsonl}: line {n} is not valid JSON ({exc.msg})") from exc
            if str(entry.get("task")) == folder.name and entry.get("query"):
                return str(entry["query"]).strip(), f"{jsonl} (task {folder.name})"
    raise RunSetupError(
        f'no request for {folder}: pass it as an argument (deepfolder run FOLDER "REQUEST"), '
        f'or write it to {query_txt}, or add a line {{"task": "{folder.name}", "query": …}} '
        f"to {jsonl}"
    )


def query_jsonl_material(folder: Path) -> list[Any]:
    """The ``multimodal`` entries of the folder's line in the ``query.jsonl`` beside it
    (the benchmark's descriptions of the task's files); empty when there are none."""
    jsonl = folder.parent / "query.jsonl"
    for line in jsonl.read_text(encoding="utf-8-sig").splitlines():
        with contextlib.suppress(json.JSONDecodeError):
            entry = json.loads(line) if line.strip() else None
            if isinstance(entry, dict) and str(entry.get("task")) == folder.name:
                found = entry.get("multimodal") or []
                return found if isinstance(found, list) else [found]
    return []


def choose_run_dir(folder: Path, out: Path | None) -> Path:
    """A new run directory, never inside the input folder."""
    folder = folder.resolve()
    if out is None:
        stamp = time.strftime("%Y%m%d-%H%M%S")
        out = Path("runs") / f"{folder.name}-{stamp}"
    out = out.resolve()
    if out == folder or folder in out.parents:
        raise RunSetupError(
            f"the run directory {out} would be inside the input folder {folder}; deepfolder never "
            "writes into the input folder: pass --out somewhere else"
        )
    if out.exists() and any(out.iterdir()):
        raise RunSetupError(
            f"run directory {out} already exists and is not empty; choose another --out"
        )
    out.mkdir(parents=True, exist_ok=True)
    return out
