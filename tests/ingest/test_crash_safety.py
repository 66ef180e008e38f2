"""A real ``ingest`` killed with SIGKILL at random points, and two ingests of one folder at
once. Every file marked as ingested must be findable right after the kill, and every
file must be findable after the next complete run; the input folder never changes."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from make_files import tree_digest

import deepfolder
from deepfolder.index.base import SearchOptions
from deepfolder.index.embedded import EmbeddedIndex
from deepfolder.ingest.lock import ingest_lock
from deepfolder.ingest.pipeline import index_dir_for
from deepfolder.settings import Settings

pytestmark = pytest.mark.reliability

CHILD = Path(__file__).with_name("ingest_child.py")
FILES = 200
ARTICLES = 40


def _word(i: int, prefix: str) -> str:
    """A unique all-letter token (the lexical tokenizer keeps it whole)."""
    letters = ""
    for _ in range(4):
        i, r = divmod(i, 26)
        letters += chr(ord("a") + r)
    return prefix + letters


def _make_folder(root: Path) -> list[str]:
    """Text files in sub-folders and two collections, the smaller inside the larger (as
    the benchmark's nested samples); returns every token that must be findable."""
    tokens = []
    for i in range(FILES):
        path = root / f"part{i // 50}" / f"note{i:04d}.txt"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(f"Note {i} records the word {_word(i, 'qz')}.", encoding="utf-8")
        tokens.append(_word(i, "qz"))
    articles = [
        {"title": f"page {i}", "content": f"Page {i} is about {_word(i, 'xk')}."}
        for i in range(ARTICLES)
    ]
    tokens += [_word(i, "xk") for i in range(ARTICLES)]
    for name, part in (("long_context_a.json", articles), ("long_context_b.json", articles[:25])):
        (root / name).write_text(json.dumps(part), encoding="utf-8")
    return tokens


def _settings(cache: Path) -> Settings:  # the same settings as ingest_child.py
    return Settings.model_validate(
        {"cache_dir": str(cache), "ingest": {"workers": 1}, "retrieval": {"dense": False}}
    )


def _spawn(folder: Path, cache: Path) -> subprocess.Popen[str]:
    env = dict(os.environ, PYTHONPATH=str(Path(deepfolder.__file__).parents[1]))
    return subprocess.Popen(
        [sys.executable, str(CHILD), str(folder), str(cache)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )


def _kill_at(proc: subprocess.Popen[str], phase: str, done: int) -> bool:
    """SIGKILL the ingest once it reports ``phase`` with at least ``done`` files; False
    when it finished first."""
    assert proc.stdout is not None
    killed = False
    for line in proc.stdout:
        words = line.split()
        if words and words[0] == phase and int(words[1]) >= done:
            proc.send_signal(signal.SIGKILL)
            killed = True
            break
    _, err = proc.communicate(timeout=600)  # also closes the pipes
    assert killed or proc.returncode == 0, err
    return killed


def _unfindable(index_dir: Path, tokens: list[str]) -> list[str]:
    index = EmbeddedIndex(index_dir, dense=False)
    try:
        return _unfindable_in(index, tokens)
    finally:
        index.close()


def _unfindable_in(index: EmbeddedIndex, tokens: list[str]) -> list[str]:
    options = SearchOptions(k=3, mode="lexical")
    return [t for t in tokens if not any(t in ev.segment.text for ev in index.search(t, options))]


def _manifest_tokens(index_dir: Path, tokens: list[str]) -> list[str]:
    """The tokens of the text files the manifest marks as ingested."""
    try:
        files = json.loads((index_dir / "manifest.json").read_text(encoding="utf-8"))["files"]
    except FileNotFoundError:
        return []
    return [t for i, t in enumerate(tokens[:FILES]) if f"part{i // 50}/note{i:04d}.txt" in files]


def test_kill_9_at_random_points_loses_nothing(tmp_path: Path) -> None:
    folder, cache = tmp_path / "case", tmp_path / "cache"
    tokens = _make_folder(folder)
    before = tree_digest(folder)
    index_dir = index_dir_for(folder, _settings(cache))
    rng = random.Random(13)
    points = [("scan", 0)] + [("extract", rng.randint(1, FILES)) for _ in range(4)]
    points.append(("index", 0))
    killed = 0
    for phase, done in points:
        proc = _spawn(folder, cache)
        killed += _kill_at(proc, phase, done)
        marked = _manifest_tokens(index_dir, tokens)
        if marked:  # what the manifest calls ingested is findable right now
            assert _unfindable(index_dir, marked) == [], (phase, done)
    assert killed >= 4  # most kills landed inside an ingest

    proc = _spawn(folder, cache)
    _, err = proc.communicate(timeout=600)
    assert proc.returncode == 0, err
    assert _unfindable(index_dir, tokens) == []
    index = EmbeddedIndex(index_dir, dense=False)
    try:  # every file once, every article once (b's articles are copies of a's)
        assert index.count() == FILES + ARTICLES
    finally:
        index.close()
    assert tree_digest(folder) == before


def test_a_second_ingest_waits_for_the_first(tmp_path: Path) -> None:
    folder, cache = tmp_path / "case", tmp_path / "cache"
    _make_folder(folder)
    before = tree_digest(folder)
    index_dir = index_dir_for(folder, _settings(cache))
    release = threading.Event()
    holding = threading.Event()

    def hold() -> None:
        with ingest_lock(index_dir, folder, lambda _: None):
            holding.set()
            release.wait(60)

    holder = threading.Thread(target=hold)
    holder.start()
    holding.wait(10)
    proc = _spawn(folder, cache)
    assert proc.stderr is not None
    try:
        line = proc.stderr.readline()
        assert line.strip() == f"waiting for another ingest of {folder} (pid {os.getpid()})…"
    finally:
        release.set()
        holder.join()
    out, err = proc.communicate(timeout=600)
    assert proc.returncode == 0, err
    assert "finished" in out
    assert tree_digest(folder) == before


def test_two_ingests_at_once_both_succeed(tmp_path: Path) -> None:
    folder, cache = tmp_path / "case", tmp_path / "cache"
    tokens = _make_folder(folder)
    before = tree_digest(folder)
    procs = [_spawn(folder, cache) for _ in range(2)]
    results = [p.communicate(timeout=600) for p in procs]
    for proc, (_, err) in zip(procs, results, strict=True):
        assert proc.returncode == 0, err
        assert "Traceback" not in err and "LockBusy" not in err
    assert _unfindable(index_dir_for(folder, _settings(cache)), tokens) == []
    assert tree_digest(folder) == before


def test_the_report_says_when_the_index_was_repaired(tmp_path: Path) -> None:
    """An index left inconsistent (here: by the old code, which marked files as ingested
    before committing the lexical index) is repaired by the next ingest, which says so."""
    folder, cache = tmp_path / "case", tmp_path / "cache"
    tokens = _make_folder(folder)
    proc = _spawn(folder, cache)
    assert proc.communicate(timeout=600)[0].endswith("finished\n")
    index_dir = index_dir_for(folder, _settings(cache))
    index = EmbeddedIndex(index_dir, dense=False)
    index.remove_sources(["part0/note0000.txt"])  # the records lose it; the lexical index
    index._writer.rollback()  # does not (a removal killed between the two commits)
    index.close()
    from deepfolder.ingest import format_ingest_table, ingest_folder

    corpus = ingest_folder(folder, _settings(cache))
    try:
        assert any("rebuilt the lexical index" in note for note in corpus.report.notes)
        assert "rebuilt the lexical index" in str(format_ingest_table(corpus.report).caption)
        assert _unfindable_in(corpus.index, tokens) == []
    finally:
        corpus.close()
