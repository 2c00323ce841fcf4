"""The medigan-format test packages of ``tests/medigan_packages``: their assets, archives and a
medigan-format catalog (the shape of medigan 1.0.0's ``global.json``) that links to them."""

from __future__ import annotations

import io
import shutil
import zipfile
from pathlib import Path

import numpy as np

CORPUS = Path(__file__).resolve().parent / "medigan_packages"
DCGAN, BEZIER, I2I, NAMES = "00901_DCGAN_HW1", "00902_BEZIER_MASKS", "00903_CYCLEGAN_I2I", "00904_PIX2PIXHD_NAMES"
NUM_INPUTS = 5


def make_assets(folder: Path) -> None:
    """Copy the packages into ``folder`` and write their weights and input files (deterministic)."""
    import torch
    from PIL import Image

    shutil.copytree(CORPUS, folder, dirs_exist_ok=True, ignore=shutil.ignore_patterns("__pycache__", "*.md"))
    import importlib.util

    spec = importlib.util.spec_from_file_location("_dcgan_model", folder / DCGAN / "model.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    torch.manual_seed(0)
    torch.save(module.Generator().state_dict(), folder / DCGAN / "dcgan.pt")
    rng = np.random.default_rng(0)
    inputs = folder / I2I / "inputs" / "T1"
    inputs.mkdir(parents=True, exist_ok=True)
    for k in range(NUM_INPUTS):
        Image.fromarray(rng.integers(0, 256, (16, 16), dtype=np.uint8)).save(inputs / f"t1_{k:02d}.png")
    np.savez(folder / I2I / "cyclegan.npz", gain=np.float32(0.8), bias=np.float32(10.0))
    names_in = folder / NAMES / "input"
    names_in.mkdir(parents=True, exist_ok=True)
    for k in range(NUM_INPUTS):
        np.save(names_in / f"case_{k:02d}.npy", rng.integers(0, 256, (16, 16), dtype=np.uint8))
    np.save(folder / NAMES / "pix2pixhd.npy", np.array([3]))


def archive(folder: Path, model_id: str, at_root: bool = False) -> bytes:
    """A zip of one package as medigan publishes it: ``<model_id>/...`` inside with the input folders
    (``inputs/``, ``input/``) beside it, where medigan's ``models/<model_id>/inputs/...`` arguments
    find them; or everything at the archive's root (historical entries with an empty ``package_name``)."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for path in sorted((folder / model_id).rglob("*")):
            if path.is_file() and "__pycache__" not in path.parts:
                rel = path.relative_to(folder / model_id).as_posix()
                beside = rel.split("/")[0] in ("inputs", "input")
                zf.write(path, rel if at_root or beside else f"{model_id}/{rel}")
    return buf.getvalue()


def medigan_catalog(urls: dict[str, str]) -> dict:
    """A medigan-format catalog of the four packages at ``urls`` (model id -> archive URL)."""

    def entry(model_id: str, model_name: str, extension: str, custom: dict, package_name: str | None = None,
              deps: tuple[str, ...] = ("numpy",)) -> dict:
        return {
            "execution": {
                "package_name": model_id if package_name is None else package_name,
                "package_link": urls[model_id],
                "model_name": model_name,
                "extension": extension,
                "image_size": [32, 32] if model_id != I2I else [16, 16],
                "dependencies": list(deps),
                "generate_method": {"name": "generate", "args": {
                    "base": ["model_file", "num_samples", "output_path", "save_images"], "custom": custom}},
            },
            "selection": {"performance": {"SSIM": None, "MSE": None, "FID": 50.0, "turing_test": None},
                          "organ": ["brain"], "modality": ["MRI"], "type": "GAN", "tags": ["test"]},
            "description": {"title": f"test package {model_id}", "version": "1.0", "publication": None,
                            "comment": "medhub test corpus"},
        }

    return {
        DCGAN: entry(DCGAN, "dcgan", ".pt", {"gpu_id": 0, "image_size": 32}, deps=("numpy", "torch")),
        BEZIER: entry(BEZIER, "none", ".pt", {"image_size": 32}, package_name=""),
        I2I: entry(I2I, "cyclegan", ".npz", {"input_path": f"models/{I2I}/inputs/T1", "gpu_id": "0",
                                              "translate_all_images": False, "T1_to_T2": True}),
        NAMES: entry(NAMES, "pix2pixhd", ".npy", {"input_path": f"models/{NAMES}/input", "image_size": "16",
                                                  "gpu_id": "0"}),
    }
