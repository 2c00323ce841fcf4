"""Helpers shared by the training scripts of the shipped model packages."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]


def load_package(model_id: str):
    """Import ``models/<model_id>/__init__.py`` by file path (the network definitions live there)."""
    init = ROOT / "models" / model_id / "__init__.py"
    name = f"medhub_train_{model_id}"
    spec = importlib.util.spec_from_file_location(name, init, submodule_search_locations=[str(init.parent)])
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def save_grid(images: np.ndarray, path: Path, ncol: int = 8) -> None:
    """Save uint8 images (N, H, W) or (N, H, W, 3) as one PNG grid with 2-pixel gutters."""
    from PIL import Image

    n, h, w = images.shape[:3]
    nrow = -(-n // ncol)
    shape = (nrow * (h + 2) + 2, ncol * (w + 2) + 2) + images.shape[3:]
    grid = np.zeros(shape, np.uint8)
    for i, img in enumerate(images):
        r, c = divmod(i, ncol)
        grid[2 + r * (h + 2) : 2 + r * (h + 2) + h, 2 + c * (w + 2) : 2 + c * (w + 2) + w] = img
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(grid).save(path)


def write_json(path: Path, data: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=2) + "\n")
