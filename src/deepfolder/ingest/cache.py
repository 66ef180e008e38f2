"""What ingest remembers between runs, inside the index directory.

- ``manifest.json``: for each file of the folder that is in the index, its sha256, kind,
  the ids of the sources it produced and a short description (pages, slides, rows,
  articles, a few titles) for the folder summary. It is what makes a re-run incremental:
  same path + same sha256 + its sources still in the index → nothing to do.
- ``extract/<sha256>-<path hash>.jsonl``: the chunked extraction of one file (sources and
  segments, one JSON object a line), so a rebuilt or damaged index is refilled without
  re-reading PDFs or re-running OCR/ASR. The path is part of the key because source ids
  are paths. The index directory's name already holds ``settings.ingest_hash()``.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from deepfolder.ingest.worker import FileOutcome
from deepfolder.records import Segment, Source, short_hash

MANIFEST = "manifest.json"
MANIFEST_VERSION = 1


def load_manifest(index_dir: Path) -> dict[str, dict[str, Any]]:
    path = index_dir / MANIFEST
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (FileNotFoundError, json.JSONDecodeError):
        return {}
    if data.get("version") != MANIFEST_VERSION:
        return {}
    files = data.get("files", {})
    return files if isinstance(files, dict) else {}


def save_manifest(index_dir: Path, files: dict[str, dict[str, Any]]) -> None:
    _atomic_write(index_dir / MANIFEST, {"version": MANIFEST_VERSION, "files": files})


def _atomic_write(path: Path, data: Any) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(data, ensure_ascii=False, indent=1), encoding="utf-8")
    os.replace(tmp, path)


def extract_cache_path(index_dir: Path, rel_path: str, sha256: str) -> Path:
    return index_dir / "extract" / f"{sha256}-{short_hash(rel_path)}.jsonl"


def save_extraction(path: Path, outcome: FileOutcome) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    with tmp.open("w", encoding="utf-8") as fh:
        header = {
            "rel_path": outcome.rel_path,
            "warnings": outcome.warnings,
            "models": outcome.models,
            "seconds": outcome.seconds,
        }
        fh.write(json.dumps({"header": header}, ensure_ascii=False) + "\n")
        for source in outcome.sources:
            fh.write(json.dumps({"source": source.to_dict()}, ensure_ascii=False) + "\n")
        for segment in outcome.segments:
            fh.write(json.dumps({"segment": segment.to_dict()}, ensure_ascii=False) + "\n")
    os.replace(tmp, path)


def load_extraction(path: Path) -> FileOutcome | None:
    """The cached outcome, or None when absent or unreadable (then re-extract)."""
    try:
        with path.open(encoding="utf-8") as fh:
            header = json.loads(fh.readline())["header"]
            outcome = FileOutcome(
                rel_path=header["rel_path"],
                ok=True,
                warnings=list(header.get("warnings", [])),
                models=dict(header.get("models", {})),
                seconds=float(header.get("seconds", 0.0)),
            )
            for line in fh:
                item = json.loads(line)
                if "source" in item:
                    outcome.sources.append(Source.from_dict(item["source"]))
                elif "segment" in item:
                    outcome.segments.append(Segment.from_dict(item["segment"]))
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return outcome
