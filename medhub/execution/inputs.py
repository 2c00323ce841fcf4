"""The one check that refuses a misspelt model input before any work.

Which inputs a model takes is answered once, by its package kind
(:meth:`medhub.execution.kinds.PackageKind.inputs`, asked through ``executor.inputs()``): what its
catalog entry declares (default arguments, per-sample inputs, ``latent`` when it has a latent
vector size) and what its package names (``sample``'s parameters, an adapter's ``input_names()``,
or a medigan generate function's parameters; one that also takes ``**kwargs`` takes any name).

:func:`check_inputs` is called by every path that runs a model with the user's inputs
(``Generators.generate``, the datasets and DataLoaders, ``medhub generate``, ``grid`` and ``report``)
before it generates anything.

Example:
    >>> from medhub.config import ConfigManager
    >>> from medhub.execution.ref import executor_for
    >>> executor = executor_for(ConfigManager(), 101)
    >>> sorted(executor.inputs())
    ['latent']
    >>> check_inputs(executor, {"laten": 1})
    Traceback (most recent call last):
    ...
    medhub.errors.InvalidArgumentError: Model 00101_DCGAN_BRAIN_MRI_T1 takes no input 'laten' (did you mean 'latent'?); its inputs: latent.
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping
from typing import Any, Protocol

from ..errors import InvalidArgumentError


class TakesInputs(Protocol):
    """What :func:`check_inputs` asks of a model (a :class:`~medhub.execution.ModelExecutor`)."""

    model_id: str

    def inputs(self, install_dependencies: bool = False, trust_remote_code: bool = False) -> set[str] | None: ...


def check_inputs(executor: TakesInputs, inputs: Mapping[str, Any], option: str = "",
                 install_dependencies: bool = False, trust_remote_code: bool = False) -> None:
    """Refuse an input name the model does not take, naming the closest one and every one it takes.

    ``option``: the command-line option the inputs came from (``"--arg"``), named in the message.
    Raises :class:`~medhub.errors.InvalidArgumentError`; nothing when ``inputs`` is empty or the
    model takes any name.
    """
    if not inputs:
        return
    known = executor.inputs(install_dependencies, trust_remote_code)
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
