"""The one definition of a statistic, shared by citation attachment and the validator."""

from __future__ import annotations

from deepfolder.validate.numbers import STATISTIC, statistics


def test_what_counts_as_a_statistic() -> None:
    text = (
        "2023年共回收问卷1,268份，累计676,570,149人，增长12.5%，其中41 %为青年，"
        "满意度4.3分，新增86862人，共14家图书馆，占比３０％。"
    )
    assert statistics(text) == {"1268", "676570149", "12.5%", "41%", "4.3", "86862", "30%"}


def test_years_and_small_counts_are_not() -> None:
    assert statistics("2023年起14家图书馆开通服务，第3页。") == set()
    assert STATISTIC.search("In 2024 the 9 branches merged.") is None
