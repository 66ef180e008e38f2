from __future__ import annotations

from deepfolder.validate.checks import uncited_paragraphs


def test_a_short_paragraph_stating_a_statistic_needs_a_citation() -> None:
    md = (
        "# 报告\n\n## 摘要\n\n截至2023年3月，全球累计感染人数为676,570,149人。\n\n"
        "本节概述监测情况。\n"
    )
    flagged = uncited_paragraphs(md, set(), "zh", [])
    assert len(flagged) == 1 and "676,570,149" in flagged[0].reason


def test_a_short_paragraph_with_only_a_year_is_not_flagged() -> None:
    md = "# 报告\n\n## 引言\n\n本报告回顾2023年的工作安排与主要做法。\n"
    assert uncited_paragraphs(md, set(), "zh", []) == []
