"""Run every check on a report: :func:`validate_report` → :class:`ValidationReport`.

The checks are deterministic code except the optional model judge of support. The
validator never searches or calls a tool: it sees only the report, the request's
constraints and the evidence the run already returned (through ``resolve``/``seen_ids``).
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from deepfolder.llm.base import ChatModel
from deepfolder.records import Evidence
from deepfolder.request_model import RequestConstraints, RequiredSection, cjk_ratio
from deepfolder.settings import Settings, ValidateSettings
from deepfolder.validate.citations import FoundCitation, check_citations, find_citations
from deepfolder.validate.document import (
    FENCE,
    HEADING,
    IMAGE,
    Heading,
    as_markdown,
    headings,
    html_document_problems,
    images,
    is_html,
    lines_outside_fences,
    reference_section_lines,
    split_sections,
)
from deepfolder.validate.grounding import check_user_material
from deepfolder.validate.length import count_length, count_units, countable_text
from deepfolder.validate.numbers import STATISTIC
from deepfolder.validate.quality import (
    check_placeholder_text,
    check_repetition,
    check_request_shape,
    check_table,
)
from deepfolder.validate.result import CheckResult
from deepfolder.validate.support import (
    Embedder,
    SupportVerdict,
    claim_for,
    local_verdict,
    model_verdict,
    sentence_spans,
    use_model_judge,
)

Resolver = Callable[[str], Evidence | None]


@dataclass(slots=True)
class UncitedParagraph:
    section: str
    line: int
    excerpt: str
    reason: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "section": self.section,
            "line": self.line,
            "excerpt": self.excerpt,
            "reason": self.reason,
        }


@dataclass(slots=True)
class SectionMatch:
    required: RequiredSection
    heading: Heading | None
    in_order: bool = True


@dataclass(slots=True)
class ValidationReport:
    checks: list[CheckResult]
    constraints: RequestConstraints
    language: str
    citations: list[FoundCitation] = field(default_factory=list)
    verdicts: list[SupportVerdict] = field(default_factory=list)
    uncited: list[UncitedParagraph] = field(default_factory=list)
    sections: list[SectionMatch] = field(default_factory=list)
    section_lengths: list[tuple[str, int]] = field(default_factory=list)
    round: int = 0
    ungrounded_sections: list[str] = field(default_factory=list)
    """Titles of the body sections that cite none of the user's files (when the request
    builds on them; see :mod:`.grounding`)."""
    user_files: list[str] = field(default_factory=list)
    """Names of the user's files the run saw, when the request builds on them."""
    notes: list[str] = field(default_factory=list)
    """What the revision did around this validation (stripped citations, failures)."""

    @property
    def passed(self) -> bool:
        return not any(c.failed for c in self.checks)

    @property
    def failures(self) -> list[str]:
        return [c.summary() for c in self.checks if c.failed]

    @property
    def warnings(self) -> list[str]:
        return [c.summary() for c in self.checks if c.passed is False and not c.failed]

    def check(self, name: str) -> CheckResult | None:
        return next((c for c in self.checks if c.name == name), None)

    def to_dict(self) -> dict[str, Any]:
        return {
            "passed": self.passed,
            "round": self.round,
            "language": self.language,
            "failures": self.failures,
            "warnings": self.warnings,
            "constraints": self.constraints.to_dict(),
            "checks": [c.to_dict() for c in self.checks],
            "citations": [c.to_dict() for c in self.citations],
            "support": [v.to_dict() for v in self.verdicts],
            "uncited_paragraphs": [u.to_dict() for u in self.uncited],
            "section_lengths": [{"section": t, "length": n} for t, n in self.section_lengths],
            "ungrounded_sections": self.ungrounded_sections,
            "notes": self.notes,
        }


# --- sections --------------------------------------------------------------------------

_NUMBERING = re.compile(
    r"^\s*(?:第[一二三四五六七八九十\d]+(?:部分|章|节)|[（(]\s*[\d一二三四五六七八九十]+\s*[）)]"
    r"|[\d一二三四五六七八九十]+(?:\.\d+)*\s*[.、．:：)）]?)\s*[:：、.]?\s*"
)


def _title_key(text: str) -> str:
    return re.sub(r"[\W_]+", "", _NUMBERING.sub("", text)).lower()


def title_similarity(required: str, heading: str) -> float:
    a, b = _title_key(required), _title_key(heading)
    if not a or not b:
        return 0.0
    if a == b:
        return 1.0
    if (a in b or b in a) and min(len(a), len(b)) >= 2:
        return 0.9
    return difflib.SequenceMatcher(None, a, b).ratio()


def match_sections(
    required: list[RequiredSection], heads: list[Heading], threshold: float = 0.6
) -> list[SectionMatch]:
    """Greedy, in the request's order: each required section takes the best-matching
    heading after the previous match; if none follows, the best one anywhere (out of order)."""
    matches: list[SectionMatch] = []
    last = -1
    used: set[int] = set()
    for req in required:
        if req.is_title:
            first = next((h for h in heads if h.level == 1), heads[0] if heads else None)
            matches.append(SectionMatch(req, first))
            continue
        scored = [
            (title_similarity(req.title, h.text), k) for k, h in enumerate(heads) if k not in used
        ]
        after = [(s, k) for s, k in scored if k > last and s >= threshold]
        if after:
            best = max(after, key=lambda sk: (sk[0], -sk[1]))
            matches.append(SectionMatch(req, heads[best[1]]))
            used.add(best[1])
            last = best[1]
            continue
        anywhere = [(s, k) for s, k in scored if s >= threshold]
        if anywhere:
            best = max(anywhere, key=lambda sk: (sk[0], -sk[1]))
            matches.append(SectionMatch(req, heads[best[1]], in_order=False))
            used.add(best[1])
        else:
            matches.append(SectionMatch(req, None))
    return matches


# --- uncited paragraphs ---------------------------------------------------------------

_FACT_SIGNS = re.compile(r"\d|《[^》]+》|“[^”]{2,}”|\"[^\"]{2,}\"")


def uncited_paragraphs(
    markdown: str, skip_lines: set[int], language: str, citations: list[FoundCitation]
) -> list[UncitedParagraph]:
    """Paragraphs that state facts and cite nothing.

    A paragraph (blank-line separated block outside headings, the reference list, code,
    images) is *factual* when it is long enough to make claims (≥ 60 字, or ≥ 40 words
    in English) and contains a sign of a checkable fact: a digit, a 《title》, a quotation,
    or (English) two capitalised words not at a sentence start. A short paragraph (≥ 12
    字 or words) is factual too when it states a statistic: a number of five or more
    digits, a thousands-separated number, a decimal or a percentage. It is flagged when
    no citation of any form falls inside it.
    """
    cited_lines: set[int] = set()
    for c in citations:
        cited_lines.add(markdown.count("\n", 0, c.start))
    flagged: list[UncitedParagraph] = []
    section = ""
    block: list[tuple[int, str]] = []

    def flush() -> None:
        if not block:
            return
        text = " ".join(line for _, line in block)
        if any(i in cited_lines for i, _ in block):
            return
        prose = countable_text(text)
        unit = "words" if language == "en" else "字"
        size = count_units(prose, unit)
        statistic = STATISTIC.search(prose)
        if size < (40 if language == "en" else 60) and not (statistic and size >= 12):
            return
        signs = statistic or _FACT_SIGNS.search(prose)
        if not signs and language == "en":
            caps = re.findall(r"(?<![.!?]\s)(?<!^)\b[A-Z][a-zA-Z]+", prose)
            signs = caps[1] if len(caps) >= 2 else None
        if signs:
            what = signs if isinstance(signs, str) else signs.group(0)
            flagged.append(
                UncitedParagraph(
                    section,
                    block[0][0] + 1,
                    prose.strip()[:80],
                    f"{size} {unit} with facts (e.g. '{what}') and no citation",
                )
            )

    for i, line in lines_outside_fences(markdown):
        m = HEADING.match(line)
        if (
            m
            or not line.strip()
            or i in skip_lines
            or (IMAGE.search(line) and not IMAGE.sub("", line).strip())
        ):
            flush()
            block = []
            if m:
                section = m.group(2).strip()
            continue
        block.append((i, line))
    flush()
    return flagged


# --- the checks -----------------------------------------------------------------------


def _check_length(report: str, c: RequestConstraints, ref_title: str | None) -> CheckResult:
    if c.length is None:
        return CheckResult("length", None, None, None, ["the request states no length"], "warning")
    n = count_length(report, c.length.unit, ref_title)
    ok = c.length.contains(n)
    details = [] if ok else [f"from the request: '{c.length.source}'"]
    return CheckResult("length", ok, f"{n} {c.length.unit}", c.length.describe(), details)


def _check_sections(c: RequestConstraints, matches: list[SectionMatch]) -> CheckResult:
    if not c.sections:
        return CheckResult(
            "sections", None, None, None, ["the request lists no sections"], "warning"
        )
    missing = [m.required.display for m in matches if m.heading is None]
    disordered = [m.required.display for m in matches if m.heading and not m.in_order]
    details = [f"missing: {t}" for t in missing] + [f"out of order: {t}" for t in disordered]
    found = len(matches) - len(missing)
    return CheckResult(
        "sections",
        not missing and not disordered,
        f"{found}/{len(matches)} present",
        " → ".join(s.display for s in c.sections),
        details,
    )


def _check_format(raw: str, c: RequestConstraints) -> CheckResult:
    if c.format == "html":
        problems = html_document_problems(raw)
        return CheckResult(
            "format",
            not problems,
            "valid HTML" if not problems else "invalid HTML",
            "complete HTML document",
            problems,
        )
    problems = []
    if is_html(raw):
        problems.append("the report is HTML but the request did not ask for HTML")
    if raw.lstrip().startswith("```") and raw.rstrip().endswith("```"):
        problems.append("the whole report is wrapped in a code fence")
    return CheckResult(
        "format", not problems, "Markdown" if not problems else "not Markdown", "Markdown", problems
    )


def _check_style(markdown: str, c: RequestConstraints, skip: set[int]) -> CheckResult | None:
    if not (c.no_bullets or c.no_tables):
        return None
    details = []
    for i, line in lines_outside_fences(markdown):
        if i in skip:
            continue
        if c.no_bullets and re.match(r"^\s*(?:[-*+•·]|\d+[.)])\s+\S", line):
            details.append(f"line {i + 1}: bullet '{line.strip()[:40]}'")
        if c.no_tables and re.match(r"^\s*\|.*\|\s*$", line):
            details.append(f"line {i + 1}: table row '{line.strip()[:40]}'")
    wanted = ", ".join(
        w for w, on in (("no bullet lists", c.no_bullets), ("no tables", c.no_tables)) if on
    )
    return CheckResult("style", not details, f"{len(details)} violations", wanted, details[:10])


def _check_language(prose: str, language: str) -> CheckResult:
    ratio = cjk_ratio(prose)
    ok = ratio >= 0.5 if language == "zh" else ratio <= 0.2
    expected = "Chinese (CJK share ≥ 0.5)" if language == "zh" else "English (CJK share ≤ 0.2)"
    return CheckResult("language", ok, f"CJK share {ratio:.2f}", expected)


def _check_figures(markdown: str, c: RequestConstraints, run_dir: Path | None) -> CheckResult:
    found = images(markdown)
    details, existing = [], 0
    for _, target in found:
        if target.startswith("data:image/"):
            existing += 1
        elif re.match(r"https?://", target):
            details.append(f"{target}: a remote image, not a figure made in this run")
        elif run_dir is None:
            details.append(f"{target}: not verified (no run directory)")
            existing += 1
        elif (run_dir / target).is_file() or Path(target).is_file():
            existing += 1
        else:
            details.append(f"{target}: file does not exist under {run_dir}")
    broken = any("does not exist" in d for d in details)
    if not c.wants_figures:
        return CheckResult(
            "figures",
            not broken,
            f"{len(found)} images",
            "none required",
            details,
            "error" if broken else "warning",
        )
    return CheckResult(
        "figures",
        existing > 0 and not broken,
        f"{existing} images",
        "≥ 1 figure made in the run",
        details or ([] if existing else ["the request asks for charts; none embedded"]),
    )


def _check_citations(cites: list[FoundCitation], checked: bool) -> CheckResult:
    body = [c for c in cites if c.kind != "reference"]
    problems = [f"{c.raw}: {p}" for c in cites for p in c.problems]
    if not body:
        problems.insert(0, "the report cites nothing")
    passed: bool | None = not problems
    if not checked and not problems:
        passed = None
        problems.append("form only: no evidence available to resolve citations against")
    return CheckResult(
        "citations",
        passed,
        f"{len(body)} citations, {sum(1 for c in cites if c.problems)} with problems",
        "all resolve, were read in this run, labels match",
        problems[:30],
    )


def _support(
    markdown: str,
    cites: list[FoundCitation],
    vs: ValidateSettings,
    judge: ChatModel | None,
    embed: Embedder | None,
) -> list[SupportVerdict]:
    """One verdict per cited sentence, against the union of the evidence it cites."""
    from deepfolder.validate.citations import remove_citations

    # sentences are split on a copy with every citation blanked out, so that the full stop
    # in a label such as "p. 5" does not end a sentence
    masked = list(markdown)
    for c in cites:
        masked[c.start : c.end] = "\x00" * (c.end - c.start)
    masked_text = "".join(masked)
    spans = sentence_spans(masked_text)
    grouped: dict[tuple[int, int], list[Evidence]] = {}
    for c in cites:
        if c.kind == "reference" or not c.evidence:
            continue
        span = claim_for(masked_text, c.start, spans)
        bucket = grouped.setdefault(span, [])
        bucket.extend(ev for ev in c.evidence if ev.id not in {e.id for e in bucket})
    use_judge = use_model_judge(vs.support_judge, judge)
    verdicts = []
    for k, ((s, e), evidence) in enumerate(sorted(grouped.items())):
        claim = countable_text(remove_citations(markdown[s:e])).strip()
        claim = re.sub(r"\s+([。．.,，;；:：!?！？])", r"\1", claim)
        if not claim:
            continue
        verdict = local_verdict(
            claim,
            evidence,
            support_threshold=vs.support_threshold,
            weak_threshold=vs.weak_threshold,
            embed=embed,
        )
        # template text is unsupported whatever a judge says (see .placeholders)
        if use_judge and judge is not None and k < vs.max_judge_calls and not verdict.template:
            verdict = model_verdict(judge, claim, evidence, verdict)
        verdicts.append(verdict)
    return verdicts


def _check_support(verdicts: list[SupportVerdict], checked: bool) -> CheckResult:
    if not checked:
        return CheckResult(
            "support", None, "not checked", None, ["no evidence available to check support against"]
        )
    counts = {
        v: sum(1 for x in verdicts if x.verdict == v) for v in ("supported", "weak", "unsupported")
    }
    details = [
        f"{x.verdict}: '{x.sentence[:60]}' [{', '.join(x.evidence_ids)}] — {x.reason}"
        for x in verdicts
        if x.verdict != "supported"
    ]
    return CheckResult(
        "support",
        counts["unsupported"] == 0,
        ", ".join(f"{n} {v}" for v, n in counts.items()),
        "no unsupported claims",
        details[:20],
    )


def validate_report(
    report: str,
    constraints: RequestConstraints,
    *,
    resolve: Resolver | None,
    seen_ids: set[str] | None,
    language: str | None = None,
    run_dir: Path | None = None,
    judge: ChatModel | None = None,
    embed: Embedder | None = None,
    settings: Settings | None = None,
) -> ValidationReport:
    """Check ``report`` (Markdown, or HTML) against the request's constraints and the
    run's evidence. ``resolve`` None means a bare report: citations are checked for form
    only and support is not checked."""
    vs = settings.validate_ if settings is not None else ValidateSettings.model_validate({})
    lang = language or constraints.language
    markdown = as_markdown(report)
    ref_title = constraints.reference_section
    skip = reference_section_lines(markdown, ref_title)
    heads = headings(markdown)
    matches = match_sections(constraints.sections, heads)
    cites = check_citations(find_citations(markdown, skip), resolve, seen_ids, lang)
    checked = resolve is not None
    verdicts = _support(markdown, cites, vs, judge, embed) if checked else []
    uncited = uncited_paragraphs(markdown, skip, lang, cites)
    prose = countable_text(markdown, ref_title)

    checks = [
        _check_length(report, constraints, ref_title),
        _check_sections(constraints, matches),
        _check_format(report, constraints),
    ]
    style = _check_style(markdown, constraints, skip)
    if style is not None:
        checks.append(style)
    checks += [
        _check_language(prose, lang),
        _check_figures(markdown, constraints, run_dir),
        _check_citations(cites, checked),
        _check_support(verdicts, checked),
        CheckResult(
            "uncited_paragraphs",
            not uncited,
            f"{len(uncited)} paragraphs",
            "every factual paragraph cites evidence",
            [
                f"line {u.line} ({u.section or 'before the first heading'}): "
                f"'{u.excerpt[:40]}…' {u.reason}"
                for u in uncited
            ],
        ),
    ]
    unit = constraints.length.unit if constraints.length else ("words" if lang == "en" else "字")
    grounding, ungrounded, user_files = check_user_material(
        markdown, constraints, cites, resolve, seen_ids, skip, unit
    )
    missing = sum(1 for m in matches if m.heading is None and not m.required.is_title)
    checks += [
        check_request_shape(
            constraints, count_length(report, unit, ref_title), unit, heads, missing
        ),
        grounding,
        check_repetition(markdown, skip),
        check_placeholder_text(markdown, skip),
    ]
    table = check_table(report, markdown, constraints)
    if table is not None:
        checks.append(table)
    lengths = [
        (s.title, count_length(s.text, unit, ref_title))
        for s in split_sections(markdown)
        if s.level and not FENCE.match(s.text)
    ]
    return ValidationReport(
        checks,
        constraints,
        lang,
        cites,
        verdicts,
        uncited,
        matches,
        lengths,
        0,
        ungrounded,
        user_files,
    )
