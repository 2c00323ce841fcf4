"""Samples as torch dataset items: the outputs of a batch -> ``{"sample": tensor, "mask": ..., "label": ...}``.

Images, masks and volumes become float32 tensors, channel first (``(C, H, W)``, volumes
``(C, D, H, W)``), scaled to [0, 1] from the outputs spec's ``range`` (or the integer dtype's
range; binary masks become 0/1); labels become 0-d tensors (strings stay strings).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from .outputs import OutputSpec


def item_keys(specs: Sequence[OutputSpec]) -> list[tuple[str, OutputSpec]]:
    """Item key of each output: the first image / volume is ``sample``, the first mask ``mask``,
    the first label ``label``; other outputs keep their names.

    Example:
        >>> from medhub.outputs import OutputSpec
        >>> specs = [OutputSpec("image", "image", (8, 8), "uint8"), OutputSpec("seg", "mask", (8, 8), "bool")]
        >>> [key for key, _ in item_keys(specs)]
        ['sample', 'mask']
    """
    firsts = {"image": "sample", "volume": "sample", "mask": "mask", "label": "label"}
    used: set[str] = set()
    out = []
    for spec in specs:
        key = firsts.get(spec.kind)
        if key is None or key in used:
            key = spec.name
            while key in used or key in ("sample", "mask", "label"):
                key = f"{key}_"
        used.add(key)
        out.append((key, spec))
    if out and "sample" not in used:  # no image: the first output is the sample
        out[0] = ("sample", out[0][1])
    return out


def _channel_last(spec: OutputSpec) -> bool:
    return bool(spec.channels) and len(spec.shape) >= 3 and spec.shape[-1] == spec.channels


def _scale_bounds(spec: OutputSpec, dtype: np.dtype) -> tuple[float, float] | None:
    """(lo, hi) mapped to (0, 1), or None to keep the values (bool, class-id masks, plain floats)."""
    if dtype == np.bool_:
        return None
    if spec.kind == "mask" and spec.values is not None:
        values = sorted(float(v) for v in spec.values)
        if len(values) == 2 and values[0] == 0 and values[1] > 0:
            return 0.0, values[1]
        return None  # multi-class mask: class ids as floats
    if spec.range is not None and spec.range[1] > spec.range[0]:
        return float(spec.range[0]), float(spec.range[1])
    if dtype.kind == "u":
        return 0.0, float(np.iinfo(dtype).max)
    return None


def convert_batch(arrays: Mapping[str, np.ndarray], specs: Sequence[OutputSpec], as_tensor: bool = True,
                  scale: bool = True) -> list[dict[str, Any]]:
    """Batch dict of the executor (batch-first numpy arrays) -> list of item dicts.

    Example:
        >>> from medhub.outputs import OutputSpec
        >>> spec = OutputSpec("image", "image", (2, 2), "uint8", range=(0, 255))
        >>> items = convert_batch({"image": np.full((3, 2, 2), 255, np.uint8)}, [spec])
        >>> len(items), tuple(items[0]["sample"].shape), float(items[0]["sample"].max())
        (3, (1, 2, 2), 1.0)
    """
    import torch

    columns: dict[str, Any] = {}
    n = None
    for key, spec in item_keys(specs):
        a = np.asarray(arrays[spec.name])
        n = len(a)
        if not as_tensor:
            columns[key] = [a[i] for i in range(n)]
        elif spec.kind == "label" or a.ndim == 1:
            columns[key] = a.tolist() if a.dtype.kind in "OUS" else torch.from_numpy(np.ascontiguousarray(a))
        else:
            t = torch.from_numpy(np.ascontiguousarray(a))
            t = t.movedim(-1, 1) if _channel_last(spec) else t.unsqueeze(1)
            t = t.to(torch.float32, memory_format=torch.contiguous_format)
            bounds = _scale_bounds(spec, a.dtype) if scale else None
            if bounds is not None:
                lo, hi = bounds
                if lo:
                    t.sub_(lo)
                t.div_(hi - lo)
            columns[key] = t
    return [{key: col[i] for key, col in columns.items()} for i in range(n or 0)]
