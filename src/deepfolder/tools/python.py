"""``run_python``: the data analysis tool.

The model's code runs in a ``PythonSandbox`` (``deepfolder.analysis``): a persistent,
limited worker process with the folder's data files readable and ``run_dir/scratch`` the
only writable place. The sandbox is created on the first call, with
``ctx.sandbox_limits``, and kept in ``ctx.sandbox``; whoever ends the run calls its
``close()``. The tool is offered only when the folder has data files.

What a call leaves behind, so the report can show and cite it:

- every figure is copied to ``run_dir/figures/<name>`` and becomes evidence
  ``Source(kind="figure", id="run:figures/<name>")`` whose text describes the chart
  (title, axis labels, legend, file path);
- every successful call that printed something or ended in a value becomes evidence
  ``Source(kind="analysis", id="run:analysis/<n>")`` whose text is that output, and the
  code plus output are written to ``run_dir/analysis/analysis_<n>.md`` for the reader.

Both are put in ``ctx.created`` and ``ctx.seen``: the model saw them, so it may cite them.
"""

from __future__ import annotations

import re
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from deepfolder.analysis.sandbox import CellResult, FigureInfo, PythonSandbox, SandboxLimits
from deepfolder.records import Evidence, Locator, Segment, Source
from deepfolder.tools.base import ToolContext, ToolOutput, tool

EVIDENCE_TEXT_CHARS = 2000
"""Characters of an analysis result kept as evidence text (head and tail)."""

_CJK = re.compile(r"[\u3400-\u9fff]")


@dataclass
class AnalysisState:
    """Per-run bookkeeping of the tool: ``ctx.state_of(AnalysisState)``."""

    analyses: int = 0
    figure_numbers: dict[str, int] = field(default_factory=dict)
    """Run-dir figure name -> its number in the report (图1, 图2…), in order of creation."""
    figure_names: dict[str, str] = field(default_factory=dict)
    """Scratch path -> run-dir figure name."""


def get_sandbox(ctx: ToolContext) -> PythonSandbox:
    """The run's sandbox, created on first use from the context."""
    sandbox = ctx.sandbox
    if sandbox is None:
        scratch = _run_dir(ctx) / "scratch"
        limits = ctx.sandbox_limits or SandboxLimits()
        sandbox = PythonSandbox(
            ctx.folder,
            list(ctx.data_files),
            scratch,
            limits,
            require_isolation=ctx.settings.analysis.require_isolation,
        )
        ctx.sandbox = sandbox
    return sandbox


def _run_dir(ctx: ToolContext) -> Path:
    if ctx.run_dir is None:
        ctx.run_dir = Path(tempfile.mkdtemp(prefix="deepfolder-run-"))
    return ctx.run_dir


@tool(available=lambda ctx: bool(ctx.data_files))
def run_python(ctx: ToolContext, code: str) -> ToolOutput:
    """Run Python code on the folder's data files (CSV, Excel, JSON) to compute
    statistics and draw charts. The session persists between calls like notebook cells:
    variables, imports and loaded tables are kept, so load data once and reuse it.
    Open data files by the paths given in the folder summary (relative paths work;
    DATA_DIR and DATA_FILES hold the absolute folder path and data file paths).
    Already imported: pd (pandas), np (numpy), plt (matplotlib.pyplot); also available:
    scipy, sklearn (scikit-learn), statsmodels. No network access. The current directory
    is a scratch directory, the only place where files may be written.
    What comes back: printed output, the value of the last line, new files, and for each
    figure an evidence id and a Markdown line to embed it. Every open figure is saved as
    a PNG after the call (or name it: plt.savefig("figures/trend.png")); give each chart
    a title and axis labels in the report's language (Chinese titles and labels for a
    Chinese report; a Chinese font is set up).
    Print the numbers you will use (e.g. a small table): the printed output gets an
    evidence id, so cite computed numbers like any evidence ("累计确诊超过1亿例
    [E1a2b3c4d]") and embed figures with the given line
    ("![图1: 累计确诊趋势](figures/fig_1.png)"). Limits per call: about a minute and
    2 GB of memory; long output is cut to its head and tail.

    Args:
        code: Python source to run, several lines allowed; the last expression's value is shown.
    """
    sandbox = get_sandbox(ctx)
    state = ctx.state_of(AnalysisState)
    result = sandbox.run(code)
    language = ctx.language
    run_dir = _run_dir(ctx)

    evidence: list[Evidence] = []
    files: list[str] = []
    figure_lines: list[str] = []
    for fig in result.figures:
        name = _copy_figure(sandbox, run_dir, fig, state)
        if name is None:
            continue
        number = state.figure_numbers.setdefault(name, len(state.figure_numbers) + 1)
        ev = _figure_evidence(name, fig, number, language)
        evidence.append(ev)
        files.append(f"figures/{name}")
        caption = ev.source.title
        figure_lines.append(
            f"- {ev.source.meta['label']} [{ev.id}] {caption!r}: figures/{name}\n"
            f"  embed with: ![{ev.source.meta['label']}: {caption}](figures/{name})"
        )

    analysis_ev = None
    if result.ok and (result.stdout.strip() or result.value):
        state.analyses += 1
        analysis_ev = _analysis_evidence(run_dir, state.analyses, code, result)
        evidence.append(analysis_ev)
        files.append(analysis_ev.source.path)

    for ev in evidence:
        ctx.created[ev.id] = ev
        ctx.seen[ev.id] = ev
    files = [f"scratch/{p}" for p in result.files] + files

    text = _observation(result, figure_lines, analysis_ev, files, sandbox)
    return ToolOutput(
        text=text + "\n" + ctx.status_line(),
        evidence=evidence,
        is_error=not result.ok,
        files=list(dict.fromkeys(files)),
    )


def _observation(
    result: CellResult,
    figure_lines: list[str],
    analysis_ev: Evidence | None,
    files: list[str],
    sandbox: PythonSandbox,
) -> str:
    parts: list[str] = []
    if result.fresh_worker:
        parts.append(
            "note: this ran in a fresh Python session; variables, imports and data loaded "
            "before the earlier failure are gone."
        )
    if result.ok:
        parts.append(f"ok ({result.duration_s:.1f} s)")
    else:
        parts.append(f"error ({result.error_kind}):\n{result.error}")
    if result.stdout:
        parts.append("output:\n" + result.stdout.rstrip())
    if result.stderr.strip():
        parts.append("stderr:\n" + result.stderr.rstrip())
    if result.value is not None:
        parts.append("value of the last line:\n" + result.value)
    if not result.ok and not result.state_lost:
        parts.append("(the session is intact: variables from earlier calls are still defined)")
    if figure_lines:
        parts.append(
            "figures (cite the id or embed the line in the report):\n" + "\n".join(figure_lines)
        )
    if analysis_ev is not None:
        parts.append(
            f"this output is evidence [{analysis_ev.id}]: cite it after numbers taken from it."
        )
    other = [f for f in files if f.startswith("scratch/") and not _is_figure_file(f, figure_lines)]
    if other:
        parts.append("new files: " + ", ".join(other[:20]))
    if result.ok and not (result.stdout.strip() or result.value or figure_lines):
        parts.append("(no output: print() the results you want to see)")
    return "\n".join(parts)


def _is_figure_file(path: str, figure_lines: list[str]) -> bool:
    return path.lower().endswith((".png", ".jpg", ".jpeg", ".svg")) and bool(figure_lines)


def _copy_figure(
    sandbox: PythonSandbox, run_dir: Path, fig: FigureInfo, state: AnalysisState
) -> str | None:
    # read without following links: the code chooses what it reports as a figure
    data = sandbox.read_file(fig.path)
    if data is None:
        return None
    source = Path(fig.path)
    name = state.figure_names.get(fig.path)
    if name is None:
        taken = set(state.figure_names.values())
        name = source.name
        stem, suffix, n = source.stem, source.suffix, 2
        while name in taken:
            name = f"{stem}_{n}{suffix}"
            n += 1
        state.figure_names[fig.path] = name
    target = run_dir / "figures" / name
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_bytes(data)
    return name


def _figure_evidence(name: str, fig: FigureInfo, number: int, language: str) -> Evidence:
    chinese = language.startswith("zh") or bool(_CJK.search(fig.title + fig.description))
    label = f"图{number}" if chinese else f"Figure {number}"
    title = fig.title or Path(name).stem
    description = fig.description or "no title or axis labels"
    text = f"{label}: chart {title!r} ({description}); file figures/{name}, made by run_python."
    source = Source(
        id=f"run:figures/{name}",
        path=f"figures/{name}",
        kind="figure",
        title=title,
        meta={"label": label, "number": number, "saved_by": fig.saved_by},
    )
    return Evidence(Segment.create(source.id, text, Locator()), source)


def _analysis_evidence(run_dir: Path, n: int, code: str, result: CellResult) -> Evidence:
    output = result.stdout.rstrip()
    if result.value is not None:
        output = (output + "\n" if output else "") + result.value
    text = _head_tail(output, EVIDENCE_TEXT_CHARS)
    title = _analysis_title(code, n)
    path = f"analysis/analysis_{n}.md"
    record = run_dir / path
    record.parent.mkdir(parents=True, exist_ok=True)
    record.write_text(
        f"# {title}\n\n```python\n{code.rstrip()}\n```\n\nOutput:\n\n```\n{output}\n```\n",
        encoding="utf-8",
    )
    source = Source(
        id=f"run:analysis/{n}",
        path=path,
        kind="analysis",
        title=title,
        meta={"code": code},
    )
    return Evidence(Segment.create(source.id, text, Locator()), source)


def _analysis_title(code: str, n: int) -> str:
    """The code's first comment, if it starts with one, else ``analysis <n>``."""
    for line in code.splitlines():
        stripped = line.strip()
        if not stripped:
            continue
        if stripped.startswith("#"):
            return stripped.lstrip("#").strip()[:80] or f"analysis {n}"
        break
    return f"analysis {n}"


def _head_tail(text: str, limit: int) -> str:
    if len(text) <= limit:
        return text
    half = limit // 2
    return f"{text[:half]}\n[... {len(text) - 2 * half} characters omitted ...]\n{text[-half:]}"


TOOLS = [run_python]
