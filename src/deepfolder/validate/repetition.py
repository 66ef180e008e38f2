"""Sentences a report says twice, and taking the second saying out.

A small model writing section by section from overlapping evidence repeats itself: the
same sentence, sometimes with a citation more or a word changed, in two sections. Two
sentences are *repeats* when, after citations, whitespace and punctuation are removed,
their character bigrams overlap with a Jaccard similarity of at least
:data:`REPEAT_SIMILARITY` (0.85), or when one says the other with a few words around
it ("引入政策网络：DPO 的目标是…" after "DPO 的目标是…"): at least
:data:`REPEAT_CONTAINMENT` (0.9) of the shorter one's bigrams are in the longer one,
which is at most :data:`REPEAT_LENGTH_RATIO` (1.6) times as long. Only sentences long
enough to say something are compared (≥ 15 CJK characters, or ≥ 8 Latin words, or a mix
worth as much with a word counted as two characters): short formulae ("详见下表。") recur
legitimately.

Headings, table rows, code, images and the reference list are not prose and are skipped.
:func:`remove_repeated_sentences` deletes every later repeat (with the citations that
follow it) in code; the first saying stays where the reader meets it first.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from deepfolder.validate.citations import find_citations
from deepfolder.validate.document import HEADING, IMAGE, lines_outside_fences
from deepfolder.validate.length import CJK_CHAR, LATIN_WORD
from deepfolder.validate.support import sentence_spans

REPEAT_SIMILARITY = 0.85
REPEAT_CONTAINMENT = 0.9
REPEAT_LENGTH_RATIO = 1.6
MIN_CJK = 15
MIN_WORDS = 8
_TABLE_ROW = re.compile(r"^\s*\|.*\|\s*$")
_LINE_MARKUP = re.compile(r"^\s*(?:>+\s*|(?:[-*+•·]|\d+[.)])\s+)*")


@dataclass(frozen=True, slots=True)
class ReportSentence:
    start: int
    end: int
    """Span in the report, citations written right after the sentence included."""
    line: int
    """0-based line number."""
    text: str
    """The sentence without citations or line markup."""

    @property
    def key(self) -> str:
        return re.sub(r"[\W_]+", "", self.text).lower()

    @property
    def substantial(self) -> bool:
        """Long enough to say something, and not an editorial note in parentheses (the
        pipeline's "（未在资料中检索到本节的相关证据。）" may stand in several sections)."""
        if re.fullmatch(r"[（(][^）)]*(?:[）)][。.]?)?", self.text):
            return False  # (the full stop inside the note splits off its closing paren)
        # a Latin word counts as two characters, so a mixed sentence ("在Anthropic HH的
        # 实验中，DPO的表现优于PPO") is compared like a Chinese or an English one
        cjk = len(CJK_CHAR.findall(self.text))
        words = len(LATIN_WORD.findall(self.text))
        return words >= MIN_WORDS or cjk + 2 * words >= MIN_CJK


def report_sentences(markdown: str, skip_lines: set[int] | None = None) -> list[ReportSentence]:
    """The prose sentences of a report, in order (headings, tables, images, code and
    ``skip_lines`` — the reference list — excluded)."""
    skip = skip_lines or set()
    masked = list(markdown)
    for c in find_citations(markdown):
        masked[c.start : c.end] = "\x00" * (c.end - c.start)
    text = "".join(masked)
    line_starts = [0]
    for m in re.finditer("\n", markdown):
        line_starts.append(m.end())
    out: list[ReportSentence] = []
    for i, line in lines_outside_fences(markdown):
        if (
            i in skip
            or not line.strip()
            or HEADING.match(line)
            or _TABLE_ROW.match(line)
            or (IMAGE.search(line) and not IMAGE.sub("", line).strip())
        ):
            continue
        base = line_starts[i]
        masked_line = text[base : base + len(line)]
        previous_end = 0
        for s, e in sentence_spans(masked_line):
            s = max(s, previous_end)
            # a citation after the full stop belongs to the sentence before it
            tail = re.match(r"[\x00\s]*", masked_line[e:])
            if tail and "\x00" in tail.group(0):
                e += len(tail.group(0).rstrip())
            previous_end = e
            body = masked_line[s:e].replace("\x00", "")
            body = _LINE_MARKUP.sub("", body) if s == 0 else body
            body = re.sub(r"(\*\*|__|~~|`)", "", body).strip()
            if re.search(r"\w", body):
                out.append(ReportSentence(base + s, base + e, i, body))
    return out


def _bigrams(key: str) -> set[str]:
    return {key[i : i + 2] for i in range(len(key) - 1)} or {key}


def similarity(a: str, b: str) -> float:
    """Jaccard similarity of the character bigrams of two normalised sentences."""
    ga, gb = _bigrams(a), _bigrams(b)
    return len(ga & gb) / len(ga | gb)


def repeated_sentences(
    markdown: str, skip_lines: set[int] | None = None, threshold: float = REPEAT_SIMILARITY
) -> list[tuple[ReportSentence, ReportSentence, float]]:
    """(first saying, later repeat, similarity) for every sentence that repeats an
    earlier one; each repeat is listed once, against the earliest sentence it repeats."""
    sentences = [s for s in report_sentences(markdown, skip_lines) if s.substantial]
    grams = [_bigrams(s.key) for s in sentences]
    pairs = []
    for j in range(len(sentences)):
        for i in range(j):
            small, large = sorted((len(grams[i]), len(grams[j])))
            if small * REPEAT_LENGTH_RATIO < large and small < threshold * large:
                continue  # neither similar nor one inside the other
            shared = len(grams[i] & grams[j])
            sim = shared / len(grams[i] | grams[j])
            contained = large <= REPEAT_LENGTH_RATIO * small and (
                shared >= REPEAT_CONTAINMENT * small
            )
            if sim >= threshold or contained:
                pairs.append((sentences[i], sentences[j], sim))
                break
    return pairs


def remove_sentences(markdown: str, doomed: list[ReportSentence]) -> str:
    """``markdown`` without the given sentences; a line left empty goes too (and the blank
    line after it, so paragraphs stay one blank line apart)."""
    text = markdown
    for s in sorted(doomed, key=lambda x: x.start, reverse=True):
        start = s.start
        # take the space that separated an English sentence from the one before it
        end = s.end
        while start > 0 and text[start - 1] in " \t":
            start -= 1
        if start == 0 or text[start - 1] == "\n":  # first on its line: the gap after it goes
            while end < len(text) and text[end] in " \t":
                end += 1
        text = text[:start] + text[end:]
    emptied = {s.line for s in doomed}
    old_lines = markdown.splitlines(keepends=True)
    new_lines = text.splitlines(keepends=True)
    if len(old_lines) != len(new_lines):  # cannot happen: sentences never span lines
        return text
    kept: list[str] = []
    drop_blank = False
    for i, line in enumerate(new_lines):
        if i in emptied and not _LINE_MARKUP.sub("", line).strip():
            drop_blank = not kept or not kept[-1].strip()
            continue
        if drop_blank and not line.strip():
            drop_blank = False
            continue
        drop_blank = False
        kept.append(line)
    return "".join(kept)


def remove_repeated_sentences(
    markdown: str, skip_lines: set[int] | None = None
) -> tuple[str, list[str]]:
    """Delete every later repeat of an earlier sentence. Returns (text, the sentences
    removed). The raw draft (``[E…]`` ids) and the rendered report work alike."""
    pairs = repeated_sentences(markdown, skip_lines)
    if not pairs:
        return markdown, []
    doomed = [later for _, later, _ in pairs]
    return remove_sentences(markdown, doomed), [s.text for s in doomed]
