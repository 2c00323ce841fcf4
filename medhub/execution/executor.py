"""ModelExecutor: resolve, verify, import and run one model package, in batches, reproducibly."""

from __future__ import annotations

import contextlib
import logging
import os
import platform
import random
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime, timezone
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any

import numpy as np

from .._paths import bundled
from ..errors import GenerationError, InvalidArgumentError, MedhubError, OutputSpecError, PackageError
from ..outputs.specs import (  # the writer stack (outputs.runs) loads with the first run to files
    OutputSpec,
    check_format,
    check_outputs,
    from_samples,
    infer_specs,
    parse_specs,
    to_samples,
    with_format,
)
from ..settings import get as get_setting
from ..validate import check_batch_size, check_in_memory, check_num_samples
from .deps import ensure_dependencies, requirement_name
from .device import device_name, resolve_device
from .inputs import check_inputs
from .introspect import accepts_indices, jsonable
from .loader import import_resolved
from .pipeline import BatchStream, collect, progress_bar
from .resolve import PackageResolver, ResolvedPackage, tree_digest, weights_path
from .seeds import check_seed, new_seed
from .streams import cpu_streams, part_size

if TYPE_CHECKING:  # pragma: no cover
    from ..outputs.runs import GenerationRun

logger = logging.getLogger("medhub.execution")

DEFAULT_BATCH_SIZE = 32
#: Package kinds run by adapters inside medhub (:mod:`medhub.execution.adapters`), like ``medhub/1`` packages.
ADAPTER_INTERFACES = ("diffusers", "monai-bundle")
INTERFACES = ("medhub/1", "medigan", *ADAPTER_INTERFACES)
#: Mixed-precision dtypes a package may declare (``execution.generate_method.mixed_precision`` or the
#: package's ``SUPPORTS_AMP``); ``True`` means float16.
AMP_DTYPES = ("float16", "bfloat16")
#: Weight layouts a package may declare in ``execution.generate_method.memory_format``.
MEMORY_FORMATS = ("contiguous", "channels_last")


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
        selection: dict[str, Any] | None = None,
    ) -> None:
        self.model_id = model_id
        self.execution_config = execution_config
        self.description = description or {}
        self.selection = selection or {}
        self.catalog_version = catalog_version
        self.package_path = package_path
        self.base_dir = Path(base_dir) if base_dir else None
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
    def is_native(self) -> bool:
        """Whether the package follows the ``medhub/1`` contract (``load`` / ``sample``, sample i depends
        only on (seed, i)): native packages and the adapter kinds (``diffusers``, ``monai-bundle``)."""
        return self.interface == "medhub/1" or self.interface in ADAPTER_INTERFACES

    @property
    def uses_torch(self) -> bool:
        return any(requirement_name(d) == "torch" for d in self.dependencies)

    def prepare(self, install_dependencies: bool = False, trust_remote_code: bool = False) -> ModuleType:
        """Check dependencies, fetch (remote), resolve and verify the package, import it (each once).

        ``trust_remote_code`` allows running a remote package that has no pinned sha256.
        """
        if self._module is None:
            ensure_dependencies(self.model_id, self.dependencies, install=install_dependencies)
            if self.interface in ADAPTER_INTERFACES:  # a pipeline or bundle folder, run by medhub's adapter
                from .adapters import bind_adapter

                self._package = (ResolvedPackage(Path(self.package_path).expanduser().resolve(), "user", None, False)
                                 if self.package_path is not None else
                                 self._resolver.resolve(self.model_id, self.execution_config,
                                                        trust_remote_code=trust_remote_code))
                module = bind_adapter(self.interface, self.model_id, self._package.folder, self.execution_config,
                                      self._package.files, install_dependencies)
            else:
                self._package = self._resolver.resolve(self.model_id, self.execution_config, self.package_path,
                                                       trust_remote_code=trust_remote_code)
                module = import_resolved(self._package, self.model_id)
            needed = ("load", "sample") if self.is_native else (self.generate_method_name,)
            missing = [name for name in needed if not callable(getattr(module, name, None))]
            if missing:
                raise PackageError(
                    f"Model package {self.model_id} ({self.interface} interface) does not define {', '.join(missing)}(); "
                    "see docs/model-package.md for the contract."
                )
            self._takes_indices = self.is_native and accepts_indices(module.sample)
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
        if get_setting("MEDHUB_MEMORY_FORMAT"):  # "contiguous" or an off value
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

    def default_args(self) -> dict[str, Any]:
        """The catalog's default model arguments (``generate_method.args.custom``), as the package gets them."""
        args = dict(self.execution_config.get("generate_method", {}).get("args", {}).get("custom", {}) or {})
        return self.call_args(args)

    def call_args(self, args: Mapping[str, Any]) -> dict[str, Any]:
        """Arguments as the package gets them: paths in medigan's form ``models/<model_id>/...``
        (the catalog's defaults, or the user's own, as medigan's README writes them) point into
        this package's folder."""
        if self._package is None:
            return dict(args)
        return {k: self._package_relative(v) for k, v in args.items()}

    def calls_once(self, inputs: Mapping[str, Any]) -> bool:
        """Whether a run is one package call: for medigan packages whose arguments name input files
        or folders (an argument named ``...path...`` or ``...input...`` with a value, e.g. the
        ``input_path`` of image-to-image models), as medigan calls them, so that every input is used
        once, in order; batching would hand every batch the same first inputs."""
        if self.interface != "medigan":
            return False
        args = {**self.default_args(), **inputs}
        return any(v not in (None, False, "", []) and ("path" in k.lower() or "input" in k.lower())
                   for k, v in args.items())

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
        return self.is_native and self.execution_config.get("generate_method", {}).get("thread_safe") is True

    def cpu_streams(self, device: str = "cpu", requested: int | None = None) -> int:
        """How many package calls :meth:`generate` runs at once on ``device``: ``requested`` (or
        ``MEDHUB_CPU_STREAMS``; default 1) for a :attr:`thread_safe` package on the CPU, else 1
        (see :mod:`medhub.execution.streams`)."""
        return cpu_streams(self.thread_safe, device, requested)

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
        if get_setting("MEDHUB_MIXED_PRECISION"):
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
            stack.enter_context(torch.inference_mode() if self.is_native else torch.no_grad())
        amp = self.autocast_dtype(device)
        if amp is not None:
            stack.enter_context(torch.autocast(device_type="cuda", dtype=amp))
        return stack

    # ------------------------------------------------------------------ sampling
    def batches(self, indices: Sequence[int], seed: int, device: str = "auto", batch_size: int | None = None,
                cpu_streams: int | None = None, **inputs: Any) -> BatchStream:
        """The samples at run ``indices`` of the run seeded ``seed``, as a stream of checked batches.

        The one sample loop of medhub (see :mod:`medhub.execution.pipeline`): per-sample inputs
        (``generate_method.per_sample_inputs``) hold one row per element of ``indices``. For
        ``medhub/1`` packages sample i depends only on (seed, i); medigan packages draw from the
        global random state, seeded from the first sample's seed before each call.

        Example:
            >>> from medhub.config import ConfigManager
            >>> from medhub.execution.ref import executor_for
            >>> stream = executor_for(ConfigManager(), 101).batches([3, 7], seed=0, device="cpu")
            >>> [b.arrays["image"].shape for b in stream]
            [(2, 64, 64)]
        """
        self.prepare()
        check_inputs(self, inputs)
        device = resolve_device(device, self.uses_torch)
        streams = self.cpu_streams(device, cpu_streams)
        size = check_batch_size(batch_size) or self.default_batch_size()
        call_size = size if streams <= 1 else part_size(size, streams, self._block_size())
        if self.calls_once(inputs):
            call_size = max(1, len(indices))
        return BatchStream(self, indices, int(seed), device, call_size, streams, inputs)

    def sample_batch(self, indices: Sequence[int], seed: int, device: str = "cpu", **kwargs: Any) -> dict[str, np.ndarray]:
        """The checked arrays of the samples at ``indices`` of the run seeded ``seed``, in one package
        call (a one-batch :meth:`batches`)."""
        (batch,) = self.batches(indices, seed, device, max(1, len(indices)), 1, **kwargs)
        return batch.arrays

    def call_package(self, indices: Sequence[int], seeds: Sequence[int], device: str,
                     inputs: Mapping[str, Any]) -> dict[str, np.ndarray]:
        """One call into the package for the samples at run ``indices`` with their ``seeds``;
        returns the outputs checked against the spec (inferred from this call when the catalog has none)."""
        module = self.prepare()
        args = {**self.default_args(), **self.call_args(inputs)}
        seeds = list(seeds)
        try:
            if self.is_native:
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
        count = len(seeds)
        if self.interface == "medigan" and raw:
            count = len(next(iter(raw.values())))  # medigan packages may return their own count
            if count != len(seeds):
                logger.warning("Model %s returned %d samples where %d were asked (e.g. translate_all_images or "
                               "fewer inputs than samples); the run holds what it returned.", self.model_id, count,
                               len(seeds))
        return check_outputs(self.model_id, raw, self.specs, count)

    def per_sample_inputs(self, inputs: Mapping[str, Any], num_samples: int) -> dict[str, np.ndarray]:
        """The inputs the catalog declares per sample (``generate_method.per_sample_inputs``), as
        arrays of ``num_samples`` rows. A scalar (``condition="WM"``) applies to every sample and
        is left out (passed to every call unchanged)."""
        names = self.execution_config.get("generate_method", {}).get("per_sample_inputs", [])
        out = {}
        for name in names:
            if inputs.get(name) is None:
                continue
            value = np.asarray(inputs[name])
            if value.ndim == 0:
                continue
            if value.shape[0] != num_samples:
                raise InvalidArgumentError(
                    f"Input {name!r} of {self.model_id} needs one row per sample: shape ({num_samples}, ...), "
                    f"not {value.shape}."
                )
            if value.dtype.kind in "fc" and not np.isfinite(value).all():
                raise InvalidArgumentError(f"Input {name!r} of {self.model_id} holds NaN or infinite values; give "
                                           "finite numbers.")
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
        cpu_streams: int | None = None,
        output_format: str | None = None,
        mark: bool = True,
        sign: tuple[str, str] | None = None,
        **kwargs: Any,
    ) -> list[Any] | GenerationRun | Callable[..., Any]:
        """Generate ``num_samples`` samples; see :meth:`medhub.Generators.generate` (``mark=False``:
        files without the marks of :mod:`medhub.outputs.marks`; ``sign=(key, cert)``: PNG files with
        C2PA content credentials, :mod:`medhub.outputs.credentials`)."""
        num_samples = check_num_samples(num_samples)
        check_format(output_format)
        seed = check_seed(seed)
        batch_size = check_batch_size(batch_size)
        if save_images:
            from ..outputs.runs import RunWriter, output_folder, signals_as_exit, unique_run_dir
        if save_images and output_path is not None and shard is None:
            output_folder(output_path)  # a bad path fails before any work
        self.prepare(install_dependencies, trust_remote_code)
        check_inputs(self, kwargs)  # a misspelt input too
        if is_gen_function_returned:
            defaults = dict(num_samples=num_samples, output_path=output_path, save_images=save_images, seed=seed,
                            device=device, batch_size=batch_size, progress=progress, cpu_streams=cpu_streams, mark=mark,
                            sign=sign, output_format=output_format, **kwargs)

            def generate_function(**overrides: Any) -> Any:
                return self.generate(**{**defaults, **overrides})

            generate_function.__doc__ = f"Generate samples with {self.model_id}; keyword arguments override {sorted(defaults)}."
            return generate_function

        device = resolve_device(device, self.uses_torch)
        batch_size = batch_size or self.default_batch_size()
        started = datetime.now(timezone.utc)
        if shard is not None:
            from ..shards import generate_shard, parse_shard

            return generate_shard(self, parse_shard(shard), num_samples, output_path, save_images, seed, device,
                                  batch_size, progress, cpu_streams, kwargs, started, mark, sign, output_format)
        run_seed = new_seed() if seed is None else seed
        stream = self.batches(range(num_samples), run_seed, device, batch_size, cpu_streams, **kwargs)
        bar = progress_bar(num_samples, self.model_id, progress)
        try:
            if not save_images:
                check_in_memory(self.model_id, num_samples, sum(spec.nbytes for spec in stream.specs))
                return to_samples(collect(stream, bar), self.specs)
            if output_path is None:
                from .._paths import medhub_home

                output_path = unique_run_dir(medhub_home() / "outputs", self.model_id)
            from .marking import mark_provenance, run_marker

            marker = run_marker(self, run_seed, device, kwargs, sign=sign) if mark else None
            with signals_as_exit():
                writer = RunWriter(output_path, self.output_specs(output_format, stream.specs), marker=marker)
                try:
                    for batch in stream:
                        writer.submit(batch.indices, batch.seeds, batch.arrays, batch.inputs)
                        bar.update(len(batch))
                    record = self.provenance(run_seed, writer.num_samples, batch_size, device, kwargs, started,
                                             stream.streams)
                    return writer.finish(dict(record, requested_samples=num_samples, **mark_provenance(marker)))
                except BaseException:
                    writer.abort()
                    raise
        finally:
            bar.close()

    @property
    def package(self) -> ResolvedPackage | None:
        """The resolved package (None before :meth:`prepare`)."""
        return self._package

    @property
    def package_sha256(self) -> str:
        """The sha256 that pins the package: its archive's, or the digest of its folder."""
        package = self._package
        assert package is not None, "prepare() the executor first"
        return package.sha256 or tree_digest(package.folder)[0]

    def output_specs(self, output_format: str | None = None,
                     specs: Sequence[OutputSpec] | None = None) -> list[OutputSpec]:
        """The outputs spec (``specs``, default the executor's) as a run in ``output_format`` writes it; a
        DICOM run's with the catalog's modality (:func:`medhub.outputs.dicom.dicom_specs`)."""
        specs = self.specs if specs is None else specs
        if output_format != "dicom":
            return with_format(specs, output_format)
        from ..outputs.dicom import dicom_specs

        return dicom_specs(specs, self.selection.get("modality"))

    def run_record(self, seed: int, num_samples: int, mark: bool = True, **extra: Any) -> dict[str, Any]:
        """What a shared run's ``run.json`` pins (model, seed, number of samples, package, marks on or
        off): a resumed run must match it."""
        return {"model_id": self.model_id, "seed": int(seed), "num_samples": int(num_samples),
                "package_sha256": self.package_sha256, "mark": bool(mark), **extra}

    def provenance(self, seed: int, num_samples: int, batch_size: int, device: str, kwargs: Mapping[str, Any],
                   started: datetime, streams: int = 1) -> dict[str, Any]:
        """The ``provenance.json`` record of a run: what ran, where, with which versions and arguments."""
        from ..version import __version__

        package = self._package
        assert package is not None
        torch = sys.modules.get("torch")
        # pipelines and bundles: the versions of diffusers/MONAI/huggingface_hub and their own
        adapter = getattr(self._module, "provenance", None) if self.interface in ADAPTER_INTERFACES else None
        return {
            "model_id": self.model_id,
            "model_version": self.description.get("version"),
            "catalog_version": self.catalog_version,
            "interface": self.interface,
            "package_sha256": self.package_sha256,
            "package_source": package.source,
            "package_verified": package.verified,
            "package_commit": package.folder.name if package.source == "hub" else None,
            **({"adapter": adapter()} if callable(adapter) else {}),
            "seed": seed,
            "seed_scheme": "medhub.execution.seeds.sample_seeds(seed, index)",
            "num_samples": num_samples,
            "batch_size": batch_size,
            "device": device,
            "device_name": device_name(device),
            "memory_format": self.memory_format() if self.is_native else None,
            "cpu_streams": streams,
            "arguments": jsonable({**self.default_args(), **kwargs}),
            "medhub_version": __version__,
            "torch_version": getattr(torch, "__version__", None),
            "cuda_version": getattr(getattr(torch, "version", None), "cuda", None),
            "numpy_version": np.__version__,
            "python_version": platform.python_version(),
            "platform": platform.platform(),
            "started": started.isoformat(),
            "finished": datetime.now(timezone.utc).isoformat(),
        }

    def __repr__(self) -> str:
        return f"ModelExecutor(model_id={self.model_id!r}, interface={self.interface!r})"
