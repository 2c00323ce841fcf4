"""GAN-train / GAN-test and the U-Net Dice check on small data the tests make (seconds on a CPU)."""

from __future__ import annotations

import numpy as np
import pytest

from medhub.errors import InvalidArgumentError
from medhub.evaluate.downstream import as_batch, dice_scores, gan_train_test, segmentation_transfer, train_segmenter


def _bars(label: int, n: int, seed: int) -> np.ndarray:
    """Class 0: a bright horizontal bar; class 1: a bright vertical bar; at random places."""
    rng = np.random.default_rng(seed)
    x = rng.integers(0, 50, (n, 16, 16)).astype(np.uint8)
    for img, pos in zip(x, rng.integers(3, 13, n)):
        if label == 0:
            img[pos - 1:pos + 1, 2:14] = 220
        else:
            img[2:14, pos - 1:pos + 1] = 220
    return x


def _labelled(n: int, seed: int) -> tuple[np.ndarray, list[str]]:
    return np.concatenate([_bars(0, n, seed), _bars(1, n, seed + 1)]), ["horizontal"] * n + ["vertical"] * n


@pytest.mark.slow  # about 15 s on 2 cores: trains classifiers
def test_gan_train_test_separates_good_from_useless_samples():
    train, train_y = _labelled(24, 0)
    test, test_y = _labelled(12, 10)
    good, good_y = _labelled(24, 20)
    out = gan_train_test(good, good_y, train, train_y, test, test_y, epochs=20)
    assert out["real_baseline"] >= 0.9 and out["gan_train"] >= 0.9 and out["gan_test"] >= 0.9
    assert out["classes"] == ["horizontal", "vertical"] and out["n"] == {"synthetic": 48, "real_train": 48,
                                                                        "real_test": 24}
    # samples whose condition is ignored (labels shuffled against the images): GAN-train falls to chance
    bad_y = list(np.random.default_rng(0).permutation(good_y))
    twice = gan_train_test(good, bad_y, train, train_y, test, test_y, epochs=20, repeats=2)
    bad = twice["runs"][0]  # the run with the same training seed as `out`
    assert bad["gan_train"] < 0.75 and bad["gan_test"] < 0.75 and bad["real_baseline"] == out["real_baseline"]
    # repeats: the mean and std over training seeds, each run kept
    assert twice["gan_test"] == pytest.approx(np.mean([r["gan_test"] for r in twice["runs"]]))
    assert twice["gan_test_std"] == pytest.approx(np.std([r["gan_test"] for r in twice["runs"]]))
    with pytest.raises(InvalidArgumentError, match="repeats"):
        gan_train_test(good, good_y, train, train_y, test, test_y, repeats=0)
    with pytest.raises(InvalidArgumentError, match="labels"):
        gan_train_test(good, good_y[:3], train, train_y, test, test_y)
    with pytest.raises(InvalidArgumentError, match="two classes"):
        gan_train_test(good, ["a"] * 48, train, ["a"] * 48, test, ["a"] * 24)


def _squares(n: int, seed: int, wrong_masks: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """Images with a bright square (label 1) and a mid-grey square (label 2) on a dark background."""
    rng = np.random.default_rng(seed)
    imgs = rng.integers(0, 40, (n, 12, 12)).astype(np.uint8)
    masks = np.zeros((n, 12, 12), np.uint8)
    for img, mask in zip(imgs, masks):
        (y1, x1), (y2, x2) = rng.integers(0, 8, 2), rng.integers(0, 8, 2)
        mask[y2:y2 + 4, x2:x2 + 4] = 2
        mask[y1:y1 + 4, x1:x1 + 4] = 1
        img[mask == 1] += 200
        img[mask == 2] += 100
    if wrong_masks:
        masks = masks[rng.permutation(n)]
    return imgs, masks


@pytest.mark.slow  # about 13 s on 2 cores: trains U-Nets
def test_segmentation_transfer_scores_pairs_by_dice_on_real_pairs():
    torch = pytest.importorskip("torch")
    real, real_m = _squares(24, 0)
    test, test_m = _squares(12, 1)
    syn, syn_m = _squares(24, 2)
    good = segmentation_transfer(syn, syn_m, real, real_m, test, test_m, steps=100)
    assert good["classes"] == 3 and {"1", "2", "mean", "mean_std", "runs"} <= set(good["dice_trained_on_real"])
    assert good["dice_trained_on_real"]["mean"] > 0.8 and good["dice_trained_on_synthetic"]["mean"] > 0.8
    assert good["dice_trained_on_real"]["mean_std"] == 0.0 and len(good["dice_trained_on_real"]["runs"]) == 1
    # pairs whose masks do not belong to their images (a model painting the wrong anatomy)
    bad_img, bad_m = _squares(24, 2, wrong_masks=True)
    net = train_segmenter(as_batch(bad_img), torch.from_numpy(bad_m.astype(np.int64)), 3, steps=100)
    bad = dice_scores(net, as_batch(test), torch.from_numpy(test_m.astype(np.int64)), 3)
    assert bad["mean"] < good["dice_trained_on_synthetic"]["mean"] - 0.3
    with pytest.raises(InvalidArgumentError, match="do not pair"):
        segmentation_transfer(syn, syn_m[:5], real, real_m, test, test_m, steps=1)
    with pytest.raises(InvalidArgumentError, match="divisible by 4"):
        segmentation_transfer(syn[:, :10, :10], syn_m[:, :10, :10], real[:, :10, :10], real_m[:, :10, :10],
                              test[:, :10, :10], test_m[:, :10, :10], steps=1)
