"""Adapters: package kinds that are not Python packages, run through the ``medhub/1`` contract.

A ``diffusers`` pipeline or a MONAI bundle (``execution.interface`` ``"diffusers"`` or
``"monai-bundle"``) has no ``__init__.py`` of medhub's contract. The executor binds an adapter to
the package's verified folder instead of importing it; the adapter has the two functions of a
native package, ``load(weights_path, device)`` and ``sample(model, seeds, **inputs)`` returning
batch-first numpy arrays where sample ``i`` depends only on ``seeds[i]`` and the inputs. Everything
else (outputs spec, files, provenance, the DataLoader, shards, Ray) is what native packages get.

Nothing heavy is imported here: diffusers, MONAI and torch are imported when a model is loaded.

Example:
    >>> allow_patterns("diffusers", {})[:2]
    ['model_index.json', '*.json']
    >>> required_files("monai-bundle", {})
    ['configs/metadata.json']
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ...errors import PackageError
from .diffusers_kind import DIFFUSERS_PATTERNS, DiffusersAdapter
from .monai_bundle import BUNDLE_PATTERNS, MonaiBundleAdapter

#: The package kinds run by adapters (``execution.interface``).
ADAPTER_INTERFACES = ("diffusers", "monai-bundle")

__all__ = ["ADAPTER_INTERFACES", "DiffusersAdapter", "MonaiBundleAdapter", "allow_patterns", "bind_adapter",
           "required_files"]


def allow_patterns(interface: str, execution: Mapping[str, Any]) -> list[str]:
    """The files of a Hub repository a package kind needs: ``execution.allow_patterns``, else the kind's own."""
    given = execution.get("allow_patterns")
    if given:
        return [str(p) for p in given]
    if interface == "diffusers":
        return list(DIFFUSERS_PATTERNS)
    if interface == "monai-bundle":
        return list(BUNDLE_PATTERNS)
    return ["*"]


def required_files(interface: str, execution: Mapping[str, Any]) -> list[str]:
    """Files without which a package of this kind cannot run (checked after download)."""
    if interface == "diffusers":
        return ["model_index.json"]
    if interface == "monai-bundle":
        return ["configs/metadata.json"]
    return []


def bind_adapter(interface: str, model_id: str, folder: Path, execution: Mapping[str, Any],
                 files: Mapping[str, str] | None = None, install: bool = False) -> Any:
    """The adapter of ``interface`` bound to a package ``folder`` (a verified snapshot, or the user's own).

    ``files`` (path -> sha256 of the verified tree) lets the MONAI adapter import a bundle's
    ``scripts`` through medhub's verifying loader; ``install`` lets it install the bundle's
    required packages (as ``install_dependencies=True``).
    """
    if interface == "diffusers":
        return DiffusersAdapter(model_id, Path(folder), execution)
    if interface == "monai-bundle":
        return MonaiBundleAdapter(model_id, Path(folder), execution, files, install)
    raise PackageError(f"Model {model_id}: no adapter runs the package interface {interface!r}.")
