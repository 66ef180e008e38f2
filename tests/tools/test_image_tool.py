"""inspect_image: OCR + metadata evidence always; the image really sent to a vision model."""

from __future__ import annotations

import base64
import hashlib
import io
from pathlib import Path
from typing import Any

import pytest
from PIL import Image, ImageDraw

from deepfolder.ingest.base import ExtractContext
from deepfolder.ingest.image import extract_image
from deepfolder.llm.base import ChatResponse
from deepfolder.llm.fake import FunctionModel
from deepfolder.records import EVIDENCE_ID_PATTERN, Locator, Segment, Source
from deepfolder.settings import IngestSettings
from deepfolder.tools.base import ToolArgumentError
from deepfolder.tools.image import NO_VISION_NOTE, inspect_image
from memory_index import MemoryIndex
from tools.media_tool_helpers import make_context


def index_image(folder: Path, name: str, index: MemoryIndex, *, ocr: bool = False) -> Path:
    """A red square with a white bar saved in the folder and ingested into ``index``."""
    path = folder / name
    image = Image.new("RGB", (200, 120), (210, 20, 20))
    ImageDraw.Draw(image).rectangle((20, 50, 180, 70), fill="white")
    image.save(path)
    data = path.read_bytes()
    ctx = ExtractContext(
        rel_path=name,
        sha256=hashlib.sha256(data).hexdigest(),
        size=len(data),
        settings=IngestSettings(ocr=ocr),
        work_dir=folder / "work",
    )
    result = extract_image(path, ctx)
    index.add(result.sources, result.segments)
    return path


def test_without_vision_model_the_honest_note_and_no_description(tmp_path: Path) -> None:
    index = MemoryIndex()
    index_image(tmp_path, "logo.png", index)
    ctx = make_context(tmp_path, index)
    out = inspect_image(ctx, {"source": "logo.png", "question": "Which platform is this?"})
    assert NO_VISION_NOTE in out.text
    assert "red" in out.text and "200×120" in out.text  # metadata is evidence
    (meta_ev,) = out.evidence
    assert f"[{meta_ev.id}]" in out.text and meta_ev.id in ctx.seen
    assert not ctx.created  # nothing was invented


def test_vision_model_gets_the_image_and_its_answer_is_evidence(tmp_path: Path) -> None:
    index = MemoryIndex()
    path = index_image(tmp_path, "logo.png", index)
    sent: list[list[dict[str, Any]]] = []

    def look(messages: list[dict[str, Any]], tools: object) -> ChatResponse:
        sent.append(messages)
        return ChatResponse(content="A red square with a white horizontal bar.")

    model = FunctionModel(look, name="fake:vision")
    index_dir = tmp_path / "index"
    ctx = make_context(tmp_path, index, index_dir)
    ctx.vision = model
    out = inspect_image(ctx, {"source": "logo", "question": "What does it show?"})

    (messages,) = sent
    parts = messages[-1]["content"]
    image_parts = [p for p in parts if p.get("type") == "image_url"]
    assert len(image_parts) == 1
    url = image_parts[0]["image_url"]["url"]
    assert url.startswith("data:image/jpeg;base64,")
    decoded = Image.open(io.BytesIO(base64.b64decode(url.split(",", 1)[1])))
    assert decoded.size == (200, 120)
    assert decoded.convert("RGB").getpixel((5, 5))[0] > 180  # the red picture itself
    assert "What does it show?" in parts[0]["text"]

    answer = out.evidence[-1]
    assert answer.source.kind == "image" and answer.segment.locator.section
    assert __import__("re").fullmatch(EVIDENCE_ID_PATTERN, answer.id)
    assert answer.id in ctx.created and answer.id in ctx.seen
    assert "white horizontal bar" in answer.segment.text and f"[{answer.id}]" in out.text
    assert answer.source.sha256 == hashlib.sha256(path.read_bytes()).hexdigest()
    assert NO_VISION_NOTE not in out.text

    # The same question again: answered from the cache, same evidence id, no model call.
    ctx2 = make_context(tmp_path, index, index_dir)
    ctx2.vision = model
    again = inspect_image(ctx2, {"source": "logo.png", "question": "What does it show?"})
    assert len(sent) == 1 and again.evidence[-1].id == answer.id and "cached" in again.text


def test_ocr_text_is_returned_with_ids(tmp_path: Path) -> None:
    index = MemoryIndex()
    source = Source(id="poster.png", path="poster.png", kind="image", title="poster.png")
    meta = Segment.create(
        "poster.png", "Image poster.png: 10×10", Locator(section="image metadata")
    )
    text = Segment.create("poster.png", "限时优惠 Sale", Locator(chunk=1, char_start=0), seq=1)
    index.add([source], [meta, text])
    ctx = make_context(tmp_path, index)
    out = inspect_image(ctx, {"source": "poster.png", "question": "what does it say?"})
    assert f"[{text.id}] text in image, block 1: 限时优惠 Sale" in out.text
    assert {ev.id for ev in out.evidence} == {meta.id, text.id}


def test_vision_failure_keeps_ocr_evidence(tmp_path: Path) -> None:
    index = MemoryIndex()
    index_image(tmp_path, "logo.png", index)

    def broken(messages: object, tools: object) -> ChatResponse:
        raise RuntimeError("HTTP 503")

    ctx = make_context(tmp_path, index)
    ctx.vision = FunctionModel(broken, name="fake:down")
    out = inspect_image(ctx, {"source": "logo.png", "question": "what is it?"})
    assert "failed (HTTP 503)" in out.text and len(out.evidence) == 1 and not ctx.created


def test_unknown_image_names_the_known_ones(tmp_path: Path) -> None:
    index = MemoryIndex()
    index_image(tmp_path, "logo.png", index)
    ctx = make_context(tmp_path, index)
    with pytest.raises(ToolArgumentError, match=r"logo\.png"):
        inspect_image(ctx, {"source": "cat.jpg", "question": "what?"})


def test_keyframe_of_a_video_window(tmp_path: Path) -> None:
    index = MemoryIndex()
    index_dir = tmp_path / "index"
    (index_dir / "keyframes").mkdir(parents=True)
    Image.new("RGB", (64, 36), "blue").save(index_dir / "keyframes" / "k1.jpg")
    video = Source(id="talk.mp4", path="talk.mp4", kind="video")
    window = Segment.create(
        "talk.mp4", "screen: Agenda", Locator(start=0.0, end=12.0, keyframe="keyframes/k1.jpg")
    )
    index.add([video], [window])
    seen: list[Any] = []
    ctx = make_context(tmp_path, index, index_dir)
    ctx.vision = FunctionModel(lambda m, t: seen.append(m) or "A blue frame.")
    out = inspect_image(ctx, {"source": window.id, "question": "what colour?"})
    assert seen and "A blue frame." in out.text and out.evidence[0].id == window.id


def test_image_inside_a_zip_is_sent(tmp_path: Path) -> None:
    import zipfile

    buffer = io.BytesIO()
    Image.new("RGB", (40, 30), "yellow").save(buffer, format="PNG")
    with zipfile.ZipFile(tmp_path / "pics.zip", "w") as zf:
        zf.writestr("inner/sun.png", buffer.getvalue())
    source = Source(id="pics.zip!/inner/sun.png", path="pics.zip!/inner/sun.png", kind="image")
    meta = Segment.create(source.id, "Image sun.png: 40×30", Locator(section="image metadata"))
    index = MemoryIndex()
    index.add([source], [meta])
    sent: list[Any] = []
    ctx = make_context(tmp_path, index)
    ctx.vision = FunctionModel(lambda m, t: sent.append(m) or "Yellow.")
    out = inspect_image(ctx, {"source": "sun.png", "question": "colour?"})
    assert sent and "Yellow." in out.text


def test_missing_file_keeps_ocr_and_says_why(tmp_path: Path) -> None:
    index = MemoryIndex()
    path = index_image(tmp_path, "logo.png", index)
    path.unlink()
    ctx = make_context(tmp_path, index)
    ctx.vision = FunctionModel(lambda m, t: "should not be called")
    out = inspect_image(ctx, {"source": "logo.png", "question": "what?"})
    assert "could not be sent" in out.text and "re-run ingest" in out.text
    assert len(out.evidence) == 1 and not ctx.created
