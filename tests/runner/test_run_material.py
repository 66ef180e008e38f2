"""A task's descriptions of its files (a benchmark's ``multimodal`` entries) in a run:
a present file's description is offered with that file's name, an absent file's
description is a source of its own cited as the task's description, and the report is
told what the folder lacks."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from deepfolder.cli import main
from deepfolder.llm.fake import FunctionModel
from deepfolder.runner.run import run_task
from deepfolder.settings import load_settings

ENTRIES = [
    {"name": "chart.png", "type": "image", "description": "柱状图：2024年公园游客410万人次。"},
    {
        "name": "lecture.mp4",
        "type": "video",
        "description": "讲座视频：图书馆电子书借阅8.6万册次。",
    },
    {"name": "photo.jpg", "type": "image"},
]
REQUEST = "根据我提供的图片和视频写一份简短报告，标注来源。"


def make_folder(root: Path) -> Path:
    folder = root / "case"
    folder.mkdir()
    (folder / "notes.md").write_text("# 说明\n\n青禾区共有社区图书馆14家。\n", encoding="utf-8")
    Image.new("RGB", (64, 64), "white").save(folder / "chart.png")
    return folder


def settings(root: Path) -> Any:
    data = {"cache_dir": str(root / "cache"), "retrieval": {"dense": False}}
    return load_settings(overrides={**data, "ingest": {"ocr": False}}, environ={})


class CitingAgent:
    """Answers at once, citing every evidence id of the task message."""

    def __init__(self) -> None:
        self.task = ""

    def __call__(self, messages: list[dict[str, Any]], tools: Any) -> str:
        if "verdict" in str(messages[-1].get("content")):
            return json.dumps({"verdict": "supported", "reason": "stated"})
        self.task = self.task or str(messages[1]["content"])
        ids = list(dict.fromkeys(re.findall(r"E[0-9a-f]{8}", self.task)))
        return "# 报告\n\n" + "".join(f"材料所述的情况如此 [{i}]。\n\n" for i in ids)


def test_descriptions_reach_the_task_and_the_report_cites_them_as_the_tasks(
    tmp_path: Path,
) -> None:
    from deepfolder.agent.task_material import parse_entries

    folder = make_folder(tmp_path)
    agent = CitingAgent()
    out = tmp_path / "run"
    run_task(
        folder,
        REQUEST,
        settings(tmp_path),
        out=out,
        model=FunctionModel(agent),
        material=parse_entries(ENTRIES, "test"),
    )
    task = agent.task
    # the present image: its own problem line, then the description with the file's name
    assert re.search(r"chart\.png \(image\): no text in the image", task)
    assert re.search(
        r"任务提供的描述（并非读自文件）: 柱状图：2024年公园游客410万人次。 \[E[0-9a-f]{8}\] "
        r"\(chart\.png（任务提供的描述）\)",
        task,
    )
    # the absent video: a source of its own, labelled as the task's description
    assert "- lecture.mp4 (不在文件夹中)" in task
    assert "(lecture.mp4（文件不在文件夹中；任务提供的描述）)" in task
    # what the folder lacks, for the report to say
    assert "报告须说明缺少的材料" in task
    assert (
        "任务提到的lecture.mp4 (video)不在所给文件夹中；本报告只依据任务提供的对它的描述。" in task
    )
    assert "任务提到的photo.jpg (image)不在所给文件夹中，本报告未能依据它撰写。" in task

    report = (out / "report.md").read_text(encoding="utf-8")
    assert "lecture.mp4（文件不在文件夹中；任务提供的描述）" in report
    assert "chart.png（任务提供的描述）" in report
    evidence = [json.loads(line) for line in (out / "evidence.jsonl").read_text().splitlines()]
    kinds = {e["source"]["path"]: e["source"]["kind"] for e in evidence}
    assert kinds["lecture.mp4"] == "supplied" and kinds["chart.png"] == "image"
    kept = json.loads((out / "material_notes.json").read_text(encoding="utf-8"))
    assert [e["name"] for e in kept] == ["chart.png", "lecture.mp4", "photo.jpg"]


def test_the_pipeline_states_the_missing_files_in_the_report(tmp_path: Path) -> None:
    from deepfolder.agent.task_material import parse_entries

    folder = make_folder(tmp_path)

    def small(messages: list[dict[str, Any]], tools: Any) -> str:
        if "JSON" in messages[-1]["content"]:
            return json.dumps({"queries": ["图书馆"]}, ensure_ascii=False)
        return "青禾区共有社区图书馆14家。"

    out = tmp_path / "run"
    run_task(
        folder,
        REQUEST,
        settings(tmp_path),
        out=out,
        model=FunctionModel(small, is_local=True),
        material=parse_entries(ENTRIES, "test"),
    )
    report = (out / "report.md").read_text(encoding="utf-8")
    assert "> 说明：任务提到的lecture.mp4 (video)不在所给文件夹中" in report
    assert "> 说明：任务提到的photo.jpg (image)不在所给文件夹中" in report


def test_run_takes_the_entries_from_a_file_and_refuses_a_bad_one(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = make_folder(tmp_path)
    bad = tmp_path / "bad.json"
    bad.write_text('[{"type": "video"}]', encoding="utf-8")
    code = main(["run", str(folder), REQUEST, "--material-notes", str(bad), "--model", "embedded"])
    assert code == 2
    assert 'entry 1 needs a non-empty "name"' in " ".join(capsys.readouterr().err.split())
    code = main(["run", "--resume", str(tmp_path), "--material-notes", str(bad)])
    assert code == 2


def test_a_request_from_query_jsonl_brings_its_multimodal_entries(tmp_path: Path) -> None:
    folder = make_folder(tmp_path)
    line = {"task": "case", "query": REQUEST, "multimodal": ENTRIES[1:2]}
    (tmp_path / "query.jsonl").write_text(json.dumps(line, ensure_ascii=False), encoding="utf-8")
    agent = CitingAgent()
    out = tmp_path / "run"
    run_task(folder, None, settings(tmp_path), out=out, model=FunctionModel(agent))
    assert "- lecture.mp4 (不在文件夹中)" in agent.task
    kept = json.loads((out / "material_notes.json").read_text(encoding="utf-8"))
    assert [e["name"] for e in kept] == ["lecture.mp4"]
    settings_json = json.loads((out / "settings.json").read_text(encoding="utf-8"))
    assert settings_json["request_from"].endswith("query.jsonl (task case)")

    bad = {"task": "case", "query": REQUEST, "multimodal": [{"type": "video"}]}
    (tmp_path / "query.jsonl").write_text(json.dumps(bad), encoding="utf-8")
    from deepfolder.runner.request import RunSetupError

    with pytest.raises(RunSetupError, match="its multimodal entries"):
        run_task(folder, None, settings(tmp_path), out=tmp_path / "r2", model=FunctionModel(agent))
