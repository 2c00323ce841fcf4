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


def augment(x, gen, max_shift: int = 3):
    """Random left-right flips and integer shifts of up to ``max_shift`` pixels of a batch (N, C, H, W)
    in [-1, 1] (background -1), drawn from the torch generator ``gen`` (the training scripts share it)."""
    import torch
    import torch.nn.functional as F

    flip = torch.rand(x.shape[0], generator=gen) < 0.5
    x = torch.where(flip[:, None, None, None], x.flip(-1), x)
    pad = F.pad(x, [max_shift] * 4, value=-1.0)
    out = torch.empty_like(x)
    s = x.shape[-1]
    shifts = torch.randint(0, 2 * max_shift + 1, (x.shape[0], 2), generator=gen)
    for i, (dy, dx) in enumerate(shifts.tolist()):
        out[i] = pad[i, :, dy : dy + s, dx : dx + s]
    return out


def recalibrate_batchnorm(g, latent_dim: int, batches: int = 100, batch_size: int = 64) -> None:
    """Replace the BatchNorm running statistics of an unconditional generator by exact averages over
    fresh latent batches, so that eval mode matches training and samples are independent of each other."""
    import torch
    from torch import nn

    gen = torch.Generator().manual_seed(1234)
    for m in g.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.reset_running_stats()
            m.momentum = None
    g.train()
    with torch.no_grad():
        for _ in range(batches):
            g(torch.randn(batch_size, latent_dim, generator=gen))
    g.eval()
