"""Inputs built to hurt ingest: nested brackets, names that are not UTF-8, symlinks out of
the folder, archives inside archives. Each is reported (failed or skipped, with the
setting to change) and the rest of the folder is indexed; the folder is never written."""

from __future__ import annotations

import io
import json
import os
import tracemalloc
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from make_files import tree_digest

from deepfolder.ingest import format_ingest_table, ingest_folder
from deepfolder.ingest.base import ExtractError
from deepfolder.ingest.collections import iter_articles
from deepfolder.ingest.jsonstream import JsonBudgetError, iter_collection
from deepfolder.settings import Settings
from memory_index import MemoryIndexFactory

pytestmark = pytest.mark.reliability


@pytest.fixture
def folder(tmp_path: Path) -> Iterator[Path]:
    """A folder with one good file; its digest must not change during the test."""
    root = tmp_path / "case"
    root.mkdir()
    (root / "good.txt").write_text("ordinary notes about harbours", encoding="utf-8")
    yield root


def _ingest(folder: Path, settings: Settings, factory: MemoryIndexFactory, **ingest: object):
    if ingest:
        settings = settings.model_copy(update={"ingest": settings.ingest.model_copy(update=ingest)})
    before = tree_digest(folder)
    corpus = ingest_folder(folder, settings, index_factory=factory)  # type: ignore[arg-type]
    assert tree_digest(folder) == before  # inputs are read-only
    return corpus, {f.path: f for f in corpus.report.files}


def test_nested_brackets_are_rejected_in_constant_memory(tmp_path: Path) -> None:
    """A 400 KB collection of brackets took 21 GB through ijson.items (prefix strings
    grow with the square of the depth); the budgeted reader stops at max_depth."""
    path = tmp_path / "long_context_evil.json"
    path.write_bytes(b"[" * 200_000 + b"]" * 200_000)
    tracemalloc.start()
    with pytest.raises(JsonBudgetError, match="nested more than 64 levels"):
        list(iter_articles(path))
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert peak < 5 * 2**20


def test_collection_reader_budgets_and_layouts(tmp_path: Path) -> None:
    path = tmp_path / "long_context.json"
    big = "长" * 5000
    articles = [{"title": "a", "content": "甲"}, {"title": "b", "content": big}, "plain"]
    path.write_text(json.dumps({"meta": {"x": [1, {"y": 2}]}, "documents": articles}), "utf-8")
    items = list(iter_collection(path, max_item_chars=1000))
    assert items[0] == (0, {"title": "a", "content": "甲"})
    assert items[1][0] == 1 and items[1][1] is not articles[1]  # over budget: skipped
    assert [i for i, _ in items] == [0, 1, 2]
    assert [a for _, a in iter_articles(path)][2] == {"content": "plain"}
    empty = tmp_path / "long_context_0.json"
    empty.write_bytes(b"")
    with pytest.raises(ExtractError, match="empty"):
        list(iter_articles(empty))
    for text, match in (("{}", "not an article collection"), ('[{"a": ', "not valid JSON")):
        path.write_text(text, encoding="utf-8")
        with pytest.raises(ExtractError, match=match):
            list(iter_articles(path))


def test_deep_json_files_fail_and_the_rest_is_indexed(
    folder: Path, ingest_settings: Settings, memory_index: MemoryIndexFactory
) -> None:
    (folder / "long_context_evil.json").write_bytes(b"[" * 200_000 + b"]" * 200_000)
    (folder / "deep.json").write_bytes(b"[" * 100_000 + b"]" * 100_000)
    (folder / "deep_but_small.json").write_text("[" * 70 + "1" + "]" * 70, encoding="utf-8")
    big = json.dumps([{"title": "big", "content": "x" * 3000}, {"title": "t", "content": "短"}])
    (folder / "long_context_big.json").write_text(big, encoding="utf-8")
    _, files = _ingest(folder, ingest_settings, memory_index, json_max_item_mb=0.001)
    for name in ("long_context_evil.json", "deep.json", "deep_but_small.json"):
        assert files[name].status == "failed"
        assert "ingest.json_max_depth" in files[name].reason
    assert files["long_context_big.json"].status == "indexed"
    assert (
        "1 article(s) larger than ingest.json_max_item_mb" in files["long_context_big.json"].reason
    )
    assert files["good.txt"].status == "indexed"
    _, files = _ingest(folder, ingest_settings, MemoryIndexFactory(), json_max_depth=100)
    assert files["deep_but_small.json"].status == "indexed"


def test_names_that_are_not_utf8(
    folder: Path, ingest_settings: Settings, memory_index: MemoryIndexFactory
) -> None:
    raw_names = [b"caf\xe9 notes.txt", b"\xd6\xd0\xce\xc4.txt", b"long_context_\xff.json"]
    articles = [{"title": "坏名字", "content": "集合里的文章"}]
    contents = [b"text inside a badly named file"] * 2 + [json.dumps(articles).encode()]
    try:
        for raw, data in zip(raw_names, contents, strict=True):
            with open(os.path.join(os.fsencode(folder), raw), "wb") as fh:
                fh.write(data)
    except OSError:
        pytest.skip("this file system refuses names that are not UTF-8")
    corpus, files = _ingest(folder, ingest_settings, memory_index)
    assert files["caf\ufffd notes.txt"].status == "indexed"
    assert files["中文.txt"].status == "indexed"  # GB18030 bytes are read as such
    assert "not valid UTF-8" in files["中文.txt"].reason
    collection = files["long_context_\ufffd.json"]
    assert collection.status == "indexed", collection.reason
    assert corpus.index.source("long_context_\ufffd.json#0") is not None
    report = json.loads((corpus.index_dir / "ingest_report.json").read_text(encoding="utf-8"))
    assert len(report["files"]) == 4
    _, again = _ingest(folder, ingest_settings, memory_index)  # the manifest was written
    assert again["中文.txt"].status == "cached"


def test_symlinks_out_of_the_folder_are_skipped(
    folder: Path, tmp_path: Path, ingest_settings: Settings, memory_index: MemoryIndexFactory
) -> None:
    secret = tmp_path / "elsewhere" / "secret.txt"
    secret.parent.mkdir()
    secret.write_text("the launch code is swordfish", encoding="utf-8")
    (folder / "secret.txt").symlink_to(secret)
    (folder / "passwd.txt").symlink_to("/etc/passwd")
    (folder / "outside_dir").symlink_to(secret.parent, target_is_directory=True)
    (folder / "alias.txt").symlink_to(folder / "good.txt")  # inside: fine
    corpus, files = _ingest(folder, ingest_settings, memory_index)
    for name in ("secret.txt", "passwd.txt", "outside_dir"):
        assert files[name].status == "skipped", name
        assert "outside the folder" in files[name].reason
    assert "ingest.follow_external_symlinks" in files["secret.txt"].reason
    assert files["alias.txt"].status == "indexed"
    assert corpus.index.search("swordfish", _options()) == []
    assert corpus.index.source("secret.txt") is None
    assert "secret.txt" not in corpus.summary()
    table = format_ingest_table(corpus.report)
    assert any("passwd.txt" in str(cell) for cell in table.columns[0]._cells)

    allowed, files = _ingest(folder, ingest_settings, memory_index, follow_external_symlinks=True)
    assert files["secret.txt"].status == "indexed"
    assert allowed.index.search("swordfish", _options())


def _options():  # type: ignore[no-untyped-def]
    from deepfolder.index.base import SearchOptions

    return SearchOptions(k=5, mode="lexical")


def _zip_bytes(members: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return buffer.getvalue()


def _unpacked_bytes(index_dir: Path) -> int:
    work = index_dir / "work"
    return sum(p.stat().st_size for p in work.rglob("*") if p.is_file()) if work.exists() else 0


def test_nested_archives_share_one_budget(
    folder: Path, ingest_settings: Settings, memory_index: MemoryIndexFactory
) -> None:
    """Each archive alone is under the byte budget; together they are not."""
    inner = _zip_bytes({f"part{i}.txt": b"a" * 400_000 for i in range(2)})
    (folder / "nested.zip").write_bytes(
        _zip_bytes({"one.zip": inner, "two.zip": inner, "readme.md": b"# hi"})
    )
    (folder / "fine.zip").write_bytes(_zip_bytes({"a.md": b"# small member"}))
    corpus, files = _ingest(folder, ingest_settings, memory_index, archive_max_mb=1.0)
    assert files["nested.zip"].status == "failed"
    assert "ingest.archive_max_mb" in files["nested.zip"].reason
    assert files["fine.zip"].status == "indexed"
    assert _unpacked_bytes(corpus.index_dir) < 1.3 * 2**20  # stopped at the budget

    _, files = _ingest(folder, ingest_settings, MemoryIndexFactory(), archive_max_entries=3)
    assert "ingest.archive_max_entries" in files["nested.zip"].reason
    _, files = _ingest(folder, ingest_settings, MemoryIndexFactory())
    assert files["nested.zip"].status == "indexed"


def test_archives_nested_too_deep_fail(
    folder: Path, ingest_settings: Settings, memory_index: MemoryIndexFactory
) -> None:
    level3 = _zip_bytes({"deep.md": b"# three levels down"})
    level2 = _zip_bytes({"l3.zip": level3})
    (folder / "russian_doll.zip").write_bytes(_zip_bytes({"l2.zip": level2}))
    _, files = _ingest(folder, ingest_settings, memory_index)
    assert files["russian_doll.zip"].status == "failed"
    assert "ingest.archive_max_depth" in files["russian_doll.zip"].reason
    corpus, files = _ingest(folder, ingest_settings, MemoryIndexFactory(), archive_max_depth=3)
    assert files["russian_doll.zip"].status == "indexed"
    assert corpus.index.source("russian_doll.zip!/l2.zip!/l3.zip!/deep.md") is not None
