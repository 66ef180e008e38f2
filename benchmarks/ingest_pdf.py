"""PDF page attribution and speed of deepfolder's PDF extractor.

    python benchmarks/ingest_pdf.py

1. Synthetic: a PDF with known text per page (English pages, a two-column page written
   in interleaved order, a Chinese page) → the fraction of chunks whose text is on the
   page their locator names, and whether the two-column page reads column by column.
2. Real papers (../shared/data/papers/*.pdf and the case-002 PDFs; skipped when absent):
   ``pdftotext -f N -l N`` (poppler, an independent implementation) gives each page's
   reference text; a chunk counts as correctly attributed when the page whose reference
   shares the most character 6-grams with it is the page its locator names.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from deepfolder.ingest.base import ExtractContext
from deepfolder.ingest.chunk import chunk_segments
from deepfolder.ingest.pdf import extract_pdf
from deepfolder.settings import IngestSettings

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / ".." / "shared" / "data"
sys.path.insert(0, str(ROOT / "tests" / "ingest"))


def _norm(text: str) -> str:
    return re.sub(r"\s+", "", text)


def _grams(text: str, n: int = 6) -> set[str]:
    t = _norm(text)
    return {t[i : i + n] for i in range(max(0, len(t) - n + 1))}


def _chunks(path: Path) -> tuple[list, float, int]:
    settings = IngestSettings()
    ctx = ExtractContext(path.name, "", path.stat().st_size, settings, Path(tempfile.mkdtemp()))
    t0 = time.perf_counter()
    result = extract_pdf(path, ctx)
    seconds = time.perf_counter() - t0
    return chunk_segments(result.segments, settings), seconds, result.sources[0].meta["pages"]


def synthetic() -> None:
    from make_files import CJK_FONT, make_pdf

    pages = [
        " ".join(
            f"Page {p} sentence {i} carries marker P{p}S{i} for the benchmark." for i in range(40)
        )
        for p in range(1, 9)
    ]
    left = [f"Left column paragraph {i} describes the approach used." for i in range(12)]
    right = [f"Right column paragraph {i} describes the outcome observed." for i in range(12)]
    chinese = "".join(f"第{i}句中文内容用于检验页码归属是否正确。" for i in range(40))
    with tempfile.TemporaryDirectory() as tmp:
        path = make_pdf(
            Path(tmp) / "synthetic.pdf",
            pages,
            two_column=(left, right),
            chinese_page=chinese if CJK_FONT.exists() else None,
        )
        chunks, seconds, n_pages = _chunks(path)
    truth = {i + 1: _norm(t) for i, t in enumerate(pages)}
    truth[len(pages) + 1] = _norm(
        "A Two Column Paper Title Spanning The Page" + " ".join(left + right)
    )
    if CJK_FONT.exists():
        truth[len(pages) + 2] = _norm(chinese)
    right_page = sum(_norm(c.text) in truth.get(c.locator.page, "") for c in chunks)
    two_col = "".join(c.text for c in chunks if c.locator.page == len(pages) + 1)
    order = [two_col.find(f"Left column paragraph {i}") for i in range(12)]
    order += [two_col.find(f"Right column paragraph {i}") for i in range(12)]
    print(
        f"synthetic: {n_pages} pages, {len(chunks)} chunks, on the right page "
        f"{right_page}/{len(chunks)}; two-column page in column order: "
        f"{order == sorted(order) and -1 not in order}; Chinese page included: "
        f"{CJK_FONT.exists()}; {n_pages / seconds:.0f} pages/s"
    )


def real() -> None:
    if shutil.which("pdftotext") is None:
        print("real PDFs: skipped (pdftotext from poppler-utils is not installed)")
        return
    files = sorted((DATA / "papers").glob("*.pdf")) + sorted((DATA / "cases" / "002").glob("*.pdf"))
    if not files:
        print(f"real PDFs: skipped ({DATA} is absent)")
        return
    print("| file | pages | chunks | on the right page | tie/unknown | pages/s |")
    print("|---|---|---|---|---|---|")
    for path in files:
        chunks, seconds, n_pages = _chunks(path)
        refs = {}
        for page in range(1, n_pages + 1):
            out = subprocess.run(
                ["pdftotext", "-f", str(page), "-l", str(page), "-enc", "UTF-8", str(path), "-"],
                capture_output=True,
                check=True,
            ).stdout.decode("utf-8", errors="replace")
            refs[page] = _grams(out)
        right = unknown = 0
        for chunk in chunks:
            grams = _grams(chunk.text)
            if not grams:
                unknown += 1
                continue
            scores = {p: len(grams & g) for p, g in refs.items()}
            best = max(scores.values())
            winners = [p for p, s in scores.items() if s == best]
            if best == 0 or len(winners) > 1:
                unknown += 1
            elif winners[0] == chunk.locator.page:
                right += 1
        print(
            f"| {path.name} | {n_pages} | {len(chunks)} | {right}/{len(chunks) - unknown} "
            f"({right / max(1, len(chunks) - unknown):.1%}) | {unknown} | {n_pages / seconds:.0f} |"
        )


if __name__ == "__main__":
    synthetic()
    real()
