"""FID on image sets: features (cached), FID, the real-real lower bound FID_rr and the ratio
r_FID = FID_rr / FID_rs (Osuala et al., medigan).

Example:
    >>> from medhub.evaluate import fid_ratio
    >>> fid_ratio(fid_rs=50.0, fid_rr=10.0)
    0.2
"""

from __future__ import annotations

import contextlib
import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import InvalidArgumentError, OutputPathError
from .metrics import fid_from_features


def fid_ratio(fid_rs: float, fid_rr: float) -> float:
    """r_FID = FID_rr / FID_rs: 1 means the synthetic set is as close to the real set as real data
    is to itself; smaller is worse."""
    if fid_rs <= 0:
        raise InvalidArgumentError(f"fid_rs must be positive, got {fid_rs}.")
    return float(fid_rr) / float(fid_rs)


def compute_features(source: Any, extractor: str = "inception", weights: str | os.PathLike[str] | None = None,
             normalize: bool = False, batch_size: int = 32, device: str = "cpu", seed: int = 0,
             cache: str | os.PathLike[str] | None = None, progress: bool | None = None) -> tuple[np.ndarray, dict]:
    """Features of a set of images and a description of how they were made.

    ``source``: a folder of images, an array (N, ...), a list of arrays, or ``(model_id, n)``.
    ``cache``: an ``.npz`` file; if it exists and was made with the same extractor, weights and
    normalisation, its features are used; otherwise they are computed and written there.
    """
    from ..validate import check_positive
    from .features import FeatureExtractor, extract, iter_images

    check_positive("batch_size", batch_size, allow_none=False)
    if cache is not None and Path(cache).is_dir():
        raise InvalidArgumentError(f"The feature cache {cache} is a folder; give a file path, e.g. {Path(cache) / 'real.npz'}.")
    ext = FeatureExtractor(extractor, weights, device)
    info = {**ext.describe(), "normalize": normalize}
    if cache is not None and Path(cache).is_file():
        feats, stored = read_feature_cache(cache)
        if {k: stored.get(k) for k in info} == info:
            return feats, stored
    images, count, what = iter_images(source, seed=seed, device=device, normalize=normalize)
    feats = extract(ext, images, count, batch_size=batch_size, normalize=normalize, progress=progress)
    info = {**info, "source": what, "n": int(feats.shape[0])}
    if cache is not None:
        tmp = Path(cache).with_name(f".{Path(cache).name}.tmp.npz")
        try:
            Path(cache).parent.mkdir(parents=True, exist_ok=True)
            np.savez(tmp, features=feats.astype(np.float32), info=json.dumps(info))
            os.replace(tmp, cache)
        except OSError as exc:
            with contextlib.suppress(OSError):
                tmp.unlink(missing_ok=True)
            raise OutputPathError(f"Cannot write the feature cache {cache}: {exc.strerror or exc}; give a writable "
                                  "path.") from None
    return feats, info


def read_feature_cache(path: str | os.PathLike[str]) -> tuple[np.ndarray, dict[str, Any]]:
    """The features (N, D) and the description of a cache written by :func:`compute_features`;
    :class:`~medhub.errors.InvalidArgumentError` for a file that is not one."""
    try:
        data = np.load(path, allow_pickle=False)
    except Exception:  # noqa: BLE001 - whatever numpy says, it is not a feature cache
        data = None
    feats: Any = None
    if data is None:
        why = "numpy cannot read it as an .npz archive"
    elif not hasattr(data, "files"):
        why = "it holds a single array (.npy), not an .npz archive"
    else:
        with data:
            try:
                feats = np.asarray(data["features"], dtype=np.float64)
                stored = json.loads(str(data["info"]))
            except Exception:  # noqa: BLE001 - missing or unreadable members
                feats = None
        why = "it holds no 'features' and 'info' written by medhub"
    if feats is None or feats.ndim != 2 or not isinstance(stored, dict):
        raise InvalidArgumentError(f"{path} is not a medhub feature cache ({why}); give a cache that medhub fid, "
                                   "evaluate or report wrote, or a new path for medhub to write one.")
    return feats, stored


def _fid_from_features(a: np.ndarray, b: np.ndarray) -> float:
    return fid_from_features(a, b)


def fid(real: Any, synthetic: Any, extractor: str = "inception", normalize: bool = False, **kwargs: Any) -> float:
    """FID between a real and a synthetic image set (lower is better).

    Each set is a folder of images, an array, a list of arrays, or ``(model_id, num_samples)``.
    Keyword arguments: ``weights``, ``batch_size``, ``device``, ``seed``, ``real_cache`` (an
    ``.npz`` for the real set's features), ``progress``.
    """
    real_cache = kwargs.pop("real_cache", None)
    a, _ = compute_features(real, extractor, normalize=normalize, cache=real_cache, **kwargs)
    b, _ = compute_features(synthetic, extractor, normalize=normalize, **kwargs)
    return _fid_from_features(a, b)


def _lower_bound(feats: np.ndarray, repeats: int, seed: int) -> tuple[float, float]:
    if feats.shape[0] < 4:
        raise InvalidArgumentError(f"The real-real lower bound needs at least 4 real images, got {feats.shape[0]}.")
    values = []
    for r in range(repeats):
        order = np.random.default_rng(seed + r).permutation(feats.shape[0])
        half = feats.shape[0] // 2
        values.append(_fid_from_features(feats[order[:half]], feats[order[half : 2 * half]]))
    return float(np.mean(values)), float(np.std(values))


def _reference_bound(feats: np.ndarray, ref: np.ndarray, n: int, repeats: int, seed: int) -> tuple[float, float]:
    """FID between ``feats`` and ``n`` images drawn from a second real set, over ``repeats`` draws."""
    if ref.shape[0] < n:
        raise InvalidArgumentError(
            f"The reference set has {ref.shape[0]} images; the lower bound needs at least as many as the "
            f"synthetic set ({n}), so that both FIDs are computed on the same number of images."
        )
    values = []
    for r in range(repeats if ref.shape[0] > n else 1):
        pick = np.random.default_rng(seed + r).choice(ref.shape[0], size=n, replace=False)
        values.append(_fid_from_features(feats, ref[np.sort(pick)]))
    return float(np.mean(values)), float(np.std(values))


def fid_lower_bound(real: Any, extractor: str = "inception", normalize: bool = False, repeats: int = 5,
                    seed: int = 0, reference: Any = None, **kwargs: Any) -> float:
    """FID_rr: the real-real lower bound of FID for this real set.

    Without ``reference``: the FID between two random halves of the real set, averaged over
    ``repeats`` seeds (n/2 images per side). With ``reference`` (a second, disjoint set of real
    images of the same source, e.g. the training images when ``real`` is the held-out set): the FID
    between ``real`` and as many images drawn from ``reference``, averaged over ``repeats`` draws,
    i.e. the floor at the **same** number of images as ``real`` (the halves bound carries the
    larger bias of n/2 images).

    >>> fid_lower_bound  # doctest: +ELLIPSIS
    <function fid_lower_bound at ...>
    """
    feats, _ = compute_features(real, extractor, normalize=normalize, cache=kwargs.pop("real_cache", None), **kwargs)
    if reference is not None:
        ref, _ = compute_features(reference, extractor, normalize=normalize, **kwargs)
        return _reference_bound(feats, ref, feats.shape[0], repeats, seed)[0]
    return _lower_bound(feats, repeats, seed)[0]


@dataclass
class FIDReport:
    """FID_rs, FID_rr (mean and std over splits), r_FID, sizes, extractor and preprocessing."""

    fid_rs: float
    fid_rr: float
    fid_rr_std: float
    r_fid: float
    n_real: int
    n_synthetic: int
    extractor: str
    normalize: bool
    preprocessing: dict[str, Any] = field(default_factory=dict)
    real: str = ""
    synthetic: str = ""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2)

    def __str__(self) -> str:
        return (f"FID_rs {self.fid_rs:.2f}  FID_rr {self.fid_rr:.2f} (+/- {self.fid_rr_std:.2f})  "
                f"r_FID {self.r_fid:.3f}  n_real {self.n_real}  n_synthetic {self.n_synthetic}  "
                f"extractor {self.extractor}{' (normalized)' if self.normalize else ''}")


def fid_report(real: Any, synthetic: Any, extractor: str = "inception", normalize: bool = False,
               repeats: int = 5, reference: Any = None, **kwargs: Any) -> FIDReport:
    """FID_rs, the lower bound FID_rr on the real set and r_FID in one report.

    For a fair comparison use as many synthetic images as the real set holds. Without
    ``reference`` FID_rr is computed on two halves of ``real`` (``n_real / 2`` images per side);
    with ``reference`` (a disjoint real set, e.g. training images when ``real`` is held out) it is
    the FID between ``real`` and as many reference images as the synthetic set has, so FID_rs and
    FID_rr are computed on the same numbers of images (see :func:`fid_lower_bound`).
    """
    real_cache = kwargs.pop("real_cache", None)
    seed = kwargs.get("seed", 0)
    a, info_a = compute_features(real, extractor, normalize=normalize, cache=real_cache, **kwargs)
    b, info_b = compute_features(synthetic, extractor, normalize=normalize, **kwargs)
    fid_rs = _fid_from_features(a, b)
    if reference is not None:
        ref, _ = compute_features(reference, extractor, normalize=normalize, **kwargs)
        fid_rr, fid_rr_std = _reference_bound(a, ref, b.shape[0], repeats, seed)
    else:
        fid_rr, fid_rr_std = _lower_bound(a, repeats, seed)
    preprocessing = {k: v for k, v in info_a.items() if k not in ("source", "n", "extractor", "normalize")}
    return FIDReport(fid_rs, fid_rr, fid_rr_std, fid_ratio(fid_rs, fid_rr) if fid_rs > 0 else float("nan"),
                     a.shape[0], b.shape[0], extractor, normalize, preprocessing,
                     info_a.get("source", ""), info_b.get("source", ""))
