"""Per-sample seeds: sample ``i`` of a run with seed ``s`` always gets ``sample_seeds(s, [i])[0]``."""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np

_MASK63 = (1 << 63) - 1


def _splitmix64(x: np.ndarray) -> np.ndarray:
    x = x + np.uint64(0x9E3779B97F4A7C15)
    x = (x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    x = (x ^ (x >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return x ^ (x >> np.uint64(31))


def sample_seeds(seed: int, indices: Iterable[int]) -> list[int]:
    """Seeds for the samples at ``indices`` of a run seeded with ``seed``.

    Each is a 63-bit integer that depends only on (seed, index): splitmix64 of the run seed,
    xor the index, mixed again. The same (seed, index) gives the same seed on every machine,
    whatever the batch size or worker count.

    Example:
        >>> sample_seeds(0, [0, 1])[1] == sample_seeds(0, range(5))[1]
        True
    """
    if isinstance(indices, range) and indices.step == 1:
        idx = np.arange(indices.start, indices.stop, dtype=np.uint64)
    else:
        idx = np.fromiter((int(i) for i in indices), dtype=np.uint64)
    with np.errstate(over="ignore"):
        base = _splitmix64(np.array([int(seed) & 0xFFFFFFFFFFFFFFFF], dtype=np.uint64))
        mixed = _splitmix64(base ^ idx)
    return (mixed & np.uint64(_MASK63)).tolist()


def new_seed() -> int:
    """A fresh random run seed (recorded in the provenance, so the run can be repeated)."""
    import secrets  # here: a seeded run (and every first call of a process) does without its import

    return secrets.randbits(63)


def check_seed(seed: object) -> int | None:
    """Validate a user seed: None or a non-negative integer below 2**64."""
    from ..errors import InvalidArgumentError

    if seed is None:
        return None
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or not 0 <= int(seed) < 2**64:
        raise InvalidArgumentError(f"seed must be a non-negative integer below 2**64 or None, not {seed!r}.")
    return int(seed)
