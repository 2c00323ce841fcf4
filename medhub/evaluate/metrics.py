"""FID, KID and precision / recall / density / coverage of two feature sets, from Gram matrices.

Every figure here is a function of the inner products between feature vectors. A pair of sets is
therefore reduced once to its three Gram matrices (:class:`FeatureGrams`), and the point estimate
and every bootstrap replicate are computed from them with per-image **counts**: 1 for each image
of the sets as given, the multiplicities of a bootstrap resample otherwise. Copies of one image
are never each other's pair (KID) or neighbour (k-NN radii), as the unbiased estimators already
leave out an image paired with itself.

* **FID** with fewer images than feature dimensions (the usual case for medical data) is
  ``|mu_x - mu_y|^2 + Tr(S_x) + Tr(S_y) - 2 ||A B^T||_* / sqrt((n-1)(m-1))``, where ``A`` and
  ``B`` are the centred feature matrices and ``||.||_*`` the nuclear norm (sum of singular
  values): the non-zero eigenvalues of ``S_x S_y`` are those of ``(A B^T)(A B^T)^T / ((n-1)(m-1))``.
  An SVD of an n x m matrix replaces two eigendecompositions of D x D matrices.
* **KID** (Binkowski et al., 2018): the unbiased estimator of the squared MMD with the kernel
  ``k(x, y) = (x.y / D + 1)^3``, averaged over random subsets (mean and standard deviation).
* **Precision, recall** (Kynkaanniemi et al., 2019), **density, coverage** (Naeem et al., 2020):
  k-nearest-neighbour balls in feature space; a point is inside a ball when its distance is
  strictly smaller than the radius.

Example:
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> real, syn = rng.standard_normal((40, 8)), rng.standard_normal((30, 8)) + 0.5
    >>> g = FeatureGrams(real, syn)
    >>> round(fid_counts(g, np.ones(40), np.ones(30)), 6) == round(fid_from_features(real, syn), 6)
    True
    >>> sorted(prdc_counts(g, np.ones(40), np.ones(30), k=5))
    ['coverage', 'density', 'precision', 'recall']
"""

from __future__ import annotations

from collections.abc import Iterator
from functools import cached_property

import numpy as np

from ..errors import InvalidArgumentError


def _as_features(features: np.ndarray, what: str) -> np.ndarray:
    feats = np.asarray(features, dtype=np.float64)
    if feats.ndim != 2 or feats.shape[0] < 2:
        raise InvalidArgumentError(f"The {what} features must have shape (N >= 2, D), got {feats.shape}.")
    if not np.isfinite(feats).all():
        raise InvalidArgumentError(f"The {what} features hold NaN or infinite values; check the images and extractor.")
    return feats


class FeatureGrams:
    """The Gram matrices of a real (n, D) and a synthetic (m, D) feature set, and what derives
    from them: polynomial kernels (KID), Euclidean distances and their sorted neighbours (k-NN).

    >>> import numpy as np
    >>> g = FeatureGrams(np.eye(3), np.ones((2, 3)))
    >>> g.n_real, g.n_synthetic, g.dim, float(g.xy[0, 0])
    (3, 2, 3, 1.0)
    """

    def __init__(self, real: np.ndarray, synthetic: np.ndarray) -> None:
        x, y = _as_features(real, "real"), _as_features(synthetic, "synthetic")
        if x.shape[1] != y.shape[1]:
            raise InvalidArgumentError(f"The feature sets differ in dimension ({x.shape[1]} vs {y.shape[1]}); "
                                       "use the same extractor for both.")
        self.n_real, self.n_synthetic, self.dim = x.shape[0], y.shape[0], x.shape[1]
        self.xx, self.yy, self.xy = x @ x.T, y @ y.T, x @ y.T

    # ----------------------------------------------------------------- KID kernels
    @cached_property
    def kernels(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(K_xx, K_yy, K_xy)`` of the cubic polynomial kernel ``(x.y / D + 1)^3``."""
        return tuple((g / self.dim + 1.0) ** 3 for g in (self.xx, self.yy, self.xy))  # type: ignore[return-value]

    # ----------------------------------------------------------------- distances
    @staticmethod
    def _distances(gram_ab: np.ndarray, sq_a: np.ndarray, sq_b: np.ndarray) -> np.ndarray:
        return np.sqrt(np.clip(sq_a[:, None] + sq_b[None, :] - 2.0 * gram_ab, 0.0, None))

    @cached_property
    def dist_rs(self) -> np.ndarray:
        """Euclidean distances real (rows) to synthetic (columns)."""
        return self._distances(self.xy, np.diag(self.xx), np.diag(self.yy))

    @cached_property
    def neighbours_real(self) -> tuple[np.ndarray, np.ndarray]:
        """For each real image, the other real images by increasing distance: ``(order, distances)``;
        the image itself comes last, at an infinite distance."""
        return self._sorted_neighbours(self.xx)

    @cached_property
    def neighbours_synthetic(self) -> tuple[np.ndarray, np.ndarray]:
        """As :attr:`neighbours_real`, within the synthetic set."""
        return self._sorted_neighbours(self.yy)

    def _sorted_neighbours(self, gram: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        sq = np.diag(gram)
        d = self._distances(gram, sq, sq)
        np.fill_diagonal(d, np.inf)
        order = np.argsort(d, axis=1, kind="stable")
        return order, np.take_along_axis(d, order, axis=1)


# ------------------------------------------------------------------------------- FID
def fid_counts(grams: FeatureGrams, cx: np.ndarray, cy: np.ndarray) -> float:
    """FID between the real and synthetic sets, image i counted ``cx[i]`` (``cy[j]``) times.

    With all counts 1 this is the FID of the sets as given (covariances with ``n - 1``).
    """
    g = grams
    n, m = float(cx.sum()), float(cy.sum())
    if n < 2 or m < 2:
        raise InvalidArgumentError("FID needs at least 2 images in each set.")
    wx, wy = cx / n, cy / m
    mux2, muy2 = wx @ g.xx @ wx, wy @ g.yy @ wy
    xy_wy, wx_xy = g.xy @ wy, wx @ g.xy
    muxy = wx @ xy_wy
    mean_term = mux2 + muy2 - 2.0 * muxy
    tr_x = (cx @ np.diag(g.xx) - n * mux2) / (n - 1)
    tr_y = (cy @ np.diag(g.yy) - m * muy2) / (m - 1)
    sx, sy = cx > 0, cy > 0
    cross = g.xy[np.ix_(sx, sy)] - xy_wy[sx, None] - wx_xy[None, sy] + muxy
    cross *= np.sqrt(cx[sx])[:, None] * np.sqrt(cy[sy])[None, :]
    nuclear = float(np.linalg.svd(cross, compute_uv=False).sum())
    return max(float(mean_term + tr_x + tr_y - 2.0 * nuclear / np.sqrt((n - 1) * (m - 1))), 0.0)


def fid_from_features(real: np.ndarray, synthetic: np.ndarray) -> float:
    """FID between two feature sets (N, D): through the n x m cross-Gram matrix when a set has
    fewer images than dimensions, else through the D x D covariances
    (:func:`medhub.evaluate.frechet.frechet_distance`). Both give the same value up to round-off;
    with singular covariances the Gram path is the more exact one (no square roots of the
    round-off noise in the null space).

    >>> import numpy as np
    >>> rng = np.random.default_rng(1)
    >>> a, b = rng.standard_normal((30, 64)), rng.standard_normal((20, 64)) + 1
    >>> from medhub.evaluate.frechet import feature_statistics, frechet_distance
    >>> round(fid_from_features(a, b), 4), round(frechet_distance(*feature_statistics(a), *feature_statistics(b)), 4)
    (139.9009, 139.9009)
    """
    x, y = _as_features(real, "real"), _as_features(synthetic, "synthetic")
    if min(x.shape[0], y.shape[0]) <= x.shape[1]:
        return fid_counts(FeatureGrams(x, y), np.ones(x.shape[0]), np.ones(y.shape[0]))
    from .frechet import feature_statistics, frechet_distance

    return frechet_distance(*feature_statistics(x), *feature_statistics(y))


# ------------------------------------------------------------------------------- KID
def _within(k: np.ndarray, c: np.ndarray) -> float:
    """Mean kernel value over pairs of distinct images of a counted set (copies of an image are
    not a pair)."""
    same = (c * c) @ np.diag(k)
    pairs = c.sum() ** 2 - (c * c).sum()
    if pairs <= 0:
        raise InvalidArgumentError("KID needs at least 2 distinct images in each set.")
    return float((c @ k @ c - same) / pairs)


def mmd2_counts(grams: FeatureGrams, cx: np.ndarray, cy: np.ndarray) -> float:
    """The unbiased squared MMD (cubic polynomial kernel) of the counted sets."""
    kxx, kyy, kxy = grams.kernels
    return _within(kxx, cx) + _within(kyy, cy) - 2.0 * float(cx @ kxy @ cy) / float(cx.sum() * cy.sum())


def kid_subset_indices(n_real: int, n_synthetic: int, subsets: int, subset_size: int,
                       seed: int) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """The random subsets KID averages over: ``subsets`` pairs of index arrays, ``subset_size``
    images drawn without replacement from each set (``numpy.random.default_rng(seed)``)."""
    rng = np.random.default_rng(seed)
    for _ in range(subsets):
        yield (np.sort(rng.choice(n_real, subset_size, replace=False)),
               np.sort(rng.choice(n_synthetic, subset_size, replace=False)))


def kid_subset_size(n_real: int, n_synthetic: int, subset_size: int | None = None) -> int:
    """The subset size: ``subset_size`` if given (checked), else ``min(1000, n_real, n_synthetic)``."""
    size = min(1000, n_real, n_synthetic) if subset_size is None else int(subset_size)
    if not 2 <= size <= min(n_real, n_synthetic):
        raise InvalidArgumentError(f"The KID subset size must be between 2 and the smaller set's size "
                                   f"({min(n_real, n_synthetic)}), got {size}.")
    return size


def kid_values(grams: FeatureGrams, subsets: int = 100, subset_size: int | None = None,
               seed: int = 0) -> np.ndarray:
    """KID (unbiased squared MMD) on each of ``subsets`` random subsets."""
    if subsets < 1:
        raise InvalidArgumentError(f"KID needs at least 1 subset, got {subsets}.")
    size = kid_subset_size(grams.n_real, grams.n_synthetic, subset_size)
    kxx, kyy, kxy = grams.kernels
    out = []
    for ix, iy in kid_subset_indices(grams.n_real, grams.n_synthetic, subsets, size, seed):
        a, b, c = kxx[np.ix_(ix, ix)], kyy[np.ix_(iy, iy)], kxy[np.ix_(ix, iy)]
        out.append((a.sum() - np.trace(a)) / (size * (size - 1)) + (b.sum() - np.trace(b)) / (size * (size - 1))
                   - 2.0 * c.mean())
    return np.asarray(out, dtype=np.float64)


def kernel_inception_distance(real: np.ndarray, synthetic: np.ndarray, subsets: int = 100,
                              subset_size: int | None = None, seed: int = 0) -> tuple[float, float]:
    """KID between two feature sets: ``(mean, std)`` over ``subsets`` random subsets of
    ``subset_size`` images per set (default ``min(1000, n_real, n_synthetic)``).

    When the subset size equals both set sizes every subset is the whole set and the std is 0;
    the uncertainty of the estimate is then given by a bootstrap interval
    (:func:`medhub.evaluate.compute_metrics`).

    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> same = kernel_inception_distance(rng.standard_normal((50, 4)), rng.standard_normal((50, 4)), subset_size=20)
    >>> shifted = kernel_inception_distance(rng.standard_normal((50, 4)), rng.standard_normal((50, 4)) + 1)
    >>> abs(same[0]) < shifted[0]
    True
    """
    values = kid_values(FeatureGrams(real, synthetic), subsets, subset_size, seed)
    return float(values.mean()), float(values.std())


# ------------------------------------------------------------------------------- PRDC
def _radii(neighbours: tuple[np.ndarray, np.ndarray], counts: np.ndarray, k: int) -> np.ndarray:
    """Distance of each image to its k-th nearest neighbour among the counted other images."""
    order, dist = neighbours
    cum = np.cumsum(counts[order], axis=1)
    reach = cum >= k
    idx = reach.argmax(axis=1)
    radii = dist[np.arange(len(order)), idx]
    radii[~reach.any(axis=1)] = np.inf
    return radii


def check_k(k: int, n_real: int, n_synthetic: int) -> None:
    """``k`` must be at least 1 and below both set sizes."""
    if not 1 <= k < min(n_real, n_synthetic):
        raise InvalidArgumentError(f"k (nearest neighbours) must be between 1 and {min(n_real, n_synthetic) - 1} "
                                   f"for sets of {n_real} and {n_synthetic} images, got {k}.")


def prdc_counts(grams: FeatureGrams, cx: np.ndarray, cy: np.ndarray, k: int = 5) -> dict[str, float]:
    """Precision, recall, density and coverage of the counted sets with k-NN balls."""
    check_k(k, grams.n_real, grams.n_synthetic)
    r_real = _radii(grams.neighbours_real, cx, k)
    r_syn = _radii(grams.neighbours_synthetic, cy, k)
    d = grams.dist_rs
    has_x, has_y = cx > 0, cy > 0
    in_real = (d < r_real[:, None]) & has_x[:, None]       # synthetic j inside real i's ball
    in_syn = (d < r_syn[None, :]) & has_y[None, :]         # real i inside synthetic j's ball
    n, m = float(cx.sum()), float(cy.sum())
    nearest = np.where(has_y[None, :], d, np.inf).min(axis=1)
    return {
        "precision": float(cy @ in_real.any(axis=0)) / m,
        "recall": float(cx @ in_syn.any(axis=1)) / n,
        "density": float(cy @ (cx @ in_real)) / (k * m),
        "coverage": float(cx @ (nearest < r_real)) / n,
    }


def precision_recall_density_coverage(real: np.ndarray, synthetic: np.ndarray, k: int = 5) -> dict[str, float]:
    """Precision, recall, density and coverage of a synthetic against a real feature set.

    Precision: share of synthetic images inside some real image's k-NN ball; recall: share of
    real images inside some synthetic image's ball; density: mean number of real balls holding a
    synthetic image, divided by k (1 for matching distributions); coverage: share of real images
    whose ball holds a synthetic image.

    >>> import numpy as np
    >>> x = np.random.default_rng(0).standard_normal((60, 3))
    >>> prdc = precision_recall_density_coverage(x, x + 100, k=3)
    >>> prdc["precision"], prdc["coverage"]
    (0.0, 0.0)
    """
    grams = FeatureGrams(real, synthetic)
    return prdc_counts(grams, np.ones(grams.n_real), np.ones(grams.n_synthetic), k)
