from __future__ import annotations

from deepfolder.records import Evidence, Locator, Segment, Source
from deepfolder.report.citations import extract_citation_ids, render_citations
from deepfolder.report.render import finalize_markdown, markdown_to_html

PDF = Source(id="a.pdf", path="docs/a.pdf", kind="pdf")
ART = Source(id="lc.json#3", path="lc.json", kind="article", title="标题", article=3)
E1 = Evidence(Segment.create("a.pdf", "page five text", Locator(page=5)), PDF)
E2 = Evidence(Segment.create("lc.json#3", "article text", Locator(article=3, chunk=2)), ART)
KNOWN = {E1.id: E1, E2.id: E2}


def test_extract_ids_from_groups_and_links() -> None:
    text = f"A [{E1.id}]. B [{E1.id}, {E2.id}] C 【{E2.id}；{E1.id}】 D [x](#{E2.id})"
    assert extract_citation_ids(text) == [E1.id, E1.id, E2.id, E2.id, E1.id, E2.id]


def test_render_known_ids_as_readable_links_and_drop_unknown() -> None:
    text = f"增长了69%[{E1.id}]。夜间读者多[{E2.id}, E00000000]。编造[Edeadbeef]。"
    out = render_citations(text, KNOWN.get, "zh")
    assert f"[a.pdf, 第5页](#{E1.id})" in out.text
    assert f'[lc: "标题", 第2段](#{E2.id})' in out.text
    assert "Edeadbeef" not in out.text and "E00000000" not in out.text
    assert out.dropped == ["E00000000", "Edeadbeef"]
    assert [e.id for e in out.cited] == [E1.id, E2.id]


def test_english_labels() -> None:
    out = render_citations(f"x [{E1.id}]", KNOWN.get, "en")
    assert out.text == f"x [a.pdf, p. 5](#{E1.id})"


def test_reference_list_goes_under_requested_section() -> None:
    body = f"# T\n\n## （1）引言\n\n内容[{E1.id}]。\n\n## （2）参考资料\n\n模型自己写的列表\n"
    md, _rendered = finalize_markdown(body, KNOWN.get, "zh", "参考资料")
    assert "模型自己写的列表" not in md
    tail = md.split("## （2）参考资料", 1)[1]
    assert f"1. [{E1.id}] a.pdf, 第5页" in tail
    assert md.count("参考") == 1 + 0  # no second reference heading added


def test_reference_heading_added_when_absent() -> None:
    md, _ = finalize_markdown(f"Text [{E2.id}].", KNOWN.get, "en")
    assert "## References" in md and E2.id in md.split("## References")[1]


def test_html_is_complete_and_self_contained(tmp_path) -> None:
    (tmp_path / "figures").mkdir()
    (tmp_path / "figures" / "f.png").write_bytes(b"\x89PNG\r\n\x1a\nfake")
    html = markdown_to_html(
        "# T\n\n![图1](figures/f.png)\n", title="T", base_dir=tmp_path, language="zh"
    )
    assert html.startswith("<!DOCTYPE html>") and html.rstrip().endswith("</html>")
    assert 'src="data:image/png;base64,' in html
