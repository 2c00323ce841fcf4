"""Build a medigan 1.0.0 workspace that runs a shipped medhub model, and the venv medigan runs in.

Run from the repository root::

    python benchmarks/build_medigan_package.py                       # 00101 into runs/bench/medigan-work
    python benchmarks/build_medigan_package.py 00101 00104 --venv    # also create runs/bench/medigan-venv

medigan 1.0.0 keeps all its state relative to the working directory: it reads its catalog from
``<cwd>/config/global.json`` (it would download it if absent) and imports a model package as
``models.<model_id>.<package_name>`` from ``<cwd>/models/<model_id>/<package_name>/__init__.py``, with
the weights beside it as ``<model_name><extension>``. This script lays out such a workspace: for each
model it copies the shipped package folder unchanged (its ``__init__.py`` already has the
medigan-style ``generate(model_file, num_samples, output_path, save_images)``; the weights are the
shipped ``weights.safetensors``) and writes a medigan-format catalog entry (medigan's catalog is
``{model_id: {"execution", "selection", "description"}}``, with the execution keys medigan requires:
``package_name``, ``package_link``, ``model_name``, ``extension``, ``image_size``,
``dependencies``, ``generate_method``). Run medigan with the workspace as the working directory
and on ``PYTHONPATH``.

``--venv`` creates a separate virtual environment for medigan (it must not share medhub's: medigan
1.0.0 imports ``pkg_resources``, which needs ``setuptools<81``): first ``torch==2.13.0`` (the CPU
build; an unpinned ``torch`` would fetch the CUDA build), then ``medigan==1.0.0 'setuptools<81'``
and ``safetensors`` (which the shipped packages load their weights with), then this checkout's medhub
(editable; the shipped packages draw their noise with ``medhub.noise`` and declare ``medhub`` in their
dependencies, so a medigan user needs it too). medigan's own
requirements are unpinned (tqdm, requests, torch, numpy, PyGithub, matplotlib) and all of them are
imported by ``import medigan``, so they are installed as medigan asks: the benchmark measures
medigan as its users get it.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
DEFAULT_WORKDIR = ROOT / "runs" / "bench" / "medigan-work"
DEFAULT_VENV = ROOT / "runs" / "bench" / "medigan-venv"
MEDIGAN = "medigan==1.0.0"
#: Installed first, alone, so that medigan's unpinned ``torch`` is already satisfied by the CPU build.
TORCH = "torch==2.13.0"
EXTRA = ("setuptools<81", "safetensors")
_IGNORED = shutil.ignore_patterns("__pycache__", "*.pyc", ".DS_Store")


def medigan_entry(model_id: str, entry: dict[str, Any]) -> dict[str, Any]:
    """A medhub catalog entry as medigan 1.0.0 reads it (its execution keys, the same selection and description)."""
    ex = entry["execution"]
    weights = Path(ex.get("weights") or "weights.safetensors")
    gm = ex.get("generate_method", {})
    execution = {
        "package_name": ex.get("package_name") or model_id,
        # a local folder: medigan only downloads when models/<id>/<package_name>/<model_name><extension>
        # is missing, which never happens in a built workspace
        "package_link": f"models/{model_id}",
        "model_name": weights.stem,
        "extension": weights.suffix,
        "image_size": ex.get("image_size") or [],
        "dependencies": list(ex.get("dependencies", [])),
        "generate_method": {
            "name": gm.get("name", "generate"),
            "args": {"base": ["model_file", "num_samples", "output_path", "save_images"],
                     "custom": dict(gm.get("args", {}).get("custom", {}) or {})},
        },
    }
    if gm.get("input_latent_vector_size"):
        execution["generate_method"]["input_latent_vector_size"] = gm["input_latent_vector_size"]
    return {"execution": execution, "selection": entry.get("selection", {}),
            "description": entry.get("description", {})}


def build(model_ids: list[str], workdir: Path = DEFAULT_WORKDIR) -> dict[str, Path]:
    """Lay out the medigan workspace in ``workdir`` for ``model_ids``; returns {model_id: package folder}."""
    from medhub.config import ConfigManager

    cm = ConfigManager()
    workdir = Path(workdir).resolve()
    (workdir / "config").mkdir(parents=True, exist_ok=True)
    (workdir / "models").mkdir(exist_ok=True)
    (workdir / "models" / "__init__.py").touch()  # medigan imports models.<id>.<package_name>
    catalog_path = workdir / "config" / "global.json"
    catalog = json.loads(catalog_path.read_text()) if catalog_path.exists() else {}
    out = {}
    for given in model_ids:
        model_id = cm.resolve_model_id(given)
        entry = cm.config_dict[model_id]
        link = entry["execution"]["package_link"]
        source = (cm.base_dir / link).resolve()
        if not (source / "__init__.py").is_file():
            raise SystemExit(f"{model_id}: no shipped package folder at {source}")
        med = medigan_entry(model_id, entry)
        target = workdir / "models" / model_id / med["execution"]["package_name"]
        if target.exists():
            shutil.rmtree(target)
        target.parent.mkdir(parents=True, exist_ok=True)
        (target.parent / "__init__.py").touch()
        shutil.copytree(source, target, ignore=_IGNORED)
        weights = target / f"{med['execution']['model_name']}{med['execution']['extension']}"
        if not weights.is_file():
            raise SystemExit(f"{model_id}: weights {weights.name} missing from the shipped package")
        catalog[model_id] = med
        out[model_id] = target
        print(f"{model_id}: medigan package at {target.relative_to(workdir)} (weights {weights.name})")
    catalog_path.write_text(json.dumps(catalog, indent=2) + "\n")
    print(f"medigan catalog: {catalog_path} ({len(catalog)} model(s))")
    return out


def venv_python(venv: Path = DEFAULT_VENV) -> Path:
    return Path(venv) / "bin" / "python"


def medigan_installed(venv: Path = DEFAULT_VENV) -> bool:
    python = venv_python(venv)
    if not python.exists():
        return False
    probe = subprocess.run([str(python), "-c", "import importlib.metadata as m; print(m.version('medigan'))"],
                           capture_output=True, text=True, check=False)
    return probe.returncode == 0 and probe.stdout.strip() == "1.0.0"


def medhub_from_this_checkout(venv: Path = DEFAULT_VENV) -> bool:
    """Whether the venv imports medhub from this checkout (with its distribution metadata, which the
    shipped packages' ``medhub>=...`` requirement is checked against)."""
    probe = subprocess.run([str(venv_python(venv)), "-c", "import importlib.metadata as m, medhub; "
                            "print(m.version('medhub') == medhub.__version__, medhub.__file__)"],
                           capture_output=True, text=True, check=False)
    ok, _, where = probe.stdout.strip().partition(" ")
    return probe.returncode == 0 and ok == "True" and Path(where).resolve().is_relative_to(ROOT / "medhub")


def ensure_venv(venv: Path = DEFAULT_VENV, base_python: str | None = None) -> Path:
    """Create the medigan venv if it is missing (torch CPU build first, then medigan, then this checkout's
    medhub, editable: the shipped packages draw their noise with ``medhub.noise`` and require medhub, also
    under medigan); returns its python."""
    venv = Path(venv)
    pip = [str(venv_python(venv)), "-m", "pip", "install", "--quiet"]
    if not medigan_installed(venv):
        base = base_python or getattr(sys, "_base_executable", None) or sys.executable
        print(f"Creating the medigan venv {venv} (python {base})", flush=True)
        if not venv_python(venv).exists():
            subprocess.run([base, "-m", "venv", str(venv)], check=True)
        subprocess.run([*pip, TORCH], check=True)
        subprocess.run([*pip, MEDIGAN, *EXTRA], check=True)
        if not medigan_installed(venv):
            raise SystemExit(f"medigan 1.0.0 did not install into {venv}")
    if not medhub_from_this_checkout(venv):
        print(f"Installing this checkout's medhub into {venv} (the shipped packages require it)", flush=True)
        subprocess.run([*pip, "-e", str(ROOT)], check=True)
    return venv_python(venv)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("model_ids", nargs="*", default=["00101"], help="shipped model ids (default 00101)")
    parser.add_argument("--workdir", type=Path, default=DEFAULT_WORKDIR, help="medigan's working directory")
    parser.add_argument("--venv", nargs="?", const=DEFAULT_VENV, type=Path,
                        help=f"also create medigan's venv (default {DEFAULT_VENV.relative_to(ROOT)})")
    args = parser.parse_args(argv)
    build(args.model_ids, args.workdir)
    if args.venv:
        print(f"medigan python: {ensure_venv(args.venv)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
