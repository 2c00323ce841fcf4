"""A run's marks as the loaded model knows them: the shared part of its sample records.

Every way of writing a run (``generate``, shards, Ray) builds its :class:`~medhub.outputs.marks.Marker`
here, from the model's executor, so the records agree whichever way the files were made. See
:mod:`medhub.outputs.marks` for what the records hold and where each format keeps them.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ..outputs.marks import MARK, Marker, creation_time, device_class, plain_input
from .tree import file_sha256, tree_digest

if TYPE_CHECKING:  # pragma: no cover
    from .executor import ModelExecutor


def path_digest(path: str | os.PathLike[str]) -> str:
    """``sha256:...`` of an input file, or the tree digest of an input folder (as packages are digested)."""
    p = Path(path)
    return f"sha256:{tree_digest(p)[0] if p.is_dir() else file_sha256(p)}"


def input_sources(args: Mapping[str, Any]) -> dict[str, str]:
    """Digests of the files and folders a model's arguments name: an argument whose name holds
    ``path`` (e.g. ``input_path``) and whose value is an existing path."""
    return {k: path_digest(v) for k, v in args.items()
            if "path" in k.lower() and isinstance(v, (str, os.PathLike)) and str(v) and Path(v).exists()}


def run_arguments(executor: ModelExecutor, inputs: Mapping[str, Any]) -> dict[str, Any]:
    """The run's model arguments as the package gets them (catalog defaults, then the user's)."""
    return {**executor.default_args(), **executor.call_args(inputs)}


def run_signing(sign: Any = None) -> Any:
    """The C2PA signing key of a run: ``sign`` (key, certificate chain), else ``MEDHUB_SIGN_KEY`` and
    ``MEDHUB_SIGN_CERT``, else None; checked now, so that a bad key fails before any work."""
    from .. import settings

    if sign is None and (settings.get("MEDHUB_SIGN_KEY") or settings.get("MEDHUB_SIGN_CERT")):
        sign = (settings.get("MEDHUB_SIGN_KEY"), settings.get("MEDHUB_SIGN_CERT"))
    if sign is None:
        return None
    from ..errors import InvalidArgumentError
    from ..outputs.credentials import Signing

    if isinstance(sign, Signing):  # checked already
        return sign
    if not isinstance(sign, (tuple, list)) or len(sign) != 2 or not all(sign):
        raise InvalidArgumentError("sign takes (key file, certificate file): both a PEM signing key and its "
                                   "certificate chain (MEDHUB_SIGN_KEY and MEDHUB_SIGN_CERT together).")
    signing = Signing(os.fspath(sign[0]), os.fspath(sign[1]))
    signing.check()
    return signing


def run_marker(executor: ModelExecutor, seed: int, device: str, inputs: Mapping[str, Any],
               created: str | None = None, sign: Any = None) -> Marker:
    """The marker of a run of ``executor`` (prepared) seeded ``seed`` on ``device`` with model
    ``inputs``; ``created`` defaults to :func:`~medhub.outputs.marks.creation_time` (taken now, once);
    ``sign``: see :func:`run_signing`."""
    defaults = dict(executor.spec.custom_args)  # as the catalog writes them
    per_sample = set(executor.spec.per_sample_inputs)
    recorded = {k: v for k, v in {**defaults, **inputs}.items()
                if not (k in per_sample and v is not None and np.ndim(v) > 0)}  # those go per sample
    package = executor.package
    run = {"model_id": executor.model_id, "model_version": executor.description.get("version"),
           "package_digest": f"sha256:{executor.package_sha256}",
           "commit": package.folder.name if package is not None and package.source == "hub" else None,
           "seed": int(seed), "inputs": plain_input(recorded), "device": device_class(device),
           "created": created or creation_time()}
    return Marker(run, input_sources(run_arguments(executor, inputs)), run_signing(sign))


def mark_provenance(marker: Marker | None) -> dict[str, Any]:
    """What ``provenance.json`` says about the marks: their kind and time, or ``"mark": false``."""
    if marker is None:
        return {"mark": False}
    return {"mark": MARK, "mark_created": marker.run["created"], "c2pa_signed": marker.signing is not None}
