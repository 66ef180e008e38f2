from __future__ import annotations

import sys
from pathlib import Path

import pytest

from deepfolder.ingest import registry
from deepfolder.ingest.base import ExtractError
from deepfolder.ingest.worker import FileJob, run_job


def test_known_kinds_resolve() -> None:
    for kind in ("pdf", "docx", "pptx", "sheet", "text", "collection", "json", "zip"):
        assert callable(registry.get_extractor(kind))


def test_unknown_kind() -> None:
    with pytest.raises(ExtractError, match="unsupported file type"):
        registry.get_extractor("hologram")


def test_missing_extractor_module(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(registry.EXTRACTORS, "video", "deepfolder.ingest.no_such_video:x")
    with pytest.raises(ExtractError, match="'media' extra"):
        registry.get_extractor("video")


def test_extractor_needing_a_missing_package(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    module = tmp_path / "needs_missing_pkg.py"
    module.write_text("import faster_whisper_not_installed\n", encoding="utf-8")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setitem(registry.EXTRACTORS, "audio", "needs_missing_pkg:extract_audio")
    sys.modules.pop("needs_missing_pkg", None)
    clip = tmp_path / "a.wav"
    clip.write_bytes(b"RIFF0000WAVEfmt ")
    job = FileJob(
        str(clip), "a.wav", "audio", "0" * 64, clip.stat().st_size, str(tmp_path / "w"), {}
    )
    outcome = run_job(job)
    assert not outcome.ok
    assert "pip install faster_whisper_not_installed" in outcome.reason


def test_extractor_bug_becomes_a_failure(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    module = tmp_path / "buggy_extractor.py"
    module.write_text("def extract(path, ctx):\n    return 1 / 0\n", encoding="utf-8")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setitem(registry.EXTRACTORS, "image", "buggy_extractor:extract")
    image = tmp_path / "x.png"
    image.write_bytes(b"\x89PNG....")
    outcome = run_job(FileJob(str(image), "x.png", "image", "", 8, str(tmp_path / "w"), {}))
    assert not outcome.ok and "ZeroDivisionError" in outcome.reason
