"""pix2pix translating 64x64 brain tissue label maps into axial T1-weighted MRI slices (medhub/1 package).

Trained on paired axial slices of the MNI152 2009a template: tissue label map -> T1 slice (see
README.md). Each sample is an ``(image, mask)`` pair: ``mask`` is the label map (0 background,
1 CSF / other tissue inside the brain, 2 grey matter, 3 white matter) and ``image`` the T1 slice
the generator paints for it.

* Without ``input_path`` the mask of sample i is drawn from its own seed: one of the training label
  maps stored in the weights file (``mask_bank``), with a seeded left-right flip and a small shift.
* With ``input_path`` (a folder of label-map files, PNG or ``.npy``) sample i translates file
  ``i % n_files`` of the sorted folder; the generator is deterministic, so the seed plays no part.

Interfaces: native ``medhub/1`` (:func:`load`, :func:`sample`) and medigan (:func:`generate`).
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

IMAGE_SIZE = 64
NUM_LABELS = 4
LABEL_NAMES = ("background", "CSF / other tissue", "grey matter", "white matter")
WEIGHTS_FILE = "weights.safetensors"
#: The network always runs on blocks of exactly this many label maps (the last one padded with copies
#: of its last map), so the arithmetic for a sample never depends on how many samples were asked for
#: at once. Blocks are always NCHW-contiguous: a channels-last block (what ``one_hot(...).permute``
#: gives before ``.contiguous()``) selects another CPU convolution kernel, whose last bits differ.
CHUNK = 32
#: Largest shift (pixels, each axis) of a seeded mask drawn from the mask bank.
MAX_SHIFT = 3
#: File types read from ``input_path``.
SUFFIXES = (".png", ".npy")
#: medhub writes a uint8 mask as is (values 0..3); masks saved for display as 0/85/170/255 are read too.
DISPLAY_LEVELS = (0, 85, 170, 255)


# ----------------------------------------------------------------------------- network
class Down(nn.Module):
    """4x4 stride-2 convolution, optional InstanceNorm, LeakyReLU(0.2)."""

    def __init__(self, cin: int, cout: int, norm: bool = True) -> None:
        super().__init__()
        layers: list[nn.Module] = [nn.Conv2d(cin, cout, 4, 2, 1, bias=not norm)]
        if norm:
            layers.append(nn.InstanceNorm2d(cout, affine=True))
        layers.append(nn.LeakyReLU(0.2, True))
        self.block = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.block(x)


class Up(nn.Module):
    """4x4 stride-2 transposed convolution, InstanceNorm, ReLU."""

    def __init__(self, cin: int, cout: int) -> None:
        super().__init__()
        self.block = nn.Sequential(
            nn.ConvTranspose2d(cin, cout, 4, 2, 1, bias=False),
            nn.InstanceNorm2d(cout, affine=True),
            nn.ReLU(True),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.block(x)


class Generator(nn.Module):
    """U-Net generator: one-hot label map (N, 4, 64, 64) -> T1 image (N, 1, 64, 64) in [-1, 1].

    Encoder 64 -> 32 -> 16 -> 8 -> 4 with skip connections to the mirrored decoder; no dropout,
    so the output is a deterministic function of the label map.
    """

    def __init__(self, in_channels: int = NUM_LABELS, width: int = 32) -> None:
        super().__init__()
        w = width
        self.d1 = Down(in_channels, w, norm=False)  # 32x32
        self.d2 = Down(w, w * 2)  # 16x16
        self.d3 = Down(w * 2, w * 4)  # 8x8
        self.d4 = Down(w * 4, w * 4)  # 4x4
        self.u1 = Up(w * 4, w * 4)  # 8x8
        self.u2 = Up(w * 8, w * 2)  # 16x16
        self.u3 = Up(w * 4, w)  # 32x32
        self.out = nn.Sequential(nn.ConvTranspose2d(w * 2, 1, 4, 2, 1), nn.Tanh())  # 64x64

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        e1 = self.d1(x)
        e2 = self.d2(e1)
        e3 = self.d3(e2)
        e4 = self.d4(e3)
        h = self.u1(e4)
        h = self.u2(torch.cat([h, e3], 1))
        h = self.u3(torch.cat([h, e2], 1))
        return self.out(torch.cat([h, e1], 1))


class Pix2Pix(nn.Module):
    """The loaded model: the generator plus ``mask_bank`` (K, 64, 64) uint8 training label maps."""

    def __init__(self, generator: Generator, mask_bank: torch.Tensor) -> None:
        super().__init__()
        self.generator = generator
        self.mask_bank = mask_bank.to(torch.uint8).cpu()


def load(weights_path: str | Path, device: str = "cpu") -> Pix2Pix:
    """Build the generator, load its safetensors weights (and the mask bank), move it to ``device``."""
    from safetensors.torch import load_file

    state = load_file(str(weights_path))
    bank = state.pop("mask_bank")
    g = Generator()
    g.load_state_dict(state)
    return Pix2Pix(g.to(device).eval(), bank)


# ----------------------------------------------------------------------------- masks
def shift_mask(mask: torch.Tensor, dy: int, dx: int) -> torch.Tensor:
    """Shift a (H, W) label map by (dy, dx) pixels, filling with background (0)."""
    h, w = mask.shape
    out = torch.zeros_like(mask)
    out[max(dy, 0) : h + min(dy, 0), max(dx, 0) : w + min(dx, 0)] = \
        mask[max(-dy, 0) : h + min(-dy, 0), max(-dx, 0) : w + min(-dx, 0)]
    return out


def seeded_masks(mask_bank: torch.Tensor, seeds: Sequence[int]) -> np.ndarray:
    """One plausible label map per seed: a bank map chosen, flipped and shifted by that seed alone.

    The draws come from :mod:`medhub.noise` (Philox keyed by ``seeds[i]``, for the whole batch at
    once): the bank map from stream 0, the flip (probability 1/2) from stream 1, the shift
    (dy, dx) in -MAX_SHIFT..MAX_SHIFT from stream 2. The maps are those of :func:`shift_mask` of
    the (flipped) bank map, with the shift done by numpy slicing.
    """
    bank = mask_bank.cpu().numpy()
    h, w = bank.shape[1:]
    out = np.zeros((len(seeds), h, w), np.uint8)
    picks = noise.integers(seeds, 0, bank.shape[0]).tolist()
    flips = noise.integers(seeds, 0, 2, stream=1).tolist()
    shifts = noise.integers(seeds, -MAX_SHIFT, MAX_SHIFT + 1, (2,), stream=2).tolist()
    for i, (k, flip, (dy, dx)) in enumerate(zip(picks, flips, shifts)):
        m = bank[k, :, ::-1] if flip else bank[k]
        out[i, max(dy, 0) : h + min(dy, 0), max(dx, 0) : w + min(dx, 0)] = \
            m[max(-dy, 0) : h + min(-dy, 0), max(-dx, 0) : w + min(-dx, 0)]
    return out


ACCEPTED = (
    "a folder of 2D label-map files: greyscale PNG or .npy, any size (resized to 64x64 by nearest "
    "neighbour), integer values 0 background, 1 CSF/other, 2 grey matter, 3 white matter (PNGs may "
    "also use the display levels 0/85/170/255). In a folder written by medhub only the *_mask.png "
    "/ *_mask.npy files are read."
)


def list_label_files(input_path: str | Path) -> list[Path]:
    """The label-map files of ``input_path``, sorted by name (only ``*_mask.*`` ones if there are any)."""
    folder = Path(input_path).expanduser()
    if not folder.is_dir():
        raise ValueError(f"input_path {str(folder)!r} is not a folder; expected {ACCEPTED}")
    files = sorted((p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in SUFFIXES),
                   key=lambda p: p.name)
    masks = [p for p in files if p.stem.endswith("_mask")]
    files = masks or files
    if not files:
        raise ValueError(f"input_path {str(folder)!r} holds no .png or .npy file; expected {ACCEPTED}")
    return files


def read_label_map(path: str | Path) -> np.ndarray:
    """Read one label-map file as uint8 (64, 64) with values 0..3; ValueError if it is not one."""
    path = Path(path)
    try:
        if path.suffix.lower() == ".npy":
            arr = np.load(path, allow_pickle=False)
        else:
            from PIL import Image

            with Image.open(path) as img:
                arr = np.asarray(img)
    except Exception as exc:  # unreadable or corrupt file
        raise ValueError(f"cannot read label map {path.name}: {exc}; expected {ACCEPTED}") from exc
    if arr.ndim != 2:
        raise ValueError(f"label map {path.name} has shape {arr.shape}, not 2D; expected {ACCEPTED}")
    if arr.dtype == np.bool_ or arr.dtype.kind not in "iuf":
        raise ValueError(f"label map {path.name} has dtype {arr.dtype}; expected {ACCEPTED}")
    values = np.unique(arr)
    if not np.all(np.isfinite(values)) or not np.array_equal(values, np.round(values)):
        raise ValueError(f"label map {path.name} holds non-integer values; expected {ACCEPTED}")
    values = values.astype(np.int64)
    if set(values.tolist()) <= set(range(NUM_LABELS)):
        labels = arr.astype(np.uint8)
    elif path.suffix.lower() == ".png" and set(values.tolist()) <= set(DISPLAY_LEVELS):
        labels = (arr.astype(np.int64) // 85).astype(np.uint8)
    else:
        shown = values[:10].tolist()
        raise ValueError(f"label map {path.name} holds values {shown}{' ...' if len(values) > 10 else ''}; "
                         f"expected {ACCEPTED}")
    return resize_nearest(labels, IMAGE_SIZE)


def resize_nearest(labels: np.ndarray, size: int) -> np.ndarray:
    """Nearest-neighbour resize of a (H, W) label map to (size, size) (pixel centres, like PIL NEAREST)."""
    h, w = labels.shape
    if (h, w) == (size, size):
        return np.ascontiguousarray(labels)
    rows = np.minimum(((np.arange(size) + 0.5) * h / size).astype(np.int64), h - 1)
    cols = np.minimum(((np.arange(size) + 0.5) * w / size).astype(np.int64), w - 1)
    return np.ascontiguousarray(labels[rows][:, cols])


def folder_masks(input_path: str | Path, indices: Sequence[int]) -> np.ndarray:
    """Label maps of files ``indices[j] % n_files`` of the sorted ``input_path`` folder, (N, 64, 64) uint8."""
    files = list_label_files(input_path)
    cache: dict[int, np.ndarray] = {}
    out = np.empty((len(indices), IMAGE_SIZE, IMAGE_SIZE), np.uint8)
    for j, index in enumerate(indices):
        k = int(index) % len(files)
        if k not in cache:
            cache[k] = read_label_map(files[k])
        out[j] = cache[k]
    return out


# ----------------------------------------------------------------------------- inference
def one_hot(masks: np.ndarray | torch.Tensor) -> torch.Tensor:
    """(N, H, W) labels 0..3 -> (N, 4, H, W) float32 one-hot, NCHW-contiguous.

    Built by comparing each map with the labels 0..3 (one pass, straight into NCHW), instead of
    ``F.one_hot``'s int64 NHWC tensor permuted and copied; the values are the same.
    """
    m = torch.as_tensor(np.asarray(masks))
    labels = torch.arange(NUM_LABELS, dtype=m.dtype).view(1, NUM_LABELS, 1, 1)
    return (m.unsqueeze(1) == labels).float()


def translate(model: Pix2Pix, masks: np.ndarray) -> np.ndarray:
    """T1 images (N, 64, 64) uint8 for label maps (N, 64, 64) with values 0..3."""
    device = next(model.generator.parameters()).device
    return kit.to_uint8(kit.run_in_blocks(model.generator, one_hot(masks), block=CHUNK, device=device, pad="edge"))


def sample(
    model: Pix2Pix,
    seeds: Sequence[int],
    input_path: str | Path | None = None,
    indices: Sequence[int] | None = None,
    **_: Any,
) -> dict[str, np.ndarray]:
    """One ``(image, mask)`` pair per seed: ``{"image": uint8 (N, 64, 64), "mask": uint8 (N, 64, 64)}``.

    Without ``input_path`` the mask of sample i is a training label map chosen, flipped and
    shifted by ``seeds[i]``. With ``input_path`` (a folder, see :data:`ACCEPTED`) sample i
    translates file ``indices[i] % n_files`` of the sorted folder (``indices`` defaults to
    0..N-1; medhub passes the run positions). Raises ValueError for a bad folder or file.
    """
    if input_path is None:
        masks = seeded_masks(model.mask_bank, seeds)
    else:
        positions = range(len(seeds)) if indices is None else indices
        if len(positions) != len(seeds):
            raise ValueError(f"indices has {len(positions)} entries for {len(seeds)} seeds")
        masks = folder_masks(input_path, positions)
    return {"image": translate(model, masks), "mask": masks}


# ----------------------------------------------------------------------------- medigan interface
def generate(model_file: str | Path, num_samples: int = 16, output_path: str | Path | None = None,
             save_images: bool = True, seed: int | None = None, input_path: str | Path | None = None,
             **kwargs: Any) -> list[tuple[np.ndarray, np.ndarray]] | None:
    """medigan-compatible entry point.

    With ``save_images=False`` returns a list of ``(image, mask)`` tuples of (64, 64) uint8 arrays.
    Otherwise writes one folder per sample, ``<output_path>/<i>/image.png`` and ``mask.png``
    (mask values 0..3 as they are), and returns None. ``input_path`` translates a folder of label
    maps (sample i uses file ``i % n_files``). Without ``seed`` the per-sample seeds come from
    numpy's global generator, so ``np.random.seed`` makes the call reproducible.
    """
    return kit.medigan_generate(load, sample, model_file, num_samples, output_path, save_images, seed,
                                outputs=("image", "mask"), files={"image": "{i}/image.png", "mask": "{i}/mask.png"},
                                input_path=input_path, indices=list(range(num_samples)))
