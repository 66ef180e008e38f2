"""The sandbox runs code with notebook semantics and turns every failure into a result."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
from analysis_helpers import SALES_CSV, folder_digest

from deepfolder.analysis import PythonSandbox, SandboxLimits


@pytest.fixture(scope="module")
def sandbox(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PythonSandbox]:
    """One worker for this module's tests (none of them breaks it): saves start-up time."""
    folder = tmp_path_factory.mktemp("folder")
    (folder / "sales.csv").write_text(SALES_CSV, encoding="utf-8")
    scratch = tmp_path_factory.mktemp("run") / "scratch"
    limits = SandboxLimits(wall_s=20, cpu_s=10, memory_mb=1536, output_chars=2000)
    before = folder_digest(folder)
    with PythonSandbox(folder, ["sales.csv"], scratch, limits) as shared:
        yield shared
    assert folder_digest(folder) == before


def test_state_is_kept_between_calls(sandbox: PythonSandbox) -> None:
    first = sandbox.run("df = pd.read_csv('sales.csv')\nx = 41\nprint('rows', len(df))")
    assert first.ok, first.error
    assert first.stdout == "rows 4\n"
    second = sandbox.run("x + 1")
    assert second.ok
    assert second.value == "42"
    assert sandbox.run("df.groupby('region').sales.sum().to_dict()").value == (
        "{'华东': 255, '华南': 191}"
    )


def test_last_expression_repr_like_a_notebook(sandbox: PythonSandbox) -> None:
    table = sandbox.run("df = pd.read_csv(DATA_FILES[0])\ndf.head(2)")
    assert table.value is not None
    assert "region" in table.value and "2024-01" in table.value
    assert sandbox.run("y = 3").value is None
    assert sandbox.run("None").value is None
    # a plotting call's return value (a list of Line2D) is noise, not a result
    assert sandbox.run("plt.plot([1, 2, 3])").value is None


def test_output_is_truncated_to_head_and_tail(make_sandbox: Callable[..., PythonSandbox]) -> None:
    sandbox = make_sandbox(output_chars=1000)
    result = sandbox.run("print('START'); print('x' * 200_000); print('END')")
    assert result.ok
    assert result.stdout.startswith("START")
    assert result.stdout.rstrip().endswith("END")
    assert "characters omitted" in result.stdout
    assert len(result.stdout) < 1100


def test_syntax_error_and_exception_come_back_trimmed(sandbox: PythonSandbox) -> None:
    bad = sandbox.run("def f(:\n    pass")
    assert not bad.ok and bad.error_kind == "syntax"
    assert "SyntaxError" in (bad.error or "")
    failed = sandbox.run("def f(x):\n    return x / 0\nf(1)")
    assert failed.error_kind == "exception"
    assert failed.error is not None
    assert 'File "<cell' in failed.error and "ZeroDivisionError" in failed.error
    assert "worker.py" not in failed.error
    missing = sandbox.run("pd.read_csv('sales.csv')['no_such_column']")
    assert "KeyError" in (missing.error or "")
    assert "worker.py" not in (missing.error or "")
    assert sandbox.run("1 + 1").value == "2"


def test_scientific_stack_is_importable(sandbox: PythonSandbox) -> None:
    result = sandbox.run(
        "import scipy, sklearn, statsmodels.api as sm, matplotlib\n"
        "from sklearn.linear_model import LinearRegression\n"
        "from scipy import stats\n"
        "m = LinearRegression().fit([[1], [2], [3]], [2, 4, 6])\n"
        "print(round(float(m.coef_[0]), 3), round(stats.pearsonr([1, 2, 3], [1, 2, 4])[0], 3))\n"
        "sm.OLS([1.0, 2.0, 3.1], sm.add_constant([1.0, 2.0, 3.0])).fit().params.round(2).tolist()"
    )
    assert result.ok, result.error
    assert result.stdout.startswith("2.0 0.982")


def test_new_files_in_scratch_are_reported(sandbox: PythonSandbox) -> None:
    result = sandbox.run("pd.read_csv('sales.csv').to_csv('summary.csv', index=False)")
    assert result.ok, result.error
    assert result.files == ["summary.csv"]
    assert (sandbox.scratch_dir / "summary.csv").is_file()
    assert sandbox.run("1").files == []


def test_subprocesses_are_refused(sandbox: PythonSandbox) -> None:
    result = sandbox.run("import os\nos.system('echo hi > /tmp/escaped.txt')")
    assert result.error_kind == "forbidden"
    assert "processes" in (result.error or "")
    assert sandbox.run("import subprocess\nsubprocess.run(['true'])").error_kind == "forbidden"


def test_reads_outside_allowed_places_are_refused(sandbox: PythonSandbox) -> None:
    result = sandbox.run("open('/etc/hostname').read()")
    assert result.error_kind == "forbidden"
    assert "reading" in (result.error or "")
    assert sandbox.run("len(open(DATA_DIR + '/sales.csv', encoding='utf-8').read())").ok
