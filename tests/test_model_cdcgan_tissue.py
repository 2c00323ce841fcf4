"""What is specific to the shipped class-conditional DCGAN 00103_CDCGAN_BRAIN_MRI_TISSUE."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import REPO, import_file

from medhub import Generators
from medhub.errors import GenerationError

MODEL_ID = "00103_CDCGAN_BRAIN_MRI_TISSUE"
FOLDER = REPO / "models" / MODEL_ID
CONDITIONS = ["T1", "GM", "WM"]


@pytest.fixture(scope="module")
def g() -> Generators:
    return Generators()


@pytest.fixture(scope="module")
def pkg():
    return import_file(FOLDER / "__init__.py", f"test_{MODEL_ID}")


def _run(g: Generators, n: int = 4, **kwargs):
    samples = g.generate(MODEL_ID, num_samples=n, save_images=False, seed=0, device="cpu", **kwargs)
    return np.stack([s[0] for s in samples]), [s[1] for s in samples]


def test_condition_sets_label_and_changes_image(g):
    images = {}
    for cond in CONDITIONS:
        imgs, labels = _run(g, condition=cond.lower() if cond == "GM" else cond)
        assert labels == [cond] * 4
        images[cond] = imgs
    for a, b in (("T1", "GM"), ("T1", "WM"), ("GM", "WM")):
        assert np.abs(images[a].astype(int) - images[b].astype(int)).mean() > 5, (a, b)
    by_index, labels = _run(g, condition=2)
    assert labels == ["WM"] * 4 and np.array_equal(by_index, images["WM"])


def test_per_sample_condition_list(g):
    conds = ["T1", "GM", "WM", "gm", 0, "WM"]
    imgs, labels = _run(g, n=6, condition=conds, batch_size=4)
    assert labels == ["T1", "GM", "WM", "GM", "T1", "WM"]
    for cond in CONDITIONS:  # sample i is the one a run with that single condition gives
        alone, _ = _run(g, n=6, condition=cond)
        for i in (i for i, label in enumerate(labels) if label == cond):
            assert np.array_equal(imgs[i], alone[i])


def test_default_condition_drawn_from_seed_is_reproducible(g, pkg):
    imgs, labels = _run(g, n=24)
    again, labels_again = _run(g, n=24, batch_size=5)
    assert labels == labels_again and np.array_equal(imgs, again)
    assert set(labels) == set(CONDITIONS)
    # the condition of sample i is the one drawn from its own seed
    from medhub.execution.seeds import sample_seeds

    _, drawn = pkg.draw_inputs(sample_seeds(0, range(24)))
    assert labels == [CONDITIONS[c] for c in drawn.tolist()]


def test_bad_condition_raises_clear_error(g, pkg):
    with pytest.raises(GenerationError, match=r"Unknown condition 'CSF'.*\"T1\", \"GM\", \"WM\""):
        _run(g, condition="CSF")
    with pytest.raises(GenerationError, match="accepted values"):
        _run(g, condition=3)
    with pytest.raises(ValueError, match="accepted values"):
        pkg.condition_index(True)


def test_same_latent_other_condition_gives_other_image(g):
    z = np.random.default_rng(0).standard_normal((3, 100)).astype(np.float32)
    t1, _ = _run(g, n=3, latent=z, condition="T1")
    wm, labels = _run(g, n=3, latent=z, condition="WM")
    assert labels == ["WM"] * 3
    assert np.abs(t1.astype(int) - wm.astype(int)).mean() > 5
    mixed, labels = _run(g, n=3, latent=z, condition=["T1", "WM", "T1"])
    assert np.array_equal(mixed[0], t1[0]) and np.array_equal(mixed[1], wm[1])


def test_medigan_generate_returns_image_label_tuples(pkg, tmp_path):
    weights = str(FOLDER / "weights.safetensors")
    out = pkg.generate(weights, num_samples=3, output_path=None, save_images=False, seed=1, condition="gm")
    assert [label for _, label in out] == ["GM"] * 3
    assert out[0][0].shape == (64, 64) and out[0][0].dtype == np.uint8
    pkg.generate(weights, num_samples=2, output_path=str(tmp_path), save_images=True, seed=1, condition="WM")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["0_WM.png", "1_WM.png"]
