"""Record a run's steps: trace.jsonl, turns.txt, usage.json and the live progress line.

The same step records are the agent's memory, the progress view and the trace. Every
step is appended to ``trace.jsonl`` as it happens (a crashed run still leaves its trace);
``turns.txt`` is the readable turn-by-turn log; ``usage.json`` sums tokens, cost and
retries per model. Each trace line is flushed and fsynced before the run goes on, so a
run killed at any point can be resumed from what its trace holds (``runner/resume.py``).

Retries happen inside a model call, before its step exists: the model reports each one
to :meth:`RunRecorder.record_retry` (``set_retry_listener``), which records it as a
``RetryStep`` of the turn being attempted, so a run that ends in a model error still
shows every attempt in the trace, ``turns.txt`` and ``usage.json``.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TextIO

from rich.console import Console
from rich.status import Status

from deepfolder.records import (
    FinalAnswerStep,
    ModelCallStep,
    NoteStep,
    RetryStep,
    RevisionStep,
    Step,
    TaskStep,
    ToolCallStep,
    ToolResultStep,
    Usage,
    ValidationStep,
)


def _short(text: str, limit: int = 100) -> str:
    flat = " ".join((text or "").split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


def _args(arguments: dict[str, Any]) -> str:
    if not isinstance(arguments, dict):  # a malformed call, recorded as the model sent it
        return _short(json.dumps(arguments, ensure_ascii=False, default=str), 60)
    parts = []
    for k, v in arguments.items():
        shown = json.dumps(v, ensure_ascii=False)
        parts.append(f"{k}={_short(shown, 60)}")
    return ", ".join(parts)


class RunRecorder:
    def __init__(
        self,
        run_dir: Path,
        *,
        console: Console | None = None,
        price: Any = None,
        live: bool = True,
    ) -> None:
        self.run_dir = run_dir
        self.console = console or Console(stderr=True)
        self.price = price
        """Callable(model_name, Usage) -> float | None giving the cost of a call."""
        self._trace: TextIO = (run_dir / "trace.jsonl").open("a", encoding="utf-8")
        self._turns: TextIO = (run_dir / "turns.txt").open("a", encoding="utf-8")
        self.usage: dict[str, dict[str, Any]] = {}
        self.steps: list[Step] = []
        self.started = time.time()
        self._status: Status | None = None
        self._interactive = live and self.console.is_terminal
        self.turn = 0
        self.tools_called = 0
        self.already_written: Callable[[Step], bool] | None = None
        """Set by a resumed run: True for a step the interrupted run already wrote, which
        is counted (usage, progress) but not written again."""

    # -- progress ------------------------------------------------------------------
    def _progress(self, message: str) -> None:
        totals = self.total_usage()
        line = (
            f"turn {self.turn} · {self.tools_called} tool calls · "
            f"{totals.input_tokens:,} in / {totals.output_tokens:,} out tokens · {message}"
        )
        if self._interactive:
            if self._status is None:
                self._status = self.console.status(line)
                self._status.start()
            else:
                self._status.update(line)

    def milestone(self, message: str) -> None:
        """A line that stays on screen (phase changes), in interactive and plain output."""
        if self._status is not None:
            self._status.stop()
            self._status = None
        self.console.print(f"[dim]{time.strftime('%H:%M:%S')}[/] {message}")

    # -- recording -----------------------------------------------------------------
    def _usage_entry(self, model: str) -> dict[str, Any]:
        return self.usage.setdefault(
            model,
            {
                "calls": 0,
                "input_tokens": 0,
                "output_tokens": 0,
                "cost": 0.0,
                "retries": 0,
                "retry_wait_seconds": 0.0,
            },
        )

    def record_retry(self, step: RetryStep) -> None:
        """A model's retry listener: the retry belongs to the call being attempted, the
        turn after the last recorded model call."""
        step.turn = self.turn + 1
        self.record(step)

    def record(self, step: Step) -> None:
        self.steps.append(step)
        data = step.to_dict()
        if isinstance(step, RetryStep):
            entry = self._usage_entry(step.model)
            entry["retries"] += 1
            entry["retry_wait_seconds"] = round(entry["retry_wait_seconds"] + step.wait_s, 3)
        if isinstance(step, ModelCallStep):
            cost = self.price(step.model, step.usage) if self.price else None
            step.cost = cost
            data["cost"] = cost
            entry = self._usage_entry(step.model)
            entry["calls"] += 1
            entry["input_tokens"] += step.usage.input_tokens
            entry["output_tokens"] += step.usage.output_tokens
            if cost is None:
                entry["cost"] = None
            elif entry["cost"] is not None:
                entry["cost"] += cost
        written = self.already_written is not None and self.already_written(step)
        if not written:
            self._trace.write(json.dumps(data, ensure_ascii=False, default=str) + "\n")
            self._trace.flush()
            os.fsync(self._trace.fileno())  # durable before the next step starts
        line = self._turn_line(step)
        if line and not written:
            self._turns.write(line + "\n")
            self._turns.flush()

    def _turn_line(self, step: Step) -> str:
        t = f"Turn {step.turn:>3}"
        if isinstance(step, TaskStep):
            return f"Task ({step.policy} policy): {_short(step.request, 200)}"
        if isinstance(step, ModelCallStep):
            self.turn = step.turn
            calls = ", ".join(c["name"] for c in step.tool_calls) or "answer"
            self._progress(f"model: {step.purpose} → {calls}")
            return (
                f"{t} | model {step.purpose:<18} | {step.duration:6.1f}s | "
                f"in {step.usage.input_tokens:>6} out {step.usage.output_tokens:>5} | → {calls}"
            )
        if isinstance(step, ToolCallStep):
            self.tools_called += 1
            self._progress(f"tool {step.name}")
            return f"{t} | call  {step.name}({_args(step.arguments)})"
        if isinstance(step, ToolResultStep):
            flag = "ERROR " if step.is_error else ""
            ids = f" [{len(step.evidence_ids)} evidence]" if step.evidence_ids else ""
            return f"{t} | result {step.name:<12} | {step.duration:6.2f}s | {flag}{_short(step.content)}{ids}"
        if isinstance(step, FinalAnswerStep):
            cut = f" (cut short: {step.reason})" if step.cut_short else ""
            return f"{t} | final answer, {len(step.text)} chars{cut}"
        if isinstance(step, ValidationStep):
            verdict = "passed" if step.passed else f"{len(step.failures)} failing"
            self._progress(f"validation round {step.round}: {verdict}")
            return f"Validation round {step.round}: {verdict}"
        if isinstance(step, RevisionStep):
            return f"Revision round {step.round}: {len(step.instructions)} instruction(s)"
        if isinstance(step, NoteStep):
            return f"{t} | {step.level}: {step.message}"
        if isinstance(step, RetryStep):
            self._progress(f"retrying the model ({step.reason})")
            return (
                f"{t} | retry {step.attempt}/{step.max_retries} of {step.model}: "
                f"{step.reason}; waiting {step.wait_s:.2f}s"
            )
        return ""

    def append_turns_block(self, title: str, lines: list[str]) -> None:
        self._turns.write(f"\n== {title} ==\n")
        for line in lines:
            self._turns.write(f"- {line}\n")
        self._turns.flush()

    def total_usage(self) -> Usage:
        total = Usage()
        for entry in self.usage.values():
            total = total + Usage(entry["input_tokens"], entry["output_tokens"])
        return total

    def usage_report(self) -> dict[str, Any]:
        total = self.total_usage()
        costs = [e["cost"] for e in self.usage.values()]
        return {
            "models": self.usage,
            "total": {
                **total.to_dict(),
                "cost": None if any(c is None for c in costs) else round(sum(costs), 6),
                "retries": sum(e["retries"] for e in self.usage.values()),
                "retry_wait_seconds": round(
                    sum(e["retry_wait_seconds"] for e in self.usage.values()), 3
                ),
            },
            "wall_seconds": round(time.time() - self.started, 2),
        }

    def close(self) -> None:
        if self._status is not None:
            self._status.stop()
            self._status = None
        (self.run_dir / "usage.json").write_text(
            json.dumps(self.usage_report(), ensure_ascii=False, indent=2), encoding="utf-8"
        )
        self._trace.close()
        self._turns.close()
