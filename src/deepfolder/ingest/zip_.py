"""ZIP archives → their members, ingested recursively, never unpacked beside the input.

Members are unpacked into ``ctx.work_dir`` (the cache). Members whose path is absolute or
climbs out with ``..`` are skipped with a warning, as are archives that would unpack to
more than ``MAX_UNPACKED_BYTES`` / ``MAX_MEMBERS`` or with a compression ratio typical
of a zip bomb. Each member is classified like a file of the folder and read by its own
extractor with the source id ``<zip path>!/<member path>``; a member that fails becomes a
warning and the rest of the archive is still read. Nested archives go two levels deep.
"""

from __future__ import annotations

import dataclasses
import hashlib
import shutil
import zipfile
from pathlib import Path, PurePosixPath

from deepfolder.ingest.base import ExtractContext, ExtractError, ExtractResult
from deepfolder.records import Segment, Source

MAX_MEMBERS = 10_000
MAX_UNPACKED_BYTES = 4 * 1024**3
MAX_RATIO = 200
MAX_DEPTH = 2


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

    depth = ctx.rel_path.count("!/")
    if depth >= MAX_DEPTH:
        raise ExtractError(f"{path.name}: archives nested more than {MAX_DEPTH} deep are not read")
    try:
        archive = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError) as exc:
        raise ExtractError(f"{path.name} is not a readable ZIP archive: {exc}") from exc
    warnings: list[str] = []
    sources: list[Source] = []
    segments: list[Segment] = []
    with archive:
        infos = [i for i in archive.infolist() if not i.is_dir()]
        if len(infos) > MAX_MEMBERS:
            raise ExtractError(f"{path.name} has {len(infos)} members (limit {MAX_MEMBERS})")
        total = sum(i.file_size for i in infos)
        packed = sum(i.compress_size for i in infos) or 1
        if total > MAX_UNPACKED_BYTES or (total > 50 * 2**20 and total / packed > MAX_RATIO):
            raise ExtractError(
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
            target.parent.mkdir(parents=True, exist_ok=True)
            digest = hashlib.sha256()
            with archive.open(info) as src, target.open("wb") as dst:
                while block := src.read(1 << 20):
                    digest.update(block)
                    dst.write(block)
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
            )
            try:
                if info.file_size == 0:
                    raise ExtractError("file is empty (0 bytes)")
                result = get_extractor(kind)(target, sub_ctx)
            except Exception as exc:
                warnings.append(f"{member_id}: {exc}")
                continue
            sources.extend(result.sources)
            segments.extend(result.segments)
            warnings.extend(f"{member_id}: {w}" for w in result.warnings)
    if not sources:
        warnings.append(f"{path.name}: no readable member")
    return ExtractResult(sources, segments, warnings)
