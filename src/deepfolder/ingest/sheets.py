"""Spreadsheets (xlsx, xls, csv, tsv) → schema, summary statistics and blocks of rows.

For each sheet: a schema segment (columns, dtypes, row count), a summary-statistics
segment, and row blocks ``Locator(sheet, rows=(first, last))`` with spreadsheet row
numbers (header = row 1, first data row = row 2; blank lines are kept as rows so the
numbers match what a spreadsheet program shows). A block holds as many rows as fit in
about one chunk (at most 50), each block repeating the header so it reads on its own.
Very wide tables (time series with a column per day) show their first and last columns
in row blocks; the full table is for the analysis tool (``Corpus.data_files``).
"""

from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import Any

from deepfolder.ingest.base import ExtractContext, ExtractError, ExtractResult
from deepfolder.records import Locator, Segment, Source

CSV_ENCODINGS = ("utf-8", "utf-8-sig", "gb18030")
MAX_BLOCK_ROWS = 50
WIDE_HEAD, WIDE_TAIL = 8, 4
SCHEMA_MAX_COLUMNS = 60


def _decode(data: bytes, name: str) -> str:
    if data.startswith(b"\xef\xbb\xbf"):
        return data[3:].decode("utf-8", errors="replace")
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        return data.decode("utf-16")
    for encoding in CSV_ENCODINGS:
        try:
            return data.decode(encoding)
        except UnicodeDecodeError:
            continue
    raise ExtractError(
        f"{name}: cannot decode the text as {', '.join(CSV_ENCODINGS)}; save it as UTF-8"
    )


def _read_csv(path: Path) -> Any:
    import pandas as pd

    text = _decode(path.read_bytes(), path.name)
    suffix = path.suffix.lower()
    if suffix == ".tsv":
        sep = "\t"
    elif suffix == ".csv":
        sep = ","
    else:
        try:
            sep = csv.Sniffer().sniff(text[:8192], delimiters=",\t;|").delimiter
        except csv.Error:
            sep = ","
    try:
        return pd.read_csv(io.StringIO(text), sep=sep, skip_blank_lines=False)
    except Exception as exc:
        raise ExtractError(f"{path.name} is not a readable CSV table: {exc}") from exc


def read_tables(path: Path) -> dict[str | None, Any]:
    """Sheet name (None for CSV/TSV) → DataFrame."""
    import pandas as pd

    suffix = path.suffix.lower()
    if suffix in (".xlsx", ".xlsm", ".xls") or _is_zip_workbook(path):
        engine = "xlrd" if suffix == ".xls" else "openpyxl"
        try:
            return dict(pd.read_excel(path, sheet_name=None, engine=engine))
        except ImportError:
            raise
        except Exception as exc:
            raise ExtractError(f"{path.name} is not a readable workbook: {exc}") from exc
    return {None: _read_csv(path)}


def _is_zip_workbook(path: Path) -> bool:
    with path.open("rb") as fh:
        return fh.read(4) == b"PK\x03\x04"


def _cell(value: Any) -> str:
    text = "" if value is None or value != value else str(value)  # NaN != NaN
    return text.replace("\n", " ").strip()


def _shown_columns(columns: list[str]) -> tuple[list[int], str]:
    """Indexes of the columns shown in row blocks, and a note when some are hidden."""
    n = len(columns)
    if n <= WIDE_HEAD + WIDE_TAIL + 2:
        return list(range(n)), ""
    shown = list(range(WIDE_HEAD)) + list(range(n - WIDE_TAIL, n))
    return shown, f"(… {n - len(shown)} columns between {columns[WIDE_HEAD - 1]} and " + (
        f"{columns[n - WIDE_TAIL]} not shown; use the analysis tool for them)"
    )


def _schema_text(label: str, df: Any) -> str:
    columns = [str(c) for c in df.columns]
    lines = [f"{label}: {len(df)} data rows × {len(columns)} columns (header is row 1)."]
    for name, dtype in list(zip(columns, df.dtypes, strict=False))[:SCHEMA_MAX_COLUMNS]:
        lines.append(f"- {name}: {dtype}")
    if len(columns) > SCHEMA_MAX_COLUMNS:
        lines.append(f"- … {len(columns) - SCHEMA_MAX_COLUMNS} more columns, up to {columns[-1]}")
    return "\n".join(lines)


def _stats_text(label: str, df: Any) -> str:
    sample = df.iloc[:, :SCHEMA_MAX_COLUMNS] if df.shape[1] > SCHEMA_MAX_COLUMNS else df
    lines = [f"{label}: summary statistics"]
    for name in sample.columns:
        col = sample[name]
        non_null = int(col.notna().sum())
        if non_null == 0:
            lines.append(f"- {name}: empty")
        elif col.dtype.kind in "iufb":
            lines.append(
                f"- {name}: min {col.min():g}, mean {col.mean():.4g}, max {col.max():g}, "
                f"{non_null} values"
            )
        else:
            top = col.astype(str).value_counts().head(3)
            common = ", ".join(f"{k} ({v})" for k, v in top.items())
            lines.append(f"- {name}: {col.nunique()} distinct; most common {common}")
    return "\n".join(lines)


def _row_blocks(df: Any, chunk_chars: int) -> list[tuple[int, int, str]]:
    columns = [str(c) for c in df.columns]
    shown, note = _shown_columns(columns)
    header = " | ".join(columns[i] for i in shown)
    rendered = []
    for offset, row in enumerate(df.itertuples(index=False, name=None)):
        cells = " | ".join(_cell(row[i]) for i in shown)
        rendered.append((offset + 2, f"row {offset + 2}: {cells}"))
    blocks: list[tuple[int, int, str]] = []
    budget = max(chunk_chars - len(header) - len(note), chunk_chars // 3)
    i = 0
    while i < len(rendered):
        j, size = i, 0
        while j < len(rendered) and j - i < MAX_BLOCK_ROWS:
            size += len(rendered[j][1]) + 1
            if size > budget and j > i:
                break
            j += 1
        lines = [header, *(text for _, text in rendered[i:j])] + ([note] if note else [])
        blocks.append((rendered[i][0], rendered[j - 1][0], "\n".join(lines)))
        i = j
    return blocks


def extract_sheet(path: Path, ctx: ExtractContext) -> ExtractResult:
    tables = read_tables(path)
    segments: list[Segment] = []
    sheets_meta: dict[str, dict[str, int]] = {}

    def add(text: str, locator: Locator) -> None:
        segments.append(Segment.create(ctx.rel_path, text, locator, seq=len(segments)))

    for sheet, df in tables.items():
        label = f"{path.name} sheet {sheet}" if sheet is not None else path.name
        sheets_meta[sheet or ""] = {"rows": len(df), "columns": int(df.shape[1])}
        add(_schema_text(label, df), Locator(sheet=sheet, section="schema"))
        if len(df):
            add(_stats_text(label, df), Locator(sheet=sheet, section="summary statistics"))
        for first, last, text in _row_blocks(df, ctx.settings.chunk_chars):
            add(text, Locator(sheet=sheet, rows=(first, last)))
    source = Source(
        id=ctx.rel_path,
        path=ctx.rel_path,
        kind="sheet",
        title=path.name,
        sha256=ctx.sha256,
        size=ctx.size,
        meta={"sheets": sheets_meta, "rows": sum(s["rows"] for s in sheets_meta.values())},
    )
    return ExtractResult([source], segments, [])
