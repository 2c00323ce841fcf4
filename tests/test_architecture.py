"""The shape of the code: no import circles inside medhub, no import that runs back up to a
parent package, no private name used across modules, no module far over 600 lines.

The import graph is read from the source: every import, also those inside functions and in
``if TYPE_CHECKING:`` blocks (an import for a type hint is a dependency too). The engine
(``medhub.execution``) imports nothing above it: no run (``medhub.runs``), no facade.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1] / "medhub"
MAX_LINES = 620


def _modules() -> dict[str, Path]:
    out = {}
    for path in ROOT.rglob("*.py"):
        parts = list(path.relative_to(ROOT.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out[".".join(parts)] = path
    return out


MODULES = _modules()


def _is_package(name: str) -> bool:
    return MODULES[name].name == "__init__.py"


def _type_checking_lines(tree: ast.AST) -> set[int]:
    lines: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            for child in node.body:
                lines.update(range(child.lineno, (child.end_lineno or child.lineno) + 1))
    return lines


def imports(name: str, type_checking: bool = True) -> list[tuple[str, list[str], int]]:
    """(imported module, names imported from it, line) of each medhub import of module ``name``
    (``type_checking=False``: without those in ``if TYPE_CHECKING:`` blocks)."""
    path = MODULES[name]
    tree = ast.parse(path.read_text())
    skip = set() if type_checking else _type_checking_lines(tree)
    package = name if _is_package(name) else name.rsplit(".", 1)[0]
    out = []
    for node in ast.walk(tree):
        if getattr(node, "lineno", None) in skip:
            continue
        if isinstance(node, ast.Import):
            out += [(a.name, [], node.lineno) for a in node.names if a.name.split(".")[0] == "medhub"]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            if target.split(".")[0] != "medhub":
                continue
            names = [a.name for a in node.names]
            submodules = [f"{target}.{n}" for n in names if f"{target}.{n}" in MODULES]
            rest = [n for n in names if f"{target}.{n}" not in MODULES]
            out += [(m, [], node.lineno) for m in submodules]
            if rest or not submodules:
                out.append((target, rest, node.lineno))
    return out


def graph() -> dict[str, set[str]]:
    return {name: {target for target, _, _ in imports(name) if target in MODULES and target != name}
            for name in MODULES}


def test_no_import_circles():
    edges = graph()
    state: dict[str, int] = {}
    stack: list[str] = []
    cycles = []

    def visit(node: str) -> None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(edges[node]):
            if state.get(nxt) == 1:
                cycles.append(stack[stack.index(nxt):] + [nxt])
            elif nxt not in state:
                visit(nxt)
        stack.pop()
        state[node] = 2

    for node in sorted(edges):
        if node not in state:
            visit(node)
    assert cycles == [], "import circles: " + "; ".join(" -> ".join(c) for c in cycles)


#: What the engine may import outside itself: the layers below it (and the catalog, for type hints).
ENGINE_BELOW = ("medhub.errors", "medhub._paths", "medhub.settings", "medhub.validate", "medhub.version",
                "medhub.config", "medhub.outputs", "medhub.atomic", "medhub.progress")


def test_the_engine_imports_nothing_above_it():
    """No upward arrow: ``medhub.execution`` never imports the runs, the facade, the CLI or the
    features built on them (function-level and TYPE_CHECKING imports counted)."""
    edges = graph()
    up = [f"{name} imports {target}" for name in sorted(edges) if name.startswith("medhub.execution")
          for target in sorted(edges[name]) if not target.startswith("medhub.execution")
          and not any(target == b or target.startswith(b + ".") for b in ENGINE_BELOW)]
    assert up == []


def test_the_graph_counts_function_level_and_type_checking_imports(tmp_path, monkeypatch):
    """The reader of the graph sees an import inside a function and one under TYPE_CHECKING."""
    pkg = tmp_path / "medhub"
    pkg.mkdir()
    (pkg / "a.py").write_text("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from .b import X\n")
    (pkg / "b.py").write_text("def f():\n    from .a import Y\n")
    monkeypatch.setitem(MODULES, "medhub.a", pkg / "a.py")
    monkeypatch.setitem(MODULES, "medhub.b", pkg / "b.py")
    assert [t for t, _, _ in imports("medhub.a")] == ["medhub.b"]
    assert [t for t, _, _ in imports("medhub.b")] == ["medhub.a"]
    assert imports("medhub.a", type_checking=False) == []


def test_no_import_runs_back_up_to_a_parent_package():
    """A module never imports a package that contains it (e.g. ``from .. import __version__``)."""
    bad = [f"{name}:{line} imports {target}" for name in MODULES for target, _, line in imports(name)
           if target in MODULES and _is_package(target) and name.startswith(target + ".")
           and not (_is_package(name) and name == target)]
    assert bad == []


def test_no_private_name_used_across_modules():
    bad = [f"{name}:{line} imports {n} from {target}" for name in MODULES for target, names, line in imports(name)
           for n in names if n.startswith("_") and n != "__version__" and target != name]
    assert bad == []


@pytest.mark.parametrize("name", sorted(MODULES))
def test_module_size(name):
    lines = len(MODULES[name].read_text().splitlines())
    assert lines <= MAX_LINES, f"{name} has {lines} lines; split it by job"


# ---------------------------------------------------------------------------- settings in one place
def test_settings_page_is_generated_from_the_table():
    from medhub.settings import markdown_table

    page = (ROOT.parent / "docs" / "settings.md").read_text()
    assert page == markdown_table(), "docs/settings.md is stale: python -m medhub.settings > docs/settings.md"


def test_only_the_settings_module_reads_medhub_environment_variables():
    import re

    reads = re.compile(r"(os\.environ|os\.getenv|environ\.get)\W+[^\n]*MEDHUB_")
    bad = [name for name, path in MODULES.items() if name != "medhub.settings" and reads.search(path.read_text())]
    assert bad == []


def test_every_documented_variable_is_in_the_table():
    import re

    from medhub.settings import SETTINGS

    texts = [ROOT.parent / "README.md", *sorted((ROOT.parent / "docs").glob("*.md"))]
    named = {m for p in texts for m in re.findall(r"\bMEDHUB_[A-Z_]+[A-Z]\b", p.read_text())}
    assert sorted(named - set(SETTINGS)) == []


# ---------------------------------------------------------------------------- one place per decision (issue 33)
def _code_lines(name: str, needle: str) -> list[str]:
    """Lines of module ``name`` holding ``needle``, outside doctest examples."""
    return [f"{name}:{i}" for i, line in enumerate(MODULES[name].read_text().splitlines(), 1)
            if needle in line and not line.lstrip().startswith(">>>")]


def test_one_module_decides_whether_a_progress_bar_is_drawn():
    bad = [hit for name in MODULES if name != "medhub.progress" for hit in _code_lines(name, "isatty(")]
    assert bad == [], "use medhub.progress.shows_progress / progress_bar"


def test_one_function_builds_the_default_catalog():
    """A catalog is passed down (a Generators' config_manager); without one, config.catalog_or_default."""
    bad = [hit for name in MODULES if name != "medhub.config" for hit in _code_lines(name, "ConfigManager()")]
    assert bad == [], "take a catalog argument and use medhub.config.catalog_or_default"


def test_atomic_writes_go_through_one_module():
    """Files are written atomically by medhub.atomic; os.replace elsewhere only moves what is already
    complete (extracted package folders, finished downloads, a run's staging folder)."""
    moves = {"medhub.execution.cache", "medhub.execution.fetch", "medhub.outputs.runs"}
    bad = [hit for name in MODULES if name not in moves | {"medhub.atomic"} for hit in _code_lines(name, "os.replace(")]
    assert bad == [], "write through medhub.atomic (replacing, write_*_atomically)"
