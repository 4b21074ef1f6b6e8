"""The package's shape, checked: imports go one way, nothing reaches up to the package root,
functions stay short, the version is stated once.

The import graph comes from grimp (import-linter's graph library), which reads every `import`
statement of src/tomdistill statically, including ones inside functions; imports under
`if TYPE_CHECKING:` are left out, as they never run. A circle is any module that can reach
itself through its imports. Importing `a.b.c` runs `a/b/__init__.py` first, so an import of a
submodule also counts as one of each package above it (those its importer is not inside already).
"""

from __future__ import annotations

import ast
import graphlib
import tomllib
from pathlib import Path

import grimp
import pytest

import tomdistill
from tomdistill.versions import __version__

SRC = Path(tomdistill.__file__).parent
MAX_FUNCTION_LINES = 60


@pytest.fixture(scope="module")
def graph() -> grimp.ImportGraph:
    return grimp.build_graph("tomdistill", exclude_type_checking_imports=True, cache_dir=None)


def _ancestors(module: str) -> set[str]:
    parts = module.split(".")
    return {".".join(parts[:i]) for i in range(1, len(parts))}


def import_edges(graph) -> dict[str, set[str]]:
    """What importing each module runs: its direct imports and the packages above each of them."""
    edges: dict[str, set[str]] = {}
    for module in graph.modules:
        edges[module] = set()
        for imported in graph.find_modules_directly_imported_by(module):
            edges[module] |= {imported} | (_ancestors(imported) - _ancestors(module) - {module})
    return edges


def test_no_import_circles(graph) -> None:
    edges = import_edges(graph)
    assert len(edges) > 60  # the whole package was read
    try:
        graphlib.TopologicalSorter(edges).prepare()
    except graphlib.CycleError as exc:
        pytest.fail(f"import circle: {' -> '.join(exc.args[1])}")


def test_no_module_imports_the_package_root(graph) -> None:
    assert graph.find_modules_that_directly_import("tomdistill") == set()


def test_the_graph_sees_imports_inside_functions(graph) -> None:
    # elicit imports ask at the top; the CLI imports elicit inside a command (to start fast).
    assert graph.direct_import_exists(importer="tomdistill.elicit", imported="tomdistill.ask")
    assert graph.chain_exists(importer="tomdistill.pipeline", imported="tomdistill.ask")


def test_an_import_of_a_submodule_runs_its_package() -> None:
    """The circle this catches: x imports p.m, p/__init__ imports p.a, p.a imports x."""
    graph = grimp.ImportGraph()
    for importer, imported in (("pkg.x", "pkg.p.m"), ("pkg.p", "pkg.p.a"), ("pkg.p.a", "pkg.x")):
        graph.add_import(importer=importer, imported=imported)
    edges = import_edges(graph)
    assert "pkg.p" in edges["pkg.x"] and "pkg.p" not in edges["pkg.p.a"]
    with pytest.raises(graphlib.CycleError):
        graphlib.TopologicalSorter(edges).prepare()


def _long_functions(root: Path) -> list[str]:
    found = []
    for path in sorted(root.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                lines = node.end_lineno - node.lineno + 1  # type: ignore[operator]
                if lines > MAX_FUNCTION_LINES:
                    found.append(f"{path.relative_to(root)}:{node.lineno} {node.name} ({lines} lines)")
    return found


def test_no_function_over_60_lines() -> None:
    assert _long_functions(SRC) == []


def test_the_length_check_finds_a_long_function(tmp_path) -> None:
    body = "\n".join(f"    x{i} = {i}" for i in range(MAX_FUNCTION_LINES))
    (tmp_path / "long.py").write_text(f"def long():\n{body}\n")
    (tmp_path / "short.py").write_text("def short():\n    return 1\n")
    assert _long_functions(tmp_path) == [f"long.py:1 long ({MAX_FUNCTION_LINES + 1} lines)"]


def test_one_version_string() -> None:
    pyproject = tomllib.loads((SRC.parent.parent / "pyproject.toml").read_text())
    assert __version__ == tomdistill.__version__ == pyproject["project"]["version"]


def test_only_the_integrations_import_simulation_frameworks(graph) -> None:
    """`import tomdistill` (and the CLI) must never load Concordia or Mesa: they are optional
    extras, and Concordia 2.1 alone pulls in dozens of provider SDKs."""
    integrations = {m for m in graph.modules if m.startswith("tomdistill.integrations")}
    assert "tomdistill.integrations.concordia_lm" in integrations
    for module in integrations:
        assert graph.find_modules_that_directly_import(module) <= integrations, module
    import subprocess
    import sys

    probe = ("import sys, tomdistill, tomdistill.agents, tomdistill.cli.app; "
             "print(sorted({m.split('.')[0] for m in sys.modules} & {'concordia', 'mesa'}))")
    loaded = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True).stdout
    assert loaded.strip() == "[]"
