from __future__ import annotations

import zipfile
from pathlib import Path

import pytest
from make_files import CJK_FONT, make_docx, make_pdf, make_pptx, make_xlsx

from deepfolder.ingest.base import ExtractContext, ExtractError
from deepfolder.ingest.collections import extract_collection
from deepfolder.ingest.docx import extract_docx
from deepfolder.ingest.json import extract_json
from deepfolder.ingest.pdf import extract_pdf
from deepfolder.ingest.pptx import extract_pptx
from deepfolder.ingest.scan import classify
from deepfolder.ingest.sheets import extract_sheet
from deepfolder.ingest.text import extract_text
from deepfolder.ingest.zip_ import extract_zip
from deepfolder.settings import IngestSettings


def ctx_for(path: Path, tmp_path: Path, **settings: object) -> ExtractContext:
    return ExtractContext(
        rel_path=path.name,
        sha256="0" * 64,
        size=path.stat().st_size,
        settings=IngestSettings(**settings),
        work_dir=tmp_path / "work",
    )


def test_pdf_pages_in_order(tmp_path: Path) -> None:
    path = make_pdf(tmp_path / "two.pdf", ["Alpha page talks about apples.", "Beta page: pears."])
    result = extract_pdf(path, ctx_for(path, tmp_path))
    assert [s.locator.page for s in result.segments] == [1, 2]
    assert "apples" in result.segments[0].text and "pears" in result.segments[1].text
    assert result.sources[0].meta["pages"] == 2


def test_pdf_two_columns_read_column_by_column(tmp_path: Path) -> None:
    left = [f"Left column paragraph {i} explains the method in detail here." for i in range(8)]
    right = [f"Right column paragraph {i} reports the results of the study." for i in range(8)]
    path = make_pdf(tmp_path / "cols.pdf", [], two_column=(left, right))
    text = extract_pdf(path, ctx_for(path, tmp_path)).segments[0].text
    positions = [text.index(f"Left column paragraph {i}") for i in range(8)]
    positions += [text.index(f"Right column paragraph {i}") for i in range(8)]
    assert positions == sorted(positions), text[:500]
    assert text.index("Two Column Paper Title") < positions[0]


@pytest.mark.skipif(not CJK_FONT.exists(), reason="fonts-noto-cjk not installed")
def test_pdf_chinese_page(tmp_path: Path) -> None:
    chinese = "网络直播平台的法律监管问题日益突出。" * 12
    path = make_pdf(tmp_path / "zh.pdf", ["English first page."], chinese_page=chinese)
    segments = extract_pdf(path, ctx_for(path, tmp_path)).segments
    assert segments[1].locator.page == 2
    assert "网络直播平台的法律监管问题日益突出。" in segments[1].text


def test_pdf_corrupt_and_encrypted(tmp_path: Path) -> None:
    corrupt = tmp_path / "broken.pdf"
    corrupt.write_bytes(b"%PDF-1.4\n1 0 obj garbage\n")
    with pytest.raises(ExtractError, match="not a readable PDF"):
        extract_pdf(corrupt, ctx_for(corrupt, tmp_path))
    locked = make_pdf(tmp_path / "locked.pdf", ["secret text"], encrypt_password="pw")
    with pytest.raises(ExtractError, match="encrypted"):
        extract_pdf(locked, ctx_for(locked, tmp_path))


def test_pdf_without_text_layer_is_reported(tmp_path: Path) -> None:
    from fpdf import FPDF

    pdf = FPDF()
    pdf.add_page()
    pdf.rect(20, 20, 100, 50, style="F")
    path = tmp_path / "scan.pdf"
    pdf.output(str(path))
    result = extract_pdf(path, ctx_for(path, tmp_path, ocr=False))
    assert result.segments == []
    assert any("page 1 has no text layer" in w for w in result.warnings)


def test_docx_sections_tables_order(tmp_path: Path) -> None:
    path = make_docx(tmp_path / "review.docx")
    segs = extract_docx(path, ctx_for(path, tmp_path)).segments
    sections = [s.locator.section for s in segs]
    assert sections[0] == "Annual Review"
    assert "Annual Review > Method" in sections
    table = next(s for s in segs if "Beijing" in s.text)
    assert "store | revenue" in table.text and table.locator.section == "Annual Review > Method"
    assert segs[-1].locator.section == "Results"
    order = "".join(s.text for s in segs)
    assert order.index("forty stores") < order.index("Beijing") < order.index("nine percent")


def test_pptx_per_slide_with_notes_and_tables(tmp_path: Path) -> None:
    path = make_pptx(tmp_path / "deck.pptx")
    result = extract_pptx(path, ctx_for(path, tmp_path))
    assert [s.locator.slide for s in result.segments] == [1, 2, 3]
    second = result.segments[1].text
    assert second.startswith("Slide title 2")
    assert "DMCA | 1998" in second and "Speaker notes 2" in second
    assert result.sources[0].meta["slides"] == 3


def test_xlsx_schema_stats_and_row_numbers(tmp_path: Path) -> None:
    path = make_xlsx(tmp_path / "sales.xlsx", rows=30)
    segs = extract_sheet(path, ctx_for(path, tmp_path)).segments
    schema = next(s for s in segs if s.locator.section == "schema" and s.locator.sheet == "Sales")
    assert "30 data rows × 3 columns" in schema.text and "amount: int64" in schema.text
    assert any(s.locator.section == "summary statistics" for s in segs)
    blocks = [s for s in segs if s.locator.rows and s.locator.sheet == "Sales"]
    assert blocks[0].locator.rows[0] == 2 and blocks[-1].locator.rows[1] == 31
    assert "row 2: city0 | 1 | 0" in blocks[0].text  # header is row 1
    covered = [r for b in blocks for r in range(b.locator.rows[0], b.locator.rows[1] + 1)]
    assert covered == list(range(2, 32))
    assert any(s.locator.sheet == "Notes" for s in segs)


def test_csv_without_extension_and_with_spaces(tmp_path: Path) -> None:
    path = tmp_path / "Student Stress Factors"
    lines = ["sleep,stress,name"] + [f"{i},{i % 5},学生{i}" for i in range(40)]
    path.write_bytes("\n".join(lines).encode("gb18030"))
    assert classify(path)[0] == "sheet"
    segs = extract_sheet(path, ctx_for(path, tmp_path)).segments
    rows = [s for s in segs if s.locator.rows]
    assert "学生0" in rows[0].text and rows[0].locator.rows[0] == 2
    assert rows[-1].locator.rows[1] == 41


def test_gb18030_text_and_undecodable(tmp_path: Path) -> None:
    path = tmp_path / "notes.txt"
    path.write_bytes("中文笔记：避风港原则。".encode("gb18030"))
    seg = extract_text(path, ctx_for(path, tmp_path)).segments[0]
    assert seg.text == "中文笔记：避风港原则。"
    utf16 = tmp_path / "u16.txt"
    utf16.write_bytes("hello 世界".encode("utf-16"))
    assert extract_text(utf16, ctx_for(utf16, tmp_path)).segments[0].text == "hello 世界"
    bad = tmp_path / "bad.txt"
    bad.write_bytes(b"\x81\x20\xff\xfe\x00abc"[2:] + b"\x80\x80\xff")
    with pytest.raises(ExtractError, match="re-save it as UTF-8"):
        extract_text(bad, ctx_for(bad, tmp_path))


def test_markdown_and_html_sections(tmp_path: Path) -> None:
    md = tmp_path / "readme.md"
    md.write_text("# Data\nAbout the data.\n## Columns\nSleep hours.\n", encoding="utf-8")
    segs = extract_text(md, ctx_for(md, tmp_path)).segments
    assert [s.locator.section for s in segs] == ["Data", "Data > Columns"]
    html = tmp_path / "page.html"
    html.write_text(
        "<html><head><title>T</title><style>x{}</style></head><body><h1>Intro</h1>"
        "<p>Hello <b>world</b>.</p><script>var a=1;</script><h2>Part</h2><p>More.</p>",
        encoding="utf-8",
    )
    result = extract_text(html, ctx_for(html, tmp_path))
    assert [(s.locator.section, s.text) for s in result.segments] == [
        ("Intro", "Intro\nHello world."),
        ("Intro > Part", "Part\nMore."),
    ]
    assert result.sources[0].title == "T"


def test_collection_list_and_documents_shapes(tmp_path: Path) -> None:
    import json

    path = tmp_path / "long_context_a.json"
    articles = [
        {"title": "标题一", "page_body": "第一篇正文。"},
        {"title": "Two", "content": "Second body.", "url": "https://x.test/2"},
    ]
    path.write_text(json.dumps(articles, ensure_ascii=False), encoding="utf-8")
    assert classify(path)[0] == "collection"
    result = extract_collection(path, ctx_for(path, tmp_path))
    assert [s.id for s in result.sources] == ["long_context_a.json#0", "long_context_a.json#1"]
    assert result.sources[1].url == "https://x.test/2" and result.sources[0].kind == "article"
    assert result.segments[0].locator.article == 0
    wrapped = tmp_path / "long_context_b.json"
    wrapped.write_text(json.dumps({"documents": articles}), encoding="utf-8")
    assert len(extract_collection(wrapped, ctx_for(wrapped, tmp_path)).sources) == 2


def test_empty_collection_file(tmp_path: Path) -> None:
    path = tmp_path / "long_context.json"
    path.write_bytes(b"")
    with pytest.raises(ExtractError, match=r"file is empty \(0 bytes\)"):
        extract_collection(path, ctx_for(path, tmp_path))


def test_other_json_is_structured_text(tmp_path: Path) -> None:
    path = tmp_path / "config.json"
    path.write_text('{"name": "x", "values": [1, 2], "nested": {"a": true}}', encoding="utf-8")
    assert classify(path)[0] == "json"
    text = "\n".join(s.text for s in extract_json(path, ctx_for(path, tmp_path)).segments)
    assert "values[1]: 2" in text and "nested.a: true" in text


def test_zip_members_and_traversal(tmp_path: Path) -> None:
    path = tmp_path / "bundle.zip"
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("docs/note.txt", "Zipped note about liability.")
        zf.writestr("../evil.txt", "escape attempt")
        zf.writestr("/abs.txt", "absolute")
    ctx = ctx_for(path, tmp_path)
    result = extract_zip(path, ctx)
    assert [s.id for s in result.sources] == ["bundle.zip!/docs/note.txt"]
    assert result.segments[0].source_id == "bundle.zip!/docs/note.txt"
    assert sum("unsafe member path" in w for w in result.warnings) == 2
    assert not (tmp_path / "evil.txt").exists() and not (tmp_path / "work" / "evil.txt").exists()
    assert (ctx.work_dir / "unzipped" / "docs" / "note.txt").exists()
