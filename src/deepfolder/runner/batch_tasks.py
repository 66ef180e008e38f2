"""A batch's tasks and its record: the tasks of a cases folder (:func:`discover_tasks`),
and ``batch.json`` (:class:`Batch`, one :class:`TaskState` per task), replaced atomically
after every change."""

from __future__ import annotations

import json
import re
import time
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from deepfolder.runner.request import RunSetupError
from deepfolder.runner.resume import write_json_durably

BATCH_RECORD = "batch.json"
CONFIG = "config.json"
"""The resolved settings every task runs with, as a config file."""
TASK_NAME = re.compile(r"^\w[\w.\-]*$")


class BatchError(RunSetupError):
    """The batch cannot start or resume; the message names the file or value and what to do."""


# -- the tasks -----------------------------------------------------------------------------
@dataclass
class TaskSpec:
    """One task of a cases directory: its name, folder and request."""

    task: str
    folder: Path
    request: str
    request_from: str
    multimodal: list[Any] = field(default_factory=list)


def discover_tasks(cases_dir: Path, only: list[str] | None = None) -> tuple[str, list[TaskSpec]]:
    """The layout (``query.jsonl`` or ``query.txt``) and the tasks of ``cases_dir``.

    The benchmark's layout: a ``query.jsonl`` beside the task folders, one
    ``{"task", "query", "multimodal"?, "folder"?}`` per line (``folder``, a folder name
    beside the file, defaults to the task's name: several tasks may share one folder).
    Otherwise every sub-folder holding a ``query.txt`` is a task. A task whose folder is
    missing stays a task: its run fails with the reason and the batch goes on.
    """
    cases_dir = cases_dir.expanduser()
    if not cases_dir.is_dir():
        raise BatchError(f"{cases_dir} is not a folder; give the folder that holds the tasks")
    jsonl = cases_dir / "query.jsonl"
    if jsonl.is_file():
        layout, specs = "query.jsonl", _tasks_from_jsonl(jsonl)
    else:
        layout, specs = "query.txt", _tasks_from_folders(cases_dir)
    if not specs:
        raise BatchError(
            f"{cases_dir} holds no tasks: put a query.jsonl beside the task folders (one "
            '{"task": …, "query": …} per line), or a query.txt in each task folder'
        )
    if only:
        known = {s.task for s in specs}
        unknown = [t for t in only if t not in known]
        if unknown:
            raise BatchError(
                f"no task {', '.join(unknown)} in {cases_dir}; its tasks are "
                + ", ".join(sorted(known))
            )
        specs = [s for s in specs if s.task in set(only)]
    return layout, specs


def _tasks_from_jsonl(jsonl: Path) -> list[TaskSpec]:
    specs: list[TaskSpec] = []
    seen: set[str] = set()
    for n, line in enumerate(jsonl.read_text(encoding="utf-8-sig").splitlines(), 1):
        if not line.strip():
            continue
        where = f"{jsonl}: line {n}"
        try:
            entry = json.loads(line)
        except json.JSONDecodeError as exc:
            raise BatchError(f"{where} is not valid JSON ({exc.msg})") from exc
        if not isinstance(entry, dict) or not str(entry.get("query") or "").strip():
            raise BatchError(f'{where} needs a "task" and a non-empty "query"')
        task = _task_name(entry.get("task"), where)
        if task in seen:
            raise BatchError(f"{where}: task {task!r} appears twice; give each line its own name")
        seen.add(task)
        folder_name = _task_name(entry.get("folder", task), f"{where} (folder)")
        multimodal = entry.get("multimodal") or []
        specs.append(
            TaskSpec(
                task,
                jsonl.parent / folder_name,
                str(entry["query"]).strip(),
                f"{jsonl} (task {task})",
                multimodal if isinstance(multimodal, list) else [multimodal],
            )
        )
    return specs


def _tasks_from_folders(cases_dir: Path) -> list[TaskSpec]:
    specs = []
    for folder in sorted(p for p in cases_dir.iterdir() if p.is_dir()):
        query = folder / "query.txt"
        if folder.name.startswith(".") or not query.is_file():
            continue
        text = query.read_text(encoding="utf-8-sig").strip()
        specs.append(TaskSpec(_task_name(folder.name, str(folder)), folder, text, str(query)))
    return specs


def _task_name(value: Any, where: str) -> str:
    name = str(value if value is not None else "").strip()
    if not TASK_NAME.match(name):
        raise BatchError(
            f"{where}: task name {name!r} cannot name a run directory; use letters, digits, "
            "'.', '-' and '_'"
        )
    return name


# -- the batch record ----------------------------------------------------------------------
@dataclass
class TaskState:
    """One task as ``batch.json`` records it."""

    task: str
    folder: str
    request: str
    request_from: str
    pass_request: bool
    """Whether the worker gets the request on its command line (else ``run`` finds the
    same text itself, in query.txt or query.jsonl, and records where it came from)."""
    run_dir: str
    multimodal: list[Any] = field(default_factory=list)
    state: str = "pending"
    """pending, running, done, failed, timed_out or interrupted."""
    reason: str | None = None
    attempts: int = 0
    exit_code: int | None = None
    pid: int | None = None
    started_at: str | None = None
    ended_at: str | None = None
    wall_s: float = 0.0
    """Seconds of all attempts together."""

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TaskState:
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in names})


@dataclass
class Batch:
    dir: Path
    cases_dir: str
    layout: str
    command: list[str]
    settings_hash: str
    model: str
    embedded: bool
    jobs: int
    timeout_per_task_s: float | None
    tasks: list[TaskState]
    started_at: str = ""
    ended_at: str | None = None
    resumes: list[dict[str, Any]] = field(default_factory=list)
    engine: str = "local"
    """``local`` (worker processes here) or ``ray`` (Ray tasks on a cluster)."""
    ray_address: str | None = None

    def unfinished(self) -> list[TaskState]:
        """The tasks still to run, set back to pending (an earlier batch process may
        have died with tasks running) and saved so."""
        queue = [t for t in self.tasks if t.state != "done"]
        for task in queue:
            task.state, task.pid = "pending", None
        self.save()
        return queue

    def save(self) -> None:
        data = {k: v for k, v in asdict(self).items() if k != "dir"}
        write_json_durably(self.dir / BATCH_RECORD, data)

    @classmethod
    def load(cls, batch_dir: Path) -> Batch:
        path = batch_dir / BATCH_RECORD
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            data["tasks"] = [TaskState.from_dict(t) for t in data["tasks"]]
            names = {f.name for f in fields(cls)} - {"dir"}
            return cls(dir=batch_dir, **{k: v for k, v in data.items() if k in names})
        except FileNotFoundError as exc:
            raise BatchError(
                f"{batch_dir} has no {BATCH_RECORD}: it is not a batch directory; give the "
                "--out of the batch to resume"
            ) from exc
        except (json.JSONDecodeError, KeyError, TypeError) as exc:
            raise BatchError(f"{path} is damaged ({exc}); start a new batch") from exc

    def count(self, state: str) -> int:
        return sum(t.state == state for t in self.tasks)


def timestamp() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S%z")
