"""Code-driven data analysis for the pipeline policy.

A small local model cannot be trusted to write analysis code, yet a request built on the
user's data deserves real numbers. So the pipeline runs a fixed, generic analysis of each
table through the same ``run_python`` tool an agent would use (so it is sandboxed,
recorded in the trace, and its outputs become citable evidence):

- wide time series (one column per date, like the JHU COVID-19 files): the total over
  time, new cases per month, and the top rows by the latest value;
- long time series (a date column plus numeric columns, like a daily price sheet; see
  ``LONG_SERIES_CODE``): the change over the whole period, per-year (per-month under two
  years) means, period ends and changes, extremes with their dates, volatility, the
  linear trend, and per-group comparisons when a small group column exists; a line chart
  with a rolling mean and a bar chart of the period changes;
- ordinary tables: summary statistics, correlations between numeric columns, group
  means by the first low-cardinality column, a histogram and a correlation heatmap.

Every printed figure carries its label, period and date ("2018-01-02 至 2023-12-29 收盘价
由 X 变为 Y（+Z%）"), so a sentence that cites the output can be checked against it. The
whole output of a long series stays under the 2,000 characters the tool keeps as
evidence text. The code run in the sandbox is plain pandas/numpy/matplotlib.
"""

from __future__ import annotations

from pathlib import PurePosixPath

TABLE_SUFFIXES = (".csv", ".tsv", ".xlsx", ".xls", "")


def is_table(rel: str) -> bool:
    name = PurePosixPath(rel).name.lower()
    return not name.startswith("long_context") and PurePosixPath(name).suffix in TABLE_SUFFIXES


LONG_LABELS_ZH = {
    "head": "长表时间序列：日期列 {t}，{a} 至 {b}，{n} 个日期（已按日期排序）",
    "groups": "分组列 {g}：{names}（{n} 组）",
    "sep": "、",
    "block": "【{c}】",
    "sum_of": "【{c}】（各组合计）",
    "mean_of": "【{c}】（各组平均）",
    "went": "{a} 至 {b}：{c}由 {x} 变为 {y}（{d}，{p}）",
    "extremes": "最高 {hi} 于 {hd}；最低 {lo} 于 {ld}",
    "vol_pct": "{u}涨跌幅标准差 {sd}，年化波动率 {ann}（按每年 {n} 个观测）",
    "vol_abs": "{u}变化量标准差 {sd}（数据含零或负值，不计百分比波动率）",
    "spread": "{u}值标准差 {sd}（为均值的 {cv}）",
    "trend": "线性趋势：每年 {slope}（为均值的 {rel}/年，R²={r2}）；上涨{pu}份 {up}/{k}",
    "by": "按{pu}（均值；{pu}末值；较上{pu}末变化，首{pu}较期初）：",
    "period": "  {per}：均值 {mean}；{pu}末 {last}；{chg}",
    "compare": "按 {g} 比较 {c}：",
    "group_line": "  {name}：{a} 至 {b} 由 {x} 变为 {y}（{p}）；均值 {mean}；最高 {hi} 于 {hd}；"
    "年化波动率 {ann}",
    "year": "年",
    "month": "月",
    "unit_252": "日",
    "unit_365": "日",
    "unit_52": "周",
    "unit_12": "月",
    "unit_4": "季",
    "unit_1": "年",
    "line_title": "{stem}：{c}走势",
    "roll_252": "20日移动平均",
    "roll_365": "30日移动平均",
    "roll_52": "4周移动平均",
    "roll_12": "3个月移动平均",
    "roll_4": "4个季度移动平均",
    "roll_1": "3年移动平均",
    "bar_title": "{stem}：{c}各{pu}变化（%）",
    "group_title": "{stem}：各{g}{c}全期变化（%）",
    "date": "日期",
    "change": "变化（%）",
    "na": "无",
}
LONG_LABELS_EN = {
    "head": "long-format time series: date column {t}, {a} to {b}, {n} dates (sorted by date)",
    "groups": "group column {g}: {names} ({n} groups)",
    "sep": ", ",
    "block": "== {c} ==",
    "sum_of": "== {c} (sum over groups) ==",
    "mean_of": "== {c} (mean over groups) ==",
    "went": "{a} to {b}: {c} went from {x} to {y} ({d}, {p})",
    "extremes": "high {hi} on {hd}; low {lo} on {ld}",
    "vol_pct": "std of {u} % change {sd}; annualised volatility {ann} ({n} observations a year)",
    "vol_abs": "std of {u} change {sd} (zero or negative values: no % volatility)",
    "spread": "std of {u} values {sd} ({cv} of the mean)",
    "trend": "linear trend: {slope} a year ({rel} of the mean a year, R²={r2}); "
    "rising {pu}s {up}/{k}",
    "by": "by {pu} (mean; {pu}-end value; change vs previous {pu} end, first {pu} vs start):",
    "period": "  {per}: mean {mean}; end {last}; {chg}",
    "compare": "{c} by {g}:",
    "group_line": "  {name}: {a} to {b} from {x} to {y} ({p}); mean {mean}; high {hi} on {hd}; "
    "annualised volatility {ann}",
    "year": "year",
    "month": "month",
    "unit_252": "daily",
    "unit_365": "daily",
    "unit_52": "weekly",
    "unit_12": "monthly",
    "unit_4": "quarterly",
    "unit_1": "yearly",
    "line_title": "{stem}: {c}",
    "roll_252": "20-day moving average",
    "roll_365": "30-day moving average",
    "roll_52": "4-week moving average",
    "roll_12": "3-month moving average",
    "roll_4": "4-quarter moving average",
    "roll_1": "3-year moving average",
    "bar_title": "{stem}: {c} change by {pu} (%)",
    "group_title": "{stem}: {c} change over the period by {g} (%)",
    "date": "date",
    "change": "change (%)",
    "na": "n/a",
}
# Chinese names for the usual English columns of a price sheet.
COLUMN_NAMES_ZH = {
    "close": "收盘价",
    "adj close": "复权收盘价",
    "adj_close": "复权收盘价",
    "open": "开盘价",
    "high": "最高价",
    "low": "最低价",
    "volume": "成交量",
    "price": "价格",
    "turnover": "成交额",
}

# Runs in the sandbox after the table is loaded as ``_df`` (``_re``, ``_stem`` and the
# labels ``_L`` defined). Plain pandas/numpy/matplotlib; names start with ``_`` so they do
# not clash with what an agent later defines in the same session.
LONG_SERIES_CODE = r"""
_DATE_NAME = _re.compile(r"date|time|day|month|year|period|week|日期|时间|日|月|年|期", _re.I)
_DATE_TEXT = r"\s*(\d{4}[-/.年]\d{1,2}|\d{1,2}[-/.]\d{1,2}[-/.]\d{2,4})"
# Name fragments: the columns a reader cares about first, and those that add up over groups.
_MAIN_WORDS = ("adj close", "close", "收盘", "price", "价", "value", "值", "index", "指数",
               "sales", "销售", "revenue", "收入", "amount", "金额", "total", "总")
_SUM_WORDS = ("volume", "sales", "amount", "revenue", "count", "qty", "quantity", "turnover",
              "量", "额", "人数", "收入", "销售")
_GROUP_WORDS = ("ticker", "symbol", "code", "name", "product", "region", "category", "group",
                "country", "city", "store", "股票", "代码", "名称", "产品", "地区", "区域",
                "类别", "品类", "省", "市", "国家")


def _date_column(df):
    # A date column is named like one or holds date-shaped text (or is a datetime or a
    # "Year" column of whole years), and more than 80% of its values parse as dates.
    for c in df.columns:
        s = df[c]
        named = bool(_DATE_NAME.search(str(c)))
        try:
            if pd.api.types.is_datetime64_any_dtype(s):
                d = s
            elif pd.api.types.is_bool_dtype(s):
                continue
            elif pd.api.types.is_numeric_dtype(s):
                v = s.dropna()
                if not (named and len(v) and v.between(1800, 2200).all() and (v % 1 == 0).all()):
                    continue
                d = pd.to_datetime(s.astype("Int64").astype(str), format="%Y", errors="coerce")
            else:
                text = s.dropna().astype(str)
                if not (named or (len(text) and text.str.match(_DATE_TEXT).mean() > 0.8)):
                    continue
                d = pd.to_datetime(s.astype(str).where(s.notna()), errors="coerce", format="mixed")
            if getattr(d.dt, "tz", None) is not None:
                d = d.dt.tz_localize(None)
        except (ValueError, TypeError, OverflowError):
            continue
        if d.notna().mean() > 0.8 and d.nunique() >= 6:
            return c, d
    return None, None


def _group_column(df, skip):
    # A small set of labels repeated over the dates: tickers, products, regions.
    cands = [c for c in df.columns if c != skip and not pd.api.types.is_numeric_dtype(df[c])
             and 2 <= df[c].nunique() <= 20 and df[c].notna().mean() > 0.8]
    named = [c for c in cands if any(w in str(c).lower() for w in _GROUP_WORDS)]
    return (named or cands or [None])[0]


def _main_columns(df, cols, n=3):
    def rank(c):
        name = str(c).lower()
        return next((i for i, w in enumerate(_MAIN_WORDS) if w in name), len(_MAIN_WORDS))
    chosen = []
    for c in sorted(cols, key=rank):
        # Skip a column that moves with one already chosen (Open/High/Low beside Close).
        if any(abs(df[c].corr(df[k])) > 0.95 for k in chosen):
            continue
        chosen.append(c)
        if len(chosen) == n:
            break
    return chosen


def _by_date(df, dates, cols, how):
    g = df[cols].groupby(dates)
    parts = [g[[c]].sum(min_count=1) if how[c] == "sum" else g[[c]].mean() for c in cols]
    return pd.concat(parts, axis=1).sort_index()


def _fmt(x):
    if pd.isna(x):
        return _L["na"]
    return f"{x:,.0f}" if abs(x) >= 1e5 else f"{x:,.2f}"


def _signed(x):
    return _L["na"] if pd.isna(x) else ("+" if x >= 0 else "-") + _fmt(abs(x))


def _pct(x):
    return _L["na"] if pd.isna(x) or not np.isfinite(x) else f"{x:+.2f}%"


# How dates are shown: as the data gives them (a monthly series by month, not month starts).
_SHOW = {"date": "%Y-%m-%d"}


def _day(t):
    return t.strftime(_SHOW["date"])


def _per_year(idx):
    # Observations a year, from the usual spacing of the dates (weekdays only: trading days).
    step = idx.to_series().diff().dt.days.median()
    if step <= 1.5:
        return 252 if (idx.dayofweek < 5).all() else 365
    return 52 if step <= 8 else 12 if step <= 32 else 4 if step <= 95 else 1


def _change(a, b):
    return (b / a - 1) * 100 if a else np.nan


def _volatility(s, n):
    if (s > 0).all():
        r = s.pct_change().dropna()
        return r.std() * 100, r.std() * np.sqrt(n) * 100
    return s.diff().dropna().std(), np.nan


def _label(c):
    zh = _L["_zh"] and _ZH_NAMES.get(str(c).strip().lower())
    return f"{zh}（{c}）" if zh else str(c)


def _long_series(df, tcol, dates):
    nums = [c for c in df.select_dtypes("number").columns if c != tcol
            and df[c].nunique() > 1 and not _re.match(r"unnamed|id$|序号", str(c), _re.I)]
    if not nums:
        return False
    gcol = _group_column(df, tcol)
    how = {c: "sum" if any(w in str(c).lower() for w in _SUM_WORDS) else "mean" for c in nums}
    ts = _by_date(df, dates, nums, how)
    cols = _main_columns(ts, nums)
    n = _per_year(ts.index)
    unit = _L[f"unit_{n}"]
    _SHOW["date"] = {1: "%Y", 4: "%Y-%m", 12: "%Y-%m"}.get(n, "%Y-%m-%d")
    yearly = (ts.index[-1] - ts.index[0]).days >= 730
    pu = _L["year"] if yearly else _L["month"]
    changes = None
    print(_L["head"].format(t=tcol, a=_day(ts.index[0]), b=_day(ts.index[-1]), n=len(ts)))
    if gcol is not None:
        names = df[gcol].value_counts().index.astype(str)
        print(_L["groups"].format(g=gcol, names=_L["sep"].join(names[:8]), n=len(names)))
    for c in cols:
        s = ts[c].dropna()
        if len(s) < 2:
            continue
        block = "block" if gcol is None else "sum_of" if how[c] == "sum" else "mean_of"
        print(_L[block].format(c=_label(c)))
        a, b = s.iloc[0], s.iloc[-1]
        print(_L["went"].format(a=_day(s.index[0]), b=_day(s.index[-1]), c=_label(c),
                                x=_fmt(a), y=_fmt(b), d=_signed(b - a), p=_pct(_change(a, b))))
        print(_L["extremes"].format(hi=_fmt(s.max()), hd=_day(s.idxmax()),
                                    lo=_fmt(s.min()), ld=_day(s.idxmin())))
        sd, ann = _volatility(s, n)
        if how[c] == "sum":
            # Volumes and sales are flows: the spread of the values, not a volatility.
            print(_L["spread"].format(u=unit, sd=_fmt(s.std()), cv=_pct(s.std() / s.mean() * 100)
                                      .lstrip("+")))
        elif np.isnan(ann):
            print(_L["vol_abs"].format(u=unit, sd=_fmt(sd)))
        else:
            print(_L["vol_pct"].format(u=unit, sd=f"{sd:.2f}%", ann=f"{ann:.2f}%", n=n))
        years = (s.index - s.index[0]).days.to_numpy() / 365.25
        slope, _ = np.polyfit(years, s.to_numpy(dtype=float), 1)
        r2 = np.corrcoef(years, s.to_numpy(dtype=float))[0, 1] ** 2
        grp = s.resample("YE" if yearly else "ME")
        per = pd.DataFrame({"mean": grp.mean(), "first": grp.first(), "last": grp.last(),
                            "count": grp.count()}).dropna()
        chg = per["last"].pct_change() * 100
        # The first period has no previous end: its change is from its first value, unless
        # it holds one value only (monthly data by month).
        if per["count"].iloc[0] > 1:
            chg.iloc[0] = _change(per["first"].iloc[0], per["last"].iloc[0])
        print(_L["trend"].format(slope=_signed(slope), rel=_pct(slope / s.mean() * 100),
                                 r2=f"{r2:.2f}", pu=pu, up=int((chg > 0).sum()), k=int(chg.notna().sum())))
        if c == cols[0] or len(per) <= 12:
            print(_L["by"].format(pu=pu))
            for t, row in per.iterrows():
                label = str(t.year) if yearly else t.strftime("%Y-%m")
                print(_L["period"].format(per=label, mean=_fmt(row["mean"]), pu=pu,
                                          last=_fmt(row["last"]), chg=_pct(chg[t])))
        if c == cols[0]:
            changes = chg
    main = cols[0]
    w = {252: 20, 365: 30, 52: 4, 12: 3, 4: 4, 1: 3}[n]
    fig, ax = plt.subplots(figsize=(9, 4))
    if gcol is not None:
        top = df[gcol].value_counts().index[:6]
        for g in top:
            part = df[df[gcol] == g]
            part.groupby(dates.loc[part.index])[main].mean().sort_index().plot(ax=ax, label=str(g),
                                                                            linewidth=1)
    else:
        ts[main].plot(ax=ax, label=_label(main), linewidth=1)
        if len(ts) > 2 * w:
            ts[main].rolling(w).mean().plot(ax=ax, label=_L[f"roll_{n}"], linewidth=2)
    ax.set_title(_L["line_title"].format(stem=_stem, c=_label(main)))
    ax.set_xlabel(_L["date"]); ax.set_ylabel(_label(main)); ax.legend()
    fig.tight_layout()
    if changes is not None:
        _bar_changes(changes, main, pu, yearly)
    if gcol is not None:
        _compare_groups(df, dates, gcol, main, n)
    return True


def _bar_changes(changes, main, pu, yearly):
    fig2, ax2 = plt.subplots(figsize=(8, 4))
    up, down = ("tab:red", "tab:green") if _L["_zh"] else ("tab:green", "tab:red")
    labels = [str(t.year) if yearly else t.strftime("%Y-%m") for t in changes.index]
    ax2.bar(labels, changes.to_numpy(), color=[up if v > 0 else down for v in changes])
    ax2.axhline(0, color="gray", linewidth=0.8)
    ax2.set_title(_L["bar_title"].format(stem=_stem, c=_label(main), pu=pu))
    ax2.set_xlabel(pu); ax2.set_ylabel(_L["change"])
    if not yearly:
        ax2.tick_params(axis="x", labelrotation=45)
    fig2.tight_layout()


def _compare_groups(df, dates, gcol, c, n):
    print(_L["compare"].format(g=gcol, c=_label(c)))
    total = {}
    for g in df[gcol].value_counts().index[:8]:
        part = df[df[gcol] == g]
        s = part.groupby(dates.loc[part.index])[c].mean().sort_index().dropna()
        if len(s) < 2:
            continue
        total[str(g)] = _change(s.iloc[0], s.iloc[-1])
        print(_L["group_line"].format(
            name=g, a=_day(s.index[0]), b=_day(s.index[-1]), x=_fmt(s.iloc[0]),
            y=_fmt(s.iloc[-1]), p=_pct(total[str(g)]), mean=_fmt(s.mean()), hi=_fmt(s.max()),
            hd=_day(s.idxmax()), ann=_pct(_volatility(s, n)[1]).lstrip("+")))
    if total:
        fig3, ax3 = plt.subplots(figsize=(7, 4))
        pd.Series(total).sort_values().plot.barh(ax=ax3)
        ax3.set_title(_L["group_title"].format(stem=_stem, g=gcol, c=_label(c)))
        ax3.set_xlabel(_L["change"])
        fig3.tight_layout()
"""


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
    labels = {**(LONG_LABELS_ZH if zh else LONG_LABELS_EN), "_zh": zh}
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
_L = {labels!r}
_ZH_NAMES = {COLUMN_NAMES_ZH!r}
{LONG_SERIES_CODE}
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
elif _tcol is not None and _long_series(_df, _tcol, _tdates):
    pass
else:
    _num = _df.select_dtypes("number")
    print("{t["summary"]}:")
    print(_num.describe().T.round(2).rename(index=lambda c: c[:40]).to_string())
    if _num.shape[1] >= 2:
        _c = _num.corr().round(2)
        print("{t["corr"]}:")
        print(_c.rename(index=lambda c: c[:24], columns=lambda c: c[:10]).to_string())
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
