"""Synthetic training sets in the folder layouts training frameworks read (``medhub dataset``).

* :mod:`~medhub.datasets.plan`: models and counts, conditions, the split, the per-sample record;
* :mod:`~medhub.datasets.build`: the build (staging, shards, publication) and :func:`export_dataset`;
* one module per layout: :mod:`~medhub.datasets.nnunet` (nnU-Net v2), :mod:`~medhub.datasets.monai`
  (decathlon datalist), :mod:`~medhub.datasets.hf` (``datasets`` imagefolder),
  :mod:`~medhub.datasets.folder` (images, masks and a CSV);
* :mod:`~medhub.datasets.card` (the dataset card), :mod:`~medhub.datasets.real` (``--add-real``),
  :mod:`~medhub.datasets.command` (the ``medhub dataset`` command).

Use it through :meth:`medhub.Generators.export_dataset` or ``medhub dataset``. The names below are
imported on first use, so that the ``medhub`` command's parser (which imports
:mod:`~medhub.datasets.command`) stays free of numpy.
"""

from __future__ import annotations

from typing import Any

__all__ = ["LAYOUTS", "DatasetBuild", "export_dataset"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        from . import build

        return getattr(build, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
