"""Evidence ids in the model's text → readable citations and a reference list.

The model cites ids it has seen: ``[E1234abcd]``, ``[E1234abcd][E5678ef01]`` or
``[E1234abcd, E5678ef01]``. One regex finds them. Rendering turns each known id into a
Markdown link whose text is the readable citation and whose target is the id:
``[paper.pdf, p. 5](#E1234abcd)``, so a reader sees the file and page while the viewer
and ``deepfolder check`` can still resolve the exact evidence. An id that is not among
the citable ones is never rendered as a citation: it is removed and reported.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field

from deepfolder.records import EVIDENCE_ID_PATTERN, Evidence

ID_RE = re.compile(EVIDENCE_ID_PATTERN)
# A bracket group holding only evidence ids (and separators), e.g. [E1, E2] or 【E1；E2】.
CITATION_GROUP_RE = re.compile(
    r"[\[【]\s*("
    + EVIDENCE_ID_PATTERN
    + r"(?:\s*[,，;；、]\s*"
    + EVIDENCE_ID_PATTERN
    + r")*)\s*[\]】]"
)
# Already rendered: [label](#E1234abcd)
RENDERED_RE = re.compile(r"\[([^\[\]]+)\]\(#(" + EVIDENCE_ID_PATTERN + r")\)")


def extract_citation_ids(text: str) -> list[str]:
    """Every evidence id cited in ``text`` (raw groups and rendered links), in order."""
    ids: list[str] = []
    for m in CITATION_GROUP_RE.finditer(text):
        ids.extend(ID_RE.findall(m.group(1)))
    ids.extend(m.group(2) for m in RENDERED_RE.finditer(text))
    return ids


@dataclass
class RenderResult:
    text: str
    cited: list[Evidence] = field(default_factory=list)
    """Evidence cited, in order of first citation."""
    dropped: list[str] = field(default_factory=list)
    """Ids the model wrote that are not citable in this run (removed from the text)."""


def render_citations(
    text: str,
    resolve: Callable[[str], Evidence | None],
    language: str = "en",
) -> RenderResult:
    """Replace raw id groups by readable citation links; drop ids that do not resolve.

    ``resolve`` must return evidence only for ids that are citable in this run (seen by
    the model or created by its tools).
    """
    result = RenderResult(text="")
    seen_ids: set[str] = set()

    def note(ev: Evidence) -> None:
        if ev.id not in seen_ids:
            seen_ids.add(ev.id)
            result.cited.append(ev)

    def replace(match: re.Match[str]) -> str:
        links = []
        for eid in ID_RE.findall(match.group(1)):
            ev = resolve(eid)
            if ev is None:
                result.dropped.append(eid)
                continue
            note(ev)
            links.append(f"[{ev.citation_label(language)}](#{ev.id})")
        return "".join(links)

    rendered = CITATION_GROUP_RE.sub(replace, text)
    for m in RENDERED_RE.finditer(rendered):
        ev = resolve(m.group(2))
        if ev is not None:
            note(ev)
    # A removed citation can leave "text ." or a doubled space behind.
    rendered = re.sub(r"[ \t]+([。，；：！？,.;:!?])", r"\1", rendered)
    result.text = re.sub(r"[ \t]{2,}", " ", rendered)
    return result


def reference_heading(language: str) -> str:
    return "参考来源" if language.startswith("zh") else "References"


def reference_lines(
    cited: list[Evidence], language: str = "en", snippet_chars: int = 80
) -> list[str]:
    """One numbered line per cited evidence: id, readable label, opening words."""
    lines = []
    for n, ev in enumerate(cited, 1):
        snippet = " ".join(ev.segment.text.split())
        if len(snippet) > snippet_chars:
            snippet = snippet[:snippet_chars].rstrip() + "…"
        url = f" <{ev.source.url}>" if ev.source.url else ""
        lines.append(f'{n}. [{ev.id}] {ev.citation_label(language)} — "{snippet}"{url}')
    return lines
