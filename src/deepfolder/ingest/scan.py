"""Walk a folder read-only and classify each file by suffix and content sniffing.

Nothing is ever written into the folder. Hidden files and directories (``.name``) are
skipped, as are our own outputs (a directory holding a run's ``trace.jsonl`` or a
``.deepfolder`` marker) and the task's own request files (``query.txt``/``query.jsonl``
at the top level: they are the question, not evidence).

Kinds: pdf, docx, pptx, sheet, image, audio, video, text, markdown, html, json,
collection (``long_context*.json``: a JSON list of web pages), zip, and ``unsupported``
(the pipeline reports those as failed with the reason in ``ScannedFile.note``).
"""

from __future__ import annotations

import csv
import hashlib
import os
import zipfile
from dataclasses import dataclass
from pathlib import Path

SUFFIX_KINDS: dict[str, str] = {
    ".pdf": "pdf",
    ".docx": "docx",
    ".pptx": "pptx",
    ".xlsx": "sheet",
    ".xlsm": "sheet",
    ".xls": "sheet",
    ".csv": "sheet",
    ".tsv": "sheet",
    ".txt": "text",
    ".text": "text",
    ".log": "text",
    ".md": "markdown",
    ".markdown": "markdown",
    ".html": "html",
    ".htm": "html",
    ".json": "json",
    ".zip": "zip",
    **dict.fromkeys((".png", ".jpg", ".jpeg", ".gif", ".bmp", ".webp", ".tif", ".tiff"), "image"),
    **dict.fromkeys((".wav", ".mp3", ".m4a", ".flac", ".ogg", ".opus", ".aac", ".wma"), "audio"),
    **dict.fromkeys((".mp4", ".mkv", ".mov", ".avi", ".webm", ".m4v", ".flv", ".wmv"), "video"),
}

LEGACY_OFFICE = {
    ".doc": "legacy Word .doc is not supported: save it as .docx",
    ".ppt": "legacy PowerPoint .ppt is not supported: save it as .pptx",
}

SKIPPED_TOP_LEVEL = {"query.txt", "query.jsonl"}
OUTPUT_MARKERS = ("trace.jsonl", ".deepfolder")
DATA_KINDS = ("sheet", "json")


@dataclass(frozen=True, slots=True)
class ScannedFile:
    rel_path: str
    """Path relative to the folder with '/' separators (the source id)."""
    path: Path
    kind: str
    size: int
    sha256: str
    note: str = ""
    """Why the kind is ``unsupported``, when it is."""


def sha256_file(path: Path, chunk: int = 1 << 20) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        while block := fh.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def _sniff(path: Path) -> tuple[str, str]:
    """Kind of a file from its first bytes (for files without a known suffix)."""
    try:
        with path.open("rb") as fh:
            head = fh.read(8192)
    except OSError as exc:
        return "unsupported", f"cannot read: {exc}"
    if not head:
        return "text", ""
    if head.startswith(b"%PDF"):
        return "pdf", ""
    if head.startswith(b"PK\x03\x04"):
        return _sniff_zip(path), ""
    magic = (
        (b"\x89PNG", "image"),
        (b"\xff\xd8\xff", "image"),
        (b"GIF8", "image"),
        (b"BM", "image"),
        (b"ID3", "audio"),
        (b"fLaC", "audio"),
        (b"OggS", "audio"),
        (b"\x1a\x45\xdf\xa3", "video"),
    )
    for prefix, kind in magic:
        if head.startswith(prefix):
            return kind, ""
    if head[:4] == b"RIFF":
        return {b"WAVE": "audio", b"WEBP": "image", b"AVI ": "video"}.get(
            head[8:12], "unsupported"
        ), ""
    if head[4:8] == b"ftyp":
        return ("audio" if head[8:11] == b"M4A" else "video"), ""
    text = _decode_head(head)
    if text is None:
        return "unsupported", "binary file of unknown type"
    stripped = text.lstrip("\ufeff \t\r\n")
    if stripped[:1] in ("[", "{"):
        return "json", ""
    if stripped[:1] == "<" and "<html" in stripped[:2000].lower():
        return "html", ""
    if _looks_like_csv(text):
        return "sheet", ""
    return "text", ""


def _sniff_zip(path: Path) -> str:
    try:
        with zipfile.ZipFile(path) as zf:
            names = zf.namelist()
    except (zipfile.BadZipFile, OSError):
        return "zip"
    if any(n.startswith("word/") for n in names):
        return "docx"
    if any(n.startswith("ppt/") for n in names):
        return "pptx"
    if any(n.startswith("xl/") for n in names):
        return "sheet"
    return "zip"


def _decode_head(head: bytes) -> str | None:
    if head.startswith((b"\xff\xfe", b"\xfe\xff")):
        return head.decode("utf-16", errors="ignore")
    if b"\x00" in head:
        return None
    for encoding in ("utf-8", "gb18030"):
        try:
            return head.decode(encoding)
        except UnicodeDecodeError as exc:
            if exc.start > len(head) - 4:  # a character cut by the 8 KiB window
                return head[: exc.start].decode(encoding, errors="ignore")
    return None


def _looks_like_csv(text: str) -> bool:
    lines = [line for line in text.splitlines()[:20] if line.strip()]
    if len(lines) < 2:
        return False
    try:
        dialect = csv.Sniffer().sniff("\n".join(lines[:10]), delimiters=",\t;|")
    except csv.Error:
        return False
    counts = {line.count(dialect.delimiter) for line in lines[:-1]}  # last may be cut
    return len(counts) == 1 and counts.pop() >= 1


def classify(path: Path, name: str | None = None) -> tuple[str, str]:
    """``(kind, note)`` for one file: suffix first, content sniffing when it is unknown."""
    name = name or path.name
    suffix = Path(name).suffix.lower()
    if suffix == ".json" and name.lower().startswith("long_context"):
        return "collection", ""
    if suffix in LEGACY_OFFICE:
        return "unsupported", LEGACY_OFFICE[suffix]
    if suffix in SUFFIX_KINDS:
        return SUFFIX_KINDS[suffix], ""
    return _sniff(path)


def _is_output_dir(path: Path) -> bool:
    return any((path / marker).exists() for marker in OUTPUT_MARKERS)


def scan_folder(folder: Path, *, with_hash: bool = True) -> list[ScannedFile]:
    """Every file of ``folder`` (recursively) in a stable order, classified and hashed."""
    folder = folder.resolve()
    if not folder.is_dir():
        raise NotADirectoryError(f"{folder} is not a folder: give the folder of materials")
    found: list[ScannedFile] = []
    for root, dirs, files in os.walk(folder):
        root_path = Path(root)
        dirs[:] = sorted(
            d for d in dirs if not d.startswith(".") and not _is_output_dir(root_path / d)
        )
        for name in sorted(files):
            if name.startswith("."):
                continue
            path = root_path / name
            rel = path.relative_to(folder).as_posix()
            if rel in SKIPPED_TOP_LEVEL or not path.is_file():
                continue
            kind, note = classify(path)
            size = path.stat().st_size
            digest = sha256_file(path) if with_hash else ""
            found.append(ScannedFile(rel, path, kind, size, digest, note))
    return found
