"""medhub model package template (interface ``medhub/1``, with a medigan-compatible ``generate``).

Copy this folder to ``models/<model_id>/`` (or anywhere, for a package you publish yourself),
replace the network with yours, and keep the three entry points:

* :func:`load` builds the network and loads its weights; medhub calls it once per device and
  keeps the result.
* :func:`sample` turns one seed per sample into one sample per seed, returning a dict of
  batch-first numpy arrays whose names, shapes and dtypes are those of the ``outputs`` spec in
  ``metadata.json``. Output ``i`` must depend only on ``seeds[i]`` (and the inputs), never on
  the batch size or on the other seeds in the batch.
* :func:`generate` is the medigan entry point, so the package also runs under medigan.

The template network is a tiny conditional generator with random weights (see make_weights.py):
a latent vector and a class label -> a 32x32 image, a 32x32 binary mask, and the label. It
produces noise-like pictures; it exists to show the contract, not to make medical images.

See docs/model-package.md in the medhub repository for the full contract.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

LATENT_DIM = 16
NUM_CLASSES = 2
IMAGE_SIZE = 32
WEIGHTS_FILE = "weights.safetensors"

#: Run the network one sample at a time. Batched matrix products (``nn.Linear`` on MKL or cuBLAS)
#: may add up in a different order for different batch sizes, so a sample computed inside a batch
#: can differ in the last bits from the same sample computed alone, and after rounding to uint8
#: a pixel can move by one grey level. One sample per call makes sample i bit-identical whatever
#: the batch size. A large model on a GPU may prefer one call per batch (set this to False) and
#: accept last-bit differences between batch sizes; its inputs stay identical either way.
BATCH_INVARIANT = True


class Generator(nn.Module):
    """(latent (N, 16), label (N,)) -> logits (N, 2, 32, 32): channel 0 the image, channel 1 the mask."""

    def __init__(self, latent_dim: int = LATENT_DIM, num_classes: int = NUM_CLASSES, width: int = 16) -> None:
        super().__init__()
        self.width = width
        self.embed = nn.Embedding(num_classes, latent_dim)
        self.fc = nn.Linear(latent_dim, 2 * width * 4 * 4)
        self.up = nn.Sequential(
            nn.LeakyReLU(0.2),
            nn.ConvTranspose2d(2 * width, width, 4, 2, 1),  # 8x8
            nn.LeakyReLU(0.2),
            nn.ConvTranspose2d(width, width // 2, 4, 2, 1),  # 16x16
            nn.LeakyReLU(0.2),
            nn.ConvTranspose2d(width // 2, 2, 4, 2, 1),  # 32x32
        )

    def forward(self, z: torch.Tensor, label: torch.Tensor) -> torch.Tensor:
        h = self.fc(z + self.embed(label))
        return self.up(h.view(z.shape[0], 2 * self.width, 4, 4))


# ---------------------------------------------------------------------------- medhub/1 interface
def load(weights_path: str | Path, device: str = "cpu") -> Generator:
    """Build the network, load its safetensors weights, move it to ``device``, set eval mode."""
    from safetensors.torch import load_file

    model = Generator()
    model.load_state_dict(load_file(str(weights_path)))
    return model.to(device).eval()


def draw_inputs(seeds: Sequence[int], label: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Latent vectors and labels, one per seed, each from its own CPU generator.

    Drawing sample i from a generator seeded with ``seeds[i]`` alone is what makes sample i
    independent of the batch it is in; drawing on the CPU makes it independent of the device.
    """
    z = torch.empty(len(seeds), LATENT_DIM)
    labels = torch.empty(len(seeds), dtype=torch.long)
    for i, seed in enumerate(seeds):
        gen = torch.Generator().manual_seed(int(seed))
        z[i] = torch.randn(LATENT_DIM, generator=gen)
        drawn = int(torch.randint(NUM_CLASSES, (1,), generator=gen))
        labels[i] = drawn if label is None else label
    return z, labels


def sample(model: Generator, seeds: Sequence[int], label: int | None = None) -> dict[str, np.ndarray]:
    """One sample per seed: ``{"image": uint8 (N, 32, 32), "mask": bool (N, 32, 32), "label": int64 (N,)}``.

    ``label`` (optional, 0 or 1) conditions every sample on that class; by default each sample's
    class is drawn from its seed.
    """
    if label is not None and (isinstance(label, bool) or int(label) != label or not 0 <= int(label) < NUM_CLASSES):
        raise ValueError(f"label must be an integer in [0, {NUM_CLASSES - 1}] or None, not {label!r}")
    z, labels = draw_inputs(seeds, None if label is None else int(label))
    device = next(model.parameters()).device
    z, labels = z.to(device), labels.to(device)
    with torch.inference_mode():
        if BATCH_INVARIANT:
            out = torch.cat([model(z[i : i + 1], labels[i : i + 1]) for i in range(len(seeds))]).float().cpu()
        else:
            out = model(z, labels).float().cpu()
    image = ((torch.tanh(out[:, 0]) + 1) * 127.5).round().clamp(0, 255).to(torch.uint8)
    mask = out[:, 1] > 0
    return {"image": image.numpy(), "mask": mask.numpy(), "label": labels.numpy().astype(np.int64)}


# ---------------------------------------------------------------------------- medigan interface
def _splitmix64(x: np.ndarray) -> np.ndarray:
    x = x + np.uint64(0x9E3779B97F4A7C15)
    x = (x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    x = (x ^ (x >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return x ^ (x >> np.uint64(31))


def per_sample_seeds(seed: int, num_samples: int) -> list[int]:
    """Seed of sample i of a run seeded ``seed``: the same scheme as medhub's
    ``medhub.execution.seeds.sample_seeds`` (splitmix64 of the run seed, xor i, mixed again; 63
    bits), written out here so the package runs without medhub. ``generate(seed=s)`` therefore
    gives the samples that ``medhub generate --seed s`` gives."""
    with np.errstate(over="ignore"):
        base = _splitmix64(np.array([int(seed) & 0xFFFFFFFFFFFFFFFF], dtype=np.uint64))
        mixed = _splitmix64(base ^ np.arange(int(num_samples), dtype=np.uint64))
    return [int(v) & ((1 << 63) - 1) for v in mixed]


def generate(
    model_file: str | Path,
    num_samples: int = 16,
    output_path: str | Path | None = None,
    save_images: bool = True,
    seed: int | None = None,
    label: int | None = None,
    device: str = "cpu",
    **kwargs: Any,
) -> list[tuple[np.ndarray, np.ndarray, int]] | None:
    """medigan entry point.

    With ``save_images=False`` returns a list of ``(image, mask, label)`` tuples; otherwise writes
    ``<i>_image.png``, ``<i>_mask.png`` and ``labels.csv`` into ``output_path`` and returns None.
    ``seed`` makes the call reproducible: sample i depends only on (seed, i). Without it the seed
    is drawn from numpy's global RNG, as medigan packages draw from the global RNGs; medhub seeds
    those before each call of a medigan-interface package. Other keyword arguments (medigan
    passes its config's custom args) are ignored.
    """
    if seed is None:
        seed = int(np.random.randint(0, 2**62, dtype=np.int64))
    model = load(model_file, device)
    batch = sample(model, per_sample_seeds(seed, int(num_samples)), label=label)
    samples = [(batch["image"][i], batch["mask"][i], int(batch["label"][i])) for i in range(int(num_samples))]
    if not save_images:
        return samples
    from PIL import Image

    out = Path(output_path if output_path is not None else ".")
    out.mkdir(parents=True, exist_ok=True)
    rows = ["index,label"]
    for i, (image, mask, lab) in enumerate(samples):
        Image.fromarray(image).save(out / f"{i}_image.png")
        Image.fromarray(mask.astype(np.uint8) * 255).save(out / f"{i}_mask.png")
        rows.append(f"{i},{lab}")
    (out / "labels.csv").write_text("\n".join(rows) + "\n")
    return None
