"""Torch datasets and data loaders that generate samples lazily, on demand, from a medhub model.

* :class:`SyntheticDataset` (map-style): item ``i`` is a deterministic function of ``(seed, i)``.
  Items are generated a *chunk* at a time (``chunk_size`` consecutive indices, aligned to
  multiples of ``chunk_size``) and a few chunks are kept in a small LRU cache, so sequential
  access calls the model once per chunk and memory stays bounded whatever ``num_samples`` is.
  Nothing is generated up front.
* :class:`SyntheticIterableDataset`: an endless (or ``num_samples`` long) stream for training
  by steps. With DataLoader workers, worker ``k`` of ``W`` takes chunks ``k, k+W, k+2W, ...``:
  no sample is produced twice and no worker_init_fn is needed.
* :func:`get_as_torch_dataloader`: a ``torch.utils.data.DataLoader`` over either, passing every
  DataLoader argument through.

Items are dicts as in medigan: ``{"sample": tensor}`` plus ``"mask"`` and ``"label"`` where the
model has them (further outputs under their own names). Images, masks and volumes are float32
tensors, channel first (``(C, H, W)``, volumes ``(C, D, H, W)``), scaled to [0, 1] from the
outputs spec's ``range`` (or the integer dtype's range; binary masks become 0/1); labels are
0-d tensors (strings stay strings). ``transform`` is applied to ``item["sample"]``,
``item_transform`` to the whole item.

Determinism: for ``medhub/1`` packages a sample depends only on ``(seed, i)`` (see
docs/model-package.md). medigan-interface packages draw from global random state, which medhub
seeds before each call from ``(seed, first index of the chunk)``; chunk alignment makes their
items deterministic too, but item ``i`` then also depends on ``chunk_size``.

Datasets are picklable: they carry the model's catalog entry, not a loaded model; each process
(each DataLoader worker) builds its own :class:`~medhub.execution.ModelExecutor` on first use and
loads the weights once. Under the ``fork`` start method workers inherit the parent's executor
(weights already loaded, if the parent used the dataset).
"""

from __future__ import annotations

import inspect
import logging
import math
import os
from collections import OrderedDict
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from .errors import DependencyError, InvalidArgumentError
from .execution.inputs import check_inputs
from .execution.ref import ModelRef
from .items import convert_batch
from .validate import check_num_samples, check_positive

try:
    import torch
    from torch.utils.data import DataLoader, Dataset, IterableDataset, Sampler, get_worker_info
except ImportError as exc:  # pragma: no cover - torch is a runtime dependency
    raise DependencyError(
        "medhub's torch datasets need torch; install the CPU build with `pip install torch==2.13.0` "
        "(or any torch>=2.1).",
        ["torch>=2.1"],
    ) from exc

if TYPE_CHECKING:  # pragma: no cover
    from .config import ConfigManager
    from .execution import ModelExecutor

logger = logging.getLogger("medhub.data")

#: Largest default chunk; a model that declares a smaller ``generate_method.batch_size`` gets that.
DEFAULT_CHUNK_SIZE = 64
#: Chunks kept in each dataset's LRU cache (per process).
DEFAULT_CACHE_CHUNKS = 4
#: The parameters of torch's ``DataLoader`` (but ``dataset``): keyword arguments so named go to it.
LOADER_PARAMETERS = frozenset(inspect.signature(DataLoader.__init__).parameters) - {"self", "dataset"}

__all__ = [
    "ChunkShuffleSampler",
    "ModelRef",
    "SyntheticDataset",
    "SyntheticIterableDataset",
    "get_as_torch_dataloader",
    "get_as_torch_dataset",
]


def default_chunk_size(ref: ModelRef) -> int:
    """The chunk size of a model's dataset: :data:`DEFAULT_CHUNK_SIZE`, or the model's smaller
    ``generate_method.batch_size``."""
    declared = ref.spec.batch_size
    return min(DEFAULT_CHUNK_SIZE, declared) if declared else DEFAULT_CHUNK_SIZE


def default_executors(catalog: ConfigManager | None = None) -> Callable[..., ModelExecutor]:
    """``get_executor(model_id, package_path=None)`` over ``catalog`` (a new executor each call);
    default: the default catalog (``MEDHUB_CONFIG``, else the bundled one)."""
    from .config import catalog_or_default
    from .execution.ref import executor_for

    catalog = catalog_or_default(catalog)

    def get_executor(model_id: str | int, package_path: str | os.PathLike[str] | None = None) -> ModelExecutor:
        return executor_for(catalog, model_id, package_path)

    return get_executor


# ---------------------------------------------------------------------------- shared machinery
class _ChunkedModel:
    """State and chunk logic shared by the map-style and the iterable dataset (not public)."""

    def __init__(self, model: ModelRef | str | int, seed: int = 0, *, transform: Callable[[Any], Any] | None = None,
                 item_transform: Callable[[dict[str, Any]], Any] | None = None, chunk_size: int | None = None,
                 cache_chunks: int = DEFAULT_CACHE_CHUNKS, device: str = "cpu", as_tensor: bool = True,
                 scale: bool = True, inputs: Mapping[str, Any] | None = None, install_dependencies: bool = False,
                 trust_remote_code: bool = False, executor: ModelExecutor | None = None,
                 limit: int | None = None) -> None:
        from .execution.seeds import check_seed

        if not isinstance(model, ModelRef):  # a model id of the default catalog
            executor = executor or default_executors()(model)
            model = ModelRef.of(executor)
        seed = check_seed(seed)
        if seed is None:
            raise InvalidArgumentError("A dataset needs a seed (a non-negative integer): item i depends on (seed, i).")
        self.model = model
        self.seed = seed
        self.transform = transform
        self.item_transform = item_transform
        self.chunk_size = int(check_positive("chunk_size", chunk_size if chunk_size is not None else default_chunk_size(model), False))
        self.cache_chunks = int(check_positive("cache_chunks", cache_chunks, False))
        self.device = device
        self.as_tensor = as_tensor
        self.scale = scale
        self.install_dependencies = install_dependencies
        self.trust_remote_code = trust_remote_code
        self.inputs = dict(inputs or {})
        # a scalar (condition="WM") applies to every sample and is passed unchanged
        self._per_sample = [n for n in model.spec.per_sample_inputs
                            if self.inputs.get(n) is not None and np.asarray(self.inputs[n]).ndim > 0]
        for name in self._per_sample:
            value = np.asarray(self.inputs[name])
            if limit is None or value.shape[0] != limit:
                raise InvalidArgumentError(
                    f"Input {name!r} of {model.model_id} needs one row per sample: shape ({limit}, ...), not "
                    f"{value.shape}" + ("; an endless stream cannot take per-sample inputs." if limit is None else ".")
                )
            self.inputs[name] = value
        # medhub/1 samples depend only on (seed, i): the last chunk stops at the end. medigan
        # packages always get whole chunks, so item i does not depend on num_samples.
        self._limit = limit if (model.is_native or self._per_sample) else None
        self._executor = executor
        self._resolved_device: str | None = None
        self._cache: OrderedDict[int, dict[str, np.ndarray]] = OrderedDict()
        self._warned_overlap = False
        # fail early in the calling process: a missing dependency, no package, a misspelt input
        check_inputs(self.executor, self.inputs)

    # -- pickling: a worker rebuilds the executor and starts with an empty cache
    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state["_executor"] = None
        state["_resolved_device"] = None
        state["_cache"] = OrderedDict()
        return state

    @property
    def model_id(self) -> str:
        return self.model.model_id

    @property
    def executor(self) -> ModelExecutor:
        """This process's executor (built and prepared on first use; weights load on first chunk)."""
        if self._executor is None:
            self._executor = self.model.build()
        self._executor.prepare(self.install_dependencies, self.trust_remote_code)
        return self._executor

    def _device(self, executor: ModelExecutor) -> str:
        if self._resolved_device is None:
            from .execution.device import resolve_device

            self._resolved_device = resolve_device(self.device, executor.uses_torch)
        return self._resolved_device

    def chunk_range(self, chunk: int) -> range:
        """The indices chunk ``chunk`` generates (aligned to multiples of ``chunk_size``)."""
        start = chunk * self.chunk_size
        stop = start + self.chunk_size
        if self._limit is not None:
            stop = min(stop, self._limit)
        return range(start, stop)

    def generate_chunk(self, chunk: int) -> dict[str, np.ndarray]:
        """Generate one chunk (no cache): the checked batch dict of the executor."""
        executor = self.executor
        indices = self.chunk_range(chunk)
        inputs = {**self.inputs, **{n: self.inputs[n][indices.start:indices.stop] for n in self._per_sample}}
        return executor.sample_batch(indices, self.seed, self._device(executor), **inputs)

    def _cached_chunk(self, chunk: int) -> dict[str, np.ndarray]:
        found = self._cache.get(chunk)
        if found is not None:
            self._cache.move_to_end(chunk)
            return found
        arrays = self.generate_chunk(chunk)
        self._cache[chunk] = arrays
        while len(self._cache) > self.cache_chunks:
            self._cache.popitem(last=False)
        return arrays

    def _finish(self, items: list[dict[str, Any]]) -> list[Any]:
        if self.transform is None and self.item_transform is None:
            return items
        out = []
        for item in items:
            if self.transform is not None:
                item["sample"] = self.transform(item["sample"])
            out.append(self.item_transform(item) if self.item_transform is not None else item)
        return out

    def _convert(self, arrays: Mapping[str, np.ndarray], rows: Any) -> list[dict[str, Any]]:
        picked = {name: a[rows] for name, a in arrays.items()}
        return convert_batch(picked, self.executor.specs, self.as_tensor, self.scale)


# ---------------------------------------------------------------------------- map-style dataset
class SyntheticDataset(_ChunkedModel, Dataset):
    """Map-style dataset of ``num_samples`` synthetic samples; item ``i`` depends only on (seed, i).

    Args:
        model: a :class:`ModelRef`, or a model id (resolved in the default catalog).
        num_samples: length of the dataset.
        seed: run seed (same meaning as in :meth:`medhub.Generators.generate`).

    Keyword Args:
        transform (Callable | None): applied to ``item["sample"]`` (e.g. a torchvision-style transform).
        item_transform (Callable | None): applied to the whole item dict (joint image/mask augmentation, or
            turning the dict into a tuple); its return value is the item.
        chunk_size (int | None): indices generated per model call (default 64, or the model's smaller
            ``generate_method.batch_size``). With DataLoader workers, use a batch size that is a
            multiple of it (:func:`get_as_torch_dataloader` does), or workers generate the same
            chunk more than once.
        cache_chunks (int): chunks kept per process (LRU).
        device (str): where the model runs (``"cpu"`` default; ``"cuda"`` with ``num_workers=0``).
        as_tensor (bool): False keeps the model's raw numpy arrays (no channel axis, no scaling).
        scale (bool): map values to [0, 1] (see the module docs); False keeps them as float.
        inputs (Mapping | None): model inputs (as ``generate``'s keyword arguments).

    Random access is correct in any order; it is fast in chunk order. A fully random sampler
    (``RandomSampler``) costs up to one chunk generation per item; for shuffling use
    :class:`ChunkShuffleSampler` (what ``get_as_torch_dataloader(shuffle=True)`` does).

    Example:
        >>> ds = SyntheticDataset(101, num_samples=1000, seed=0)
        >>> item = ds[999]
        >>> sorted(item), tuple(item["sample"].shape), item["sample"].dtype
        (['sample'], (1, 64, 64), torch.float32)
        >>> bool((ds[5]["sample"] == SyntheticDataset(101, 10, seed=0)[5]["sample"]).all())
        True
    """

    def __init__(self, model: ModelRef | str | int, num_samples: int, seed: int = 0, **kwargs: Any) -> None:
        self.num_samples = check_num_samples(num_samples)
        super().__init__(model, seed, limit=self.num_samples, **kwargs)

    def __len__(self) -> int:
        return self.num_samples

    def _index(self, index: Any) -> int:
        if isinstance(index, torch.Tensor) and index.ndim == 0:
            index = index.item()
        if isinstance(index, bool) or not isinstance(index, (int, np.integer)):
            raise TypeError(f"{type(self).__name__} indices must be integers, not {type(index).__name__}")
        i = int(index)
        if i < 0:
            i += self.num_samples
        if not 0 <= i < self.num_samples:
            raise IndexError(f"index {index} is out of range for a dataset of {self.num_samples} samples")
        return i

    def __getitem__(self, index: int) -> Any:
        return self.__getitems__([index])[0]

    def __getitems__(self, indices: Sequence[int]) -> list[Any]:
        """Items for a batch of indices (the DataLoader calls this once per batch): each chunk is
        generated (or taken from the cache) once and converted in one go."""
        idx = [self._index(i) for i in indices]
        by_chunk: dict[int, list[int]] = {}
        for pos, i in enumerate(idx):
            by_chunk.setdefault(i // self.chunk_size, []).append(pos)
        self._check_overlap(by_chunk, idx)
        out: list[Any] = [None] * len(idx)
        for chunk, positions in by_chunk.items():
            arrays = self._cached_chunk(chunk)
            start = chunk * self.chunk_size
            items = self._finish(self._convert(arrays, [idx[p] - start for p in positions]))
            for p, item in zip(positions, items):
                out[p] = item
        return out

    def _check_overlap(self, by_chunk: dict[int, list[int]], idx: list[int]) -> None:
        """Warn once when DataLoader workers get batches that split chunks (duplicate generation)."""
        if self._warned_overlap or len(idx) <= 1:
            return
        info = get_worker_info()
        if info is None or info.num_workers < 2:
            return
        for chunk, positions in by_chunk.items():
            if len(positions) < len(self.chunk_range(chunk)):
                self._warned_overlap = True
                logger.warning(
                    "%s: DataLoader workers receive batches that split chunks of %d samples, so several workers "
                    "generate the same chunk. Use a batch_size that is a multiple of chunk_size (or "
                    "medhub.data.get_as_torch_dataloader, which picks chunk_size for you).",
                    self.model_id, self.chunk_size)
                return

    def __repr__(self) -> str:
        return (f"SyntheticDataset(model_id={self.model_id!r}, num_samples={self.num_samples}, seed={self.seed}, "
                f"chunk_size={self.chunk_size})")


# ---------------------------------------------------------------------------- iterable dataset
class SyntheticIterableDataset(_ChunkedModel, IterableDataset):
    """A stream of synthetic samples: endless unless ``num_samples`` is given.

    The stream holds items ``start, start+1, ...`` (each the same as ``SyntheticDataset`` item
    of that index with the same seed and chunk size). In DataLoader workers, worker ``k`` of
    ``W`` yields chunks ``k, k+W, ...`` of the stream, so workers never duplicate samples;
    with ``batch_size == chunk_size`` the loader's batches come in index order.

    Example:
        >>> stream = SyntheticIterableDataset(101, seed=0, chunk_size=8)
        >>> it = iter(stream)
        >>> first = [next(it) for _ in range(10)]
        >>> bool((first[9]["sample"] == SyntheticDataset(101, 10, seed=0)[9]["sample"]).all())
        True
    """

    def __init__(self, model: ModelRef | str | int, num_samples: int | None = None, seed: int = 0, *,
                 start: int = 0, **kwargs: Any) -> None:
        self.num_samples = None if num_samples is None else check_num_samples(num_samples)
        if isinstance(start, bool) or not isinstance(start, (int, np.integer)) or start < 0:
            raise InvalidArgumentError(f"start must be a non-negative integer, not {start!r}.")
        self.start = int(start)
        end = None if self.num_samples is None else self.start + self.num_samples
        super().__init__(model, seed, limit=end, **kwargs)
        self.end = end

    def __len__(self) -> int:
        if self.num_samples is None:
            raise TypeError("an endless SyntheticIterableDataset has no length; pass num_samples for one")
        return self.num_samples

    def __iter__(self) -> Iterator[Any]:
        info = get_worker_info()
        workers, worker = (info.num_workers, info.id) if info is not None else (1, 0)
        chunk = self.start // self.chunk_size + worker
        while True:
            indices = self.chunk_range(chunk)
            lo = max(indices.start, self.start)
            hi = indices.stop if self.end is None else min(indices.stop, self.end)
            if lo >= hi:
                return
            arrays = self.generate_chunk(chunk)
            yield from self._finish(self._convert(arrays, slice(lo - indices.start, hi - indices.start)))
            chunk += workers

    def __repr__(self) -> str:
        n = "endless" if self.num_samples is None else self.num_samples
        return (f"SyntheticIterableDataset(model_id={self.model_id!r}, num_samples={n}, seed={self.seed}, "
                f"start={self.start}, chunk_size={self.chunk_size})")


# ---------------------------------------------------------------------------- sampler
class ChunkShuffleSampler(Sampler[int]):
    """A random permutation of ``range(num_samples)`` that visits whole chunks at a time.

    Chunks come in random order and the indices inside each chunk are shuffled, so a dataset's
    chunk cache serves every index and each chunk is generated once per epoch. The short last
    chunk (when ``num_samples`` is not a multiple of ``chunk_size``) always comes last, so
    batches of ``chunk_size`` never straddle two chunks. Synthetic samples are i.i.d. draws, so
    this loses nothing that matters against a full shuffle.

    Example:
        >>> s = ChunkShuffleSampler(10, 4, generator=torch.Generator().manual_seed(0))
        >>> order = list(s)
        >>> sorted(order) == list(range(10)), sorted(order[-2:])
        (True, [8, 9])
    """

    def __init__(self, num_samples: int, chunk_size: int, generator: torch.Generator | None = None) -> None:
        self.num_samples = int(check_positive("num_samples", num_samples, False))
        self.chunk_size = int(check_positive("chunk_size", chunk_size, False))
        self.generator = generator

    def __len__(self) -> int:
        return self.num_samples

    def __iter__(self) -> Iterator[int]:
        gen = self.generator
        if gen is None:
            gen = torch.Generator().manual_seed(int(torch.empty((), dtype=torch.int64).random_().item()))
        full, rest = divmod(self.num_samples, self.chunk_size)
        order = torch.randperm(full, generator=gen).tolist() + ([full] if rest else [])
        for chunk in order:
            start = chunk * self.chunk_size
            size = min(self.chunk_size, self.num_samples - start)
            for j in torch.randperm(size, generator=gen).tolist():
                yield start + j


# ---------------------------------------------------------------------------- functions
def get_as_torch_dataset(
    model_id: str | int,
    num_samples: int | None = 100,
    install_dependencies: bool = False,
    transform: Callable[[Any], Any] | None = None,
    seed: int = 0,
    *,
    iterable: bool = False,
    start: int = 0,
    chunk_size: int | None = None,
    cache_chunks: int = DEFAULT_CACHE_CHUNKS,
    device: str = "cpu",
    item_transform: Callable[[dict[str, Any]], Any] | None = None,
    as_tensor: bool = True,
    scale: bool = True,
    package_path: str | os.PathLike[str] | None = None,
    trust_remote_code: bool = False,
    get_executor: Callable[..., ModelExecutor] | None = None,
    catalog: ConfigManager | None = None,
    **inputs: Any,
) -> SyntheticDataset | SyntheticIterableDataset:
    """A lazy torch dataset over a model (see :class:`SyntheticDataset`).

    ``iterable=True`` returns a :class:`SyntheticIterableDataset` (endless when ``num_samples``
    is None). The model's executor comes from ``get_executor(model_id, package_path=...)``
    (``Generators`` passes its own), else from ``catalog`` (default: the default catalog). The
    keyword-only parameters here are the dataset options that :func:`get_as_torch_dataloader`
    passes on; other keyword arguments are model inputs, as for ``generate``.

    Example:
        >>> ds = get_as_torch_dataset(101, num_samples=1000, seed=0)
        >>> len(ds), tuple(ds[0]["sample"].shape)
        (1000, (1, 64, 64))
    """
    executor = (get_executor or default_executors(catalog))(model_id, package_path=package_path)
    ref = ModelRef.of(executor)
    common = dict(transform=transform, item_transform=item_transform, chunk_size=chunk_size,
                  cache_chunks=cache_chunks, device=device, as_tensor=as_tensor, scale=scale, inputs=inputs,
                  install_dependencies=install_dependencies, trust_remote_code=trust_remote_code, executor=executor)
    if iterable:
        return SyntheticIterableDataset(ref, num_samples, seed, start=start, **common)
    if num_samples is None:
        raise InvalidArgumentError("A map-style dataset needs num_samples; pass iterable=True for an endless stream.")
    if start:
        raise InvalidArgumentError("start applies to iterable=True only; index a map-style dataset directly.")
    return SyntheticDataset(ref, num_samples, seed, **common)


#: The dataset options of :func:`get_as_torch_dataset` (its keyword-only parameters), stated once there.
DATASET_OPTIONS = frozenset(p.name for p in inspect.signature(get_as_torch_dataset).parameters.values()
                            if p.kind is inspect.Parameter.KEYWORD_ONLY)


def get_as_torch_dataloader(
    model_id: str | int | Dataset | None = None,
    num_samples: int | None = 1000,
    install_dependencies: bool = False,
    transform: Callable[[Any], Any] | None = None,
    seed: int = 0,
    *,
    dataset: Dataset | None = None,
    model_kwargs: Mapping[str, Any] | None = None,
    output_path: str | os.PathLike[str] | None = None,
    save_images: bool = False,
    **kwargs: Any,
) -> DataLoader:
    """A ``torch.utils.data.DataLoader`` over a lazy synthetic dataset.

    Keyword arguments go where their name says, only those given: named like a ``DataLoader``
    parameter (:data:`LOADER_PARAMETERS`: ``batch_size``, ``shuffle``, ``num_workers``,
    ``pin_memory``, ``persistent_workers``, ``prefetch_factor``, ``multiprocessing_context``,
    ``generator``, ...) to the DataLoader; named like a dataset option of
    :func:`get_as_torch_dataset` (:data:`DATASET_OPTIONS`: ``iterable``, ``start``, ``chunk_size``,
    ``cache_chunks``, ``device``, ``item_transform``, ``as_tensor``, ``scale``, ``package_path``,
    ``trust_remote_code``, ``get_executor``, ``catalog``) to the dataset; the others are model
    inputs (as medigan did), as is ``model_kwargs``. ``dataset`` (or a Dataset as first argument,
    as in medigan) wraps an existing dataset instead.

    When ``chunk_size`` is not given and ``batch_size`` is, the chunk size follows the batch
    size: equal to it with ``num_workers > 0`` (each batch is one chunk, generated by one worker)
    and for medigan-interface packages (whose items depend on the chunk size, so that the worker
    count never changes them); otherwise (``medhub/1``, single process) the smallest multiple of
    it that reaches the default chunk size. ``shuffle=True`` on a
    map-style synthetic dataset uses a :class:`ChunkShuffleSampler` (chunk order and order
    within chunks random) instead of a full random permutation, which would regenerate a chunk
    for almost every item. ``output_path`` / ``save_images`` are accepted for medigan
    compatibility and ignored: nothing is written (use ``generate`` for files). Where CUDA is
    available, ``pin_memory`` defaults to True (batches in page-locked memory, so that
    ``batch["sample"].to("cuda", non_blocking=True)`` is fast and asynchronous); pass
    ``pin_memory=False`` to turn it off.

    Example:
        >>> loader = get_as_torch_dataloader(101, num_samples=100, batch_size=32)
        >>> batches = [b["sample"].shape[0] for b in loader]
        >>> batches
        [32, 32, 32, 4]
    """
    if isinstance(model_id, Dataset) and dataset is None:
        dataset, model_id = model_id, None
    loader_kwargs = {k: v for k, v in kwargs.items() if k in LOADER_PARAMETERS}
    options = {k: v for k, v in kwargs.items() if k in DATASET_OPTIONS}
    inputs = {**{k: v for k, v in kwargs.items() if k not in LOADER_PARAMETERS and k not in DATASET_OPTIONS},
              **dict(model_kwargs or {})}
    if save_images or output_path is not None:
        logger.warning("get_as_torch_dataloader generates samples in memory, on demand; output_path and save_images "
                       "are ignored (use generate(..., output_path=...) to write files).")
    if dataset is None:
        if model_id is None:
            raise InvalidArgumentError("get_as_torch_dataloader needs a model_id (or a dataset).")
        get_executor = options["get_executor"] = options.get("get_executor") or default_executors(options.get("catalog"))
        if options.get("chunk_size") is None:
            options["chunk_size"] = _loader_chunk_size(
                ModelRef.of(get_executor(model_id, package_path=options.get("package_path"))), loader_kwargs)
        if options.get("iterable") and loader_kwargs.get("shuffle"):
            raise InvalidArgumentError(
                "An iterable (streamed) dataset cannot be shuffled by the DataLoader; its samples are i.i.d. draws "
                "already. Drop shuffle=True, or use the map-style dataset (iterable=False)."
            )
        dataset = get_as_torch_dataset(model_id, num_samples, install_dependencies, transform, seed, **options, **inputs)
    elif inputs:
        raise InvalidArgumentError(
            f"Unknown DataLoader arguments {sorted(inputs)} (model inputs apply only when a model_id is given)."
        )
    if (isinstance(dataset, SyntheticDataset) and loader_kwargs.get("shuffle")
            and loader_kwargs.get("sampler") is None and loader_kwargs.get("batch_sampler") is None):
        loader_kwargs.pop("shuffle")
        loader_kwargs["sampler"] = ChunkShuffleSampler(len(dataset), dataset.chunk_size,
                                                       generator=loader_kwargs.get("generator"))
    if "pin_memory" not in loader_kwargs and torch.cuda.is_available():
        # page-locked batches: faster host-to-GPU copies, and ``batch.to("cuda", non_blocking=True)`` overlaps
        loader_kwargs["pin_memory"] = True
    batch_size = loader_kwargs.get("batch_size", 1)
    if loader_kwargs.get("num_workers", 0) and isinstance(batch_size, int) and batch_size < 8:
        logger.warning("batch_size=%s with num_workers=%s: each worker calls the model for %s sample(s) at a time; "
                       "a batch_size of 32 or more is much faster.", batch_size, loader_kwargs["num_workers"],
                       batch_size)
    return DataLoader(dataset, **loader_kwargs)


def _loader_chunk_size(ref: ModelRef, loader_kwargs: Mapping[str, Any]) -> int | None:
    batch_size = loader_kwargs.get("batch_size", 1)
    if (not isinstance(batch_size, int) or batch_size <= 0 or loader_kwargs.get("batch_sampler") is not None
            or "batch_size" not in loader_kwargs and not loader_kwargs.get("num_workers")):
        return None
    if loader_kwargs.get("num_workers") or not ref.is_native:
        return batch_size  # medigan items depend on the chunk size: never let num_workers change it
    target = default_chunk_size(ref)
    return batch_size * max(1, math.ceil(target / batch_size))
