from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from deepfolder.llm import packaged_weights
from deepfolder.llm.base import ModelConfigError
from deepfolder.llm.packaged_weights import PackagedGGUF, ensure_gguf, find_part_files


def make_parts(tmp_path: Path) -> tuple[list[Path], str]:
    chunks = [b"GGUF" + bytes(range(256)) * 50, b"middle" * 1000, b"tail"]
    paths = []
    for i, chunk in enumerate(chunks, 1):
        path = tmp_path / f"part{i:02d}.bin"
        path.write_bytes(chunk)
        paths.append(path)
    return paths, hashlib.sha256(b"".join(chunks)).hexdigest()


def spec_with(sha: str) -> PackagedGGUF:
    return PackagedGGUF("tiny", "no-such-dist-part", 3, "1.0", sha, "test parts")


def test_join_verifies_and_stamps(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    parts, sha = make_parts(tmp_path)
    monkeypatch.setattr(packaged_weights, "find_part_files", lambda spec: parts)
    target = ensure_gguf(spec_with(sha), tmp_path / "models")
    assert target.read_bytes() == b"".join(p.read_bytes() for p in parts)
    assert (tmp_path / "models" / "tiny.gguf.verified").exists()
    assert not list((tmp_path / "models").glob("*.tmp-*"))

    # A second start trusts the stamp and does not look at the parts again.
    monkeypatch.setattr(packaged_weights, "find_part_files", lambda spec: pytest.fail("rejoined"))
    assert ensure_gguf(spec_with(sha), tmp_path / "models") == target


def test_changed_file_is_rejoined(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    parts, sha = make_parts(tmp_path)
    monkeypatch.setattr(packaged_weights, "find_part_files", lambda spec: parts)
    target = ensure_gguf(spec_with(sha), tmp_path / "models")
    target.write_bytes(b"truncated")
    ensure_gguf(spec_with(sha), tmp_path / "models")
    assert hashlib.sha256(target.read_bytes()).hexdigest() == sha


def test_wrong_checksum_leaves_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    parts, _ = make_parts(tmp_path)
    monkeypatch.setattr(packaged_weights, "find_part_files", lambda spec: parts)
    with pytest.raises(ModelConfigError, match="sha256"):
        ensure_gguf(spec_with("0" * 64), tmp_path / "models")
    assert not (tmp_path / "models" / "tiny.gguf").exists()
    assert not list((tmp_path / "models").glob("*.tmp-*"))


def test_missing_parts_name_the_install_command() -> None:
    with pytest.raises(ModelConfigError) as info:
        find_part_files(spec_with("0" * 64))
    message = str(info.value)
    assert "no-such-dist-part1" in message
    assert "pip install no-such-dist-part{1..3}==1.0" in message
