"""Offline real data for training and evaluating the shipped models, with fixed held-out splits.

Every source here ships inside a PyPI or Debian package (no network):

* MNI152 2009a T1 / GM / WM templates (nilearn), 197x233x189, 1 mm;
* Colin27 T1 (``ch2.nii.gz``, with skull; ``ch2bet.nii.gz``, brain extracted) from Debian
  ``mricron-data`` (``/usr/share/mricron/templates``), 181x217x181, 1 mm;
* the InVesalius head CT (``Cranium.inv3``, Debian ``invesalius-examples``, GPL-2), 108 axial
  slices of 256x256 int16 Hounsfield units, 0.96 x 0.96 x 1.5 mm;
* the scikit-image fundus photograph ``retina.jpg`` (1411x1411 RGB, CC0).

2D slice sets are returned as float32 arrays in [-1, 1], (N, size, size) or (N, size, size, 3),
anterior at the top. :func:`split` is the one train / held-out rule every training script and
``tools/measure_fid.py`` use: of the slices of a volume, in order, every ``HOLDOUT_EVERY``-th one
(positions 2, 6, 10, ... for 4) is held out and never seen in training. Neighbouring slices are
1-1.5 mm apart and strongly correlated, so held-out slices are close to, but not the same as,
training slices; the model cards say so.
"""

from __future__ import annotations

import tarfile
from functools import lru_cache
from pathlib import Path

import numpy as np

MRICRON = Path("/usr/share/mricron/templates")
INVESALIUS = Path("/usr/share/doc/invesalius-examples/examples/Cranium.inv3")
HOLDOUT_EVERY = 4
HOLDOUT_OFFSET = 2


def split(n: int, every: int = HOLDOUT_EVERY, offset: int = HOLDOUT_OFFSET) -> tuple[np.ndarray, np.ndarray]:
    """Positions ``(train, held_out)`` of ``n`` ordered slices: position p is held out when
    ``p % every == offset``."""
    pos = np.arange(n)
    held = pos % every == offset
    return pos[~held], pos[held]


def resize(x: np.ndarray, size: int) -> np.ndarray:
    """Resize (N, H, W) or (N, H, W, C) float images to ``size`` x ``size`` (antialiased bilinear)."""
    import torch
    import torch.nn.functional as F

    t = torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32))
    t = t[:, None] if t.ndim == 3 else t.permute(0, 3, 1, 2)
    t = F.interpolate(t, size=(size, size), mode="bilinear", antialias=True, align_corners=False)
    t = t[:, 0] if x.ndim == 3 else t.permute(0, 2, 3, 1)
    return t.numpy()


def pad_square(img: np.ndarray, value: float = 0.0) -> np.ndarray:
    """Pad a 2D slice (H, W) to a centred square."""
    h, w = img.shape
    side = max(h, w)
    out = np.full((side, side), value, np.float32)
    top, left = (side - h) // 2, (side - w) // 2
    out[top : top + h, left : left + w] = img
    return out


# ----------------------------------------------------------------------------- MNI152 (nilearn)
@lru_cache(maxsize=1)
def mni152_volumes() -> dict[str, np.ndarray]:
    """The MNI152 2009a templates as float32 volumes (x, y, z): ``t1`` scaled to [0, 1], ``gm`` and
    ``wm`` tissue probabilities in [0, 1]."""
    from nilearn.datasets import load_mni152_gm_template, load_mni152_template, load_mni152_wm_template

    t1 = np.asarray(load_mni152_template(resolution=1).dataobj, dtype=np.float32)
    gm = np.asarray(load_mni152_gm_template(resolution=1).dataobj, dtype=np.float32)
    wm = np.asarray(load_mni152_wm_template(resolution=1).dataobj, dtype=np.float32)
    return {"t1": t1 / t1.max(), "gm": np.clip(gm, 0, 1), "wm": np.clip(wm, 0, 1)}


def mni152_slice_positions(min_brain_fraction: float = 0.15) -> list[int]:
    """Axial z indices of the MNI152 template whose brain covers at least the given fraction."""
    t1 = mni152_volumes()["t1"]
    return [z for z in range(t1.shape[2]) if (t1[:, :, z] > 0).mean() >= min_brain_fraction]


def axial(vol: np.ndarray, z: int) -> np.ndarray:
    """Axial slice z of an (x, y, z) volume, anterior at the top, left on the left."""
    return vol[:, :, z].T[::-1]


def mni152_axial(kind: str = "t1", size: int = 64, part: str = "all") -> np.ndarray:
    """Axial slices of one MNI152 map (``t1``, ``gm``, ``wm``) in [-1, 1], (N, size, size).

    ``part``: ``all``, ``train`` or ``held_out`` (see :func:`split`); the slice positions are the
    same for every map, so T1 slice k and GM slice k show the same level.
    """
    vol = mni152_volumes()[kind]
    zs = _part(mni152_slice_positions(), part)
    x = resize(np.stack([pad_square(axial(vol, z)) for z in zs]), size)
    return (np.clip(x, 0, 1) * 2 - 1).astype(np.float32)


def mni152_tissue_labels(size: int = 64, part: str = "all") -> np.ndarray:
    """Tissue label maps of the MNI152 slices, uint8 (N, size, size): 0 background, 1 CSF and
    other tissue inside the brain, 2 grey matter, 3 white matter (the most probable class)."""
    v = mni152_volumes()
    zs = _part(mni152_slice_positions(), part)
    t1 = resize(np.stack([pad_square(axial(v["t1"], z)) for z in zs]), size)
    gm = resize(np.stack([pad_square(axial(v["gm"], z)) for z in zs]), size)
    wm = resize(np.stack([pad_square(axial(v["wm"], z)) for z in zs]), size)
    brain = t1 > 0.05
    other = np.clip(1 - gm - wm, 0, 1)
    labels = np.argmax(np.stack([other, gm, wm]), axis=0).astype(np.uint8) + 1
    return np.where(brain, labels, 0).astype(np.uint8)


def _part(positions: list[int], part: str) -> list[int]:
    if part == "all":
        return list(positions)
    train, held = split(len(positions))
    if part == "train":
        return [positions[i] for i in train]
    if part == "held_out":
        return [positions[i] for i in held]
    raise ValueError(f"part must be all, train or held_out, not {part!r}")


# ----------------------------------------------------------------------------- Colin27 (mricron-data)
def colin27_axial(size: int = 64, brain_only: bool = False, part: str = "all",
                  min_head_fraction: float = 0.15) -> np.ndarray:
    """Axial slices of the Colin27 T1 (with skull, or brain-extracted) in [-1, 1], (N, size, size).

    Slices whose head (or brain) covers less than ``min_head_fraction`` of the slice are skipped.
    """
    import nibabel as nib

    name = "ch2bet.nii.gz" if brain_only else "ch2.nii.gz"
    path = MRICRON / name
    if not path.exists():
        raise FileNotFoundError(f"{path} is missing: apt-get install mricron-data")
    vol = np.asarray(nib.load(str(path)).dataobj, dtype=np.float32)
    vol = vol / np.percentile(vol[vol > 0], 99.5)
    zs = [z for z in range(vol.shape[2]) if (vol[:, :, z] > 0.05).mean() >= min_head_fraction]
    zs = _part(zs, part)
    x = resize(np.stack([pad_square(axial(vol, z)) for z in zs]), size)
    return (np.clip(x, 0, 1) * 2 - 1).astype(np.float32)


# ----------------------------------------------------------------------------- head CT (invesalius-examples)
CT_WINDOW = (40.0, 400.0)  # level, width in HU: brain, soft tissue and bone all visible


@lru_cache(maxsize=1)
def ct_head_volume() -> np.ndarray:
    """The InVesalius example head CT as int16 HU, (slice, row, col) = (108, 256, 256), the
    first slice at the skull base."""
    if not INVESALIUS.exists():
        raise FileNotFoundError(f"{INVESALIUS} is missing: apt-get install invesalius-examples")
    with tarfile.open(INVESALIUS, "r:gz") as tar:
        member = next(m for m in tar.getmembers() if m.name.endswith("matrix.dat"))
        raw = tar.extractfile(member).read()
    data = np.frombuffer(raw, dtype="<i2")
    n = 108 * 256 * 256
    return data[-n:].reshape(108, 256, 256).copy()  # the file may begin with a small header


def ct_window(hu: np.ndarray, level: float = CT_WINDOW[0], width: float = CT_WINDOW[1]) -> np.ndarray:
    """Map HU to [-1, 1] through a display window."""
    lo = level - width / 2
    return (np.clip((hu.astype(np.float32) - lo) / width, 0, 1) * 2 - 1).astype(np.float32)


def ct_head_positions(min_head_fraction: float = 0.08) -> list[int]:
    """Slice indices of the head CT whose head covers at least the given fraction of the slice."""
    vol = ct_head_volume()
    return [k for k in range(vol.shape[0]) if (vol[k] > -300).mean() >= min_head_fraction]


def ct_head_axial(size: int = 64, part: str = "all") -> np.ndarray:
    """Axial head CT slices, windowed (level 40, width 400 HU) to [-1, 1], anterior at the top,
    (N, size, size)."""
    vol = ct_head_volume()
    ks = _part(ct_head_positions(), part)
    x = np.stack([ct_window(vol[k])[::-1] for k in ks])  # stored posterior-up: flip rows
    return np.clip(resize(x, size), -1, 1).astype(np.float32)


# ----------------------------------------------------------------------------- fundus (scikit-image)
def retina_image(side: int = 352) -> np.ndarray:
    """The scikit-image fundus photograph, resized to ``side`` x ``side``, float32 RGB in [-1, 1]."""
    from skimage import data

    img = data.retina().astype(np.float32) / 255.0
    return (np.clip(resize(img[None], side)[0], 0, 1) * 2 - 1).astype(np.float32)


def retina_patches(size: int = 64, side: int = 352, part: str = "all", stride: int = 16) -> np.ndarray:
    """Overlapping ``size`` x ``size`` RGB patches of the fundus photo (``side`` px across) that lie
    mostly inside the fundus, (N, size, size, 3) in [-1, 1].

    Held-out split: patches whose top-left corner lies in the right third of the image
    (x >= 2/3 of the width) are held out; training patches lie entirely left of that line, so no
    pixel of a held-out patch is seen in training.
    """
    img = retina_image(side)
    bright = (img.mean(-1) > -0.8)
    boundary = (2 * side) // 3
    out = []
    for y in range(0, side - size + 1, stride):
        for x in range(0, side - size + 1, stride):
            if bright[y : y + size, x : x + size].mean() < 0.9:
                continue
            held = x >= boundary
            train = x + size <= boundary
            if part == "all" or (part == "held_out" and held) or (part == "train" and train):
                out.append(img[y : y + size, x : x + size])
    if part not in ("all", "train", "held_out"):
        raise ValueError(f"part must be all, train or held_out, not {part!r}")
    return np.stack(out).astype(np.float32)


def to_uint8(x: np.ndarray) -> np.ndarray:
    """[-1, 1] floats to uint8."""
    return np.round((np.clip(x, -1, 1) + 1) * 127.5).astype(np.uint8)
