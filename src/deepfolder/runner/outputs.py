"""Files of a run directory that are not the trace: report texts, JSON, the comparison."""

from __future__ import annotations

import difflib
import json
from pathlib import Path


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
