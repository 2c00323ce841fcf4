"""Evaluation of synthetic image sets against real ones.

* FID with the standard Inception (or a RadImageNet) extractor, the real-real lower bound FID_rr
  and the ratio r_FID = FID_rr / FID_rs (Osuala et al., medigan): :func:`fid`, :func:`fid_report`;
* KID and precision / recall / density / coverage on the same features, every figure with a
  bootstrap interval: :func:`metrics_report` (image sets), :func:`compute_metrics` (features);
* the memorisation check (nearest training image of each sample): :func:`memorization_report`;
* a one-page HTML / JSON model report: :func:`model_report`.

Names are imported on first use, so ``import medhub.evaluate`` (and the ``medhub`` command) stays
light until a computation runs.

Example:
    >>> from medhub.evaluate import fid_ratio
    >>> fid_ratio(fid_rs=50.0, fid_rr=10.0)
    0.2
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # what static tools (type checkers, the API docs) see; at run time see __getattr__
    from .core import (
        FIDReport,
        compute_features,
        fid,
        fid_lower_bound,
        fid_lower_bound_from_features,
        fid_ratio,
        fid_report,
    )
    from .frechet import feature_statistics, frechet_distance
    from .memorization import MemorizationReport, memorization_report, nearest_training_images
    from .metrics import FeatureGrams, fid_from_features, kernel_inception_distance, precision_recall_density_coverage
    from .report import model_report
    from .suite import Estimate, MetricsReport, compute_metrics, metrics_report

_EXPORTS = {
    "core": ["FIDReport", "compute_features", "fid", "fid_lower_bound", "fid_lower_bound_from_features", "fid_ratio",
             "fid_report"],
    "frechet": ["feature_statistics", "frechet_distance"],
    "metrics": ["FeatureGrams", "fid_from_features", "kernel_inception_distance", "precision_recall_density_coverage"],
    "suite": ["Estimate", "MetricsReport", "compute_metrics", "metrics_report"],
    "memorization": ["MemorizationReport", "memorization_report", "nearest_training_images"],
    "report": ["model_report"],
}
_WHERE = {name: module for module, names in _EXPORTS.items() for name in names}

#: a literal list, for static tools (the API docs); tests/test_evaluate.py checks that it is the table's names
__all__ = ["Estimate", "FIDReport", "FeatureGrams", "MemorizationReport", "MetricsReport", "compute_features",
           "compute_metrics", "feature_statistics", "fid", "fid_from_features", "fid_lower_bound",
           "fid_lower_bound_from_features", "fid_ratio", "fid_report", "frechet_distance", "kernel_inception_distance",
           "memorization_report", "metrics_report", "model_report", "nearest_training_images",
           "precision_recall_density_coverage"]


def __getattr__(name: str) -> Any:
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module 'medhub.evaluate' has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{module}", __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_WHERE))
