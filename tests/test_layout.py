"""The package layout follows the pipeline: a module imports only from its own stage or the stages below.

A newcomer finds a stage by its folder; this test keeps imports from pointing back up the pipeline
(a report reaching into the API, the reference reaching into the cost model it is meant to check).
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "hwsim"

STAGES = [
    {"hwsim.errors", "hwsim.units", "hwsim.files", "hwsim.bundled"},
    {"hwsim.ops"},
    {"hwsim.spec"},
    {"hwsim.model"},
    {"hwsim.cost", "hwsim.reference"},
    {"hwsim.interchange"},
    {"hwsim.schedule"},
    {"hwsim.estimate"},
    {"hwsim.studies", "hwsim.training"},
    {"hwsim.report"},
    {"hwsim.api"},
    {"hwsim.cli", "hwsim.__main__"},
]
"""Stages from the bottom up; a module may import its own stage and any stage listed before it."""

INDEPENDENT = {
    ("hwsim.reference", "hwsim.cost"),
    ("hwsim.cost", "hwsim.reference"),
    ("hwsim.training", "hwsim.studies"),
    ("hwsim.interchange", "hwsim.cost"),
}
"""Stages on one level that must not import each other: the reference checks the cost model, so they share nothing."""


def stage_of(module: str) -> tuple[int, str]:
    if module == "hwsim":
        return 0, module
    for rank, stage in enumerate(STAGES):
        for root in stage:
            if module == root or module.startswith(root + "."):
                return rank, root
    raise AssertionError(f"{module} is in no stage; add it to STAGES")


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def runtime_imports(path: Path) -> set[str]:
    """hwsim modules imported at run time (imports under ``if TYPE_CHECKING:`` are annotations only)."""
    tree = ast.parse(path.read_text())
    skipped = {
        id(node)
        for stmt in ast.walk(tree)
        if isinstance(stmt, ast.If) and "TYPE_CHECKING" in ast.unparse(stmt.test)
        for node in ast.walk(stmt)
    }
    found = set()
    for node in ast.walk(tree):
        if id(node) in skipped:
            continue
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found |= {f"{node.module}.{alias.name}" if node.module == "hwsim" else node.module for alias in node.names}
    return {name for name in found if name.startswith("hwsim.")}


MODULES = sorted(PACKAGE.rglob("*.py"))


@pytest.mark.parametrize("path", MODULES, ids=lambda p: str(p.relative_to(PACKAGE)))
def test_imports_point_down_the_pipeline(path: Path) -> None:
    module = module_name(path)
    rank, root = stage_of(module)
    for imported in runtime_imports(path):
        imported_rank, imported_root = stage_of(imported)
        assert imported_rank <= rank, f"{module} imports {imported}, a later stage ({imported_root})"
        assert (root, imported_root) not in INDEPENDENT, (
            f"{module} imports {imported}: {root} and {imported_root} stay apart"
        )


def test_few_modules_at_the_top() -> None:
    top = sorted(p.name for p in PACKAGE.glob("*.py"))
    assert len(top) <= 10, top


@pytest.mark.parametrize("path", sorted((PACKAGE / "ops").glob("*.py")), ids=lambda p: p.name)
def test_the_op_traits_import_nothing_from_hwsim_but_errors_and_units(path: Path) -> None:
    """Every stage reads the table of op traits; it names a ``Layer`` in annotations only."""
    outside = {name for name in runtime_imports(path) if name != "hwsim.ops" and not name.startswith("hwsim.ops.")}
    assert outside <= {"hwsim.errors", "hwsim.units"}
