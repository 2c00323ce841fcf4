"""Shared by the adapters: optional imports with the install command, per-sample seeding, and the conversion of a generator's float batch into the arrays of the outputs spec.

Example:
    >>> import numpy as np
    >>> batch = np.array([[[[0.0, 0.5], [1.0, 2.0]]]], dtype=np.float32)   # (N=1, C=1, 2, 2) in [0, 1]
    >>> to_outputs(batch, [], (0.0, 1.0))["image"].tolist()
    [[[0, 128], [255, 255]]]
"""

from __future__ import annotations

import importlib
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from ...errors import DependencyError

if TYPE_CHECKING:  # pragma: no cover
    from ...outputs import OutputSpec

#: The extras that bring each optional library.
EXTRAS = {"diffusers": "hf", "huggingface_hub": "hf", "monai": "monai", "einops": "monai"}


def require(module: str, model_id: str, kind: str) -> Any:
    """Import ``module`` or raise :class:`DependencyError` with the exact install command."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        root = module.split(".")[0]
        extra = EXTRAS.get(root)
        command = f"pip install 'medhub[{extra}]'" if extra else f"pip install {root}"
        raise DependencyError(f"Model {model_id} ({kind}) needs {root}, which cannot be imported ({exc}). Install it "
                              f"with:\n    {command}", requirements=[root]) from None


def library_versions(*names: str) -> dict[str, str | None]:
    """The installed versions of the distributions ``names`` (None when one is not installed).

    Example:
        >>> library_versions("numpy")["numpy"] == np.__version__
        True
    """
    from importlib import metadata

    out: dict[str, str | None] = {}
    for name in names:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = None
    return out


def generators(seeds: Sequence[int]) -> list[Any]:
    """One CPU ``torch.Generator`` per sample, seeded with the sample's seed (so noise does not depend
    on the device, the batch or the other samples)."""
    import torch

    return [torch.Generator(device="cpu").manual_seed(int(seed) % 2**64) for seed in seeds]


def _scale(x: np.ndarray, lo: float, hi: float, dtype: np.dtype) -> np.ndarray:
    top = float(np.iinfo(dtype).max)
    unit = np.clip((x.astype(np.float64) - lo) / (hi - lo if hi != lo else 1.0), 0.0, 1.0)
    return np.round(unit * top).astype(dtype)


def to_outputs(batch: np.ndarray, specs: Sequence[OutputSpec], source_range: tuple[float, float],
               channels_last: bool = False) -> dict[str, np.ndarray]:
    """A generator's float batch as the arrays of the (first) output of the spec.

    ``batch`` is ``(N, C, *spatial)`` (``(N, *spatial, C)`` with ``channels_last``), with values in
    ``source_range``. One channel is dropped; 3 or 4 channels of a 2D image go last, or are averaged
    into grey when the spec declares a 2D image. Integer dtypes are scaled from ``source_range`` to
    their full range; float dtypes keep the values, clipped to the spec's ``range`` (else
    ``source_range``). Without a spec: ``image`` (2D, uint8) or ``volume`` (3D, float32).
    """
    arr = np.asarray(batch)
    if channels_last:
        arr = np.moveaxis(arr, -1, 1)
    spec = specs[0] if specs else None
    channels = arr.shape[1]
    spatial = arr.shape[2:]
    if channels == 1:
        arr = arr[:, 0]
    elif spec is not None and tuple(spec.shape) == tuple(spatial):
        arr = arr.mean(axis=1)  # a grey image stored in three channels
    else:
        arr = np.moveaxis(arr, 1, -1)
    name = spec.name if spec else ("image" if len(spatial) <= 2 else "volume")
    dtype = np.dtype(spec.dtype) if spec else np.dtype(np.uint8 if len(spatial) <= 2 else np.float32)
    lo, hi = (float(v) for v in source_range)
    if dtype.kind in "ui":
        return {name: _scale(arr, lo, hi, dtype)}
    window = spec.range if spec is not None and spec.range is not None else (lo, hi)
    return {name: np.clip(arr, window[0], window[1]).astype(dtype)}
