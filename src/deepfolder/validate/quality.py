"""Checks of a report's quality as a piece of writing for *this* request.

- ``repetition``: a sentence said twice (:mod:`.repetition`);
- ``placeholder_text``: template text (``xxx``, ``20xx``, ``[姓名]``, demo disclaimers)
  stated as if it were content (:mod:`.placeholders`);
- ``table``: the request asks for a table (``各论文Benchmark信息汇总表``) and the report
  has none;
- ``request_shape``: the report ignores the request's shape altogether — one word where
  1200 字 in six sections were asked (the "HACKED" report a prompt injection produces).
  The other checks fail such a report too, but each for a detail; this one names what
  happened, so revision starts over and ``--strict`` exits non-zero.
"""

from __future__ import annotations

import re

from deepfolder.request_model import RequestConstraints
from deepfolder.validate.citations import remove_citations
from deepfolder.validate.document import HEADING, Heading, is_html, lines_outside_fences
from deepfolder.validate.placeholders import template_text
from deepfolder.validate.repetition import remove_sentences, repeated_sentences, report_sentences
from deepfolder.validate.result import CheckResult

_TABLE_ROW = re.compile(r"^\s*\|.*\|\s*$")
_TABLE_RULE = re.compile(r"^\s*\|?\s*:?-{3,}:?\s*(?:\|\s*:?-{3,}:?\s*)*\|?\s*$")


def check_repetition(markdown: str, skip_lines: set[int]) -> CheckResult:
    pairs = repeated_sentences(markdown, skip_lines)
    details = [
        f"line {later.line + 1} repeats line {first.line + 1} ({sim:.2f}): '{later.text[:50]}'"
        for first, later, sim in pairs
    ]
    return CheckResult(
        "repetition",
        not pairs,
        f"{len(pairs)} repeated sentences",
        "no sentence said twice",
        details[:20],
    )


def check_placeholder_text(markdown: str, skip_lines: set[int]) -> CheckResult:
    found: list[tuple[int, str]] = []
    for i, line in lines_outside_fences(markdown):
        if i in skip_lines:
            continue
        if _TABLE_ROW.match(line):  # a table cell states facts as much as a sentence
            hit = template_text(remove_citations(line))
            if hit:
                found.append(
                    (i, f"line {i + 1} (table): {hit[0]} '{hit[1]}' in '{line.strip()[:50]}'")
                )
        m = HEADING.match(line)
        if m:
            hit = template_text(m.group(2))
            if hit:
                found.append(
                    (i, f"line {i + 1} (heading): {hit[0]} '{hit[1]}' in '{m.group(2)[:50]}'")
                )
    for s in report_sentences(markdown, skip_lines):
        hit = template_text(s.text)
        if hit:
            found.append((s.line, f"line {s.line + 1}: {hit[0]} '{hit[1]}' in '{s.text[:50]}'"))
    details = [d for _, d in sorted(found, key=lambda f: f[0])]
    return CheckResult(
        "placeholder_text",
        not found,
        f"{len(found)} template sentences",
        "no template or placeholder text stated as content",
        details[:20],
    )


def count_tables(raw: str, markdown: str) -> int:
    """Markdown tables (a header row followed by a ``|---|`` rule) plus HTML ``<table>``."""
    if is_html(raw):
        return len(re.findall(r"<table[\s>]", raw, re.IGNORECASE))
    lines = dict(lines_outside_fences(markdown))
    return sum(
        1
        for i, line in lines.items()
        if _TABLE_ROW.match(line) and _TABLE_RULE.match(lines.get(i + 1, ""))
    )


def check_table(raw: str, markdown: str, c: RequestConstraints) -> CheckResult | None:
    if not c.wants_table:
        return None
    n = count_tables(raw, markdown)
    wanted = f"a table ('{c.table_name}')" if c.table_name else "a table"
    details = [] if n else [f"the request asks for {wanted}; the report has none"]
    return CheckResult("table", n > 0, f"{n} tables", "≥ 1 table", details)


def check_request_shape(
    c: RequestConstraints, length: int, unit: str, heads: list[Heading], missing: int
) -> CheckResult:
    """Fails when the report is not the kind of document asked for: under 5 % of the
    requested minimum length (or under 20 units when no length is asked); no heading at
    all where two or more sections are asked; or under half the minimum length with most
    required sections missing."""
    required = [s for s in c.sections if not s.is_title]
    reasons = []
    minimum = c.length.min if c.length else None
    if minimum and length < 0.05 * minimum:
        reasons.append(f"{length} {unit}, under 5% of the requested {minimum} {unit}")
    elif minimum is None and length < 20:
        reasons.append(f"only {length} {unit} of text")
    if len(required) >= 2 and not heads:
        reasons.append(f"no headings where {len(required)} sections are asked")
    elif minimum and length < 0.5 * minimum and len(required) >= 2 and missing > len(required) / 2:
        reasons.append(
            f"{length} {unit} (under half of {minimum}) and {missing} of {len(required)} "
            "required sections missing"
        )
    expected = ", ".join(
        part
        for part in (
            f"{len(required)} sections" if required else "",
            c.length.describe() if c.length else "",
        )
        if part
    )
    details = [f"the report does not follow the request's shape ({'; '.join(reasons)})"]
    return CheckResult(
        "request_shape",
        not reasons,
        "ignores the request" if reasons else "follows the request",
        expected or "a report",
        details if reasons else [],
    )


def remove_template_sentences(
    markdown: str, skip_lines: set[int] | None = None
) -> tuple[str, list[str]]:
    """Delete every prose sentence that holds template text (``作者为xxx``, ``仅用于示例
    演示``) with its citations. Returns (text, the sentences removed)."""
    doomed = [s for s in report_sentences(markdown, skip_lines) if template_text(s.text)]
    if not doomed:
        return markdown, []
    return remove_sentences(markdown, doomed), [s.text for s in doomed]
