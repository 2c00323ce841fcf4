"""A model's catalog entry, execution part, parsed once into a typed, frozen :class:`ModelSpec`.

Every part of medhub that needs to know how a model runs (its package kind, generate function,
default and per-sample inputs, latent size, batch size, memory layout, mixed precision, grad mode,
thread safety) asks the spec; nothing reads ``execution.generate_method`` by hand. A bad value
gives one :class:`~medhub.errors.PackageError` line that names the field to fix.

Example:
    >>> spec = ModelSpec.parse("00101_X", {"interface": "medhub/1", "generate_method": {
    ...     "args": {"custom": {"condition": 1}}, "input_latent_vector_size": 100, "batch_size": 16}})
    >>> spec.kind.name, spec.batch_size, sorted(spec.declared_inputs)
    ('medhub/1', 16, ['condition', 'latent'])
    >>> ModelSpec.parse("00101_X", {"generate_method": {"memory_format": "nhwc"}})
    Traceback (most recent call last):
    ...
    medhub.errors.PackageError: Model 00101_X: execution.generate_method.memory_format must be one of ('contiguous', 'channels_last'), not 'nhwc'.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..errors import InvalidArgumentError, PackageError
from ..outputs import OutputSpec, parse_specs
from .context import AMP_DTYPES
from .kinds import PackageKind, kind_of

#: Weight layouts a package may declare in ``memory_format``.
MEMORY_FORMATS = ("contiguous", "channels_last")
DEFAULT_BATCH_SIZE = 32


@dataclass(frozen=True)
class ModelSpec:
    """How a model runs, as its catalog entry (``execution``) says; made by :meth:`parse`."""

    model_id: str
    kind: PackageKind
    method_name: str = "generate"
    custom_args: Mapping[str, Any] = field(default_factory=dict)
    per_sample_inputs: tuple[str, ...] = ()
    latent_size: int | None = None
    batch_size: int | None = None  # the catalog's; runs default to DEFAULT_BATCH_SIZE
    memory_format: str = "contiguous"
    mixed_precision: bool | str | None = None
    inference_mode: bool = True
    thread_safe: bool = False
    dependencies: tuple[str, ...] = ()
    outputs: tuple[OutputSpec, ...] = ()

    @property
    def interface(self) -> str:
        return self.kind.name

    @property
    def declared_inputs(self) -> set[str]:
        """The inputs the catalog declares: default arguments, per-sample inputs, and ``latent`` for
        a model with a latent vector size."""
        return set(self.custom_args) | set(self.per_sample_inputs) | ({"latent"} if self.latent_size else set())

    @classmethod
    def parse(cls, model_id: str, execution: Mapping[str, Any]) -> ModelSpec:
        """The spec of ``execution`` (a catalog entry's ``execution`` object)."""
        method = execution.get("generate_method") or {}
        if not isinstance(method, Mapping):
            raise _bad(model_id, "", "an object", method)
        custom = (method.get("args") or {}).get("custom") or {}
        if not isinstance(custom, Mapping):
            raise _bad(model_id, ".args.custom", "an object", custom)
        latent = method.get("input_latent_vector_size")
        if latent is not None and (isinstance(latent, bool) or not isinstance(latent, int) or latent <= 0):
            raise _bad(model_id, ".input_latent_vector_size", "a positive integer", latent)
        batch = method.get("batch_size")
        if batch is not None and (isinstance(batch, bool) or not isinstance(batch, int) or batch <= 0):
            raise _bad(model_id, ".batch_size", "a positive integer", batch)
        memory = method.get("memory_format") or "contiguous"
        if memory not in MEMORY_FORMATS:
            raise _bad(model_id, ".memory_format", f"one of {MEMORY_FORMATS}", memory)
        amp = method.get("mixed_precision")
        if amp not in (None, True, False, *AMP_DTYPES):
            raise _bad(model_id, ".mixed_precision", f"true, false or one of {AMP_DTYPES}", amp)
        flags = {}
        for name in ("inference_mode", "thread_safe"):
            value = method.get(name, name == "inference_mode")
            if not isinstance(value, bool):
                raise _bad(model_id, f".{name}", "true or false", value)
            flags[name] = value
        kind = kind_of(str(execution.get("interface", "medigan")), model_id)
        return cls(model_id, kind, str(method.get("name") or "generate"), dict(custom),
                   tuple(method.get("per_sample_inputs") or ()), latent, batch, str(memory), amp,
                   flags["inference_mode"], flags["thread_safe"] and kind.native,
                   tuple(execution.get("dependencies") or ()), tuple(parse_specs(execution.get("outputs"))))

    def per_sample_rows(self, inputs: Mapping[str, Any], num_samples: int) -> dict[str, np.ndarray]:
        """The per-sample inputs of ``inputs`` as arrays of ``num_samples`` rows. A scalar
        (``condition="WM"``) applies to every sample and is left out (passed to every call unchanged)."""
        out = {}
        for name in self.per_sample_inputs:
            if inputs.get(name) is None:
                continue
            value = np.asarray(inputs[name])
            if value.ndim == 0:
                continue
            if value.shape[0] != num_samples:
                raise InvalidArgumentError(f"Input {name!r} of {self.model_id} needs one row per sample: shape "
                                           f"({num_samples}, ...), not {value.shape}.")
            if value.dtype.kind in "fc" and not np.isfinite(value).all():
                raise InvalidArgumentError(f"Input {name!r} of {self.model_id} holds NaN or infinite values; give "
                                           "finite numbers.")
            out[name] = value
        return out


def _bad(model_id: str, where: str, want: str, value: Any) -> PackageError:
    return PackageError(f"Model {model_id}: execution.generate_method{where} must be {want}, not {value!r}.")
