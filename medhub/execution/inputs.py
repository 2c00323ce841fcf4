"""The inputs a model takes, and the one check that refuses a misspelt one before any work.

A model takes the inputs its catalog entry declares (``execution.generate_method``: ``args.custom``,
``per_sample_inputs``, and ``latent`` when it has ``input_latent_vector_size``) and

* ``medhub/1`` packages: the named parameters of the package's ``sample`` (its ``**kwargs``, if any,
  declare nothing: the contract asks a package to name its inputs);
* ``diffusers`` and ``monai-bundle`` models: the names their adapter lists (``input_names()``);
* medigan packages: the named parameters of the generate function. One that also takes
  ``**kwargs`` takes any name, as it does under medigan: nothing is refused.

:func:`check_inputs` is called by every path that runs a model with the user's inputs
(``Generators.generate``, the datasets and DataLoaders, ``medhub generate``, ``grid`` and ``report``)
before it generates anything.

Example:
    >>> from medhub.config import ConfigManager
    >>> from medhub.execution.ref import executor_for
    >>> executor = executor_for(ConfigManager(), 101)
    >>> sorted(known_inputs(executor))
    ['latent']
    >>> check_inputs(executor, {"laten": 1})
    Traceback (most recent call last):
    ...
    medhub.errors.InvalidArgumentError: Model 00101_DCGAN_BRAIN_MRI_T1 takes no input 'laten' (did you mean 'latent'?); its inputs: latent.
"""

from __future__ import annotations

import difflib
import inspect
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from ..errors import InvalidArgumentError

if TYPE_CHECKING:  # pragma: no cover
    from .executor import ModelExecutor

#: Parameters medhub fills itself, never user inputs.
NATIVE_RESERVED = frozenset({"model", "seeds", "indices"})
MEDIGAN_RESERVED = frozenset({"model_file", "num_samples", "output_path", "save_images"})


def _signature(function: Callable[..., Any] | None) -> tuple[list[str], bool]:
    """The named parameters of ``function`` and whether it takes ``**kwargs``."""
    try:
        params = list(inspect.signature(function).parameters.values())  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return [], False
    named = [p.name for p in params if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)]
    return named, any(p.kind is p.VAR_KEYWORD for p in params)


def known_inputs(executor: ModelExecutor, install_dependencies: bool = False,
                 trust_remote_code: bool = False) -> set[str] | None:
    """The names of the inputs ``executor``'s model takes, or None when it takes any name (a medigan
    generate function with ``**kwargs``). Prepares (imports) the package if it is not yet."""
    method = executor.execution_config.get("generate_method", {}) or {}
    known = set((method.get("args", {}) or {}).get("custom", {}) or {}) | set(method.get("per_sample_inputs", []))
    if method.get("input_latent_vector_size"):
        known.add("latent")
    module = executor.prepare(install_dependencies, trust_remote_code)
    adapter_inputs = getattr(module, "input_names", None)  # pipelines and bundles (medhub.execution.adapters)
    if executor.interface != "medigan" and callable(adapter_inputs):
        return known | set(adapter_inputs())
    if executor.is_native:
        named, _ = _signature(getattr(module, "sample", None))
        return known | (set(named) - NATIVE_RESERVED)
    named, any_name = _signature(getattr(module, executor.generate_method_name, None))
    return None if any_name else known | (set(named) - MEDIGAN_RESERVED)


def check_inputs(executor: ModelExecutor, inputs: Mapping[str, Any], option: str = "",
                 install_dependencies: bool = False, trust_remote_code: bool = False) -> None:
    """Refuse an input name the model does not take, naming the closest one and every one it takes.

    ``option``: the command-line option the inputs came from (``"--arg"``), named in the message.
    Raises :class:`~medhub.errors.InvalidArgumentError`; nothing when ``inputs`` is empty or the
    model takes any name.
    """
    if not inputs:
        return
    known = known_inputs(executor, install_dependencies, trust_remote_code)
    if known is None:
        return
    for name in inputs:
        if name in known:
            continue
        close = difflib.get_close_matches(name, sorted(known), n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        takes = ", ".join(sorted(known)) or "none"
        where = f"{option} {name}: model" if option else "Model"
        raise InvalidArgumentError(f"{where} {executor.model_id} takes no input {name!r}{hint}; its inputs: {takes}.")
