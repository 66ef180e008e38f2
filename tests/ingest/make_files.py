"""Small real files the ingest tests generate (nothing binary is shipped)."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

CJK_FONT = Path("/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc")


def make_pdf(
    path: Path,
    pages: list[str],
    *,
    two_column: tuple[list[str], list[str]] | None = None,
    chinese_page: str | None = None,
    encrypt_password: str | None = None,
) -> Path:
    """One page per text; optionally a two-column page and a Chinese page at the end."""
    from fpdf import FPDF

    pdf = FPDF(format="A4")
    pdf.set_auto_page_break(False)
    for text in pages:
        pdf.add_page()
        pdf.set_font("helvetica", size=11)
        pdf.set_xy(15, 20)
        pdf.multi_cell(180, 6, text)
    if two_column is not None:
        left, right = two_column
        pdf.add_page()
        pdf.set_font("helvetica", "B", size=14)
        pdf.set_xy(15, 15)
        pdf.cell(180, 8, "A Two Column Paper Title Spanning The Page", align="C")
        pdf.set_font("helvetica", size=10)
        # Written interleaved (left 0, right 0, left 1, …) so that the content-stream
        # order is wrong and only column detection gives the reading order.
        y = {15: 30.0, 110: 30.0}
        for pair in zip(left, right, strict=True):
            for x, paragraph in zip((15, 110), pair, strict=True):
                pdf.set_xy(x, y[x])
                pdf.multi_cell(85, 5, paragraph)
                y[x] = pdf.get_y() + 2
    if chinese_page is not None:
        pdf.add_font("noto", fname=str(CJK_FONT))
        pdf.add_page()
        pdf.set_font("noto", size=12)
        pdf.set_xy(15, 20)
        pdf.multi_cell(180, 7, chinese_page)
    if encrypt_password:
        pdf.set_encryption(
            owner_password="owner-" + encrypt_password, user_password=encrypt_password
        )
    pdf.output(str(path))
    return path


def make_docx(path: Path) -> Path:
    import docx

    document = docx.Document()
    document.add_heading("Annual Review", level=1)
    document.add_paragraph("The review covers the whole year of operations.")
    document.add_heading("Method", level=2)
    document.add_paragraph("We sampled forty stores across three provinces.")
    table = document.add_table(rows=2, cols=2)
    table.cell(0, 0).text = "store"
    table.cell(0, 1).text = "revenue"
    table.cell(1, 0).text = "Beijing"
    table.cell(1, 1).text = "120"
    document.add_heading("Results", level=1)
    document.add_paragraph("Revenue grew by nine percent.")
    document.save(str(path))
    return path


def make_pptx(path: Path) -> Path:
    from pptx import Presentation
    from pptx.util import Inches

    deck = Presentation()
    for number in (1, 2, 3):
        slide = deck.slides.add_slide(deck.slide_layouts[1])
        slide.shapes.title.text = f"Slide title {number}"
        slide.placeholders[1].text = f"Body text of slide {number} about safe harbour."
        slide.notes_slide.notes_text_frame.text = f"Speaker notes {number}"
        if number == 2:
            shape = slide.shapes.add_table(2, 2, Inches(1), Inches(4), Inches(4), Inches(1))
            shape.table.cell(0, 0).text = "law"
            shape.table.cell(0, 1).text = "year"
            shape.table.cell(1, 0).text = "DMCA"
            shape.table.cell(1, 1).text = "1998"
    deck.save(str(path))
    return path


def make_xlsx(path: Path, rows: int = 30) -> Path:
    from openpyxl import Workbook

    book = Workbook()
    sheet = book.active
    sheet.title = "Sales"
    sheet.append(["city", "month", "amount"])
    for i in range(rows):
        sheet.append([f"city{i}", i % 12 + 1, i * 10])
    other = book.create_sheet("Notes")
    other.append(["note"])
    other.append(["second sheet"])
    book.save(str(path))
    return path


def tree_digest(folder: Path) -> str:
    """Names, sizes, mtimes and contents of everything under folder (hidden files too)."""
    digest = hashlib.sha256()
    for root, dirs, files in sorted(os.walk(folder)):
        dirs.sort()
        for name in sorted(files) + [d + "/" for d in dirs]:
            path = Path(root) / name.rstrip("/")
            stat = path.lstat()  # a symlink is compared as a link, not as its target
            rel = os.fsencode(path.relative_to(folder))  # names need not be valid UTF-8
            digest.update(rel + f"|{stat.st_size}|{stat.st_mtime_ns}".encode())
            if path.is_symlink():
                digest.update(os.fsencode(os.readlink(path)))
            elif path.is_file():
                digest.update(path.read_bytes())
    return digest.hexdigest()
