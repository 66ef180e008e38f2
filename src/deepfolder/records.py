"""Core records shared by every layer of deepfolder.

This module imports nothing else of ours. Every other layer (ingest, index, tools,
agent, report, validate, trace, cli) speaks in these records, so the agent's memory,
the live progress view and the trace on disk are the same objects.

Conventions a reader of a report can check:

- ``Locator.page`` and ``Locator.slide`` are 1-based, as a PDF viewer / PowerPoint shows them.
- ``Locator.rows`` are spreadsheet row numbers as a spreadsheet program shows them
  (the header is row 1, the first data row is row 2), inclusive.
- ``Locator.start`` / ``Locator.end`` are seconds from the start of the media file.
- ``Locator.article`` is the 0-based index of the article in its JSON collection (the
  position in the list); ``Locator.chunk`` is the 1-based chunk number inside the article
  or file, in reading order.
- Evidence ids are ``E`` + 8 hex digits, derived from the source id, the locator and the
  text, so the same content in the same place always gets the same id.
"""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import asdict, dataclass, field, fields
from typing import Any, ClassVar

EVIDENCE_ID_PATTERN = r"E[0-9a-f]{8}"


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def short_hash(*parts: object, length: int = 8) -> str:
    """A stable short hex digest of the parts' JSON form."""
    blob = json.dumps(parts, ensure_ascii=False, sort_keys=True, default=str).encode("utf-8")
    return hashlib.sha1(blob).hexdigest()[:length]


def format_seconds(seconds: float) -> str:
    """``75.4`` -> ``01:15``; hours are shown only when needed (``1:02:03``)."""
    total = max(0, int(seconds))
    hours, rest = divmod(total, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours}:{minutes:02d}:{secs:02d}"
    return f"{minutes:02d}:{secs:02d}"


@dataclass(frozen=True, slots=True)
class Source:
    """One file of the folder, or one article inside a JSON collection."""

    id: str
    """Stable id: the file's path relative to the folder (``/`` separators); for an
    article, ``<collection path>#<article index>``; for a member of a ZIP,
    ``<zip path>!/<member path>``."""
    path: str
    """The file's path relative to the folder (the collection file for articles)."""
    kind: str
    """pdf, docx, pptx, sheet, image, audio, video, text, markdown, html, json,
    article, figure (made by the run), analysis (a computed result), mcp (a tool result
    of an MCP server), supplied (a file the task describes that the folder lacks)."""
    title: str = ""
    url: str | None = None
    article: int | None = None
    sha256: str = ""
    size: int = 0
    meta: dict[str, Any] = field(default_factory=dict, hash=False, compare=False)

    @property
    def is_user_material(self) -> bool:
        """The user's own material — a file they put in the folder, or a figure or a
        computed result made from one — as opposed to a background web page of a
        ``long_context*.json`` collection. Reports about "the files I gave you" cite
        this material first."""
        return self.kind != "article"

    @property
    def display_name(self) -> str:
        """The file name a reader recognises (the collection's name for articles)."""
        return self.path.rsplit("/", 1)[-1]

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Source:
        return cls(**{f.name: data[f.name] for f in fields(cls) if f.name in data})


@dataclass(frozen=True, slots=True)
class Locator:
    """Where inside a source a piece of evidence is. Unused fields stay ``None``."""

    page: int | None = None
    slide: int | None = None
    sheet: str | None = None
    rows: tuple[int, int] | None = None
    start: float | None = None
    end: float | None = None
    article: int | None = None
    chunk: int | None = None
    char_start: int | None = None
    char_end: int | None = None
    section: str | None = None
    """Heading path inside the document, e.g. ``"2 Method > 2.1 Data"``."""
    keyframe: str | None = None
    """Path (relative to the index cache) of the keyframe image for a video window."""
    call: str | None = None
    """A tool call on an MCP server, as ``tool({"arg": value})`` (the arguments as sorted
    JSON): where its result came from. Citations show it with :func:`readable_call`."""

    def label(self, language: str = "en") -> str:
        """The part of a citation after the file name: ``p. 5``, ``01:12–01:40``…"""
        zh = language.startswith("zh")
        if self.page is not None:
            return f"第{self.page}页" if zh else f"p. {self.page}"
        if self.slide is not None:
            return f"第{self.slide}张幻灯片" if zh else f"slide {self.slide}"
        if self.sheet is not None or self.rows is not None:
            parts = []
            if self.sheet:
                parts.append(f"{self.sheet}")
            if self.rows is not None:
                lo, hi = self.rows
                parts.append(f"第{lo}–{hi}行" if zh else f"rows {lo}–{hi}")
            return ", ".join(parts)
        if self.start is not None:
            end = self.end if self.end is not None else self.start
            return f"{format_seconds(self.start)}–{format_seconds(end)}"
        if self.chunk is not None:
            return f"第{self.chunk}段" if zh else f"chunk {self.chunk}"
        if self.section:
            return self.section
        if self.call:
            return readable_call(self.call)
        return ""

    def to_dict(self) -> dict[str, Any]:
        return {k: v for k, v in asdict(self).items() if v is not None}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Locator:
        values = {f.name: data.get(f.name) for f in fields(cls)}
        if values["rows"] is not None:
            values["rows"] = (int(values["rows"][0]), int(values["rows"][1]))
        return cls(**values)


def readable_call(call: str, limit: int = 160) -> str:
    """A tool call as a citation shows it: square brackets (which would end a Markdown
    link's text) as parentheses, long arguments cut."""
    text = call.replace("[", "(").replace("]", ")")
    return text if len(text) <= limit else text[: limit - 2] + "…)"


SUPPLIED_DESCRIPTION = "description supplied with the task"
"""The locator section of a description a task gave of a file (a benchmark's
``multimodal`` entry): cited as the task's description, never as the file's content."""
SUPPLIED_KIND = "supplied"
"""The source kind of a described file that is not in the folder: the description is
all there is of it."""


def make_evidence_id(source_id: str, locator: Locator, text: str) -> str:
    return "E" + short_hash(source_id, locator.to_dict(), text, length=8)


@dataclass(frozen=True, slots=True)
class Segment:
    """A piece of a source's content with its exact locator: the unit of evidence.

    Extractors produce segments; the chunker turns them into retrieval-sized
    segments (same type); the index stores and returns them.
    """

    id: str
    source_id: str
    text: str
    locator: Locator
    seq: int = 0
    """Position of this segment in its source's reading order (0-based)."""

    @classmethod
    def create(cls, source_id: str, text: str, locator: Locator, seq: int = 0) -> Segment:
        return cls(make_evidence_id(source_id, locator, text), source_id, text, locator, seq)

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "source_id": self.source_id,
            "text": self.text,
            "locator": self.locator.to_dict(),
            "seq": self.seq,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Segment:
        return cls(
            id=data["id"],
            source_id=data["source_id"],
            text=data["text"],
            locator=Locator.from_dict(data.get("locator", {})),
            seq=int(data.get("seq", 0)),
        )


@dataclass(frozen=True, slots=True)
class Evidence:
    """A segment together with its source: what tools return and reports cite."""

    segment: Segment
    source: Source
    score: float = 0.0

    @property
    def id(self) -> str:
        return self.segment.id

    def citation_label(self, language: str = "en") -> str:
        """Readable citation body, e.g. ``paper.pdf, p. 5`` or
        ``long_context: "标题", chunk 2``."""
        loc = self.segment.locator
        if loc.section == SUPPLIED_DESCRIPTION:  # the task's words, never the file's
            zh = language.startswith("zh")
            absent = self.source.kind == SUPPLIED_KIND
            if zh:
                where = "文件不在文件夹中；" if absent else ""
                return f"{self.source.display_name}（{where}任务提供的描述）"
            where = "not in the folder; " if absent else ""
            return f"{self.source.display_name} ({where}description supplied with the task)"
        if self.source.kind == "article":
            collection = self.source.display_name.removesuffix(".json")
            title = self.source.title or f"#{self.source.article}"
            chunk = loc.label(language)
            return f'{collection}: "{title}"' + (f", {chunk}" if chunk else "")
        if self.source.kind == "image":
            # An image's passages are its metadata and its OCR text blocks.
            if loc.chunk is None or loc.section == "image metadata":
                return self.source.display_name
            text = "图中文字" if language.startswith("zh") else "text in image"
            return f"{self.source.display_name}, {text} {loc.chunk}"
        label = loc.label(language)
        return f"{self.source.display_name}, {label}" if label else self.source.display_name


@dataclass(frozen=True, slots=True)
class Citation:
    """An evidence id as the model wrote it, resolved (or not) against the run's evidence."""

    raw: str
    evidence_id: str
    evidence: Evidence | None = None
    seen_in_run: bool = False

    @property
    def resolved(self) -> bool:
        return self.evidence is not None


@dataclass(slots=True)
class Usage:
    input_tokens: int = 0
    output_tokens: int = 0

    def __add__(self, other: Usage) -> Usage:
        return Usage(
            self.input_tokens + other.input_tokens, self.output_tokens + other.output_tokens
        )

    def to_dict(self) -> dict[str, int]:
        return {"input_tokens": self.input_tokens, "output_tokens": self.output_tokens}


# --- Steps: one record per thing that happened in a run ---------------------------


@dataclass(kw_only=True, slots=True)
class Step:
    kind: ClassVar[str] = "step"
    turn: int
    at: float = field(default_factory=time.time)
    duration: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        data = {"kind": self.kind}
        for f in fields(self):
            value = getattr(self, f.name)
            data[f.name] = value.to_dict() if hasattr(value, "to_dict") else value
        return data


@dataclass(kw_only=True, slots=True)
class TaskStep(Step):
    """The request and the folder summary: the part of the prompt never dropped."""

    kind: ClassVar[str] = "task"
    request: str
    folder_summary: str
    policy: str


@dataclass(kw_only=True, slots=True)
class ModelCallStep(Step):
    kind: ClassVar[str] = "model_call"
    model: str
    messages: list[dict[str, Any]]
    tools: list[str] = field(default_factory=list)
    response_text: str | None = None
    tool_calls: list[dict[str, Any]] = field(default_factory=list)
    finish_reason: str = ""
    usage: Usage = field(default_factory=Usage)
    cost: float | None = None
    purpose: str = "agent"
    """What the call was for: agent, plan, write section, revise, judge…"""
    prompt_sha256: str = ""


@dataclass(kw_only=True, slots=True)
class ToolCallStep(Step):
    kind: ClassVar[str] = "tool_call"
    call_id: str
    name: str
    arguments: dict[str, Any]


@dataclass(kw_only=True, slots=True)
class ToolResultStep(Step):
    kind: ClassVar[str] = "tool_result"
    call_id: str
    name: str
    content: str
    evidence_ids: list[str] = field(default_factory=list)
    is_error: bool = False


@dataclass(kw_only=True, slots=True)
class FinalAnswerStep(Step):
    kind: ClassVar[str] = "final_answer"
    text: str
    cut_short: bool = False
    reason: str = ""


@dataclass(kw_only=True, slots=True)
class ValidationStep(Step):
    kind: ClassVar[str] = "validation"
    round: int
    passed: bool
    failures: list[str] = field(default_factory=list)


@dataclass(kw_only=True, slots=True)
class RevisionStep(Step):
    kind: ClassVar[str] = "revision"
    round: int
    instructions: list[str] = field(default_factory=list)
    changed: bool = False


@dataclass(kw_only=True, slots=True)
class NoteStep(Step):
    """Something the run wants on record: a cut-short run, a fallback, a warning."""

    kind: ClassVar[str] = "note"
    message: str
    level: str = "info"


@dataclass(kw_only=True, slots=True)
class RetryStep(Step):
    """A model request that failed in a way worth retrying (HTTP 429/5xx, a timeout, a
    200 reply whose body is unusable), and the wait before the next attempt."""

    kind: ClassVar[str] = "retry"
    model: str
    attempt: int
    """The attempt that failed (1 = the first request)."""
    max_retries: int
    reason: str
    """Why: ``HTTP 503``, ``APITimeoutError``, ``malformed reply: body is not JSON``…"""
    status: int | None = None
    """The HTTP status of the failed attempt, when there was a response."""
    wait_s: float = 0.0
