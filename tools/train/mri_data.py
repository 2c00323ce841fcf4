"""Offline training data: axial slices of the MNI152 2009 T1 template shipped by nilearn."""

from __future__ import annotations

import numpy as np


def mni152_axial_slices(size: int = 64, min_brain_fraction: float = 0.15) -> np.ndarray:
    """Return axial T1 slices as float32 (N, size, size) in [-1, 1], anterior at the top.

    Slices whose brain mask covers less than ``min_brain_fraction`` of the slice are
    skipped. Each 197x233 slice is zero-padded to a square and resized with antialiasing.
    """
    import torch
    import torch.nn.functional as F
    from nilearn.datasets import load_mni152_template

    vol = np.asarray(load_mni152_template(resolution=1).dataobj, dtype=np.float32)
    vol = vol / vol.max()
    keep = [z for z in range(vol.shape[2]) if (vol[:, :, z] > 0).mean() >= min_brain_fraction]
    slices = []
    for z in keep:
        img = vol[:, :, z].T[::-1]  # rows: anterior -> posterior, cols: left -> right
        h, w = img.shape
        side = max(h, w)
        pad = np.zeros((side, side), np.float32)
        top, left = (side - h) // 2, (side - w) // 2
        pad[top : top + h, left : left + w] = img
        slices.append(pad)
    x = torch.from_numpy(np.stack(slices))[:, None]
    x = F.interpolate(x, size=(size, size), mode="bilinear", antialias=True, align_corners=False)
    return (x[:, 0].clamp(0, 1).numpy() * 2 - 1).astype(np.float32)
