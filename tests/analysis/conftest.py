"""Fixtures for the analysis sandbox: a small data folder and sandboxes with short limits."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

# The helpers module sits beside this file (tests import it by name, importlib mode).
sys.path.insert(0, str(Path(__file__).parent))

from analysis_helpers import SALES_CSV, folder_digest

from deepfolder.analysis import PythonSandbox, SandboxLimits


@pytest.fixture
def data_dir(tmp_path: Path) -> Iterator[Path]:
    """The input folder; its hash must be the same after the test (sandboxes closed)."""
    folder = tmp_path / "folder"
    folder.mkdir()
    (folder / "sales.csv").write_text(SALES_CSV, encoding="utf-8")
    before = folder_digest(folder)
    yield folder
    assert folder_digest(folder) == before, f"the test changed the input folder {folder}"


@pytest.fixture
def make_sandbox(data_dir: Path, tmp_path: Path) -> Iterator[Callable[..., PythonSandbox]]:
    made: list[PythonSandbox] = []

    def make(**limits: float) -> PythonSandbox:
        settings = {"wall_s": 20.0, "cpu_s": 10.0, "memory_mb": 1536, "output_chars": 2000}
        settings.update(limits)
        sandbox = PythonSandbox(
            data_dir,
            ["sales.csv"],
            tmp_path / f"run{len(made)}" / "scratch",
            SandboxLimits(**settings),  # type: ignore[arg-type]
        )
        made.append(sandbox)
        return sandbox

    yield make
    for sandbox in made:
        sandbox.close()


@pytest.fixture
def sandbox(make_sandbox: Callable[..., PythonSandbox]) -> PythonSandbox:
    return make_sandbox()
