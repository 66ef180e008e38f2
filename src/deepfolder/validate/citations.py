"""Find every citation in a report and resolve it against the run's evidence.

Forms recognised (all may appear in one report):

- ``id``: raw ids as the model writes them: ``[E1234abcd]``, ``[E1234abcd][E5678ef01]``,
  ``[E1234abcd, E5678ef01]``, ``[E1234abcd；E5678ef01]``, ``【E1234abcd】``, or a bare id;
- ``link``: the rendered form ``[paper.pdf, p. 5](#E1234abcd)`` (HTML ``<a href="#E…">``
  is read as this form, see :mod:`deepfolder.validate.document`);
- ``reference``: a reference-list line ``1. [E1234abcd] paper.pdf, p. 5 — "…"``;
- ``free``: a free-form citation without id, as remote models and the seed system write
  them: ``[文档: x.pdf, page 3]``, ``[x.pdf, p. 3]``, ``[long_context: "标题", chunk 2]``,
  ``[video.mp4, 01:12–01:40]``. They are resolved by source name + locator against the
  evidence seen in the run; ``Frame 4-7`` is not a locator deepfolder records and does
  not resolve.

A citation is in order when every id resolves to evidence, every id was returned to the
model during the run, and every rendered label equals ``Evidence.citation_label``.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, Literal

from deepfolder.records import EVIDENCE_ID_PATTERN, Evidence

Resolver = Callable[[str], Evidence | None]
CitationKind = Literal["id", "link", "reference", "free"]

_ID = EVIDENCE_ID_PATTERN
ID_GROUP = re.compile(rf"[\[【]\s*({_ID}(?:\s*[,，;；、]\s*{_ID})*)\s*[\]】](?!\()")
LINK = re.compile(rf"(?<!!)\[([^\[\]\n]+?)\]\(#({_ID})\)")
BARE_ID = re.compile(rf"(?<![A-Za-z0-9_#]){_ID}(?![A-Za-z0-9_])")
REFERENCE_LINE = re.compile(
    rf"^\s*\d+[.)]\s*\[({_ID})\]\s*(.+?)\s*(?:—|--|-)\s*[\"“]", re.MULTILINE
)
_EXT = (
    r"pdf|docx?|pptx?|xlsx?|xls|csv|tsv|json|jsonl|txt|md|html?|mp4|mov|mkv|avi|webm|mp3|"
    r"wav|m4a|flac|ogg|png|jpe?g|gif|bmp|tiff?|webp|zip"
)
FREE = re.compile(r"(?<!!)[\[【]([^\[\]【】\n]{2,240})[\]】](?!\()")
_FREE_LIKE = re.compile(
    rf"\.(?:{_EXT})\b|long_context|^\s*(?:文档|文件|来源|资料|出处|source|doc(?:ument)?)\s*[:：]",
    re.IGNORECASE,
)


@dataclass(slots=True)
class FreeRef:
    """A free-form citation taken apart: source name and locator."""

    name: str
    title: str | None = None
    pages: tuple[int, int] | None = None
    slide: int | None = None
    rows: tuple[int, int] | None = None
    seconds: tuple[float, float] | None = None
    chunk: int | None = None
    frame: str | None = None

    @property
    def has_locator(self) -> bool:
        return any(
            v is not None
            for v in (self.pages, self.slide, self.rows, self.seconds, self.chunk, self.frame)
        )


@dataclass(slots=True)
class FoundCitation:
    kind: CitationKind
    raw: str
    start: int
    end: int
    ids: list[str] = field(default_factory=list)
    label: str | None = None
    free: FreeRef | None = None
    evidence: list[Evidence] = field(default_factory=list)
    unresolved_ids: list[str] = field(default_factory=list)
    unseen_ids: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    checked: bool = False
    """False when there was no evidence to check against (a bare report file)."""

    @property
    def ok(self) -> bool:
        return not self.problems

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "raw": self.raw,
            "ids": self.ids,
            "label": self.label,
            "resolved_to": [e.id for e in self.evidence],
            "expected_labels": [e.citation_label("zh") for e in self.evidence],
            "unresolved_ids": self.unresolved_ids,
            "unseen_ids": self.unseen_ids,
            "problems": self.problems,
            "checked": self.checked,
        }


def find_citations(markdown: str, reference_lines: set[int] | None = None) -> list[FoundCitation]:
    """Every citation in ``markdown`` in text order; lines in ``reference_lines`` (the
    reference list) yield ``reference`` entries instead of body citations."""
    ref_lines = reference_lines or set()
    found: list[FoundCitation] = []
    taken: list[tuple[int, int]] = []
    line_starts = [0]
    for line in markdown.splitlines(keepends=True):
        line_starts.append(line_starts[-1] + len(line))

    def line_of(pos: int) -> int:
        lo, hi = 0, len(line_starts) - 1
        while lo < hi - 1:
            mid = (lo + hi) // 2
            if line_starts[mid] <= pos:
                lo = mid
            else:
                hi = mid
        return lo

    def free_span(start: int, end: int) -> bool:
        return all(end <= s or start >= e for s, e in taken)

    for m in REFERENCE_LINE.finditer(markdown):
        if line_of(m.start(1)) in ref_lines:
            found.append(
                FoundCitation(
                    "reference",
                    m.group(0).strip(),
                    m.start(),
                    m.end(),
                    [m.group(1)],
                    m.group(2).strip(),
                )
            )
            taken.append((m.start(), m.end()))
    for m in LINK.finditer(markdown):
        if free_span(m.start(), m.end()) and line_of(m.start()) not in ref_lines:
            found.append(
                FoundCitation(
                    "link", m.group(0), m.start(), m.end(), [m.group(2)], m.group(1).strip()
                )
            )
            taken.append((m.start(), m.end()))
    for m in ID_GROUP.finditer(markdown):
        if free_span(m.start(), m.end()) and line_of(m.start()) not in ref_lines:
            ids = re.findall(_ID, m.group(1))
            found.append(FoundCitation("id", m.group(0), m.start(), m.end(), ids))
            taken.append((m.start(), m.end()))
    for m in FREE.finditer(markdown):
        body = m.group(1)
        if (
            free_span(m.start(), m.end())
            and line_of(m.start()) not in ref_lines
            and _FREE_LIKE.search(body)
            and not re.search(_ID, body)
        ):
            found.append(
                FoundCitation(
                    "free",
                    m.group(0),
                    m.start(),
                    m.end(),
                    [],
                    body.strip(),
                    parse_free_citation(body),
                )
            )
            taken.append((m.start(), m.end()))
    for m in BARE_ID.finditer(markdown):
        if free_span(m.start(), m.end()) and line_of(m.start()) not in ref_lines:
            found.append(FoundCitation("id", m.group(0), m.start(), m.end(), [m.group(0)]))
            taken.append((m.start(), m.end()))
    found.sort(key=lambda c: c.start)
    return found


def remove_citations(text: str) -> str:
    """``text`` without any citation (all forms), for counting and claim comparison."""
    out, last = [], 0
    for c in find_citations(text):
        if c.kind == "reference":
            continue
        out.append(text[last : c.start])
        last = c.end
    out.append(text[last:])
    return "".join(out)


# --- free-form citations -------------------------------------------------------------

_PREFIX = re.compile(r"^\s*(?:文档|文件|来源|资料|出处|source|doc(?:ument)?)\s*[:：]\s*", re.I)
_TIME = r"(\d{1,2}:\d{2}(?::\d{2})?(?:\.\d+)?)"
_DASH = r"\s*(?:-|–|—|~|～|至|到|to)\s*"


def _seconds(stamp: str) -> float:
    total = 0.0
    for part in stamp.split(":"):
        total = total * 60 + float(part)
    return total


def parse_free_citation(body: str) -> FreeRef:
    text = _PREFIX.sub("", body.strip())
    article = re.match(r"^(.+?)\s*[:：]\s*[\"“「『](.+?)[\"”」』]\s*(.*)$", text)
    if article:
        name, title, rest = article.group(1).strip(), article.group(2).strip(), article.group(3)
    else:
        name, rest = _split_name(text)
        title = None
    ref = FreeRef(name=name.strip(" \"'“”"), title=title)
    loc = rest
    m = re.search(rf"(?:pages?|pp?\.|pg\.?)\s*(\d+)(?:{_DASH}(\d+))?", loc, re.I)
    m = m or re.search(rf"第\s*(\d+)(?:{_DASH}(\d+))?\s*页", loc)
    if m:
        ref.pages = (int(m.group(1)), int(m.group(2) or m.group(1)))
    if m := re.search(r"slides?\s*(\d+)|第\s*(\d+)\s*张|幻灯片\s*(\d+)", loc, re.I):
        ref.slide = int(next(g for g in m.groups() if g))
    if m := re.search(
        rf"rows?\s*(\d+)(?:{_DASH}(\d+))?|第\s*(\d+)(?:{_DASH}(\d+))?\s*行", loc, re.I
    ):
        lo = m.group(1) or m.group(3)
        hi = m.group(2) or m.group(4) or lo
        ref.rows = (int(lo), int(hi))
    if m := re.search(rf"{_TIME}(?:{_DASH}{_TIME})?", loc):
        start = _seconds(m.group(1))
        ref.seconds = (start, _seconds(m.group(2)) if m.group(2) else start)
    if m := re.search(r"chunk\s*(\d+)|第\s*(\d+)\s*段|段落?\s*(\d+)", loc, re.I):
        ref.chunk = int(next(g for g in m.groups() if g))
    if m := re.search(rf"frames?\s*(\d+(?:{_DASH}\d+)?)|第\s*(\d+)\s*帧", loc, re.I):
        ref.frame = m.group(1) or m.group(2)
    return ref


def _split_name(text: str) -> tuple[str, str]:
    m = re.match(
        r"^(.+?)(?:\s*[,，;；]\s*|\s+(?=(?:p\.|pp\.|page|slide|rows?|chunk|第)))(.*)$", text, re.I
    )
    return (m.group(1), m.group(2)) if m else (text, "")


def _norm(text: str) -> str:
    return re.sub(r"[\W_]+", "", text).lower()


def _name_matches(ref: FreeRef, ev: Evidence) -> bool:
    name = ref.name.lower()
    src = ev.source
    if src.kind == "article":
        collection = src.display_name.removesuffix(".json").lower()
        if not (name.removesuffix(".json") == collection or collection.startswith(name)):
            return False
        return ref.title is None or (
            _norm(ref.title) != ""
            and (_norm(ref.title) in _norm(src.title) or _norm(src.title) in _norm(ref.title))
        )
    display = src.display_name.lower()
    stem = display.rsplit(".", 1)[0]
    return name in (display, stem) or src.path.lower().endswith(name)


def _locator_matches(ref: FreeRef, ev: Evidence) -> bool:
    loc = ev.segment.locator
    if ref.pages is not None and (loc.page is None or not ref.pages[0] <= loc.page <= ref.pages[1]):
        return False
    if ref.slide is not None and loc.slide != ref.slide:
        return False
    if ref.rows is not None and (
        loc.rows is None or loc.rows[1] < ref.rows[0] or loc.rows[0] > ref.rows[1]
    ):
        return False
    if ref.seconds is not None:
        if loc.start is None:
            return False
        end = loc.end if loc.end is not None else loc.start
        # overlap with a 2-second tolerance: timestamps are shown rounded to the second
        if end + 2 < ref.seconds[0] or loc.start - 2 > ref.seconds[1]:
            return False
    return not (ref.chunk is not None and loc.chunk != ref.chunk)


def resolve_free(ref: FreeRef, pool: Iterable[Evidence]) -> tuple[list[Evidence], list[str]]:
    """Evidence a free-form citation points at, and the problems found."""
    if ref.frame is not None:
        return [], [
            f"'Frame {ref.frame}' is not a locator deepfolder records; cite the video's "
            "time range (mm:ss–mm:ss) instead"
        ]
    by_name = [ev for ev in pool if _name_matches(ref, ev)]
    if not by_name:
        what = f'{ref.name}: "{ref.title}"' if ref.title else ref.name
        return [], [f"{what} matches no evidence read in this run"]
    if not ref.has_locator:
        return by_name, [] if len(by_name) == 1 else [
            f"{ref.name} is cited without a locator (page, slide, rows, time or chunk)"
        ]
    hits = [ev for ev in by_name if _locator_matches(ref, ev)]
    if not hits:
        seen = sorted({ev.segment.locator.label("en") for ev in by_name})
        return [], [
            f"no evidence read in this run is at that place in {ref.name} "
            f"(read there: {', '.join(seen[:6])})"
        ]
    return hits, []


# --- checking -------------------------------------------------------------------------


def _label_norm(text: str) -> str:
    text = re.sub(r"\s*(?:-|—|~|～)\s*", "–", text.strip())
    text = text.replace("“", '"').replace("”", '"').replace("，", ",")
    return re.sub(r"\s+", " ", text)


def label_matches(label: str, ev: Evidence) -> bool:
    wanted = {_label_norm(ev.citation_label(lang)) for lang in ("zh", "en")}
    return _label_norm(label) in wanted


def check_citations(
    citations: list[FoundCitation],
    resolve: Resolver | None,
    seen_ids: set[str] | None,
    language: str = "zh",
) -> list[FoundCitation]:
    """Resolve every citation in place and record its problems. With ``resolve`` None
    (a bare report), only the form is checked and ``checked`` stays False."""
    seen = seen_ids or set()
    pool: list[Evidence] = []
    if resolve is not None:
        pool = [ev for ev in (resolve(i) for i in sorted(seen)) if ev is not None]
    for c in citations:
        if resolve is None:
            if c.kind == "free" and c.free is not None and c.free.frame is not None:
                c.problems.append(f"'Frame {c.free.frame}' is not a locator deepfolder records")
            continue
        c.checked = True
        if c.kind == "free":
            assert c.free is not None
            c.evidence, problems = resolve_free(c.free, pool)
            c.problems.extend(problems)
            continue
        for eid in c.ids:
            ev = resolve(eid)
            if ev is None:
                c.unresolved_ids.append(eid)
                c.problems.append(f"[{eid}] does not exist in the index or this run")
                continue
            c.evidence.append(ev)
            if eid not in seen:
                c.unseen_ids.append(eid)
                c.problems.append(f"[{eid}] was never returned to the model in this run")
            if c.label is not None and not label_matches(c.label, ev):
                c.problems.append(
                    f"label '{c.label}' for [{eid}] does not match the evidence: "
                    f"'{ev.citation_label(language)}'"
                )
    return citations
