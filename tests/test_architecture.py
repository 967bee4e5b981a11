"""ARCHITECTURE's rule, checked: chromosched's algorithms import nothing from Snakemake.

Only the plugin adapter (its own package) and the dry-run planner's DAG reader touch Snakemake's objects.
"""

import ast
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PACKAGE = REPO / "scheduler" / "src" / "chromosched"
# the planner reads the real DAG through Snakemake's API (``snakemake -n`` never builds a scheduler)
ALLOWED = {"chromosched.runtime.workflow_plan"}


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _snakemake_imports(path: Path) -> list[str]:
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = [node.module]
        else:
            continue
        found += [
            f"{path.relative_to(REPO)}:{node.lineno}: {name}"
            for name in names
            if name.split(".")[0].startswith("snakemake")
        ]
    return found


def test_algorithms_import_nothing_from_snakemake():
    modules = sorted(PACKAGE.rglob("*.py"))
    assert len(modules) > 30  # the walk sees the subpackages too
    offending = [line for path in modules if _module_name(path) not in ALLOWED for line in _snakemake_imports(path)]
    assert offending == []


def test_the_planner_is_the_one_that_reads_the_dag():
    planner = [path for path in PACKAGE.rglob("*.py") if _module_name(path) in ALLOWED]
    assert len(planner) == 1 and _snakemake_imports(planner[0])  # the exception is still needed, and found
