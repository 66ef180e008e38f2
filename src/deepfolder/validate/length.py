"""Count a report's length the way a reader of the request means it.

Rule (also in docs/notes/validate.md and the user docs):

- **字** = CJK characters (Han ideographs, kana) + Latin/digit words, each run of letters
  or digits counting one (``COVID-19`` = 1, ``3.5%`` = 1, ``2,000`` = 1). Punctuation and
  spaces do not count. This is what Word / WPS report as 字数 for mixed text.
- **words** = whitespace-separated tokens containing at least one letter, digit or CJK
  character (a CJK run without spaces is one token).
- Excluded before counting: citations in every form (``[E1234abcd]``, rendered links
  ``[x.pdf, p. 5](#E…)``, free-form ``[x.pdf, p. 3]``), the reference list (its heading
  and everything under it, plus stray ``1. [E…] …`` lines), Markdown/HTML markup (``#``,
  emphasis, link targets, tags, table rules, list markers, code fences), image lines and
  the figure caption directly under an image (``图1 …`` / ``Figure 1 …`` / an italic-only
  line). Numbers in headings such as ``（1）`` count (as one word each), as they would in Word.
"""

from __future__ import annotations

import re

from deepfolder.validate.citations import remove_citations
from deepfolder.validate.document import (
    FENCE,
    HEADING,
    IMAGE,
    as_markdown,
    reference_section_lines,
)

CJK_CHAR = re.compile(
    r"[\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\U00020000-\U0002ffff]"
)
LATIN_WORD = re.compile(
    r"[A-Za-z0-9\u00c0-\u024f]+(?:(?:['’\-.]|(?<=\d),(?=\d{3}))[A-Za-z0-9\u00c0-\u024f]+)*"
)
_CAPTION = re.compile(r"^\s*(?:[*_]+.*[*_]+|(?:图|表|Figure|Fig\.|Table)\s*\d+.*)\s*$", re.I)


def countable_text(report: str, reference_title: str | None = None) -> str:
    """The prose of a report: what :func:`count_length` counts."""
    markdown = as_markdown(report)
    skip = reference_section_lines(markdown, reference_title)
    kept: list[str] = []
    fenced = False
    after_image = False
    for i, line in enumerate(markdown.splitlines()):
        if FENCE.match(line):
            fenced = not fenced
            continue
        if fenced or i in skip:
            continue
        if IMAGE.search(line) and not IMAGE.sub("", line).strip():
            after_image = True
            continue
        if after_image and line.strip() and _CAPTION.match(line):
            after_image = False
            continue
        if line.strip():
            after_image = False
        kept.append(_strip_line_markup(remove_citations(line)))
    return IMAGE.sub("", "\n".join(kept))


def _strip_line_markup(line: str) -> str:
    m = HEADING.match(line)
    if m:
        line = m.group(2)
    else:
        if re.fullmatch(r"\s*\|?[\s:|-]*-{3,}[\s:|-]*\|?\s*", line):  # table rule
            return ""
        line = re.sub(r"^\s*>+\s?", "", line)  # blockquote
        line = re.sub(r"^\s*(?:[-*+•·]|\d+[.)])\s+", "", line)  # list marker
        if re.fullmatch(r"\s*(?:\*\s*){3,}|\s*(?:-\s*){3,}|\s*(?:_\s*){3,}", line):  # rule
            return ""
    line = re.sub(r"<[^>]+>", " ", line)
    line = re.sub(r"(?<!!)\[([^\[\]]*)\]\([^)]*\)", r"\1", line)  # link → its text
    line = re.sub(r"(\*\*|__|~~|`)", "", line)
    line = re.sub(r"(?<![\w*])[*_](?=\S)|(?<=\S)[*_](?![\w*])", "", line)
    return line.replace("|", " ")


def count_units(text: str, unit: str) -> int:
    """Count already-cleaned text (no markup stripping)."""
    if unit == "字":
        return len(CJK_CHAR.findall(text)) + len(LATIN_WORD.findall(text))
    if unit == "words":
        return sum(1 for tok in text.split() if LATIN_WORD.search(tok) or CJK_CHAR.search(tok))
    raise ValueError(f"unknown length unit {unit!r}; use '字' or 'words'")


def count_length(text: str, unit: str, reference_title: str | None = None) -> int:
    """Length of a report (Markdown or HTML) in ``unit`` ('字' or 'words'), by the rule
    in this module's docstring. ``reference_title`` names a request-specific reference
    section (``参考资料``) to exclude besides the usual ones."""
    return count_units(countable_text(text, reference_title), unit)
