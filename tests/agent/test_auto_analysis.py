"""The pipeline's fixed analysis of a table, run through the real run_python tool: the
printed figures are checked against the same figures computed here with pandas."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from deepfolder.agent.auto_analysis import analysis_code, is_table
from deepfolder.analysis import SandboxLimits
from deepfolder.records import Evidence
from deepfolder.settings import Settings
from deepfolder.tools.base import ToolContext, ToolOutput
from deepfolder.tools.python import EVIDENCE_TEXT_CHARS, run_python

DATA = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "cases"

Analyse = Callable[[Path, str, str], ToolOutput]


class NoIndex:
    """The part of the Index protocol run_python touches (its status line)."""

    def sources(self) -> list[object]:
        return []

    def count(self) -> int:
        return 0


@pytest.fixture
def analyse(tmp_path: Path) -> Iterator[Analyse]:
    """Run analysis_code(rel, language) on a folder, as the pipeline does."""
    contexts: list[ToolContext] = []

    def run(folder: Path, rel: str, language: str) -> ToolOutput:
        ctx = ToolContext(
            index=NoIndex(),  # type: ignore[arg-type]
            settings=Settings(),
            folder=folder,
            run_dir=tmp_path / f"run{len(contexts)}",
            data_files=[rel],
            language=language,
            sandbox_limits=SandboxLimits(wall_s=60, cpu_s=60, memory_mb=2048),
        )
        contexts.append(ctx)
        out = run_python(ctx, {"code": analysis_code(rel, language)})
        assert not out.is_error, out.text
        return out

    yield run
    for ctx in contexts:
        if ctx.sandbox is not None:
            ctx.sandbox.close()


def price_sheet(seed: int = 7, start: float = 100.0) -> pd.DataFrame:
    """1,258 trading days of 2018–2023 (business days with random holidays), a random walk
    with an upward drift, as a price download looks: Date, Open, High, Low, Close, Volume."""
    rng = np.random.default_rng(seed)
    days = pd.bdate_range("2018-01-02", "2023-12-29")
    holidays = rng.choice(np.arange(1, len(days) - 1), len(days) - 1258, replace=False)
    days = days.delete(holidays)
    close = start * np.exp(np.cumsum(rng.normal(0.0006, 0.016, len(days))))
    open_ = np.concatenate([[start], close[:-1]]) * (1 + rng.normal(0, 0.004, len(days)))
    high = np.maximum(open_, close) * (1 + np.abs(rng.normal(0, 0.006, len(days))))
    low = np.minimum(open_, close) * (1 - np.abs(rng.normal(0, 0.006, len(days))))
    return pd.DataFrame(
        {
            "Date": days,
            "Open": open_.round(2),
            "High": high.round(2),
            "Low": low.round(2),
            "Close": close.round(2),
            "Volume": rng.integers(800_000, 5_000_000, len(days)),
        }
    )


def number(text: str) -> float:
    return float(text.replace(",", "").rstrip("%"))


def analysis_text(out: ToolOutput) -> str:
    [ev] = [e for e in out.evidence if e.source.kind == "analysis"]
    return ev.segment.text


def figures(out: ToolOutput) -> list[Evidence]:
    return [e for e in out.evidence if e.source.kind == "figure"]


def check_close_figures(text: str, sheet: pd.DataFrame, label: str) -> None:
    """The printed Close figures equal those computed independently with pandas."""
    s = sheet.sort_values("Date").set_index("Date")["Close"]
    first, last = s.iloc[0], s.iloc[-1]
    went = re.search(
        rf"(\d{{4}}-\d\d-\d\d) (?:至|to) (\d{{4}}-\d\d-\d\d)(?:：|: ){re.escape(label)} ?"
        r"(?:由|went from) ([\d,.]+) (?:变为|to) ([\d,.]+)\s?[（(]([-+\d,.]+)[，,] ?([-+\d.]+)%",
        text,
    )
    assert went, text
    assert went[1] == f"{s.index[0]:%Y-%m-%d}" and went[2] == "2023-12-29"
    assert number(went[3]) == pytest.approx(first, abs=0.006)
    assert number(went[4]) == pytest.approx(last, abs=0.006)
    assert number(went[5]) == pytest.approx(last - first, abs=0.006)
    assert number(went[6]) == pytest.approx((last / first - 1) * 100, abs=0.006)

    hi = re.search(r"(?:最高|high) ([\d,.]+) (?:于|on) (\d{4}-\d\d-\d\d)", text)
    lo = re.search(r"(?:最低|low) ([\d,.]+) (?:于|on) (\d{4}-\d\d-\d\d)", text)
    assert hi and lo, text
    assert number(hi[1]) == pytest.approx(s.max(), abs=0.006)
    assert hi[2] == f"{s.idxmax():%Y-%m-%d}"
    assert number(lo[1]) == pytest.approx(s.min(), abs=0.006)
    assert lo[2] == f"{s.idxmin():%Y-%m-%d}"

    returns = s.pct_change().dropna()
    vol = re.search(r"(?:年化波动率|annualised volatility) ([\d.]+)%", text)
    assert vol, text
    assert number(vol[1]) == pytest.approx(returns.std() * np.sqrt(252) * 100, abs=0.006)

    year_end = s.groupby(s.index.year).last()
    yearly = year_end.pct_change() * 100
    for year in (2019, 2021, 2023):
        line = re.search(rf"{year}(?:：|: )(?:均值|mean) ([\d,.]+)[；;] ?.*?([-+\d.]+)%", text)
        assert line, (year, text)
        assert number(line[1]) == pytest.approx(s[str(year)].mean(), abs=0.006)
        assert number(line[2]) == pytest.approx(yearly[year], abs=0.006)


def test_daily_price_csv_gets_period_change_extremes_volatility_and_charts(
    tmp_path: Path, analyse: Analyse
) -> None:
    folder = tmp_path / "folder"
    folder.mkdir()
    sheet = price_sheet()
    # Newest first, as many price downloads are: the analysis must sort by date.
    sheet.iloc[::-1].to_csv(folder / "prices.csv", index=False, date_format="%Y-%m-%d")
    out = analyse(folder, "prices.csv", "zh")
    text = analysis_text(out)
    assert len(text) < EVIDENCE_TEXT_CHARS, "every figure must survive as evidence text"
    assert "长表时间序列：日期列 Date" in text and "1258 个日期" in text
    check_close_figures(text, sheet, "收盘价（Close）")
    assert "【成交量（Volume）】" in text  # the volume series, not Open/High/Low (= Close)
    assert "【开盘价（Open）】" not in text
    volume = sheet.set_index("Date")["Volume"]
    # Volume is a flow: its total and yearly sums, not a first-to-last change.
    assert f"成交量（Volume）合计 {volume.sum():,.0f}，日均 {volume.mean():,.0f}" in text
    sums = volume.groupby(volume.index.year).sum()
    assert f"2022：合计 {sums[2022]:,.0f}；{(sums[2022] / sums[2021] - 1) * 100:+.2f}%" in text
    trend = re.search(r"线性趋势：每年 ([-+\d,.]+)", text)
    s = sheet.set_index("Date")["Close"]
    years = (s.index - s.index[0]).days.to_numpy() / 365.25
    assert trend and number(trend[1]) == pytest.approx(np.polyfit(years, s, 1)[0], abs=0.006)
    charts = figures(out)
    titles = [e.source.title for e in charts]
    assert titles == ["prices：收盘价（Close）走势", "prices：收盘价（Close）各年变化"]
    assert "20日移动平均" in charts[0].segment.text
    [table] = [e for e in out.evidence if e.source.kind == "analysis"]
    assert table.source.title == "数据分析：prices.csv"


def test_daily_price_xlsx_in_english(tmp_path: Path, analyse: Analyse) -> None:
    folder = tmp_path / "folder"
    folder.mkdir()
    sheet = price_sheet(seed=11, start=40.0)
    sheet.to_excel(folder / "prices.xlsx", index=False)
    out = analyse(folder, "prices.xlsx", "en")
    text = analysis_text(out)
    assert "long-format time series: date column Date" in text
    check_close_figures(text, sheet, "Close")
    assert [e.source.title for e in figures(out)] == [
        "prices: Close",
        "prices: Close change by year",
    ]


def test_exported_text_numbers_and_chinese_dates(tmp_path: Path, analyse: Analyse) -> None:
    """A sheet as Chinese quote sites export it: 2018年1月2日, "1,234.50", "283.5万", "0.52%"."""
    folder = tmp_path / "folder"
    folder.mkdir()
    sheet = price_sheet(seed=5, start=1200.0)
    export = pd.DataFrame(
        {
            "日期": [f"{d.year}年{d.month}月{d.day}日" for d in sheet["Date"]],
            "收盘": [f"{v:,.2f}" for v in sheet["Close"]],
            "成交量": [f"{v / 1e4:.2f}万" for v in sheet["Volume"]],
            "涨跌幅": [f"{v:.2f}%" for v in sheet["Close"].pct_change().fillna(0) * 100],
        }
    )
    export.to_csv(folder / "行情.csv", index=False)
    out = analyse(folder, "行情.csv", "zh")
    text = analysis_text(out)
    assert "长表时间序列：日期列 日期，2018-01-02 至 2023-12-29" in text
    check_close_figures(text, sheet, "收盘")
    volume = (sheet["Volume"] / 1e4).round(2) * 1e4
    assert f"成交量合计 {volume.sum():,.0f}" in text
    # a rate changes in points, not in per cent of itself
    assert re.search(r"：涨跌幅由 [-\d.]+ 变为 [-\d.]+（[-+\d.]+）。\n", text), text


def test_groups_are_compared_group_by_group(tmp_path: Path, analyse: Analyse) -> None:
    folder = tmp_path / "folder"
    folder.mkdir()
    a, b = price_sheet(seed=1), price_sheet(seed=2, start=30.0)
    both = pd.concat([a.assign(Ticker="AAA"), b.assign(Ticker="BBB")]).sort_values("Date")
    both[["Date", "Ticker", "Close", "Volume"]].to_csv(folder / "stocks.csv", index=False)
    out = analyse(folder, "stocks.csv", "zh")
    text = analysis_text(out)
    assert "分组列 Ticker：" in text and "（共 2 组）" in text
    # Prices of different tickers are not averaged; volumes add up over the tickers.
    assert "【收盘价（Close）】" not in text and "【成交量（Volume）】（各组合计）" in text
    volume = both.groupby("Date")["Volume"].sum()
    assert f"成交量（Volume）合计 {volume.sum():,.0f}" in text
    for name, sheet in (("AAA", a), ("BBB", b)):
        s = sheet.set_index("Date")["Close"]
        line = re.search(
            rf"{name}：\S+ 至 \S+ 由 ([\d,.]+) 变为 ([\d,.]+)（([-+\d.]+)%）.*?最高 ([\d,.]+) 于 (\S+)；",
            text,
        )
        assert line, text
        assert number(line[3]) == pytest.approx((s.iloc[-1] / s.iloc[0] - 1) * 100, abs=0.006)
        assert number(line[4]) == pytest.approx(s.max(), abs=0.006)
        assert line[5] == f"{s.idxmax():%Y-%m-%d}"
        year_end = s.groupby(s.index.year).last()
        assert f"2021 {(year_end[2021] / year_end[2020] - 1) * 100:+.2f}%" in text
    titles = [e.source.title for e in figures(out)]
    assert titles == [
        "stocks：收盘价（Close）走势",
        "stocks：收盘价（Close）各年变化",
        "stocks：各Ticker收盘价（Close）全期变化（%）",
    ]


def test_short_monthly_sales_series_is_analysed_by_month(tmp_path: Path, analyse: Analyse) -> None:
    folder = tmp_path / "folder"
    folder.mkdir()
    months = pd.date_range("2023-01-01", periods=18, freq="MS")
    sales = pd.DataFrame({"月份": months.strftime("%Y-%m"), "销售额": np.arange(100, 118) * 10})
    sales.to_csv(folder / "sales.csv", index=False)
    text = analysis_text(analyse(folder, "sales.csv", "zh"))
    assert "2023-01 至 2024-06：销售额由 1,000.00 变为 1,170.00（+170.00，+17.00%）" in text
    assert "2023-01 至 2024-06：销售额合计 19,530.00，月均 1,085.00" in text
    assert "按月（合计" in text and "2024-06：合计 1,170.00；+0.86%" in text
    assert "2023-01：合计 1,000.00；无" in text  # no previous month
    assert "上升的月份 17/17" in text
    values = sales["销售额"]
    spread = f"月值标准差 {values.std():.2f}（为均值的 {values.std() / values.mean() * 100:.2f}%）"
    assert spread in text  # sales are a flow: their spread, not a volatility


def test_long_output_keeps_the_headlines_within_the_evidence_text(
    tmp_path: Path, analyse: Analyse
) -> None:
    """64 years x 3 series print more than the tool keeps: the per-year detail of the later
    series goes first, the headline figures stay."""
    folder = tmp_path / "folder"
    folder.mkdir()
    years = np.arange(1960, 2024)
    table = pd.DataFrame(
        {
            "年份": years,
            "GDP": (100 * 1.07 ** (years - 1960)).round(1),
            "人口": (6.6 + 0.1 * (years - 1960)).round(2),
            "增速": np.random.default_rng(3).normal(7, 2, len(years)).round(1),
        }
    )
    table.to_csv(folder / "gdp.csv", index=False)
    text = analysis_text(analyse(folder, "gdp.csv", "zh"))
    assert len(text) < EVIDENCE_TEXT_CHARS
    gdp = table.set_index("年份")["GDP"]
    assert f"1960 至 2023：GDP 由 {gdp[1960]:,.2f} 变为 {gdp[2023]:,.2f}" in text
    assert f"2023：{gdp[2023]:,.2f}；{(gdp[2023] / gdp[2022] - 1) * 100:+.2f}%" in text
    assert "【人口】" in text and "【增速】" in text and "均值 " in text
    assert text.rstrip().endswith("（其余明细从略）")


def test_intraday_prices_are_not_annualised(tmp_path: Path, analyse: Analyse) -> None:
    folder = tmp_path / "folder"
    folder.mkdir()
    minutes = pd.date_range("2024-03-01 09:30", periods=240, freq="min")
    price = (100 + np.cumsum(np.random.default_rng(4).normal(0, 0.1, 240))).round(2)
    ticks = pd.DataFrame({"time": minutes.strftime("%Y-%m-%d %H:%M"), "price": price})
    ticks.to_csv(folder / "ticks.csv", index=False)
    text = analysis_text(analyse(folder, "ticks.csv", "en"))
    s = ticks.set_index(minutes)["price"]
    assert f"high {s.max():,.2f} on {s.idxmax():%Y-%m-%d %H:%M}" in text
    std = s.pct_change().std() * 100
    assert f"std of % change between observations {std:.2f}% (intraday data" in text
    assert "annualised volatility" not in text and " a day (R²=" in text


def test_ordinary_table_keeps_its_branch(tmp_path: Path, analyse: Analyse) -> None:
    """Two months are not a time series: summary statistics and group means as before."""
    folder = tmp_path / "folder"
    folder.mkdir()
    (folder / "sales.csv").write_text(
        "month,region,sales,visits\n2024-01,华东,120,30\n2024-02,华东,135,33\n"
        "2024-01,华南,90,25\n2024-02,华南,101,28\n",
        encoding="utf-8",
    )
    text = analysis_text(analyse(folder, "sales.csv", "zh"))
    assert "描述统计" in text and "相关系数" in text and "长表时间序列" not in text


def test_survey_with_submission_times_is_an_ordinary_table(
    tmp_path: Path, analyse: Analyse
) -> None:
    """A form export stamps each answer with its time; the answers are not a time series."""
    folder = tmp_path / "folder"
    folder.mkdir()
    rng = np.random.default_rng(9)
    times = pd.Timestamp("2024-05-01 08:00") + pd.to_timedelta(
        np.sort(rng.uniform(0, 9e5, 60)), "s"
    )
    survey = pd.DataFrame(
        {
            "Timestamp": times.strftime("%Y/%m/%d %H:%M:%S"),
            "Sleep quality": rng.integers(1, 6, 60),
            "Stress level": rng.integers(1, 6, 60),
        }
    )
    survey.to_csv(folder / "survey.csv", index=False)
    text = analysis_text(analyse(folder, "survey.csv", "en"))
    assert "summary statistics" in text and "long-format" not in text


def test_is_table() -> None:
    assert is_table("data/prices.xlsx") and is_table("a.csv")
    assert not is_table("long_context_sampled_32k.json") and not is_table("report.pdf")


@pytest.mark.data
@pytest.mark.skipif(not (DATA / "008").is_dir(), reason="../shared/data/cases/008 is absent")
def test_case_008_wide_series_keeps_its_branch(analyse: Analyse) -> None:
    out = analyse(DATA / "008", "time_series_covid19_confirmed_global.csv", "zh")
    text = analysis_text(out)
    assert "时间范围: 2020-01-22" in text and "每月新增" in text and "最新值前10位" in text
    assert "长表时间序列" not in text
    assert len(figures(out)) == 2


@pytest.mark.data
@pytest.mark.skipif(not (DATA / "009").is_dir(), reason="../shared/data/cases/009 is absent")
def test_case_009_survey_table_keeps_its_branch(analyse: Analyse) -> None:
    out = analyse(DATA / "009", "Student Stress Factors.csv", "zh")
    text = analysis_text(out)
    assert "描述统计" in text and "相关系数" in text and "分组均值" in text
    assert "长表时间序列" not in text
    assert len(figures(out)) == 2


def test_correlations_are_sentences_that_name_both_columns(
    tmp_path: Path, analyse: Analyse
) -> None:
    """Case 009: the correlation matrix, its headers cut to ten characters, was misread
    by the small model and cut off by the evidence limit; each correlation with the last
    column (the outcome, e.g. a stress rating) is now a sentence naming both columns,
    checked here against pandas."""
    folder = tmp_path / "folder"
    folder.mkdir()
    rng = np.random.default_rng(3)
    sleep = rng.integers(1, 6, 120)
    load = rng.integers(1, 6, 120)
    stress = np.clip(6 - sleep + rng.integers(-1, 2, 120), 1, 5)
    df = pd.DataFrame(
        {"Kindly Rate your Sleep Quality": sleep, "How would you rate your study load?": load}
    )
    df["How would you rate your stress levels?"] = stress
    df.to_csv(folder / "stress.csv", index=False)
    text = analysis_text(analyse(folder, "stress.csv", "zh"))
    r = df.corr().round(2).loc["Kindly Rate your Sleep Quality", df.columns[-1]]
    assert r < -0.5
    line = (
        f"Kindly Rate your Sleep Quality 与 How would you rate your stress levels? "
        f"的相关系数 r = {r:+.2f}（强负相关）"
    )
    assert line in text, text
    english = analysis_text(analyse(folder, "stress.csv", "en"))
    assert (
        f"Kindly Rate your Sleep Quality and How would you rate your stress levels?: r = {r:+.2f} (strong negative)"
        in english
    )
