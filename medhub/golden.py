"""Golden samples: a digest that pins what a model draws.

A shipped model's catalog entry holds ``execution.golden``::

    {"seed": 0, "num_samples": 8, "args": {...}, "sha256": "..."}

````sha256`` is :func:`samples_digest` of ``generate(model_id, num_samples, seed=seed,
save_images=False, device="cpu", **args)``: the samples' raw array bytes, in order (for a sample
that is a tuple, each of its arrays in order). The package's sha256 pins its code and weights;
the golden digest pins what they draw with the medhub installed (:mod:`medhub.noise`,
:mod:`medhub.package_kit`, the engine), so a change anywhere that alters the samples is seen:
``tests/test_golden.py`` recomputes every digest, ``medhub verify --model ID`` recomputes one on
the user's machine, and the contribution flow (:mod:`medhub.contribute`) computes it for a new
model.

Floating-point kernels can round differently on another CPU (or library build), so a digest that
differs on another machine says "these samples are not bit-identical to the published ones", which
may or may not mean that anything is wrong.

Example:
    >>> import hashlib
    >>> image = np.zeros((2, 2), np.uint8)
    >>> samples_digest([(image, "T1")]) == hashlib.sha256(image.tobytes() + np.asarray("T1").tobytes()).hexdigest()
    True
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from functools import partial
from typing import Any

import numpy as np

from .errors import InvalidArgumentError

#: Seed and number of samples of a golden entry (the defaults of :func:`golden_entry`).
GOLDEN_SEED = 0
GOLDEN_SAMPLES = 8


def samples_digest(samples: Iterable[Any]) -> str:
    """sha256 (hex) over the raw bytes of ``samples`` in order; a tuple or list sample contributes each
    of its parts in order. Each part is taken as ``numpy.ascontiguousarray(part)`` (a str label as a
    numpy unicode scalar array), so the dtype's bytes in C order are hashed, without shape or dtype.

    Example:
        >>> import numpy as np
        >>> samples_digest([np.arange(3, dtype=np.uint8)]) == samples_digest([(np.arange(3, dtype=np.uint8),)])
        True
    """
    digest = hashlib.sha256()
    for sample in samples:
        for part in (sample if isinstance(sample, (tuple, list)) else (sample,)):
            digest.update(np.ascontiguousarray(_to_numpy(part)).tobytes())
    return digest.hexdigest()


def _to_numpy(part: Any) -> np.ndarray:
    if hasattr(part, "detach"):  # a torch tensor
        part = part.detach().cpu().numpy()
    return np.asarray(part)


def golden_entry(generate: Callable[..., Any], args: Mapping[str, Any] | None = None, seed: int = GOLDEN_SEED,
                 num_samples: int = GOLDEN_SAMPLES) -> dict[str, Any]:
    """The ``execution.golden`` object of a model: its samples generated on the CPU and their digest.

    Args:
        generate: a model's generate function, e.g. ``functools.partial(Generators().generate, 101)``
            (or :func:`medhub.runs.single.generate_samples` of a model); it is called with
            ``num_samples``, ``seed``, ``save_images=False``, ``device="cpu"``, ``progress=False`` and ``args``.
        args: model inputs of the golden run (JSON values), e.g. ``{"condition": "T1"}``.
        seed: run seed.
        num_samples: how many samples.

    Returns:
        ``{"seed", "num_samples", "args", "sha256"}``, ready for the catalog entry.

    Example:
        >>> from functools import partial
        >>> from medhub import Generators
        >>> entry = golden_entry(partial(Generators().generate, 101))
        >>> entry["sha256"] == Generators().get_config_by_id(101, "execution.golden.sha256")
        True
    """
    args = dict(args or {})
    samples = generate(num_samples=num_samples, seed=seed, save_images=False, device="cpu", progress=False, **args)
    return {"seed": seed, "num_samples": num_samples, "args": args, "sha256": samples_digest(samples)}


@dataclass(frozen=True)
class GoldenCheck:
    """The result of :func:`check_golden`: the digest in the catalog, the one computed now."""

    model_id: str
    expected: str
    actual: str

    @property
    def equal(self) -> bool:
        """True when the samples drawn now are bit-identical to the golden ones."""
        return self.expected == self.actual

    def __str__(self) -> str:
        if self.equal:
            return f"{self.model_id}: golden samples equal (sha256 {self.actual})"
        return (f"{self.model_id}: golden samples DIFFER: catalog sha256 {self.expected}, computed {self.actual} "
                "(another medhub, torch or CPU can round floating point differently)")


def check_golden(generators: Any, model_id: str | int) -> GoldenCheck:
    """Regenerate a model's golden samples on the CPU and compare their digest with the catalog's.

    Raises:
        InvalidArgumentError: the model's entry has no ``execution.golden``.

    Example:
        >>> from medhub import Generators
        >>> check_golden(Generators(), 101).equal
        True
    """
    full_id = generators.config_manager.resolve_model_id(model_id)
    golden = generators.config_manager.get_config_by_id(full_id).get("execution", {}).get("golden")
    if not golden:
        raise InvalidArgumentError(f"{full_id} has no execution.golden in the catalog, so there is nothing to verify; "
                           "the shipped models have one (see docs/model-package.md).")
    now = golden_entry(partial(generators.generate, full_id), golden.get("args"), golden["seed"], golden["num_samples"])
    return GoldenCheck(full_id, golden["sha256"], now["sha256"])
