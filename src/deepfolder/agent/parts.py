"""A long section written in parts, each from its own passages.

The embedded model writes 250–400 字 per call whatever length it is asked for, and asked
to *continue* a section it is shown, it copies that section's sentences (and the pattern
of its first one). A section longer than one call's worth is therefore written as
parts: its passages are dealt into groups — the user's files in reading order (page,
slide, second), so each part covers its own stretch of the paper or of the talk; web
pages one by one in turn — and each writing call sees one group and none of the other
parts' text. What two parts both say is removed in code afterwards
(``validate.repetition``).
"""

from __future__ import annotations

from deepfolder.records import Evidence

PART_SIZE = {"字": 250, "words": 180}
"""About what one writing call of the embedded model yields, after cleaning."""
MAX_PARTS = 3
MIN_PASSAGES = 2
COMPUTED_KINDS = {"analysis", "figure"}
"""A part is written from at least this many passages (one passage makes a paraphrase)."""


def part_count(budget: int, unit: str) -> int:
    """How many writing calls a section of ``budget`` units takes."""
    size = PART_SIZE.get(unit, PART_SIZE["words"])
    return max(1, min(MAX_PARTS, round(budget / size)))


def reading_order(ev: Evidence) -> tuple[str, float, int]:
    """Where a passage stands in its file: page, slide, second or chunk, then offset."""
    loc = ev.segment.locator
    place = next(
        (v for v in (loc.page, loc.slide, loc.start, loc.chunk) if v is not None),
        0,
    )
    return ev.source.path, float(place), loc.char_start or 0


def deal(evidence: list[Evidence], parts: int) -> list[list[Evidence]]:
    """``evidence`` dealt into at most ``parts`` groups for the writing calls.

    Computed results of the user's data open every group (they are what a data
    section is written from; raw sheet rows make no prose). The user's files follow in
    reading order, cut into consecutive runs (the first page's title and abstract open
    the first part); web pages one to each group in turn.
    Fewer groups come back when there are too few passages for each to have
    :data:`MIN_PASSAGES`.
    """
    parts = max(1, min(parts, len(evidence) // MIN_PASSAGES or 1))
    computed = [e for e in evidence if e.source.kind in COMPUTED_KINDS]
    user = sorted(
        (e for e in evidence if e.source.is_user_material and e not in computed),
        key=reading_order,
    )
    web = [e for e in evidence if not e.source.is_user_material]
    groups: list[list[Evidence]] = [list(computed) for _ in range(parts)]
    size, extra = divmod(len(user), parts)
    start = 0
    for i in range(parts):
        end = start + size + (1 if i < extra else 0)
        groups[i] += user[start:end]
        start = end
    for i, ev in enumerate(web):
        groups[i % parts].append(ev)
    return [g for g in groups if g]
