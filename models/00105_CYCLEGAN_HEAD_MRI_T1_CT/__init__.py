"""CycleGAN translating 64x64 axial head slices between T1-weighted MRI and CT (medhub/1 package).

Trained, unpaired, on axial slices of the Colin27 T1 MRI (with skull) and of the InVesalius example
head CT (see README.md). The package holds both generators (``t1_to_ct`` and ``ct_to_t1``) and
implements both interfaces of the medhub model package contract:

* native ``medhub/1``: :func:`load` once, then :func:`sample` (``direction``, ``input_path``);
* medigan compatibility: :func:`generate`.

The translation is deterministic: the seeds are accepted but not used, so output i depends only
on the inputs (the per-seed rule holds trivially).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from medhub import package_kit as kit

IMAGE_SIZE = 64
WIDTH = 16
N_RES = 6
WEIGHTS_FILE = "weights.safetensors"
#: The generators always run on blocks of exactly this many images (the last one padded), so
#: the arithmetic for a sample never depends on how many samples were asked for at once. (8, not
#: 32 as for 00101: a translation is often asked for one file at a time.)
CHUNK = 8
#: accepted ``direction`` values (compared case-insensitively) -> (generator, example folder)
DIRECTIONS = {"T1_to_CT": ("t1_to_ct", "t1"), "CT_to_T1": ("ct_to_t1", "ct")}
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".npy")
EXAMPLES = Path(__file__).resolve().parent / "examples"


class ResidualBlock(nn.Module):
    """Two reflect-padded 3x3 convolutions with instance normalisation and a skip connection."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.ReflectionPad2d(1),
            nn.Conv2d(channels, channels, 3),
            nn.InstanceNorm2d(channels),
            nn.ReLU(True),
            nn.ReflectionPad2d(1),
            nn.Conv2d(channels, channels, 3),
            nn.InstanceNorm2d(channels),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


class Generator(nn.Module):
    """ResNet generator (N, 1, 64, 64) -> (N, 1, 64, 64) in [-1, 1]: a 7x7 convolution, two
    stride-2 downsamplings, ``n_res`` residual blocks at 16x16, two nearest-neighbour upsamplings
    with 3x3 convolutions, a 7x7 convolution and tanh; instance normalisation throughout."""

    def __init__(self, width: int = WIDTH, n_res: int = N_RES) -> None:
        super().__init__()
        w = width
        layers: list[nn.Module] = [
            nn.ReflectionPad2d(3), nn.Conv2d(1, w, 7), nn.InstanceNorm2d(w), nn.ReLU(True),
            nn.Conv2d(w, 2 * w, 3, 2, 1), nn.InstanceNorm2d(2 * w), nn.ReLU(True),  # 32x32
            nn.Conv2d(2 * w, 4 * w, 3, 2, 1), nn.InstanceNorm2d(4 * w), nn.ReLU(True),  # 16x16
        ]
        layers += [ResidualBlock(4 * w) for _ in range(n_res)]
        layers += [
            nn.Upsample(scale_factor=2, mode="nearest"), nn.Conv2d(4 * w, 2 * w, 3, 1, 1),
            nn.InstanceNorm2d(2 * w), nn.ReLU(True),  # 32x32
            nn.Upsample(scale_factor=2, mode="nearest"), nn.Conv2d(2 * w, w, 3, 1, 1),
            nn.InstanceNorm2d(w), nn.ReLU(True),  # 64x64
            nn.ReflectionPad2d(3), nn.Conv2d(w, 1, 7), nn.Tanh(),
        ]
        self.net = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


class CycleGAN(nn.Module):
    """The two generators of the CycleGAN: ``t1_to_ct`` (MRI T1 -> CT) and ``ct_to_t1``."""

    def __init__(self, width: int = WIDTH, n_res: int = N_RES) -> None:
        super().__init__()
        self.t1_to_ct = Generator(width, n_res)
        self.ct_to_t1 = Generator(width, n_res)


def load(weights_path: str | Path, device: str = "cpu") -> CycleGAN:
    """Build both generators, load their safetensors weights and move them to ``device``."""
    from safetensors.torch import load_file

    model = CycleGAN()
    model.load_state_dict(load_file(str(weights_path)))
    return model.to(device).eval()


def parse_direction(direction: Any) -> str:
    """Canonical direction name (``"T1_to_CT"`` or ``"CT_to_T1"``) of a case-insensitive value."""
    for name in DIRECTIONS:
        if isinstance(direction, str) and direction.strip().lower() == name.lower():
            return name
    raise ValueError(f"direction must be one of {list(DIRECTIONS)} (case-insensitive), not {direction!r}")


def list_images(folder: str | Path) -> list[Path]:
    """The image files (PNG, JPEG, .npy) of ``folder``, sorted by file name."""
    path = Path(folder).expanduser()
    accepted = "a folder of grayscale images (.png, .jpg, .jpeg or 2D .npy arrays; RGB is converted to gray)"
    if not path.is_dir():
        raise ValueError(f"input_path {str(folder)!r} is not a folder; expected {accepted}")
    files = sorted((p for p in path.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES),
                   key=lambda p: p.name)
    if not files:
        raise ValueError(f"input_path {str(folder)!r} holds no images; expected {accepted}")
    return files


def _to_unit(arr: np.ndarray) -> np.ndarray:
    """A 2D array as float32 in [0, 1]: uint8 / 255, bool as 0 / 1, anything else min-max scaled."""
    if arr.dtype == np.uint8:
        return arr.astype(np.float32) / 255.0
    arr = arr.astype(np.float64)
    if not np.all(np.isfinite(arr)):
        raise ValueError("holds NaN or infinite values")
    lo, hi = float(arr.min()), float(arr.max())
    return ((arr - lo) / (hi - lo) if hi > lo else np.zeros_like(arr)).astype(np.float32)


def read_image(path: Path) -> np.ndarray:
    """Read one input file as a 64x64 uint8 grey image: converted to gray, zero-padded to a centred
    square when not square, resized with antialiased bilinear interpolation."""
    try:
        if path.suffix.lower() == ".npy":
            arr = np.load(path, allow_pickle=False)
            if arr.ndim == 3 and arr.shape[-1] in (1, 3, 4):
                arr = arr[..., :3].astype(np.float64).mean(-1) if arr.shape[-1] > 1 else arr[..., 0]
            if arr.ndim != 2 or arr.dtype.kind not in "biuf" or min(arr.shape) < 1:
                raise ValueError(f"is a {arr.ndim}D {arr.dtype} array, not a 2D numeric array")
            unit = _to_unit(arr)
        else:
            from PIL import Image

            with Image.open(path) as img:
                img.load()
                if img.mode in ("I", "I;16", "I;16B", "I;16L", "F"):
                    unit = _to_unit(np.asarray(img))
                else:
                    unit = _to_unit(np.asarray(img.convert("L")))
    except Exception as exc:
        raise ValueError(
            f"cannot read input image {str(path)!r} ({exc}); accepted: 8- or 16-bit PNG, JPEG (grey or RGB) "
            "or a 2D numeric .npy array"
        ) from None
    h, w = unit.shape
    if h != w:
        side = max(h, w)
        square = np.zeros((side, side), np.float32)
        square[(side - h) // 2 : (side - h) // 2 + h, (side - w) // 2 : (side - w) // 2 + w] = unit
        unit = square
    if unit.shape != (IMAGE_SIZE, IMAGE_SIZE):
        t = torch.from_numpy(np.ascontiguousarray(unit))[None, None]
        t = F.interpolate(t, size=(IMAGE_SIZE, IMAGE_SIZE), mode="bilinear", antialias=True, align_corners=False)
        unit = t[0, 0].numpy()
    return np.round(np.clip(unit, 0.0, 1.0) * 255.0).astype(np.uint8)


def translate(model: CycleGAN, images: np.ndarray, direction: str = "T1_to_CT") -> np.ndarray:
    """Translate uint8 images (N, 64, 64) of the source domain of ``direction``; returns uint8."""
    generator = getattr(model, DIRECTIONS[parse_direction(direction)][0])
    x = torch.from_numpy(np.asarray(images, dtype=np.float32) / 127.5 - 1.0)[:, None]
    device = next(generator.parameters()).device
    return kit.to_uint8(kit.run_in_blocks(generator, x, block=CHUNK, device=device))


def sample(model: CycleGAN, seeds: Sequence[int], direction: str = "T1_to_CT", input_path: str | Path | None = None,
           indices: Sequence[int] | None = None, **_: Any) -> dict[str, np.ndarray]:
    """Translate one source image per sample; deterministic (the seeds are not used).

    ``direction``: ``"T1_to_CT"`` (default) or ``"CT_to_T1"``, case-insensitive.
    ``input_path``: a folder of source-domain images (PNG, JPEG or 2D .npy; sorted by name);
    without it, the shipped example slices of the source domain (``examples/t1`` or ``examples/ct``).
    Sample j translates file ``indices[j] % n_files`` (``indices`` are the run positions medhub
    passes; default ``0..N-1``). Returns ``image`` (translation), ``source`` (the 64x64 input as the
    model saw it), both uint8 (N, 64, 64), and ``label`` (the source file name, str (N,)).
    """
    name = parse_direction(direction)
    folder = Path(input_path) if input_path is not None else EXAMPLES / DIRECTIONS[name][1]
    files = list_images(folder)
    positions = list(range(len(seeds))) if indices is None else [int(i) for i in indices]
    if len(positions) != len(seeds):
        raise ValueError(f"indices has {len(positions)} entries for {len(seeds)} seeds; give one per sample")
    picked = [files[p % len(files)] for p in positions]
    unique = list(dict.fromkeys(picked))  # each distinct file is read and translated once
    if not unique:
        empty = np.zeros((0, IMAGE_SIZE, IMAGE_SIZE), np.uint8)
        return {"image": empty, "source": empty.copy(), "label": np.array([], dtype=str)}
    sources = np.stack([read_image(p) for p in unique])
    images = translate(model, sources, name)
    row = {p: k for k, p in enumerate(unique)}
    take = [row[p] for p in picked]
    return {"image": images[take], "source": sources[take], "label": np.array([p.name for p in picked], dtype=str)}


def generate(model_file: str | Path, num_samples: int = 8, output_path: str | Path | None = None,
             save_images: bool = True, seed: int | None = None, direction: str = "T1_to_CT",
             input_path: str | Path | None = None, **kwargs: Any) -> list[tuple[np.ndarray, np.ndarray, str]] | None:
    """medigan-compatible entry point.

    With ``save_images=False`` returns a list of ``num_samples`` tuples ``(image, source, label)``:
    the translated (64, 64) uint8 image, the (64, 64) uint8 source as the model saw it, and the
    source file name. With ``save_images=True`` writes the translations as ``<i>.png`` into
    ``output_path``. Sample i translates file ``i % n_files`` of ``input_path`` (or of the shipped
    examples). ``seed`` is accepted for compatibility and not used: the translation is deterministic.
    """
    return kit.medigan_generate(load, sample, model_file, num_samples, output_path, save_images, seed,
                                outputs=("image", "source", "label"), seeds=range(num_samples), direction=direction,
                                input_path=input_path)
