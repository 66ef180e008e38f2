"""Every layer of the boundary is reported, and a missing one stops the code unless the
settings allow running without it."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from analysis_helpers import SALES_CSV

from deepfolder.analysis import IsolationUnavailable, PythonSandbox, isolation
from deepfolder.settings import Settings


def test_every_layer_is_active_and_confirmed_from_inside(
    make_sandbox: Callable[..., PythonSandbox],
) -> None:
    sandbox = make_sandbox()
    assert sandbox.run("1").ok
    assert sandbox.isolation["method"] == "bubblewrap"
    assert sandbox.isolation["layers"] == dict.fromkeys(isolation.LAYERS, "active")
    limits = sandbox.isolation["rlimits"]
    assert limits["RLIMIT_AS"] == 1536 * 1024 * 1024
    assert limits["RLIMIT_CORE"] == 0
    inside = sandbox.run(
        "import os\n"
        "status = dict(l.split(':', 1) for l in open('/proc/self/status'))\n"
        "(os.getuid(), os.getgid(), status['CapEff'].strip(), status['NoNewPrivs'].strip(),\n"
        " status['Seccomp'].strip(), sorted(p for p in os.listdir('/proc') if p.isdigit()))"
    )
    assert inside.value == "(65534, 65534, '0000000000000000', '1', '2', ['1', '2'])"


def test_require_isolation_is_the_default_setting() -> None:
    assert Settings().analysis.require_isolation is True


def test_missing_bubblewrap_stops_the_code_before_it_runs(
    make_sandbox: Callable[..., PythonSandbox],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    monkeypatch.setattr(isolation, "bwrap_problem", lambda: "bwrap is not installed (test)")
    sandbox = make_sandbox()
    marker = tmp_path / "ran.txt"
    with pytest.raises(IsolationUnavailable) as refused:
        sandbox.run(f"open({str(marker)!r}, 'w')")
    message = str(refused.value)
    assert "no code is run" in message
    assert "namespaces: refused: bwrap is not installed (test)" in message
    assert "analysis.require_isolation = false" in message
    assert not marker.exists()
    assert not (sandbox.scratch_dir / ".sandbox" / "worker.log").exists()  # nothing started


def test_missing_seccomp_is_named_and_stops_the_code(
    make_sandbox: Callable[..., PythonSandbox], monkeypatch: pytest.MonkeyPatch
) -> None:
    def no_libseccomp() -> bytes:
        raise IsolationUnavailable("seccomp: libseccomp.so.2 not found (test)")

    monkeypatch.setattr(isolation, "seccomp_program", no_libseccomp)
    with pytest.raises(IsolationUnavailable, match="seccomp: refused: seccomp: libseccomp"):
        make_sandbox().run("1")


def test_without_require_isolation_the_remaining_layers_run_the_code(
    data_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def no_libseccomp() -> bytes:
        raise IsolationUnavailable("seccomp: libseccomp.so.2 not found (test)")

    monkeypatch.setattr(isolation, "seccomp_program", no_libseccomp)
    with PythonSandbox(
        data_dir, ["sales.csv"], tmp_path / "scratch", require_isolation=False
    ) as sandbox:
        result = sandbox.run("import os\nos.getuid()")
        assert result.ok and result.value == "65534"
        layers = sandbox.isolation["layers"]
        assert layers["seccomp"].startswith("refused: seccomp: libseccomp.so.2 not found")
        assert layers["namespaces"] == "active"


def test_without_bubblewrap_the_worker_says_which_layers_are_missing(
    data_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The audit hook and resource limits alone: the worker's own checks report the rest."""
    monkeypatch.setattr(isolation, "bwrap_problem", lambda: "bwrap is not installed (test)")
    with PythonSandbox(
        data_dir, ["sales.csv"], tmp_path / "scratch", require_isolation=False
    ) as sandbox:
        assert sandbox.run("print(pd.read_csv('sales.csv').sales.sum())").stdout == "446\n"
        assert sandbox.isolation["method"] == "none"
        layers = sandbox.isolation["layers"]
        assert layers["namespaces"] == "refused: bwrap is not installed (test)"
        assert layers["environment"] == "active"
        assert layers["rlimits"] == "active"
        assert sandbox.run("open('/etc/hostname').read()").error_kind == "forbidden"


def test_the_seccomp_program_is_compiled_by_libseccomp() -> None:
    program = isolation.seccomp_program()
    assert len(program) % 8 == 0 and len(program) > 8 * 50  # struct sock_filter: 8 bytes


def test_only_the_runs_data_files_of_the_folder_are_visible(tmp_path: Path) -> None:
    folder = tmp_path / "folder"
    folder.mkdir()
    (folder / "sales.csv").write_text(SALES_CSV, encoding="utf-8")
    (folder / "private notes.txt").write_text("not a data file", encoding="utf-8")
    with PythonSandbox(folder, ["sales.csv"], tmp_path / "scratch") as sandbox:
        listing = sandbox.run("import os\nsorted(os.listdir(DATA_DIR))")
        assert listing.value == "['sales.csv']"
