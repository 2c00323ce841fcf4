"""Memorisation check: the nearest real training image of each synthetic sample.

Medical training data is patient data; a model that reproduces its training images must be
visible at a glance. For each synthetic sample this module finds the nearest training image in
feature space (Euclidean, the extractor's features) and in pixels (root-mean-square difference
of intensities in [0, 1] at the synthetic images' size), with the distances. Held-out real images
(never seen in training, of the same source) give the yardstick:

* ``closer_than_held_out``: share of samples that are closer to their nearest training image
  than any held-out image is to that training image;
* its **baseline**: the same share for the held-out images themselves (leave one out: each held-out
  image against the other held-out images), i.e. what images that were not copied score;
* ``near_copies``: share of samples whose pixel distance to a training image is below the
  smallest held-out-to-training pixel distance (closer than any real image of the source is);
* median nearest-training distances of samples and of held-out images.

Example:
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> train = rng.random((20, 8, 8))
    >>> held = rng.random((10, 8, 8))
    >>> copies = train[:5] + 0.001                     # a model that copies its training data
    >>> rep = memorization_from_arrays(copies, train, held)
    >>> rep.summary["pixels"]["near_copies"], rep.samples[0]["nearest_pixel"]
    (1.0, 0)
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ..errors import InvalidArgumentError
from .features import to_unit

if TYPE_CHECKING:  # pragma: no cover
    from ..config import ConfigManager


def pixel_matrix(images: list[np.ndarray], size: tuple[int, int], channels: int, normalize: bool = False) -> np.ndarray:
    """Images -> (N, size[0] * size[1] * channels) float64 rows in [0, 1] (bilinear, antialiased
    resize with torch; grey and colour images compared as grey when ``channels`` is 1)."""
    import torch
    import torch.nn.functional as F

    rows = []
    for img in images:
        x = to_unit(img, normalize)
        if channels == 1 and x.shape[-1] == 3:
            x = x.mean(axis=-1, keepdims=True)
        elif channels == 3 and x.shape[-1] == 1:
            x = np.repeat(x, 3, axis=-1)
        if x.shape[:2] != size:
            t = torch.from_numpy(np.ascontiguousarray(x)).permute(2, 0, 1)[None]
            t = F.interpolate(t, size=size, mode="bilinear", align_corners=False, antialias=True)
            x = t[0].permute(1, 2, 0).numpy()
        rows.append(x.reshape(-1))
    return np.asarray(rows, dtype=np.float64)


def _distances(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    sq = (a * a).sum(1)[:, None] + (b * b).sum(1)[None, :] - 2.0 * a @ b.T
    return np.sqrt(np.clip(sq, 0.0, None))


def _space(d_st: np.ndarray, d_ht: np.ndarray | None, scale: float) -> tuple[np.ndarray, np.ndarray, dict[str, Any]]:
    """Nearest training image of each sample, the per-sample test and the summary, in one space.

    ``d_st``: sample-to-training distances; ``d_ht``: held-out-to-training (or None); distances are
    divided by ``scale`` (sqrt of the number of pixel values for pixels, 1 for features)."""
    d_st = d_st / scale
    nearest = d_st.argmin(axis=1)
    dist = d_st[np.arange(len(nearest)), nearest]
    summary: dict[str, Any] = {"median_distance_synthetic": float(np.median(dist))}
    closer = np.zeros(len(nearest), dtype=bool)
    if d_ht is not None:
        d_ht = d_ht / scale
        held_to_train = d_ht.min(axis=0)                      # each training image's nearest held-out image
        closer = dist < held_to_train[nearest]
        h_near = d_ht.argmin(axis=1)
        h_dist = d_ht[np.arange(len(h_near)), h_near]
        if d_ht.shape[0] >= 2:
            others = np.where(np.eye(d_ht.shape[0], dtype=bool), np.inf, d_ht[:, h_near].T)  # row i: others to h_near[i]
            base = float(np.mean(h_dist < others.min(axis=1)))
        else:
            base = float("nan")
        summary.update({
            "closer_than_held_out": float(closer.mean()),
            "closer_than_held_out_baseline": base,
            "near_copies": float(np.mean(dist < d_ht.min())),
            "median_distance_held_out": float(np.median(h_dist)),
            "min_distance_held_out": float(d_ht.min()),
        })
    return nearest, dist, {**summary, "closer": closer}


@dataclass
class MemorizationReport:
    """Per-sample nearest training images and distances (``samples``) and the summary per space."""

    samples: list[dict[str, Any]]
    summary: dict[str, dict[str, Any]]
    n_synthetic: int
    n_train: int
    n_held_out: int
    extractor: str | None = None
    pixel_size: list[int] = field(default_factory=list)
    train_names: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2)

    def summary_text(self) -> str:
        """A few lines for a terminal."""
        lines = [f"memorisation: {self.n_synthetic} samples vs {self.n_train} training images"
                 f" ({self.n_held_out} held out)"]
        for space, s in self.summary.items():
            line = f"  {space:<8} median nearest-training distance {s['median_distance_synthetic']:.4g}"
            if "closer_than_held_out" in s:
                line += (f" (held-out {s['median_distance_held_out']:.4g}); closer than held-out "
                         f"{100 * s['closer_than_held_out']:.0f}% (baseline "
                         f"{100 * s['closer_than_held_out_baseline']:.0f}%); near copies {100 * s['near_copies']:.0f}%")
            lines.append(line)
        return "\n".join(lines)


def memorization_from_arrays(synthetic: list[np.ndarray] | np.ndarray, train: list[np.ndarray] | np.ndarray,
                             held_out: list[np.ndarray] | np.ndarray | None = None,
                             features: tuple[np.ndarray, np.ndarray, np.ndarray | None] | None = None,
                             normalize: bool = False, extractor: str | None = None,
                             train_names: list[str] | None = None) -> MemorizationReport:
    """The memorisation check on images in memory; ``features``: (synthetic, train, held-out)
    feature arrays from one extractor, to add the feature space (pixels are always compared)."""
    syn, tr = list(synthetic), list(train)
    held = None if held_out is None else list(held_out)
    if len(syn) < 1 or len(tr) < 1:
        raise InvalidArgumentError("The memorisation check needs at least one synthetic and one training image.")
    ref = to_unit(syn[0], normalize)
    size, channels = (int(ref.shape[0]), int(ref.shape[1])), int(ref.shape[2])
    px_s, px_t = pixel_matrix(syn, size, channels, normalize), pixel_matrix(tr, size, channels, normalize)
    px_h = None if held is None else pixel_matrix(held, size, channels, normalize)
    scale = float(np.sqrt(px_s.shape[1]))
    spaces: dict[str, tuple[np.ndarray, np.ndarray, dict[str, Any]]] = {}
    if features is not None:
        fs, ft, fh = (None if f is None else np.asarray(f, np.float64) for f in features)
        if fs is None or ft is None or len(fs) != len(syn) or len(ft) != len(tr):
            raise InvalidArgumentError("features must hold one row per synthetic and per training image.")
        spaces["features"] = _space(_distances(fs, ft), None if fh is None else _distances(fh, ft), 1.0)
    spaces["pixels"] = _space(_distances(px_s, px_t), None if px_h is None else _distances(px_h, px_t), scale)
    samples = []
    for i in range(len(syn)):
        row: dict[str, Any] = {"index": i}
        for space, (nearest, dist, summary) in spaces.items():
            key = "feature" if space == "features" else "pixel"
            row[f"nearest_{key}"] = int(nearest[i])
            row[f"{key}_distance"] = float(dist[i])
            if held is not None:
                row[f"{key}_closer_than_held_out"] = bool(summary["closer"][i])
        samples.append(row)
    summary = {space: {k: v for k, v in s.items() if k != "closer"} for space, (_, _, s) in spaces.items()}
    return MemorizationReport(samples, summary, len(syn), len(tr), 0 if held is None else len(held),
                              extractor if features is not None else None, [*size, channels], train_names or [])


def load_images(source: Any, seed: int = 0, device: str = "cpu", normalize: bool = False,
                catalog: ConfigManager | None = None) -> tuple[list[np.ndarray], list[str], str]:
    """Images of a set (folder, array, list, ``(model_id, n)`` of ``catalog``) in memory: (images, names, what).

    Folder images are named by their path inside the folder, others by their index."""
    from .features import image_files, iter_images

    images, _count, what = iter_images(source, seed=seed, device=device, normalize=normalize, catalog=catalog)
    images = [np.asarray(x) for x in images]
    if isinstance(source, (str, os.PathLike)) and Path(source).is_dir():
        names = [str(p.relative_to(source)) for p in image_files(source)]
    else:
        names = [f"#{i}" for i in range(len(images))]
    return images, names, what


def memorization_report(synthetic: Any, train: Any, held_out: Any = None, extractor: str | None = "inception",
                        normalize: bool = False, seed: int = 0, device: str = "cpu", catalog: ConfigManager | None = None,
                        **kwargs: Any) -> MemorizationReport:
    """The memorisation check on image sets (folders, arrays, lists, ``(model_id, n)``).

    ``held_out``: real images of the same source never used in training (strongly recommended:
    without them the distances have no yardstick). ``extractor=None`` compares pixels only.
    ``catalog`` resolves the model ids of ``(model_id, n)`` sets (as in :func:`medhub.evaluate.fid`).
    Other keyword arguments (``weights``, ``batch_size``, ``progress``) go to the extractor.
    """
    from .core import compute_features

    syn, _, _ = load_images(synthetic, seed, device, normalize, catalog)
    tr, names, _ = load_images(train, seed, device, normalize, catalog)
    held = None if held_out is None else load_images(held_out, seed, device, normalize, catalog)[0]
    features = None
    if extractor is not None:
        opts = dict(extractor=extractor, normalize=normalize, seed=seed, device=device, **kwargs)
        features = (compute_features(syn, **opts)[0], compute_features(tr, **opts)[0],
                    None if held is None else compute_features(held, **opts)[0])
    return memorization_from_arrays(syn, tr, held, features, normalize, extractor, names)


def nearest_training_images(synthetic: Any, train: Any, **kwargs: Any) -> list[dict[str, Any]]:
    """Per synthetic sample: the nearest training image (index) and distance, in feature space and
    in pixels (see :func:`memorization_report`, which takes the same arguments)."""
    return memorization_report(synthetic, train, **kwargs).samples
