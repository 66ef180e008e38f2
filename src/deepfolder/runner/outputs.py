"""Files of a run directory that are not the trace: reports, comparison, evidence."""

from __future__ import annotations

import difflib
import json
from collections.abc import Iterable
from pathlib import Path

from deepfolder.records import Evidence


def write_text(path: Path, text: str) -> None:
    path.write_text(text, encoding="utf-8")


def write_json(path: Path, data: object) -> None:
    path.write_text(json.dumps(data, ensure_ascii=False, indent=2, default=str), encoding="utf-8")


def comparison_text(original: str, final: str, count: object) -> str:
    """Original vs final: lengths, whether identical, a unified diff."""
    measure = count if callable(count) else (lambda t: len(t))
    lines = [
        f"original: {len(original)} characters, {measure(original)} counted",
        f"final:    {len(final)} characters, {measure(final)} counted",
        f"identical: {'yes' if original == final else 'no'}",
        "",
    ]
    diff = difflib.unified_diff(
        original.splitlines(),
        final.splitlines(),
        fromfile="report.original.md",
        tofile="report.md",
        lineterm="",
    )
    lines.extend(diff)
    return "\n".join(lines) + "\n"


def write_evidence(path: Path, seen: dict[str, Evidence], created: dict[str, Evidence]) -> None:
    """Every evidence the run showed the model or created, for ``deepfolder check``."""
    with path.open("w", encoding="utf-8") as f:
        emitted: set[str] = set()
        pools: Iterable[tuple[dict[str, Evidence], bool]] = ((seen, True), (created, False))
        for pool, was_seen in pools:
            for ev in pool.values():
                if ev.id in emitted:
                    continue
                emitted.add(ev.id)
                record = {
                    "segment": ev.segment.to_dict(),
                    "source": ev.source.to_dict(),
                    "seen": was_seen or ev.id in seen,
                }
                f.write(json.dumps(record, ensure_ascii=False, default=str) + "\n")
