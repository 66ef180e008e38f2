from __future__ import annotations

from deepfolder.records import Evidence
from deepfolder.validate.citations import (
    check_citations,
    find_citations,
    parse_free_citation,
    remove_citations,
)
from deepfolder.validate.document import html_to_markdown


def _check(text: str, by_id: dict[str, Evidence], seen: set[str]):
    return check_citations(find_citations(text), by_id.get, seen, "zh")


def test_every_id_form_is_found() -> None:
    text = (
        "甲[E1234abcd][E5678ef01]，乙[E1234abcd, E5678ef01]，丙[E1234abcd；E5678ef01]，"
        "丁【E1234abcd】，戊E5678ef01，见[x.pdf, p. 5](#E1234abcd)。[链接](https://e.com)"
    )
    found = find_citations(text)
    assert [(c.kind, c.ids) for c in found] == [
        ("id", ["E1234abcd"]),
        ("id", ["E5678ef01"]),
        ("id", ["E1234abcd", "E5678ef01"]),
        ("id", ["E1234abcd", "E5678ef01"]),
        ("id", ["E1234abcd"]),
        ("id", ["E5678ef01"]),
        ("link", ["E1234abcd"]),
    ]
    assert remove_citations(text) == "甲，乙，丙，丁，戊，见。[链接](https://e.com)"


def test_resolution_seen_and_unknown(evidence: dict[str, Evidence], by_id, seen) -> None:
    good, unseen = evidence["pdf5"].id, evidence["unseen"].id
    [ok, never_read, missing] = _check(f"a[{good}] b[{unseen}] c[Eabcdef12]", by_id, seen)
    assert ok.ok and ok.evidence == [evidence["pdf5"]]
    assert never_read.unseen_ids == [unseen]
    assert "never returned to the model" in never_read.problems[0]
    assert missing.unresolved_ids == ["Eabcdef12"]
    assert "does not exist" in missing.problems[0]


def test_wrong_page_label_is_caught(evidence: dict[str, Evidence], by_id, seen) -> None:
    ev = evidence["pdf5"]
    right = f"[直播电商高质量发展.pdf, 第5页](#{ev.id})"
    english = f"[直播电商高质量发展.pdf, p. 5](#{ev.id})"
    wrong = f"[直播电商高质量发展.pdf, 第4页](#{ev.id})"
    checked = _check(f"{right} {english} {wrong}", by_id, seen)
    assert [c.ok for c in checked] == [True, True, False]
    assert "第4页" in checked[2].problems[0] and "第5页" in checked[2].problems[0]


def test_article_video_and_rows_labels(evidence: dict[str, Evidence], by_id, seen) -> None:
    art, vid, sheet = evidence["article"], evidence["video"], evidence["sheet"]
    text = (
        f'[long_context_sampled_32k: "直播带货新规解读", chunk 2](#{art.id}) '
        f'[long_context_sampled_32k: "直播带货新规解读", chunk 3](#{art.id}) '
        f"[lecture.mp4, 01:12-01:40](#{vid.id}) [lecture.mp4, 01:12–01:45](#{vid.id}) "
        f"[stress.csv, rows 2–54](#{sheet.id}) [stress.csv, 第2–50行](#{sheet.id})"
    )
    assert [c.ok for c in _check(text, by_id, seen)] == [True, False, True, False, True, False]


def test_free_form_citations(evidence: dict[str, Evidence], by_id, seen) -> None:
    text = (
        "[文档: 直播电商高质量发展.pdf, page 5] [直播电商高质量发展.pdf, p. 6] "
        '[直播电商高质量发展.pdf, 第7页] [long_context_sampled_32k: "直播带货新规解读", chunk 2] '
        '[long_context: "不存在的文章", chunk 1] [lecture.mp4, 01:15–01:30] '
        "[lecture.mp4, 05:00–05:10] [lecture.mp4, Frame 4-7] [other.pdf, p. 1] "
        "[直播电商高质量发展.pdf, 第9页]"
    )
    checked = _check(text, by_id, seen)
    assert [c.kind for c in checked] == ["free"] * 10
    assert [c.ok for c in checked] == [
        True,
        True,
        False,
        True,
        False,
        True,
        False,
        False,
        False,
        False,
    ]
    assert checked[0].evidence == [evidence["pdf5"]]
    assert checked[3].evidence == [evidence["article"]]
    assert "Frame 4-7" in checked[7].problems[0]
    # page 9 is in the index but was never shown to the model: free form resolves only
    # against evidence seen in the run
    assert "read there" in checked[9].problems[0]


def test_parse_free_citation_locators() -> None:
    assert parse_free_citation("deck.pptx, slide 4").slide == 4
    assert parse_free_citation("deck.pptx, 第4张幻灯片").slide == 4
    assert parse_free_citation("data.csv, 第2–10行").rows == (2, 10)
    assert parse_free_citation("v.mp4, 1:02:03-1:02:10").seconds == (3723.0, 3730.0)
    assert parse_free_citation("x.pdf, pp. 3-4").pages == (3, 4)


def test_html_anchor_citations(evidence: dict[str, Evidence], by_id, seen) -> None:
    ev = evidence["pdf6"]
    html = f'<p>依据<a href="#{ev.id}">直播电商高质量发展.pdf, 第6页</a>。</p>'
    [c] = _check(html_to_markdown(html), by_id, seen)
    assert c.kind == "link" and c.ok


def test_bare_report_checks_form_only() -> None:
    [ok, frame] = check_citations(
        find_citations("a[E1234abcd] b[video.mp4, Frame 1-3]"), None, None
    )
    assert ok.ok and not ok.checked
    assert not frame.ok
