"""Downstream checks: do synthetic images serve the task they are made for?

* :func:`gan_train_test` (Shmelkov et al., 2018, "How good is my GAN?"), for conditional models:
  **GAN-train** trains a small classifier on synthetic images (labelled by their condition) and
  tests it on real images; **GAN-test** trains it on real images and tests it on synthetic ones.
  Both read against the **real baseline**: trained on real, tested on other real images. A low
  GAN-train means the samples miss what distinguishes the classes (or their variety); a low
  GAN-test means the samples do not look like their class.
* :func:`segmentation_transfer`, for image + mask models: a small U-Net trained on synthetic
  (image, mask) pairs, Dice on real pairs, next to the same U-Net trained on real pairs.

The networks are small (about 25k and 120k parameters, group normalisation, which behaves the same
in training and evaluation at these batch sizes) and train in seconds to a minute on a CPU.
Everything is seeded (``torch.manual_seed``); with ``repeats`` the networks are trained with
``repeats`` seeds and every figure is the mean, with its standard deviation over the runs: on a few
hundred images one training run can land far from another.

Example:
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> def bright(side, n):  # class 0: bright top half; class 1: bright bottom half
    ...     x = rng.integers(0, 60, (n, 16, 16)).astype(np.uint8)
    ...     x[:, :8] += 150 if side == 0 else 0
    ...     x[:, 8:] += 150 if side == 1 else 0
    ...     return x
    >>> real = np.concatenate([bright(0, 20), bright(1, 20)]); labels = [0] * 20 + [1] * 20
    >>> out = gan_train_test(real, labels, real, labels, real, labels, epochs=15)
    >>> out["real_baseline"]
    1.0
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np

from ..errors import InvalidArgumentError
from .features import to_unit


def as_batch(images: Sequence[np.ndarray] | np.ndarray, normalize: bool = False) -> Any:
    """Images of one size -> float tensor (N, C, H, W) in [0, 1] (the FID intensity rules)."""
    import torch

    arrs = [to_unit(x, normalize) for x in images]
    if not arrs:
        raise InvalidArgumentError("Downstream checks need at least one image per set.")
    shapes = {a.shape for a in arrs}
    if len(shapes) > 1:
        raise InvalidArgumentError(f"Downstream checks need images of one size and channel count, got {sorted(shapes)}.")
    return torch.from_numpy(np.stack(arrs)).permute(0, 3, 1, 2).contiguous()


def _classifier(channels: int, classes: int) -> Any:
    from torch import nn

    def block(i: int, o: int) -> list[Any]:
        return [nn.Conv2d(i, o, 3, stride=2, padding=1), nn.GroupNorm(4, o), nn.ReLU()]

    return nn.Sequential(*block(channels, 16), *block(16, 32), *block(32, 48), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
                         nn.Dropout(0.2), nn.Linear(48, classes))


def _augment(x: Any, gen: Any) -> Any:
    """Random left-right flips and shifts of up to 2 pixels (whole batch, seeded)."""
    import torch

    if bool(torch.rand(1, generator=gen) < 0.5):
        x = x.flip(-1)
    dy, dx = (int(v) for v in torch.randint(-2, 3, (2,), generator=gen))
    return torch.roll(x, shifts=(dy, dx), dims=(-2, -1))


def _fit(net: Any, batches: Iterator[tuple[Any, Any]], lr: float) -> Any:
    """Adam on the cross-entropy of ``net`` over ``batches`` of (inputs, targets); ``net`` in eval mode after."""
    import torch

    opt = torch.optim.Adam(net.parameters(), lr=lr)
    net.train()
    for x, y in batches:
        loss = torch.nn.functional.cross_entropy(net(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
    return net.eval()


def train_classifier(images: Any, labels: Any, classes: int, epochs: int = 30, batch_size: int = 32,
                     lr: float = 2e-3, seed: int = 0) -> Any:
    """A small CNN trained on ``images`` (N, C, H, W tensor) and integer ``labels`` (N,)."""
    import torch

    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed)

    def batches() -> Iterator[tuple[Any, Any]]:
        for _ in range(epochs):
            order = torch.randperm(len(images), generator=gen)
            for start in range(0, len(images), batch_size):
                idx = order[start:start + batch_size]
                if len(idx) >= 2:
                    yield _augment(images[idx], gen), labels[idx]

    return _fit(_classifier(images.shape[1], classes), batches(), lr)


def accuracy(net: Any, images: Any, labels: Any) -> float:
    """Share of ``images`` that ``net`` classifies as ``labels``."""
    import torch

    with torch.inference_mode():
        pred = torch.cat([net(images[i:i + 256]).argmax(1) for i in range(0, len(images), 256)])
    return float((pred == labels).float().mean())


def _summarise(runs: list[dict[str, float]]) -> dict[str, Any]:
    """Mean of each figure over the runs, ``<name>_std`` beside it, and the runs themselves."""
    out: dict[str, Any] = {}
    for key in runs[0]:
        values = [r[key] for r in runs]
        out[key], out[f"{key}_std"] = float(np.mean(values)), float(np.std(values))
    return {**out, "runs": runs}


def _check_repeats(repeats: int) -> None:
    if repeats < 1:
        raise InvalidArgumentError(f"repeats must be 1 or more, got {repeats}.")


def gan_train_test(synthetic: Any, synthetic_labels: Sequence[Any], real_train: Any, real_train_labels: Sequence[Any],
                   real_test: Any, real_test_labels: Sequence[Any], epochs: int = 30, seed: int = 0,
                   normalize: bool = False, repeats: int = 1) -> dict[str, Any]:
    """GAN-train, GAN-test and the real baseline (accuracies in [0, 1]) of a conditional model,
    each the mean over ``repeats`` training seeds (``seed``, ``seed + 1``, ...), with ``_std``.

    Labels may be any values (e.g. ``"T1"``, ``"GM"``); classes are their sorted union.
    """
    _check_repeats(repeats)
    import torch

    names = sorted({*map(str, synthetic_labels), *map(str, real_train_labels), *map(str, real_test_labels)})
    if len(names) < 2:
        raise InvalidArgumentError("GAN-train / GAN-test need at least two classes.")
    index = {n: i for i, n in enumerate(names)}
    sets = {}
    for key, imgs, labs in (("synthetic", synthetic, synthetic_labels), ("real_train", real_train, real_train_labels),
                            ("real_test", real_test, real_test_labels)):
        if len(imgs) != len(labs):
            raise InvalidArgumentError(f"{key}: {len(imgs)} images but {len(labs)} labels.")
        sets[key] = (as_batch(imgs, normalize), torch.tensor([index[str(v)] for v in labs]))
    runs = []
    for r in range(repeats):
        on_syn = train_classifier(*sets["synthetic"], classes=len(names), epochs=epochs, seed=seed + r)
        on_real = train_classifier(*sets["real_train"], classes=len(names), epochs=epochs, seed=seed + r)
        runs.append({"gan_train": accuracy(on_syn, *sets["real_test"]), "gan_test": accuracy(on_real, *sets["synthetic"]),
                     "real_baseline": accuracy(on_real, *sets["real_test"])})
    return {**_summarise(runs), "classes": names, "n": {k: len(v[0]) for k, v in sets.items()}, "epochs": epochs,
            "seed": seed, "repeats": repeats}


def _unet(channels: int, classes: int) -> Any:
    import torch
    from torch import nn

    def double(i: int, o: int) -> Any:
        return nn.Sequential(nn.Conv2d(i, o, 3, padding=1), nn.GroupNorm(4, o), nn.ReLU(),
                             nn.Conv2d(o, o, 3, padding=1), nn.GroupNorm(4, o), nn.ReLU())

    class UNet(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.e1, self.e2, self.mid = double(channels, 16), double(16, 32), double(32, 64)
            self.u2, self.d2 = nn.ConvTranspose2d(64, 32, 2, stride=2), double(64, 32)
            self.u1, self.d1 = nn.ConvTranspose2d(32, 16, 2, stride=2), double(32, 16)
            self.head = nn.Conv2d(16, classes, 1)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            a = self.e1(x)
            b = self.e2(nn.functional.max_pool2d(a, 2))
            c = self.mid(nn.functional.max_pool2d(b, 2))
            b = self.d2(torch.cat([self.u2(c), b], 1))
            return self.head(self.d1(torch.cat([self.u1(b), a], 1)))

    return UNet()


def train_segmenter(images: Any, masks: Any, classes: int, steps: int = 400, batch_size: int = 16, lr: float = 2e-3,
                    seed: int = 0) -> Any:
    """A small U-Net trained on ``images`` (N, C, H, W; H, W divisible by 4) and ``masks`` (N, H, W)."""
    import torch

    if images.shape[-1] % 4 or images.shape[-2] % 4:
        raise InvalidArgumentError(f"The U-Net needs image sides divisible by 4, got {tuple(images.shape[-2:])}.")
    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed)

    def batches() -> Iterator[tuple[Any, Any]]:
        for _ in range(steps):
            idx = torch.randint(0, len(images), (min(batch_size, len(images)),), generator=gen)
            x, y = images[idx], masks[idx]
            yield (x.flip(-1), y.flip(-1)) if bool(torch.rand(1, generator=gen) < 0.5) else (x, y)

    return _fit(_unet(images.shape[1], classes), batches(), lr)


def dice_scores(net: Any, images: Any, masks: Any, classes: int) -> dict[str, float]:
    """Dice per foreground class (1 .. classes-1) over the whole set, and their mean."""
    import torch

    with torch.inference_mode():
        pred = torch.cat([net(images[i:i + 64]).argmax(1) for i in range(0, len(images), 64)])
    out = {}
    for c in range(1, classes):
        p, t = pred == c, masks == c
        denom = int(p.sum() + t.sum())
        out[str(c)] = 2.0 * int((p & t).sum()) / denom if denom else 1.0
    out["mean"] = float(np.mean([out[str(c)] for c in range(1, classes)]))
    return out


def segmentation_transfer(synthetic_images: Any, synthetic_masks: Any, real_train_images: Any, real_train_masks: Any,
                          real_test_images: Any, real_test_masks: Any, classes: int | None = None, steps: int = 400,
                          seed: int = 0, normalize: bool = False, repeats: int = 1) -> dict[str, Any]:
    """Dice on real test pairs of a U-Net trained on synthetic pairs, and of one trained on real
    pairs (the baseline). Masks are integer label maps (0 background). With ``repeats``, the
    mean Dice over that many training seeds (``mean_std``: its standard deviation)."""
    import torch

    _check_repeats(repeats)

    def masks_of(m: Any) -> Any:
        return torch.from_numpy(np.stack([np.asarray(x) for x in m]).astype(np.int64))

    sets = {"synthetic": (as_batch(synthetic_images, normalize), masks_of(synthetic_masks)),
            "real_train": (as_batch(real_train_images, normalize), masks_of(real_train_masks)),
            "real_test": (as_batch(real_test_images, normalize), masks_of(real_test_masks))}
    for key, (imgs, masks) in sets.items():
        if imgs.shape[0] != masks.shape[0] or imgs.shape[-2:] != masks.shape[-2:]:
            raise InvalidArgumentError(f"{key}: images {tuple(imgs.shape)} and masks {tuple(masks.shape)} do not pair.")
    if classes is None:
        classes = int(max(int(m.max()) for _, m in sets.values())) + 1
    out: dict[str, Any] = {}
    for key, train_set in (("dice_trained_on_synthetic", "synthetic"), ("dice_trained_on_real", "real_train")):
        runs = [dice_scores(train_segmenter(*sets[train_set], classes=classes, steps=steps, seed=seed + r),
                            *sets["real_test"], classes) for r in range(repeats)]
        out[key] = _summarise(runs)
    return {**out, "classes": classes, "n": {k: int(v[0].shape[0]) for k, v in sets.items()}, "steps": steps,
            "seed": seed, "repeats": repeats}
