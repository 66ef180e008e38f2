"""Tools are typed functions whose docstring is their prompt.

``@tool`` turns ``def search(ctx: ToolContext, query: str, k: int = 8) -> ToolOutput``
into a ``Tool`` with an OpenAI function schema built from the signature and the
docstring (first paragraph = description, ``Args:`` lines = parameter descriptions).

Two kinds of failure are kept apart:

- ``ToolArgumentError``: the model's mistake (bad arguments, an unknown evidence id). It
  goes back to the model as an observation it can fix.
- any other exception: our bug or the infrastructure's; the agent records it and, for
  the run's honesty, reports it as an error observation too, but it is logged as such.
"""

from __future__ import annotations

import inspect
import re
import types
import typing
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, get_args, get_origin

from deepfolder.index.base import Index
from deepfolder.records import Evidence, Usage
from deepfolder.settings import Settings


class ToolArgumentError(ValueError):
    """The model called a tool wrongly; the message tells it how to fix the call."""


@dataclass(slots=True)
class ToolOutput:
    text: str
    evidence: list[Evidence] = field(default_factory=list)
    """Evidence shown to the model in ``text``: it becomes citable in this run."""
    is_error: bool = False
    files: list[str] = field(default_factory=list)
    """Files the tool created in the run directory (figures, tables)."""


@dataclass
class ToolContext:
    """What tools can reach during one run."""

    index: Index
    settings: Settings
    folder: Path
    run_dir: Path | None = None
    index_dir: Path | None = None
    """The index cache directory: keyframes and other derived files live under it."""
    seen: dict[str, Evidence] = field(default_factory=dict)
    """Evidence returned to the model during this run, by id: the only citable ids."""
    created: dict[str, Evidence] = field(default_factory=dict)
    """Evidence created during the run (figures, computed results), by id."""
    usage: Usage = field(default_factory=Usage)
    cost: float | None = None
    data_files: list[str] = field(default_factory=list)
    """Paths (relative to the folder) of data files the analysis tool may read."""
    services: dict[str, Any] = field(default_factory=dict)
    """Optional components tools may use (vision model, python worker…), by name."""

    def remember(self, evidence: list[Evidence]) -> None:
        for ev in evidence:
            self.seen.setdefault(ev.id, ev)

    def resolve(self, evidence_id: str) -> Evidence | None:
        """An evidence id from the index or created in this run, seen or not."""
        found = self.seen.get(evidence_id) or self.created.get(evidence_id)
        return found if found is not None else self.index.get(evidence_id)

    def status_line(self) -> str:
        cost = f", cost ${self.cost:.4f}" if self.cost else ""
        return (
            f"[status: {len(self.index.sources())} sources indexed, {len(self.seen)} evidence "
            f"seen, {self.usage.input_tokens + self.usage.output_tokens} tokens used{cost}]"
        )


@dataclass
class Tool:
    name: str
    description: str
    parameters: dict[str, Any]
    fn: Callable[..., ToolOutput]

    def spec(self) -> dict[str, Any]:
        return {
            "type": "function",
            "function": {
                "name": self.name,
                "description": self.description,
                "parameters": self.parameters,
            },
        }

    def __call__(self, ctx: ToolContext, arguments: dict[str, Any]) -> ToolOutput:
        props = self.parameters.get("properties", {})
        unknown = sorted(set(arguments) - set(props))
        if unknown:
            raise ToolArgumentError(
                f"{self.name}() got unknown argument(s) {', '.join(unknown)}; "
                f"its arguments are: {', '.join(props) or 'none'}"
            )
        missing = [p for p in self.parameters.get("required", []) if p not in arguments]
        if missing:
            raise ToolArgumentError(
                f"{self.name}() is missing required argument(s): {', '.join(missing)}"
            )
        coerced = {k: _coerce(self.name, k, v, props[k]) for k, v in arguments.items()}
        return self.fn(ctx, **coerced)


def _coerce(tool_name: str, key: str, value: Any, schema: dict[str, Any]) -> Any:
    """Lenient coercion of what small models send ("5" for 5, "a" for ["a"])."""
    want = schema.get("type")
    if value is None:
        return None
    try:
        if want == "integer" and not isinstance(value, bool):
            return int(value)
        if want == "number":
            return float(value)
        if want == "boolean" and isinstance(value, str):
            return value.strip().lower() in {"true", "1", "yes"}
        if want == "array" and not isinstance(value, list):
            return [value]
        if want == "string" and not isinstance(value, str):
            return str(value)
    except (TypeError, ValueError) as exc:
        raise ToolArgumentError(
            f"{tool_name}(): argument {key!r} must be {want}, got {value!r}"
        ) from exc
    if "enum" in schema and value not in schema["enum"]:
        raise ToolArgumentError(
            f"{tool_name}(): argument {key!r} must be one of {schema['enum']}, got {value!r}"
        )
    return value


_JSON_TYPES: dict[Any, str] = {str: "string", int: "integer", float: "number", bool: "boolean"}


def _schema_for(annotation: Any) -> dict[str, Any]:
    origin = get_origin(annotation)
    if origin in (typing.Union, types.UnionType):
        args = [a for a in get_args(annotation) if a is not type(None)]
        return _schema_for(args[0]) if len(args) == 1 else {}
    if origin is Literal:
        values = list(get_args(annotation))
        return {"type": _JSON_TYPES.get(type(values[0]), "string"), "enum": values}
    if origin in (list, tuple) or annotation in (list, tuple):
        items = get_args(annotation)
        item = _schema_for(items[0]) if items else {}
        return {"type": "array", "items": item}
    if annotation in _JSON_TYPES:
        return {"type": _JSON_TYPES[annotation]}
    return {}


def _parse_docstring(doc: str) -> tuple[str, dict[str, str]]:
    doc = inspect.cleandoc(doc or "")
    head, _, args_block = doc.partition("\nArgs:\n")
    params: dict[str, str] = {}
    current = None
    for line in args_block.splitlines():
        m = re.match(r"\s{0,8}(\w+)(?:\s*\([^)]*\))?:\s*(.*)", line)
        if m and not line.startswith(" " * 9):
            current = m.group(1)
            params[current] = m.group(2).strip()
        elif current and line.strip():
            params[current] += " " + line.strip()
    return head.strip(), params


def tool(fn: Callable[..., ToolOutput]) -> Tool:
    """Make a Tool from a function whose first parameter is the ToolContext."""
    description, param_docs = _parse_docstring(fn.__doc__ or "")
    hints = typing.get_type_hints(fn)
    sig = inspect.signature(fn)
    props: dict[str, Any] = {}
    required: list[str] = []
    for i, (pname, param) in enumerate(sig.parameters.items()):
        if i == 0:
            continue  # the ToolContext
        schema = dict(_schema_for(hints.get(pname, str)))
        if pname in param_docs:
            schema["description"] = param_docs[pname]
        if param.default is inspect.Parameter.empty:
            required.append(pname)
        elif param.default is not None:
            schema["default"] = param.default
        props[pname] = schema
    parameters: dict[str, Any] = {"type": "object", "properties": props}
    if required:
        parameters["required"] = required
    return Tool(name=fn.__name__, description=description, parameters=parameters, fn=fn)
