"""Turn validation failures into precise per-section instructions, and revise, bounded.

The instructions' words are in :mod:`deepfolder.prompts.revision` (a writer model reads
them); this module decides which a report gets and which section each belongs to.

The loop (:func:`revise_until_valid`) never rewrites the whole report: each round it
validates, derives instructions, asks for a rewrite of only the sections that have
instructions and for each missing required section, then validates again. It stops when
the report passes or after ``max_rounds`` and always finishes: a writer that raises or
returns nothing leaves its section unchanged and the failure on record.

Fixes that need no model are done in code: a citation label that does not match its
evidence is replaced by the right label; a sentence that repeats an earlier one, and a
sentence holding template text (``作者为xxx``, ``仅用于示例演示``), is deleted
(:func:`remove_code_fixable`); citations that do not resolve or were never read in the
run are removed (or visibly marked) by :func:`strip_unresolvable_citations`.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

from deepfolder.llm.base import ModelError
from deepfolder.prompts import revision as say
from deepfolder.records import Evidence
from deepfolder.request_model import RequestConstraints, RequiredSection
from deepfolder.validate.checks import ValidationReport, title_similarity
from deepfolder.validate.citations import (
    Resolver,
    check_citations,
    find_citations,
    label_matches,
)
from deepfolder.validate.document import (
    Section,
    join_sections,
    reference_section_lines,
    split_sections,
)
from deepfolder.validate.quality import remove_template_sentences
from deepfolder.validate.repetition import (
    ReportSentence,
    remove_repeated_sentences,
    remove_sentences,
    report_sentences,
)

__all__ = [
    "RevisionInstruction",
    "Section",
    "join_sections",
    "remove_code_fixable",
    "repair_citation_labels",
    "revise_until_valid",
    "revision_instructions",
    "split_sections",
    "strip_unresolvable_citations",
]


@dataclass(slots=True)
class RevisionInstruction:
    kind: Literal["add_section", "rewrite_section", "global"]
    message: str
    section_index: int | None = None
    """Index into :func:`split_sections` of the report the instruction was made for."""
    section_title: str | None = None
    required: RequiredSection | None = None
    after_title: str | None = None
    """For a missing section: the title of the heading it goes after."""
    length_change: int | None = None
    """For a section that makes the report too long or too short: by how much to change
    it, in the request's unit (negative: shorten). The message says the same in words."""
    check: str | None = None
    """The check the instruction answers, when a writer may act on it beyond the words
    (``user_material``: show the writer the user's own files first; ``support`` and
    ``uncited``: the claim in ``quote`` may be deleted in code, :func:`remove_claims`)."""
    quote: str | None = None
    """The sentence (``support``) or the paragraph's opening (``uncited``) meant."""

    def __str__(self) -> str:
        where = f"[{self.section_title}] " if self.section_title else ""
        return where + self.message


def _section_of_line(sections: list[Section], line: int) -> Section | None:
    at = 0
    for s in sections:
        n = s.text.count("\n") + (0 if s.text.endswith("\n") else 1)
        if at <= line < at + n:
            return s
        at += n
    return sections[-1] if sections else None


def _content_sections(sections: list[Section], ref_lines: set[int]) -> list[Section]:
    """Sections that carry prose: not the title, not the reference list."""
    out, at = [], 0
    for s in sections:
        n = s.text.count("\n") + (0 if s.text.endswith("\n") else 1)
        if s.level >= 2 and at not in ref_lines:
            out.append(s)
        at += n
    if not out:  # a report with only a title heading: its body is the content
        out = [s for s in sections if s.level == 1] or sections[:1]
    return out


SECTION_LABEL = re.compile(r"^\s*[（(]?[0-9一二三四五六七八九十]+[)）.、．]?\s*")


def _is_title_section(title: str) -> bool:
    """A section headed "（1）报告标题": where the report's title is stated."""
    return RequiredSection("", SECTION_LABEL.sub("", title), 0).is_title


def revision_instructions(
    report: ValidationReport, report_text: str, constraints: RequestConstraints
) -> list[RevisionInstruction]:
    """Precise, per-section instructions for everything ``report`` found wrong."""
    sections = split_sections(report_text)
    ref_lines = reference_section_lines(report_text, constraints.reference_section)
    content = _content_sections(sections, ref_lines)
    unit = constraints.length.unit if constraints.length else "字"
    out: list[RevisionInstruction] = []

    def for_section(
        sec: Section | None,
        message: str,
        length_change: int | None = None,
        check: str | None = None,
        quote: str | None = None,
    ) -> None:
        if sec is None:
            out.append(
                RevisionInstruction(
                    "global", message, length_change=length_change, check=check, quote=quote
                )
            )
        else:
            out.append(
                RevisionInstruction(
                    "rewrite_section",
                    message,
                    sec.index,
                    sec.title,
                    length_change=length_change,
                    check=check,
                    quote=quote,
                )
            )

    # missing sections, placed after the previous required section that is present
    previous: str | None = None
    for m in report.sections:
        if m.heading is None:
            out.append(
                RevisionInstruction(
                    "add_section",
                    say.add_missing_section(m.required.display, previous),
                    required=m.required,
                    after_title=previous,
                )
            )
        else:
            previous = m.required.display if not m.required.is_title else None
            if not m.in_order:
                out.append(
                    RevisionInstruction("global", say.section_out_of_order(m.required.display))
                )

    length = report.check("length")
    if length and length.passed is False and constraints.length:
        rule = constraints.length
        measured = int(str(length.measured).split()[0])
        sizes = {
            s.index: n for s, n in zip(content, _sizes(content, unit, constraints), strict=True)
        }
        missing_count = sum(
            1 for m in report.sections if m.heading is None and not m.required.is_title
        )
        per_section = rule.target // max(1, len(content) + missing_count)
        delta = rule.target - measured
        if delta > 0:
            # the report-title section ("（1）报告标题") holds the title, not prose to pad
            prose = [s for s in content if not _is_title_section(s.title)] or content
            short = [s for s in prose if sizes[s.index] < per_section] or prose
            share = max(20, delta // max(1, len(short) + missing_count))
            for s in short:
                for_section(s, say.expand_section(measured, unit, rule.describe(), share), share)
        else:
            long = [s for s in content if sizes[s.index] > per_section] or content
            share = max(20, -delta // max(1, len(long)))
            for s in long:
                for_section(s, say.shorten_section(measured, unit, rule.describe(), share), -share)

    lines_of = {id(c): report_text.count("\n", 0, c.start) for c in report.citations}
    for c in report.citations:
        sec = _section_of_line(sections, lines_of[id(c)])
        for eid in c.unresolved_ids:
            for_section(sec, say.remove_unresolved_citation(eid))
        for eid in c.unseen_ids:
            for_section(sec, say.remove_unseen_citation(eid))
        if c.kind == "free" and c.problems:
            for_section(sec, say.replace_free_citation(c.raw, c.problems[0]))
    for v in report.verdicts:
        if v.verdict != "unsupported" or v.template:
            continue  # template text is deleted in code (remove_code_fixable)
        # the claim is compared without its citations: look for a prefix that stops
        # before the full stop, where a citation may sit in the report
        pos = report_text.find(re.sub(r"[。.!?！？；;]+$", "", v.sentence[:20]))
        sec = _section_of_line(sections, report_text.count("\n", 0, pos)) if pos >= 0 else None
        for_section(
            sec,
            say.rewrite_unsupported_claim(v.evidence_ids, v.sentence, v.evidence_text),
            check="support",
            quote=v.sentence,
        )
    for u in report.uncited:
        sec = _section_of_line(sections, u.line - 1)
        for_section(
            sec,
            say.cite_uncited_paragraph(u.excerpt),
            check="uncited",
            quote=u.excerpt,
        )

    style = report.check("style")
    if style and style.passed is False:
        flagged = {
            _section_of_line(sections, int(d.split()[1].rstrip(":")) - 1)
            for d in style.details
            if d.startswith("line ")
        }
        for sec in sorted((s for s in flagged if s), key=lambda s: s.index):
            for_section(sec, say.write_as_prose(style.expected))
    language = report.check("language")
    if language and language.passed is False:
        for s in content:
            for_section(s, say.write_in_language(report.language))
    for name in ("format", "figures"):
        check = report.check(name)
        if check and check.failed:
            out.append(RevisionInstruction("global", check.summary()))
    out += _grounding_instructions(report, sections, content, constraints, out)
    return out


def _grounding_instructions(
    report: ValidationReport,
    sections: list[Section],
    content: list[Section],
    constraints: RequestConstraints,
    existing: list[RevisionInstruction],
) -> list[RevisionInstruction]:
    """Instructions for a report that ignores the request's shape, leaves the user's
    files out of a section, or lacks the table the request asks for. (Repeated sentences
    and template text are deleted in code: :func:`remove_code_fixable`.)"""
    out: list[RevisionInstruction] = []
    shape = report.check("request_shape")
    if shape and shape.failed:
        titles = [s.display for s in constraints.sections]
        length = constraints.length.describe() if constraints.length else None
        out.append(
            RevisionInstruction(
                "global",
                say.write_the_requested_report(shape.details[0], titles, length),
                check="request_shape",
            )
        )
    user = report.check("user_material")
    if user and user.failed:
        files = ", ".join(report.user_files[:5]) or "the user's files"
        for title in report.ungrounded_sections:
            sec = next((s for s in sections if s.level and s.title == title), None)
            if sec is None:
                continue
            out.append(
                RevisionInstruction(
                    "rewrite_section",
                    say.cite_user_files(files),
                    sec.index,
                    sec.title,
                    check="user_material",
                )
            )
    template = report.check("placeholder_text")
    if template and template.failed:
        # sentences are deleted in code; a heading or a table cell needs the writer
        for detail in template.details:
            m = re.match(r"line (\d+) \((?:heading|table)\): (.*)", detail)
            sec = _section_of_line(sections, int(m.group(1)) - 1) if m else None
            if m and sec is not None:
                out.append(
                    RevisionInstruction(
                        "rewrite_section",
                        say.replace_template_text(m.group(2)),
                        sec.index,
                        sec.title,
                        check="placeholder_text",
                    )
                )
    table = report.check("table")
    if table and table.failed:
        name = constraints.table_name or ("表格" if report.language == "zh" else "table")
        message = say.add_table(name)
        adding = next(
            (
                i
                for i in existing
                if i.kind == "add_section" and i.required and i.required.title == name
            ),
            None,
        )
        if adding is not None:  # the table is a required section that is missing
            adding.message += f"; {message}"
        elif content:
            best = max(content, key=lambda s: (title_similarity(name, s.title), -s.index))
            if title_similarity(name, best.title) < 0.3:
                best = max(content, key=lambda s: len(s.text))
            out.append(
                RevisionInstruction(
                    "rewrite_section", message, best.index, best.title, check="table"
                )
            )
        else:
            out.append(RevisionInstruction("global", message, check="table"))
    return out


def _sizes(content: list[Section], unit: str, c: RequestConstraints) -> list[int]:
    from deepfolder.validate.length import count_length

    return [count_length(s.text, unit, c.reference_section) for s in content]


# --- deterministic citation fixes -------------------------------------------------------


def repair_citation_labels(text: str, resolve: Resolver, language: str = "zh") -> tuple[str, int]:
    """Replace the label of every rendered citation ``[label](#E…)`` whose label does not
    match its evidence with the evidence's own label. Returns (text, number fixed)."""
    fixed = 0
    out, last = [], 0
    for c in find_citations(text):
        if c.kind != "link" or c.label is None:
            continue
        ev = resolve(c.ids[0])
        if ev is None or label_matches(c.label, ev):
            continue
        out.append(text[last : c.start])
        out.append(f"[{ev.citation_label(language)}](#{ev.id})")
        last = c.end
        fixed += 1
    out.append(text[last:])
    return "".join(out), fixed


def strip_unresolvable_citations(
    text: str,
    resolve: Resolver | None,
    seen_ids: set[str] | None,
    *,
    language: str = "zh",
    mode: Literal["mark", "remove"] = "mark",
) -> tuple[str, list[str]]:
    """Make sure no unresolvable citation ships. Ids that do not resolve, or that were
    never returned to the model in this run, are dropped from their citation; a citation
    left with no id, and a free-form citation that matches nothing, is replaced by a
    visible mark (``[来源待核实]`` / ``[source unverified]``) or removed (``mode``).
    Reference-list lines for dropped ids are removed. Returns (text, what was done)."""
    if resolve is None:
        return text, []
    mark = "[来源待核实]" if language.startswith("zh") else "[source unverified]"
    placeholder = "" if mode == "remove" else mark
    ref_lines = reference_section_lines(text)
    cites = check_citations(find_citations(text, ref_lines), resolve, seen_ids, language)
    done: list[str] = []
    out, last = [], 0
    dropped_lines: set[int] = set()
    for c in cites:
        bad = set(c.unresolved_ids) | set(c.unseen_ids)
        if c.kind == "free" and c.problems:
            replacement = placeholder
            done.append(f"{c.raw}: {c.problems[0]} → {'removed' if mode == 'remove' else mark}")
        elif c.kind == "reference" and bad:
            dropped_lines.add(text.count("\n", 0, c.start))
            continue
        elif bad and c.kind in ("id", "link"):
            keep = [i for i in c.ids if i not in bad]
            if keep and c.kind == "id":
                replacement = "".join(f"[{i}]" for i in keep)
            else:
                replacement = placeholder
            done.append(
                f"{c.raw}: dropped {', '.join(sorted(bad))} (never read in this run "
                f"or not in the index)"
            )
        else:
            continue
        out.append(text[last : c.start])
        out.append(replacement)
        last = c.end
    out.append(text[last:])
    result = "".join(out)
    if dropped_lines:
        kept = [
            ln for i, ln in enumerate(result.splitlines(keepends=True)) if i not in dropped_lines
        ]
        result = "".join(kept)
        done.append(f"removed {len(dropped_lines)} reference-list line(s) for dropped ids")
    return result, done


def remove_code_fixable(
    text: str, report: ValidationReport, constraints: RequestConstraints
) -> tuple[str, list[str]]:
    """Delete, in code, what ``report`` found and no model is needed for: a sentence that
    repeats an earlier one (the first saying stays) and a sentence holding template text.
    Returns (text, notes on what was deleted)."""
    notes: list[str] = []
    for name, remove in (
        ("repetition", remove_repeated_sentences),
        ("placeholder_text", remove_template_sentences),
    ):
        check = report.check(name)
        if check is None or not check.failed:
            continue
        skip = reference_section_lines(text, constraints.reference_section)
        text, removed = remove(text, skip)
        notes += [f"{name}: deleted in code: '{r[:60]}'" for r in removed]
    return text, notes


CLAIM_CHECKS = {"support", "uncited"}


def remove_claims(body: str, instructions: list[RevisionInstruction]) -> str | None:
    """``body`` without the claims ``instructions`` name: each unsupported sentence,
    each uncited paragraph (its sentences). For a writer that cannot be trusted to
    rewrite a section without losing what it says right (the embedded model rewrote a
    whole video section for one uncited paragraph and lost its results); what is cut
    may come back as a length revision, written from passages the section does not
    cite. None when an instruction is not of that kind, names nothing found, or nothing
    of the section would be left."""
    if not instructions or any(i.check not in CLAIM_CHECKS or not i.quote for i in instructions):
        return None
    sentences = [s for s in report_sentences(body) if s.text.strip()]
    doomed: list[ReportSentence] = []
    for i in instructions:
        key = _claim_key(i.quote or "")[:24]
        hit = next((s for s in sentences if key and _claim_key(s.text).startswith(key)), None)
        if hit is None:
            return None
        doomed += [s for s in sentences if s.line == hit.line] if i.check == "uncited" else [hit]
    if len({s.start for s in doomed}) >= len(sentences):
        return None
    return remove_sentences(body, list({s.start: s for s in doomed}.values()))


def _claim_key(text: str) -> str:
    return re.sub(r"[\W_]+", "", text).lower()


# --- the loop ---------------------------------------------------------------------------

RewriteSection = Callable[[Section, list[RevisionInstruction]], str]
"""Rewrite one section given its instructions (and the global ones); returns the new text."""
AddSection = Callable[[RequiredSection, list[RevisionInstruction]], str]
"""Write a missing section given its instruction (and the global ones)."""


def _as_section_text(new: str, old: Section) -> str:
    """Keep a rewritten section's heading (the writer may drop or renumber it)."""
    new = new.strip("\n")
    if old.level and not new.lstrip().startswith("#"):
        new = old.heading_line + "\n\n" + new
    return new + "\n\n"


def _insert_section(
    sections: list[Section], text: str, after_title: str | None, matches: dict[str, int]
) -> list[Section]:
    pos = len(sections)
    if after_title is not None and after_title in matches:
        anchor = matches[after_title]
        pos = anchor + 1
        level = sections[anchor].level
        while pos < len(sections) and sections[pos].level > level:
            pos += 1  # keep the anchor's subsections together
    elif after_title is None:
        pos = next((k + 1 for k, s in enumerate(sections) if s.level == 1), 0)
    new = Section(-1, 2, "", text.strip("\n") + "\n\n")
    return [*sections[:pos], new, *sections[pos:]]


def revise_until_valid(
    report_text: str,
    constraints: RequestConstraints,
    *,
    rewrite_section: RewriteSection,
    add_section: AddSection,
    validate: Callable[[str], ValidationReport],
    max_rounds: int,
    resolve: Resolver | None = None,
    seen_ids: set[str] | Callable[[], set[str]] | None = None,
    on_round: Callable[[int, ValidationReport, list[RevisionInstruction]], None] | None = None,
) -> tuple[str, list[ValidationReport]]:
    """Validate, revise section by section, repeat; at most ``max_rounds`` revisions.

    Returns the final text and every validation made (the first is of the original
    text, the last of the final text). With ``resolve`` given, wrong citation labels are
    repaired in code each round and, at the end, citations that do not resolve are
    stripped/marked (recorded in the last report's ``notes``). ``seen_ids`` may be a
    callable: the evidence a revision finds (its writer searches again) is seen too,
    and a set taken before the rounds would mark its citations unverified."""
    text = report_text
    reports: list[ValidationReport] = []
    language = constraints.language
    for round_no in range(max_rounds + 1):
        report = validate(text)
        report.round = round_no
        reports.append(report)
        if report.passed or round_no == max_rounds:
            break
        instructions = revision_instructions(report, text, constraints)
        if on_round is not None:
            on_round(round_no, report, instructions)
        report.notes.extend(f"instruction: {i}" for i in instructions)
        new_text = _apply(text, report, instructions, rewrite_section, add_section)
        new_text, fixed_notes = remove_code_fixable(new_text, report, constraints)
        report.notes.extend(fixed_notes)
        if resolve is not None:
            new_text, fixed = repair_citation_labels(new_text, resolve, language)
            if fixed:
                report.notes.append(f"repaired {fixed} citation label(s) in code")
        if new_text == text:
            report.notes.append("revision changed nothing; stopping")
            break
        text = new_text
    fixed_text, fixed_notes = remove_code_fixable(text, reports[-1], constraints)
    seen = seen_ids() if callable(seen_ids) else seen_ids
    stripped, done = strip_unresolvable_citations(fixed_text, resolve, seen, language=language)
    done = fixed_notes + done
    if done:
        final = validate(stripped)
        final.round = reports[-1].round
        final.notes.extend(done)
        reports.append(final)
        text = stripped
    last = reports[-1]
    if not last.passed:
        last.notes.append(
            f"still failing after {last.round} revision round(s): " + "; ".join(last.failures)
        )
    return text, reports


def _apply(
    text: str,
    report: ValidationReport,
    instructions: list[RevisionInstruction],
    rewrite_section: RewriteSection,
    add_section: AddSection,
) -> str:
    sections = split_sections(text)
    globals_ = [i for i in instructions if i.kind == "global"]
    per_section: dict[int, list[RevisionInstruction]] = {}
    for i in instructions:
        if i.kind == "rewrite_section" and i.section_index is not None:
            per_section.setdefault(i.section_index, []).append(i)
    for index, own in per_section.items():
        old = sections[index]
        try:
            new = rewrite_section(old, own + globals_)
        except ModelError:
            # the endpoint stayed down through its retries: end the run (it can be
            # resumed) rather than ship a report whose revision silently did not happen
            raise
        except Exception as exc:  # a writer failure must not stop the run
            report.notes.append(f"rewrite of '{old.title}' failed: {exc}")
            continue
        if new and new.strip():
            sections[index] = Section(old.index, old.level, old.title, _as_section_text(new, old))
    matched = {
        m.required.display: _index_of(sections, m.heading.text)
        for m in report.sections
        if m.heading is not None
    }
    for i in instructions:
        if i.kind != "add_section" or i.required is None:
            continue
        try:
            new = add_section(i.required, [i, *globals_])
        except ModelError:
            raise  # as above: a model that stays down ends the run
        except Exception as exc:
            report.notes.append(f"adding section {i.required.display} failed: {exc}")
            continue
        if not new or not new.strip():
            continue
        if not new.lstrip().startswith("#"):
            new = f"## {i.required.display}\n\n{new.strip()}"
        clean = {k: v for k, v in matched.items() if v is not None}
        sections = _insert_section(sections, new, i.after_title, clean)
        matched = {
            k: (v + 1 if v is not None and v >= _pos_of(sections, new) else v)
            for k, v in matched.items()
        }
        matched[i.required.display] = _pos_of(sections, new)
    return join_sections(sections)


def _index_of(sections: list[Section], heading_text: str) -> int | None:
    return next((k for k, s in enumerate(sections) if s.level and s.title == heading_text), None)


def _pos_of(sections: list[Section], text: str) -> int:
    return next(k for k, s in enumerate(sections) if s.text == text.strip("\n") + "\n\n")


def evidence_excerpt(ev: Evidence, chars: int = 80) -> str:
    return re.sub(r"\s+", " ", ev.segment.text).strip()[:chars]
