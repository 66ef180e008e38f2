"""Issues 7 and 5 end to end: a run cites a PDF page, a slide, a sheet row range, an image
and a video time range, and the see/hear tools look only where they are asked.

The folder is generated: a PDF, a PPTX, an XLSX, a poster PNG with Chinese and English
text, and a narrated slide video whose slide times are known (``make_slide_video``). A
scripted fake agent reaches each file through the tools, picks evidence ids out of the
observations it was shown, and writes a report citing one of each.
"""

from __future__ import annotations

import base64
import io
import json
import re
import shutil
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image, ImageDraw, ImageFont

from deepfolder.llm.base import ChatResponse
from deepfolder.llm.fake import FunctionModel, ScriptedModel, tool_call
from deepfolder.records import format_seconds
from deepfolder.runner.run import run_task
from deepfolder.settings import Settings, load_settings

TESTS = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(TESTS / "fixtures"))
sys.path.insert(0, str(TESTS / "ingest"))
from make_files import CJK_FONT, make_pdf, make_pptx, make_xlsx  # noqa: E402
from make_slide_video import (  # noqa: E402
    DEFAULT_SLIDES,
    VideoTruth,
    make_slide_video,
    missing_tools,
    render_slide,
)

needs_tools = pytest.mark.skipif(bool(missing_tools()), reason=f"missing {missing_tools()}")
"""The runs ingest with real OCR and speech recognition on a 30 s video (~15 s cold), so
they are also marked slow."""

ID = r"E[0-9a-f]{8}"
REQUEST = "根据文件夹中的材料写一份简短的中文报告，说明每份材料的要点，每段标注来源。"
ASKED_SLIDE = 1
"""The video window asked about: the second slide (0-based index into the truth)."""


@dataclass(frozen=True, slots=True)
class Case:
    folder: Path
    cache: Path
    truth: VideoTruth


@pytest.fixture(scope="module")
def case(tmp_path_factory: pytest.TempPathFactory) -> Case:
    """One folder of every cited kind; both tests share its (cached) ingest."""
    root = tmp_path_factory.mktemp("multimodal")
    folder = root / "case"
    folder.mkdir()
    truth = make_slide_video(folder, name="lecture.mp4")
    make_pdf(
        folder / "paper.pdf",
        [
            "Page one is about apples and orchards.",
            "Page two reports that the harvest doubled in 2023.",
            "Page three concludes the study.",
        ],
    )
    make_pptx(folder / "deck.pptx")
    make_xlsx(folder / "sales.xlsx", rows=60)
    poster = Image.new("RGB", (800, 300), "white")
    draw = ImageDraw.Draw(poster)
    font = ImageFont.truetype(str(CJK_FONT), 48)
    draw.text((40, 60), "社区图书馆 Library Hours", font=font, fill="black")
    draw.text((40, 160), "开放时间 9:00-18:00", font=font, fill="black")
    poster.save(folder / "poster.png")
    return Case(folder, root / "cache", truth)


def settings(case: Case) -> Settings:
    return settings_for(case.cache.parent)


def settings_for(root: Path) -> Settings:
    return load_settings(
        overrides={
            "cache_dir": str(root / "cache"),
            "retrieval": {"dense": False},
            "validate": {"max_revisions": 0, "support_judge": "local"},
        },
        environ={},
    )


def asked_window(case: Case) -> tuple[float, float]:
    slide = case.truth.slides[ASKED_SLIDE]
    return slide.start, slide.end


def scripted_agent(case: Case, video_question: str) -> tuple[ScriptedModel, dict[str, str]]:
    """A fake agent that visits each file with a tool, then writes a report citing one
    evidence id of each kind, picked from the observations it was shown.

    Returns the model and a dict it fills with the ids it cited (kind -> id) and the
    video window label it read in the observation."""
    start, end = asked_window(case)
    observations: list[str] = []
    picked: dict[str, str] = {}

    def after(call: ChatResponse) -> Callable[[list[dict[str, Any]], Any], ChatResponse]:
        def reply(messages: list[dict[str, Any]], tools: Any) -> ChatResponse:
            observations.append(str(messages[-1]["content"]))
            return call

        return reply

    def pick(kind: str, pattern: str, text: str) -> re.Match[str]:
        match = re.search(pattern, text)
        assert match, f"no {kind} evidence in the observation:\n{text}"
        picked[kind] = match.group(1)
        return match

    def write_report(messages: list[dict[str, Any]], tools: Any) -> str:
        observations.append(str(messages[-1]["content"]))
        _, pdf, slide, rows, image, video = observations
        pick("pdf", rf"\[({ID})\] paper\.pdf, 第2页", pdf)
        pick("slide", rf"\[({ID})\] deck\.pptx, 第2张幻灯片", slide)
        m = pick("rows", rf"\[({ID})\] sales\.xlsx, Sales, 第(\d+)–(\d+)行", rows)
        picked["row_range"] = f"{m.group(2)}–{m.group(3)}"
        pick("image", rf"\[({ID})\] text in image[^\n]*图书馆", image)
        m = pick("video", rf"\[({ID})\] (\d\d:\d\d–\d\d:\d\d)", video)
        picked["video_label"] = m.group(2)
        return "\n".join(
            [
                "# 多种材料要点报告",
                "",
                "## 论文",
                "",
                "论文第二页写道：Page two reports that the harvest doubled in 2023 "
                f"[{picked['pdf']}]。",
                "",
                "## 演示文稿",
                "",
                f"第二张幻灯片：Slide title 2, body text of slide 2 about safe harbour, DMCA 1998 "
                f"[{picked['slide']}]。",
                "",
                "## 销售表",
                "",
                "销售表记录 city | month | amount，例如 row 21: city19 | 8 | 190 "
                f"[{picked['rows']}]。",
                "",
                "## 海报",
                "",
                f"海报写明社区图书馆开放时间 9:00-18:00 [{picked['image']}]。",
                "",
                "## 讲座视频",
                "",
                "视频的市场分析一节说华东地区需求最强，Demand was strongest in the "
                f"eastern region [{picked['video']}]。",
            ]
        )

    model = ScriptedModel(
        [
            tool_call("list_sources", {}),
            after(tool_call("read", {"source": "paper.pdf", "page": 2, "around": 0})),
            after(tool_call("read", {"source": "deck.pptx", "slide": 2, "around": 0})),
            after(tool_call("read", {"source": "sales.xlsx", "row": 21, "around": 0})),
            after(
                tool_call(
                    "inspect_image",
                    {"source": "poster.png", "question": "海报上写的开放时间是什么？"},
                )
            ),
            after(
                tool_call(
                    "inspect_video",
                    {
                        "source": "lecture.mp4",
                        "question": video_question,
                        "start": start,
                        "end": end,
                    },
                )
            ),
            write_report,
        ],
        name="fake:multimodal-agent",
        is_local=False,
    )
    return model, picked


def trace_of(run_dir: Path) -> list[dict[str, Any]]:
    lines = (run_dir / "trace.jsonl").read_text(encoding="utf-8").splitlines()
    return [json.loads(line) for line in lines]


def tool_result(trace: list[dict[str, Any]], name: str) -> str:
    results = [s for s in trace if s["kind"] == "tool_result" and s["name"] == name]
    assert len(results) == 1, f"expected one {name} result, got {len(results)}"
    assert not results[0]["is_error"], results[0]["content"]
    return str(results[0]["content"])


@pytest.mark.slow
@needs_tools
def test_run_cites_page_slide_rows_image_and_video_window(case: Case, tmp_path: Path) -> None:
    model, picked = scripted_agent(case, "这一段关于市场需求说了什么？")
    out = tmp_path / "run"
    run_task(case.folder, REQUEST, settings(case), out=out, model=model)
    assert model.remaining == 0

    report = (out / "report.md").read_text(encoding="utf-8")
    start, end = asked_window(case)
    window = f"{format_seconds(start)}–{format_seconds(end)}"
    assert picked["video_label"] == window, "the tool must label the window it was asked"
    lo, hi = (int(n) for n in picked["row_range"].split("–"))
    assert lo <= 21 <= hi
    expected = {
        "pdf": "paper.pdf, 第2页",
        "slide": "deck.pptx, 第2张幻灯片",
        "rows": f"sales.xlsx, Sales, 第{lo}–{hi}行",
        "image": "poster.png",
        "video": f"lecture.mp4, {window}",
    }
    for kind, label in expected.items():
        # A label may go on after the expected part only for the image (its OCR block).
        tail = r"(, [^\]]+)?" if kind == "image" else ""
        cited = rf"\[{re.escape(label)}{tail}\]\(#{picked[kind]}\)"
        assert re.search(cited, report), f"{kind}: {label} not cited in\n{report}"
    # The cited window is where the generator put slide 2's text and speech.
    slide = case.truth.slides[ASKED_SLIDE]
    assert slide.speech_start is not None and slide.speech_end is not None
    assert start <= slide.speech_start < slide.speech_end <= end

    evidence = {
        json.loads(line)["segment"]["id"]: json.loads(line)
        for line in (out / "evidence.jsonl").read_text(encoding="utf-8").splitlines()
    }
    kinds = {evidence[picked[k]]["source"]["kind"] for k in expected}
    assert kinds == {"pdf", "pptx", "sheet", "image", "video"}
    video_segment = evidence[picked["video"]]["segment"]
    assert (video_segment["locator"]["start"], video_segment["locator"]["end"]) == (start, end)
    assert "Demand strongest in the east" in video_segment["text"]

    validation = json.loads((out / "validation.json").read_text(encoding="utf-8"))
    body = [c for c in validation["citations"] if c["kind"] != "reference"]
    assert {i for c in body for i in c["ids"]} == {picked[k] for k in expected}
    problems = {c["raw"]: c["problems"] for c in validation["citations"] if c["problems"]}
    assert not problems, problems
    assert validation["passed"], validation["failures"]

    # Without a vision model the tools say so instead of describing the pictures.
    trace = trace_of(out)
    image_seen = tool_result(trace, "inspect_image")
    assert "no vision model configured" in image_seen
    assert "开放时间" in image_seen  # the OCR text is still there
    video_seen = tool_result(trace, "inspect_video")
    assert "no vision model is configured" in video_seen
    assert "Demand strongest in the east" in video_seen  # this window's slide text
    for other in (0, 2, 3):  # and nothing from the other slides
        assert case.truth.slides[other].lines[-1] not in video_seen
    assert not (out / "vision_calls.jsonl").exists()


def _decode(url: str) -> Image.Image:
    head, _, data = url.partition(",")
    assert head == "data:image/jpeg;base64", head
    return Image.open(io.BytesIO(base64.b64decode(data))).convert("RGB")


def _distance(a: Image.Image, b: Image.Image) -> float:
    return float(np.abs(np.asarray(a, float) - np.asarray(b.resize(a.size), float)).mean())


@pytest.mark.slow
@needs_tools
def test_run_with_a_vision_model_sends_the_image_and_the_window_frames(
    case: Case, tmp_path: Path
) -> None:
    sent: list[list[str]] = []

    def vision(messages: list[dict[str, Any]], tools: Any) -> str:
        parts = messages[-1]["content"]
        urls = [p["image_url"]["url"] for p in parts if p.get("type") == "image_url"]
        sent.append(urls)
        return f"The picture(s) show printed text ({len(urls)} image(s))."

    vision_model = FunctionModel(vision, name="fake:vision")
    model, _ = scripted_agent(case, "画面上显示了什么？")
    out = tmp_path / "run"
    run_task(case.folder, REQUEST, settings(case), out=out, model=model, vision=vision_model)
    assert model.remaining == 0
    assert len(sent) == 2, "one call for the image, one for the video window"

    # The image: exactly the poster, once.
    image_urls, frame_urls = sent
    assert len(image_urls) == 1
    poster = Image.open(case.folder / "poster.png").convert("RGB")
    assert _decode(image_urls[0]).size == poster.size
    assert _distance(_decode(image_urls[0]), poster) < 8

    # The video: only frames of the asked window, each showing the asked slide.
    start, end = asked_window(case)
    calls = [
        json.loads(line)
        for line in (out / "vision_calls.jsonl").read_text(encoding="utf-8").splitlines()
    ]
    assert len(calls) == 1 and (calls[0]["start"], calls[0]["end"]) == (start, end)
    times = calls[0]["frame_times"]
    assert len(times) == len(frame_urls) >= 2  # a visual question decodes denser frames
    assert all(start <= t < end for t in times), times
    truth_slides = [render_slide(s, case.truth.width, case.truth.height) for s in DEFAULT_SLIDES]
    for url, t in zip(frame_urls, times, strict=True):
        frame = _decode(url)
        nearest = min(range(len(truth_slides)), key=lambda i: _distance(frame, truth_slides[i]))
        assert nearest == ASKED_SLIDE, f"frame at {t:.1f}s shows slide {nearest + 1}"

    # Both answers came back as citable evidence and the report still cites the window.
    trace = trace_of(out)
    assert "no vision model" not in tool_result(trace, "inspect_image")
    assert "Vision model fake:vision" in tool_result(trace, "inspect_image")
    assert "Frames sent to fake:vision" in tool_result(trace, "inspect_video")
    # The vision calls are model calls in the trace too, without the image bytes.
    vision_steps = [s for s in trace if s["kind"] == "model_call" and s["purpose"] == "vision"]
    assert len(vision_steps) == 2
    assert "omitted" in json.dumps(vision_steps) and ";base64," not in json.dumps(vision_steps)
    report = (out / "report.md").read_text(encoding="utf-8")
    assert f"[lecture.mp4, {format_seconds(start)}–{format_seconds(end)}](#" in report


REAL_VIDEO = TESTS.parent.parent / "shared" / "data" / "video" / "auto-editor" / "example.mp4"


@pytest.mark.slow
@pytest.mark.data
@pytest.mark.skipif(not REAL_VIDEO.is_file(), reason=f"{REAL_VIDEO} is absent")
def test_run_on_a_real_video_cites_where_the_word_is_said(tmp_path: Path) -> None:
    """example.mp4 (42 s) says "banana" at about 40 s and shows a running timecode."""
    folder = tmp_path / "case"
    folder.mkdir()
    shutil.copy(REAL_VIDEO, folder / "example.mp4")
    observations: list[str] = []
    picked: dict[str, str] = {}

    def look(messages: list[dict[str, Any]], tools: Any) -> ChatResponse:
        observations.append(str(messages[-1]["content"]))
        return tool_call(
            "inspect_video",
            {"source": "example.mp4", "question": "what time is shown?", "start": 25, "end": 35},
        )

    def write_report(messages: list[dict[str, Any]], tools: Any) -> str:
        observations.append(str(messages[-1]["content"]))
        match = re.search(rf"\[[\d:]+–[\d:]+\] Banana\.? \(({ID})\)", observations[0], re.I)
        assert match, observations[0]
        picked["banana"] = match.group(1)
        return f"# 视频要点\n\n视频接近结尾时说出 Banana [{picked['banana']}]。\n"

    model = ScriptedModel(
        [tool_call("transcript", {"source": "example.mp4"}), look, write_report],
        name="fake:video-agent",
    )
    out = tmp_path / "run"
    run_task(
        folder, "总结这个视频说了什么，标注时间。", settings_for(tmp_path), out=out, model=model
    )
    assert model.remaining == 0

    report = (out / "report.md").read_text(encoding="utf-8")
    cited = re.search(
        rf"\[example\.mp4, (\d\d):(\d\d)–(\d\d):(\d\d)\]\(#{picked['banana']}\)", report
    )
    assert cited, report
    m1, s1, m2, s2 = (int(g) for g in cited.groups())
    start, end = 60 * m1 + s1, 60 * m2 + s2
    assert start <= 40 <= end and end - start <= 10, (start, end)
    validation = json.loads((out / "validation.json").read_text(encoding="utf-8"))
    assert not [c for c in validation["citations"] if c["problems"]]
    # The window 25–35 s shows the keyframe at 30 s with its own timecode, read by OCR
    # (not the text of the keyframe before it).
    assert "01:00:30:00" in observations[1], observations[1]


@pytest.mark.skipif(not CJK_FONT.exists(), reason=f"{CJK_FONT} is absent")
def test_keyframe_ocr_is_reused_only_for_the_same_picture(tmp_path: Path) -> None:
    """A keyframe whose only change is a small timecode must be OCR'd again; one that
    differs from the last by compression noise only reuses the last OCR text.
    (A unit test of the video extractor; it belongs with tests/ingest/test_video_extract.)"""
    from deepfolder.ingest.keyframes import Keyframe
    from deepfolder.ingest.video import _ocr_keyframes

    font = ImageFont.truetype(str(CJK_FONT), 64)

    def frame(code: str, noise: int = 0) -> Image.Image:
        image = Image.new("RGB", (1280, 720), (66, 209, 152))
        ImageDraw.Draw(image).text((850, 600), code, font=font, fill="white")
        if noise:
            jitter = np.random.default_rng(0).integers(-noise, noise + 1, (720, 1280, 1))
            pixels = np.clip(np.asarray(image, np.int16) + jitter, 0, 255).astype(np.uint8)
            image = Image.fromarray(pixels)
        return image

    calls: list[Image.Image] = []

    @dataclass
    class Line:
        text: str

    def ocr(image: Image.Image) -> list[Line]:
        calls.append(image)
        return [Line(f"reading {len(calls)}")]

    keyframes = [
        Keyframe(0.0, frame("01:00:00:00"), "start"),
        Keyframe(10.0, frame("01:00:00:00", noise=6), "interval"),
        Keyframe(30.0, frame("01:00:30:00"), "interval"),
    ]
    saved = _ocr_keyframes(keyframes, ocr, tmp_path / "kf", tmp_path, "kf")
    assert [k.ocr for k in saved] == ["reading 1", "reading 1", "reading 2"]
