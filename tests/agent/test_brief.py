"""The brief of the user's files is read from the files themselves, with locators."""

from __future__ import annotations

from deepfolder.agent.brief import brief_file, page_text
from deepfolder.records import Locator, Segment, Source

PAGE_1 = (
    "arXiv:2305.18290v3 [cs.LG] 29 Jul 2024\n"
    "Direct Preference Optimization:\n"
    "Your Language Model is Secretly a Reward Model\n"
    "Rafael Rafailov∗† Archit Sharma∗† Eric Mitchell∗†\n"
    "Stefano Ermon†‡ Christopher D. Manning† Chelsea Finn†\n"
    "†Stanford University ‡CZ Biohub\n"
    "{rafailov,architsh}@cs.stanford.edu\n"
    "Abstract\n"
    "While large-scale unsupervised language models (LMs) learn broad world knowledge, "
    "reinforcement learning from human feedback (RLHF) is complex. We introduce Direct "
    "Preference Optimization (DPO), a simple classification loss.\n"
    "37th Conference on Neural Information Processing Systems (NeurIPS 2023).\n"
    "1 Introduction\n"
)
PDF = Source(id="DPO.pdf", path="DPO.pdf", kind="pdf", title="DPO")


def _chunks(text: str, size: int, overlap: int) -> list[Segment]:
    """Overlapping chunks of one page, as the chunker makes them."""
    out, start = [], 0
    while start < len(text):
        end = min(len(text), start + size)
        loc = Locator(page=1, chunk=len(out) + 1, char_start=start, char_end=end)
        out.append(Segment.create(PDF.id, text[start:end], loc, seq=len(out)))
        if end == len(text):
            break
        start = end - overlap
    return out


def test_pdf_brief_reads_title_authors_venue_abstract_from_the_first_page() -> None:
    segments = _chunks(PAGE_1, 260, 50)
    method = Segment.create(PDF.id, "4 Direct Preference Optimization\nWe derive…", Locator(page=4))
    brief = brief_file(PDF, [*segments, method])
    facts = {f.label: f.text for f in brief.facts}
    assert facts["title"] == (
        "Direct Preference Optimization: Your Language Model is Secretly a Reward Model"
    )
    assert facts["authors"] == (
        "Rafael Rafailov, Archit Sharma, Eric Mitchell, Stefano Ermon, "
        "Christopher D. Manning, Chelsea Finn"
    )
    assert facts["affiliation"] == "Stanford University; CZ Biohub"
    assert (
        facts["venue"] == "37th Conference on Neural Information Processing Systems (NeurIPS 2023)"
    )
    assert facts["abstract"].startswith("While large-scale unsupervised language models")
    assert "4 Direct Preference Optimization" in facts["headings"]
    assert brief.language == "en"
    assert "DPO" in brief.terms and "RLHF" in brief.terms
    # every fact cites the passage it is on
    for fact in brief.facts:
        assert fact.evidence.source.id == "DPO.pdf"
        key = fact.text.split(",")[0].split(";")[0][:30]
        assert key in fact.evidence.segment.text.replace("∗†", "").replace("†‡", "") or (
            fact.label in {"authors", "affiliation", "headings"}
        )


def test_overlapping_chunks_are_joined_once() -> None:
    segments = _chunks(PAGE_1, 100, 30)
    text, spans = page_text(segments)
    assert text == PAGE_1
    assert spans[0][0] == 0 and spans[-1][1] == len(PAGE_1)


def test_chinese_journal_page() -> None:
    page = (
        "电子商务评论, 2024, 13(3), 4535-4541\n"
        "互联网视阈下网络直播平台的法律监管\n"
        "王 田\n"
        "贵州大学法学院，贵州 贵阳\n"
        "收稿日期：2024年4月12日；发布日期：2024年7月30日摘 要\n"
        "网络直播作为一种新型的社交媒体模式，丰富人们业余生活的同时拉动信息产业的发展，为此，应健全相关法规。\n"
        "关键词\n网络直播平台，法律监管\n"
    )
    src = Source(id="a.pdf", path="a.pdf", kind="pdf", title="a")
    brief = brief_file(src, [Segment.create("a.pdf", page, Locator(page=1))])
    facts = {f.label: f.text for f in brief.facts}
    assert facts["title"] == "互联网视阈下网络直播平台的法律监管"
    assert facts["authors"] == "王田"
    assert facts["abstract"].startswith("网络直播作为一种新型的社交媒体模式")
    assert brief.language == "zh"


def test_video_brief_has_screen_titles_with_seconds_and_speech() -> None:
    src = Source(id="talk.mp4", path="talk.mp4", kind="video")
    segs = [
        Segment.create(
            "talk.mp4",
            "screen: DPO in one slide / no reward model\nspeech: Today we explain DPO.",
            Locator(start=0.0, end=12.0),
        ),
        Segment.create(
            "talk.mp4",
            "screen: Results / GPT-4 win rate 61%\nspeech: DPO beats PPO on summarization.",
            Locator(start=12.0, end=30.5),
            seq=1,
        ),
    ]
    brief = brief_file(src, segs)
    facts = {f.label: f.text for f in brief.facts}
    assert facts["screen"] == "DPO in one slide (00:00–00:12); Results (00:12–00:30)"
    speech = [f.text for f in brief.facts if f.label == "speech"]
    assert speech == ["Today we explain DPO.", "DPO beats PPO on summarization."]
    assert brief.terms[:2] == ["DPO in one slide", "Results"]


def test_image_without_text_is_unreadable_and_names_the_setting() -> None:
    src = Source(id="beach.jpg", path="beach.jpg", kind="image")
    meta = Segment.create("beach.jpg", "1024x768 JPEG", Locator(section="image metadata"))
    brief = brief_file(src, [meta], vision_available=False)
    assert brief.problem is not None and "--vision-model" in brief.problem
    assert not brief.facts
