"""The tools every run has besides ``search`` (``tools/search.py``): read,
list_sources, count_length; and how the tools name sources and label passages.

Every observation is compact (a token budget per call), shows evidence ids the model
may cite, and ends with one status line. Evidence shown here becomes citable in the run.
Folder text (passages, article titles, listings) is shown inside ``<material>`` blocks
(:func:`~deepfolder.prompts.material.quote_material`). Each passage's header line, outside
the block, holds what is ours or the user's own: the evidence id, the score, and the
locator (``paper.pdf, 第2页``; for a web article ``long_context: article 3, 第1段``,
its third-party title only inside the block).
"""

from __future__ import annotations

from collections import Counter
from typing import Literal

from deepfolder.llm.tokens import estimate_tokens
from deepfolder.prompts.material import quote_material
from deepfolder.records import Evidence, Segment, Source
from deepfolder.tools.base import ToolArgumentError, ToolContext, ToolOutput, tool


def resolve_source_names(ctx: ToolContext, names: list[str]) -> tuple[str, ...]:
    """Map what the model wrote (an id, a file name, a collection name, a title) to
    source ids or id prefixes the index filter understands."""
    sources = ctx.index.sources()
    out: list[str] = []
    for raw in names:
        name = raw.strip().strip("\"'")
        if not name:
            continue
        matches = [
            s.id for s in sources if name in (s.id, s.path, s.display_name) and s.kind != "article"
        ]
        collection = [
            s for s in sources if s.kind == "article" and name in (s.path, s.display_name)
        ]
        if collection:
            matches.append(collection[0].path + "#")
        if not matches:
            matches = [s.id for s in sources if s.kind == "article" and s.title == name]
        if not matches:
            matches = [s.id for s in sources if name.lower() in s.display_name.lower()][:20]
        if not matches:
            known = ", ".join(sorted({s.path for s in sources})[:15])
            raise ToolArgumentError(
                f"no source named {name!r}; call list_sources() to see them. Known files:\n"
                + quote_material(known, label="file names")
            )
        out.extend(matches)
    return tuple(dict.fromkeys(out))


def header_label(ev: Evidence, language: str) -> str:
    """The citation label without a web article's title (third-party text, which is
    shown inside the material block): ``paper.pdf, 第2页``, ``web: article 3, chunk 1``."""
    if ev.source.kind != "article":
        return ev.citation_label(language)
    collection = ev.source.display_name.removesuffix(".json")
    where = ev.segment.locator.label(language)
    zh = language.startswith("zh")
    article = f"第{ev.source.article}篇" if zh else f"article {ev.source.article}"
    return f"{collection}: {article}" + (f", {where}" if where else "")


def material_label(ev: Evidence) -> str:
    """The source attribute of a passage's material block: the file, or for a web
    article its collection and title."""
    if ev.source.kind == "article":
        collection = ev.source.display_name.removesuffix(".json")
        return f'{collection}: "{ev.source.title}"' if ev.source.title else collection
    return ev.source.display_name


def _window(segments: list[Segment], pivot: int, around: int) -> list[Segment]:
    lo, hi = max(0, pivot - around), min(len(segments), pivot + around + 1)
    return segments[lo:hi]


def at_place(
    seg: Segment,
    page: int | None,
    slide: int | None,
    chunk: int | None,
    start: float | None,
    end: float | None,
    row: int | None,
) -> bool:
    """Whether ``seg`` lies at the place given (a page, slide, chunk, time window or
    spreadsheet row; None: any)."""
    loc = seg.locator
    if page is not None and loc.page != page:
        return False
    if slide is not None and loc.slide != slide:
        return False
    if chunk is not None and loc.chunk != chunk:
        return False
    if row is not None and (loc.rows is None or not loc.rows[0] <= row <= loc.rows[1]):
        return False
    if start is not None or end is not None:
        if loc.start is None:
            return False
        lo = start if start is not None else float("-inf")
        hi = end if end is not None else float("inf")
        seg_end = loc.end if loc.end is not None else loc.start
        if seg_end < lo or loc.start > hi:
            return False
    return True


@tool
def read(
    ctx: ToolContext,
    evidence_id: str | None = None,
    source: str | None = None,
    page: int | None = None,
    slide: int | None = None,
    chunk: int | None = None,
    start: float | None = None,
    end: float | None = None,
    row: int | None = None,
    around: int = 1,
) -> ToolOutput:
    """Read a passage in full with its neighbours, or a place in a source: a PDF page, a
    slide, an article chunk, a time window of audio/video (seconds), or a spreadsheet row.
    Give either evidence_id (from search results) or source plus a place.

    Args:
        evidence_id: An id from search results, e.g. E1a2b3c4d.
        source: A file name or source id from list_sources().
        page: PDF page number (1-based).
        slide: Slide number (1-based).
        chunk: Chunk number inside an article or file (1-based).
        start: Start of a time window in seconds.
        end: End of a time window in seconds.
        row: A spreadsheet row number (header is row 1).
        around: How many neighbouring passages to include on each side (0-3).
    """
    around = max(0, min(int(around), 3))
    language = ctx.language
    if evidence_id:
        ev = ctx.resolve(evidence_id.strip().strip("[]"))
        if ev is None:
            raise ToolArgumentError(
                f"unknown evidence id {evidence_id!r}: use an id exactly as shown in search "
                "results (E followed by 8 hex digits)."
            )
        segments = ctx.index.segments_of(ev.source.id) or [ev.segment]
        pivot = next((i for i, s in enumerate(segments) if s.id == ev.id), 0)
        chosen, src = _window(segments, pivot, around), ev.source
    elif source:
        ids = resolve_source_names(ctx, [source])
        src_opt = ctx.index.source(ids[0].rstrip("#"))
        if src_opt is None:
            raise ToolArgumentError(f"{source!r} is a collection; name one article or search it.")
        src = src_opt
        segments = ctx.index.segments_of(src.id)
        chosen = [s for s in segments if at_place(s, page, slide, chunk, start, end, row)]
        if not chosen:
            raise ToolArgumentError(_no_place_message(src, segments, language))
        if len(chosen) == 1 and around:
            pivot = segments.index(chosen[0])
            chosen = _window(segments, pivot, around)
    else:
        raise ToolArgumentError(
            "read(): give evidence_id, or source plus page/slide/chunk/start/row."
        )
    evidence = [Evidence(seg, src) for seg in chosen]
    budget = ctx.settings.retrieval.result_token_budget * 2
    parts: list[str] = []
    used = 0
    for ev in evidence:
        block = f"[{ev.id}] {header_label(ev, language)}\n"
        block += quote_material(ev.segment.text.strip(), label=material_label(ev))
        if used + estimate_tokens(block) > budget and parts:
            parts.append("… further passages cut to fit the budget; read them by id.")
            break
        parts.append(block)
        used += estimate_tokens(block)
    shown = evidence[: len([p for p in parts if p.startswith("[E")])]
    ctx.remember(shown)
    text = "\n\n".join(parts) + f"\n{ctx.status_line()}"
    return ToolOutput(text=text, evidence=shown, quoted=True)


def _no_place_message(src: Source, segments: list[Segment], language: str) -> str:
    places = sorted({s.locator.label(language) for s in segments if s.locator.label(language)})
    sample = ", ".join(places[:12]) + (" …" if len(places) > 12 else "")
    return "nothing at that place; the source has these places:\n" + quote_material(
        sample or "no located passages", label=src.display_name
    )


@tool
def list_sources(ctx: ToolContext, kind: str | None = None, offset: int = 0) -> ToolOutput:
    """List the folder's sources: files with their kind and size in pages/slides/rows/
    seconds, and article collections with their number of articles and sample titles.

    Args:
        kind: Only this kind (pdf, docx, pptx, sheet, image, audio, video, text, article…).
        offset: Skip this many entries (the list is paginated).
    """
    sources = [s for s in ctx.index.sources() if kind is None or s.kind == kind]
    collections: dict[str, list[Source]] = {}
    files: list[Source] = []
    for s in sources:
        if s.kind == "article":
            collections.setdefault(s.path, []).append(s)
        else:
            files.append(s)
    entries: list[str] = []
    for s in sorted(files, key=lambda s: s.id):
        n = len(ctx.index.segments_of(s.id))
        entries.append(f"- {s.id} ({s.kind}, {n} passages){_meta_brief(s)}")
    for path, arts in sorted(collections.items()):
        titles = "; ".join(a.title for a in arts[:5] if a.title)
        entries.append(f"- {path} (collection of {len(arts)} articles; e.g. {titles})")
    page = entries[offset : offset + 40]
    more = len(entries) - offset - len(page)
    tail = f"\n… {more} more; call list_sources(offset={offset + 40})." if more > 0 else ""
    kinds = Counter(s.kind for s in sources)
    head = "Sources by kind: " + ", ".join(f"{k} {v}" for k, v in sorted(kinds.items()))
    listing = quote_material("\n".join(page), label="list of sources")
    text = head + "\n" + listing + tail + f"\n{ctx.status_line()}"
    return ToolOutput(text=text, quoted=True)


def _meta_brief(s: Source) -> str:
    keys = ("pages", "slides", "rows", "duration", "sheets", "width", "height")
    parts = [f"{k} {s.meta[k]}" for k in keys if k in s.meta]
    return f"; {', '.join(parts)}" if parts else ""


@tool
def count_length(ctx: ToolContext, text: str, unit: Literal["字", "words"] = "字") -> ToolOutput:
    """Count the length of a draft the way the validator does: 字 = Chinese characters
    plus English words; words = English words. Citations, the reference list and
    Markdown markup are not counted.

    Args:
        text: The draft text to measure.
        unit: 字 for Chinese reports, words for English reports.
    """
    from deepfolder.validate.length import count_length as measure

    n = measure(text, unit)
    return ToolOutput(text=f"{n} {unit}\n{ctx.status_line()}", quoted=True)


TOOLS = [read, list_sources, count_length]
