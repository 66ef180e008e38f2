"""Ask a vision-capable chat model about a few frames, with an on-disk answer cache.

The request is OpenAI-compatible: one user message whose content is a list of parts, a
``text`` part with the question and what is known about each frame (time, OCR text),
then per frame a ``text`` label and an ``image_url`` part carrying a base64 JPEG data URL.
The texts are in :mod:`deepfolder.prompts.vision`.

Answers are cached under ``<index_dir>/vision_cache/<key>.json`` where the key hashes the
model name, the question and the frames' pixel hashes in order, so asking the same
question about the same pictures never calls the model twice, across runs too. The
cached record keeps the frame times and hashes that were sent, so what the model saw is
on record.
"""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from deepfolder.llm.base import ChatModel
from deepfolder.perception.frames import WindowFrame
from deepfolder.prompts.vision import FRAMES_SYSTEM, frame_label, frames_question
from deepfolder.records import Usage, format_seconds


@dataclass(slots=True)
class VisionAnswer:
    text: str
    model: str
    frame_times: list[float]
    frame_hashes: list[str]
    cached: bool = False
    usage: Usage = field(default_factory=Usage)


def clock(t: float) -> str:
    """``72.46`` -> ``01:12.4`` (tenths truncated, like ``format_seconds``)."""
    return f"{format_seconds(t)}.{int((t % 1) * 10)}"


def build_messages(
    question: str, frames: Sequence[WindowFrame], context: str = ""
) -> list[dict[str, Any]]:
    """The chat messages sent for ``frames`` (exactly one image part per frame)."""
    text = frames_question(question, len(frames), context)
    parts: list[dict[str, Any]] = [{"type": "text", "text": text}]
    for n, frame in enumerate(frames, 1):
        data = base64.b64encode(frame.jpeg_bytes()).decode("ascii")
        parts.append({"type": "text", "text": frame_label(n, clock(frame.t), frame.ocr)})
        parts.append({"type": "image_url", "image_url": {"url": f"data:image/jpeg;base64,{data}"}})
    return [{"role": "system", "content": FRAMES_SYSTEM}, {"role": "user", "content": parts}]


def cache_key(model_name: str, question: str, frame_hashes: Sequence[str]) -> str:
    blob = json.dumps([model_name, question.strip(), list(frame_hashes)], ensure_ascii=False)
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()[:32]


def ask_about_frames(
    model: ChatModel,
    question: str,
    frames: Sequence[WindowFrame],
    *,
    cache_dir: Path | None = None,
    context: str = "",
    max_tokens: int = 600,
) -> VisionAnswer:
    """The model's answer about ``frames`` (from the cache when asked before)."""
    hashes = [f.sha256() for f in frames]
    times = [f.t for f in frames]
    key = cache_key(model.name, question, hashes)
    cache_file = cache_dir / f"{key}.json" if cache_dir is not None else None
    if cache_file is not None and cache_file.exists():
        try:
            record = json.loads(cache_file.read_text(encoding="utf-8"))
            return VisionAnswer(record["answer"], record["model"], times, hashes, cached=True)
        except (OSError, ValueError, KeyError):
            pass  # a damaged cache entry is asked again and rewritten
    response = model.chat(
        build_messages(question, frames, context), max_tokens=max_tokens, temperature=0.0
    )
    answer = (response.content or "").strip()
    if cache_file is not None and answer:
        cache_file.parent.mkdir(parents=True, exist_ok=True)
        record = {
            "model": model.name,
            "question": question,
            "frame_times": times,
            "frame_sha256": hashes,
            "answer": answer,
        }
        tmp = cache_file.with_suffix(".tmp")
        tmp.write_text(json.dumps(record, ensure_ascii=False, indent=1), encoding="utf-8")
        tmp.replace(cache_file)
    return VisionAnswer(answer, model.name, times, hashes, usage=response.usage)
