"""Turn the model's answer into the report a reader gets: Markdown and HTML.

The reference list is generated from the evidence actually cited, never typed by the
model. When the request asks for a reference section of its own (e.g. "（6）参考资料"),
the list goes under that heading; otherwise under "参考来源" / "References".
Figures are embedded in the HTML as data URIs so the file is self-contained.
"""

from __future__ import annotations

import base64
import html
import mimetypes
import re
from collections.abc import Callable
from pathlib import Path

from markdown_it import MarkdownIt

from deepfolder.records import Evidence
from deepfolder.report.citations import (
    RenderResult,
    reference_heading,
    reference_lines,
    render_citations,
)
from deepfolder.validate.document import is_reference_title, strip_inline_markup

HEADING_RE = re.compile(r"^(#{1,6})\s+(.*?)\s*#*\s*$")


def finalize_markdown(
    body: str,
    resolve: Callable[[str], Evidence | None],
    language: str,
    reference_section: str | None = None,
) -> tuple[str, RenderResult]:
    """Render citations in ``body`` and put the reference list in place."""
    rendered = render_citations(body, resolve, language)
    lines = rendered.text.rstrip().splitlines()
    refs = reference_lines(rendered.cited, language)
    # Find an existing reference heading; its content is replaced by the generated list.
    ref_at = None
    for i, line in enumerate(lines):
        m = HEADING_RE.match(line)
        if m and is_reference_title(strip_inline_markup(m.group(2)), reference_section):
            ref_at = i
    if ref_at is not None:
        level = len(HEADING_RE.match(lines[ref_at]).group(1))  # type: ignore[union-attr]
        end = len(lines)
        for j in range(ref_at + 1, len(lines)):
            m = HEADING_RE.match(lines[j])
            if m and len(m.group(1)) <= level:
                end = j
                break
        body_lines = [*lines[: ref_at + 1], "", *(refs or [_no_refs(language)]), "", *lines[end:]]
    else:
        heading = reference_section or reference_heading(language)
        body_lines = [*lines, "", f"## {heading}", "", *(refs or [_no_refs(language)])]
    return "\n".join(body_lines).rstrip() + "\n", rendered


def _no_refs(language: str) -> str:
    return "（本报告未引用任何证据。）" if language.startswith("zh") else "(No evidence was cited.)"


def markdown_to_html(markdown: str, *, title: str, base_dir: Path | None, language: str) -> str:
    """A complete, self-contained HTML document for the report."""
    md = MarkdownIt("commonmark", {"html": True}).enable("table")
    body = md.render(markdown)
    if base_dir is not None:
        body = _inline_images(body, base_dir)
    lang = "zh-CN" if language.startswith("zh") else "en"
    return (
        "<!DOCTYPE html>\n"
        f'<html lang="{lang}">\n<head>\n<meta charset="utf-8">\n'
        f"<title>{html.escape(title)}</title>\n"
        "<style>body{max-width:52rem;margin:2rem auto;padding:0 1rem;font-family:"
        "system-ui,'Noto Sans CJK SC',sans-serif;line-height:1.7}img{max-width:100%}"
        "a[href^='#E']{font-size:.85em;color:#555}table{border-collapse:collapse}"
        "td,th{border:1px solid #ccc;padding:.2rem .5rem}</style>\n"
        f"</head>\n<body>\n{body}</body>\n</html>\n"
    )


def _inline_images(body: str, base_dir: Path) -> str:
    def replace(match: re.Match[str]) -> str:
        src = html.unescape(match.group(2))
        path = (base_dir / src).resolve()
        if src.startswith(("data:", "http:", "https:")) or not path.is_file():
            return match.group(0)
        mime = mimetypes.guess_type(path.name)[0] or "image/png"
        data = base64.b64encode(path.read_bytes()).decode("ascii")
        return f'{match.group(1)}"data:{mime};base64,{data}"'

    return re.sub(r'(<img[^>]*?\ssrc=)"([^"]+)"', replace, body)


def title_of(markdown: str, fallback: str) -> str:
    for line in markdown.splitlines():
        m = HEADING_RE.match(line)
        if m:
            return re.sub(r"[*_`]", "", m.group(2)).strip() or fallback
    return fallback
