"""Model-free measures of finished reports: ``deepfolder eval reports`` without ``--judge``.

Everything here is read from a run directory (``report.md``, ``request.txt``,
``evidence.jsonl``, ``ingest_report.json``, ``usage.json``, ``trace.jsonl``,
``validation.json``, ``run.json``) or from a batch directory (``batch.json`` and
``runs/TASK/``). No model is called.

The report is validated again, model-free (:func:`deepfolder.validate.checks.validate_report`
with the lexical support verdicts and no judge), so every run is measured by the same
code whatever judge or settings it ran with; the run's own verdict (``validation.json``)
is kept beside as ``run_passed``. The measures that :mod:`.report_quality` already
defines (user-material citation share, sections citing the user's files, repeated
sentences) come from there. What each measure means is in :data:`METRICS` and in
``docs/notes/eval.md``; the subtle ones:

- **length error**: how far the counted length (the validator's count, in the request's
  unit) lies outside the asked range, in % of the bound it misses; 0 inside the range;
- **uncited factual sentences**: prose sentences long enough to say something (the
  repetition check's rule) that carry a sign of a checkable fact (a statistic, a digit,
  a 《title》 or a quotation: the uncited-paragraph check's signs) and no citation;
- **user files cited**: the user's own files (``ingest_report.json``'s files that are
  not background collections; without it, the user-material sources of
  ``evidence.jsonl``) cited at least once in the body, as a share of them;
- **repeated n-grams across sections**: of each body section's distinct 8-token
  n-grams (a token is a CJK character or a Latin word, as the length rule counts;
  headings left out), the share that also occurs in another section;
- **language purity**: the requested language's share of the body prose — the CJK
  share (:func:`deepfolder.request_model.cjk_ratio`) for Chinese, one minus it for
  English.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from deepfolder.eval.report_quality import body_sections, run_seconds, score_report
from deepfolder.records import Evidence
from deepfolder.request_model import cjk_ratio, parse_request
from deepfolder.settings import Settings
from deepfolder.validate.checks import ValidationReport, validate_report
from deepfolder.validate.command import CheckError, load_evidence
from deepfolder.validate.document import HEADING, as_markdown, reference_section_lines
from deepfolder.validate.length import CJK_CHAR, LATIN_WORD, count_units, countable_text
from deepfolder.validate.numbers import STATISTIC
from deepfolder.validate.repetition import report_sentences

NGRAM = 8
_FACT_SIGNS = re.compile(r"\d|《[^》]+》|“[^”]{2,}”|\"[^\"]{2,}\"")
_TOKEN = re.compile(f"{CJK_CHAR.pattern}|{LATIN_WORD.pattern}")

Direction = Literal["higher", "lower"] | None


class EvalInputError(ValueError):
    """A path that holds no run to evaluate; the message names it and what was expected."""


@dataclass(frozen=True, slots=True)
class Metric:
    key: str
    label: str
    group: str
    better: Direction
    """Which way is better; None for a measure that only describes (citations made)."""
    kind: Literal["share", "percent", "count", "score", "seconds", "tokens", "cost", "rate"]
    description: str


METRICS: tuple[Metric, ...] = (
    Metric("checks_passed", "checks passed", "instructions", "higher", "share",
           "validator checks that pass, of those that apply (model-free re-validation)"),
    Metric("length_error", "length error %", "instructions", "lower", "percent",
           "% outside the asked length range (0 inside it)"),
    Metric("sections_found", "sections found", "instructions", "higher", "share",
           "required sections found, of those the request asks for"),
    Metric("citations", "citations", "citations", None, "count",
           "citations in the body (the reference list excluded)"),
    Metric("citation_density", "citations /100", "citations", None, "rate",
           "body citations per 100 字 (per 100 words in English)"),
    Metric("citations_resolving", "citations resolving", "citations", "higher", "share",
           "body citations whose ids or file/locator resolve to the run's evidence"),
    Metric("supported", "supported", "citations", "higher", "share",
           "cited sentences the evidence supports (lexical verdict)"),
    Metric("weak", "weak", "citations", "lower", "share",
           "cited sentences the evidence supports only weakly"),
    Metric("unsupported", "unsupported", "citations", "lower", "share",
           "cited sentences the evidence does not support"),
    Metric("uncited_factual", "uncited factual sentences", "citations", "lower", "count",
           "sentences stating a checkable fact without a citation"),
    Metric("user_files_cited", "user files cited", "coverage", "higher", "share",
           "the user's own files cited at least once, of all of them"),
    Metric("sources_cited", "sources cited", "coverage", "higher", "count",
           "distinct sources cited (files, and articles of collections)"),
    Metric("articles_cited", "articles cited", "coverage", None, "count",
           "distinct articles of background collections cited"),
    Metric("user_citations", "user-material citations", "coverage", "higher", "share",
           "body citations of the user's own material, of those that resolve"),
    Metric("sections_citing_user", "sections citing user files", "coverage", "higher", "share",
           "body sections with at least one citation of the user's material"),
    Metric("repeated_sentences", "repeated sentences", "repetition", "lower", "share",
           "sentences (≥ 15 字) repeating an earlier one near-verbatim"),
    Metric("repeated_ngrams", "repeated n-grams", "repetition", "lower", "share",
           f"{NGRAM}-token n-grams of a section that recur in another section"),
    Metric("language_purity", "language purity", "language", "higher", "share",
           "the requested language's share of the body prose"),
    Metric("input_tokens", "tokens in", "cost", "lower", "tokens", "model input tokens"),
    Metric("output_tokens", "tokens out", "cost", "lower", "tokens", "model output tokens"),
    Metric("cost", "cost", "cost", "lower", "cost", "model cost (USD; 0 for local models)"),
    Metric("wall_seconds", "seconds", "cost", "lower", "seconds", "run time after ingest"),
    Metric("model_calls", "model calls", "cost", "lower", "count", "model calls of the run"),
)  # fmt: skip
METRIC_BY_KEY = {m.key: m for m in METRICS}


@dataclass(slots=True)
class RunEval:
    """One run's measures. ``metrics`` holds every key of :data:`METRICS` (None: does not
    apply or not measurable); ``judge`` the judge's scores when ``--judge`` was given."""

    task: str
    run_dir: str
    metrics: dict[str, float | None] = field(default_factory=dict)
    checks: dict[str, bool | None] = field(default_factory=dict)
    details: dict[str, Any] = field(default_factory=dict)
    judge: dict[str, Any] | None = None
    error: str | None = None
    """Why the run could not be measured (no report: the task failed), else None."""

    def value(self, key: str) -> float | None:
        if key in self.metrics:
            return self.metrics[key]
        scores = (self.judge or {}).get("scores") or {}
        value = scores.get(key)
        return float(value) if isinstance(value, int | float) else None

    def to_dict(self) -> dict[str, Any]:
        return {
            "task": self.task,
            "run_dir": self.run_dir,
            "error": self.error,
            "metrics": self.metrics,
            "checks": self.checks,
            "details": self.details,
            "judge": self.judge,
        }


# --- finding the runs -------------------------------------------------------------------


def find_runs(path: Path) -> list[tuple[str, Path, str | None]]:
    """(task, run directory, why it has no report or None) for ``path``: a batch directory
    (``batch.json``: every task in its order), a run directory (``report.md``; the task is
    the name of the run's folder from ``run.json``, else the directory's name), or a
    folder of run directories."""
    path = Path(path)
    if (path / "batch.json").is_file():
        return _batch_runs(path)
    if (path / "report.md").is_file() or (path / "run.json").is_file():
        return [(task_name(path), path, _missing_report(path))]
    if path.is_dir():
        found = sorted(
            p for p in path.iterdir() if (p / "report.md").is_file() or (p / "run.json").is_file()
        )
        if found:
            return [(task_name(p), p, _missing_report(p)) for p in found]
    what = "does not exist" if not path.exists() else "holds no report.md, run.json or batch.json"
    raise EvalInputError(
        f"{path} {what}: give a run directory (deepfolder run --out) or a batch directory "
        "(deepfolder batch --out)"
    )


def _batch_runs(batch_dir: Path) -> list[tuple[str, Path, str | None]]:
    record = batch_dir / "batch.json"
    try:
        tasks = json.loads(record.read_text(encoding="utf-8"))["tasks"]
        entries = [(str(t["task"]), str(t.get("run_dir") or f"runs/{t['task']}"), t) for t in tasks]
    except (json.JSONDecodeError, KeyError, TypeError) as exc:
        raise EvalInputError(f"{record} is not a batch record ({exc})") from exc
    out = []
    for task, run_dir, entry in entries:
        path = Path(run_dir) if Path(run_dir).is_absolute() else batch_dir / run_dir
        missing = _missing_report(path)
        if missing and entry.get("state") not in (None, "done"):
            missing = f"task {entry.get('state')}: {entry.get('reason') or 'no reason recorded'}"
        out.append((task, path, missing))
    return out


def _missing_report(run_dir: Path) -> str | None:
    return None if (run_dir / "report.md").is_file() else f"{run_dir} has no report.md"


def task_name(run_dir: Path) -> str:
    """The task a single run directory answers: the name of its folder of materials
    (``run.json``, else ``ingest_report.json``), else the directory's own name."""
    for record in ("run.json", "ingest_report.json"):
        try:
            folder = json.loads((run_dir / record).read_text(encoding="utf-8")).get("folder")
        except (OSError, json.JSONDecodeError, AttributeError):
            continue
        if isinstance(folder, str) and folder:
            return Path(folder).name
    return run_dir.name


# --- the measures -----------------------------------------------------------------------


def length_error(measured: int, low: int | None, high: int | None) -> float:
    """% outside [low, high] of the bound missed; 0 inside."""
    if low is not None and measured < low:
        return 100.0 * (low - measured) / low
    if high is not None and measured > high:
        return 100.0 * (measured - high) / high
    return 0.0


def uncited_factual_sentences(markdown: str, skip_lines: set[int], cited: list[int]) -> list[str]:
    """Sentences with a sign of a checkable fact and no citation (see the module doc).
    ``cited``: the start offsets of every citation in ``markdown``."""
    out = []
    for sentence in report_sentences(markdown, skip_lines):
        if not sentence.substantial:
            continue
        if not (STATISTIC.search(sentence.text) or _FACT_SIGNS.search(sentence.text)):
            continue
        if not any(sentence.start <= at < sentence.end for at in cited):
            out.append(sentence.text)
    return out


def repeated_ngram_rate(section_texts: list[str], n: int = NGRAM) -> float | None:
    """Share of the sections' distinct token n-grams that occur in another section too
    (None with fewer than two sections that have an n-gram). Headings are left out: a
    word the section titles share is not the text repeating itself."""
    grams: list[set[tuple[str, ...]]] = []
    for text in section_texts:
        prose = "\n".join(line for line in text.splitlines() if not HEADING.match(line))
        tokens = [t.lower() for t in _TOKEN.findall(countable_text(prose))]
        found = {tuple(tokens[i : i + n]) for i in range(len(tokens) - n + 1)}
        if found:
            grams.append(found)
    if len(grams) < 2:
        return None
    shared = 0
    for i, mine in enumerate(grams):
        others: set[tuple[str, ...]] = set().union(*(g for j, g in enumerate(grams) if j != i))
        shared += len(mine & others)
    return shared / sum(len(g) for g in grams)


def language_purity(prose: str, language: str) -> float | None:
    """The requested language's share of ``prose`` (None for prose without letters)."""
    if not re.search(r"[A-Za-z\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]", prose):
        return None
    ratio = cjk_ratio(prose)
    return ratio if language == "zh" else 1.0 - ratio


def user_files(run_dir: Path, evidence: dict[str, Evidence]) -> list[str]:
    """The user's own files (paths in the folder): the files of ``ingest_report.json``
    that are not background collections; without it, the user-material sources of the
    run's evidence."""
    report = run_dir / "ingest_report.json"
    if report.is_file():
        try:
            files = json.loads(report.read_text(encoding="utf-8"))["files"]
            return sorted(
                str(f["path"])
                for f in files
                if f.get("kind") != "collection" and f.get("status") != "failed"
            )
        except (json.JSONDecodeError, KeyError, TypeError) as exc:
            raise EvalInputError(f"{report} is not an ingest report ({exc})") from exc
    return sorted({ev.source.path for ev in evidence.values() if ev.source.is_user_material})


def _ratio(part: int, whole: int) -> float | None:
    return part / whole if whole else None


def _usage(run_dir: Path) -> dict[str, float | None]:
    out: dict[str, float | None] = {
        "input_tokens": None,
        "output_tokens": None,
        "cost": None,
        "model_calls": None,
    }
    path = run_dir / "usage.json"
    if path.is_file():
        try:
            usage = json.loads(path.read_text(encoding="utf-8"))
        except json.JSONDecodeError as exc:
            raise EvalInputError(f"{path} is not valid JSON ({exc})") from exc
        total = usage.get("total") or {}
        for key in ("input_tokens", "output_tokens", "cost"):
            value = total.get(key)
            out[key] = float(value) if isinstance(value, int | float) else None
        calls = [m.get("calls") for m in (usage.get("models") or {}).values()]
        if calls and all(isinstance(c, int) for c in calls):
            out["model_calls"] = float(sum(calls))
    out["wall_seconds"] = run_seconds(run_dir)
    return out


def load_run(run_dir: Path) -> tuple[str, str, dict[str, Evidence], set[str], Settings]:
    """(report text, request, evidence by id, ids seen, settings) of a run directory."""
    report = run_dir / "report.md"
    request_file = run_dir / "request.txt"
    if not request_file.is_file():
        raise EvalInputError(f"{run_dir} has no request.txt; is it a run directory?")
    evidence: dict[str, Evidence] = {}
    seen: set[str] = set()
    try:
        if (run_dir / "evidence.jsonl").is_file():
            evidence, seen = load_evidence(run_dir / "evidence.jsonl")
    except CheckError as exc:
        raise EvalInputError(str(exc)) from exc
    settings = Settings.model_validate({})
    settings_file = run_dir / "settings.json"
    if settings_file.is_file():
        try:
            data = json.loads(settings_file.read_text(encoding="utf-8"))
            settings = Settings.model_validate(data.get("settings", data))
        except (json.JSONDecodeError, ValueError) as exc:
            raise EvalInputError(f"{settings_file} is not valid settings: {exc}") from exc
    return (
        report.read_text(encoding="utf-8"),
        request_file.read_text(encoding="utf-8"),
        evidence,
        seen,
        settings,
    )


def evaluate_run(task: str, run_dir: Path) -> tuple[RunEval, ValidationReport]:
    """Every model-free measure of one finished run (and the re-validation it rests on)."""
    report, request, evidence, seen, settings = load_run(run_dir)
    constraints = parse_request(request)
    # the lexical verdicts only: the same measure for every run, and no model
    settings = settings.model_copy(
        update={"validate_": settings.validate_.model_copy(update={"support_judge": "local"})}
    )
    result = validate_report(
        report,
        constraints,
        resolve=evidence.get,
        seen_ids=seen,
        run_dir=run_dir,
        settings=settings,
    )
    markdown = as_markdown(report)
    ref_title = constraints.reference_section
    skip = reference_section_lines(markdown, ref_title)
    prose = countable_text(markdown, ref_title)
    unit = (
        constraints.length.unit
        if constraints.length
        else ("words" if result.language == "en" else "字")
    )
    size = count_units(prose, unit)
    quality = score_report(report, evidence)

    body = [c for c in result.citations if c.kind != "reference"]
    resolving = [c for c in body if c.evidence]
    cited = {ev.source.id: ev.source for c in body for ev in c.evidence}
    files = user_files(run_dir, evidence)
    cited_paths = {s.path for s in cited.values() if s.is_user_material}
    verdicts = [v.verdict for v in result.verdicts]
    uncited = uncited_factual_sentences(markdown, skip, [c.start for c in result.citations])
    applicable = [c for c in result.checks if c.passed is not None]
    sections = [m for m in result.sections if not m.required.is_title]
    length = constraints.length

    metrics: dict[str, float | None] = {
        "checks_passed": _ratio(sum(bool(c.passed) for c in applicable), len(applicable)),
        "length_error": (
            None if length is None else round(length_error(size, length.min, length.max), 2)
        ),
        "sections_found": _ratio(sum(m.heading is not None for m in sections), len(sections)),
        "citations": float(len(body)),
        "citation_density": round(100 * len(body) / size, 3) if size else None,
        "citations_resolving": _ratio(len(resolving), len(body)),
        "supported": _ratio(verdicts.count("supported"), len(verdicts)),
        "weak": _ratio(verdicts.count("weak"), len(verdicts)),
        "unsupported": _ratio(verdicts.count("unsupported"), len(verdicts)),
        "uncited_factual": float(len(uncited)),
        "user_files_cited": _ratio(len(cited_paths & set(files)), len(files)),
        "sources_cited": float(len(cited)),
        "articles_cited": float(sum(1 for s in cited.values() if s.kind == "article")),
        "user_citations": quality.user_citation_share,
        "sections_citing_user": quality.sections_citing_user_share,
        "repeated_sentences": quality.repeated_share,
        "repeated_ngrams": repeated_ngram_rate([text for _, text in body_sections(markdown)]),
        "language_purity": language_purity(prose, result.language),
        **_usage(run_dir),
    }
    run_passed = None
    if (run_dir / "validation.json").is_file():
        try:
            recorded = json.loads((run_dir / "validation.json").read_text(encoding="utf-8"))
            run_passed = bool(recorded.get("passed"))
        except (json.JSONDecodeError, AttributeError):
            run_passed = None
    details = {
        "length": size,
        "unit": unit,
        "asked_length": length.describe() if length else None,
        "language": result.language,
        "run_passed": run_passed,
        "failed_checks": [c.name for c in result.checks if c.passed is False],
        "support": {v: verdicts.count(v) for v in ("supported", "weak", "unsupported")},
        "user_files": files,
        "user_files_not_cited": sorted(set(files) - cited_paths),
        "uncited_factual_sentences": uncited,
        "repeated_sentences": [r.sentence for r in quality.repeated],
    }
    checks = {c.name: c.passed for c in result.checks}
    return RunEval(task, str(run_dir), metrics, checks, details), result
