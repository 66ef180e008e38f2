"""ZIP archives → their members, ingested recursively, never unpacked beside the input.

Members are unpacked into ``ctx.work_dir`` (the cache). Members whose path is absolute or
climbs out with ``..`` are skipped with a warning. Each member is classified like a file
of the folder and read by its own extractor with the source id ``<zip path>!/<member
path>``; a member that fails becomes a warning and the rest of the archive is still read.

Budgets (``ingest.archive_max_mb``, ``archive_max_entries``, ``archive_max_depth``) are
shared by a top-level archive and every archive nested in it (``ArchiveBudget`` in the
context), and bytes are counted as they are *decompressed*, not as the headers claim; a
spent budget fails the whole top-level file (``BudgetExceeded``), so a zip bomb is
reported as such instead of filling the cache. A compression ratio above ``MAX_RATIO`` on
more than 50 MB is refused before anything is unpacked.
"""

from __future__ import annotations

import dataclasses
import hashlib
import shutil
import zipfile
from pathlib import Path, PurePosixPath

from deepfolder.ingest.base import (
    ArchiveBudget,
    BudgetExceeded,
    ExtractContext,
    ExtractError,
    ExtractResult,
)
from deepfolder.records import Segment, Source

MAX_RATIO = 200


def _safe_member_path(name: str) -> PurePosixPath | None:
    """The member's relative path, or None when it is unsafe to unpack."""
    normalized = name.replace("\\", "/")
    path = PurePosixPath(normalized)
    if not path.parts or path.is_absolute() or ":" in path.parts[0]:  # /x, C:\x
        return None
    if any(part == ".." for part in path.parts):
        return None
    return path


def extract_zip(path: Path, ctx: ExtractContext) -> ExtractResult:
    from deepfolder.ingest.registry import get_extractor
    from deepfolder.ingest.scan import classify

    settings = ctx.settings
    budget = ctx.archive or ArchiveBudget(
        path.name,
        int(settings.archive_max_mb * 2**20),
        settings.archive_max_entries,
        settings.archive_max_depth,
    )
    depth = ctx.rel_path.count("!/") + 1
    if depth > budget.max_depth:
        raise BudgetExceeded(
            f"{budget.name} holds archives nested more than {budget.max_depth} deep "
            f"({ctx.rel_path}); raise ingest.archive_max_depth to read it"
        )
    try:
        archive = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError) as exc:
        raise ExtractError(f"{path.name} is not a readable ZIP archive: {exc}") from exc
    warnings: list[str] = []
    sources: list[Source] = []
    segments: list[Segment] = []
    with archive:
        infos = [i for i in archive.infolist() if not i.is_dir()]
        total = sum(i.file_size for i in infos)
        packed = sum(i.compress_size for i in infos) or 1
        if total > 50 * 2**20 and total / packed > MAX_RATIO:
            raise BudgetExceeded(
                f"{path.name} would unpack to {total / 2**20:.0f} MB "
                f"(ratio {total / packed:.0f}:1); refusing a possible zip bomb"
            )
        unpack_dir = ctx.work_dir / "unzipped"
        if unpack_dir.exists():
            shutil.rmtree(unpack_dir)
        unpack_dir.mkdir(parents=True)
        for info in infos:
            member = _safe_member_path(info.filename)
            if member is None:
                warnings.append(f"{info.filename}: unsafe member path (absolute or '..'), skipped")
                continue
            if any(part.startswith(".") for part in member.parts) or member.parts[0] == "__MACOSX":
                continue
            if info.flag_bits & 0x1:
                warnings.append(f"{info.filename}: encrypted member, skipped")
                continue
            target = unpack_dir.joinpath(*member.parts)
            if not target.resolve().is_relative_to(unpack_dir.resolve()):
                warnings.append(f"{info.filename}: resolves outside the unpack folder, skipped")
                continue
            budget.take_entry()
            target.parent.mkdir(parents=True, exist_ok=True)
            digest = hashlib.sha256()
            try:
                with archive.open(info) as src, target.open("wb") as dst:
                    while block := src.read(1 << 20):
                        budget.take_bytes(len(block))
                        digest.update(block)
                        dst.write(block)
            except BudgetExceeded:
                target.unlink(missing_ok=True)
                raise
            except (zipfile.BadZipFile, OSError, EOFError, ValueError) as exc:
                warnings.append(f"{info.filename}: cannot be unpacked ({exc}), skipped")
                target.unlink(missing_ok=True)
                continue
            member_id = f"{ctx.rel_path}!/{member.as_posix()}"
            kind, note = classify(target, member.name)
            if kind == "unsupported":
                warnings.append(f"{member_id}: {note or 'unsupported file type'}")
                continue
            sub_ctx = dataclasses.replace(
                ctx,
                rel_path=member_id,
                sha256=digest.hexdigest(),
                size=info.file_size,
                work_dir=ctx.work_dir / "members" / digest.hexdigest()[:16],
                archive=budget,
            )
            try:
                if info.file_size == 0:
                    raise ExtractError("file is empty (0 bytes)")
                result = get_extractor(kind)(target, sub_ctx)
            except BudgetExceeded:
                raise
            except Exception as exc:
                warnings.append(f"{member_id}: {exc}")
                continue
            sources.extend(result.sources)
            segments.extend(result.segments)
            warnings.extend(f"{member_id}: {w}" for w in result.warnings)
    if not sources:
        warnings.append(f"{path.name}: no readable member")
    return ExtractResult(sources, segments, warnings)
