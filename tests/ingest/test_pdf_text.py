from __future__ import annotations

from deepfolder.ingest.pdf import clean_page_text

LONG = "调研同时收集了各馆的借阅系统数据，并对九家图书馆的馆员进行了访谈，形成本报告。"


def test_number_wrapped_inside_a_chinese_line_is_rejoined() -> None:
    wrapped = "问卷对象中，青年读者比例为41%，老年读者比例为22%，数据来自各馆202"
    assert len(wrapped) >= 0.85 * len(LONG)  # a full line of the page, wrapped mid-number
    text = f"{LONG}\n{wrapped}\n3年的借阅系统，并经过复核与整理。\n结束"
    out = clean_page_text(text)
    assert "2023年" in out and "202\n3" not in out and "202 3" not in out


def test_english_lines_keep_their_breaks() -> None:
    text = "The model was trained on 2023\n data from twelve sources in total.\nShort"
    assert clean_page_text(text).count("\n") == 2
