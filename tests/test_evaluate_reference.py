"""medhub's FID, KID and precision/recall/density/coverage against the reference implementations,
on the same features, within 1e-4.

Stored values: ``tools/reference_metrics.py`` ran pytorch-fid 0.3.0, torchmetrics 1.9.0 and prdc 0.2
once on the feature sets in ``tests/data/evaluate_reference.npz`` (pytorch-fid cannot be installed
beside the CPU torch: it needs torchvision). torchmetrics and prdc install beside it (test extra)
and are also compared live.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from medhub import evaluate
from medhub.evaluate.metrics import FeatureGrams, kid_values

DATA = Path(__file__).parent / "data" / "evaluate_reference"
REF = json.loads(DATA.with_suffix(".json").read_text())
FEATS = np.load(DATA.with_suffix(".npz"))
SETS = sorted(REF["sets"])
TOL = 1e-4


def _features(name: str) -> tuple[np.ndarray, np.ndarray]:
    return FEATS[f"{name}_real"].astype(np.float64), FEATS[f"{name}_synthetic"].astype(np.float64)


@pytest.mark.parametrize("name", SETS)
def test_fid_equals_pytorch_fid_and_torchmetrics_stored(name):
    x, y = _features(name)
    ref = REF["sets"][name]
    ours = evaluate.fid_from_features(x, y)
    assert abs(ours - ref["FID_pytorch_fid"]) < TOL
    # torchmetrics in 2048-d with rank-27 covariances: 1.2e-4 from the square roots of ~2000
    # round-off eigenvalues (6e-7 relative); in the span of the data it agrees to 1e-12
    assert abs(ours - ref["FID_torchmetrics"]) < TOL * max(1.0, 0.02 * ref["FID_torchmetrics"])
    for key in ("FID_pytorch_fid_span", "FID_torchmetrics_span"):
        if key in ref:
            assert abs(ours - ref[key]) < 1e-6


def test_the_inception_pair_is_the_catalog_fid_of_00101():
    x, y = _features("inception")
    assert x.shape == (28, 2048) and round(evaluate.fid_from_features(x, y), 2) == 196.63


@pytest.mark.parametrize("name", SETS)
def test_kid_equals_torchmetrics_stored(name):
    x, y = _features(name)
    ref = REF["sets"][name]
    full = ref["KID_torchmetrics_full"]
    n = full["n"]
    mean, std = evaluate.kernel_inception_distance(x[:n], y[:n], subsets=3, subset_size=n)
    assert abs(mean - full["mean"]) < TOL and abs(std - full["std"]) < TOL
    sub = ref["KID_torchmetrics_subsets"]
    ours = kid_values(FeatureGrams(x, y), sub["subsets"], sub["subset_size"], sub["seed"])
    assert np.abs(ours - np.array(sub["values"])).max() < TOL


@pytest.mark.parametrize("name", SETS)
@pytest.mark.parametrize("k", [3, 5])
def test_prdc_equals_clovaai_prdc_stored(name, k):
    x, y = _features(name)
    ours = evaluate.precision_recall_density_coverage(x, y, k=k)
    ref = REF["sets"][name]["prdc"][str(k)]
    assert ours == pytest.approx(ref, abs=TOL)


@pytest.mark.parametrize("name", [pytest.param("inception", marks=pytest.mark.slow), "gaussian"])
def test_live_torchmetrics_fid(name):
    torch = pytest.importorskip("torch")
    fid_mod = pytest.importorskip("torchmetrics.image.fid")
    x, y = _features(name)
    stats = [(v.mean(axis=0), np.cov(v, rowvar=False)) for v in (x, y)]
    ref_fid = float(fid_mod._compute_fid(*(torch.from_numpy(s) for s in (*stats[0], *stats[1]))))
    assert abs(evaluate.fid_from_features(x, y) - ref_fid) < TOL * max(1.0, 0.02 * ref_fid)
    both = np.concatenate([x, y])  # in an orthonormal basis of the data's span: no round-off eigenvalues
    q, _ = np.linalg.qr((both - both.mean(0)).T)
    sx, sy = (x - both.mean(0)) @ q, (y - both.mean(0)) @ q
    span = [(v.mean(axis=0), np.cov(v, rowvar=False)) for v in (sx, sy)]
    ref_span = float(fid_mod._compute_fid(*(torch.from_numpy(s) for s in (*span[0], *span[1]))))
    assert abs(evaluate.fid_from_features(x, y) - ref_span) < 1e-6


@pytest.mark.filterwarnings("ignore:Metric `Kernel Inception Distance` will save")
@pytest.mark.parametrize("name", SETS)
def test_live_torchmetrics_kid(name):
    torch = pytest.importorskip("torch")
    kid_mod = pytest.importorskip("torchmetrics.image.kid")
    x, y = _features(name)
    n = min(len(x), len(y))
    metric = kid_mod.KernelInceptionDistance(feature=torch.nn.Identity(), subsets=2, subset_size=n)
    metric.update(torch.from_numpy(x[:n]), real=True)
    metric.update(torch.from_numpy(y[:n]), real=False)
    ref_mean = float(metric.compute()[0])
    assert abs(evaluate.kernel_inception_distance(x[:n], y[:n], subsets=2, subset_size=n)[0] - ref_mean) < TOL
    from medhub.evaluate.metrics import kid_subset_indices

    ours = kid_values(FeatureGrams(x, y), 5, 12, seed=7)
    ref = [float(kid_mod.poly_mmd(torch.from_numpy(x[i]), torch.from_numpy(y[j])))
           for i, j in kid_subset_indices(len(x), len(y), 5, 12, 7)]
    assert np.abs(ours - np.array(ref)).max() < TOL


@pytest.mark.parametrize("name", SETS)
def test_live_prdc(name):
    prdc = pytest.importorskip("prdc")
    x, y = _features(name)
    for k in (2, 7):
        ref = {m: float(v) for m, v in prdc.compute_prdc(x, y, nearest_k=k).items()}
        assert evaluate.precision_recall_density_coverage(x, y, k=k) == pytest.approx(ref, abs=TOL)
