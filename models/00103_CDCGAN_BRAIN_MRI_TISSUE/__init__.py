"""Class-conditional DCGAN generating 64x64 axial brain slices of three MNI152 maps (medhub/1 package).

The condition selects the map: ``"T1"`` (T1-weighted intensity), ``"GM"`` (grey-matter
probability) or ``"WM"`` (white-matter probability); images are uint8 in [0, 255]. Trained on
axial slices of the MNI152 2009 templates shipped in nilearn (see README.md). The module
implements both interfaces of the medhub model package contract:

* native ``medhub/1``: :func:`load` once, then :func:`sample` with one seed per sample;
* medigan compatibility: :func:`generate`, returning ``(image, label)`` tuples.
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
#: The conditions, in the order of their class indices 0, 1, 2.
CONDITIONS = ("T1", "GM", "WM")
NUM_CLASSES = len(CONDITIONS)
EMBED_DIM = 32
WEIGHTS_FILE = "weights.safetensors"
#: The network always runs on blocks of exactly this many latent vectors (the last one padded),
#: so the arithmetic for a sample never depends on how many samples were asked for at once.
CHUNK = 32


class ClassBatchNorm2d(nn.Module):
    """Batch normalisation with separate statistics and affine parameters for each class.

    Training feeds batches of one class, so each class's statistics are over samples of that class
    only and, as in an unconditional DCGAN, normalisation forces every channel to vary with the
    latent vector. In eval mode sample i is normalised with the running statistics of its own
    class, element by element, so it does not depend on the rest of the batch.
    """

    def __init__(self, channels: int, num_classes: int = NUM_CLASSES) -> None:
        super().__init__()
        self.bns = nn.ModuleList(nn.BatchNorm2d(channels) for _ in range(num_classes))

    def forward(self, x: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        if self.training:
            out = torch.empty_like(x)
            for k in c.unique().tolist():
                sel = c == k
                out[sel] = self.bns[k](x[sel])
            return out
        mean = torch.stack([bn.running_mean for bn in self.bns])[c][:, :, None, None]
        var = torch.stack([bn.running_var for bn in self.bns])[c][:, :, None, None]
        weight = torch.stack([bn.weight for bn in self.bns])[c][:, :, None, None]
        bias = torch.stack([bn.bias for bn in self.bns])[c][:, :, None, None]
        return (x - mean) * torch.rsqrt(var + self.bns[0].eps) * weight + bias


class Generator(nn.Module):
    """Conditional DCGAN generator: latent (N, 100) and class (N,) -> image (N, 1, 64, 64) in [-1, 1].

    The class is looked up in a learned embedding (3 x 32) that is concatenated to the latent
    vector before the first transposed convolution, and it selects the class's own batch
    normalisation (:class:`ClassBatchNorm2d`) after each transposed convolution.
    """

    def __init__(self, latent_dim: int = LATENT_DIM, num_classes: int = NUM_CLASSES, embed_dim: int = EMBED_DIM,
                 width: int = 32) -> None:
        super().__init__()
        w = width
        self.embed = nn.Embedding(num_classes, embed_dim)
        chans = [latent_dim + embed_dim, w * 8, w * 4, w * 2, w]  # 1x1 -> 4x4 -> 8x8 -> 16x16 -> 32x32
        self.convs = nn.ModuleList(
            nn.ConvTranspose2d(cin, cout, 4, 1 if i == 0 else 2, 0 if i == 0 else 1, bias=False)
            for i, (cin, cout) in enumerate(zip(chans[:-1], chans[1:]))
        )
        self.norms = nn.ModuleList(ClassBatchNorm2d(cout, num_classes) for cout in chans[1:])
        self.out = nn.ConvTranspose2d(w, 1, 4, 2, 1, bias=False)  # 64x64

    def forward(self, z: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        h = torch.cat([z.view(z.shape[0], -1), self.embed(c)], dim=1).view(z.shape[0], -1, 1, 1)
        for conv, norm in zip(self.convs, self.norms):
            h = torch.relu(norm(conv(h), c))
        return torch.tanh(self.out(h))


def load(weights_path: str | Path, device: str = "cpu") -> Generator:
    """Build the generator, load its safetensors weights, move it to ``device`` and set eval mode."""
    from safetensors.torch import load_file

    model = Generator()
    model.load_state_dict(load_file(str(weights_path)))
    return model.to(device).eval()


def _accepted() -> str:
    names = ", ".join(f'"{c}"' for c in CONDITIONS)
    return f"{names} (case-insensitive) or 0, 1, 2"


def condition_index(value: Any) -> int:
    """Class index (0, 1, 2) of one condition: ``"T1"``/``"GM"``/``"WM"`` (any case) or 0/1/2.

    Raises ValueError naming the accepted values for anything else.
    """
    if isinstance(value, np.ndarray) and value.ndim == 0:
        value = value.item()
    if isinstance(value, (bytes, np.bytes_)):
        value = value.decode()
    if isinstance(value, str):
        key = value.strip().upper()
        if key in CONDITIONS:
            return CONDITIONS.index(key)
        if key in ("0", "1", "2"):
            return int(key)
    elif isinstance(value, (int, np.integer)) and not isinstance(value, (bool, np.bool_)):
        if 0 <= int(value) < NUM_CLASSES:
            return int(value)
    raise ValueError(f"Unknown condition {value!r}: accepted values are {_accepted()}.")


def draw_inputs(seeds: Sequence[int], device: Any = "cpu") -> tuple[torch.Tensor, torch.Tensor]:
    """Latent vector and default class of each seed, drawn for the whole batch on ``device``.

    Both come from :mod:`medhub.noise` (Philox keyed by ``seeds[i]``, the same random bits on
    every device): the 100 latent values from stream 0, the class (uniform over 0, 1, 2) from
    stream 1, so the latent is the same whether or not a condition is given.
    """
    return noise.normal(seeds, LATENT_DIM, device=device), noise.integers(seeds, 0, NUM_CLASSES, device=device,
                                                                        stream=1)


def latents(seeds: Sequence[int], device: Any = "cpu") -> torch.Tensor:
    """One standard-normal latent vector per seed (stream 0 of :func:`draw_inputs`)."""
    return noise.normal(seeds, LATENT_DIM, device=device)


def _conditions(condition: Any, n: int, drawn: torch.Tensor) -> torch.Tensor:
    """Class indices (n,) from ``condition``: None (use ``drawn``), one value, or one value per sample
    (a None entry uses that sample's drawn class)."""
    if condition is None:
        return drawn
    if isinstance(condition, (str, bytes, int, np.integer, np.str_, np.bytes_)) or (
        isinstance(condition, np.ndarray) and condition.ndim == 0
    ):
        return torch.full((n,), condition_index(condition), dtype=torch.long)
    values = list(np.asarray(condition, dtype=object).reshape(-1)) if not isinstance(condition, list) else condition
    if len(values) != n:
        raise ValueError(f"condition holds {len(values)} values for {n} samples: give one value for all samples "
                         f"or one per sample, each {_accepted()}.")
    return torch.tensor([int(drawn[i]) if v is None else condition_index(v) for i, v in enumerate(values)],
                        dtype=torch.long)


def sample(model: Generator, seeds: Sequence[int], condition: Any = None, latent: Any = None,
           **_: Any) -> dict[str, np.ndarray]:
    """Generate one slice per seed: ``{"image": uint8 (N, 64, 64), "label": str (N,)}``.

    ``condition``: ``"T1"``, ``"GM"``, ``"WM"`` (any case) or 0, 1, 2, for every sample, or a
    sequence with one value per sample; None (default, also allowed as an entry of the sequence)
    draws sample i's condition from ``seeds[i]``. ``latent`` (optional, shape (N, 100)) replaces the seeded latent vectors.
    ``label`` is the condition each sample was generated with. Sample i depends only on
    ``seeds[i]`` and the inputs.
    """
    device = next(model.parameters()).device
    z, drawn = draw_inputs(seeds, device)
    c = _conditions(condition, len(seeds), drawn.cpu())
    if latent is not None:
        z = kit.latent_input(latent, len(seeds), LATENT_DIM)
    images = kit.to_uint8(kit.run_in_blocks(model, z, c, block=CHUNK, device=device))
    labels = np.array([CONDITIONS[i] for i in c.tolist()], dtype="<U2")
    return {"image": images, "label": labels}


def generate(model_file: str | Path, num_samples: int = 16, output_path: str | Path | None = None,
             save_images: bool = True, seed: int | None = None, condition: Any = None,
             **kwargs: Any) -> list[tuple[np.ndarray, str]] | None:
    """medigan-compatible entry point: a list of ``(image (64, 64) uint8, label str)`` tuples, or PNGs.

    ``condition`` is as in :func:`sample`. With ``save_images=True`` it writes one file per
    sample, ``<i>_<label>.png``, into ``output_path`` and returns None. Without ``seed`` the
    per-sample seeds come from numpy's global generator, so seeding it (as medigan users do with
    ``np.random.seed``) makes the call reproducible.
    """
    return kit.medigan_generate(load, sample, model_file, num_samples, output_path, save_images, seed,
                                outputs=("image", "label"), files={"image": "{i}_{label}.png"}, condition=condition,
                                latent=kwargs.get("latent"))
