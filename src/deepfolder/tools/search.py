"""``search``: the best passages of the whole folder (or of named sources) for a query.

Hits come from the index's search (hybrid unless the model or the settings choose
another mode) over every query given (``query`` plus ``more_queries``), merged,
reranked as the settings say, and spread across documents unless the model named the
sources to search. Each hit is one line that is
ours (evidence id, score, locator) and a short ``<material>`` block of the passage
(``SNIPPET_CHARS``); hits are cut to the result token budget. Every hit shown becomes
citable in the run.
"""

from __future__ import annotations

from typing import Literal

from deepfolder.index.base import SearchFilter, SearchOptions
from deepfolder.index.query import search_many
from deepfolder.index.rerank import configured_reranker
from deepfolder.llm.tokens import estimate_tokens
from deepfolder.prompts.material import quote_material
from deepfolder.records import Evidence
from deepfolder.tools.base import ToolArgumentError, ToolContext, ToolOutput, tool
from deepfolder.tools.core import header_label, material_label, resolve_source_names

SNIPPET_CHARS = 216
"""Characters of a passage shown in a search hit; with its <material> delimiters, eight
long Chinese hits still fit the default result_token_budget."""


def _one_line(text: str, limit: int) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 1].rstrip() + "…"


def format_hits(ctx: ToolContext, hits: list[Evidence], budget_tokens: int, language: str) -> str:
    lines: list[str] = []
    used = 0
    for n, ev in enumerate(hits, 1):
        entry = f"{n}. [{ev.id}] {header_label(ev, language)} (score {ev.score:.3f})\n"
        entry += quote_material(_one_line(ev.segment.text, SNIPPET_CHARS), label=material_label(ev))
        cost = estimate_tokens(entry)
        if used + cost > budget_tokens and lines:
            lines.append(
                f"… {len(hits) - n + 1} more results cut to fit the budget; refine the query."
            )
            break
        lines.append(entry)
        used += cost
    return "\n".join(lines)


@tool
def search(
    ctx: ToolContext,
    query: str,
    k: int = 8,
    sources: list[str] | None = None,
    more_queries: list[str] | None = None,
    mode: Literal["hybrid", "lexical", "dense"] | None = None,
) -> ToolOutput:
    """Search every source of the folder (files, pages, slides, sheets, transcripts and
    web-page collections) and return the best passages with their evidence ids.
    Cite a passage by writing its id in square brackets, e.g. [E1a2b3c4d].

    Args:
        query: What to look for, in the language of the material (Chinese or English).
        k: How many passages to return (1-20).
        sources: Only search these sources: file names, collection file names, or ids
            from list_sources().
        more_queries: Further phrasings of the same need; results are merged and
            de-duplicated.
        mode: hybrid (default), lexical (exact words) or dense (meaning).
    """
    if not query.strip():
        raise ToolArgumentError("search(): query is empty; say what to look for.")
    k = max(1, min(int(k), 20))
    rs = ctx.settings.retrieval
    flt = SearchFilter(source_ids=resolve_source_names(ctx, sources or []))
    # Diversity is for the whole folder; a search within a few named files wants all
    # of their best passages (a paper's method is on several of its pages).
    per_doc = rs.max_per_doc if not flt.source_ids else max(rs.max_per_doc, k)
    options = SearchOptions(
        k=k,
        mode=mode or rs.mode,
        filter=flt,
        min_docs=min(rs.min_docs, k, len(flt.source_ids) or k),
        max_per_doc=per_doc,
    )
    hits = search_many(
        ctx.index,
        [query, *(more_queries or [])],
        options,
        reranker=configured_reranker(rs),
        rrf_k=rs.rrf_k,
    )
    ctx.remember(hits)
    if not hits:
        text = f"No passages found for {query!r}. Try other words, or list_sources()."
    else:
        text = format_hits(ctx, hits, rs.result_token_budget, ctx.language)
    return ToolOutput(text=f"{text}\n{ctx.status_line()}", evidence=hits, quoted=True)


TOOLS = [search]
