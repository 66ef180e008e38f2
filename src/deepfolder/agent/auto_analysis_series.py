"""The long-format time-series analysis that ``auto_analysis`` sends into the sandbox.

This file is not imported by deepfolder: its text is read and run inside ``run_python``
after the table is loaded (see ``auto_analysis.analysis_code``), so it imports only
pandas, numpy and matplotlib, and every name starts with ``_`` so it does not clash with
what an agent later defines in the same session. It is a module so that it is linted.

A long series is a date column plus numeric columns (a daily price sheet: Date, Open,
High, Low, Close, Volume; monthly sales; a yearly GDP table), possibly with a group
column (ticker, product, region). Each main column is described by its kind:

- level (prices, index values, GDP: positive, not a rate): first → last value and change,
  extremes and their dates, the std of the period-to-period % change and its annualised
  value (volatility), the linear trend, and per period (year, or month under two years)
  the mean, the period-end value and its change against the previous period end;
- flow (volume, sales, amounts: they add up): the total and the mean per observation,
  extremes, the spread, the trend, and per period the sum and its change;
- signed (rates and changes, or values at or below zero): absolute changes only, since a
  percentage of a rate or of a value near zero means nothing.

With a group column, flows are summed over the groups, while levels and rates are compared
group by group (averaging the prices of different tickers would mean nothing).
The printed lines are sentences with their dates, so a sentence citing them can be
checked; lines of lower priority are dropped first so the output stays under the 2,000
characters the tool keeps as evidence text.
"""

import re as _re
import sys

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

_LABELS_ZH = {
    "lang": "zh",
    "head": "长表时间序列：日期列 {t}，{a} 至 {b}，{n} 个日期（已按日期排序）",
    "groups": "分组列 {g}：{names}（共 {n} 组）",
    "sep": "、",
    "block": "【{c}】",
    "sum_of": "【{c}】（各组合计）",
    "went": "{a} 至 {b}：{c}由 {x} 变为 {y}（{d}，{p}）",
    "went_abs": "{a} 至 {b}：{c}由 {x} 变为 {y}（{d}）",
    "total": "{a} 至 {b}：{c}合计 {sum}，{u}均 {mean}",
    "extremes": "最高 {hi} 于 {hd}；最低 {lo} 于 {ld}",
    "vol": "{u}变化率标准差 {sd}，年化波动率 {ann}（按每年 {n} 个观测）",
    "vol_1": "年变化率标准差 {sd}",
    "vol_0": "逐期变化率标准差 {sd}（日内数据，不做年化）",
    "spread": "{u}值标准差 {sd}（为均值的 {cv}）",
    "signed": "均值 {mean}；{u}变化量标准差 {sd}",
    "trend": "线性趋势：每年 {slope}（R²={r2}）；上升的{pu}份 {up}/{k}",
    "trend_0": "线性趋势：每天 {slope}（R²={r2}）",
    "by_level": "按{pu}（均值；{pu}末值；较上{pu}末变化，首{pu}较期初）：",
    "by_flow": "按{pu}（合计；较上{pu}变化）：",
    "by_signed": "按{pu}（均值；较上{pu}均值变化）：",
    "by_one": "按{pu}（数值；较上{pu}变化）：",
    "period_level": "  {per}：均值 {mean}；{pu}末 {last}；{chg}",
    "period_one": "  {per}：{last}；{chg}",
    "period_flow": "  {per}：合计 {sum}；{chg}{part}",
    "period_signed": "  {per}：均值 {mean}；{chg}",
    "partial": "（不完整：{k} 个观测）",
    "recent": "  （仅列最近 {k} 期）",
    "compare": "按 {g} 比较{c}：",
    "group_level": "  {name}：{a} 至 {b} 由 {x} 变为 {y}（{p}）；均值 {mean}；最高 {hi} 于 {hd}；"
    "年化波动率 {ann}",
    "group_signed": "  {name}：均值 {mean}；最高 {hi} 于 {hd}；最低 {lo} 于 {ld}",
    "group_periods": "  {name} 各{pu}变化：{changes}",
    "cut": "（其余明细从略）",
    "year": "年",
    "month": "月",
    "unit_252": "日",
    "unit_365": "日",
    "unit_52": "周",
    "unit_12": "月",
    "unit_4": "季",
    "unit_1": "年",
    "unit_0": "逐期",
    "roll_252": "20日移动平均",
    "roll_365": "30日移动平均",
    "roll_52": "4周移动平均",
    "roll_12": "3个月移动平均",
    "roll_4": "4个季度移动平均",
    "roll_1": "3年移动平均",
    "roll_0": "20期移动平均",
    "line_title": "{stem}：{c}走势",
    "bar_title": "{stem}：{c}各{pu}变化",
    "group_title": "{stem}：各{g}{c}全期变化（%）",
    "date": "日期",
    "change_pct": "变化（%）",
    "change": "变化",
    "na": "无",
}
_LABELS_EN = {
    "lang": "en",
    "head": "long-format time series: date column {t}, {a} to {b}, {n} dates (sorted by date)",
    "groups": "group column {g}: {names} ({n} groups)",
    "sep": ", ",
    "block": "== {c} ==",
    "sum_of": "== {c} (sum over groups) ==",
    "went": "{a} to {b}: {c} went from {x} to {y} ({d}, {p})",
    "went_abs": "{a} to {b}: {c} went from {x} to {y} ({d})",
    "total": "{a} to {b}: {c} total {sum}, {u} mean {mean}",
    "extremes": "high {hi} on {hd}; low {lo} on {ld}",
    "vol": "std of {u} % change {sd}; annualised volatility {ann} ({n} observations a year)",
    "vol_1": "std of yearly % change {sd}",
    "vol_0": "std of % change between observations {sd} (intraday data: not annualised)",
    "spread": "std of {u} values {sd} ({cv} of the mean)",
    "signed": "mean {mean}; std of {u} change {sd}",
    "trend": "linear trend: {slope} a year (R²={r2}); rising {pu}s {up}/{k}",
    "trend_0": "linear trend: {slope} a day (R²={r2})",
    "by_level": "by {pu} (mean; {pu}-end value; change vs previous {pu} end, first {pu} "
    "vs its start):",
    "by_flow": "by {pu} (total; change vs previous {pu}):",
    "by_signed": "by {pu} (mean; change vs previous {pu} mean):",
    "by_one": "by {pu} (value; change vs previous {pu}):",
    "period_level": "  {per}: mean {mean}; end {last}; {chg}",
    "period_one": "  {per}: {last}; {chg}",
    "period_flow": "  {per}: total {sum}; {chg}{part}",
    "period_signed": "  {per}: mean {mean}; {chg}",
    "partial": " (incomplete: {k} observations)",
    "recent": "  (the last {k} {pu}s only)",
    "compare": "{c} by {g}:",
    "group_level": "  {name}: {a} to {b} from {x} to {y} ({p}); mean {mean}; high {hi} on {hd}; "
    "annualised volatility {ann}",
    "group_signed": "  {name}: mean {mean}; high {hi} on {hd}; low {lo} on {ld}",
    "group_periods": "  {name} change by {pu}: {changes}",
    "cut": "(further detail left out)",
    "year": "year",
    "month": "month",
    "unit_252": "daily",
    "unit_365": "daily",
    "unit_52": "weekly",
    "unit_12": "monthly",
    "unit_4": "quarterly",
    "unit_1": "yearly",
    "unit_0": "per-observation",
    "roll_252": "20-day moving average",
    "roll_365": "30-day moving average",
    "roll_52": "4-week moving average",
    "roll_12": "3-month moving average",
    "roll_4": "4-quarter moving average",
    "roll_1": "3-year moving average",
    "roll_0": "20-observation moving average",
    "line_title": "{stem}: {c}",
    "bar_title": "{stem}: {c} change by {pu}",
    "group_title": "{stem}: {c} change over the period by {g} (%)",
    "date": "date",
    "change_pct": "change (%)",
    "change": "change",
    "na": "n/a",
}
# Chinese names for the usual English columns of a price sheet.
_ZH_NAMES = {
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
_DATE_NAME = _re.compile(r"date|time|day|month|year|period|week|日期|时间|日|月|年|期", _re.I)
# Dates that stamp a record rather than place it in a series (a survey's submission time,
# a birthday): such a table is described as an ordinary one.
_RECORD_DATE = _re.compile(r"timestamp|submi|created|updated|birth|提交|填写|答题|出生|生日", _re.I)
_DATE_TEXT = r"\s*(\d{4}[-/.年]\d{1,2}|\d{1,2}[-/.]\d{1,2}[-/.]\d{2,4})"
# Name fragments: the columns a reader cares about first; those that add up (flows); rates.
# fmt: off
_MAIN_WORDS = (
    "adj close", "close", "收盘", "price", "价", "value", "值", "index", "指数", "sales", "销售",
    "revenue", "收入", "amount", "金额", "total", "总",
)
_FLOW_WORDS = (
    "volume", "sales", "amount", "revenue", "count", "qty", "quantity", "turnover", "量", "额",
    "人数", "收入", "销售",
)
_RATE_WORDS = (
    "pct", "percent", "%", "return", "change", "growth", "yoy", "涨跌", "增速", "增长率", "变化率", "收益率",
    "同比", "环比",
)
_GROUP_WORDS = (
    "ticker", "symbol", "code", "name", "product", "region", "category", "group", "country",
    "city", "store", "股票", "代码", "名称", "产品", "地区", "区域", "类别", "品类", "省", "市", "国家",
)
# fmt: on
# Identifiers, even when they are numbers (stock codes): never a series, maybe a group.
_CODE_WORDS = ("code", "ticker", "symbol", "代码", "编号", "编码")
_OUTPUT_CHARS = 1900
_MAX_PERIODS = 24
_L: dict = {}
_SHOW = {"date": "%Y-%m-%d"}
_OUT: list = []


def _date_column(df):
    """(name, parsed dates) of the first date column, or (None, None). A date column is
    named like one or holds date-shaped text (or is a datetime column, or a "Year" column
    of whole years), and more than 80% of its values parse as dates."""
    for c in df.columns:
        s = df[c]
        named = bool(_DATE_NAME.search(str(c)))
        if _RECORD_DATE.search(str(c)):
            continue
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
                # 2018年1月2日 → 2018-1-2, which the parser reads.
                text = s.astype(str).str.replace(r"(\d)\s*[年月]\s*", r"\1-", regex=True)
                text = text.str.replace(r"(\d)\s*日", r"\1", regex=True).str.rstrip("-")
                d = pd.to_datetime(text.where(s.notna()), errors="coerce", format="mixed")
            if getattr(d.dt, "tz", None) is not None:
                d = d.dt.tz_localize(None)
        except (ValueError, TypeError, OverflowError):
            continue
        if d.notna().mean() > 0.8 and d.nunique() >= 6:
            return c, d
    return None, None


def _as_number(s):
    """A text column of numbers as exports write them: "1,234.5", "2.3M", "0.52%", "¥12",
    "3.1万"; NaN where a value is not a number."""
    t = s.astype(str).str.strip().str.replace(r"[,\s¥$€£%]", "", regex=True)
    scale = t.str[-1:].str.upper().map({"K": 1e3, "M": 1e6, "B": 1e9, "万": 1e4, "亿": 1e8})
    t = t.str.replace(r"[KMBkmb万亿]$", "", regex=True)
    return pd.to_numeric(t, errors="coerce") * scale.fillna(1)


def _say(text, prio=0):
    # prio 0 must stay; higher numbers are dropped first when the output is too long.
    _OUT.append((prio, text))


def _flush():
    lines = list(_OUT)
    _OUT.clear()
    cut = False

    def size():
        return sum(len(t) + 1 for _, t in lines)

    # Whole tables go first (a half table reads as if the data stopped), then, if that is
    # not enough, the last lines of the lowest-priority table left.
    while size() > _OUTPUT_CHARS and max(p for p, _ in lines) > 1:
        top = max(p for p, _ in lines)
        lines = [(p, t) for p, t in lines if p != top]
        cut = True
    while size() > _OUTPUT_CHARS and max(p for p, _ in lines) > 0:
        top = max(p for p, _ in lines)
        del lines[max(i for i, (p, _) in enumerate(lines) if p == top)]
        cut = True
    print("\n".join(_sentence(t) for _, t in lines))
    if cut:
        print(_L["cut"])


def _sentence(text):
    # Each line a full sentence: excerpts shown to the writing model lose their line breaks.
    if text.endswith(("：", ":", "】", "==")):
        return text
    return text + ("。" if _zh() else ".")


def _zh():
    return _L["lang"] == "zh"


def _fmt(x):
    if pd.isna(x):
        return _L["na"]
    return f"{x:,.0f}" if abs(x) >= 1e5 else f"{x:,.2f}"


def _signed(x):
    return _L["na"] if pd.isna(x) else ("+" if x >= 0 else "-") + _fmt(abs(x))


def _pct(x):
    return _L["na"] if pd.isna(x) or not np.isfinite(x) else f"{x:+.2f}%"


def _day(t):
    return t.strftime(_SHOW["date"])


def _per_label(t, yearly):
    return str(t.year) if yearly else t.strftime("%Y-%m")


def _label(c):
    zh = _zh() and _ZH_NAMES.get(str(c).strip().lower())
    return f"{zh}（{c}）" if zh else str(c)


def _lead(c):
    # "收盘价（Close）由…", but "temperature 由…": a space after a Latin name.
    label = _label(c)
    return label + " " if _zh() and label[-1].isascii() else label


def _change(a, b):
    return (b / a - 1) * 100 if a else np.nan


def _per_year(idx):
    # Observations a year, from the usual spacing of the dates (weekdays only: trading days);
    # 0 for intraday data, which is not annualised.
    step = idx.to_series().diff().dt.total_seconds().median() / 86400
    if step < 0.5:
        return 0
    if step <= 1.5:
        return 252 if (idx.day_of_week < 5).all() else 365
    return 52 if step <= 8 else 12 if step <= 32 else 4 if step <= 95 else 1


def _kind(c, s):
    name = str(c).lower()
    if any(w in name for w in _RATE_WORDS) or (s <= 0).any() or s.min() < s.abs().max() * 1e-3:
        return "signed"
    return "flow" if any(w in name for w in _FLOW_WORDS) else "level"


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


def _volatility(s, n):
    """Std of the period-to-period % change, and that annualised (in %)."""
    r = s.pct_change().dropna()
    return r.std() * 100, r.std() * np.sqrt(n) * 100


def _periods(s, kind, yearly):
    """Per year (or month): the summary that fits the kind, and the change from the
    previous period (% for levels and flows, absolute for signed values)."""
    g = s.resample("YE" if yearly else "ME")
    per = pd.DataFrame({"mean": g.mean(), "last": g.last(), "sum": g.sum(), "count": g.count()})
    per = per[per["count"] > 0]
    if kind == "level":
        chg = per["last"].pct_change() * 100
        # The first period has no previous end: its change runs from its first value.
        if per["count"].iloc[0] > 1:
            chg.iloc[0] = _change(g.first().loc[per.index[0]], per["last"].iloc[0])
    elif kind == "flow":
        chg = per["sum"].pct_change() * 100
    else:
        chg = per["mean"].diff()
    return per, chg


def _series_block(s, c, kind, n, yearly, prio):
    """The figures of one main column; returns its period changes (for the bar chart)."""
    unit, pu = _L[f"unit_{n}"], _L["year" if yearly else "month"]
    a, b = _day(s.index[0]), _day(s.index[-1])
    x, y = s.iloc[0], s.iloc[-1]
    # A day's volume against another day's says little; a month's sales against another's do.
    if kind == "level" or (kind == "flow" and n <= 52):
        p = _pct(_change(x, y))
        _say(_L["went"].format(a=a, b=b, c=_lead(c), x=_fmt(x), y=_fmt(y), d=_signed(y - x), p=p))
    if kind == "flow":
        _say(
            _L["total"].format(a=a, b=b, c=_lead(c), sum=_fmt(s.sum()), u=unit, mean=_fmt(s.mean()))
        )
    if kind == "signed":
        _say(_L["went_abs"].format(a=a, b=b, c=_lead(c), x=_fmt(x), y=_fmt(y), d=_signed(y - x)))
    hi, lo = _day(s.idxmax()), _day(s.idxmin())
    _say(_L["extremes"].format(hi=_fmt(s.max()), hd=hi, lo=_fmt(s.min()), ld=lo))
    if kind == "level":
        sd, ann = _volatility(s, n)
        text = _L["vol_1"] if n == 1 else _L["vol_0"] if n == 0 else _L["vol"]
        _say(text.format(u=unit, sd=f"{sd:.2f}%", ann=f"{ann:.2f}%", n=n))
    elif kind == "flow":
        _say(_L["spread"].format(u=unit, sd=_fmt(s.std()), cv=f"{s.std() / s.mean() * 100:.2f}%"))
    else:
        _say(_L["signed"].format(mean=_fmt(s.mean()), u=unit, sd=_fmt(s.diff().std())))
    years = (s.index - s.index[0]).total_seconds().to_numpy() / (365.25 * 86400)
    values = s.to_numpy(dtype=float)
    slope = np.polyfit(years, values, 1)[0]
    r2 = np.corrcoef(years, values)[0, 1] ** 2
    per, chg = _periods(s, kind, yearly)
    up, k = int((chg > 0).sum()), int(chg.notna().sum())
    if n == 0:  # intraday: a slope a year would be an extrapolation
        _say(_L["trend_0"].format(slope=_signed(slope / 365.25), r2=f"{r2:.2f}"))
    else:
        _say(_L["trend"].format(slope=_signed(slope), r2=f"{r2:.2f}", pu=pu, up=up, k=k))
    one = kind == "level" and per["count"].max() == 1
    _say(_L["by_one" if one else f"by_{kind}"].format(pu=pu), prio)
    show = _pct if kind != "signed" else _signed
    usual = per["count"].median()
    if len(per) > _MAX_PERIODS:
        _say(_L["recent"].format(k=_MAX_PERIODS, pu=pu), prio)
    for t, row in per.tail(_MAX_PERIODS).iterrows():
        per_label, change = _per_label(t, yearly), show(chg[t])
        if kind == "flow":
            part = _L["partial"].format(k=int(row["count"])) if row["count"] < 0.8 * usual else ""
            line = _L["period_flow"].format(
                per=per_label, sum=_fmt(row["sum"]), chg=change, part=part
            )
        elif kind == "signed":
            line = _L["period_signed"].format(per=per_label, mean=_fmt(row["mean"]), chg=change)
        elif one:
            line = _L["period_one"].format(per=per_label, last=_fmt(row["last"]), chg=change)
        else:
            line = _L["period_level"].format(
                per=per_label, mean=_fmt(row["mean"]), pu=pu, last=_fmt(row["last"]), chg=change
            )
        _say(line, prio)
    return chg


def _group_block(df, dates, gcol, c, kind, n, yearly, groups):
    """Each group's own figures for a level or signed column; returns the groups' period
    changes and whole-period changes (levels only) for the charts."""
    _say(_L["compare"].format(g=gcol, c=_label(c)), 1)
    changes, totals = {}, {}
    for g in groups:
        part = df[df[gcol] == g]
        s = part.groupby(dates.loc[part.index])[c].mean().sort_index().dropna()
        if len(s) < 2:
            continue
        hi, lo = _day(s.idxmax()), _day(s.idxmin())
        if kind == "level":
            line = _L["group_level"].format(
                name=g,
                a=_day(s.index[0]),
                b=_day(s.index[-1]),
                x=_fmt(s.iloc[0]),
                y=_fmt(s.iloc[-1]),
                p=_pct(_change(s.iloc[0], s.iloc[-1])),
                mean=_fmt(s.mean()),
                hi=_fmt(s.max()),
                hd=hi,
                ann=f"{_volatility(s, n)[1]:.2f}%",
            )
            changes[str(g)] = _periods(s, kind, yearly)[1]
            totals[str(g)] = _change(s.iloc[0], s.iloc[-1])
        else:
            line = _L["group_signed"].format(
                name=g, mean=_fmt(s.mean()), hi=_fmt(s.max()), hd=hi, lo=_fmt(s.min()), ld=lo
            )
        _say(line, 1)
    return changes, totals


def _line_chart(df, dates, ts, gcol, groups, c, n, stem):
    fig, ax = plt.subplots(figsize=(9, 4))
    if gcol is not None:
        for g in groups:
            part = df[df[gcol] == g]
            s = part.groupby(dates.loc[part.index])[c].mean().sort_index()
            s.plot(ax=ax, label=str(g), linewidth=1)
    else:
        ts[c].plot(ax=ax, label=_label(c), linewidth=1)
        window = {0: 20, 252: 20, 365: 30, 52: 4, 12: 3, 4: 4, 1: 3}[n]
        if ts[c].count() > 2 * window:
            ts[c].rolling(window).mean().plot(ax=ax, label=_L[f"roll_{n}"], linewidth=2)
    ax.set_title(_L["line_title"].format(stem=stem, c=_label(c)))
    ax.set_xlabel(_L["date"])
    ax.set_ylabel(_label(c))
    ax.legend()
    fig.tight_layout()


def _bar_chart(changes, c, kind, yearly, stem):
    """Bars of the period changes: one series, or one bar per group and period."""
    pu = _L["year" if yearly else "month"]
    frame = changes if isinstance(changes, pd.DataFrame) else changes.to_frame(_label(c))
    frame = frame.dropna(how="all")
    if frame.empty:
        return
    frame.index = [_per_label(t, yearly) for t in frame.index]
    fig, ax = plt.subplots(figsize=(8, 4))
    if frame.shape[1] == 1:
        # Red for a rise in Chinese reports (the market's convention there), green elsewhere.
        up, down = ("tab:red", "tab:green") if _zh() else ("tab:green", "tab:red")
        values = frame.iloc[:, 0].fillna(0)
        ax.bar(frame.index, values, color=[up if v > 0 else down for v in values])
    else:
        frame.plot.bar(ax=ax, rot=0)
    ax.axhline(0, color="gray", linewidth=0.8)
    ax.set_title(_L["bar_title"].format(stem=stem, c=_label(c), pu=pu))
    ax.set_xlabel(pu)
    ax.set_ylabel(_L["change" if kind == "signed" else "change_pct"])
    if not yearly:
        ax.tick_params(axis="x", labelrotation=45)
    fig.tight_layout()


def _group_bars(totals, gcol, c, stem):
    fig, ax = plt.subplots(figsize=(7, 4))
    pd.Series(totals).sort_values().plot.barh(ax=ax)
    ax.set_title(_L["group_title"].format(stem=stem, g=gcol, c=_label(c)))
    ax.set_xlabel(_L["change_pct"])
    fig.tight_layout()


def _group_column(df, skip):
    # A small set of labels repeated over the dates: tickers, products, regions.
    cands = [
        c
        for c in df.columns
        if c != skip
        and (
            not pd.api.types.is_numeric_dtype(df[c])
            or any(w in str(c).lower() for w in _CODE_WORDS)
        )
        and 2 <= df[c].nunique() <= 20
        and df[c].notna().mean() > 0.8
    ]
    named = [c for c in cands if any(w in str(c).lower() for w in _GROUP_WORDS)]
    return (named or cands or [None])[0]


def _long_series(df, tcol, dates, stem, zh):
    """Print the figures and draw the charts of a long series; False when the table has
    no numeric column to follow over time, or the analysis failed (the caller then
    describes the table as an ordinary one, so the run still gets figures)."""
    _L.clear()
    _L.update(_LABELS_ZH if zh else _LABELS_EN)
    try:
        return _describe_series(df, tcol, dates, stem)
    except Exception as e:  # an odd table must not cost the run its analysis
        _OUT.clear()
        plt.close("all")
        print(f"long-series analysis of {stem} failed ({type(e).__name__}: {e})", file=sys.stderr)
        return False


def _describe_series(df, tcol, dates, stem):
    df = df.copy()
    for c in df.columns:
        if c != tcol and not pd.api.types.is_numeric_dtype(df[c]) and df[c].notna().any():
            v = _as_number(df[c])
            if v.notna().sum() >= 0.9 * df[c].notna().sum():
                df[c] = v
    nums = [
        c
        for c in df.select_dtypes("number").columns
        if c != tcol
        and df[c].nunique() > 1
        and not _re.match(r"unnamed|id$|序号", str(c), _re.I)
        and not any(w in str(c).lower() for w in _CODE_WORDS)
    ]
    if not nums:
        return False
    gcol = _group_column(df, tcol)
    kinds = {c: _kind(c, df[c].dropna()) for c in nums}
    g = df[nums].groupby(dates)
    # One value per date: flows add up over rows of the same date, the rest average.
    ts = pd.concat(
        [g[[c]].sum(min_count=1) if kinds[c] == "flow" else g[[c]].mean() for c in nums], axis=1
    ).sort_index()
    cols = _main_columns(ts, nums)
    main = cols[0]
    n = _per_year(ts.index)
    yearly = (ts.index[-1] - ts.index[0]).days >= 730
    _SHOW["date"] = {0: "%Y-%m-%d %H:%M", 1: "%Y", 4: "%Y-%m", 12: "%Y-%m"}.get(n, "%Y-%m-%d")
    _say(_L["head"].format(t=tcol, a=_day(ts.index[0]), b=_day(ts.index[-1]), n=len(ts)))
    groups = []
    if gcol is not None:
        # The groups with the most rows first; among equals, the largest by the main column.
        order = pd.DataFrame(
            {"rows": df[gcol].value_counts(), "size": df.groupby(gcol)[main].mean()}
        )
        counts = order.sort_values(["rows", "size"], ascending=False)["rows"]
        groups = list(counts.index[:6])
        names = _L["sep"].join(str(x) for x in counts.index[:8])
        _say(_L["groups"].format(g=gcol, names=names, n=len(counts)))
    bars, totals = None, None
    for i, c in enumerate(cols):
        if gcol is not None and kinds[c] != "flow":
            changes, group_totals = _group_block(df, dates, gcol, c, kinds[c], n, yearly, groups)
            if c == main and changes:
                bars, totals = pd.DataFrame(changes), group_totals
                pu = _L["year" if yearly else "month"]
                for name, chg in changes.items():
                    text = _L["sep"].join(
                        f"{_per_label(t, yearly)} {_pct(v)}" for t, v in chg.dropna().items()
                    )
                    _say(_L["group_periods"].format(name=name, pu=pu, changes=text), 4)
            continue
        s = ts[c].dropna()
        if len(s) < 2:
            continue
        _say(_L["block" if gcol is None else "sum_of"].format(c=_label(c)))
        chg = _series_block(s, c, kinds[c], n, yearly, 1 + i)
        if c == main:
            bars = chg
    _flush()
    _line_chart(df, dates, ts, gcol, groups, main, n, stem)
    if bars is not None:
        _bar_chart(bars, main, kinds[main], yearly, stem)
    if totals:
        _group_bars(totals, gcol, main, stem)
    return True
