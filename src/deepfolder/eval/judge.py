"""The judge of ``deepfolder eval reports --judge``: five DR³-Eval-style scores, 0–100.

The rubrics are :mod:`deepfolder.prompts.report_judge`. Where code can decide, the judge
only answers a narrow question and code computes the score:

- **IR**: key points of the user's files, listed once per task by the judge (cached by
  the material's hash), then the points a report covers; IR = covered / points;
- **FA**: each cited claim (the re-validation's cited sentences, at most ``max_claims``
  spread over the report) against the text of its evidence, with the validator's support
  judge; FA = (supported + ½ weak) / claims;
- **CC**: the judge names the relevant sources among the user's files and the sources
  the run found; CC = relevant sources cited / relevant sources;
- **IF**, **DQ**: the judge's score on an anchored rubric;
- **total**: the mean of the five that were scored.

The user's material for the key points is read from the run's index (``ingest_report.json``
names it; ``Index.segments_of`` per file) when it is still there, else from the user-
material passages in the runs' ``evidence.jsonl`` (then only what the runs retrieved;
``eval.json`` says which). Gold insights are not available offline.

Every call is made at temperature 0 and recorded as a ``model_call`` step (the run
trace's format, :func:`deepfolder.agent.recording.model_call_step`) in
``OUT/judge/trace.jsonl``, with ``turns.txt`` and ``usage.json`` beside it. Results are
cached under the cache directory by (everything the judge read for the run, the rubric
version and hash, the judge model); a cached result is recorded as a note step.
A reply that is not the JSON asked for leaves that dimension unscored with the reason
(the run's result is then not cached).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from deepfolder.agent.recording import RecordedModel, model_call_step
from deepfolder.eval.reports import user_files
from deepfolder.llm.base import ChatModel
from deepfolder.prompts import report_judge as rubric
from deepfolder.records import Evidence, NoteStep, Step
from deepfolder.settings import Settings
from deepfolder.validate.checks import ValidationReport
from deepfolder.validate.command import load_evidence
from deepfolder.validate.document import as_markdown
from deepfolder.validate.length import countable_text
from deepfolder.validate.support import SupportVerdict, model_verdict

REPLY_TOKENS = 600
_CITATION_TARGET = re.compile(r"\]\(#E[0-9a-f]{8}\)")
LABELS = {
    "judge_ir": "IR",
    "judge_fa": "FA",
    "judge_cc": "CC",
    "judge_if": "IF",
    "judge_dq": "DQ",
    "judge_total": "judge total",
}


class JudgeReplyError(ValueError):
    """The judge's reply is not the JSON the rubric asks for."""


def _digest(value: Any) -> str:
    blob = json.dumps(value, ensure_ascii=False, sort_keys=True, default=str)
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()


class JudgeCache:
    """Judge results as JSON files under ``root``, one per key."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)

    def _path(self, key: str) -> Path:
        return self.root / key[:2] / f"{key}.json"

    def get(self, key: str) -> dict[str, Any] | None:
        path = self._path(key)
        if not path.is_file():
            return None
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except json.JSONDecodeError:
            return None  # a write cut short: judged again
        return data if isinstance(data, dict) else None

    def put(self, key: str, value: dict[str, Any]) -> None:
        path = self._path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(value, ensure_ascii=False, indent=1), encoding="utf-8")
        tmp.replace(path)


def parse_reply(content: str, key: str) -> Any:
    """The value of ``key`` in the JSON object of a reply (a code fence or words around it
    are tolerated)."""
    m = re.search(r"\{.*\}", content or "", re.DOTALL)
    if not m:
        raise JudgeReplyError(f"no JSON object in the judge's reply: {(content or '')[:120]!r}")
    try:
        data = json.loads(m.group(0))
    except json.JSONDecodeError as exc:
        raise JudgeReplyError(f"the judge's reply is not valid JSON: {exc.msg}") from exc
    if not isinstance(data, dict) or key not in data:
        raise JudgeReplyError(f"the judge's reply has no {key!r}: {m.group(0)[:120]!r}")
    return data[key]


def _numbers(value: Any, upper: int) -> set[int]:
    """The valid 1-based numbers of a list the judge gave (others are ignored)."""
    if not isinstance(value, list):
        raise JudgeReplyError(f"expected a list of numbers, got {value!r}"[:160])
    out = set()
    for item in value:
        try:
            n = int(item)
        except (TypeError, ValueError):
            continue
        if 1 <= n <= upper:
            out.add(n)
    return out


def spread(items: Sequence[Any], limit: int) -> list[Any]:
    """At most ``limit`` of ``items``, evenly spaced from first to last."""
    if len(items) <= limit:
        return list(items)
    if limit <= 1:
        return list(items[:limit])
    step = (len(items) - 1) / (limit - 1)
    return [items[round(k * step)] for k in range(limit)]


# --- the user's material ----------------------------------------------------------------


def task_material(run_dirs: Sequence[Path], chars: int) -> tuple[list[tuple[str, str]], str]:
    """(file name, text) of the user's files of one task, at most ``chars`` characters in
    all (an equal share per file, from its start), and where they were read: ``index`` or
    ``evidence``."""
    texts = _material_from_index(run_dirs) or _material_from_evidence(run_dirs)
    origin = "index" if texts and texts[0][2] == "index" else "evidence"
    if not texts:
        return [], origin
    share = max(1, chars // len(texts))
    return [(name, text[:share]) for name, text, _ in texts], origin


def _material_from_index(run_dirs: Sequence[Path]) -> list[tuple[str, str, str]]:
    from deepfolder.index import open_index

    for run_dir in run_dirs:
        report = run_dir / "ingest_report.json"
        try:
            index_dir = Path(json.loads(report.read_text(encoding="utf-8"))["index_dir"])
            files = user_files(run_dir, {})
        except (OSError, ValueError, KeyError, TypeError):
            continue
        if not (index_dir / "meta.json").is_file():
            continue  # never create an index here
        settings = _run_settings(run_dir)
        # reading segments needs no vectors: the sentence encoder is not loaded
        settings = settings.model_copy(
            update={"retrieval": settings.retrieval.model_copy(update={"dense": False})}
        )
        try:
            index = open_index(index_dir, settings)
        except (OSError, ValueError, RuntimeError):
            continue
        try:
            out = []
            for path in files:
                text = "\n".join(s.text for s in index.segments_of(path))
                if text.strip():
                    out.append((path, text, "index"))
        finally:
            index.close()
        if out:
            return out
    return []


def _run_settings(run_dir: Path) -> Settings:
    try:
        data = json.loads((run_dir / "settings.json").read_text(encoding="utf-8"))
        return Settings.model_validate(data.get("settings", data))
    except (OSError, ValueError):
        return Settings.model_validate({})


def _material_from_evidence(run_dirs: Sequence[Path]) -> list[tuple[str, str, str]]:
    by_file: dict[str, dict[str, tuple[int, str]]] = {}
    for run_dir in run_dirs:
        if not (run_dir / "evidence.jsonl").is_file():
            continue
        evidence, _ = load_evidence(run_dir / "evidence.jsonl")
        for ev in evidence.values():
            if ev.source.is_user_material:
                by_file.setdefault(ev.source.path, {})[ev.id] = (ev.segment.seq, ev.segment.text)
    return [
        (path, "\n".join(text for _, text in sorted(segs.values())), "evidence")
        for path, segs in sorted(by_file.items())
    ]


# --- the judge --------------------------------------------------------------------------


@dataclass(slots=True)
class RunMaterial:
    """What the judge reads about one run."""

    task: str
    request: str
    report: str
    evidence: dict[str, Evidence]
    validation: ValidationReport
    user_files: list[str]
    material: list[tuple[str, str]] = field(default_factory=list)


@dataclass
class Judge:
    model: ChatModel
    cache: JudgeCache
    record: Callable[[Step], None]
    max_claims: int = 20
    key_point_limit: int = 12
    report_chars: int = 6000
    max_sources: int = 30
    turn: int = 0
    calls: int = 0
    cache_hits: int = 0

    @property
    def version(self) -> dict[str, str]:
        return {
            "rubric_version": rubric.RUBRIC_VERSION,
            "rubric_hash": rubric.rubric_hash(),
            "model": self.model.name,
        }

    def _key(self, kind: str, inputs: Any) -> str:
        return _digest([kind, inputs, self.version])

    def ask(self, purpose: str, prompt: str, schema: dict[str, Any], key: str) -> Any:
        """One recorded judge call at temperature 0; the value of ``key`` in its reply."""
        messages = [
            {"role": "system", "content": rubric.SYSTEM},
            {"role": "user", "content": prompt},
        ]
        size = self.model.count_tokens(rubric.SYSTEM + prompt)
        if size + REPLY_TOKENS > self.model.context_window:
            raise JudgeReplyError(
                f"the {purpose!r} prompt is {size} tokens, too long for the judge's context "
                f"window of {self.model.context_window} with {REPLY_TOKENS} for the reply; "
                "lower --material-chars or use a judge with a longer context"
            )
        self.turn += 1
        self.calls += 1
        response, step = model_call_step(
            self.model,
            messages,
            turn=self.turn,
            purpose=purpose,
            temperature=0.0,
            json_schema=schema,
            max_tokens=REPLY_TOKENS,
        )
        self.record(step)
        return parse_reply(response.content or "", key)

    def _note(self, message: str, level: str = "info") -> None:
        self.record(NoteStep(turn=self.turn, message=message, level=level))

    def key_points(self, task: str, request: str, material: list[tuple[str, str]]) -> list[str]:
        """The key points of a task's material (cached by the material and the request)."""
        if not material:
            return []
        key = self._key("key_points", [request, material, self.key_point_limit])
        cached = self.cache.get(key)
        if cached is not None:
            self.cache_hits += 1
            self._note(f"{task}: key points from the cache ({key[:12]})")
            return [str(p) for p in cached["key_points"]]
        prompt = rubric.key_points_prompt(request, material, self.key_point_limit)
        try:
            value = self.ask(
                f"judge key points {task}", prompt, rubric.KEY_POINTS_SCHEMA, "key_points"
            )
            if not isinstance(value, list):
                raise JudgeReplyError(f"key_points is not a list: {value!r}"[:160])
        except JudgeReplyError as exc:
            self._note(f"{task}: no key points, IR not scored: {exc}", "warning")
            return []
        points = [str(p).strip() for p in value if str(p).strip()][: self.key_point_limit]
        self.cache.put(key, {"key_points": points})
        return points

    def score_run(self, run: RunMaterial, points: list[str]) -> dict[str, Any]:
        """The five scores of one run, with what each rests on (cached)."""
        # the rendered citations' link targets (#E1234abcd) say nothing to the judge
        report_text = _CITATION_TARGET.sub("]", as_markdown(run.report))[: self.report_chars]
        claims = spread([v for v in run.validation.verdicts if v.evidence_ids], self.max_claims)
        sources = self._candidates(run)
        inputs = [
            run.request,
            report_text,
            points,
            [(v.sentence, [run.evidence[i].segment.text for i in v.evidence_ids]) for v in claims],
            sources,
        ]
        key = self._key("run", inputs)
        cached = self.cache.get(key)
        if cached is not None:
            self.cache_hits += 1
            self._note(f"{run.task}: judge scores from the cache ({key[:12]})")
            return {**cached, "cached": True}
        scores: dict[str, float | None] = {}
        detail: dict[str, Any] = {}
        errors: dict[str, str] = {}
        for dim, fn in (
            ("judge_ir", lambda: self._recall(run, points, report_text)),
            ("judge_fa", lambda: self._accuracy(run, claims)),
            ("judge_cc", lambda: self._coverage(run, sources)),
            ("judge_if", lambda: self._rubric_score(run, report_text, "IF")),
            ("judge_dq", lambda: self._rubric_score(run, report_text, "DQ")),
        ):
            try:
                scores[dim], detail[dim] = fn()
            except JudgeReplyError as exc:
                scores[dim], errors[dim] = None, str(exc)
                self._note(f"{run.task}: {LABELS[dim]} not scored: {exc}", "warning")
        given = [s for s in scores.values() if s is not None]
        scores["judge_total"] = round(sum(given) / len(given), 2) if given else None
        result = {"scores": scores, "detail": detail, "errors": errors, "key": key[:16]}
        if not errors:
            self.cache.put(key, result)
        return {**result, "cached": False}

    def _recall(self, run: RunMaterial, points: list[str], report: str) -> tuple[float | None, Any]:
        if not points:
            return None, {"reason": "no key points: no material of the user's files"}
        prose = countable_text(report)
        value = self.ask(
            f"judge IR {run.task}",
            rubric.recall_prompt(points, prose),
            rubric.COVERED_SCHEMA,
            "covered",
        )
        covered = sorted(_numbers(value, len(points)))
        return round(100 * len(covered) / len(points), 2), {"covered": covered, "points": points}

    def _accuracy(self, run: RunMaterial, claims: list[SupportVerdict]) -> tuple[float | None, Any]:
        if not claims:
            return None, {"reason": "no cited claims"}
        judge = RecordedModel(self.model, self.record, f"judge FA {run.task}", lambda: self.turn)
        verdicts = []
        for claim in claims:
            self.turn += 1
            self.calls += 1
            evidence = [run.evidence[i] for i in claim.evidence_ids]
            fallback = dataclasses.replace(claim, reason="not judged", method="local")
            verdict = model_verdict(judge, claim.sentence, evidence, fallback)
            if verdict.method != "model":
                raise JudgeReplyError(f"support verdict not given: {verdict.reason}")
            verdicts.append({"claim": claim.sentence, "verdict": verdict.verdict})
        counts = {v: sum(1 for x in verdicts if x["verdict"] == v) for v in ("supported", "weak")}
        score = 100 * (counts["supported"] + 0.5 * counts["weak"]) / len(verdicts)
        return round(score, 2), {"claims": verdicts}

    def _candidates(self, run: RunMaterial) -> list[tuple[str, str]]:
        """(source id, description) of the sources the run could have cited: the user's
        files first, then the sources of its evidence."""
        about: dict[str, str] = {}
        material = dict(run.material)
        for path in run.user_files:
            about[path] = material.get(path, "")[:160]
        for ev in run.evidence.values():
            if ev.source.id not in about:
                about[ev.source.id] = f"{ev.source.title} — {ev.segment.text[:120]}"
        return list(about.items())[: self.max_sources]

    def _coverage(
        self, run: RunMaterial, sources: list[tuple[str, str]]
    ) -> tuple[float | None, Any]:
        if not sources:
            return None, {"reason": "no sources"}
        value = self.ask(
            f"judge CC {run.task}",
            rubric.relevance_prompt(run.request, sources),
            rubric.RELEVANT_SCHEMA,
            "relevant",
        )
        relevant = {sources[n - 1][0] for n in _numbers(value, len(sources))}
        cited = {
            name
            for c in run.validation.citations
            if c.kind != "reference"
            for ev in c.evidence
            for name in (ev.source.id, ev.source.path)
        }
        if not relevant:
            return None, {"relevant": [], "reason": "the judge found no relevant source"}
        hit = sorted(relevant & cited)
        return round(100 * len(hit) / len(relevant), 2), {
            "relevant": sorted(relevant),
            "cited_relevant": hit,
        }

    def _rubric_score(self, run: RunMaterial, report: str, which: str) -> tuple[float, Any]:
        make = rubric.instruction_prompt if which == "IF" else rubric.depth_prompt
        value = self.ask(
            f"judge {which} {run.task}", make(run.request, report), rubric.SCORE_SCHEMA, "score"
        )
        try:
            score = float(value)
        except (TypeError, ValueError) as exc:
            raise JudgeReplyError(f"score {value!r} is not a number") from exc
        return max(0.0, min(100.0, score)), {"score": value}
