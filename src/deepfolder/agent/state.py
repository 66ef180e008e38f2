"""What one run's writing holds, shared by both policies and the revisor.

The agent policy fills the :class:`Conversation` and writes the whole draft itself; the
pipeline policy plans sections and keeps a :class:`SectionDraft` per section. Either
way the revisor works on the same :class:`RunState`: its model, tools and tool context
(evidence seen so far), the request's constraints, the turn counter, and the drafts.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from deepfolder.agent.brief import MaterialBrief
from deepfolder.llm.base import ChatModel
from deepfolder.records import Evidence, Usage
from deepfolder.request_model import RequestConstraints
from deepfolder.tools.base import Tool, ToolContext


@dataclass
class Conversation:
    """The messages of one run; the first two (system, task) are never dropped."""

    messages: list[dict[str, Any]]
    usage: Usage = field(default_factory=Usage)


@dataclass
class SectionPlan:
    label: str
    title: str
    budget: int
    kind: str = "body"
    """body | title | references"""

    @property
    def heading(self) -> str:
        return f"{self.label}{self.title}".strip()


@dataclass
class SectionDraft:
    plan: SectionPlan
    text: str = ""
    evidence: list[Evidence] = field(default_factory=list)


@dataclass
class RunState:
    """One run's writing: its model and tools, the request and its constraints, the
    conversation, the turn counter, and (pipeline policy) the plan's drafts and the
    evidence and analysis they draw on."""

    model: ChatModel
    ctx: ToolContext
    tools: dict[str, Tool]
    request: str
    constraints: RequestConstraints
    language: str
    conv: Conversation
    drafts: list[SectionDraft] = field(default_factory=list)
    used_ids: set[str] = field(default_factory=set)
    turn: int = 0
    max_tokens: int = 1024
    analysis: list[Evidence] = field(default_factory=list)
    """Computed results from the code-driven analysis, shown to the data section."""
    figures: list[Evidence] = field(default_factory=list)
    analysed: set[str] = field(default_factory=set)
    """Tables whose computed results are in ``analysis`` (their raw rows are not shown)."""
    data_sections: list[str] = field(default_factory=list)
    """Headings of the sections shown the computed results."""
    figure_section: str | None = None
    """Heading of the section the charts are embedded in."""
    brief: MaterialBrief | None = None
    """What the user's own files are (built in code before planning)."""
    notes: list[str] = field(default_factory=list)
    """What the report says it could not use (missing or unreadable material)."""
    absent_notes: list[str] = field(default_factory=list)
    """The files the task names (its material entries) that the folder lacks, as notes."""
    section_titles: list[str] = field(default_factory=list)
    """Titles of every planned section (a section's scope leaves out what another is about)."""
    body_sections: int = 0

    @property
    def primary(self) -> bool:
        """The request builds on the user's files and the folder has readable ones: they
        are the primary sources of every section."""
        return (
            self.brief is not None
            and bool(self.brief.readable)
            and self.constraints.refers_to_user_material
        )

    @property
    def zh(self) -> bool:
        return self.language.startswith("zh")

    @property
    def unit(self) -> str:
        return (
            self.constraints.length.unit
            if self.constraints.length
            else ("字" if self.zh else "words")
        )
