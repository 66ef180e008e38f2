"""``python ingest_child.py FOLDER CACHE``: one real ingest (embedded index, lexical only)
that prints ``phase done total`` per progress step, for the tests that kill it."""

from __future__ import annotations

import sys
from pathlib import Path

from deepfolder.ingest import ingest_folder
from deepfolder.settings import Settings


def main(folder: str, cache: str) -> int:
    settings = Settings.model_validate(
        {"cache_dir": cache, "ingest": {"workers": 1}, "retrieval": {"dense": False}}
    )

    def progress(phase: str, done: int, total: int) -> None:
        print(phase, done, total, flush=True)

    corpus = ingest_folder(Path(folder), settings, progress=progress)
    corpus.close()
    print("finished", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], sys.argv[2]))
