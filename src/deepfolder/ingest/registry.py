"""Which extractor reads which kind of file.

Extractors are referenced by dotted path and imported only when a file of that kind is
met, so a folder without videos never imports the video stack, and a missing optional
package becomes one failed file with a message naming what to install.
"""

from __future__ import annotations

import importlib

from deepfolder.ingest.base import ExtractError, Extractor

EXTRACTORS: dict[str, str] = {
    "pdf": "deepfolder.ingest.pdf:extract_pdf",
    "docx": "deepfolder.ingest.docx:extract_docx",
    "pptx": "deepfolder.ingest.pptx:extract_pptx",
    "sheet": "deepfolder.ingest.sheets:extract_sheet",
    "text": "deepfolder.ingest.text:extract_text",
    "markdown": "deepfolder.ingest.text:extract_text",
    "html": "deepfolder.ingest.text:extract_text",
    "json": "deepfolder.ingest.json:extract_json",
    "collection": "deepfolder.ingest.collections:extract_collection",
    "zip": "deepfolder.ingest.zip_:extract_zip",
    "image": "deepfolder.ingest.image:extract_image",
    "audio": "deepfolder.ingest.audio:extract_audio",
    "video": "deepfolder.ingest.video:extract_video",
}

INSTALL_HINTS: dict[str, str] = {
    "docx": "python-docx",
    "pptx": "python-pptx",
    "openpyxl": "openpyxl",
    "xlrd": "xlrd",
    "pandas": "pandas",
    "pypdfium2": "pypdfium2",
    "ijson": "ijson",
    "rapidocr": "rapidocr (the 'media' extra)",
    "faster_whisper": "faster-whisper (the 'media' extra)",
    "av": "av (the 'media' extra)",
    "PIL": "pillow",
}

HEAVY_KINDS = frozenset({"pdf", "image", "audio", "video", "zip", "pptx"})
"""Kinds worth a worker process of their own."""


def get_extractor(kind: str) -> Extractor:
    """The extractor for ``kind``; ``ExtractError`` naming what to install when missing."""
    target = EXTRACTORS.get(kind)
    if target is None:
        raise ExtractError(f"unsupported file type (kind {kind!r}); no extractor reads it")
    module_name, _, attr = target.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        missing = getattr(exc, "name", None) or ""
        if missing == module_name:
            raise ExtractError(
                f"no {kind} extractor is available in this installation ({module_name} is "
                f"missing); install deepfolder with its 'media' extra"
            ) from exc
        top = missing.split(".")[0]
        hint = INSTALL_HINTS.get(top, top or "the missing package")
        raise ExtractError(
            f"reading {kind} files needs {hint}: pip install {hint.split(' ')[0]} ({exc})"
        ) from exc
    try:
        extractor: Extractor = getattr(module, attr)
        return extractor
    except AttributeError as exc:
        raise ExtractError(f"{module_name} has no extractor {attr!r}") from exc
