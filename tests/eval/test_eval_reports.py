"""``deepfolder eval reports`` without a model: every measure on hand-made run directories
(see ``tests/eval_fixtures.py`` for the reports and what each is built to show)."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest
from rich.console import Console

from deepfolder.cli import main
from deepfolder.eval.reports import (
    METRICS,
    EvalInputError,
    evaluate_run,
    find_runs,
    language_purity,
    length_error,
    repeated_ngram_rate,
)
from deepfolder.eval.reports_command import run_reports
from eval_fixtures import BACKGROUND, ENGLISH, GOOD, REPEATING, make_batch, make_run

COST = {
    "input_tokens": 1000.0,
    "output_tokens": 200.0,
    "cost": 0.01,
    "model_calls": 5.0,  # 3 + 2 calls of the two models in usage.json
    "wall_seconds": 12.5,
}


def measure(tmp_path: Path, report: str) -> dict[str, float | None]:
    run, _ = evaluate_run("task", make_run(tmp_path / "run", report))
    assert set(run.metrics) == {m.key for m in METRICS}
    return run.metrics


def test_good_report_every_measure(tmp_path: Path) -> None:
    run, _ = evaluate_run("task", make_run(tmp_path / "run", GOOD))
    m = run.metrics
    # 10 (title) + 3 × 3 (（1）背景: the number and two characters) + 33 + 29 + 24 + 26 字
    assert run.details["length"] == 131
    assert m["length_error"] == 0.0  # inside 100–200
    assert m["checks_passed"] == 1.0
    assert m["sections_found"] == 1.0
    assert m["citations"] == 3.0
    assert m["citation_density"] == round(100 * 3 / 131, 3)
    assert m["citations_resolving"] == 1.0
    assert (m["supported"], m["weak"], m["unsupported"]) == (1.0, 0.0, 0.0)
    assert m["uncited_factual"] == 1.0  # "该方法在2023年…" states a year, cites nothing
    assert run.details["uncited_factual_sentences"] == [
        "该方法在2023年的评测中表现稳定，值得在更多场景中推广应用。"
    ]
    assert m["user_files_cited"] == 0.5  # paper.pdf of paper.pdf and data.csv
    assert run.details["user_files_not_cited"] == ["data.csv"]
    assert m["sources_cited"] == 2.0  # paper.pdf and the article
    assert m["articles_cited"] == 1.0
    assert m["user_citations"] == pytest.approx(2 / 3)
    assert m["sections_citing_user"] == pytest.approx(2 / 3)  # （3）结论 cites nothing
    assert m["repeated_sentences"] == 0.0
    assert m["repeated_ngrams"] == 0.0
    assert m["language_purity"] == 1.0
    assert {k: m[k] for k in COST} == COST


def test_report_that_repeats_itself(tmp_path: Path) -> None:
    m = measure(tmp_path, REPEATING)
    # four sentences of ≥ 15 字, the second and third say the first again
    assert m["repeated_sentences"] == 0.5
    # distinct 8-grams: S1 (33 tokens) has 26, in sections 1 and 2 alike; section 3 is
    # S1 + S2 (33 + 29 tokens): 55. Shared with another section: 26 + 26 + 26.
    assert m["repeated_ngrams"] == pytest.approx(78 / 107)
    assert m["checks_passed"] == pytest.approx(11 / 12)  # the repetition check fails


def test_report_in_the_wrong_language(tmp_path: Path) -> None:
    run, _ = evaluate_run("task", make_run(tmp_path / "run", ENGLISH))
    m = run.metrics
    # CJK characters 背景 方法 结论 (6) against 32 English words (the title and 31)
    assert m["language_purity"] == pytest.approx(6 / 38)
    # 6 字 + 3 heading numbers + 32 words = 41; 59 short of 100
    assert run.details["length"] == 41
    assert m["length_error"] == 59.0
    assert run.details["failed_checks"] == ["length", "language", "citations"]
    assert m["checks_passed"] == 0.75
    assert m["citations"] == 0.0
    assert m["citation_density"] == 0.0
    assert m["citations_resolving"] is None  # nothing cited, nothing to resolve
    assert m["supported"] is None
    assert m["repeated_sentences"] is None  # no sentence long enough to compare


def test_report_citing_nothing_of_the_users_files(tmp_path: Path) -> None:
    m = measure(tmp_path, BACKGROUND)
    assert m["user_files_cited"] == 0.0
    assert m["user_citations"] == 0.0
    assert m["sections_citing_user"] == 0.0
    assert m["sources_cited"] == 1.0
    assert m["articles_cited"] == 1.0
    assert m["citations"] == 3.0
    assert m["citations_resolving"] == pytest.approx(2 / 3)  # [E00000000] resolves to nothing
    # the article supports the sentence it says, not the one about deployment costs
    assert (m["supported"], m["unsupported"]) == (0.5, 0.5)


def test_length_error_and_language_purity() -> None:
    assert length_error(150, 100, 200) == 0.0
    assert length_error(90, 100, 200) == 10.0
    assert length_error(250, 100, 200) == 25.0
    assert length_error(50, 100, None) == 50.0
    assert length_error(1000, 100, None) == 0.0
    assert language_purity("这是中文 text", "zh") == pytest.approx(4 / 5)
    assert language_purity("这是中文 text", "en") == pytest.approx(1 / 5)
    assert language_purity("123 。", "zh") is None


def test_repeated_ngrams_ignore_headings_and_need_two_sections() -> None:
    text = "一二三四五六七八九十"  # 10 tokens: 3 distinct 8-grams
    assert (
        repeated_ngram_rate(
            ["## 甲乙丙丁戊己庚辛\n" + text, "## 甲乙丙丁戊己庚辛\n子丑寅卯辰巳午未申"]
        )
        == 0
    )
    assert repeated_ngram_rate([text, text]) == 1.0
    assert repeated_ngram_rate([text]) is None


def test_batch_directory_and_a_failed_task(tmp_path: Path) -> None:
    batch = make_batch(tmp_path / "b", {"t1": GOOD}, {"t2": "model error: endpoint down"})
    found = find_runs(batch)
    assert [(task, missing) for task, _, missing in found] == [
        ("t1", None),
        ("t2", "task failed: model error: endpoint down"),
    ]
    single = make_run(tmp_path / "somewhere-123", GOOD, folder="cases/002")
    assert [task for task, _, _ in find_runs(single)] == ["002"]  # the folder's name
    assert [task for task, _, _ in find_runs(tmp_path / "b" / "runs")] == ["t1"]
    (tmp_path / "empty").mkdir()
    with pytest.raises(EvalInputError, match=r"holds no report\.md"):
        find_runs(tmp_path / "empty")


def test_cli_on_a_batch_writes_the_table_and_files(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    batch = make_batch(tmp_path / "b", {"t1": GOOD, "t2": BACKGROUND}, {"t3": "timed out"})
    out = tmp_path / "out"
    assert main(["eval", "reports", str(batch), "--out", str(out)]) == 0
    data = json.loads((out / "eval.json").read_text(encoding="utf-8"))
    (only,) = data["sets"]
    assert [r["task"] for r in only["runs"]] == ["t1", "t2", "t3"]
    assert only["runs"][2]["error"] == "task failed: timed out"
    assert only["means"]["user_files_cited"] == 0.25  # (0.5 + 0) / 2; t3 has no report
    assert data["comparison"] is None and data["judge"] is None
    md = (out / "eval.md").read_text(encoding="utf-8")
    assert "| user files cited | 50 % | 0 % | no report | 25 % |" in md
    page = (out / "eval.html").read_text(encoding="utf-8")
    assert page.startswith("<!DOCTYPE html>") and "<table>" in page
    err = capsys.readouterr().err
    assert "user files cited" in err and "t3" in err


def test_console_shows_only_the_means_for_many_tasks(tmp_path: Path) -> None:
    batch = make_batch(tmp_path / "b", {f"t{n}": GOOD for n in range(9)}, {})
    out = io.StringIO()
    run_reports([batch], None, tmp_path / "out", console=Console(file=out, width=200))
    text = out.getvalue()
    assert "runs with a value" in text and "t8" not in text
    assert "| t7 | t8 | mean |" in (tmp_path / "out" / "eval.md").read_text()  # every task


def test_cli_refuses_a_path_without_runs(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["eval", "reports", str(tmp_path), "--out", str(tmp_path / "o")]) == 2
    assert "holds no report.md" in " ".join(capsys.readouterr().err.split())


def test_html_embeds_the_charts(tmp_path: Path) -> None:
    pytest.importorskip("matplotlib")
    a = make_batch(tmp_path / "a", {"任务一": GOOD}, {})
    b = make_batch(tmp_path / "b", {"任务一": REPEATING}, {})
    out = tmp_path / "out"
    assert main(["eval", "reports", str(a), "--compare", str(b), "--out", str(out)]) == 0
    page = (out / "eval.html").read_text(encoding="utf-8")
    # mean per measure, one heat map per set, the differences
    assert page.count('src="data:image/png;base64,') == 4
    assert "Differences with paired bootstrap intervals" in page
