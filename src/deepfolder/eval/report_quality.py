"""How well a finished report is grounded in the user's own files (issue 11's measures).

Scores a run directory (``report.md``, ``evidence.jsonl``, ``validation.json``,
``trace.jsonl``, ``usage.json``) on:

- **key-fact recall** against a hand-written checklist (``benchmarks/*_checklist.json``):
  each fact is a list of pattern groups; it is found when at least ``min_groups`` groups
  (default: all) have a regular expression that matches the report's prose. The prose is
  what the length rule counts (``validate.length.countable_text``): citations, the
  reference list and markup are removed first, so a file name in a citation label or an
  article title in the reference list never counts as a fact stated;
- **user-material citations**: the share of body citations whose evidence is the user's
  own material (``Source.is_user_material``: anything but a background collection
  article); ids that resolve to no evidence are counted apart;
- **sections citing the user's files**: the share of body sections (the shallowest
  heading level used at least twice, the reference list excluded; sub-sections belong
  to their section) with at least one citation of user material;
- **repeated sentences**: sentences of at least 15 字 whose normalised character-bigram
  Jaccard similarity with an earlier sentence is at least 0.85, as a share of such
  sentences — the small model's copy-and-repeat failure;
- the validator's verdict (``validation.json``) and the run time (``usage.json``'s
  ``wall_seconds``, else the span of ``trace.jsonl``; both start after ingest).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from deepfolder.records import Evidence
from deepfolder.report.citations import extract_citation_ids
from deepfolder.validate.command import load_evidence
from deepfolder.validate.document import as_markdown, is_reference_title, split_sections
from deepfolder.validate.length import count_units, countable_text
from deepfolder.validate.support import sentence_spans

MIN_SENTENCE_UNITS = 15
REPEAT_THRESHOLD = 0.85


class QualityInputError(ValueError):
    """A checklist or run directory that cannot be scored; the message names the file."""


# --- checklist -------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class KeyFact:
    id: str
    description: str
    groups: tuple[tuple[re.Pattern[str], ...], ...]
    min_groups: int
    source: str = ""

    def found_in(self, prose: str) -> bool:
        hits = sum(1 for group in self.groups if any(p.search(prose) for p in group))
        return hits >= self.min_groups


def load_checklist(path: Path) -> list[KeyFact]:
    """The facts of a checklist file (see ``benchmarks/grounding_checklist.json``)."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
        facts = [_fact(entry) for entry in data["facts"]]
    except (OSError, json.JSONDecodeError, KeyError, TypeError, re.error, ValueError) as exc:
        raise QualityInputError(
            f"{path}: not a key-fact checklist ({exc}); it must be JSON "
            '{"facts": [{"id", "description", "groups": [[regex, …], …], "min_groups"?}]}'
        ) from exc
    ids = [f.id for f in facts]
    if len(set(ids)) != len(ids):
        raise QualityInputError(f"{path}: fact ids must be unique, got {ids}")
    return facts


def _fact(entry: Mapping[str, Any]) -> KeyFact:
    groups = tuple(tuple(re.compile(p, re.IGNORECASE) for p in group) for group in entry["groups"])
    if not groups or any(not g for g in groups):
        raise ValueError(f"fact {entry.get('id')!r} has an empty pattern group")
    need = int(entry.get("min_groups", len(groups)))
    if not 1 <= need <= len(groups):
        raise ValueError(f"fact {entry['id']!r}: min_groups {need} outside 1..{len(groups)}")
    return KeyFact(
        str(entry["id"]), str(entry["description"]), groups, need, entry.get("source", "")
    )


# --- measures --------------------------------------------------------------------------


@dataclass(slots=True)
class SectionCitations:
    title: str
    citations: int
    user_citations: int

    @property
    def cites_user_material(self) -> bool:
        return self.user_citations > 0


@dataclass(slots=True)
class RepeatedSentence:
    sentence: str
    earlier: str
    similarity: float


@dataclass(slots=True)
class ReportQuality:
    length_zi: int
    facts_found: list[str] = field(default_factory=list)
    facts_missing: list[str] = field(default_factory=list)
    citations: int = 0
    user_citations: int = 0
    unresolved_citations: int = 0
    sections: list[SectionCitations] = field(default_factory=list)
    sentences: int = 0
    repeated: list[RepeatedSentence] = field(default_factory=list)
    validation: dict[str, Any] | None = None
    run_seconds: float | None = None

    @property
    def fact_recall(self) -> float | None:
        total = len(self.facts_found) + len(self.facts_missing)
        return len(self.facts_found) / total if total else None

    @property
    def user_citation_share(self) -> float | None:
        resolved = self.citations - self.unresolved_citations
        return self.user_citations / resolved if resolved else None

    @property
    def sections_citing_user_share(self) -> float | None:
        if not self.sections:
            return None
        return sum(s.cites_user_material for s in self.sections) / len(self.sections)

    @property
    def repeated_share(self) -> float | None:
        return len(self.repeated) / self.sentences if self.sentences else None

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        for name in (
            "fact_recall",
            "user_citation_share",
            "sections_citing_user_share",
            "repeated_share",
        ):
            data[name] = getattr(self, name)
        return data


def body_sections(markdown: str) -> list[tuple[str, str]]:
    """(title, text) of the report's body sections: the shallowest heading level that is
    used at least twice (so a document title above them is not a section), each with its
    sub-sections; the reference list is left out. A report without such headings is one
    untitled section."""
    sections = [s for s in split_sections(markdown) if s.level]
    levels = [s.level for s in sections if not is_reference_title(s.title)]
    repeated = sorted({lv for lv in levels if levels.count(lv) >= 2})
    if not repeated:
        return [("", markdown)]
    level = repeated[0]
    out: list[tuple[str, str]] = []
    current: list[str] | None = None
    for s in sections:
        if s.level <= level:
            current = None
            if s.level == level and not is_reference_title(s.title):
                current = [s.text]
                out.append((s.title, ""))
        elif current is not None:
            current.append(s.text)
        if current is not None and out:
            out[-1] = (out[-1][0], "".join(current))
    return out


def section_citations(
    markdown: str, resolve: Mapping[str, Evidence]
) -> tuple[list[SectionCitations], int]:
    """Citations per body section and how many ids resolve to no evidence."""
    result, unresolved = [], 0
    for title, text in body_sections(markdown):
        ids = extract_citation_ids(text)
        known = [resolve[i] for i in ids if i in resolve]
        unresolved += len(ids) - len(known)
        user = sum(1 for ev in known if ev.source.is_user_material)
        result.append(SectionCitations(title, len(ids), user))
    return result, unresolved


def _bigrams(sentence: str) -> set[str]:
    norm = re.sub(r"[\W_]+", "", sentence).lower()
    return {norm[i : i + 2] for i in range(len(norm) - 1)}


def repeated_sentences(
    prose: str,
    *,
    min_units: int = MIN_SENTENCE_UNITS,
    threshold: float = REPEAT_THRESHOLD,
) -> tuple[int, list[RepeatedSentence]]:
    """(number of sentences of at least ``min_units`` 字, those that repeat an earlier
    one: character-bigram Jaccard ≥ ``threshold``)."""
    seen: list[tuple[str, set[str]]] = []
    repeats: list[RepeatedSentence] = []
    for start, end in sentence_spans(prose):
        sentence = prose[start:end].strip()
        if count_units(sentence, "字") < min_units:
            continue
        grams = _bigrams(sentence)
        best, best_sim = "", 0.0
        for earlier, other in seen:
            union = grams | other
            sim = len(grams & other) / len(union) if union else 0.0
            if sim > best_sim:
                best, best_sim = earlier, sim
        if best_sim >= threshold:
            repeats.append(RepeatedSentence(sentence, best, round(best_sim, 3)))
        seen.append((sentence, grams))
    return len(seen), repeats


def validation_summary(data: Mapping[str, Any]) -> dict[str, Any]:
    """The verdict of a ``validation.json``: passed, and the checks that passed/failed."""
    checks = data.get("checks") or []
    return {
        "passed": bool(data.get("passed")),
        "round": data.get("round"),
        "passed_checks": [c["name"] for c in checks if c.get("passed")],
        "failed_checks": [
            f"{c['name']} ({c.get('severity', 'error')})" for c in checks if not c.get("passed")
        ],
    }


def score_report(
    report: str,
    evidence: Mapping[str, Evidence],
    checklist: list[KeyFact] | None = None,
) -> ReportQuality:
    """Every measure that needs only the report text and the run's evidence."""
    markdown = as_markdown(report)
    prose = countable_text(markdown)
    quality = ReportQuality(length_zi=count_units(prose, "字"))
    for fact in checklist or []:
        (quality.facts_found if fact.found_in(prose) else quality.facts_missing).append(fact.id)
    quality.sections, quality.unresolved_citations = section_citations(markdown, evidence)
    quality.citations = sum(s.citations for s in quality.sections)
    quality.user_citations = sum(s.user_citations for s in quality.sections)
    quality.sentences, quality.repeated = repeated_sentences(prose)
    return quality


def run_seconds(run_dir: Path) -> float | None:
    """Seconds the run took after ingest: ``usage.json`` wall_seconds, else the span of
    the ``at`` times in ``trace.jsonl``."""
    usage = run_dir / "usage.json"
    if usage.is_file():
        try:
            wall = json.loads(usage.read_text(encoding="utf-8")).get("wall_seconds")
        except json.JSONDecodeError:
            wall = None
        if isinstance(wall, int | float):
            return float(wall)
    trace = run_dir / "trace.jsonl"
    if not trace.is_file():
        return None
    times = []
    for line in trace.read_text(encoding="utf-8").splitlines():
        try:
            at = json.loads(line).get("at")
        except json.JSONDecodeError:
            continue  # a run killed mid-write leaves a partial last line
        if isinstance(at, int | float):
            times.append(float(at))
    return max(times) - min(times) if len(times) >= 2 else None


def score_run_dir(run_dir: Path, checklist: list[KeyFact] | None = None) -> ReportQuality:
    """Score a finished run directory (see the module docstring for what is read)."""
    run_dir = Path(run_dir)
    report = run_dir / "report.md"
    if not report.is_file():
        raise QualityInputError(f"{run_dir} has no report.md; is it a finished run directory?")
    evidence: dict[str, Evidence] = {}
    if (run_dir / "evidence.jsonl").is_file():
        evidence, _ = load_evidence(run_dir / "evidence.jsonl")
    quality = score_report(report.read_text(encoding="utf-8"), evidence, checklist)
    validation = run_dir / "validation.json"
    if validation.is_file():
        try:
            quality.validation = validation_summary(
                json.loads(validation.read_text(encoding="utf-8"))
            )
        except (json.JSONDecodeError, KeyError, TypeError) as exc:
            raise QualityInputError(f"{validation} is not a validation result: {exc}") from exc
    quality.run_seconds = run_seconds(run_dir)
    return quality
