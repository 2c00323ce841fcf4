"""The one sample loop: a model, a run seed and run indices in; checked batches out.

Every way of running a model goes through :class:`BatchStream` (made by
:meth:`medhub.execution.ModelExecutor.batches`): ``generate`` (in memory or to files), sharded
runs, Ray workers, the torch datasets and the latent explorer. A stream

* cuts the indices into package calls (``batch_size``, or with opt-in CPU streams a share of it),
* computes each call's per-sample seeds once (:func:`~medhub.execution.seeds.sample_seeds`),
* hands each call its rows of the per-sample inputs,
* checks each call's outputs against the outputs spec, and
* knows the outputs spec before any writer starts (:attr:`BatchStream.specs`: from the catalog,
  or read off the first call, which is then kept and yielded first).

Example:
    >>> from medhub.config import ConfigManager
    >>> from medhub.execution.ref import executor_for
    >>> stream = executor_for(ConfigManager(), 101).batches(range(5), seed=0, device="cpu", batch_size=2)
    >>> [(list(b.indices), b.arrays["image"].shape) for b in stream]
    [([0, 1], (2, 64, 64)), ([2, 3], (2, 64, 64)), ([4], (1, 64, 64))]
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np

from ..outputs.specs import OutputSpec
from .seeds import sample_seeds
from .streams import parallel

logger = logging.getLogger("medhub.execution")


class Engine(Protocol):
    """What a stream asks of the loaded model (a :class:`~medhub.execution.ModelExecutor`)."""

    model_id: str
    specs: list[OutputSpec]
    kind: Any

    def per_sample_inputs(self, inputs: Mapping[str, Any], num_samples: int) -> dict[str, np.ndarray]: ...

    def call_package(self, indices: Sequence[int], seeds: Sequence[int], device: str,
                     inputs: Mapping[str, Any]) -> dict[str, np.ndarray]: ...

    def load(self, device: str = "cpu") -> Any: ...


@dataclass(frozen=True)
class Batch:
    """Checked samples of one package call: their run indices, per-sample seeds and arrays, and
    their rows of the per-sample inputs (``inputs``, recorded in the files' marks)."""

    indices: Sequence[int]
    seeds: list[int]
    arrays: dict[str, np.ndarray]
    inputs: dict[str, np.ndarray] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.indices)


class BatchStream:
    """Checked :class:`Batch` es of one model over ``indices`` of a run seeded ``seed``, in order.

    ``inputs`` are the model's arguments; those the catalog declares per sample
    (``generate_method.per_sample_inputs``) hold one row per element of ``indices``.
    """

    def __init__(self, executor: Engine, indices: Sequence[int], seed: int, device: str, call_size: int,
                 streams: int, inputs: dict[str, Any]) -> None:
        self.executor = executor
        self.indices = indices
        self.seed = int(seed)
        self.device = device
        self.call_size = max(1, int(call_size))
        self.streams = streams
        self.per_sample = executor.per_sample_inputs(inputs, len(indices))
        self.common = {k: v for k, v in inputs.items() if k not in self.per_sample}
        self._first: Batch | None = None
        self._started = False
        self._produced = 0  # samples returned so far (a kind with own_count may return another count)

    def __len__(self) -> int:
        return len(self.indices)

    @property
    def specs(self) -> list[OutputSpec]:
        """The outputs spec: the catalog's, or read off the first call (made now, kept for iteration)."""
        if not self.executor.specs and not self._started and len(self.indices):
            self._first = self._call(0)
        return self.executor.specs

    def _call(self, lo: int) -> Batch:
        hi = min(lo + self.call_size, len(self.indices))
        indices = self.indices[lo:hi]
        seeds = sample_seeds(self.seed, indices)
        rows = {k: v[lo:hi] for k, v in self.per_sample.items()}
        arrays = self.executor.call_package(indices, seeds, self.device, {**self.common, **rows})
        if not self.executor.kind.own_count:  # one sample per seed (checked)
            return Batch(indices, seeds, arrays, rows)
        # medigan packages may return their own count; their calls run one at a time, in order
        count = len(next(iter(arrays.values()))) if arrays else len(indices)
        if count != len(indices):
            logger.warning("Model %s returned %d samples where %d were asked (e.g. translate_all_images or "
                           "fewer inputs than samples); the run holds what it returned.", self.executor.model_id,
                           count, len(indices))
        if count != len(indices) or self._produced != lo:  # number what the package really returned
            first = self.indices[0] if len(self.indices) else 0
            indices = range(first + self._produced, first + self._produced + count)
            seeds = sample_seeds(self.seed, indices)
            rows = {}  # the samples do not line up with the input rows any more
        self._produced += count
        return Batch(indices, seeds, arrays, rows)

    def __iter__(self) -> Iterator[Batch]:
        if self._started:
            raise RuntimeError("a BatchStream is iterated once; make a new one with ModelExecutor.batches()")
        self._started = True
        starts = range(0, len(self.indices), self.call_size)
        if self._first is not None:
            first, self._first = self._first, None
            yield first
            starts = starts[1:]
        if self.streams > 1:
            self.executor.load(self.device)  # once, before the threads share it
        with parallel(self.streams) as runner:
            for _, batch in runner.ordered(self._call, starts):
                yield batch


def collect(stream: BatchStream, bar: Any = None) -> dict[str, np.ndarray]:
    """All batches of ``stream`` joined into one array per output (string outputs concatenated);
    ``bar`` (a progress bar) is advanced by each batch.

    Numeric outputs go into one array of ``len(stream)`` rows, allocated at the first batch, so
    nothing but the result and one batch is held while a long run generates.
    """
    out: dict[str, Any] = {}
    done = 0
    for batch in stream:
        for name, arr in batch.arrays.items():
            if name not in out:
                out[name] = np.empty((len(stream), *arr.shape[1:]), arr.dtype) if arr.dtype.kind in "biufc" else []
            if not isinstance(out[name], list) and done + len(batch) > len(out[name]):
                out[name] = [out[name][:done]]  # a package returned more than asked: join the parts instead
            if isinstance(out[name], list):
                out[name].append(arr)
            else:
                out[name][done : done + len(batch)] = arr
        done += len(batch)
        if bar is not None:
            bar.update(len(batch))
    return {name: np.concatenate(v) if isinstance(v, list) else v[:done] for name, v in out.items()}
