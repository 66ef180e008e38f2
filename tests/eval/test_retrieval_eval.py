"""The retrieval evaluation on a tiny self-made SQuAD file and a CMRC-style list."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from deepfolder.eval.retrieval import (
    eval_retrieval_command,
    iter_distractors,
    load_qa,
    run_retrieval_eval,
)
from deepfolder.records import Evidence
from deepfolder.settings import Settings

PASSAGES = {
    "熊猫": "大熊猫主要以竹子为食。它们生活在四川的高山竹林中。成年大熊猫每天要吃十几公斤竹子。",
    "长城": "长城是中国古代的军事防御工程。明长城东起鸭绿江，西至嘉峪关，全长八千八百多公里。",
    "Python": "Python is a programming language created by Guido van Rossum. It was first "
    "released in 1991 and emphasises readable code.",
}
QUESTIONS = [
    ("q1", "大熊猫主要吃什么？", "熊猫", "竹子"),
    ("q2", "明长城西至哪里？", "长城", "嘉峪关"),
    ("q3", "Who created Python?", "Python", "Guido van Rossum"),
    ("q4", "Python 第一次发布是哪一年？", "Python", "1991"),
]


def _squad(path: Path) -> Path:
    data = {
        "data": [
            {
                "title": title,
                "paragraphs": [
                    {
                        "context": text,
                        "qas": [
                            {"id": qid, "question": q, "answers": [{"text": a}]}
                            for qid, q, t, a in QUESTIONS
                            if t == title
                        ],
                    }
                ],
            }
            for title, text in PASSAGES.items()
        ]
    }
    path.write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")
    return path


def _distractors(tmp_path: Path) -> list[Path]:
    coll = tmp_path / "pages.json"
    pages = [
        {"title": "竹子", "page_body": "竹子是一种生长很快的植物，可以用来做家具。"},
        {"title": "Great Wall", "content": "The Great Wall attracts millions of tourists."},
    ]
    coll.write_text(json.dumps(pages, ensure_ascii=False), encoding="utf-8")
    news = tmp_path / "news.txt"
    news.write_text(
        "体育\t湖人队昨晚赢得了比赛。\n财经\t股市今天上涨了百分之二。\n", encoding="utf-8"
    )
    return [coll, news]


def test_load_qa_both_layouts(tmp_path: Path) -> None:
    docs, questions = load_qa(_squad(tmp_path / "s.json"))
    assert len(docs) == 3 and len(questions) == 4
    cmrc = [
        {
            "context_id": "C1",
            "context_text": "甲乙丙",
            "title": "t",
            "qas": [{"query_text": "乙?", "query_id": "C1_Q0", "answers": ["乙"]}],
        }
    ]
    (tmp_path / "c.json").write_text(json.dumps(cmrc, ensure_ascii=False), encoding="utf-8")
    docs, questions = load_qa(tmp_path / "c.json")
    assert docs[0].id == "passage/C1" and questions[0].answers == ("乙",)
    (tmp_path / "bad.json").write_text("{}", encoding="utf-8")
    with pytest.raises(ValueError, match=r"bad\.json"):
        load_qa(tmp_path / "bad.json")


def test_distractor_formats(tmp_path: Path) -> None:
    coll, news = _distractors(tmp_path)
    assert [d.title for d in iter_distractors(coll)] == ["竹子", "Great Wall"]
    assert [d.text for d in iter_distractors(news)][1] == "股市今天上涨了百分之二。"
    pd = tmp_path / "pd.txt"
    pd.write_text("迈向/v  充满/v  希望/n  的/u  新/a  世纪/n\n", encoding="utf-8")
    assert next(iter_distractors(pd)).text == "迈向充满希望的新世纪"


def test_lexical_eval_scores(tmp_path: Path) -> None:
    settings = Settings.model_validate({"retrieval": {"dense": False}})
    rows = run_retrieval_eval(
        _squad(tmp_path / "s.json"),
        _distractors(tmp_path),
        modes=("lexical", "dense", "hybrid+rerank"),
        ks=(1, 5),
        settings=settings,
    )
    lexical = rows[0]
    assert lexical["mode"] == "lexical" and lexical["questions"] == 4
    assert lexical["recall@5"] == 1.0 and lexical["recall@1"] >= 0.75
    assert 0 < lexical["mrr"] <= 1 and lexical["answerable"] == 1.0
    assert rows[1]["available"] is False and rows[2]["available"] is False


def test_reranker_hook_is_applied(tmp_path: Path) -> None:
    """A reranker that reverses the list must change (worsen) the ranks it sees."""
    settings = Settings.model_validate({"retrieval": {"dense": False}})

    def reverse(query: str, results: list[Evidence]) -> list[Evidence]:
        return list(reversed(results))

    rows = run_retrieval_eval(
        _squad(tmp_path / "s.json"),
        _distractors(tmp_path),
        modes=("hybrid+rerank",),
        ks=(1, 20),
        settings=settings.model_copy(
            update={"retrieval": settings.retrieval.model_copy(update={"dense": True})}
        ),
        reranker=reverse,
        index_dir=tmp_path / "idx",
    )
    assert rows[0]["available"] is True
    assert rows[0]["recall@20"] == 1.0 and rows[0]["recall@1"] < 1.0


def test_command_prints_table(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = _squad(tmp_path / "s.json")
    out_json = tmp_path / "rows.json"
    argv = [str(data), "--modes", "lexical", "lexical+rerank", "--ks", "1", "5"]
    code = eval_retrieval_command(
        [*argv, "--json", str(out_json)],
        settings=Settings.model_validate({"retrieval": {"dense": False}}),
    )
    assert code == 0
    printed = capsys.readouterr().out
    assert "lexical" in printed and "R@5" in printed
    rows = json.loads(out_json.read_text())
    assert rows[0]["recall@5"] == 1.0
    assert rows[1]["mode"] == "lexical+rerank" and rows[1]["available"] is True
    assert rows[1]["recall@5"] == 1.0
    code = eval_retrieval_command(
        [str(data), "--modes", "lexical+rerank", "--reranker", "none", "--json", str(out_json)],
        settings=Settings.model_validate({"retrieval": {"dense": False}}),
    )
    assert code == 0 and json.loads(out_json.read_text())[0]["available"] is False
    assert "retrieval.rerank is 'none'" in capsys.readouterr().out
    assert eval_retrieval_command([str(data), "--modes", "lexical+boost"]) == 2
    assert "unknown retrieval mode 'lexical+boost'" in capsys.readouterr().out
    assert eval_retrieval_command([str(tmp_path / "missing.json")]) == 2


def test_bad_question_sets_are_repaired_or_refused_before_indexing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """CMRC 2018 dev has numeric answers (39764.0, 4.9): they used to crash the scoring
    after minutes of embedding. They are read as text, broken items are counted."""
    monkeypatch.setenv("COLUMNS", "1000")  # rich would wrap the long temporary paths
    data = {
        "data": [
            {
                "title": "数字",
                "paragraphs": [
                    {
                        "id": "P1",
                        "context": "该市人口为39764人，平均气温4.9度。",
                        "qas": [
                            {"id": "q1", "question": "人口多少？", "answers": [{"text": 39764.0}]},
                            {"id": "q2", "question": "气温多少？", "answers": [{"text": 4.9}]},
                            {"id": "q3", "question": None, "answers": [{"text": "39764"}]},
                            {"id": "q4", "question": "无答案？", "answers": [{"text": None}]},
                        ],
                    },
                    {"id": "P2", "context": None, "qas": []},
                ],
            }
        ]
    }
    path = tmp_path / "cmrc_dev_like.json"
    path.write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")
    notes: list[str] = []
    docs, questions = load_qa(path, notes)
    assert [d.id for d in docs] == ["passage/P1"]
    assert [q.answers for q in questions] == [("39764", "39764.0"), ("4.9",)]
    assert "cmrc_dev_like.json: 2 numeric answers read as text" in notes
    assert "cmrc_dev_like.json: 1 questions skipped (no question text)" in notes
    assert "cmrc_dev_like.json: 1 questions skipped (no answer)" in notes
    assert "cmrc_dev_like.json: 1 passages skipped (no text)" in notes

    settings = Settings.model_validate({"retrieval": {"dense": False}})
    rows = run_retrieval_eval(path, modes=("lexical",), ks=(1, 5), settings=settings)
    assert rows[0]["questions"] == 2 and rows[0]["recall@5"] == 1.0

    def no_index(*args: object, **kwargs: object) -> None:
        raise AssertionError("an unusable question set must be refused before indexing")

    monkeypatch.setattr("deepfolder.eval.retrieval.build_eval_index", no_index)
    (tmp_path / "none.json").write_text(json.dumps([{"context_text": "x", "qas": []}]), "utf-8")
    assert eval_retrieval_command([str(tmp_path / "none.json")], settings=settings) == 2
    assert "holds no usable question" in capsys.readouterr().out


def test_distractor_folder_with_an_empty_collection(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A real benchmark task ships a 0-byte long_context.json; ingest reports it, and the
    evaluation now reads it with the same reader instead of dying with a traceback."""
    monkeypatch.setenv("COLUMNS", "1000")  # rich would wrap the long temporary paths
    folder = tmp_path / "distractors"
    folder.mkdir()
    (folder / "long_context.json").write_bytes(b"")
    (folder / "long_context_deep.json").write_bytes(b"[" * 100_000 + b"]" * 100_000)
    pages = [{"title": "竹子", "page_body": "竹子是一种生长很快的植物。"}]
    (folder / "long_context_ok.json").write_text(json.dumps(pages, ensure_ascii=False), "utf-8")
    notes: list[str] = []
    assert [d.title for d in iter_distractors(folder, notes=notes)] == ["竹子"]
    assert len(notes) == 2 and "empty (0 bytes)" in notes[0] and "nested" in notes[1]
    data = _squad(tmp_path / "s.json")
    code = eval_retrieval_command(
        [str(data), "--distractors", str(folder), "--modes", "lexical"],
        settings=Settings.model_validate({"retrieval": {"dense": False}}),
    )
    assert code == 0
    assert "long_context.json: skipped" in capsys.readouterr().out
