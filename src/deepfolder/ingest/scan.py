"""Walk a folder read-only and classify each file by suffix and content sniffing.

Nothing is ever written into the folder. Hidden files and directories (``.name``) are
skipped, as are our own outputs (a directory holding a run's ``trace.jsonl`` or a
``.deepfolder`` marker) and the task's own request files (``query.txt``/``query.jsonl``
at the top level: they are the question, not evidence).

Kinds: pdf, docx, pptx, sheet, image, audio, video, text, markdown, html, json,
collection (``long_context*.json``: a JSON list of web pages), zip, and ``unsupported``
(the pipeline reports those as failed with the reason in ``ScannedFile.note``).

Symlinks leading out of the folder are reported, not read (``ScannedFile.skipped``), so a
link to ``/etc/passwd`` or a secret elsewhere never reaches the index or the ``read``
tool; names that are not valid UTF-8 are indexed under a safe stand-in name.
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
    skipped: str = ""
    """Why the file is not read at all (a symlink out of the folder), or ''."""
    name_note: str = ""
    """Set when the name on disk is not valid UTF-8 and ``rel_path`` is a safe stand-in."""


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


def safe_rel_path(rel: str) -> str:
    """``rel`` itself when it is valid text; else a readable stand-in for a name whose
    bytes are not UTF-8 (``os.walk`` gives those as lone surrogates, which cannot be
    written to JSON, SQLite or the lexical index). GB18030 is tried first because such
    names mostly come from Chinese Windows archives; anything else shows U+FFFD."""
    try:
        rel.encode("utf-8")
        return rel
    except UnicodeEncodeError:
        raw = os.fsencode(rel)
    try:
        return raw.decode("gb18030")
    except UnicodeDecodeError:
        return raw.decode("utf-8", errors="replace")


def _outside(path: Path, folder: Path) -> Path | None:
    """Where a symlink at ``path`` leads when that is outside ``folder``, else None."""
    if not path.is_symlink():
        return None
    target = path.resolve()
    return None if target.is_relative_to(folder) else target


def scan_folder(
    folder: Path, *, with_hash: bool = True, follow_external_symlinks: bool = False
) -> list[ScannedFile]:
    """Every file of ``folder`` (recursively) in a stable order, classified and hashed.

    Symlinks whose target is outside the folder come back with ``skipped`` set (and are
    never opened) unless ``follow_external_symlinks``; symlinked directories are never
    walked (those pointing outside are reported the same way). Names that are not valid
    UTF-8 get a safe ``rel_path`` (see ``safe_rel_path``), made unique with a hash suffix.
    """
    folder = folder.resolve()
    if not folder.is_dir():
        raise NotADirectoryError(f"{folder} is not a folder: give the folder of materials")
    found: list[ScannedFile] = []
    taken: set[str] = set()
    for root, dirs, files in os.walk(folder):
        root_path = Path(root)
        for name in sorted(dirs):
            target = _outside(root_path / name, folder)
            if target is not None and not name.startswith("."):
                rel = safe_rel_path((root_path / name).relative_to(folder).as_posix())
                reason = f"symlinked folder pointing outside the folder ({target}); not followed"
                found.append(ScannedFile(rel, root_path / name, "folder", 0, "", skipped=reason))
        dirs[:] = sorted(
            d for d in dirs if not d.startswith(".") and not _is_output_dir(root_path / d)
        )
        for name in sorted(files):
            if name.startswith("."):
                continue
            path = root_path / name
            raw_rel = path.relative_to(folder).as_posix()
            if raw_rel in SKIPPED_TOP_LEVEL or not path.is_file():
                continue
            rel = safe_rel_path(raw_rel)
            name_note = ""
            if rel != raw_rel:
                if rel in taken or (folder / rel).exists():
                    stem, dot, suffix = rel.rpartition(".")
                    tag = hashlib.sha256(os.fsencode(raw_rel)).hexdigest()[:6]
                    rel = f"{stem}~{tag}.{suffix}" if dot else f"{rel}~{tag}"
                name_note = f"the file name is not valid UTF-8; indexed as {rel!r}"
            taken.add(rel)
            target = _outside(path, folder)
            if target is not None and not follow_external_symlinks:
                reason = (
                    f"symlink to a file outside the folder ({target}); not read "
                    "(set ingest.follow_external_symlinks to allow it)"
                )
                kind = SUFFIX_KINDS.get(Path(name).suffix.lower(), "unsupported")
                found.append(ScannedFile(rel, path, kind, 0, "", skipped=reason))
                continue
            kind, note = classify(path, rel.rsplit("/", 1)[-1])
            size = path.stat().st_size
            digest = sha256_file(path) if with_hash else ""
            found.append(ScannedFile(rel, path, kind, size, digest, note, name_note=name_note))
    return found
