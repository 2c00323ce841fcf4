"""FID, KID and precision / recall / density / coverage in one pass, with bootstrap intervals.

:func:`compute_metrics` works on feature arrays; :func:`metrics_report` takes image sets (folders,
arrays, ``(model_id, n)``), extracts their features once (the real set's from the same cache as
FID) and, given a second real set (``reference``), adds the same figures for real data against
real data at the synthetic set's size: the baseline every figure should be read against.

Intervals: both sets are resampled with replacement ``bootstrap`` times (seeded); each figure is
recomputed on every resample from the same Gram matrices, copies of one image never counting as
each other's pair or neighbour. Resampling leaves about 63% distinct images, which moves
size-dependent figures (FID, k-NN radii) as a whole; the interval is therefore the bootstrap
percentile interval recentred on the estimate (``estimate + q - median``), i.e. the estimate's
sampling spread. It says how much a figure would move with another draw of images of the same
sources; it does not remove FID's small-sample bias (compare with the real-real baseline for that).

Example:
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> real, syn = rng.standard_normal((40, 16)), rng.standard_normal((40, 16)) + 0.3
    >>> m = compute_metrics(real, syn, bootstrap=50)
    >>> sorted(m)
    ['FID', 'KID', 'coverage', 'density', 'precision', 'recall']
    >>> m["FID"].low <= m["FID"].value <= m["FID"].high
    True
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from ..errors import InvalidArgumentError
from .metrics import FeatureGrams, check_k, fid_counts, kid_subset_size, kid_values, mmd2_counts, prdc_counts

logger = logging.getLogger("medhub.evaluate")

METRICS = ("fid", "kid", "prdc")
FIGURES = {"fid": ("FID",), "kid": ("KID",), "prdc": ("precision", "recall", "density", "coverage")}
BOUNDS = {"FID": (0.0, None), "precision": (0.0, 1.0), "recall": (0.0, 1.0), "coverage": (0.0, 1.0),
          "density": (0.0, None), "KID": (None, None)}
CI_METHOD = "bootstrap percentile interval recentred on the estimate (both sets resampled)"


@dataclass
class Estimate:
    """A figure, its bootstrap interval ``[low, high]`` and, for KID, the std over subsets.

    >>> str(Estimate("FID", 12.3456, 10.0, 15.5, confidence=0.95, replicates=200))
    'FID 12.346 [10.000, 15.500]'
    """

    name: str
    value: float
    low: float = float("nan")
    high: float = float("nan")
    std: float | None = None
    confidence: float = 0.95
    replicates: int = 0

    def __str__(self) -> str:
        text = f"{self.name} {self.value:.3f}"
        if self.std is not None:
            text += f" (+/- {self.std:.3f} over subsets)"
        if self.replicates:
            text += f" [{self.low:.3f}, {self.high:.3f}]"
        return text


def json_safe(value: Any) -> Any:
    """``value`` with every NaN float replaced by None (strict JSON has no NaN).

    >>> json_safe({"low": float("nan"), "n": [1.0]})
    {'low': None, 'n': [1.0]}
    """
    if isinstance(value, dict):
        return {k: json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(v) for v in value]
    if isinstance(value, float) and value != value:
        return None
    return value


def parse_metrics(metrics: str | Sequence[str]) -> tuple[str, ...]:
    """``"fid,kid,prdc"`` or a list of those names -> a checked tuple in the canonical order.

    >>> parse_metrics("prdc, FID")
    ('fid', 'prdc')
    """
    items = [m.strip().lower() for m in (metrics.split(",") if isinstance(metrics, str) else metrics)]
    unknown = [m for m in items if m not in METRICS]
    if unknown or not items:
        raise InvalidArgumentError(f"Unknown metric(s) {unknown or metrics!r}; choose from {', '.join(METRICS)} "
                                   "(comma-separated).")
    return tuple(m for m in METRICS if m in items)


def _figures(grams: FeatureGrams, cx: np.ndarray, cy: np.ndarray, metrics: tuple[str, ...], k: int) -> dict[str, float]:
    out: dict[str, float] = {}
    if "fid" in metrics:
        out["FID"] = fid_counts(grams, cx, cy)
    if "kid" in metrics:
        out["KID"] = mmd2_counts(grams, cx, cy)
    if "prdc" in metrics:
        out.update(prdc_counts(grams, cx, cy, k))
    return out


def bootstrap_replicates(fn: Callable[[np.ndarray, np.ndarray], dict[str, float]], n_real: int, n_synthetic: int,
                         replicates: int, seed: int) -> dict[str, np.ndarray]:
    """``fn(counts_real, counts_synthetic)`` on ``replicates`` resamples (with replacement) of both
    sets, as counts per image. Returns each figure's replicate values."""
    rng = np.random.default_rng(seed)
    rows = []
    for _ in range(replicates):
        cx = np.bincount(rng.integers(0, n_real, n_real), minlength=n_real).astype(np.float64)
        cy = np.bincount(rng.integers(0, n_synthetic, n_synthetic), minlength=n_synthetic).astype(np.float64)
        rows.append(fn(cx, cy))
    return {name: np.array([r[name] for r in rows]) for name in rows[0]} if rows else {}


def interval(value: float, samples: np.ndarray, confidence: float, name: str = "") -> tuple[float, float]:
    """The bootstrap percentile interval of ``samples`` recentred on ``value``, clipped to the
    figure's range.

    >>> interval(10.0, np.array([11.0, 12.0, 13.0, 14.0, 15.0]), 0.5)
    (9.0, 11.0)
    """
    alpha = (1.0 - confidence) / 2.0
    lo_q, med, hi_q = np.quantile(samples, [alpha, 0.5, 1.0 - alpha])
    low, high = round(value + lo_q - med, 12), round(value + hi_q - med, 12)  # no round-off tails like 3e-17
    lower, upper = BOUNDS.get(name, (None, None))
    if lower is not None:
        low, high = max(low, lower), max(high, lower)
    if upper is not None:
        low, high = min(low, upper), min(high, upper)
    return float(low), float(high)


def compute_metrics(real: np.ndarray, synthetic: np.ndarray, metrics: str | Sequence[str] = METRICS, k: int = 5,
                    kid_subsets: int = 100, kid_subset_size: int | None = None, bootstrap: int = 1000,
                    confidence: float = 0.95, seed: int = 0) -> dict[str, Estimate]:
    """FID, KID and/or precision, recall, density, coverage of two feature sets (N, D), each with
    a bootstrap interval (``bootstrap=0``: none).

    KID's value and std are the mean and standard deviation over ``kid_subsets`` subsets of
    ``kid_subset_size`` images per set (default ``min(1000, n_real, n_synthetic)``); its interval
    comes from the full-set unbiased estimate on each resample. The cost of each replicate is an
    SVD of an n x m matrix (FID) and O(n m) otherwise: about a second for 1000 replicates of
    100 images; for thousands of images use fewer replicates.

    >>> import numpy as np
    >>> x = np.random.default_rng(1).standard_normal((30, 5))
    >>> m = compute_metrics(x, x[::-1], metrics="kid,prdc", bootstrap=0)
    >>> m["precision"].value, m["recall"].value
    (1.0, 1.0)
    """
    names = parse_metrics(metrics)
    if not 0.0 < confidence < 1.0:
        raise InvalidArgumentError(f"confidence must be between 0 and 1, e.g. 0.95, got {confidence}.")
    if bootstrap < 0:
        raise InvalidArgumentError(f"bootstrap (number of replicates) must be 0 or more, got {bootstrap}.")
    grams = FeatureGrams(real, synthetic)
    n, m = grams.n_real, grams.n_synthetic
    if "prdc" in names:
        check_k(k, n, m)
    ones_x, ones_y = np.ones(n), np.ones(m)
    point = _figures(grams, ones_x, ones_y, tuple(x for x in names if x != "kid"), k)
    out = {name: Estimate(name, value, confidence=confidence) for name, value in point.items()}
    if "kid" in names:
        values = kid_values(grams, kid_subsets, kid_subset_size, seed)
        whole = kid_subset_size_or_default(n, m, kid_subset_size, names) == n == m  # every subset: both whole sets
        out["KID"] = Estimate("KID", float(values.mean()), std=0.0 if whole else float(values.std()),
                              confidence=confidence)
    if bootstrap:
        samples = bootstrap_replicates(lambda cx, cy: _figures(grams, cx, cy, names, k), n, m, bootstrap, seed)
        for name, est in out.items():
            est.low, est.high = interval(est.value, samples[name], confidence, name)
            est.replicates = bootstrap
    return {name: out[name] for f in names for name in FIGURES[f]}


@dataclass
class MetricsReport:
    """What :func:`metrics_report` measured: figures with intervals, the real-real baseline (when a
    reference set was given), sizes, extractor, preprocessing and every setting used."""

    metrics: dict[str, Estimate]
    n_real: int
    n_synthetic: int
    extractor: str
    normalize: bool
    baseline: dict[str, Estimate] = field(default_factory=dict)
    n_reference: int = 0
    settings: dict[str, Any] = field(default_factory=dict)
    preprocessing: dict[str, Any] = field(default_factory=dict)
    real: str = ""
    synthetic: str = ""
    reference: str = ""

    def to_dict(self) -> dict[str, Any]:
        data = json_safe(asdict(self))
        data["ci_method"] = CI_METHOD
        return data

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2)

    def __str__(self) -> str:
        lines = [f"n_real {self.n_real}  n_synthetic {self.n_synthetic}  extractor {self.extractor}"
                 f"{' (normalized)' if self.normalize else ''}"]
        conf = int(round(100 * self.settings.get("confidence", 0.95)))
        for name, est in self.metrics.items():
            line = f"  {est}"
            if name in self.baseline:
                b = self.baseline[name]
                line += f"   real-real {b.value:.3f}" + (f" [{b.low:.3f}, {b.high:.3f}]" if b.replicates else "")
            lines.append(line)
        if self.metrics and next(iter(self.metrics.values())).replicates:
            lines.append(f"  [ ]: {conf}% {CI_METHOD}, {self.settings.get('bootstrap')} replicates")
        return "\n".join(lines)


def metrics_report(real: Any, synthetic: Any, metrics: str | Sequence[str] = METRICS, extractor: str = "inception",
                   normalize: bool = False, reference: Any = None, k: int = 5, kid_subsets: int = 100,
                   kid_subset_size: int | None = None, bootstrap: int = 1000, confidence: float = 0.95,
                   **kwargs: Any) -> MetricsReport:
    """The figures of :func:`compute_metrics` for two image sets, with intervals.

    Sets are folders of images, arrays, lists of arrays or ``(model_id, n)``. Keyword arguments as
    for :func:`medhub.evaluate.fid`: ``weights``, ``batch_size``, ``device``, ``seed``,
    ``real_cache`` (``.npz`` of the real features, shared with FID), ``progress``, ``catalog``. With
    ``reference`` (a second real set of the same source, e.g. the training images when ``real`` is
    held out), ``baseline`` holds the same figures for ``real`` against as many reference images as
    the synthetic set has (drawn with ``seed``): what real data scores at this size.
    """
    from .core import compute_features

    names = parse_metrics(metrics)
    real_cache = kwargs.pop("real_cache", None)
    seed = int(kwargs.get("seed", 0))
    a, info_a = compute_features(real, extractor, normalize=normalize, cache=real_cache, **kwargs)
    b, info_b = compute_features(synthetic, extractor, normalize=normalize, **kwargs)
    opts = dict(metrics=names, k=k, kid_subsets=kid_subsets, kid_subset_size=kid_subset_size, bootstrap=bootstrap,
                confidence=confidence, seed=seed)
    figures = compute_metrics(a, b, **opts)
    baseline: dict[str, Estimate] = {}
    n_ref, ref_what = 0, ""
    if reference is not None:
        r, info_r = compute_features(reference, extractor, normalize=normalize, **kwargs)
        if r.shape[0] < b.shape[0]:
            raise InvalidArgumentError(f"The reference set has {r.shape[0]} images; the real-real baseline needs at "
                                       f"least as many as the synthetic set ({b.shape[0]}).")
        pick = np.sort(np.random.default_rng(seed).choice(r.shape[0], size=b.shape[0], replace=False))
        baseline = compute_metrics(a, r[pick], **opts)
        n_ref, ref_what = int(r.shape[0]), info_r.get("source", "")
    preprocessing = {k_: v for k_, v in info_a.items() if k_ not in ("source", "n", "extractor", "normalize")}
    settings = {"metrics": list(names), "k": k, "kid_subsets": kid_subsets,
                "kid_subset_size": kid_subset_size_or_default(a.shape[0], b.shape[0], kid_subset_size, names),
                "bootstrap": bootstrap, "confidence": confidence, "seed": seed}
    return MetricsReport(figures, int(a.shape[0]), int(b.shape[0]), extractor, normalize, baseline, n_ref, settings,
                         preprocessing, info_a.get("source", ""), info_b.get("source", ""), ref_what)


def kid_subset_size_or_default(n_real: int, n_synthetic: int, size: int | None, names: Sequence[str]) -> int | None:
    """The KID subset size a run used (None when KID was not computed)."""
    return kid_subset_size(n_real, n_synthetic, size) if "kid" in names else None
