"""Code-driven data analysis for the pipeline policy.

A small local model cannot be trusted to write analysis code, yet a request built on the
user's data deserves real numbers. So the pipeline runs a fixed, generic analysis of each
table through the same ``run_python`` tool an agent would use (so it is sandboxed,
recorded in the trace, and its outputs become citable evidence):

- wide time series (one column per date, like the JHU COVID-19 files): the total over
  time, new cases per month, and the top rows by the latest value;
- long time series (a date column plus numeric columns, like a daily price sheet; the
  code is ``auto_analysis_series.py``): the change over the whole period, per-year
  (per-month under two years) figures and changes, extremes with their dates,
  volatility, the linear trend, and per-group comparisons when a small group column
  exists; a line chart with a rolling mean and a bar chart of the period changes;
- ordinary tables: summary statistics, correlations between numeric columns, group
  means by the first low-cardinality column, a histogram and a correlation heatmap.

Every printed figure carries its label, period and date ("2018-01-02 至 2023-12-29 收盘价
由 X 变为 Y（+Z%）"), so a sentence that cites the output can be checked against it. The
whole output of a long series stays under the 2,000 characters the tool keeps as
evidence text. The code run in the sandbox is plain pandas/numpy/matplotlib.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path, PurePosixPath

TABLE_SUFFIXES = (".csv", ".tsv", ".xlsx", ".xls", "")


def is_table(rel: str) -> bool:
    name = PurePosixPath(rel).name.lower()
    return not name.startswith("long_context") and PurePosixPath(name).suffix in TABLE_SUFFIXES


SERIES_CODE = Path(__file__).with_name("auto_analysis_series.py")
"""The long-series analysis, run in the sandbox as text (it defines ``_date_column`` and
``_long_series``)."""


@cache
def series_code() -> str:
    return SERIES_CODE.read_text(encoding="utf-8")


def analysis_code(rel: str, language: str) -> str:
    """Python for one table; titles and labels in the report's language."""
    zh = language.startswith("zh")
    t = {
        "rows": "行" if zh else "rows",
        "range": "时间范围" if zh else "time range",
        "latest": "最新累计值" if zh else "latest cumulative total",
        "total": "合计随时间变化" if zh else "total over time",
        "monthly": "每月新增" if zh else "new per month",
        "top": "最新值前10位" if zh else "top 10 by latest value",
        "date": "日期" if zh else "date",
        "value": "数值" if zh else "value",
        "summary": "描述统计" if zh else "summary statistics",
        "corr": "相关系数" if zh else "correlations",
        "means": "分组均值" if zh else "group means",
        "dist": "分布" if zh else "distribution",
        "count": "频数" if zh else "count",
    }
    title = f"数据分析：{rel}" if zh else f"Data analysis: {rel}"
    return f'''\
# {title}
import re as _re
_path = {rel!r}
_stem = _path.rsplit("/", 1)[-1].rsplit(".", 1)[0]
if _path.lower().endswith((".xlsx", ".xls")):
    # openpyxl's import builds a MIME table from the system's files (/etc/mime.types),
    # which the sandbox refuses to read; Python's built-in table is all it needs.
    import mimetypes as _mt
    _mt.knownfiles = []
    _mt.init()
    _df = pd.read_excel(_path)
else:
    _df = pd.read_csv(_path, sep=None, engine="python")
_dates = [c for c in _df.columns if _re.fullmatch(r"\\d{{1,2}}/\\d{{1,2}}/\\d{{2,4}}|\\d{{4}}-\\d{{2}}-\\d{{2}}", str(c))]
# Short, font-safe column labels (no emoji) for printed tables and chart labels.
_df = _df.rename(columns=lambda c: "".join(ch for ch in str(c) if ord(ch) < 0x10000).strip()[:40])
_txt = [c for c in _df.columns if pd.api.types.is_string_dtype(_df[c]) or _df[c].dtype == object]
print(f"{{_path}}: {{len(_df)}} {t["rows"]} x {{len(_df.columns)}}")
{series_code()}
_tcol, _tdates = (None, None) if len(_dates) >= 10 else _date_column(_df)
if len(_dates) >= 10:
    _s = _df[_dates].sum()
    _s.index = pd.to_datetime(_s.index, format="mixed")
    _m = _s.resample("ME").last()
    _new = _m.diff().fillna(_m.iloc[0])
    print(f"{t["range"]}: {{_s.index[0].date()}} – {{_s.index[-1].date()}}; {t["latest"]}: {{int(_s.iloc[-1]):,}}")
    print("{t["monthly"]}:")
    print(_new.astype(int).tail(12).to_string())
    _keys = [c for c in _txt if c not in _dates]
    if _keys:
        _top = _df.groupby(_keys[-1])[_dates[-1]].sum().sort_values(ascending=False).head(10)
        print("{t["top"]}:")
        print(_top.astype(int).to_string())
    _fig, _ax = plt.subplots(figsize=(8, 4))
    _new.plot(ax=_ax)
    _ax.set_title(f"{{_stem}}：{t["monthly"]}")
    _ax.set_xlabel("{t["date"]}"); _ax.set_ylabel("{t["value"]}")
    _fig.tight_layout()
    if _keys:
        _fig2, _ax2 = plt.subplots(figsize=(8, 4))
        _top.sort_values().plot.barh(ax=_ax2)
        _ax2.set_title(f"{{_stem}}：{t["top"]}")
        _ax2.set_xlabel("{t["value"]}")
        _fig2.tight_layout()
elif _tcol is not None and _long_series(_df, _tcol, _tdates, _stem, {zh!r}):
    pass
else:
    _num = _df.select_dtypes("number")
    print("{t["summary"]}:")
    _d = _num.describe().T[["mean", "std", "min", "50%", "max"]].round(2)
    print(_d.rename(index=lambda c: c[:40]).to_string())
    if _num.shape[1] >= 2:
        _c = _num.corr().round(2)
        # Each correlation as a sentence naming both columns: a matrix with its headers
        # cut to ten characters was misread (and cut off) by the small model.
        print("{t["corr"]}:")
        _target = _num.columns[-1]
        _pairs = [(_c.loc[_a, _b], _a, _b) for _i, _a in enumerate(_c.columns) for _b in _c.columns[_i + 1:]]
        _pairs = sorted((p for p in _pairs if p[0] == p[0]), key=lambda p: -abs(p[0]))
        _with_target = [p for p in _pairs if _target in p[1:]][:6]
        _others = [p for p in _pairs if _target not in p[1:]][:2]
        for _r, _a, _b in _with_target + _others:
            _x = _b if _a == _target else _a
            _y = _target if _target in (_a, _b) else _b
            _k = 0 if abs(_r) >= 0.5 else 1 if abs(_r) >= 0.3 else 2 if abs(_r) >= 0.1 else 3
            if {zh!r}:
                _w = "几乎不相关" if _k == 3 else ("强", "中等", "弱")[_k] + ("正相关" if _r > 0 else "负相关")
                print(f"{{_x}} 与 {{_y}} 的相关系数 r = {{_r:+.2f}}（{{_w}}）")
            else:
                _w = "almost none" if _k == 3 else ("strong", "moderate", "weak")[_k] + (" positive" if _r > 0 else " negative")
                print(f"{{_x}} and {{_y}}: r = {{_r:+.2f}} ({{_w}})")
        _fig, _ax = plt.subplots(figsize=(6, 5))
        _im = _ax.imshow(_c.values, cmap="coolwarm", vmin=-1, vmax=1)
        _ax.set_xticks(range(len(_c)), [str(x)[:14] for x in _c.columns], rotation=45, ha="right")
        _ax.set_yticks(range(len(_c)), [str(x)[:14] for x in _c.index])
        _fig.colorbar(_im)
        _ax.set_title(f"{{_stem}}：{t["corr"]}")
        _fig.tight_layout()
    # Group by the last low-cardinality column (often the outcome, e.g. a stress rating).
    _cats = [c for c in _df.columns if _df[c].nunique() <= 8]
    if _cats and _num.shape[1] >= 2:
        _key = _cats[-1]
        _g = _df.groupby(_key)[[c for c in _num.columns if c != _key][:5]].mean().round(2)
        _g.index.name = None  # named in the line above
        print(f"{t["means"]} ({{_key}}):")
        print(_g.rename(columns=lambda c: c[:16]).to_string())
    if _num.shape[1] >= 1:
        _col = _num.columns[-1]
        _fig3, _ax3 = plt.subplots(figsize=(6, 4))
        _num[_col].plot.hist(ax=_ax3, bins=min(20, max(5, _num[_col].nunique())))
        _ax3.set_title(f"{{_col}}：{t["dist"]}")
        _ax3.set_xlabel(str(_col)); _ax3.set_ylabel("{t["count"]}")
        _fig3.tight_layout()
'''
