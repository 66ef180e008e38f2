from __future__ import annotations

import json
import os
import zipfile
from pathlib import Path

import pytest
from make_files import make_docx, make_pdf, make_pptx, make_xlsx, tree_digest

from conftest import DATA
from deepfolder.ingest import format_ingest_table, ingest_folder
from deepfolder.ingest.scan import scan_folder
from deepfolder.settings import Settings
from memory_index import MemoryIndexFactory


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    root = tmp_path / "case"
    root.mkdir()
    make_pdf(root / "paper.pdf", ["Page one mentions safe harbour.", "Page two: liability."])
    make_docx(root / "review.docx")
    make_pptx(root / "lecture.pptx")
    make_xlsx(root / "sales.xlsx")
    (root / "Student Stress Factors").write_text("a,b\n1,2\n3,4\n5,6\n", encoding="utf-8")
    (root / "notes.txt").write_bytes("避风港原则的笔记。".encode("gb18030"))
    (root / "long_context.json").write_bytes(b"")
    articles = [{"title": f"文章{i}", "content": f"第{i}篇文章的正文。"} for i in range(5)]
    (root / "long_context_sampled_32k.json").write_text(
        json.dumps(articles, ensure_ascii=False), encoding="utf-8"
    )
    (root / "broken.pdf").write_bytes(b"%PDF-1.4 not really")
    with zipfile.ZipFile(root / "bundle.zip", "w") as zf:
        zf.writestr("inner/readme.md", "# Inner\nZipped readme text.")
        zf.writestr("../escape.txt", "should never land anywhere")
    (root / ".hidden.txt").write_text("hidden", encoding="utf-8")
    (root / "query.txt").write_text("the task itself", encoding="utf-8")
    return root


def run(folder: Path, settings: Settings, factory: MemoryIndexFactory, **kw: object):
    return ingest_folder(folder, settings, index_factory=factory, **kw)  # type: ignore[arg-type]


def test_every_file_indexed_or_reported(
    folder: Path, ingest_settings: Settings, memory_index: MemoryIndexFactory
) -> None:
    before = tree_digest(folder)
    phases: list[str] = []
    corpus = run(folder, ingest_settings, memory_index, progress=lambda p, d, t: phases.append(p))
    assert tree_digest(folder) == before  # the input folder is never written
    status = {f.path: (f.status, f.reason) for f in corpus.report.files}
    assert set(status) == {
        "paper.pdf",
        "review.docx",
        "lecture.pptx",
        "sales.xlsx",
        "Student Stress Factors",
        "notes.txt",
        "long_context.json",
        "long_context_sampled_32k.json",
        "broken.pdf",
        "bundle.zip",
    }
    assert status["long_context.json"] == ("failed", "file is empty (0 bytes)")
    assert status["broken.pdf"][0] == "failed" and "not a readable PDF" in status["broken.pdf"][1]
    assert "unsafe member path" in status["bundle.zip"][1]
    ok = {p for p, (s, _) in status.items() if s == "indexed"}
    assert len(ok) == 8
    index = corpus.index
    assert {s.locator.page for s in index.segments_of("paper.pdf")} == {1, 2}
    assert [s.locator.slide for s in index.segments_of("lecture.pptx")] == [1, 2, 3]
    assert index.source("long_context_sampled_32k.json#4").title == "文章4"
    assert index.segments_of("bundle.zip!/inner/readme.md")[0].locator.section == "Inner"
    assert corpus.data_files == ["Student Stress Factors", "sales.xlsx"]
    assert {"scan", "extract", "index"} <= set(phases)
    written = json.loads((corpus.index_dir / "ingest_report.json").read_text(encoding="utf-8"))
    assert len(written["files"]) == 10 and "models" in written
    assert corpus.index_dir.is_relative_to(ingest_settings.cache_path())
    summary = corpus.summary()
    assert "paper.pdf (pdf, 2 pages)" in summary and "lecture.pptx (pptx, 3 slides)" in summary
    assert "5 articles" in summary and "文章0" in summary
    assert "long_context.json: not readable (file is empty (0 bytes))" in summary
    assert len(corpus.summary(max_chars=300)) <= 300
    assert "not readable" in corpus.summary(max_chars=300)
    table = format_ingest_table(corpus.report)
    assert table.row_count >= 8


def test_incremental_reruns(
    folder: Path, ingest_settings: Settings, memory_index: MemoryIndexFactory
) -> None:
    first = run(folder, ingest_settings, memory_index)
    index = first.index
    index.added.clear()  # type: ignore[attr-defined]
    second = run(folder, ingest_settings, memory_index)
    statuses = {f.path: f.status for f in second.report.files}
    assert index.added == []  # type: ignore[attr-defined]
    assert statuses["paper.pdf"] == "cached" and statuses["broken.pdf"] == "failed"
    assert second.index.count() == first.index.count()

    (folder / "notes.txt").write_text("完全不同的新笔记内容。", encoding="utf-8")
    (folder / "lecture.pptx").unlink()
    third = run(folder, ingest_settings, memory_index)
    statuses = {f.path: f.status for f in third.report.files}
    assert index.added == ["notes.txt"]  # type: ignore[attr-defined]
    assert statuses["notes.txt"] == "indexed" and statuses["paper.pdf"] == "cached"
    assert "lecture.pptx" not in statuses
    assert index.source("lecture.pptx") is None and index.segments_of("lecture.pptx") == []
    assert "完全不同" in index.segments_of("notes.txt")[0].text
    assert "lecture.pptx" not in third.summary()


def test_lost_index_is_refilled_from_extraction_cache(
    folder: Path, ingest_settings: Settings, memory_index: MemoryIndexFactory
) -> None:
    first = run(folder, ingest_settings, memory_index)
    count = first.index.count()
    fresh = MemoryIndexFactory()  # the index is gone, the extraction cache is not
    second = run(folder, ingest_settings, fresh)
    assert second.index.count() == count
    assert {f.status for f in second.report.files} == {"cached", "failed"}


def test_oversized_and_unsupported_files(tmp_path: Path, memory_index: MemoryIndexFactory) -> None:
    root = tmp_path / "f"
    root.mkdir()
    (root / "big.txt").write_text("x" * 300_000, encoding="utf-8")
    (root / "old.doc").write_bytes(b"\xd0\xcf\x11\xe0 legacy")
    (root / "blob").write_bytes(bytes(range(256)) * 4)
    settings = Settings.model_validate(
        {"cache_dir": str(tmp_path / "c"), "ingest": {"max_file_mb": 0.1, "workers": 1}}
    )
    report = run(root, settings, memory_index).report
    reasons = {f.path: f.reason for f in report.files}
    assert "larger than ingest.max_file_mb" in reasons["big.txt"]
    assert "save it as .docx" in reasons["old.doc"]
    assert "binary file of unknown type" in reasons["blob"]
    assert all(f.status == "failed" for f in report.files)


def test_scan_skips_run_outputs(tmp_path: Path) -> None:
    root = tmp_path / "f"
    (root / "runs" / "task1").mkdir(parents=True)
    (root / "runs" / "task1" / "trace.jsonl").write_text("{}", encoding="utf-8")
    (root / "runs" / "task1" / "report.md").write_text("# report", encoding="utf-8")
    (root / ".git").mkdir()
    (root / ".git" / "config").write_text("x", encoding="utf-8")
    (root / "a.md").write_text("# A", encoding="utf-8")
    assert [f.rel_path for f in scan_folder(root)] == ["a.md"]


def test_worker_processes(folder: Path, tmp_path: Path, memory_index: MemoryIndexFactory) -> None:
    settings = Settings.model_validate(
        {"cache_dir": str(tmp_path / "c2"), "ingest": {"workers": 2}}
    )
    (folder / "paper2.pdf").write_bytes((folder / "paper.pdf").read_bytes())
    corpus = run(folder, settings, memory_index)
    statuses = {f.path: f.status for f in corpus.report.files}
    assert statuses["paper.pdf"] == statuses["paper2.pdf"] == "indexed"
    assert corpus.index.segments_of("paper2.pdf")


def test_threads_per_worker_share_the_cores(monkeypatch: pytest.MonkeyPatch) -> None:
    from deepfolder.ingest.worker import available_cores, threads_per_worker

    assert threads_per_worker(2, budget=2) == 1  # 2 workers on 2 cores: 1 thread each
    assert threads_per_worker(3, budget=8) == 2
    assert threads_per_worker(4, budget=2) == 1  # never 0
    assert threads_per_worker(1, budget=4) == 4
    monkeypatch.setenv("DEEPFOLDER_THREADS", "6")  # the user's total budget
    assert threads_per_worker(2) == 3
    monkeypatch.delenv("DEEPFOLDER_THREADS")
    assert threads_per_worker(2) == max(1, available_cores() // 2)


def test_worker_processes_get_their_thread_share(monkeypatch: pytest.MonkeyPatch) -> None:
    """The initializer sets $DEEPFOLDER_THREADS (read by OCR and ASR) in every worker."""
    from deepfolder.ingest.pipeline import worker_pool

    monkeypatch.setenv("DEEPFOLDER_THREADS", "6")
    with worker_pool(2) as pool:
        seen = {pool.submit(os.getenv, "DEEPFOLDER_THREADS").result() for _ in range(4)}
        omp = pool.submit(os.getenv, "OMP_NUM_THREADS").result()
    assert seen == {"3"} and omp == "3"
    assert os.environ["DEEPFOLDER_THREADS"] == "6"  # the parent process is untouched


def test_ocr_and_asr_read_the_thread_share(monkeypatch: pytest.MonkeyPatch) -> None:
    from deepfolder.ingest.asr import _default_threads
    from deepfolder.ingest.ocr import _ocr_threads

    monkeypatch.setenv("DEEPFOLDER_THREADS", "1")
    assert _ocr_threads() == _default_threads() == 1


def test_extractors_get_the_configured_cache_dir(
    tmp_path: Path, memory_index: MemoryIndexFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    """settings.cache_dir reaches ExtractContext.cache_dir (where whisper is joined)."""
    import deepfolder.ingest.audio as audio
    from deepfolder.ingest.asr import SpeechSegment

    seen: list[object] = []

    def fake_transcribe(
        path: Path, *, language: str | None = None, cache_dir: object = None
    ) -> tuple[list[SpeechSegment], str]:
        seen.append(cache_dir)
        return [SpeechSegment(0.0, 1.0, "spoken words")], "en"

    monkeypatch.setattr(audio, "transcribe", fake_transcribe)
    monkeypatch.setenv("DEEPFOLDER_CACHE", str(tmp_path / "elsewhere"))
    root = tmp_path / "f"
    root.mkdir()
    (root / "talk.wav").write_bytes(b"RIFF\x24\x00\x00\x00WAVEfmt ")
    settings = Settings.model_validate(
        {"cache_dir": str(tmp_path / "mine"), "ingest": {"workers": 1}}
    )
    report = run(root, settings, memory_index).report
    assert [f.status for f in report.files] == ["indexed"], report.to_dict()
    assert seen == [tmp_path / "mine"]


CASE_002 = DATA / "cases" / "002"


@pytest.mark.data
@pytest.mark.skipif(not CASE_002.exists(), reason="../shared/data is absent")
def test_real_case_002(tmp_path: Path, memory_index: MemoryIndexFactory) -> None:
    settings = Settings.model_validate(
        {"cache_dir": str(tmp_path / "c"), "ingest": {"workers": 1, "ocr": False}}
    )
    corpus = run(CASE_002, settings, memory_index)
    report = {f.path: f for f in corpus.report.files}
    assert len(report) == len([p for p in CASE_002.iterdir() if p.is_file()])
    assert all(f.status == "indexed" for f in report.values()), corpus.report.to_dict()
    index = corpus.index
    slides = {s.locator.slide for s in index.segments_of("006law.pptx")}
    assert slides and all(s is not None for s in slides)
    for name, pages in (("直播电商高质量发展.pdf", 25), ("互联网视阈下网络平台的网络监管.pdf", 7)):
        assert {s.locator.page for s in index.segments_of(name)} <= set(range(1, pages + 1))
        assert len({s.locator.page for s in index.segments_of(name)}) >= pages - 2
    articles = [s for s in index.sources() if s.kind == "article"]
    assert len({s.path for s in articles}) == 4
    # Page 2 of the report is an image without a text layer: reported, not lost silently.
    assert "page 2 has no text layer" in report["直播电商高质量发展.pdf"].reason
    summary = corpus.summary()
    assert "006law.pptx (pptx, 23 slides)" in summary and "articles" in summary


def test_with_the_real_embedded_index(folder: Path, ingest_settings: Settings) -> None:
    """The default index (deepfolder.index.open_index), lexical only to stay fast."""
    from deepfolder.index.base import SearchOptions

    corpus = ingest_folder(folder, ingest_settings)
    try:
        assert corpus.index.count() > 10
        hits = corpus.index.search("liability", SearchOptions(k=3, mode="lexical"))
        assert any(h.source.id == "paper.pdf" and h.segment.locator.page == 2 for h in hits)
    finally:
        corpus.close()
    again = ingest_folder(folder, ingest_settings)
    try:
        assert {f.status for f in again.report.files} == {"cached", "failed"}
    finally:
        again.close()
