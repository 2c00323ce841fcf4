"""Build the shipped 3D atlas-deformation model ``00107_ATLAS3D_BRAIN_MRI_T1_SEG``.

    python tools/train/build_atlas3d.py

Nothing is fitted by gradient descent: the "weights" are the MNI152 2009a T1 atlas and its
tissue probability maps (nilearn), padded to a 233 mm cube and averaged down to 64^3 voxels
(3.64 mm), plus the mean and standard deviation of T1 intensity inside each tissue class.
Writes ``models/00107_ATLAS3D_BRAIN_MRI_T1_SEG/weights.safetensors``, ``runs/atlas3d/training.json``
and ``docs/img/00107_ATLAS3D_BRAIN_MRI_T1_SEG_grid.png`` (mid slices of 8 samples, with masks).
"""

from __future__ import annotations

import time

import numpy as np
import torch
import torch.nn.functional as F
from common import ROOT, load_package, save_grid, write_json
from data_sources import mni152_volumes

MODEL_ID = "00107_ATLAS3D_BRAIN_MRI_T1_SEG"
SIZE = 64


def cube(vol: np.ndarray) -> np.ndarray:
    """Zero-pad an (x, y, z) volume to a centred cube."""
    side = max(vol.shape)
    out = np.zeros((side,) * 3, np.float32)
    sl = tuple(slice((side - n) // 2, (side - n) // 2 + n) for n in vol.shape)
    out[sl] = vol
    return out


def downsample(vol: np.ndarray) -> torch.Tensor:
    """Average a cube down to SIZE^3 voxels (area averaging, no aliasing)."""
    return F.adaptive_avg_pool3d(torch.from_numpy(cube(vol))[None, None], SIZE)[0, 0]


def main() -> None:
    t0 = time.time()
    v = mni152_volumes()
    brain = (v["t1"] > 0.05).astype(np.float32)
    gm, wm = v["gm"] * brain, v["wm"] * brain
    other = np.clip(brain - gm - wm, 0, 1)  # CSF and other tissue inside the brain mask
    probs = torch.stack([downsample(1 - brain), downsample(other), downsample(gm), downsample(wm)])
    probs = probs / probs.sum(0, keepdim=True).clamp_min(1e-6)
    t1 = downsample(v["t1"]).clamp(0, 1)
    labels = probs.argmax(0)
    mean = torch.stack([t1[labels == k].mean() for k in range(4)])
    std = torch.stack([t1[labels == k].std() for k in range(4)])
    tensors = {"t1": t1.half().contiguous(), "tissue_probs": probs.half().contiguous(),
               "tissue_mean": mean.float(), "tissue_std": std.float()}
    from safetensors.torch import save_file

    out = ROOT / "models" / MODEL_ID / "weights.safetensors"
    save_file(tensors, str(out), metadata={"source": "MNI152 2009a T1/GM/WM (nilearn)", "size": str(SIZE)})
    wall = time.time() - t0
    write_json(ROOT / "runs" / "atlas3d" / "training.json",
               {"wall_time_s": round(wall, 1), "size": SIZE, "torch": torch.__version__,
                "tissue_mean": [round(float(x), 4) for x in mean], "tissue_std": [round(float(x), 4) for x in std],
                "voxels_per_class": [int((labels == k).sum()) for k in range(4)]})
    print(f"built {out} in {wall:.1f}s; tissue means {mean.tolist()}")

    pkg = load_package(MODEL_ID)
    model = pkg.load(out, "cpu")
    res = pkg.sample(model, list(range(8)))
    rows = []
    for vol, mask in zip(res["volume"], res["mask"]):
        mid = SIZE // 2
        views = [vol[:, :, mid].T[::-1], vol[:, mid, :].T[::-1], vol[mid, :, :].T[::-1]]
        mviews = [mask[:, :, mid].T[::-1], mask[:, mid, :].T[::-1], mask[mid, :, :].T[::-1]]
        rows.extend(views + [(m * 85).astype(np.uint8) for m in mviews])
    save_grid(np.stack(rows), ROOT / "docs" / "img" / f"{MODEL_ID}_grid.png", ncol=6)


if __name__ == "__main__":
    main()
