"""The package kinds medhub runs, in one table: :data:`KINDS`, one :class:`PackageKind` per
``execution.interface`` (``medhub/1``, ``medigan``, ``diffusers``, ``monai-bundle``).

Each kind says how its package is loaded (imported through medhub's verifying loader, or bound to
an adapter), how it is called for one batch, which inputs it takes, and its quirks:

* ``native``: sample i depends only on (seed, i), so runs may be sharded, spread over Ray workers
  or DataLoader workers, and samples verified one by one (``medhub/1`` and the adapter kinds);
* ``own_count``: the package may return another number of samples than asked (medigan's
  ``translate_all_images``, fewer inputs than samples); the sample loop numbers what it returned;
* ``calls_once_on_paths``: a run whose arguments name input files is one call (medigan);
* ``grad``: the grad mode of a call (``"inference"``: ``torch.inference_mode``; ``"no_grad"`` for
  medigan packages, which may build and keep modules inside ``generate``).

Example:
    >>> [(k.name, k.native, k.adapter) for k in KINDS.values()]
    [('medhub/1', True, False), ('medigan', False, False), ('diffusers', True, True), ('monai-bundle', True, True)]
    >>> kind_of("onnx", "00101_X")
    Traceback (most recent call last):
    ...
    medhub.errors.PackageError: Model 00101_X: unknown package interface 'onnx'; medhub runs ('medhub/1', 'medigan', 'diffusers', 'monai-bundle').
"""

from __future__ import annotations

import inspect
import random
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import numpy as np

from ..errors import PackageError
from ..outputs.specs import from_samples
from .context import to_host
from .loader import import_resolved

#: Parameters medhub fills itself, never user inputs.
NATIVE_RESERVED = frozenset({"model", "seeds", "indices"})
MEDIGAN_RESERVED = frozenset({"model_file", "num_samples", "output_path", "save_images"})
#: What a diffusers pipeline needs from its Hub repository.
DIFFUSERS_PATTERNS = ("model_index.json", "*.json", "*.safetensors", "*.txt", "*.model", "LICENSE*", "README.md")
#: What a MONAI bundle needs from its repository: configs, weights (not TorchScript or TensorRT), scripts.
BUNDLE_PATTERNS = ("configs/*", "models/*.pt", "models/*.pth", "models/*.safetensors", "scripts/*.py",
                   "scripts/**/*.py", "LICENSE*", "docs/README.md", "README.md")


def signature(function: Callable[..., Any] | None) -> tuple[frozenset[str], bool]:
    """The named parameters of ``function`` and whether it takes ``**kwargs`` (read once per function)."""
    try:
        return _signature(function)
    except TypeError:  # an unhashable callable
        return _signature.__wrapped__(function)


@lru_cache(maxsize=256)
def _signature(function: Callable[..., Any] | None) -> tuple[frozenset[str], bool]:
    try:
        params = list(inspect.signature(function).parameters.values())  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return frozenset(), False
    named = frozenset(p.name for p in params if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY))
    return named, any(p.kind is p.VAR_KEYWORD for p in params)


# ---------------------------------------------------------------------------- how each kind is called
def _sample(model: Any, module: Any, spec: Any, weights: str, indices: Sequence[int], seeds: list[int],
            args: dict[str, Any]) -> Any:
    """``medhub/1`` and adapters: ``sample(model, seeds, **inputs)`` (with ``indices`` when it takes them)."""
    if "indices" in signature(module.sample)[0]:
        args = {**args, "indices": [int(i) for i in indices]}
    return to_host(module.sample(model, seeds, **args))


def _generate(model: Any, module: Any, spec: Any, weights: str, indices: Sequence[int], seeds: list[int],
              args: dict[str, Any]) -> Any:
    """medigan: the global random state seeded from the first sample's seed, then its generate function."""
    random.seed(seeds[0])
    np.random.seed(seeds[0] % 2**32)
    if "torch" in sys.modules:
        sys.modules["torch"].manual_seed(seeds[0])
    result = getattr(module, spec.method_name)(model_file=weights, num_samples=len(seeds), output_path=None,
                                               save_images=False, **args)
    return from_samples(result, spec.outputs, spec.model_id)


# ---------------------------------------------------------------------------- which inputs each kind takes
def _sample_inputs(module: Any, spec: Any) -> set[str] | None:
    return set(signature(getattr(module, "sample", None))[0] - NATIVE_RESERVED)


def _adapter_inputs(module: Any, spec: Any) -> set[str] | None:
    return set(module.input_names())


def _generate_inputs(module: Any, spec: Any) -> set[str] | None:
    named, any_name = signature(getattr(module, spec.method_name, None))
    return None if any_name else set(named - MEDIGAN_RESERVED)


# ---------------------------------------------------------------------------- how each kind is loaded
def _import(package: Any, spec: Any, execution: Mapping[str, Any], install: bool) -> Any:
    return import_resolved(package, spec.model_id)


def _diffusers(package: Any, spec: Any, execution: Mapping[str, Any], install: bool) -> Any:
    from .adapters.diffusers_kind import DiffusersAdapter  # imported when a pipeline runs

    return DiffusersAdapter(spec.model_id, package.folder, execution)


def _bundle(package: Any, spec: Any, execution: Mapping[str, Any], install: bool) -> Any:
    from .adapters.monai_bundle import MonaiBundleAdapter  # imported when a bundle runs

    return MonaiBundleAdapter(spec.model_id, package.folder, execution, package.files, install,
                              defaults=spec.custom_args)


@dataclass(frozen=True)
class PackageKind:
    """One package kind: see the module's text for the fields."""

    name: str
    native: bool
    adapter: bool
    #: ``bind(package, spec, execution, install)`` -> the module-like object with the entry points.
    bind: Callable[[Any, Any, Mapping[str, Any], bool], Any]
    #: ``call(model, module, spec, weights, indices, seeds, args)`` -> one batch, raw.
    call: Callable[..., Any]
    #: ``package_inputs(module, spec)`` -> the input names the package itself takes, None for any name.
    package_inputs: Callable[[Any, Any], set[str] | None]
    own_count: bool = False
    calls_once_on_paths: bool = False
    grad: str = "inference"
    allow_patterns: tuple[str, ...] = ("*",)
    required_files: tuple[str, ...] = ()
    #: Adapter kinds: what a catalog entry drafted from the Hub depends on, and its selection tag.
    hub_dependencies: tuple[str, ...] = ()
    hub_tag: str = ""

    def entry_points(self, method_name: str) -> tuple[str, ...]:
        """The functions a package of this kind must define (``method_name``: the catalog's generate function)."""
        return ("load", "sample") if self.native else (method_name,)

    def inputs(self, module: Any, spec: Any) -> set[str] | None:
        """The one answer to "which inputs does this model take": what the catalog declares
        (:attr:`~medhub.execution.spec.ModelSpec.declared_inputs`) and what the package names, or
        None when it takes any name (a medigan generate function with ``**kwargs``)."""
        own = self.package_inputs(module, spec)
        return None if own is None else spec.declared_inputs | own

    def calls_once(self, args: Mapping[str, Any]) -> bool:
        """Whether a run with ``args`` is one package call: for kinds called as medigan calls them,
        when an argument names input files or folders (``...path...`` / ``...input...`` with a
        value, e.g. ``input_path``), so every input is used once, in order."""
        return self.calls_once_on_paths and any(
            v not in (None, False, "", []) and ("path" in k.lower() or "input" in k.lower()) for k, v in args.items())


KINDS: dict[str, PackageKind] = {k.name: k for k in (
    PackageKind("medhub/1", native=True, adapter=False, bind=_import, call=_sample, package_inputs=_sample_inputs),
    PackageKind("medigan", native=False, adapter=False, bind=_import, call=_generate, package_inputs=_generate_inputs,
                own_count=True, calls_once_on_paths=True, grad="no_grad"),
    PackageKind("diffusers", native=True, adapter=True, bind=_diffusers, call=_sample, package_inputs=_adapter_inputs,
                allow_patterns=DIFFUSERS_PATTERNS, required_files=("model_index.json",),
                hub_dependencies=("torch>=2.1", "diffusers>=0.35", "huggingface_hub>=0.36"), hub_tag="diffusers"),
    PackageKind("monai-bundle", native=True, adapter=True, bind=_bundle, call=_sample, package_inputs=_adapter_inputs,
                allow_patterns=BUNDLE_PATTERNS, required_files=("configs/metadata.json",),
                hub_dependencies=("torch>=2.1", "monai>=1.4", "einops>=0.7", "huggingface_hub>=0.36"),
                hub_tag="MONAI bundle"),
)}


def kind_of(interface: str, model_id: str = "the model") -> PackageKind:
    """The kind of ``execution.interface``; a :class:`~medhub.errors.PackageError` for an unknown one."""
    kind = KINDS.get(interface)
    if kind is None:
        raise PackageError(f"Model {model_id}: unknown package interface {interface!r}; medhub runs {tuple(KINDS)}.")
    return kind


def allow_patterns(interface: str, execution: Mapping[str, Any]) -> list[str]:
    """The files of a Hub repository a package kind needs: ``execution.allow_patterns``, else the kind's own."""
    given = execution.get("allow_patterns")
    kind = KINDS.get(interface)
    return [str(p) for p in given] if given else list(kind.allow_patterns if kind else ("*",))


def required_files(interface: str, execution: Mapping[str, Any]) -> list[str]:
    """Files without which a package of this kind cannot run (checked after download)."""
    kind = KINDS.get(interface)
    return list(kind.required_files if kind else ())
