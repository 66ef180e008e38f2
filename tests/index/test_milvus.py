"""Milvus-specific behaviour beyond the shared contract: where the data lives, and the
errors a user sees when the package or the server is missing."""

from __future__ import annotations

import socket
import sys
from pathlib import Path

import pytest

from deepfolder.index.milvus import MilvusIndex, lexical_text
from deepfolder.records import Locator, Segment, Source
from index.milvus_server import HAS_MILVUS, MILVUS_SKIP

pytestmark = pytest.mark.skipif(not HAS_MILVUS, reason=MILVUS_SKIP)


def test_data_lives_in_the_server(milvus_server_url: str) -> None:
    """A second, independent client of the server process sees what the index wrote."""
    from pymilvus import MilvusClient

    source = Source("a.txt", "a.txt", "text", title="A")
    with MilvusIndex(Path("served-a"), url=milvus_server_url, dense=False) as idx:
        idx.add([source], [Segment.create(source.id, "北京大学 in Beijing", Locator(), 0)])
    client = MilvusClient(uri=milvus_server_url)
    try:
        assert "deepfolder_served_a_segments" in client.list_collections()
        rows = client.query("deepfolder_served_a_segments", filter="", output_fields=["count(*)"])
        assert rows[0]["count(*)"] == 1
    finally:
        client.close()


def test_unreachable_server_names_the_url(tmp_path: Path) -> None:
    with socket.socket() as sock:  # a loopback port nobody listens on
        sock.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{sock.getsockname()[1]}"
    with pytest.raises(RuntimeError, match=r"cannot reach the Milvus server at http://127"):
        MilvusIndex(tmp_path / "x", url=url, dense=False)


def test_missing_package_names_the_extra(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "pymilvus", None)  # makes `import pymilvus` fail
    with pytest.raises(RuntimeError, match=r'pip install "deepfolder\[milvus\]"'):
        MilvusIndex(tmp_path / "x", dense=False)


def test_lexical_text_is_one_ascii_word_per_token() -> None:
    words = lexical_text("北京大学创办于1898年").split()
    assert len(words) >= 4 and all(len(w) == 8 and w.isalnum() and w.isascii() for w in words)
    assert lexical_text("北京大学").split()[-1] in lexical_text("我在北京大学").split()
