"""What is specific to the shipped WGAN-GP head CT model 00102_WGANGP_HEAD_CT."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import REPO, import_file

MODEL_ID = "00102_WGANGP_HEAD_CT"
FOLDER = REPO / "models" / MODEL_ID
WEIGHTS = FOLDER / "weights.safetensors"


@pytest.fixture(scope="module")
def pkg():
    return import_file(FOLDER / "__init__.py", f"test_pkg_{MODEL_ID}")


@pytest.fixture(scope="module")
def model(pkg):
    return pkg.load(WEIGHTS, "cpu")


def test_generator_is_small_and_in_eval_mode(model):
    n = sum(p.numel() for p in model.parameters())
    assert 0.3e6 <= n <= 2e6
    assert not model.training
    assert WEIGHTS.stat().st_size <= 8 * 2**20


def test_latent_input_drives_the_output(pkg, model):
    z = np.random.default_rng(0).standard_normal((3, pkg.LATENT_DIM)).astype(np.float32)
    a = pkg.sample(model, [1, 2, 3], latent=z)["image"]
    b = pkg.sample(model, [7, 8, 9], latent=z)["image"]  # the seeds are ignored when latent is given
    assert a.shape == (3, 64, 64) and a.dtype == np.uint8
    assert np.array_equal(a, b)
    c = pkg.sample(model, [1, 2, 3], latent=-z)["image"]
    assert not np.array_equal(a, c)
    seeded = pkg.sample(model, [1, 2, 3])["image"]
    assert np.array_equal(seeded, pkg.sample(model, [1, 2, 3], latent=pkg.latents([1, 2, 3]).numpy())["image"])


def test_bad_latent_is_a_value_error(pkg, model):
    with pytest.raises(ValueError, match="shape"):
        pkg.sample(model, [0, 1], latent=np.zeros((2, 99)))
    with pytest.raises(ValueError, match="finite"):
        pkg.sample(model, [0], latent=np.full((1, 100), np.nan))


def test_images_look_like_windowed_head_ct(pkg, model):
    images = pkg.sample(model, list(range(16)))["image"].astype(np.float32)
    assert images.shape == (16, 64, 64)
    # air around the head is far below the window (-160 HU): black corners and a mostly dark frame
    corners = np.concatenate([images[:, :6, :6].ravel(), images[:, :6, -6:].ravel()])
    assert np.median(corners) < 10
    assert (images < 10).mean() > 0.3
    # the skull is near or above the top of the window (+240 HU): every slice has bright pixels
    assert all(img.max() > 230 for img in images)
    assert sum((img > 230).sum() >= 20 for img in images) >= 12
    assert (images > 230).mean() > 0.005
    # brain tissue (~20-40 HU) sits in the middle of the window, in the centre of the slice
    centre = np.median(images[:, 24:40, 24:40], axis=(1, 2))
    assert 60 < np.median(centre) < 200


def test_medigan_generate_with_seed_is_reproducible(pkg, tmp_path):
    a = pkg.generate(str(WEIGHTS), num_samples=3, save_images=False, seed=5)
    b = pkg.generate(str(WEIGHTS), num_samples=3, save_images=False, seed=5)
    c = pkg.generate(str(WEIGHTS), num_samples=3, save_images=False, seed=6)
    assert len(a) == 3 and all(np.array_equal(x, y) for x, y in zip(a, b))
    assert not np.array_equal(a[0], c[0])
    np.random.seed(3)
    d = pkg.generate(str(WEIGHTS), num_samples=2, save_images=False)
    np.random.seed(3)
    e = pkg.generate(str(WEIGHTS), num_samples=2, save_images=False)
    assert all(np.array_equal(x, y) for x, y in zip(d, e))
    pkg.generate(str(WEIGHTS), num_samples=2, output_path=str(tmp_path / "png"), save_images=True)
    assert sorted(p.name for p in (tmp_path / "png").iterdir()) == ["0.png", "1.png"]


def test_medhub_passes_latent_rows_per_sample():
    from medhub import Generators

    z = np.random.default_rng(1).standard_normal((3, 100)).astype(np.float32)
    g = Generators()
    whole = g.generate(MODEL_ID, num_samples=3, save_images=False, seed=0, latent=z, device="cpu")
    split = g.generate(MODEL_ID, num_samples=3, save_images=False, seed=9, latent=z, batch_size=1, device="cpu")
    assert all(np.array_equal(a, b) for a, b in zip(whole, split))
    assert not np.array_equal(whole[0], whole[1])
