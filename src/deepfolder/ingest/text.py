"""Plain text, Markdown and HTML → cleaned text in sections with a heading path.

Decoding: a BOM decides (UTF-8, UTF-16); otherwise UTF-8, then GB18030. Text that
decodes as none of them is an ``ExtractError`` (never silently replaced characters).
Markdown ``#`` headings and HTML ``<h1>``–``<h6>`` start sections; the heading path goes
into ``Locator.section``. HTML scripts, styles and navigation chrome are dropped.
"""

from __future__ import annotations

import re
from html.parser import HTMLParser
from pathlib import Path

from deepfolder.ingest.base import ExtractContext, ExtractError, ExtractResult
from deepfolder.records import Locator, Segment, Source

TEXT_ENCODINGS = ("utf-8", "gb18030")
_MD_HEADING = re.compile(r"^(#{1,6})\s+(.+?)\s*#*\s*$")


def decode_text(data: bytes, name: str) -> str:
    if data.startswith(b"\xef\xbb\xbf"):
        encodings: tuple[str, ...] = ("utf-8-sig",)
    elif data.startswith((b"\xff\xfe", b"\xfe\xff")):
        encodings = ("utf-16",)
    else:
        encodings = TEXT_ENCODINGS
    for encoding in encodings:
        try:
            return data.decode(encoding)
        except UnicodeDecodeError:
            continue
    raise ExtractError(
        f"{name}: the text is not valid {' or '.join(encodings)}; re-save it as UTF-8"
    )


Section = tuple[str | None, str]


def markdown_sections(text: str) -> list[Section]:
    sections: list[Section] = []
    headings: list[tuple[int, str]] = []
    buffer: list[str] = []
    in_code = False

    def flush() -> None:
        body = "\n".join(buffer).strip()
        buffer.clear()
        if body:
            sections.append((" > ".join(h for _, h in headings) or None, body))

    for line in text.splitlines():
        if line.lstrip().startswith("```"):
            in_code = not in_code
        match = None if in_code else _MD_HEADING.match(line)
        if match:
            flush()
            level = len(match.group(1))
            headings[:] = [h for h in headings if h[0] < level] + [(level, match.group(2))]
            buffer.append(match.group(2))
        else:
            buffer.append(line)
    flush()
    return sections


class _HtmlSections(HTMLParser):
    SKIP = frozenset({"script", "style", "noscript", "template", "svg", "nav", "head"})
    BLOCK = frozenset(
        {
            "p",
            "div",
            "br",
            "li",
            "tr",
            "table",
            "section",
            "article",
            "blockquote",
            "pre",
            "ul",
            "ol",
            "dd",
            "dt",
            "figcaption",
            "caption",
        }
    )

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.sections: list[Section] = []
        self.headings: list[tuple[int, str]] = []
        self.buffer: list[str] = []
        self.skip_depth = 0
        self.heading_level: int | None = None
        self.heading_text: list[str] = []
        self.title = ""
        self._in_title = False

    def flush(self) -> None:
        body = re.sub(r"[ \t\r\f\v]+", " ", "".join(self.buffer))
        body = re.sub(r"\s*\n\s*", "\n", body).strip()
        self.buffer.clear()
        if body:
            self.sections.append((" > ".join(h for _, h in self.headings) or None, body))

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "title":
            self._in_title = True
        if tag in self.SKIP:
            self.skip_depth += 1
        elif re.fullmatch(r"h[1-6]", tag) and not self.skip_depth:
            self.flush()
            self.heading_level, self.heading_text = int(tag[1]), []
        elif tag in self.BLOCK:
            self.buffer.append("\n")

    def handle_endtag(self, tag: str) -> None:
        if tag == "title":
            self._in_title = False
        if tag in self.SKIP:
            self.skip_depth = max(0, self.skip_depth - 1)
        elif re.fullmatch(r"h[1-6]", tag) and self.heading_level is not None:
            text = " ".join("".join(self.heading_text).split())
            level = self.heading_level
            self.heading_level = None
            if text:
                self.headings[:] = [h for h in self.headings if h[0] < level] + [(level, text)]
                self.buffer.append(text + "\n")
        elif tag in self.BLOCK:
            self.buffer.append("\n")

    def handle_data(self, data: str) -> None:
        if self._in_title:
            self.title += data
        if self.skip_depth:
            return
        if self.heading_level is not None:
            self.heading_text.append(data)
        else:
            self.buffer.append(data)


def html_sections(text: str) -> tuple[str, list[Section]]:
    """(page title, sections) of an HTML document."""
    parser = _HtmlSections()
    parser.feed(text)
    parser.close()
    parser.flush()
    return " ".join(parser.title.split()), parser.sections


def extract_text(path: Path, ctx: ExtractContext) -> ExtractResult:
    text = decode_text(path.read_bytes(), path.name).replace("\r\n", "\n").replace("\r", "\n")
    suffix = path.suffix.lower()
    title = ""
    if suffix in (".html", ".htm") or (suffix == "" and "<html" in text[:2000].lower()):
        kind = "html"
        title, sections = html_sections(text)
    elif suffix in (".md", ".markdown"):
        kind = "markdown"
        sections = markdown_sections(text)
    else:
        kind = "text"
        sections = [(None, text.strip())] if text.strip() else []
    segments = [
        Segment.create(ctx.rel_path, body, Locator(section=section), seq=i)
        for i, (section, body) in enumerate(sections)
    ]
    if not title and kind == "markdown" and sections and sections[0][0]:
        title = sections[0][0].split(" > ")[0]
    source = Source(
        id=ctx.rel_path,
        path=ctx.rel_path,
        kind=kind,
        title=title or path.name,
        sha256=ctx.sha256,
        size=ctx.size,
        meta={"chars": len(text)},
    )
    warnings = [] if segments else [f"{path.name}: no text"]
    return ExtractResult([source], segments, warnings)
