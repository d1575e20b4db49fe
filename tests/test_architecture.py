"""The package's import rules (docs/architecture.md), checked on the source:

- only ``transforms/``, ``pipelines/`` (and the CLI that launches them) import apache_beam;
- no import cycles among prmflow modules through module-level imports (an import inside a
  function is a deliberate lazy import: heavy engines, optional backends).
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "prmflow"
BEAM_ALLOWED = ("prmflow.transforms", "prmflow.pipelines")


def module_name(path: Path, root: Path) -> str:
    rel = path.relative_to(root.parent).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imports(path: Path, *, module_level_only: bool) -> set[str]:
    """Modules imported by a source file (all imports, or only those run at import time)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    nodes = tree.body if module_level_only else list(ast.walk(tree))
    if module_level_only:  # also imports under module-level if/try blocks
        nodes = [n for top in tree.body for n in ast.walk(top) if not isinstance(top, (ast.FunctionDef, ast.ClassDef))]
        nodes += [n for top in tree.body if isinstance(top, ast.ClassDef)
                  for n in top.body if isinstance(n, (ast.Import, ast.ImportFrom))]
    found: set[str] = set()
    for n in nodes:
        if isinstance(n, ast.Import):
            found.update(a.name for a in n.names)
        elif isinstance(n, ast.ImportFrom) and n.module and n.level == 0:
            found.add(n.module)
            found.update(f"{n.module}.{a.name}" for a in n.names)
    return found


def beam_violations(root: Path) -> list[str]:
    bad = []
    for path in sorted(root.rglob("*.py")):
        name = module_name(path, root)
        if name.startswith(BEAM_ALLOWED):
            continue
        if any(m == "apache_beam" or m.startswith("apache_beam.") for m in imports(path, module_level_only=False)):
            bad.append(name)
    return bad


def import_cycles(root: Path) -> list[list[str]]:
    modules = {module_name(p, root): p for p in root.rglob("*.py")}
    graph = {
        name: sorted({m for m in imports(path, module_level_only=True) if m in modules and m != name})
        for name, path in modules.items()
    }
    cycles, state = [], {}

    def visit(node: str, stack: list[str]) -> None:
        state[node] = "open"
        stack.append(node)
        for nxt in graph[node]:
            if state.get(nxt) == "open":
                cycles.append(stack[stack.index(nxt):] + [nxt])
            elif nxt not in state:
                visit(nxt, stack)
        stack.pop()
        state[node] = "done"

    for node in sorted(graph):
        if node not in state:
            visit(node, [])
    return cycles


def test_pure_modules_never_import_beam():
    assert beam_violations(PACKAGE) == []


def test_no_import_cycles_among_prmflow_modules():
    assert import_cycles(PACKAGE) == []


@pytest.fixture
def planted(tmp_path):
    """A copy of the package's layout with one pure module that imports apache_beam."""
    root = tmp_path / "prmflow"
    (root / "core").mkdir(parents=True)
    (root / "transforms").mkdir()
    (root / "__init__.py").write_text("")
    (root / "core" / "__init__.py").write_text("")
    (root / "transforms" / "__init__.py").write_text("import apache_beam as beam\n")
    return root


def test_the_checks_fail_on_a_planted_beam_import(planted):
    (planted / "core" / "pure.py").write_text("def f():\n    import apache_beam\n")
    assert beam_violations(planted) == ["prmflow.core.pure"]


def test_the_checks_fail_on_a_planted_cycle(planted):
    (planted / "core" / "a.py").write_text("from prmflow.core.b import x\n")
    (planted / "core" / "b.py").write_text("import prmflow.core.a\nx = 1\n")
    assert import_cycles(planted) == [["prmflow.core.a", "prmflow.core.b", "prmflow.core.a"]]


def test_test_module_names_are_unique():
    """pytest imports test modules by basename (no packages): a second test_x.py stops collection."""
    names = [p.name for p in (PACKAGE.parent / "tests").rglob("test_*.py")]
    assert sorted({n for n in names if names.count(n) > 1}) == []
