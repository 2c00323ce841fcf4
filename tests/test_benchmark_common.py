"""Benchmarks time medhub as a user has it installed: with its bytecode cached."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _common(monkeypatch):
    spec = importlib.util.spec_from_file_location("bench_common", ROOT / "benchmarks" / "_common.py")
    module = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, "bench_common", module)
    spec.loader.exec_module(module)
    return module


def test_compile_bytecode_writes_caches_even_when_python_would_not(monkeypatch, tmp_path):
    """With PYTHONDONTWRITEBYTECODE=1 an import writes no cache; compile_bytecode still does."""
    common = _common(monkeypatch)
    pkg = tmp_path / "pkg"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("VALUE = 1\n")
    env = dict(os.environ, PYTHONDONTWRITEBYTECODE="1", PYTHONPATH=str(tmp_path))
    subprocess.run([sys.executable, "-c", "import pkg"], env=env, check=True)
    assert not (pkg / "__pycache__").exists()
    monkeypatch.setenv("PYTHONDONTWRITEBYTECODE", "1")
    common.compile_bytecode(sys.executable, [pkg])
    cached = list((pkg / "__pycache__").glob("__init__.*.pyc"))
    assert len(cached) == 1


def test_machine_info_compiles_medhub_and_the_shipped_packages(monkeypatch):
    common = _common(monkeypatch)
    compiled: list[list[str]] = []
    monkeypatch.setattr(common, "compile_bytecode", lambda python, folders: compiled.append(list(map(str, folders))))
    monkeypatch.setenv("PYTHONDONTWRITEBYTECODE", "1")
    info = common.machine_info(sys.executable)
    import medhub

    assert compiled == [[str(Path(medhub.__file__).parent), str(ROOT / "models")]]
    assert info["bytecode"] == {"PYTHONDONTWRITEBYTECODE": "1", "compiled": compiled[0]}
