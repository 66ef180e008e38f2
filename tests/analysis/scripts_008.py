"""Code cells a scripted fake model sends to ``run_python`` for case 008 (COVID-19).

The two CSVs are JHU CSSE time series in wide form: one row per country/province,
columns ``Province/State, Country/Region, Lat, Long`` then one cumulative column per day
(``1/22/20`` … ``3/9/23``). The cells aggregate provinces to countries, melt the date
columns into a time series, and draw three charts with Chinese titles and labels.
"""

from __future__ import annotations

CONFIRMED = "time_series_covid19_confirmed_global.csv"
DEATHS = "time_series_covid19_deaths_global.csv"


def demo_analysis_script_008() -> list[str]:
    """Cells: load + top countries table, global trend chart, deaths / case-fatality chart."""
    load_and_rank = f"""\
# 各国累计确诊与死亡（截至数据最后一天）
confirmed = pd.read_csv("{CONFIRMED}")
deaths = pd.read_csv("{DEATHS}")
meta_cols = ("Province/State", "Country/Region", "Lat", "Long")
date_cols = [c for c in confirmed.columns if c not in meta_cols]
dates = pd.to_datetime(date_cols, format="%m/%d/%y")
by_country_c = confirmed.groupby("Country/Region")[date_cols].sum()
by_country_d = deaths.groupby("Country/Region")[date_cols].sum()
last = date_cols[-1]
top = pd.DataFrame({{
    "累计确诊": by_country_c[last],
    "累计死亡": by_country_d[last],
}}).sort_values("累计确诊", ascending=False).head(10)
top["病死率%"] = (top["累计死亡"] / top["累计确诊"] * 100).round(2)
global_c = by_country_c.sum()
global_d = by_country_d.sum()
print("数据截至", dates[-1].date(), "; 国家/地区数", len(by_country_c))
print("全球累计确诊", int(global_c.iloc[-1]), "; 全球累计死亡", int(global_d.iloc[-1]),
      "; 全球病死率% ", round(global_d.iloc[-1] / global_c.iloc[-1] * 100, 2))
print(top.to_string())
"""
    trend = """\
# 全球每月新增确诊趋势
daily_new = global_c.diff().clip(lower=0)
daily_new.index = dates
monthly = daily_new.resample("MS").sum()
fig, ax = plt.subplots(figsize=(9, 4.5))
ax.bar(monthly.index, monthly.values / 1e6, width=25, color="#3b7dd8")
ax.set_title("全球每月新增确诊病例")
ax.set_xlabel("月份")
ax.set_ylabel("新增确诊（百万例）")
fig.savefig("figures/confirmed_trend.png")
peak = monthly.idxmax()
print("单月新增确诊最高:", peak.strftime("%Y-%m"), int(monthly.max()))
print(monthly.tail(6).astype(int).to_string())
"""
    deaths_chart = """\
# 累计死亡前十国家与病死率
fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 4.5))
top_d = top.sort_values("累计死亡")
ax1.barh(top_d.index, top_d["累计死亡"] / 1e4, color="#c0392b")
ax1.set_title("确诊前十国家的累计死亡")
ax1.set_xlabel("累计死亡（万例）")
ax2.barh(top_d.index, top_d["病死率%"], color="#7f8c8d")
ax2.set_title("确诊前十国家的病死率")
ax2.set_xlabel("病死率（%）")
fig.suptitle("新冠死亡人数与病死率对比")
fig.tight_layout()
top_d[["累计死亡", "病死率%"]]
"""
    return [load_and_rank, trend, deaths_chart]
