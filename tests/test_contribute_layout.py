"""The contribution package keeps its shape (issue 22, item 6): small modules, one job each, and
every environment variable (tokens too) read through medhub.settings. Import circles and private
names across modules are checked for all of medhub by tests/test_architecture.py."""

from __future__ import annotations

import ast
from pathlib import Path

import medhub.contribute

PACKAGE = Path(medhub.contribute.__file__).parent
SOURCES = {p.stem: p.read_text(encoding="utf-8") for p in sorted(PACKAGE.glob("*.py"))}


def test_environment_is_read_only_through_settings():
    for name, source in SOURCES.items():
        for node in ast.walk(ast.parse(source)):
            if isinstance(node, ast.Attribute) and node.attr in ("environ", "getenv"):
                raise AssertionError(f"medhub.contribute.{name} reads os.{node.attr}; use medhub.settings.get")


def test_template_no_longer_imports_the_contributor():
    tree = ast.parse(SOURCES["template"])
    imported = {node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)}
    assert "contributor" not in imported and "ids" in imported


def test_modules_are_small():
    for name, source in SOURCES.items():
        assert len(source.splitlines()) <= 450, f"medhub.contribute.{name} grew past 450 lines; split it by job"
