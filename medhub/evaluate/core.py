"""FID on image sets: features (cached), FID, the real-real lower bound FID_rr and the ratio
r_FID = FID_rr / FID_rs (Osuala et al., medigan).

Example:
    >>> from medhub.evaluate import fid_ratio
    >>> fid_ratio(fid_rs=50.0, fid_rr=10.0)
    0.2
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ..atomic import replacing
from ..errors import InvalidArgumentError, OutputPathError
from .metrics import fid_from_features

if TYPE_CHECKING:  # pragma: no cover
    from ..config import ConfigManager


def fid_ratio(fid_rs: float, fid_rr: float) -> float:
    """r_FID = FID_rr / FID_rs: 1 means the synthetic set is as close to the real set as real data
    is to itself; smaller is worse."""
    if fid_rs <= 0:
        raise InvalidArgumentError(f"fid_rs must be positive, got {fid_rs}.")
    return float(fid_rr) / float(fid_rs)


def compute_features(source: Any, extractor: str = "inception", weights: str | os.PathLike[str] | None = None,
             normalize: bool = False, batch_size: int = 32, device: str = "cpu", seed: int = 0,
             cache: str | os.PathLike[str] | None = None, progress: bool | None = None,
             catalog: ConfigManager | None = None) -> tuple[np.ndarray, dict]:
    """Features of a set of images and a description of how they were made.

    ``source``: a folder of images, an array (N, ...), a list of arrays, or ``(model_id, n)``
    (``model_id`` of ``catalog``: default the default catalog; pass a ``Generators``'
    ``config_manager`` to use its catalog).
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
    images, count, what = iter_images(source, seed=seed, device=device, normalize=normalize, catalog=catalog)
    feats = extract(ext, images, count, batch_size=batch_size, normalize=normalize, progress=progress)
    info = {**info, "source": what, "n": int(feats.shape[0])}
    if cache is not None:
        try:
            Path(cache).parent.mkdir(parents=True, exist_ok=True)
            with replacing(cache, suffix=".npz") as tmp:  # np.savez adds .npz to a name without it
                np.savez(tmp, features=feats.astype(np.float32), info=json.dumps(info))
        except OSError as exc:
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


def fid(real: Any, synthetic: Any, extractor: str = "inception", normalize: bool = False, **kwargs: Any) -> float:
    """FID between a real and a synthetic image set (lower is better).

    Each set is a folder of images, an array, a list of arrays, or ``(model_id, num_samples)``.
    Keyword arguments: ``weights``, ``batch_size``, ``device``, ``seed``, ``real_cache`` (an
    ``.npz`` for the real set's features), ``progress``, ``catalog`` (the
    :class:`~medhub.config.ConfigManager` that resolves model ids, e.g. a ``Generators``'
    ``config_manager``).
    """
    real_cache = kwargs.pop("real_cache", None)
    a, _ = compute_features(real, extractor, normalize=normalize, cache=real_cache, **kwargs)
    b, _ = compute_features(synthetic, extractor, normalize=normalize, **kwargs)
    return fid_from_features(a, b)


def fid_lower_bound_from_features(real: np.ndarray, repeats: int = 5, seed: int = 0, reference: np.ndarray | None = None,
                                  n: int | None = None) -> tuple[float, float]:
    """FID_rr from features: the mean and the std of the real-real FID over ``repeats`` seeds.

    Without ``reference``: the FID between two random halves of ``real`` (n/2 per side). With
    ``reference`` (features of a second, disjoint real set): the FID between ``real`` and ``n``
    images drawn from it (default: as many as ``real`` has), so that FID_rr is computed on the same
    number of images as the FID it is compared with (what :func:`fid_report` does).

    Example:
        >>> rng = np.random.default_rng(0)
        >>> mean, std = fid_lower_bound_from_features(rng.standard_normal((40, 8)), repeats=3)
        >>> 0 < mean < 5, std >= 0
        (True, True)
    """
    values = []
    if reference is None:
        if real.shape[0] < 4:
            raise InvalidArgumentError(f"The real-real lower bound needs at least 4 real images, got {real.shape[0]}.")
        half = real.shape[0] // 2
        for r in range(repeats):
            order = np.random.default_rng(seed + r).permutation(real.shape[0])
            values.append(fid_from_features(real[order[:half]], real[order[half : 2 * half]]))
        return float(np.mean(values)), float(np.std(values))
    n = real.shape[0] if n is None else n
    if reference.shape[0] < n:
        raise InvalidArgumentError(
            f"The reference set has {reference.shape[0]} images; the lower bound needs at least as many as the "
            f"synthetic set ({n}), so that both FIDs are computed on the same number of images."
        )
    for r in range(repeats if reference.shape[0] > n else 1):
        pick = np.random.default_rng(seed + r).choice(reference.shape[0], size=n, replace=False)
        values.append(fid_from_features(real, reference[np.sort(pick)]))
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
        return fid_lower_bound_from_features(feats, repeats, seed, reference=ref)[0]
    return fid_lower_bound_from_features(feats, repeats, seed)[0]


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
    fid_rs = fid_from_features(a, b)
    ref = None if reference is None else compute_features(reference, extractor, normalize=normalize, **kwargs)[0]
    fid_rr, fid_rr_std = fid_lower_bound_from_features(a, repeats, seed, reference=ref, n=b.shape[0])
    preprocessing = {k: v for k, v in info_a.items() if k not in ("source", "n", "extractor", "normalize")}
    return FIDReport(fid_rs, fid_rr, fid_rr_std, fid_ratio(fid_rs, fid_rr) if fid_rs > 0 else float("nan"),
                     a.shape[0], b.shape[0], extractor, normalize, preprocessing,
                     info_a.get("source", ""), info_b.get("source", ""))
