"""Does the report draw on the user's own material when the request is about it?

A request that refers to material it provides (``基于我提供的 PPT 内容``, ``the attached
report``, ``根据提供的Excel数据``) makes the user's files the report's primary sources;
``long_context*.json`` web collections only support them. So, when the request refers
to its material (:attr:`RequestConstraints.refers_to_user_material`) and the run saw
user material (:attr:`Source.is_user_material`), every body section of the report — each
section at the top heading level below the title, with its subsections, the reference
list excluded — must cite at least one piece of user material. A section that cites only
collection articles, or nothing, fails the check by name.

When the run saw no user material the check is not made (``passed`` None): the folder
lacks what the request builds on, which the run reports on its own.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from deepfolder.records import Evidence
from deepfolder.request_model import RequestConstraints
from deepfolder.validate.citations import FoundCitation, Resolver
from deepfolder.validate.document import split_sections
from deepfolder.validate.length import count_length
from deepfolder.validate.result import CheckResult

# Source.kind → the kind of material a request names (constraints.material_references)
MATERIAL_KIND = {
    "pdf": "paper",
    "docx": "document",
    "text": "document",
    "markdown": "document",
    "html": "document",
    "pptx": "slides",
    "sheet": "data",
    "json": "data",
    "analysis": "data",
    "figure": "data",
    "video": "video",
    "audio": "audio",
    "image": "image",
}


@dataclass(slots=True)
class BodySection:
    title: str
    first_line: int
    end_line: int
    """Lines ``first_line`` ≤ n < ``end_line`` (0-based) belong to the section."""
    evidence: list[Evidence] = field(default_factory=list)
    size: int = 0

    @property
    def cites_user_material(self) -> bool:
        return any(ev.source.is_user_material for ev in self.evidence)


def body_sections(
    markdown: str, skip_lines: set[int], cites: list[FoundCitation], unit: str
) -> list[BodySection]:
    """The report's body sections at the top level below the title (subsections belong
    to their parent), with the evidence each cites and its length; the reference list
    and the title are left out. A report without such headings is one body section."""
    sections = split_sections(markdown)
    starts, at = [], 0
    for s in sections:
        starts.append(at)
        at += s.text.count("\n") + (0 if s.text.endswith("\n") else 1)
    total = at
    levels = [s.level for k, s in enumerate(sections) if s.level and starts[k] not in skip_lines]
    below_title = [lv for lv in levels if lv >= 2]
    # sections are the headings below the title; a report that writes every section as
    # an H1 has no title heading of its own, and its H1s are its sections (a title H1
    # among them has no body and falls below the size every check asks of a section)
    top = min(below_title) if below_title else (1 if levels.count(1) >= 2 else None)
    units: list[BodySection] = []
    for k, s in enumerate(sections):
        in_refs = starts[k] in skip_lines
        closes = in_refs or (top is not None and 0 < s.level <= top)
        if units and closes:
            units[-1].end_line = min(units[-1].end_line, starts[k])
        if not in_refs and (s.level == top if top is not None else k == 0):
            units.append(BodySection(s.title or "(the report)", starts[k], total))
    lines = markdown.splitlines(keepends=True)
    cite_lines = [(markdown.count("\n", 0, c.start), c) for c in cites if c.kind != "reference"]
    for u in units:
        body = "".join(
            line
            for n, line in enumerate(lines[u.first_line : u.end_line], u.first_line)
            if n not in skip_lines
        )
        u.size = count_length(body, unit)
        for line, c in cite_lines:
            if u.first_line <= line < u.end_line:
                u.evidence.extend(c.evidence)
    return units


def check_user_material(
    markdown: str,
    c: RequestConstraints,
    cites: list[FoundCitation],
    resolve: Resolver | None,
    seen_ids: set[str] | None,
    skip_lines: set[int],
    unit: str,
) -> tuple[CheckResult, list[str], list[str]]:
    """The check, the titles of the body sections that cite no user material, and the
    names of the user's files the run saw (for the revision's instructions)."""
    if not c.refers_to_user_material:
        return (
            CheckResult(
                "user_material",
                None,
                "not asked",
                None,
                ["the request does not refer to material of its own"],
                "warning",
            ),
            [],
            [],
        )
    if resolve is None:
        return (
            CheckResult(
                "user_material", None, "not checked", None, ["no evidence to check against"]
            ),
            [],
            [],
        )
    pool = [ev for i in sorted(seen_ids or set()) if (ev := resolve(i)) is not None]
    pool += [ev for cite in cites for ev in cite.evidence]
    user = [ev for ev in pool if ev.source.is_user_material]
    named = ", ".join(c.material_kinds) or "its material"
    if not user:
        return (
            CheckResult(
                "user_material",
                None,
                "no user material in this run",
                None,
                [f"the request builds on the user's {named}, but the run saw none of it"],
                "warning",
            ),
            [],
            [],
        )
    details = []
    have = {MATERIAL_KIND.get(ev.source.kind, ev.source.kind) for ev in user}
    absent = [k for k in c.material_kinds if k not in have and k != "document"]
    units = [u for u in body_sections(markdown, skip_lines, cites, unit) if u.size >= 30]
    failing = [u for u in units if not u.cites_user_material]
    for u in failing:
        cited = (
            "cites nothing"
            if not u.evidence
            else (f"cites only {len({e.source.id for e in u.evidence})} collection article(s)")
        )
        details.append(f"section '{u.title}' {cited}, none of the user's files")
    if absent:
        details.append(f"the request names {', '.join(absent)}; the run saw none (not a failure)")
    files = sorted({ev.source.display_name for ev in user})
    return (
        CheckResult(
            "user_material",
            not failing,
            f"{len(units) - len(failing)}/{len(units)} sections cite the user's files",
            f"every section cites the user's files ({', '.join(files[:5])})",
            details,
        ),
        [u.title for u in failing],
        files,
    )
