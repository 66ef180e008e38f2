"""The shape of a report: headings, the reference list, figures; HTML read as Markdown.

Every check works on Markdown. An HTML report is first turned into equivalent Markdown
(``<h2>`` → ``##``, ``<a href="#E…">label</a>`` → ``[label](#E…)``, ``<img>`` →
``![alt](src)``, ``<li>`` → ``- ``), so the same code measures both formats.
"""

from __future__ import annotations

import html
import itertools
import re
from dataclasses import dataclass
from html.parser import HTMLParser

HEADING = re.compile(r"^(#{1,6})[ \t]+(.+?)[ \t]*#*[ \t]*$")
FENCE = re.compile(r"^\s*(```|~~~)")
IMAGE = re.compile(r"!\[([^\]\n]*)\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
REFERENCE_HEADING = re.compile(
    r"^(?:[（(]?\s*[\d一二三四五六七八九十]+\s*[）)]?[.、．]?\s*)?"
    r"(参考(来源|资料|文献)|资料来源|信息来源|数据来源|引用来源|引用文献|references?|"
    r"bibliography|sources|works cited)\s*$",
    re.IGNORECASE,
)


def is_html(text: str) -> bool:
    head = text.lstrip()[:500].lower()
    return head.startswith(("<!doctype html", "<html")) or (
        "<body" in head or re.search(r"<h[1-6][\s>]", head) is not None
    )


@dataclass(frozen=True, slots=True)
class Heading:
    level: int
    text: str
    line: int
    """0-based line number in the Markdown text."""


def lines_outside_fences(markdown: str) -> list[tuple[int, str]]:
    """(line number, line) for every line not inside a fenced code block."""
    out, fenced = [], False
    for i, line in enumerate(markdown.splitlines()):
        if FENCE.match(line):
            fenced = not fenced
            continue
        if not fenced:
            out.append((i, line))
    return out


def headings(markdown: str) -> list[Heading]:
    found = []
    for i, line in lines_outside_fences(markdown):
        m = HEADING.match(line)
        if m:
            found.append(Heading(len(m.group(1)), strip_inline_markup(m.group(2)), i))
    return found


def strip_inline_markup(text: str) -> str:
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", text)
    text = re.sub(r"(\*\*|__|\*|_|~~|`)(.+?)\1", r"\2", text)
    return text.strip()


def is_reference_title(title: str, extra_title: str | None = None) -> bool:
    """Whether a heading's text names the reference list (``参考来源``, ``（6）参考资料``,
    ``References``…) or the request's own reference-section title. The report writer
    and the validator both decide with this, so the list is put where it is excluded."""
    title = title.strip()
    if REFERENCE_HEADING.match(title):
        return True
    return bool(extra_title and _norm(extra_title) and _norm(extra_title) in _norm(title))


def reference_section_lines(markdown: str, extra_title: str | None = None) -> set[int]:
    """Line numbers of the reference list: from a reference heading (``## 参考来源``,
    ``## References``, the request's ``（6）参考资料``…) to the next heading of the same
    or a higher level, plus stray reference-list lines (``1. [E1234abcd] …``)."""
    lines = markdown.splitlines()
    marked: set[int] = set()
    heads = headings(markdown)
    for k, h in enumerate(heads):
        if is_reference_title(h.text, extra_title):
            end = len(lines)
            for later in heads[k + 1 :]:
                if later.level <= h.level:
                    end = later.line
                    break
            marked.update(range(h.line, end))
    for i, line in enumerate(lines):
        if re.match(r"^\s*\d+[.)]\s*\[E[0-9a-f]{8}\]", line):
            marked.add(i)
    return marked


def _norm(text: str) -> str:
    return re.sub(r"[\W_]+", "", text).lower()


def images(markdown: str) -> list[tuple[str, str]]:
    """(alt text, target) of every embedded image."""
    return [(m.group(1), m.group(2)) for m in IMAGE.finditer(markdown)]


# --- HTML → Markdown -----------------------------------------------------------------

_VOID = {
    "area",
    "base",
    "br",
    "col",
    "embed",
    "hr",
    "img",
    "input",
    "link",
    "meta",
    "source",
    "track",
    "wbr",
    "param",
}
_BLOCK = {
    "p",
    "div",
    "section",
    "article",
    "header",
    "footer",
    "main",
    "table",
    "tr",
    "ul",
    "ol",
    "blockquote",
    "figure",
    "figcaption",
    "pre",
    "nav",
    "aside",
}


class _ToMarkdown(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.out: list[str] = []
        self.skip = 0
        self.link: list[str | None] = []
        self.lists: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if tag in {"head", "script", "style", "title"}:
            self.skip += 1
        elif m := re.fullmatch(r"h([1-6])", tag):
            self.out.append("\n\n" + "#" * int(m.group(1)) + " ")
        elif tag in ("ul", "ol"):
            self.lists.append(tag)
            self.out.append("\n\n")
        elif tag == "li":
            self.out.append("\n1. " if self.lists and self.lists[-1] == "ol" else "\n- ")
        elif tag in ("td", "th"):
            self.out.append(" | ")
        elif tag == "br":
            self.out.append("\n")
        elif tag == "img":
            self.out.append(f"\n\n![{a.get('alt') or ''}]({a.get('src') or ''})\n\n")
        elif tag == "a":
            href = a.get("href") or ""
            self.link.append(href)
            self.out.append("[" if href else "")
        elif tag in _BLOCK:
            self.out.append("\n\n")

    def handle_endtag(self, tag: str) -> None:
        if tag in ("ul", "ol") and self.lists:
            self.lists.pop()
        if tag in {"head", "script", "style", "title"}:
            self.skip = max(0, self.skip - 1)
        elif re.fullmatch(r"h[1-6]", tag) or tag in _BLOCK or tag == "li":
            self.out.append("\n\n" if tag != "li" else "")
        elif tag == "a" and self.link:
            href = self.link.pop()
            self.out.append(f"]({href})" if href else "")

    def handle_data(self, data: str) -> None:
        if not self.skip:
            self.out.append(re.sub(r"\s+", " ", data))


def html_to_markdown(text: str) -> str:
    parser = _ToMarkdown()
    parser.feed(text)
    parser.close()
    md = "".join(parser.out)
    md = "\n".join(line.strip() for line in md.splitlines())
    return re.sub(r"\n{3,}", "\n\n", md).strip() + "\n"


def as_markdown(report: str) -> str:
    return html_to_markdown(report) if is_html(report) else report


# --- HTML validity ------------------------------------------------------------------


class _TagBalance(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.stack: list[tuple[str, int]] = []
        self.problems: list[str] = []
        self.seen: set[str] = set()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.seen.add(tag)
        if tag not in _VOID:
            self.stack.append((tag, self.getpos()[0]))

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.seen.add(tag)

    def handle_endtag(self, tag: str) -> None:
        if tag in _VOID:
            return
        names = [t for t, _ in self.stack]
        if tag not in names:
            self.problems.append(f"line {self.getpos()[0]}: </{tag}> closes nothing")
            return
        # <p> and <li> may be closed implicitly (HTML allows it); anything else is a mistake
        while self.stack and self.stack[-1][0] != tag:
            open_tag, line = self.stack.pop()
            if open_tag not in {"p", "li", "td", "th", "tr", "option", "dt", "dd"}:
                self.problems.append(f"line {line}: <{open_tag}> is never closed")
        self.stack.pop()


def html_document_problems(text: str) -> list[str]:
    """Why ``text`` is not a complete HTML document (empty list: it is one)."""
    problems = []
    stripped = text.strip()
    if stripped.startswith("```"):
        problems.append("the document is wrapped in a Markdown code fence")
    if not re.match(r"(?is)^(?:```\w*\s*)?<!doctype\s+html\s*>", stripped):
        problems.append("missing <!DOCTYPE html> at the start")
    checker = _TagBalance()
    checker.feed(text)
    checker.close()
    for tag in ("html", "head", "body", "title"):
        if tag not in checker.seen:
            problems.append(f"missing <{tag}> element")
    for tag, line in checker.stack:
        if tag not in {"p", "li", "td", "th", "tr", "option", "dt", "dd"}:
            problems.append(f"line {line}: <{tag}> is never closed")
    problems.extend(checker.problems)
    if re.search(r"(?m)^#{1,6} \S", html.unescape(re.sub(r"<[^>]+>", "", text))):
        problems.append("Markdown headings (# …) left inside the HTML")
    return problems


# --- sections -------------------------------------------------------------------------


@dataclass(slots=True)
class Section:
    """A heading and everything under it up to the next heading (of any level).

    ``text`` is the exact slice of the report, heading line included, so
    ``join_sections(split_sections(t)) == t``. The part before the first heading is a
    section with ``level`` 0 and an empty ``title``.
    """

    index: int
    level: int
    title: str
    text: str

    @property
    def heading_line(self) -> str:
        return self.text.split("\n", 1)[0] if self.level else ""

    @property
    def body(self) -> str:
        return (
            self.text.split("\n", 1)[1]
            if self.level and "\n" in self.text
            else ("" if self.level else self.text)
        )


def split_sections(markdown: str) -> list[Section]:
    starts = [0] + [h.line for h in headings(markdown)]
    lines = markdown.splitlines(keepends=True)
    bounds = [*sorted(set(starts)), len(lines)]
    sections: list[Section] = []
    for a, b in itertools.pairwise(bounds):
        text = "".join(lines[a:b])
        m = HEADING.match(lines[a].rstrip("\n")) if a < len(lines) else None
        if a == 0 and not m and not text:
            continue
        level, title = (len(m.group(1)), strip_inline_markup(m.group(2))) if m else (0, "")
        sections.append(Section(len(sections), level, title, text))
    return sections


def join_sections(sections: list[Section]) -> str:
    """Concatenate sections; a section not ending in a newline gets one."""
    parts: list[str] = []
    for s in sections:
        if parts and not parts[-1].endswith("\n"):
            parts[-1] += "\n"
        parts.append(s.text)
    return "".join(parts)
