"""KID, precision/recall/density/coverage, the Gram-matrix FID and bootstrap intervals; the
``medhub evaluate`` command. Reference implementations are compared in test_evaluate_reference.py."""

from __future__ import annotations

import itertools
import json

import numpy as np
import pytest
from PIL import Image
from test_evaluate import _blobs, tiny_weights  # noqa: F401  (fixture)

from medhub import evaluate
from medhub.errors import InvalidArgumentError
from medhub.evaluate.frechet import feature_statistics, frechet_distance
from medhub.evaluate.metrics import FeatureGrams, fid_counts, kid_subset_indices, kid_values, mmd2_counts, prdc_counts
from medhub.evaluate.suite import compute_metrics, interval, parse_metrics


def _sets(n=30, m=25, d=6, shift=0.5, seed=0):
    rng = np.random.default_rng(seed)
    return rng.standard_normal((n, d)), rng.standard_normal((m, d)) + shift


# ----------------------------------------------------------------------------- naive definitions
def _naive_mmd2(x, y):
    d = x.shape[1]
    k = lambda a, b: (a @ b / d + 1) ** 3  # noqa: E731
    n, m = len(x), len(y)
    xx = sum(k(x[i], x[j]) for i in range(n) for j in range(n) if i != j) / (n * (n - 1))
    yy = sum(k(y[i], y[j]) for i in range(m) for j in range(m) if i != j) / (m * (m - 1))
    xy = sum(k(a, b) for a in x for b in y) / (n * m)
    return xx + yy - 2 * xy


def _naive_prdc(x, y, k):
    dist = lambda a, b: float(np.sqrt(((a - b) ** 2).sum()))  # noqa: E731
    rx = [sorted(dist(a, b) for j, b in enumerate(x) if j != i)[k - 1] for i, a in enumerate(x)]
    ry = [sorted(dist(a, b) for j, b in enumerate(y) if j != i)[k - 1] for i, a in enumerate(y)]
    precision = np.mean([any(dist(x[i], b) < rx[i] for i in range(len(x))) for b in y])
    recall = np.mean([any(dist(a, y[j]) < ry[j] for j in range(len(y))) for a in x])
    density = np.mean([sum(dist(x[i], b) < rx[i] for i in range(len(x))) for b in y]) / k
    coverage = np.mean([min(dist(a, b) for b in y) < rx[i] for i, a in enumerate(x)])
    return {"precision": precision, "recall": recall, "density": density, "coverage": coverage}


def test_kid_is_the_unbiased_mmd_with_the_cubic_kernel():
    x, y = _sets(12, 9)
    g = FeatureGrams(x, y)
    assert mmd2_counts(g, np.ones(12), np.ones(9)) == pytest.approx(_naive_mmd2(x, y), rel=1e-10)
    # subsets: each value is the naive MMD of that subset pair; mean and std over them
    values = kid_values(g, subsets=4, subset_size=6, seed=3)
    subsets = list(kid_subset_indices(12, 9, 4, 6, 3))
    assert values == pytest.approx([_naive_mmd2(x[i], y[j]) for i, j in subsets], rel=1e-10)
    mean, std = evaluate.kernel_inception_distance(x, y, subsets=4, subset_size=6, seed=3)
    assert (mean, std) == pytest.approx((values.mean(), values.std()))
    # default subset size: the whole smaller set; unbiased, so near 0 for one distribution
    same = evaluate.kernel_inception_distance(*_sets(200, 200, 4, 0.0, 1))[0]
    assert abs(same) < 0.05 < evaluate.kernel_inception_distance(*_sets(200, 200, 4, 1.0, 1))[0]
    with pytest.raises(InvalidArgumentError, match="subset size"):
        kid_values(g, subset_size=10)


def test_prdc_matches_the_definitions():
    x, y = _sets(15, 11, 3, 0.7, 2)
    for k in (1, 3):
        ours = evaluate.precision_recall_density_coverage(x, y, k=k)
        assert ours == pytest.approx(_naive_prdc(x, y, k), abs=1e-12)
    # identical sets: all four are 1 (density: every point lies in exactly... at least k balls)
    same = evaluate.precision_recall_density_coverage(x, x.copy(), k=3)
    assert same["precision"] == same["recall"] == same["coverage"] == 1.0
    far = evaluate.precision_recall_density_coverage(x, y + 100, k=3)
    assert far == {"precision": 0.0, "recall": 0.0, "density": 0.0, "coverage": 0.0}
    with pytest.raises(InvalidArgumentError, match="k \\(nearest neighbours\\)"):
        evaluate.precision_recall_density_coverage(x, y, k=11)


def test_mode_collapse_lowers_recall_and_coverage_not_precision():
    rng = np.random.default_rng(4)
    real = rng.standard_normal((80, 4))
    collapsed = real[:5][rng.integers(0, 5, 80)] + 0.01 * rng.standard_normal((80, 4))
    m = evaluate.precision_recall_density_coverage(real, collapsed, k=5)
    assert m["precision"] > 0.9 and m["recall"] < 0.2 and m["coverage"] < 0.4


@pytest.mark.parametrize("n,m,d", [(40, 30, 8), (12, 9, 64)])
def test_gram_fid_equals_the_covariance_fid(n, m, d):
    x, y = _sets(n, m, d)
    expected = frechet_distance(*feature_statistics(x), *feature_statistics(y))
    assert fid_counts(FeatureGrams(x, y), np.ones(n), np.ones(m)) == pytest.approx(expected, rel=1e-7)
    assert evaluate.fid_from_features(x, y) == pytest.approx(expected, rel=1e-7)


def test_counts_are_multisets_with_copies_never_paired():
    """A bootstrap resample as counts gives what the expanded multiset gives, except that copies of
    one image are not each other's pair (KID) or neighbour (k-NN)."""
    x, y = _sets(10, 8, 4, 0.3, 5)
    rng = np.random.default_rng(0)
    cx = np.bincount(rng.integers(0, 10, 10), minlength=10).astype(float)
    cy = np.bincount(rng.integers(0, 8, 8), minlength=8).astype(float)
    g = FeatureGrams(x, y)
    ex, ey = np.repeat(np.arange(10), cx.astype(int)), np.repeat(np.arange(8), cy.astype(int))
    xe, ye = x[ex], y[ey]
    # FID: the covariance of the expanded multiset
    assert fid_counts(g, cx, cy) == pytest.approx(frechet_distance(*feature_statistics(xe), *feature_statistics(ye)),
                                                  rel=1e-7)
    # KID: pairs of positions with different origins
    d = x.shape[1]
    k = lambda a, b: (a @ b / d + 1) ** 3  # noqa: E731

    def within(e, z):
        pairs = [(i, j) for i, j in itertools.product(range(len(e)), repeat=2) if e[i] != e[j]]
        return sum(k(z[e[i]], z[e[j]]) for i, j in pairs) / len(pairs)

    cross = np.mean([k(a, b) for a in xe for b in ye])
    assert mmd2_counts(g, cx, cy) == pytest.approx(within(ex, x) + within(ey, y) - 2 * cross, rel=1e-10)
    # PRDC: radii over the other origins' copies; averages over positions
    dist = lambda a, b: float(np.sqrt(((a - b) ** 2).sum()))  # noqa: E731
    kk = 2
    rx = {i: sorted(dist(x[i], x[j]) for j in ex if j != i)[kk - 1] for i in set(ex)}
    precision = np.mean([any(dist(x[i], y[j]) < rx[i] for i in set(ex)) for j in ey])
    coverage = np.mean([min(dist(x[i], y[j]) for j in ey) < rx[i] for i in ex])
    ours = prdc_counts(g, cx, cy, kk)
    assert ours["precision"] == pytest.approx(precision) and ours["coverage"] == pytest.approx(coverage)


def test_bootstrap_intervals():
    x, y = _sets(40, 40, 8, 0.4, 6)
    m = compute_metrics(x, y, bootstrap=300, seed=1)
    assert list(m) == ["FID", "KID", "precision", "recall", "density", "coverage"]
    for est in m.values():
        assert est.replicates == 300 and est.low <= est.value <= est.high and est.high > est.low
    for name in ("precision", "recall", "coverage"):
        assert 0.0 <= m[name].low and m[name].high <= 1.0
    again = compute_metrics(x, y, bootstrap=300, seed=1)
    assert [(e.low, e.high) for e in again.values()] == [(e.low, e.high) for e in m.values()]  # seeded
    # more images, narrower FID interval
    big = compute_metrics(*_sets(160, 160, 8, 0.4, 6), metrics="fid", bootstrap=300, seed=1)["FID"]
    assert big.high - big.low < m["FID"].high - m["FID"].low
    none = compute_metrics(x, y, metrics=["kid"], bootstrap=0)["KID"]
    assert none.replicates == 0 and np.isnan(none.low) and "[" not in str(none)
    assert interval(0.01, np.array([0.5, 0.6, 0.7]), 0.9, "precision")[0] == 0.0  # clipped to the range


def test_interval_covers_the_truth_in_simulation():
    """Coverage check of the recentred interval: KID of two samples of one distribution (truth 0)."""
    hits = 0
    for seed in range(40):
        x, y = _sets(30, 30, 4, 0.0, 100 + seed)
        est = compute_metrics(x, y, metrics="kid", bootstrap=200, seed=seed)["KID"]
        hits += est.low <= 0.0 <= est.high
    assert hits >= 32  # 95% nominal; allow for 40 trials


def test_parse_metrics():
    assert parse_metrics("kid") == ("kid",)
    assert parse_metrics(["PRDC", "fid"]) == ("fid", "prdc")
    with pytest.raises(InvalidArgumentError, match="choose from fid, kid, prdc"):
        parse_metrics("fid,is")


def _folder(path, images):
    path.mkdir()
    for i, img in enumerate(images):
        Image.fromarray(img).save(path / f"{i:02d}.png")
    return path


@pytest.mark.parametrize("extractor", ["inception", "radimagenet"])
def test_metrics_report_on_cached_real_features_for_both_extractors(tmp_path, monkeypatch, tiny_weights, extractor):  # noqa: F811
    real = _folder(tmp_path / "real", _blobs(12, 0.0, 0))
    cache = tmp_path / "real.npz"
    opts = {"weights": tiny_weights, "progress": False, "extractor": extractor, "bootstrap": 100, "k": 3}
    evaluate.fid(real, _blobs(12, 0.0, 1), real_cache=cache, weights=tiny_weights, progress=False,
                 extractor=extractor)
    calls = []
    import medhub.evaluate.features as feats

    original = feats.extract
    monkeypatch.setattr(feats, "extract", lambda *a, **k: (calls.append(1), original(*a, **k))[1])
    near = evaluate.metrics_report(real, _blobs(12, 0.0, 1), real_cache=cache, **opts)
    far = evaluate.metrics_report(real, _blobs(12, 6.0, 2), real_cache=cache, **opts)
    assert calls == [1, 1]  # the real features come from the FID cache
    assert near.extractor == extractor and near.n_real == 12 and near.settings["kid_subset_size"] == 12
    assert near.metrics["FID"].value == pytest.approx(evaluate.fid(real, _blobs(12, 0.0, 1), real_cache=cache,
                                                                   weights=tiny_weights, progress=False,
                                                                   extractor=extractor))
    assert near.metrics["FID"].value < far.metrics["FID"].value
    assert near.metrics["KID"].value < far.metrics["KID"].value
    assert near.metrics["precision"].value > far.metrics["precision"].value
    data = json.loads(far.to_json())
    assert data["metrics"]["KID"]["std"] == 0.0 and data["ci_method"].startswith("bootstrap")
    assert "precision" in str(far) and "95%" in str(far)


def test_metrics_report_baseline_from_a_reference_set(tiny_weights):  # noqa: F811
    real, train, syn = _blobs(10, 0.0, 0), _blobs(14, 0.0, 1), _blobs(10, 6.0, 2)
    rep = evaluate.metrics_report(real, syn, reference=train, weights=tiny_weights, progress=False, bootstrap=50, k=3)
    assert rep.n_reference == 14 and set(rep.baseline) == set(rep.metrics)
    assert rep.baseline["FID"].value < rep.metrics["FID"].value
    assert "real-real" in str(rep)
    with pytest.raises(InvalidArgumentError, match="at least as many as the synthetic set"):
        evaluate.metrics_report(real, _blobs(16, 6.0, 3), reference=train, weights=tiny_weights, progress=False)


def test_cli_evaluate(tmp_path, capsys, tiny_weights):  # noqa: F811
    from medhub.cli import main

    real = _folder(tmp_path / "real", _blobs(10, 0.0, 0))
    syn = _folder(tmp_path / "syn", _blobs(10, 6.0, 2))
    train = _folder(tmp_path / "train", _blobs(12, 0.0, 1))
    code = main(["evaluate", str(real), str(syn), "--metrics", "fid,kid,prdc", "--json", "--weights",
                 str(tiny_weights), "--bootstrap", "50", "--k", "3", "--reference", str(train), "--train", str(train)])
    data = json.loads(capsys.readouterr().out)
    assert code == 0 and set(data["metrics"]) == {"FID", "KID", "precision", "recall", "density", "coverage"}
    assert data["metrics"]["FID"]["low"] <= data["metrics"]["FID"]["value"] <= data["metrics"]["FID"]["high"]
    assert data["baseline"]["FID"]["value"] > 0 and data["memorization"]["n_train"] == 12
    code = main(["evaluate", str(real), str(syn), "--metrics", "kid", "--weights", str(tiny_weights), "--bootstrap", "0"])
    out = capsys.readouterr().out
    assert code == 0 and "KID" in out and "FID" not in out
    code = main(["evaluate", str(real), str(syn), "--metrics", "fid,inception-score"])
    assert code == 2 and "choose from fid, kid, prdc" in capsys.readouterr().err
    # FID keeps its own command
    assert main(["fid", str(real), str(syn), "--weights", str(tiny_weights), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["fid"] == pytest.approx(data["metrics"]["FID"]["value"])


def test_evaluate_package_and_cli_parser_stay_light():
    import subprocess
    import sys

    code = ("import sys, medhub.evaluate, medhub.cli; medhub.cli.build_parser(); "
            "print([m for m in ('numpy', 'torch', 'PIL') if m in sys.modules])")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
    import medhub.evaluate as ev

    assert sorted(ev.__all__) == sorted(n for n in ev._WHERE if not n.startswith("_"))
    assert all(callable(getattr(ev, n)) for n in ev.__all__)
    with pytest.raises(AttributeError):
        ev.no_such_metric  # noqa: B018
