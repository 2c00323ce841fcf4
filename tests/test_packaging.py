"""A non-editable install works: the wheel carries the catalog, its schema and the shipped models."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from conftest import REPO


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    pytest.importorskip("hatchling")
    out = tmp_path_factory.mktemp("wheel")
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--no-build-isolation",
                    "-w", str(out), str(REPO)], check=True, capture_output=True)
    (found,) = out.glob("medhub-*.whl")
    return found


def test_wheel_contents(wheel):
    names = set(zipfile.ZipFile(wheel).namelist())
    assert "medhub/_bundled/config/global.json" in names
    assert "medhub/schema/catalog.schema.json" in names
    catalog = json.loads(zipfile.ZipFile(wheel).read("medhub/_bundled/config/global.json"))
    for model_id, entry in catalog["models"].items():
        link = entry["execution"]["package_link"]
        if not link.startswith(("http", "hf://")):  # remote archives and Hub repositories are not shipped
            assert f"medhub/_bundled/models/{link}/__init__.py" in names, model_id
    assert not [n for n in names if "__pycache__" in n or n.endswith(".pyc")]
    assert any(n.startswith("medhub/_bundled/templates/") for n in names)


def test_installed_wheel_generates_from_any_directory(wheel, tmp_path):
    target = tmp_path / "site"
    subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--target", str(target),
                    str(wheel)], check=True, capture_output=True)
    code = (
        "import medhub, sys; from medhub import Generators; g = Generators();"
        "assert '_bundled' in str(g.config_manager.source), g.config_manager.source;"
        "imgs = g.generate(101, num_samples=2, save_images=False, seed=0, progress=False);"
        "print(medhub.__file__, imgs[0].shape)"
    )
    env = dict(os.environ, PYTHONPATH=str(target))
    elsewhere = tmp_path / "cwd"
    elsewhere.mkdir()
    out = subprocess.run([sys.executable, "-c", code], cwd=elsewhere, env=env, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert str(target) in out.stdout and "(64, 64)" in out.stdout
