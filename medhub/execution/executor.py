"""ModelExecutor: resolve, verify, import and run one model package, in batches, reproducibly."""

from __future__ import annotations

import contextlib
import itertools
import logging
import os
import platform
import random
import sys
import time
from collections.abc import Callable, Mapping
from datetime import datetime, timezone
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np

from .._paths import bundled, env_switched_off
from ..errors import GenerationError, InvalidArgumentError, MedhubError, OutputSpecError, PackageError
from ..outputs import (
    GenerationRun,
    OutputSpec,
    RunWriter,
    check_outputs,
    from_samples,
    infer_specs,
    iter_batches,
    parse_specs,
    to_samples,
    unique_run_dir,
)
from .deps import ensure_dependencies, requirement_name
from .device import resolve_device
from .heap import release_heap, tune_heap
from .loader import import_package
from .resolve import PackageResolver, ResolvedPackage, tree_digest, weights_path
from .seeds import check_seed, new_seed, sample_seeds
from .streams import cpu_streams, parallel, part_size

logger = logging.getLogger("medhub.execution")

DEFAULT_BATCH_SIZE = 32
INTERFACES = ("medhub/1", "medigan")
#: Mixed-precision dtypes a package may declare (``execution.generate_method.mixed_precision`` or the
#: package's ``SUPPORTS_AMP``); ``True`` means float16.
AMP_DTYPES = ("float16", "bfloat16")
#: Weight layouts a package may declare in ``execution.generate_method.memory_format``.
MEMORY_FORMATS = ("contiguous", "channels_last")


def _collect(collected: dict[str, Any], batch: Mapping[str, np.ndarray], indices: range, num_samples: int) -> None:
    """Copy one checked batch into the run's result arrays.

    Numeric outputs go into one array of ``num_samples`` rows per output, allocated at the first
    batch: the returned samples are views of it, and nothing but the result and one batch is held
    while a long run is generated (many small per-batch arrays would fragment the heap). String
    outputs, whose width may change from batch to batch, are kept per batch and joined at the end.
    """
    for name, arr in batch.items():
        if name not in collected:
            collected[name] = (np.empty((num_samples, *arr.shape[1:]), arr.dtype) if arr.dtype.kind in "biufc"
                               else [])
        target = collected[name]
        if isinstance(target, list):
            target.append(arr)
        else:
            target[indices.start : indices.stop] = arr


def _collected_arrays(collected: dict[str, Any]) -> dict[str, np.ndarray]:
    return {name: np.concatenate(v) if isinstance(v, list) else v for name, v in collected.items()}


def _accepts_indices(function: Callable[..., Any]) -> bool:
    """Whether a package's ``sample`` declares an ``indices`` parameter (the run positions of its
    samples, e.g. to pick the i-th file of an ``input_path`` folder)."""
    import inspect

    try:
        return "indices" in inspect.signature(function).parameters
    except (TypeError, ValueError):
        return False


def _to_host(raw: Any) -> Any:
    """Torch tensors in a package's output dict -> numpy arrays.

    CUDA tensors are copied into pinned host buffers with non-blocking copies and the stream is
    synchronised once for the whole batch (instead of one blocking copy per output); CPU tensors
    are shared with numpy without a copy. Anything else is returned unchanged.
    """
    torch = sys.modules.get("torch")
    if torch is None or not isinstance(raw, Mapping):
        return raw
    tensors = {k: v for k, v in raw.items() if isinstance(v, torch.Tensor)}
    if not tensors:
        return raw
    out = dict(raw)
    devices = set()
    for key, tensor in tensors.items():
        tensor = tensor.detach()
        if tensor.device.type == "cuda":
            host = torch.empty(tensor.shape, dtype=tensor.dtype, pin_memory=True)
            host.copy_(tensor, non_blocking=True)
            devices.add(tensor.device)
            out[key] = host
        else:
            out[key] = tensor.cpu()
    for device in devices:
        torch.cuda.current_stream(device).synchronize()
    return {k: (v.numpy() if isinstance(v, torch.Tensor) else v) for k, v in out.items()}


class _NoBar:
    """Stands in for a disabled tqdm bar (so a run without a progress bar never imports tqdm)."""

    def update(self, n: int = 1) -> None:
        pass

    def close(self) -> None:
        pass


def _progress_bar(total: int, desc: str, progress: bool | None) -> Any:
    show = sys.stderr.isatty() if progress is None else progress
    if not show:
        return _NoBar()
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=desc, unit="sample")


def check_num_samples(num_samples: Any) -> int:
    if isinstance(num_samples, bool) or not isinstance(num_samples, (int, np.integer)):
        raise InvalidArgumentError(f"num_samples must be a positive integer, not {num_samples!r}.")
    if num_samples <= 0:
        raise InvalidArgumentError(f"num_samples must be a positive integer, not {num_samples}.")
    return int(num_samples)


def _check_batch_size(batch_size: Any) -> int | None:
    if batch_size is None:
        return None
    if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)) or batch_size <= 0:
        raise InvalidArgumentError(f"batch_size must be a positive integer or None, not {batch_size!r}.")
    return int(batch_size)


def _jsonable(value: Any) -> Any:
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    if isinstance(value, np.ndarray):
        return f"<array shape={value.shape} dtype={value.dtype}>"
    return repr(value)


class ModelExecutor:
    """Runs one model. Created on the model's first use by :class:`~medhub.Generators` and kept,
    so the package is imported and its weights loaded only once.

    Example:
        >>> from medhub.config import ConfigManager
        >>> cm = ConfigManager()
        >>> ex = ModelExecutor("00101_DCGAN_BRAIN_MRI_T1", cm.get_config_by_id(101, "execution"), base_dir=cm.base_dir)
        >>> images = ex.generate(num_samples=2, save_images=False, seed=0, progress=False)
        >>> images[0].shape
        (64, 64)
    """

    def __init__(
        self,
        model_id: str,
        execution_config: dict[str, Any],
        base_dir: str | os.PathLike[str] | None = None,
        description: dict[str, Any] | None = None,
        catalog_version: str | None = None,
        package_path: str | os.PathLike[str] | None = None,
        home: Path | None = None,
    ) -> None:
        self.model_id = model_id
        self.execution_config = execution_config
        self.description = description or {}
        self.catalog_version = catalog_version
        self.package_path = package_path
        self.interface = execution_config.get("interface", "medigan")
        if self.interface not in INTERFACES:
            raise PackageError(f"Model {model_id}: unknown package interface {self.interface!r}; medhub runs {INTERFACES}.")
        self.specs: list[OutputSpec] = parse_specs(execution_config.get("outputs"))
        self.dependencies: list[str] = list(execution_config.get("dependencies", []))
        self._resolver = PackageResolver(Path(base_dir) if base_dir else bundled("models"), home)
        self._package: ResolvedPackage | None = None
        self._module: ModuleType | None = None
        self._models: dict[str, Any] = {}
        self._takes_indices = False
        self._amp: dict[str, Any] = {}

    # ------------------------------------------------------------------ set-up
    @property
    def uses_torch(self) -> bool:
        return any(requirement_name(d) == "torch" for d in self.dependencies)

    def prepare(self, install_dependencies: bool = False, trust_remote_code: bool = False) -> ModuleType:
        """Check dependencies, fetch (remote), resolve and verify the package, import it (each once).

        ``trust_remote_code`` allows running a remote package that has no pinned sha256.
        """
        if self._module is None:
            ensure_dependencies(self.model_id, self.dependencies, install=install_dependencies)
            self._package = self._resolver.resolve(self.model_id, self.execution_config, self.package_path,
                                                   trust_remote_code=trust_remote_code)
            module = import_package(self._package.folder, self.model_id)
            needed = ("load", "sample") if self.interface == "medhub/1" else (self.generate_method_name,)
            missing = [name for name in needed if not callable(getattr(module, name, None))]
            if missing:
                raise PackageError(
                    f"Model package {self.model_id} ({self.interface} interface) does not define {', '.join(missing)}(); "
                    "see docs/model-package.md for the contract."
                )
            self._takes_indices = self.interface == "medhub/1" and _accepts_indices(module.sample)
            self._module = module
        return self._module

    @property
    def generate_method_name(self) -> str:
        return self.execution_config.get("generate_method", {}).get("name", "generate")

    @property
    def package_folder(self) -> Path:
        self.prepare()
        assert self._package is not None
        return self._package.folder

    @property
    def weights_path(self) -> Path:
        """Absolute path of the package's weights file."""
        return weights_path(self.package_folder, self.execution_config)

    def load(self, device: str = "cpu") -> Any:
        """Load the model of a ``medhub/1`` package on ``device`` (cached per device)."""
        module = self.prepare()
        if device not in self._models:
            started = time.perf_counter()
            try:
                model = module.load(str(self.weights_path), device)
                self._models[device] = self._apply_memory_format(model)
            except MedhubError:
                raise
            except Exception as exc:
                raise GenerationError(
                    f"Model {self.model_id}: load() failed on {device} with {type(exc).__name__}: {exc}"
                ) from exc
            logger.debug("%s loaded on %s in %.3fs", self.model_id, device, time.perf_counter() - started)
        return self._models[device]

    def memory_format(self) -> str:
        """The memory layout medhub gives the loaded network's weights: ``"contiguous"`` (as the
        package built it) or ``"channels_last"``.

        ``channels_last`` only when the catalog declares it for the package
        (``execution.generate_method.memory_format``): many convolutional generators run much
        faster on CPUs (oneDNN) and GPUs (cuDNN) in that layout, but the package author measures it
        (``benchmarks/memory_format.py``) and checks that outputs stay the same. ``MEDHUB_MEMORY_FORMAT=
        contiguous`` turns it off everywhere.
        """
        declared = self.execution_config.get("generate_method", {}).get("memory_format") or "contiguous"
        if declared not in MEMORY_FORMATS:
            raise PackageError(f"Model {self.model_id}: memory_format must be one of {MEMORY_FORMATS}, not {declared!r}.")
        override = os.environ.get("MEDHUB_MEMORY_FORMAT", "").strip().lower()
        if override == "contiguous" or env_switched_off("MEDHUB_MEMORY_FORMAT"):
            return "contiguous"
        return str(declared)

    def _apply_memory_format(self, model: Any) -> Any:
        if self.memory_format() != "channels_last":
            return model
        torch = sys.modules.get("torch")
        if torch is None or not isinstance(model, torch.nn.Module):
            raise PackageError(f"Model {self.model_id}: memory_format 'channels_last' needs load() to return a "
                               f"torch.nn.Module, not {type(model).__name__}.")
        return model.to(memory_format=torch.channels_last)

    def _default_args(self) -> dict[str, Any]:
        args = dict(self.execution_config.get("generate_method", {}).get("args", {}).get("custom", {}) or {})
        if self.interface == "medigan" and self._package is not None:
            args = {k: self._package_relative(v) for k, v in args.items()}
        return args

    def _package_relative(self, value: Any) -> Any:
        """medigan custom arguments name files as ``models/<model_id>/...`` (relative to medigan's
        working directory); point them into this package's folder instead."""
        if isinstance(value, list):
            return [self._package_relative(v) for v in value]
        prefix = f"models/{self.model_id}/"
        if not isinstance(value, str) or not value.startswith(prefix):
            return value
        assert self._package is not None
        rest = value[len(prefix):]
        folder = self._package.folder
        for base in (folder.parent, folder) if (folder.parent / ".medhub-package.json").exists() else (folder,):
            if (base / rest).exists():
                return str(base / rest)
        return str(folder / rest)

    @property
    def thread_safe(self) -> bool:
        """Whether the catalog declares that the package's ``sample`` may run in several threads at
        once on one loaded model (``execution.generate_method.thread_safe``; ``medhub/1`` only)."""
        return self.interface == "medhub/1" and self.execution_config.get("generate_method", {}).get("thread_safe") is True

    def cpu_streams(self, device: str = "cpu") -> int:
        """How many package calls :meth:`generate` runs at once on ``device``: more than 1 only
        for a :attr:`thread_safe` package on the CPU (see :mod:`medhub.execution.streams`)."""
        return cpu_streams(self.thread_safe, device)

    def _call_size(self, batch_size: int, streams: int) -> int:
        """Samples per package call: ``batch_size``, or with parallel streams a share of it cut at
        the package's block size (:func:`medhub.execution.streams.part_size`)."""
        return batch_size if streams <= 1 else part_size(batch_size, streams, self._block_size())

    def _block_size(self) -> int | None:
        """The package's fixed block size (its optional module attribute ``CHUNK``), where parts
        are cut so that they pad no more blocks than the whole batch would."""
        chunk = getattr(self._module, "CHUNK", None)
        return chunk if isinstance(chunk, int) and not isinstance(chunk, bool) and chunk > 0 else None

    def default_batch_size(self) -> int:
        return int(self.execution_config.get("generate_method", {}).get("batch_size", DEFAULT_BATCH_SIZE))

    # ------------------------------------------------------------------ torch execution context
    def autocast_dtype(self, device: str) -> Any:
        """The torch dtype of mixed precision on ``device``, or None for full precision.

        Only on CUDA, and only when the package allows it: the catalog's
        ``execution.generate_method.mixed_precision`` (``true``/``"float16"``, ``"bfloat16"``,
        ``false``) or, when the catalog says nothing, the package's ``SUPPORTS_AMP`` attribute (same
        values). ``MEDHUB_MIXED_PRECISION=0`` turns it off everywhere.
        """
        if not str(device).startswith("cuda"):
            return None
        if device in self._amp:
            return self._amp[device]
        dtype = None
        if not env_switched_off("MEDHUB_MIXED_PRECISION"):
            declared = self.execution_config.get("generate_method", {}).get("mixed_precision")
            if declared is None:
                declared = getattr(self.prepare(), "SUPPORTS_AMP", None)
            if declared not in (None, False):
                name = "float16" if declared is True else str(declared)
                if name not in AMP_DTYPES:
                    raise PackageError(f"Model {self.model_id}: mixed_precision / SUPPORTS_AMP must be true, false or "
                                       f"one of {AMP_DTYPES}, not {declared!r}.")
                import torch

                dtype = getattr(torch, name)
        self._amp[device] = dtype
        return dtype

    def _torch_context(self, device: str) -> contextlib.AbstractContextManager[Any]:
        """What a package call runs under when torch is loaded: ``torch.inference_mode`` for
        ``medhub/1`` packages (``torch.no_grad`` for medigan packages, which may build and keep
        modules inside ``generate``), and ``torch.autocast`` on CUDA where :meth:`autocast_dtype`
        allows it. ``execution.generate_method.inference_mode: false`` opts a package out of both
        grad modes (for samplers that need autograd)."""
        torch = sys.modules.get("torch")
        if torch is None:
            return contextlib.nullcontext()
        stack = contextlib.ExitStack()
        if self.execution_config.get("generate_method", {}).get("inference_mode", True) is not False:
            stack.enter_context(torch.inference_mode() if self.interface == "medhub/1" else torch.no_grad())
        amp = self.autocast_dtype(device)
        if amp is not None:
            stack.enter_context(torch.autocast(device_type="cuda", dtype=amp))
        return stack

    # ------------------------------------------------------------------ sampling
    def sample_batch(self, indices: range | list[int], seed: int, device: str = "cpu", **kwargs: Any) -> dict[str, np.ndarray]:
        """Generate the samples at ``indices`` of the run seeded ``seed``; returns checked arrays.

        For ``medhub/1`` packages sample i depends only on (seed, i). For medigan packages the
        global RNGs are seeded from (seed, first index) before each call.
        """
        module = self.prepare()
        tune_heap()  # once per process: freed tensors are reused instead of faulted in again (medhub.execution.heap)
        seeds = sample_seeds(seed, indices)
        args = {**self._default_args(), **kwargs}
        try:
            if self.interface == "medhub/1":
                if self._takes_indices:
                    args["indices"] = [int(i) for i in indices]
                model = self.load(device)
                with self._torch_context(device):
                    raw = _to_host(module.sample(model, seeds, **args))
            else:
                self._seed_globals(seeds[0])
                with self._torch_context(device):
                    result = getattr(module, self.generate_method_name)(
                        model_file=str(self.weights_path), num_samples=len(seeds), output_path=None,
                        save_images=False, **args
                    )
                raw = from_samples(result, self.specs, self.model_id)
        except MedhubError:
            raise
        except Exception as exc:
            raise GenerationError(
                f"Model {self.model_id} raised {type(exc).__name__} while generating samples "
                f"{indices[0]}-{indices[-1]}: {exc}"
            ) from exc
        if not self.specs:
            if not isinstance(raw, dict):
                raise OutputSpecError(f"Model {self.model_id}: sample() must return a dict, not {type(raw).__name__}.")
            self.specs = infer_specs(raw)
        return check_outputs(self.model_id, raw, self.specs, len(seeds))

    def _per_sample_inputs(self, kwargs: dict[str, Any], num_samples: int) -> dict[str, Any]:
        """Inputs the catalog declares per sample (``generate_method.per_sample_inputs``): one row
        per sample, sliced to each batch. A scalar (``condition="WM"``) applies to every sample and
        is passed to every batch unchanged."""
        names = self.execution_config.get("generate_method", {}).get("per_sample_inputs", [])
        out = {}
        for name in names:
            if kwargs.get(name) is None:
                continue
            value = np.asarray(kwargs[name])
            if value.ndim == 0:
                continue  # one value (e.g. condition="WM") applies to every sample, passed as it is
            if value.shape[0] != num_samples:
                raise InvalidArgumentError(
                    f"Input {name!r} of {self.model_id} needs one row per sample: shape ({num_samples}, ...), "
                    f"not {value.shape}."
                )
            out[name] = value
        return out

    def _seed_globals(self, seed: int) -> None:
        random.seed(seed)
        np.random.seed(seed % 2**32)
        if "torch" in sys.modules:
            sys.modules["torch"].manual_seed(seed)

    # ------------------------------------------------------------------ generate
    def generate(
        self,
        num_samples: int = 30,
        output_path: str | os.PathLike[str] | None = None,
        save_images: bool = True,
        is_gen_function_returned: bool = False,
        install_dependencies: bool = False,
        seed: int | None = None,
        device: str = "auto",
        batch_size: int | None = None,
        progress: bool | None = None,
        trust_remote_code: bool = False,
        shard: Any = None,
        **kwargs: Any,
    ) -> list[Any] | GenerationRun | Callable[..., Any]:
        """Generate ``num_samples`` samples; see :meth:`medhub.Generators.generate`."""
        num_samples = check_num_samples(num_samples)
        seed = check_seed(seed)
        batch_size = _check_batch_size(batch_size)
        if is_gen_function_returned:
            self.prepare(install_dependencies, trust_remote_code)
            defaults = dict(num_samples=num_samples, output_path=output_path, save_images=save_images, seed=seed,
                            device=device, batch_size=batch_size, progress=progress, **kwargs)

            def generate_function(**overrides: Any) -> Any:
                return self.generate(**{**defaults, **overrides})

            generate_function.__doc__ = f"Generate samples with {self.model_id}; keyword arguments override {sorted(defaults)}."
            return generate_function

        self.prepare(install_dependencies, trust_remote_code)
        device = resolve_device(device, self.uses_torch)
        run_seed = new_seed() if seed is None else seed
        batch_size = batch_size or self.default_batch_size()
        started = datetime.now(timezone.utc)
        parsed = None
        if shard is not None:
            from ..shards import parse_shard

            parsed = parse_shard(shard)
        if parsed is not None:
            return self._generate_shard(parsed, num_samples, output_path, save_images, seed, device, batch_size,
                                        progress, kwargs, started)
        per_sample = self._per_sample_inputs(kwargs, num_samples)
        streams = self.cpu_streams(device)
        if streams > 1:
            self.load(device)  # once, before threads share it
        writer = None
        if save_images:
            if output_path is None:
                from .._paths import medhub_home

                output_path = unique_run_dir(medhub_home() / "outputs", self.model_id)
            writer = RunWriter(output_path, self.specs)
        collected: dict[str, Any] = {}
        bar = _progress_bar(num_samples, self.model_id, progress)

        def call(indices: range) -> dict[str, np.ndarray]:
            inputs = {**kwargs, **{k: v[indices.start : indices.stop] for k, v in per_sample.items()}}
            return self.sample_batch(indices, run_seed, device, **inputs)

        calls = iter(iter_batches(num_samples, self._call_size(batch_size, streams)))
        try:
            with parallel(streams) as runner:
                # the first call alone while the outputs spec is unknown (it is inferred from it)
                first = [] if self.specs else [(i, call(i)) for i in itertools.islice(calls, 1)]
                for indices, batch in itertools.chain(first, runner.ordered(call, calls)):
                    if writer is not None:
                        writer.set_specs(self.specs)
                        writer.submit(indices, sample_seeds(run_seed, indices), batch)
                    else:
                        _collect(collected, batch, indices, num_samples)
                    bar.update(len(indices))
            if writer is None:
                return to_samples(_collected_arrays(collected), self.specs)
            return writer.finish(self._provenance(run_seed, num_samples, batch_size, device, kwargs, started, streams))
        except BaseException:
            if writer is not None:
                writer.abort()
            raise
        finally:
            bar.close()
            release_heap()

    def _generate_shard(self, shard: tuple[int, int], num_samples: int, output_path: Any, save_images: bool,
                        seed: int | None, device: str, batch_size: int, progress: bool | None,
                        kwargs: dict[str, Any], started: datetime) -> GenerationRun:
        """Generate shard K of N into a shared folder; re-running it resumes (see medhub.shards)."""
        from ..shards import ShardWriter, shard_range

        if self.interface != "medhub/1":
            raise InvalidArgumentError(f"Sharded runs need a medhub/1 package (sample i depends only on (seed, i)); "
                                       f"{self.model_id} uses the {self.interface} interface.")
        if seed is None or output_path is None or not save_images:
            raise InvalidArgumentError("A sharded run needs seed=, output_path= and save_images=True, the same for "
                                       "every shard, so the shards add up to one run.")
        if not self.specs:
            raise InvalidArgumentError(f"Sharded runs need the outputs spec of {self.model_id} in the catalog.")
        assert self._package is not None
        run = {"model_id": self.model_id, "seed": seed, "num_samples": num_samples, "shards": shard[1],
               "package_sha256": self._package.sha256 or tree_digest(self._package.folder)[0]}
        writer = ShardWriter(output_path, self.specs, run, shard)
        indices = shard_range(num_samples, *shard)
        todo = writer.todo(indices)
        if len(todo) < len(indices):
            logger.info("Shard %d/%d: %d of %d samples already done; resuming", shard[0], shard[1],
                        len(indices) - len(todo), len(indices))
        per_sample = self._per_sample_inputs(kwargs, num_samples)
        from tqdm.auto import tqdm

        show = sys.stderr.isatty() if progress is None else progress
        try:
            streams = self.cpu_streams(device)
            if streams > 1:
                self.load(device)
            size = self._call_size(batch_size, streams)

            def call(chunk: list[int]) -> dict[str, np.ndarray]:
                inputs = {**kwargs, **{k: v[np.asarray(chunk)] for k, v in per_sample.items()}}
                return self.sample_batch(chunk, seed, device, **inputs)

            chunks = (todo[lo : lo + size] for lo in range(0, len(todo), size))
            with tqdm(total=len(todo), desc=f"{self.model_id} {shard[0]}/{shard[1]}", unit="sample",
                      disable=not show) as bar, parallel(streams) as runner:
                for chunk, batch in runner.ordered(call, chunks):
                    writer.submit(chunk, sample_seeds(seed, chunk), batch)
                    bar.update(len(chunk))
            return writer.finish(indices, self._provenance(seed, num_samples, batch_size, device, kwargs, started,
                                                           streams))
        except BaseException:
            writer.abort()
            raise
        finally:
            release_heap()

    def _provenance(self, seed: int, num_samples: int, batch_size: int, device: str, kwargs: dict[str, Any],
                    started: datetime, streams: int = 1) -> dict[str, Any]:
        from .. import __version__

        package = self._package
        assert package is not None
        sha = package.sha256 or tree_digest(package.folder)[0]
        torch_version = getattr(sys.modules.get("torch"), "__version__", None)
        return {
            "model_id": self.model_id,
            "model_version": self.description.get("version"),
            "catalog_version": self.catalog_version,
            "interface": self.interface,
            "package_sha256": sha,
            "package_source": package.source,
            "package_verified": package.verified,
            "seed": seed,
            "seed_scheme": "medhub.execution.seeds.sample_seeds(seed, index)",
            "num_samples": num_samples,
            "batch_size": batch_size,
            "device": device,
            "memory_format": self.memory_format() if self.interface == "medhub/1" else None,
            "cpu_streams": streams,
            "arguments": _jsonable({**self._default_args(), **kwargs}),
            "medhub_version": __version__,
            "torch_version": torch_version,
            "numpy_version": np.__version__,
            "python_version": platform.python_version(),
            "platform": platform.platform(),
            "started": started.isoformat(),
            "finished": datetime.now(timezone.utc).isoformat(),
        }

    def __repr__(self) -> str:
        return f"ModelExecutor(model_id={self.model_id!r}, interface={self.interface!r})"
