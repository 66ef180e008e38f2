"""What a task says about its own material: a benchmark's ``multimodal`` entries,
``[{"name", "type", "description"}]``, one per user file (an image, a video), whether
the folder holds that file or not.

- A described file that **is** in the folder (matched by its path, else by its file
  name) gets the description as one more fact of its brief, cited with the file's name
  and the label "description supplied with the task" — never as a page or second of the
  file, since nothing was read from it. A file that cannot be read offline (an image
  without a vision model) keeps its problem line and gains the description.
- A described file that is **not** in the folder becomes a source of its own (kind
  ``supplied``) whose one passage is the description, cited as "NAME (not in the folder;
  description supplied with the task)". The report must say the file was missing:
  :func:`absent_notes` gives the lines the policies pass on with the other material
  notes (:func:`deepfolder.agent.grounding.material_notes`).
- An entry without a description names material only: when the file is absent it is
  reported missing, nothing is cited.

``deepfolder run --material-notes FILE`` (the batch passes a task's entries this way)
copies the entries into the run directory as ``material_notes.json``, so a resumed run
builds the same brief and its recorded model calls replay.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from deepfolder.agent.brief import BriefFact, FileBrief, MaterialBrief
from deepfolder.records import (
    SUPPLIED_DESCRIPTION,
    SUPPLIED_KIND,
    Evidence,
    Locator,
    Segment,
    Source,
)

MATERIAL_NOTES = "material_notes.json"
"""The task's entries in a run directory."""


@dataclass(frozen=True, slots=True)
class MaterialEntry:
    """A file the task describes: its name (a path in the folder), its kind as the task
    gives it (image, video…), and the task's description of it."""

    name: str
    type: str = ""
    description: str = ""


def parse_entries(data: Any, where: str) -> list[MaterialEntry]:
    """The entries of a JSON list; ``ValueError`` names ``where`` and the bad entry."""
    if not isinstance(data, list):
        raise ValueError(f"{where} must hold a JSON list of {{name, type, description}}")
    entries = []
    for n, item in enumerate(data, 1):
        if not isinstance(item, dict) or not str(item.get("name") or "").strip():
            raise ValueError(f'{where}: entry {n} needs a non-empty "name" (got {item!r:.80})')
        entries.append(
            MaterialEntry(
                str(item["name"]).strip(),
                str(item.get("type") or "").strip(),
                str(item.get("description") or "").strip(),
            )
        )
    return entries


def read_entries(path: Path) -> list[MaterialEntry]:
    """The entries in ``path``; ``ValueError`` names the file and what is wrong."""
    try:
        data = json.loads(path.read_text(encoding="utf-8-sig"))
    except OSError as exc:
        raise ValueError(f"material notes {path} cannot be read: {exc.strerror}") from exc
    except json.JSONDecodeError as exc:
        raise ValueError(f"material notes {path} are not valid JSON: {exc.msg}") from exc
    return parse_entries(data, f"material notes {path}")


def write_entries(path: Path, entries: list[MaterialEntry]) -> None:
    text = json.dumps([asdict(e) for e in entries], ensure_ascii=False, indent=1)
    path.write_text(text + "\n", encoding="utf-8")


def apply_entries(brief: MaterialBrief, entries: list[MaterialEntry]) -> list[MaterialEntry]:
    """Add the entries' descriptions to ``brief`` (see the module docstring); the
    entries whose file is not in the folder."""
    absent = []
    for entry in entries:
        found = _find(brief, entry.name)
        if found is None:
            absent.append(entry)
            if entry.description:
                brief.files.append(_absent_file(entry))
        elif entry.description and found.fact("supplied") is None:
            found.facts.append(BriefFact("supplied", entry.description, _described(found, entry)))
    return absent


def absent_notes(absent: list[MaterialEntry], language: str) -> list[str]:
    """What the report must say about the files the task names that the folder lacks."""
    zh = language.startswith("zh")
    notes = []
    for entry in absent:
        what = f"{entry.name}" + (f" ({entry.type})" if entry.type else "")
        if zh and entry.description:
            notes.append(f"任务提到的{what}不在所给文件夹中；本报告只依据任务提供的对它的描述。")
        elif zh:
            notes.append(f"任务提到的{what}不在所给文件夹中，本报告未能依据它撰写。")
        elif entry.description:
            notes.append(
                f"{what}, named by the task, is not in the folder; the report draws only on "
                "the description supplied with the task."
            )
        else:
            notes.append(
                f"{what}, named by the task, is not in the folder; the report could not draw on it."
            )
    return notes


def _find(brief: MaterialBrief, name: str) -> FileBrief | None:
    wanted = name.replace("\\", "/").strip("/")
    files = [f for f in brief.files if f.kind != SUPPLIED_KIND]
    by_path = [f for f in files if f.source.path == wanted]
    base = wanted.rsplit("/", 1)[-1].lower()
    by_name = [f for f in files if f.source.display_name.lower() == base]
    found = by_path or by_name
    return found[0] if found else None


def _described(file: FileBrief, entry: MaterialEntry) -> Evidence:
    locator = Locator(section=SUPPLIED_DESCRIPTION)
    return Evidence(Segment.create(file.source.id, entry.description, locator), file.source)


def _absent_file(entry: MaterialEntry) -> FileBrief:
    source = Source(
        id=f"{SUPPLIED_KIND}:{entry.name}",
        path=entry.name,
        kind=SUPPLIED_KIND,
        title=entry.name,
        meta={"type": entry.type},
    )
    segment = Segment.create(source.id, entry.description, Locator(section=SUPPLIED_DESCRIPTION))
    fact = BriefFact("supplied", entry.description, Evidence(segment, source))
    return FileBrief(source, entry.name, [fact], terms=[], language="")
