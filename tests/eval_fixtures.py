"""Small hand-made run and batch directories for the ``eval reports`` tests.

The folder holds the user's ``paper.pdf`` and ``data.csv`` and a background collection
``long_context.json``; the runs cite passages of the paper and one article. Each report
answers the same request (three sections, 100–200 字) and is built to show one failure:
``GOOD`` (a last section citing nothing), ``REPEATING`` (says its first sentence three
times), ``ENGLISH`` (written in the wrong language), ``BACKGROUND`` (cites nothing of the
user's files, one unknown id and one claim its article does not support).
"""

from __future__ import annotations

import json
from pathlib import Path

from deepfolder.records import Evidence, Locator, Segment, Source
from deepfolder.validate.command import write_evidence

REQUEST = (
    "请基于我提供的论文和数据撰写一份分析报告，包含以下章节：（1）背景；（2）方法；（3）结论。"
    "全文字数在100-200字之间。"
)

PAPER = Source("paper.pdf", "paper.pdf", "pdf", title="检索增强")
ARTICLE = Source("long_context.json#1", "long_context.json", "article", title="行业新闻", article=1)
S1 = "本研究提出一种新的检索增强方法，显著提升了问答系统在长文档上的准确率。"
S2 = "实验使用三个公开数据集，准确率从百分之七十提高到百分之八十五。"
SA = "行业报告指出，检索增强技术正在被越来越多的企业采用。"
EV1 = Evidence(Segment.create(PAPER.id, S1, Locator(page=1)), PAPER)
EV2 = Evidence(Segment.create(PAPER.id, S2, Locator(page=2)), PAPER)
EVA = Evidence(Segment.create(ARTICLE.id, SA, Locator(article=1, chunk=0)), ARTICLE)
EVIDENCE = [EV1, EV2, EVA]


def cite(ev: Evidence) -> str:
    return f"[{ev.citation_label('zh')}](#{ev.id})"


GOOD = f"""# 检索增强方法分析报告

## （1）背景

{S1}{cite(EV1)}

## （2）方法

{S2}{cite(EV2)}{SA}{cite(EVA)}

## （3）结论

该方法在2023年的评测中表现稳定，值得在更多场景中推广应用。
"""

REPEATING = f"""# 检索增强方法分析报告

## （1）背景

{S1}{cite(EV1)}

## （2）方法

{S1}{cite(EV1)}

## （3）结论

{S1}{cite(EV1)}{S2}{cite(EV2)}
"""

ENGLISH = """# Report

## （1）背景

The study proposes a new retrieval method for long documents.

## （2）方法

It uses three public data sets and improves accuracy a lot.

## （3）结论

The method is stable and worth using in more places.
"""

BACKGROUND = f"""# 检索增强方法分析报告

## （1）背景

{SA}{cite(EVA)}

## （2）方法

问答系统的部署成本在过去五年中持续下降，已经可以在普通服务器上运行。{cite(EVA)}[E00000000]

## （3）结论

检索增强技术将成为企业知识管理的重要组成部分，应用前景广阔。
"""

USAGE = {
    "models": {
        "openai:gpt-4o-mini": {"calls": 3, "input_tokens": 800, "output_tokens": 150},
        "openai:gpt-4o": {"calls": 2, "input_tokens": 200, "output_tokens": 50},
    },
    "total": {"input_tokens": 1000, "output_tokens": 200, "cost": 0.01},
    "wall_seconds": 12.5,
}


def make_run(run_dir: Path, report: str, *, folder: str = "cases/task") -> Path:
    """A finished run directory answering :data:`REQUEST` on the folder ``folder``."""
    run_dir.mkdir(parents=True)
    (run_dir / "report.md").write_text(report, encoding="utf-8")
    (run_dir / "request.txt").write_text(REQUEST, encoding="utf-8")
    write_evidence(run_dir / "evidence.jsonl", EVIDENCE, {e.id for e in EVIDENCE})
    files = [
        {"path": "paper.pdf", "kind": "pdf", "status": "indexed"},
        {"path": "data.csv", "kind": "sheet", "status": "indexed"},
        {"path": "long_context.json", "kind": "collection", "status": "indexed"},
    ]
    ingest = {"folder": f"/data/{folder}", "files": files, "index_dir": str(run_dir / "none")}
    (run_dir / "ingest_report.json").write_text(json.dumps(ingest), encoding="utf-8")
    (run_dir / "usage.json").write_text(json.dumps(USAGE), encoding="utf-8")
    run = {"status": "finished", "folder": f"/data/{folder}", "report": "report.md"}
    (run_dir / "run.json").write_text(json.dumps(run), encoding="utf-8")
    return run_dir


def make_batch(batch_dir: Path, reports: dict[str, str], failed: dict[str, str]) -> Path:
    """A batch directory: a run per task of ``reports``, and ``failed`` tasks (task →
    reason) that left no report."""
    tasks = []
    for task, report in reports.items():
        make_run(batch_dir / "runs" / task, report, folder=f"cases/{task}")
        tasks.append({"task": task, "run_dir": f"runs/{task}", "state": "done"})
    for task, reason in failed.items():
        tasks.append({"task": task, "run_dir": f"runs/{task}", "state": "failed", "reason": reason})
    (batch_dir / "batch.json").write_text(json.dumps({"tasks": tasks}), encoding="utf-8")
    return batch_dir
