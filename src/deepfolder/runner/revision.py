"""Validate the draft and revise it section by section, a bounded number of rounds.

The validator (deepfolder.validate) is deterministic code plus an optional model judge;
it never calls tools. This module supplies the writer side of the loop:

- pipeline policy: a section is rewritten by the same code path that wrote it (fresh
  search for more evidence when it must grow, the model writes from numbered excerpts,
  citations attached in code); a missing section is written from scratch the same way;
- agent policy: the model rewrites just that section from the instructions and the
  evidence it has seen, citing ids itself (ids it never saw are removed when rendering).

Revisions work on the raw draft (``[E…]`` ids); every validation sees the rendered
report (readable citation links, reference list, HTML when the request wants HTML).
"""

from __future__ import annotations

from collections.abc import Callable, Generator
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

from deepfolder.agent.pipeline import ask, expand_section, trim_to, write_section
from deepfolder.agent.recording import RecordedModel
from deepfolder.agent.state import RunState, SectionPlan
from deepfolder.llm.base import ChatModel
from deepfolder.prompts.revision import revise_section_prompt
from deepfolder.records import Evidence, RevisionStep, Step, ValidationStep
from deepfolder.report.render import finalize_markdown, markdown_to_html, title_of
from deepfolder.request_model import RequiredSection
from deepfolder.settings import Settings
from deepfolder.trace.recorder import RunRecorder
from deepfolder.validate.checks import ValidationReport, validate_report
from deepfolder.validate.document import Section
from deepfolder.validate.length import count_length
from deepfolder.validate.revise import RevisionInstruction, remove_claims, revise_until_valid

T = TypeVar("T")


@dataclass
class Revisor:
    state: RunState
    policy: str
    recorder: RunRecorder
    citable: Callable[[str], Evidence | None]
    run_dir: Path
    judge: ChatModel | None
    settings: Settings

    @property
    def language(self) -> str:
        return self.state.language

    def render(self, raw: str) -> str:
        c = self.state.constraints
        md, _ = finalize_markdown(raw, self.citable, self.language, c.reference_section)
        return md

    def document(self, raw: str) -> str:
        """What the reader gets and the validator checks: Markdown, or the HTML document."""
        md = self.render(raw)
        if self.state.constraints.format != "html":
            return md
        return markdown_to_html(
            md, title=title_of(md, "report"), base_dir=self.run_dir, language=self.language
        )

    def validate(self, raw: str) -> ValidationReport:
        ctx = self.state.ctx
        judge = None
        if self.judge is not None:
            judge = RecordedModel(
                self.judge, self.recorder.record, "support judge", lambda: self.state.turn
            )
        return validate_report(
            self.document(raw),
            self.state.constraints,
            resolve=self.citable,
            seen_ids=set(ctx.seen) | set(ctx.created),
            language=self.language,
            run_dir=self.run_dir,
            judge=judge,
            # The dense blend of the local support score is not calibrated yet
            # (docs/notes/validate.md), so the local judge is lexical only.
            embed=None,
            settings=self.settings,
        )

    def _record(self, step: Step) -> None:
        self.recorder.record(step)

    def on_round(
        self, round_no: int, report: ValidationReport, instructions: list[RevisionInstruction]
    ) -> None:
        self._record(
            ValidationStep(
                turn=self.state.turn, round=round_no, passed=report.passed, failures=report.failures
            )
        )
        self._record(
            RevisionStep(
                turn=self.state.turn,
                round=round_no + 1,
                instructions=[str(i) for i in instructions],
            )
        )

    # -- writers -----------------------------------------------------------------------
    def _plan_for(self, title: str, label: str = "") -> SectionPlan:
        for d in self.state.drafts:
            if d.plan.title and (d.plan.title in title or title in d.plan.heading):
                return d.plan
        unit = self.state.unit
        budget = 300 if unit == "字" else 200
        return SectionPlan(label, title, budget)

    def rewrite_section(self, section: Section, instructions: list[RevisionInstruction]) -> str:
        notes = [i.message for i in instructions]
        if (
            self.policy == "pipeline"
            and instructions
            and all((i.length_change or 0) < 0 for i in instructions)
        ):
            # Only too long: cut whole sentences in code; citations stay with their sentences.
            size = count_length(section.body, self.state.unit)
            return trim_to(section.body, section_budget(instructions, size, size), self.state.unit)
        if (
            self.policy == "pipeline"
            and instructions
            and all((i.length_change or 0) > 0 for i in instructions)
        ):
            # Only too short: the section keeps what it says and is continued.
            more = max(i.length_change or 0 for i in instructions)
            plan = self._plan_for(section.title)
            return self._drain(expand_section(self.state, plan, section.body, more, notes))
        if self.policy == "pipeline" and (cut := remove_claims(section.body, instructions)):
            # Unsupported sentences and uncited paragraphs are cut in code: a small
            # model's rewrite loses what the section said right.
            return cut
        if self.policy == "pipeline":
            plan = self._plan_for(section.title)
            budget = section_budget(
                instructions, plan.budget, count_length(section.body, self.state.unit)
            )
            target = SectionPlan(plan.label, plan.title, budget, plan.kind)
            draft = self._drain(write_section(self.state, target, notes=notes, extra_evidence=2))
            return draft.text
        own = any(i.check == "user_material" for i in instructions)
        return self._model_rewrite(section.heading_line, section.body, notes, own)

    def add_section(
        self, required: RequiredSection, instructions: list[RevisionInstruction]
    ) -> str:
        notes = [i.message for i in instructions]
        if self.policy == "pipeline":
            plan = self._plan_for(required.title, required.label)
            plan = SectionPlan(required.label, required.title, plan.budget, plan.kind)
            draft = self._drain(write_section(self.state, plan, notes=notes))
            return f"## {plan.heading}\n\n{draft.text}"
        heading = f"## {required.label}{required.title}"
        return heading + "\n\n" + self._model_rewrite(heading, "", notes)

    def _drain(self, gen: Generator[Step, None, T]) -> T:
        while True:
            try:
                self._record(next(gen))
            except StopIteration as stop:
                return stop.value

    def _evidence_for_rewrite(self, own_first: bool) -> list[Evidence]:
        """The evidence a rewrite may cite: the 30 most recently seen; when the section
        must draw on the user's own files (the validator's ``user_material`` check, or a
        request that builds on them), those files' evidence first."""
        seen = list(self.state.ctx.seen.values())
        if not (own_first or self.state.constraints.refers_to_user_material):
            return seen[-30:]
        own = [e for e in seen if e.source.is_user_material]
        other = [e for e in seen if not e.source.is_user_material]
        return own[-20:] + other[-(30 - len(own[-20:])) :]

    def _model_rewrite(
        self, heading: str, body: str, instructions: list[str], own_first: bool = False
    ) -> str:
        seen = self._evidence_for_rewrite(own_first)
        prompt = revise_section_prompt(heading, instructions, body, seen, self.language)
        response, step = ask(
            self.state,
            prompt,
            max_tokens=self.settings.model.max_output_tokens,
            purpose=f"revise {heading.lstrip('# ')}",
        )
        self._record(step)
        return (response.content or "").strip()

    # -- the loop ----------------------------------------------------------------------
    def validate_and_revise(self, raw: str) -> tuple[str, ValidationReport]:
        final, reports = revise_until_valid(
            raw,
            self.state.constraints,
            rewrite_section=self.rewrite_section,
            add_section=self.add_section,
            validate=self.validate,
            max_rounds=self.settings.validate_.max_revisions,
            resolve=self.citable,
            seen_ids=lambda: set(self.state.ctx.seen) | set(self.state.ctx.created),
            on_round=self.on_round,
        )
        last = reports[-1]
        self._record(
            ValidationStep(
                turn=self.state.turn, round=last.round, passed=last.passed, failures=last.failures
            )
        )
        return final, last


def section_budget(instructions: list[RevisionInstruction], plan_budget: int, current: int) -> int:
    """The length to write a section to: its current length changed by what the
    validator asked (``length_change``), never below 60 when shortening nor below the
    plan's budget when expanding; the plan's budget when no length change was asked."""
    changes = [i.length_change for i in instructions if i.length_change]
    if not changes:
        return plan_budget
    change = sum(changes)
    if change < 0:
        return max(60, current + change)
    return max(plan_budget, current + change)
