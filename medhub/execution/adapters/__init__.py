"""Adapters: package kinds that are not Python packages, run through the ``medhub/1`` contract.

A ``diffusers`` pipeline or a MONAI bundle (``execution.interface`` ``"diffusers"`` or
``"monai-bundle"``) has no ``__init__.py`` of medhub's contract. The executor binds an adapter to
the package's verified folder instead of importing it (the kind's ``bind`` in
:data:`medhub.execution.kinds.KINDS`, which also lists each kind's Hub file patterns); the adapter
has the two functions of a native package, ``load(weights_path, device)`` and
``sample(model, seeds, **inputs)`` returning batch-first numpy arrays where sample ``i`` depends
only on ``seeds[i]`` and the inputs. Everything else (outputs spec, files, provenance, the
DataLoader, shards, Ray) is what native packages get.

Nothing heavy is imported here: diffusers, MONAI and torch are imported when a model is loaded.
"""

from __future__ import annotations

from .diffusers_kind import DiffusersAdapter
from .monai_bundle import MonaiBundleAdapter

__all__ = ["DiffusersAdapter", "MonaiBundleAdapter"]
