"""``inspect_image``: what is known about one image, and a vision model's answer when one
is configured.

Always returned, as citable evidence from the index: the image's metadata segment (size,
format, EXIF date/camera, dominant colours) and its OCR text blocks. Then:

- with a vision model (``ctx.vision``, a ChatModel that accepts OpenAI-style
  image parts), the question and the image (a base64 JPEG data URL, at most
  ``MAX_SIDE`` pixels a side) go to the model; its answer becomes new evidence — a
  Source of kind ``image`` derived from the file, one segment whose id is derived from
  the image's sha256 and the question — registered in ``ctx.created`` and ``ctx.seen``.
  Answers are cached per (model, image sha256, question) under
  ``<index_dir>/vision_cache/`` so a repeated question never calls the model again;
- without one, the observation says plainly that only OCR text and metadata are known,
  so the model does not invent what the picture shows.

``source`` may also be an evidence id of a video window that has a keyframe
(``Locator.keyframe``, relative to the index directory): the keyframe is inspected.
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
import re
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from PIL import Image, ImageOps, UnidentifiedImageError

from deepfolder.llm.base import ChatModel
from deepfolder.prompts.vision import IMAGE_SYSTEM, image_question
from deepfolder.records import (
    EVIDENCE_ID_PATTERN,
    Evidence,
    Locator,
    Segment,
    Source,
    short_hash,
)
from deepfolder.tools.base import ToolArgumentError, ToolContext, ToolOutput, folder_has, tool

MAX_SIDE = 1536
"""Longest side of the picture sent to a vision model (larger images are scaled down)."""
MAX_OCR_CHARS = 3000
NO_VISION_NOTE = (
    "no vision model configured: only OCR text and image metadata are known; set "
    "DEEPFOLDER_VISION_MODEL=provider:model to describe images"
)


@dataclass(slots=True)
class ImageTarget:
    """The picture to look at and the index evidence already known about it."""

    source: Source
    file: Path
    evidence: list[Evidence]
    label: str


def _image_sources(ctx: ToolContext) -> list[Source]:
    return [s for s in ctx.index.sources() if s.kind == "image"]


def _find_target(ctx: ToolContext, name: str) -> ImageTarget:
    name = name.strip().strip("[]\"'")
    if not name:
        raise ToolArgumentError("inspect_image(): source is empty; give an image file name.")
    if re.fullmatch(EVIDENCE_ID_PATTERN, name):
        ev = ctx.resolve(name)
        if ev is None:
            raise ToolArgumentError(f"unknown evidence id {name!r}; use an id from a result.")
        keyframe = ev.segment.locator.keyframe
        if ev.source.kind != "image" and keyframe and ctx.index_dir is not None:
            label = f"keyframe of {ev.citation_label()}"
            return ImageTarget(ev.source, ctx.index_dir / keyframe, [ev], label)
        if ev.source.kind != "image":
            raise ToolArgumentError(
                f"{name} is from {ev.source.display_name} ({ev.source.kind}), not an image "
                "or a video window with a keyframe."
            )
        name = ev.source.id
    images = _image_sources(ctx)
    exact = [s for s in images if name in (s.id, s.path, s.display_name)]
    matches = exact or [s for s in images if name.lower() in s.display_name.lower()]
    if not matches:
        known = ", ".join(s.display_name for s in images[:20]) or "none"
        raise ToolArgumentError(f"no image named {name!r} in the folder; images indexed: {known}")
    if len(matches) > 1:
        listed = ", ".join(s.id for s in matches[:10])
        raise ToolArgumentError(f"{name!r} matches several images ({listed}); give the full id.")
    source = matches[0]
    evidence = [Evidence(seg, source) for seg in ctx.index.segments_of(source.id)]
    return ImageTarget(source, ctx.folder / source.path, evidence, source.display_name)


class ImageUnavailable(Exception):
    """The image file cannot be read now (moved, deleted, not an image)."""


def read_image_bytes(target: ImageTarget, folder: Path) -> bytes:
    """The image's bytes: the file in the folder, or a member of a ZIP in the folder
    (source path ``archive.zip!/dir/picture.png``)."""
    try:
        if target.file.is_file():
            return target.file.read_bytes()
        archive, sep, member = target.source.path.partition("!/")
        if sep and target.source.kind == "image" and "!/" not in member:
            with zipfile.ZipFile(folder / archive) as zf:
                return zf.read(member)
    except (OSError, KeyError, zipfile.BadZipFile) as exc:
        raise ImageUnavailable(f"cannot read {target.source.path}: {exc}") from exc
    raise ImageUnavailable(f"{target.file} no longer exists; re-run ingest")


def image_data_url(raw: bytes) -> tuple[str, str]:
    """``(data URL of a JPEG of the image, sha256 of the file's bytes)``."""
    try:
        with Image.open(io.BytesIO(raw)) as opened:
            picture = ImageOps.exif_transpose(opened) or opened
            picture = picture.convert("RGB")
    except (OSError, UnidentifiedImageError) as exc:
        raise ImageUnavailable(f"not a readable image: {exc}") from exc
    picture.thumbnail((MAX_SIDE, MAX_SIDE))
    buffer = io.BytesIO()
    picture.save(buffer, format="JPEG", quality=88)
    encoded = base64.b64encode(buffer.getvalue()).decode("ascii")
    return f"data:image/jpeg;base64,{encoded}", hashlib.sha256(raw).hexdigest()


def vision_messages(question: str, label: str, data_url: str) -> list[dict[str, Any]]:
    return [
        {"role": "system", "content": IMAGE_SYSTEM},
        {
            "role": "user",
            "content": [
                {"type": "text", "text": image_question(label, question)},
                {"type": "image_url", "image_url": {"url": data_url}},
            ],
        },
    ]


def _ask_vision(
    ctx: ToolContext, model: ChatModel, target: ImageTarget, question: str
) -> tuple[str, str, bool]:
    """``(answer, image sha256, cached)``; the answer is cached on disk per question."""
    data_url, sha = image_data_url(read_image_bytes(target, ctx.folder))
    cache_file = None
    if ctx.index_dir is not None:
        key = short_hash(model.name, sha, question.strip(), length=24)
        cache_file = ctx.index_dir / "vision_cache" / f"{key}.json"
        if cache_file.is_file():
            return json.loads(cache_file.read_text("utf-8"))["answer"], sha, True
    reply = model.chat(vision_messages(question, target.label, data_url))
    ctx.usage = ctx.usage + reply.usage
    answer = (reply.content or "").strip()
    if answer and cache_file is not None:
        cache_file.parent.mkdir(parents=True, exist_ok=True)
        record = {"model": model.name, "image_sha256": sha, "question": question, "answer": answer}
        tmp = cache_file.with_suffix(".tmp")
        tmp.write_text(json.dumps(record, ensure_ascii=False), encoding="utf-8")
        tmp.replace(cache_file)
    return answer, sha, False


def answer_evidence(
    target: ImageTarget, question: str, answer: str, sha: str, model_name: str
) -> Evidence:
    """The vision answer as evidence; its id depends only on (image sha256, question)."""
    qhash = short_hash(sha, question.strip())
    source = Source(
        id=f"{target.source.id}#vision-{qhash}",
        path=target.source.path,
        kind="image",
        title=f"{target.label} (vision model answer)",
        sha256=sha,
        meta={"question": question, "model": model_name, "derived_from": target.source.id},
    )
    text = f"Asked {model_name} about {target.label}: {question}\n{answer}"
    segment = Segment(
        id="E" + short_hash("vision", sha, question.strip()),
        source_id=source.id,
        text=text,
        locator=Locator(section="vision model answer"),
    )
    return Evidence(segment, source)


def _known_text(target: ImageTarget) -> str:
    lines: list[str] = []
    used = 0
    for ev in target.evidence:
        loc = ev.segment.locator
        what = loc.section or (f"text in image, block {loc.chunk}" if loc.chunk else "text")
        entry = f"[{ev.id}] {what}: {ev.segment.text}"
        if used + len(entry) > MAX_OCR_CHARS and lines:
            lines.append(f"… {len(target.evidence) - len(lines)} more text blocks not shown")
            break
        lines.append(entry)
        used += len(entry)
    return "\n".join(lines) if lines else "(nothing indexed for this image)"


@tool(available=folder_has("image"))
def inspect_image(ctx: ToolContext, source: str, question: str) -> ToolOutput:
    """Look at one image of the folder: returns its OCR text and metadata (size, colours,
    date) as evidence, and, when a vision model is configured, that model's answer to
    your question about the picture. Cite the ids it returns.

    Args:
        source: The image's file name or id from list_sources() (or the evidence id of a
            video window, to look at its keyframe).
        question: What you want to know about the picture, e.g. "which platform's logo is
            this?" or "describe the brushwork".
    """
    if not question.strip():
        raise ToolArgumentError("inspect_image(): question is empty; say what to look for.")
    target = _find_target(ctx, source)
    evidence = list(target.evidence)
    parts = [f"Image {target.label} — what the index knows:", _known_text(target)]
    model = ctx.vision
    if model is None:
        parts.append(f"Note: {NO_VISION_NOTE}. Do not describe the picture beyond this.")
    else:
        try:
            answer, sha, cached = _ask_vision(ctx, model, target, question)
        except ImageUnavailable as exc:
            parts.append(f"Note: the picture could not be sent to the vision model: {exc}.")
        except Exception as exc:  # the endpoint failed: say so, keep the OCR evidence
            parts.append(
                f"Note: the vision model {model.name} failed ({exc}); only OCR text and "
                "image metadata are known."
            )
        else:
            if answer:
                ev = answer_evidence(target, question, answer, sha, model.name)
                ctx.created[ev.id] = ev
                evidence.append(ev)
                origin = "cached answer" if cached else "answer"
                parts.append(f"Vision model {model.name} {origin} [{ev.id}]:\n{answer}")
            else:
                parts.append(f"Note: the vision model {model.name} returned no answer.")
    ctx.remember(evidence)
    parts.append(ctx.status_line())
    return ToolOutput(text="\n".join(parts), evidence=evidence)


TOOLS = [inspect_image]
