"""DCGAN generating 64x64 axial T1-weighted brain MRI slices (medhub/1 package).

Trained on axial slices of the MNI152 2009 T1 template (see README.md). The module
implements both interfaces of the medhub model package contract:

* native ``medhub/1``: :func:`load` once, then :func:`sample` with one seed per sample;
* medigan compatibility: :func:`generate`.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from medhub import noise
from medhub import package_kit as kit

LATENT_DIM = 100
IMAGE_SIZE = 64
WEIGHTS_FILE = "weights.safetensors"
#: The network always runs on blocks of exactly this many latent vectors (the last one padded),
#: so the arithmetic for a sample never depends on how many samples were asked for at once.
CHUNK = 32


class Generator(nn.Module):
    """DCGAN generator: latent vector (N, 100) -> image (N, 1, 64, 64) in [-1, 1]."""

    def __init__(self, latent_dim: int = LATENT_DIM, width: int = 32) -> None:
        super().__init__()
        w = width
        self.net = nn.Sequential(
            nn.ConvTranspose2d(latent_dim, w * 8, 4, 1, 0, bias=False),  # 4x4
            nn.BatchNorm2d(w * 8),
            nn.ReLU(True),
            nn.ConvTranspose2d(w * 8, w * 4, 4, 2, 1, bias=False),  # 8x8
            nn.BatchNorm2d(w * 4),
            nn.ReLU(True),
            nn.ConvTranspose2d(w * 4, w * 2, 4, 2, 1, bias=False),  # 16x16
            nn.BatchNorm2d(w * 2),
            nn.ReLU(True),
            nn.ConvTranspose2d(w * 2, w, 4, 2, 1, bias=False),  # 32x32
            nn.BatchNorm2d(w),
            nn.ReLU(True),
            nn.ConvTranspose2d(w, 1, 4, 2, 1, bias=False),  # 64x64
            nn.Tanh(),
        )

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.net(z.view(z.shape[0], -1, 1, 1))


def load(weights_path: str | Path, device: str = "cpu") -> Generator:
    """Build the generator, load its safetensors weights and move it to ``device``."""
    from safetensors.torch import load_file

    model = Generator()
    model.load_state_dict(load_file(str(weights_path)))
    return model.to(device).eval()


def latents(seeds: Sequence[int], device: Any = "cpu") -> torch.Tensor:
    """One standard-normal latent vector per seed, drawn for the whole batch on ``device`` with
    :func:`medhub.noise.normal` (Philox keyed by the seed: the same random bits on every device)."""
    return noise.normal(seeds, LATENT_DIM, device=device)


def sample(model: Generator, seeds: Sequence[int], latent: Any = None, **_: Any) -> dict[str, np.ndarray]:
    """Generate one image per seed; sample i depends only on ``seeds[i]``.

    ``latent`` (optional, shape (N, 100)) replaces the seeded latent vectors; the latent
    explorer uses it. Returns ``{"image": uint8 array (N, 64, 64)}``.
    """
    device = next(model.parameters()).device
    z = latents(seeds, device) if latent is None else kit.latent_input(latent, len(seeds), LATENT_DIM)
    return {"image": kit.to_uint8(kit.run_in_blocks(model, z, block=CHUNK, device=device))}


def generate(model_file: str | Path, num_samples: int = 16, output_path: str | Path | None = None,
             save_images: bool = True, seed: int | None = None, **kwargs: Any) -> list[np.ndarray] | None:
    """medigan-compatible entry point: returns a list of (64, 64) uint8 arrays, or writes PNGs.

    Without ``seed`` the per-sample seeds come from numpy's global generator, so seeding it
    (as medigan users do with ``np.random.seed``) makes the call reproducible. ``latent``
    (optional, (num_samples, 100)) is passed through to :func:`sample`.
    """
    return kit.medigan_generate(load, sample, model_file, num_samples, output_path, save_images, seed,
                                latent=kwargs.get("latent"))
