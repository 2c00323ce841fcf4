"""The loaded model: prepare (source, verification), kind, load, and one call that samples one batch.

:class:`ModelExecutor` is the engine under every run: the runs themselves (in memory, to files,
sharded, on Ray) live above it, in :mod:`medhub.runs`. It knows the model's typed catalog spec
(:class:`~medhub.execution.spec.ModelSpec`) and its :class:`~medhub.execution.kinds.PackageKind`,
and asks them; it has no mode flags and returns one type per method.
"""

from __future__ import annotations

import logging
import os
import platform
import sys
import time
from collections.abc import Mapping, Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np

from .._paths import bundled
from ..errors import GenerationError, MedhubError, OutputSpecError, PackageError
from ..outputs.specs import OutputSpec, check_outputs, infer_specs, with_format
from ..validate import check_batch_size
from . import context
from .deps import ensure_dependencies, requirement_name
from .device import device_name, resolve_device
from .introspect import jsonable
from .kinds import PackageKind
from .pipeline import BatchStream
from .resolve import PackageResolver, ResolvedPackage, tree_digest, weights_path
from .spec import DEFAULT_BATCH_SIZE, ModelSpec
from .streams import cpu_streams, part_size

logger = logging.getLogger("medhub.execution")

__all__ = ["DEFAULT_BATCH_SIZE", "ModelExecutor"]


class ModelExecutor:
    """One model, loaded once. Created on the model's first use by :class:`~medhub.Generators` and
    kept, so the package is imported and its weights loaded only once.

    Example:
        >>> from medhub.config import ConfigManager
        >>> cm = ConfigManager()
        >>> ex = ModelExecutor("00101_DCGAN_BRAIN_MRI_T1", cm.get_config_by_id(101, "execution"), base_dir=cm.base_dir)
        >>> ex.kind.name, ex.spec.latent_size
        ('medhub/1', 100)
        >>> ex.sample_batch([0, 1], seed=0, device="cpu")["image"].shape
        (2, 64, 64)
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
        self.spec = ModelSpec.parse(model_id, execution_config)
        self.kind: PackageKind = self.spec.kind
        self.description = description or {}
        self.selection = selection or {}
        self.catalog_version = catalog_version
        self.package_path = package_path
        self.base_dir = Path(base_dir) if base_dir else None
        self.specs: list[OutputSpec] = list(self.spec.outputs)
        self._resolver = PackageResolver(Path(base_dir) if base_dir else bundled("models"), home)
        self._package: ResolvedPackage | None = None
        self._module: Any = None
        self._models: dict[str, Any] = {}
        self._amp: dict[str, Any] = {}

    # ------------------------------------------------------------------ prepare and load
    @property
    def interface(self) -> str:
        return self.kind.name

    @property
    def is_native(self) -> bool:
        """Whether sample i depends only on (seed, i) (the kind's ``native``)."""
        return self.kind.native

    @property
    def dependencies(self) -> list[str]:
        return list(self.spec.dependencies)

    @property
    def uses_torch(self) -> bool:
        return any(requirement_name(d) == "torch" for d in self.spec.dependencies)

    def prepare(self, install_dependencies: bool = False, trust_remote_code: bool = False) -> Any:
        """Check dependencies, fetch (remote), resolve and verify the package, and import it or bind
        its adapter (each once). ``trust_remote_code`` allows running a remote package that has no
        pinned sha256."""
        if self._module is None:
            ensure_dependencies(self.model_id, self.dependencies, install=install_dependencies)
            self._package = self._resolver.resolve(self.model_id, self.execution_config, self.package_path,
                                                   trust_remote_code, python=not self.kind.adapter)
            module = self.kind.bind(self._package, self.spec, self.execution_config, install_dependencies)
            missing = [n for n in self.kind.entry_points(self.spec.method_name) if not callable(getattr(module, n, None))]
            if missing:
                raise PackageError(
                    f"Model package {self.model_id} ({self.interface} interface) does not define {', '.join(missing)}(); "
                    "see docs/model-package.md for the contract."
                )
            self._module = module
        return self._module

    @property
    def package(self) -> ResolvedPackage | None:
        """The resolved package (None before :meth:`prepare`)."""
        return self._package

    @property
    def package_folder(self) -> Path:
        self.prepare()
        assert self._package is not None
        return self._package.folder

    @property
    def package_sha256(self) -> str:
        """The sha256 that pins the package: its archive's, or the digest of its folder."""
        package = self._package
        assert package is not None, "prepare() the executor first"
        return package.sha256 or tree_digest(package.folder)[0]

    @property
    def weights_path(self) -> Path:
        """Absolute path of the package's weights file."""
        return weights_path(self.package_folder, self.execution_config)

    def load(self, device: str = "cpu") -> Any:
        """Load the model of a native package on ``device`` (cached per device)."""
        module = self.prepare()
        if device not in self._models:
            started = time.perf_counter()
            try:
                model = module.load(str(self.weights_path), device)
                self._models[device] = context.apply_memory_format(model, self.memory_format(), self.model_id)
            except MedhubError:
                raise
            except Exception as exc:
                raise GenerationError(
                    f"Model {self.model_id}: load() failed on {device} with {type(exc).__name__}: {exc}"
                ) from exc
            logger.debug("%s loaded on %s in %.3fs", self.model_id, device, time.perf_counter() - started)
        return self._models[device]

    def memory_format(self) -> str:
        """The weights' layout: see :func:`medhub.execution.context.memory_format`."""
        return context.memory_format(self.spec.memory_format)

    def autocast_dtype(self, device: str) -> Any:
        """The torch dtype of mixed precision on ``device`` (cached), or None: see
        :func:`medhub.execution.context.autocast_dtype`."""
        if device not in self._amp:
            module = self.prepare() if str(device).startswith("cuda") else None
            self._amp[device] = context.autocast_dtype(self.spec.mixed_precision, module, device, self.model_id)
        return self._amp[device]

    # ------------------------------------------------------------------ inputs and arguments
    def inputs(self, install_dependencies: bool = False, trust_remote_code: bool = False) -> set[str] | None:
        """The names of the inputs the model takes, or None when it takes any name (the kind's
        :meth:`~medhub.execution.kinds.PackageKind.inputs`). Prepares the package."""
        return self.kind.inputs(self.prepare(install_dependencies, trust_remote_code), self.spec)

    def default_args(self) -> dict[str, Any]:
        """The catalog's default model arguments, as the package gets them."""
        return self.call_args(self.spec.custom_args)

    def call_args(self, args: Mapping[str, Any]) -> dict[str, Any]:
        """Arguments as the package gets them: paths in medigan's form ``models/<model_id>/...``
        (the catalog's defaults, or the user's own, as medigan's README writes them) point into
        this package's folder."""
        if self._package is None:
            return dict(args)
        return {k: self._package_relative(v) for k, v in args.items()}

    def _package_relative(self, value: Any) -> Any:
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

    def calls_once(self, inputs: Mapping[str, Any]) -> bool:
        """Whether a run with ``inputs`` is one package call (the kind's ``calls_once``)."""
        return self.kind.calls_once({**self.default_args(), **inputs})

    def per_sample_inputs(self, inputs: Mapping[str, Any], num_samples: int) -> dict[str, np.ndarray]:
        """The catalog's per-sample inputs among ``inputs``, as arrays of ``num_samples`` rows."""
        return self.spec.per_sample_rows(inputs, num_samples)

    # ------------------------------------------------------------------ sampling
    @property
    def thread_safe(self) -> bool:
        """Whether the catalog declares that ``sample`` may run in several threads at once on one
        loaded model (``generate_method.thread_safe``; native kinds only)."""
        return self.spec.thread_safe

    def cpu_streams(self, device: str = "cpu", requested: int | None = None) -> int:
        """How many package calls run at once on ``device`` (see :mod:`medhub.execution.streams`)."""
        return cpu_streams(self.thread_safe, device, requested)

    def default_batch_size(self) -> int:
        return self.spec.batch_size or DEFAULT_BATCH_SIZE

    def batches(self, indices: Sequence[int], seed: int, device: str = "auto", batch_size: int | None = None,
                cpu_streams: int | None = None, **inputs: Any) -> BatchStream:
        """The samples at run ``indices`` of the run seeded ``seed``, as a stream of checked batches
        (the one sample loop, :mod:`medhub.execution.pipeline`).

        Example:
            >>> from medhub.config import ConfigManager
            >>> from medhub.execution.ref import executor_for
            >>> stream = executor_for(ConfigManager(), 101).batches([3, 7], seed=0, device="cpu")
            >>> [b.arrays["image"].shape for b in stream]
            [(2, 64, 64)]
        """
        from .inputs import check_inputs

        self.prepare()
        check_inputs(self, inputs)
        device = resolve_device(device, self.uses_torch)
        streams = self.cpu_streams(device, cpu_streams)
        size = check_batch_size(batch_size) or self.default_batch_size()
        chunk = getattr(self._module, "CHUNK", None)  # a package's fixed block size: parts pad no more blocks
        chunk = chunk if isinstance(chunk, int) and not isinstance(chunk, bool) and chunk > 0 else None
        call_size = size if streams <= 1 else part_size(size, streams, chunk)
        if self.calls_once(inputs):
            call_size = max(1, len(indices))
        return BatchStream(self, indices, int(seed), device, call_size, streams, inputs)

    def sample_batch(self, indices: Sequence[int], seed: int, device: str = "cpu", **kwargs: Any) -> dict[str, np.ndarray]:
        """The checked arrays of the samples at ``indices`` of the run seeded ``seed``, in one package call."""
        (batch,) = self.batches(indices, seed, device, max(1, len(indices)), 1, **kwargs)
        return batch.arrays

    def call_package(self, indices: Sequence[int], seeds: Sequence[int], device: str,
                     inputs: Mapping[str, Any]) -> dict[str, np.ndarray]:
        """One call into the package for the samples at run ``indices`` with their ``seeds``; the
        outputs checked against the spec (inferred from this call when the catalog has none). A kind
        with ``own_count`` may return another number of samples (the sample loop numbers them)."""
        module = self.prepare()
        args = {**self.default_args(), **self.call_args(inputs)}
        seeds = list(seeds)
        try:
            model = self.load(device) if self.kind.native else None
            weights = "" if self.kind.native else str(self.weights_path)
            grad = self.kind.grad if self.spec.inference_mode else None
            with context.torch_context(grad, self.autocast_dtype(device)):
                raw = self.kind.call(model, module, self.spec, weights, indices, seeds, args)
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
        count = len(next(iter(raw.values()))) if self.kind.own_count and raw else len(seeds)
        return check_outputs(self.model_id, raw, self.specs, count)

    # ------------------------------------------------------------------ what a run records
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
        adapter = getattr(self._module, "provenance", None) if self.kind.adapter else None
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
