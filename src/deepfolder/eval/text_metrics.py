"""Edit distance and character error rate, for measuring transcripts and OCR.

Used by the speech, OCR and video benchmarks and by the speech tests, so every recorded
error rate is computed the same way.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

_CHARACTER = re.compile(r"\w")


def edit_distance(ref: Sequence[str], hyp: Sequence[str]) -> int:
    """Levenshtein distance between two sequences (characters of strings, or words)."""
    row = list(range(len(hyp) + 1))
    for i, r in enumerate(ref, 1):
        prev, row[0] = row[0], i
        for j, h in enumerate(hyp, 1):
            prev, row[j] = row[j], min(row[j] + 1, row[j - 1] + 1, prev + (r != h))
    return row[-1]


def char_error_rate(ref: str, hyp: str) -> float:
    """CER over letters, digits and CJK characters (punctuation and spaces ignored)."""
    r = [c for c in ref if _CHARACTER.match(c)]
    h = [c for c in hyp if _CHARACTER.match(c)]
    return edit_distance(r, h) / max(1, len(r))
