"""Which script a text is written in, counted in segmentation-free units.

Retrieval treats Chinese (and other CJK) text and Latin-script text differently: the
coverage reranker compares a query only with passages in its own script, the English
cross-encoder rescores only Latin-script passages, and a query whose script differs from
a passage's needs the dense side (or a translation) to find it at all.
"""

from __future__ import annotations

import re
import unicodedata

CJK_RANGES = "\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\uac00-\ud7af"
_UNIT = re.compile(f"[{CJK_RANGES}]|[^\\W_{CJK_RANGES}]+")
_CJK_CHAR = re.compile(f"[{CJK_RANGES}]")
"""A unit is one CJK character (Han, kana, hangul), or a run of other letters/digits."""


def coverage_units(text: str) -> list[str]:
    """The text as segmentation-free units: CJK characters and lower-cased words."""
    return _UNIT.findall(unicodedata.normalize("NFKC", text).lower())


def units_mainly_cjk(units: list[str]) -> bool:
    """Whether most units are CJK characters (a Latin word counts as one unit)."""
    cjk = sum(1 for u in units if len(u) == 1 and _CJK_CHAR.match(u))
    return cjk * 2 > len(units)


def mainly_cjk(text: str) -> bool:
    """Whether the text is written mainly in CJK characters ("DPO 的损失函数" is)."""
    return units_mainly_cjk(coverage_units(text))
