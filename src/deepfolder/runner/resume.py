"""Runs that survive a crash: the run record (``run.json``) and ``deepfolder run --resume``.

A run directory says what state it is in through ``run.json``, written atomically
(temporary file, fsync, rename): ``running`` from the start, ``stopped`` when Ctrl-C or
a model error ended it, ``finished`` as the very last write of a complete run. It also
holds the folder, and the sha256 of every input file once ingest has seen them, so a
resume can tell that the inputs changed since.

Resuming re-executes the run from the start in the same directory instead of restoring
a snapshot of its memory, because the agent's state is exactly what its steps produced:

- model calls whose request is the next recorded one are answered from ``trace.jsonl``
  (:mod:`deepfolder.llm.replay`) and not sent again;
- tools are recomputed (deterministic over the same, cached index; evidence ids are
  content-derived), so the conversation is rebuilt byte for byte;
- the recorder does not write again the steps the trace already holds (matched in order
  by :class:`TraceCursor`), so sections already written are neither asked for nor
  written twice, and the trace gains only a resume marker and what is new;
- validation and the output files are then produced as for an uninterrupted run.

A resume is refused, with the reasons, when the settings' hash or the folder's files
differ from the run's; ``--force`` resumes anyway and records why in the trace and in
``run.json``.
"""

from __future__ import annotations

import contextlib
import json
import os
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from deepfolder import __version__
from deepfolder.llm.base import ChatModel
from deepfolder.llm.replay import RecordedCall, ReplayingModel, ReplayLog
from deepfolder.records import NoteStep, Step
from deepfolder.runner.request import RunSetupError
from deepfolder.settings import Settings
from deepfolder.trace.recorder import RunRecorder

RUN_RECORD = "run.json"
IGNORED_FIELDS = frozenset({"at", "duration", "cost"})
"""Step fields that differ between an original step and its re-execution."""


class ResumeError(RunSetupError):
    """The run directory cannot be resumed (as it is); the message says why and what to do."""


# -- the run record ------------------------------------------------------------------------
def write_json_durably(path: Path, data: object) -> None:
    """Replace ``path`` atomically: a crash leaves the old file or the new one, never half."""
    tmp = path.with_name(f".{path.name}.tmp")
    with tmp.open("w", encoding="utf-8") as fh:
        fh.write(json.dumps(data, ensure_ascii=False, indent=2, default=str))
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)
    with contextlib.suppress(OSError):  # not every platform can fsync a directory
        fd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def read_run_record(run_dir: Path) -> dict[str, Any]:
    path = run_dir / RUN_RECORD
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise ResumeError(
            f"{run_dir} has no {RUN_RECORD}: it is not a deepfolder run directory, or it "
            "was written by a version that could not resume; start a new run instead"
        ) from exc
    except json.JSONDecodeError as exc:
        raise ResumeError(f"{path} is not valid JSON ({exc.msg}); start a new run") from exc
    if not isinstance(data, dict):
        raise ResumeError(f"{path} does not hold a run record; start a new run")
    return data


def update_run_record(run_dir: Path, **changes: Any) -> dict[str, Any]:
    path = run_dir / RUN_RECORD
    data = json.loads(path.read_text(encoding="utf-8")) if path.exists() else {}
    data.update(changes)
    write_json_durably(path, data)
    return data


def start_run_record(run_dir: Path, folder: Path, settings: Settings) -> None:
    """The record of a new run, written before any work."""
    write_json_durably(
        run_dir / RUN_RECORD,
        {
            "status": "running",
            "folder": str(folder.resolve()),
            "settings_hash": settings.settings_hash(),
            "deepfolder": __version__,
            "started_at": _now(),
            "inputs": None,
            "resumes": [],
        },
    )


def record_inputs(run_dir: Path, files: Iterable[tuple[str, str]]) -> None:
    """The sha256 of every input file (relative path → hash), once ingest has hashed them."""
    update_run_record(run_dir, inputs=dict(sorted(files)))


def mark_stopped(run_dir: Path, reason: str) -> None:
    update_run_record(run_dir, status="stopped", reason=reason, stopped_at=_now())


def mark_finished(run_dir: Path, report: Path) -> None:
    """The last write of a complete run: from now on ``--resume`` changes nothing."""
    update_run_record(run_dir, status="finished", report=report.name, finished_at=_now())


def resume_command(run_dir: Path) -> str:
    return f"deepfolder run --resume {run_dir}"


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S%z")


# -- the trace -----------------------------------------------------------------------------
def load_trace(run_dir: Path) -> list[dict[str, Any]]:
    """The complete records of ``trace.jsonl``. A last line cut off by a kill is removed
    from the file, so the resumed run appends after the last complete step."""
    path = run_dir / "trace.jsonl"
    if not path.exists():
        return []
    raw = path.read_bytes()
    records: list[dict[str, Any]] = []
    good = 0  # bytes of complete, parseable lines
    for line in raw.splitlines(keepends=True):
        if not line.endswith(b"\n"):
            break  # the step being written when the run was killed
        try:
            records.append(json.loads(line))
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise ResumeError(
                f"{path}: line {len(records) + 1} is damaged ({exc}); the run cannot be "
                "resumed from it, start a new run"
            ) from exc
        good += len(line)
    if good < len(raw):
        with path.open("r+b") as fh:
            fh.truncate(good)
            os.fsync(fh.fileno())
    return records


def _comparable(record: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in record.items() if k not in IGNORED_FIELDS}


class TraceCursor:
    """Matches a resumed run's steps, in order, against the records already in the trace.

    ``recorder.already_written`` calls it for every step: True means "this step is the
    next recorded one, do not write it again". Recorded notes may be skipped over (a
    retry warning or an earlier resume marker does not recur). The first step that does
    not match ends the matching for good; a warning note says where, and from there on
    every step is written.
    """

    def __init__(self, records: list[dict[str, Any]], recorder: RunRecorder) -> None:
        self.records = records
        self.recorder = recorder
        self.pos = 0
        self.matched = 0
        self.diverged = False

    def __call__(self, step: Step) -> bool:
        if self.diverged or self.pos >= len(self.records):
            return False
        data = _comparable(json.loads(json.dumps(step.to_dict(), ensure_ascii=False, default=str)))
        pos = self.pos
        while pos < len(self.records):
            if _comparable(self.records[pos]) == data:
                self.pos = pos + 1
                self.matched += 1
                return True
            if self.records[pos].get("kind") != "note":
                break
            pos += 1
        self.diverged = True
        self.recorder.record(
            NoteStep(
                turn=step.turn,
                level="warning",
                message=f"resume: the re-executed run differs from record {self.pos + 1} of "
                f"the trace (recorded: {self.records[self.pos].get('kind')}, now: {step.kind}); "
                "every step from here on is written anew",
            )
        )
        return False


# -- resuming ------------------------------------------------------------------------------
@dataclass
class FinishedRun:
    """``--resume`` on a run that finished: nothing to do."""

    run_dir: Path
    report_path: Path


@dataclass
class ResumePlan:
    """What a resumed run needs: where, on what, with which settings, and its trace."""

    run_dir: Path
    folder: Path
    request: str
    settings: Settings
    records: list[dict[str, Any]]
    forced: list[str] = field(default_factory=list)
    """Reasons the resume would have been refused, when ``--force`` overrode them."""
    started: float = field(default_factory=time.time)
    log: ReplayLog = field(init=False)

    def __post_init__(self) -> None:
        from deepfolder.agent.recording import prompt_hash

        calls = [RecordedCall.from_trace(r) for r in self.records if r.get("kind") == "model_call"]
        self.log = ReplayLog(calls, prompt_hash)

    def wrap(self, model: ChatModel) -> ChatModel:
        """``model`` answering from the trace while the run follows it."""
        return ReplayingModel(model, self.log)

    def attach(self, recorder: RunRecorder) -> None:
        """Mark the resume in the trace, then let the recorder skip what it holds."""
        message = (
            f"resume: {len(self.records)} recorded step(s), {len(self.log.calls)} model "
            "call(s) to replay"
        )
        if self.forced:
            message += "; forced (--force) despite: " + "; ".join(self.forced)
        recorder.record(
            NoteStep(turn=0, message=message, level="warning" if self.forced else "info")
        )
        recorder.already_written = TraceCursor(self.records, recorder)
        update_run_record(
            self.run_dir,
            status="running",
            resumes=[
                *read_run_record(self.run_dir).get("resumes", []),
                {"at": _now(), "recorded_steps": len(self.records), "forced": self.forced},
            ],
        )

    def outcome(self) -> dict[str, Any]:
        """Replayed and new model calls, and the resume overhead (start → first new call)."""
        first = self.log.first_sent_at
        return {
            "replayed_model_calls": self.log.served,
            "new_model_calls": self.log.sent,
            "diverged_at_call": self.log.diverged_at,
            "seconds_to_first_new_call": None if first is None else round(first - self.started, 3),
        }

    def record_outcome(self) -> None:
        record = read_run_record(self.run_dir)
        resumes = record.get("resumes") or [{}]
        resumes[-1] = {**resumes[-1], **self.outcome()}
        update_run_record(self.run_dir, resumes=resumes)


def prepare_resume(
    run_dir: Path, overrides: dict[str, Any] | None = None, *, force: bool = False
) -> ResumePlan | FinishedRun:
    """Check ``run_dir`` and say how to resume it (or that it finished).

    The run's recorded settings are the base; ``overrides`` (the command line's explicit
    settings) go on top. Raises :class:`ResumeError` naming every reason it cannot resume
    as it is (settings hash, changed inputs) unless ``force``.
    """
    started = time.time()
    run_dir = run_dir.expanduser().resolve()
    if not run_dir.is_dir():
        raise ResumeError(f"{run_dir} is not a run directory; give the directory a run wrote")
    record = read_run_record(run_dir)
    if record.get("status") == "finished":
        return FinishedRun(run_dir, run_dir / str(record.get("report") or "report.md"))
    stored = _read_json(run_dir / "settings.json")
    request_path = run_dir / "request.txt"
    if not request_path.is_file():
        raise ResumeError(f"{request_path} is missing; the run cannot be resumed")
    request = request_path.read_text(encoding="utf-8").strip()
    folder = Path(str(record.get("folder") or ""))
    if not folder.is_dir():
        raise ResumeError(
            f"the run's folder {folder} is not there any more ({run_dir / RUN_RECORD}); "
            "restore it, or start a new run"
        )
    settings = _settings(stored, overrides or {}, run_dir)

    reasons = []
    recorded_hash = str(stored.get("settings_hash", ""))
    if settings.settings_hash() != recorded_hash:
        changed = _changed_keys(stored.get("settings") or {}, settings.to_json_dict())
        reasons.append(
            f"settings differ from the run's (hash {settings.settings_hash()}, recorded "
            f"{recorded_hash}" + (f"; changed: {', '.join(changed[:8])}" if changed else "") + ")"
        )
    recorded_inputs = record.get("inputs")
    if isinstance(recorded_inputs, dict):
        changed_files = _changed_inputs(recorded_inputs, folder)
        if changed_files:
            reasons.append(
                f"the folder's files changed since the run started: {', '.join(changed_files[:8])}"
                + (f" and {len(changed_files) - 8} more" if len(changed_files) > 8 else "")
            )
    if reasons and not force:
        raise ResumeError(
            f"cannot resume {run_dir}: "
            + "; ".join(reasons)
            + ". Start a new run, or pass --force to resume anyway (recorded in the trace)"
        )
    return ResumePlan(
        run_dir=run_dir,
        folder=folder,
        request=request,
        settings=settings,
        records=load_trace(run_dir),
        forced=reasons,
        started=started,
    )


def _read_json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise ResumeError(f"{path} is missing; the run cannot be resumed") from exc
    except json.JSONDecodeError as exc:
        raise ResumeError(f"{path} is not valid JSON ({exc.msg}); start a new run") from exc
    if not isinstance(data, dict):
        raise ResumeError(f"{path} does not hold the run's settings; start a new run")
    return data


def _merge(base: dict[str, Any], update: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in update.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _merge(out[key], value)
        else:
            out[key] = value
    return out


def _settings(stored: dict[str, Any], overrides: dict[str, Any], run_dir: Path) -> Settings:
    try:
        return Settings.model_validate(_merge(stored.get("settings") or {}, overrides))
    except Exception as exc:  # pydantic names the field and the value
        raise ResumeError(
            f"{run_dir / 'settings.json'} does not fit this version's settings ({exc}); "
            "start a new run"
        ) from exc


def _changed_keys(old: Any, new: Any, prefix: str = "") -> list[str]:
    if isinstance(old, dict) and isinstance(new, dict):
        keys = sorted(set(old) | set(new))
        return [c for k in keys for c in _changed_keys(old.get(k), new.get(k), f"{prefix}{k}.")]
    return [] if old == new else [prefix.rstrip(".")]


def _changed_inputs(recorded: dict[str, Any], folder: Path) -> list[str]:
    from deepfolder.ingest.scan import scan_folder

    now = {f.rel_path: f.sha256 for f in scan_folder(folder)}
    changed = [p for p in sorted(set(recorded) | set(now)) if recorded.get(p) != now.get(p)]
    return [
        f"{p} ({'new' if p not in recorded else 'removed' if p not in now else 'changed'})"
        for p in changed
    ]
