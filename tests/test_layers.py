"""The packages of ``src/deepfolder`` depend downward only, in the order that
``docs/architecture.md`` states.

Every import of ours is read from the source with ``ast``: at module level and inside
functions, ``from deepfolder.x import …`` and ``import deepfolder.x``. Imports under
``if TYPE_CHECKING:`` are collected apart and held to the same order. A package may
import itself and any package of a lower layer; nothing of its own layer or above.
``from deepfolder import __version__`` is allowed everywhere: the package's
``__init__.py`` holds the version and imports nothing of ours. (The tool and extractor
registries import modules by name, ``importlib.import_module``; those names lie inside
their own package.)
"""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SRC = ROOT / "src" / "deepfolder"
DOC = ROOT / "docs" / "architecture.md"

LAYERS: tuple[tuple[str, ...], ...] = (
    ("records", "request_model", "settings", "analysis"),
    ("llm", "trace", "prompts"),
    ("index",),
    ("ingest",),
    ("perception", "validate"),
    ("report", "tools"),
    ("agent",),
    ("runner", "eval"),
    ("server", "serve"),
    ("cli",),
)
"""Bottom first. Why each package sits where it does is in docs/architecture.md."""

LAYER_OF = {package: n for n, layer in enumerate(LAYERS) for package in layer}


@dataclass(frozen=True)
class Import:
    module: str
    """The importing module, e.g. ``deepfolder.runner.session``."""
    line: int
    target: str
    """The imported module, e.g. ``deepfolder.agent.loop``."""
    type_checking: bool

    @property
    def source(self) -> str:
        return package_of(self.module)

    @property
    def imported(self) -> str:
        return package_of(self.target)

    def __str__(self) -> str:
        where = " (TYPE_CHECKING)" if self.type_checking else ""
        return f"{self.module}:{self.line} imports {self.target}{where}"


def package_of(module: str) -> str:
    """``deepfolder.agent.loop`` → ``agent``; ``deepfolder.cli`` → ``cli``; the
    package itself (``deepfolder``, ``deepfolder.__version__``) → ``deepfolder``."""
    parts = module.split(".")
    if len(parts) == 1 or parts[1].startswith("__"):
        return "deepfolder"
    return parts[1]


def module_name(path: Path) -> str:
    parts = path.relative_to(SRC.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports_of(path: Path) -> list[Import]:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    guarded: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            guarded.update(id(n) for stmt in node.body for n in ast.walk(stmt))
    module = module_name(path)
    found = []
    for node in ast.walk(tree):
        targets: list[str] = []
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            assert node.level == 0, f"{module}:{node.lineno}: relative import; write it absolute"
            if node.module == "deepfolder":  # from deepfolder import x: x may be a module
                targets = [f"deepfolder.{a.name}" for a in node.names]
            elif node.module:
                targets = [node.module]
        found.extend(
            Import(module, node.lineno, t, id(node) in guarded)
            for t in targets
            if t.split(".")[0] == "deepfolder"
        )
    return found


def all_imports() -> list[Import]:
    return [i for path in sorted(SRC.rglob("*.py")) for i in imports_of(path)]


def upward(imports: list[Import]) -> list[str]:
    """The imports that do not point to the importer's own package or a lower layer."""
    bad = []
    for i in imports:
        if i.imported in (i.source, "deepfolder"):
            continue
        if LAYER_OF[i.imported] >= LAYER_OF[i.source]:
            bad.append(
                f"{i} ({i.source}: layer {LAYER_OF[i.source]}, {i.imported}: layer {LAYER_OF[i.imported]})"
            )
    return bad


def test_every_package_has_a_layer() -> None:
    packages = {
        package_of(module_name(p))
        for p in SRC.rglob("*.py")
        if p.parent != SRC or p.stem != "__init__"
    }
    assert packages == set(LAYER_OF)


def test_the_package_init_imports_nothing_of_ours() -> None:
    assert imports_of(SRC / "__init__.py") == []


def test_imports_point_downward() -> None:
    bad = upward([i for i in all_imports() if not i.type_checking])
    assert not bad, "imports against docs/architecture.md's layers:\n" + "\n".join(bad)


def test_type_checking_imports_point_downward_too() -> None:
    bad = upward([i for i in all_imports() if i.type_checking])
    assert not bad, "TYPE_CHECKING imports against the layers:\n" + "\n".join(bad)


def test_every_layer_is_used() -> None:
    """Each package of a layer above the bottom imports from the layer just below, or
    the layers could be drawn tighter."""
    edges = {(i.source, i.imported) for i in all_imports()}
    for n, layer in enumerate(LAYERS[1:], 1):
        below = set(LAYERS[n - 1])
        assert any((p, q) in edges for p in layer for q in below), (layer, below)


def test_the_architecture_doc_draws_these_layers() -> None:
    text = DOC.read_text(encoding="utf-8")
    chain = re.search(r"^`cli` → .*$", text, re.MULTILINE)
    assert chain, f"{DOC} has no layer chain starting with `cli` →"
    drawn = [tuple(re.findall(r"`(\w+)`", group)) for group in chain.group(0).split("→")]
    assert drawn == [tuple(layer) for layer in reversed(LAYERS)]
    rows = dict(re.findall(r"^\| `(\w+)(?:\.py|/)` \| (\d+) \|", text, re.MULTILINE))
    assert {p: int(n) for p, n in rows.items()} == LAYER_OF
