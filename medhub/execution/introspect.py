"""A run's arguments as plain JSON for ``provenance.json``."""

from __future__ import annotations

import os
from typing import Any

import numpy as np


def jsonable(value: Any) -> Any:
    """``value`` as plain JSON for ``provenance.json``: paths as text, arrays by their shape and
    dtype, other objects by their ``repr``.

    Example:
        >>> jsonable({"n": 1, "x": np.zeros((2, 3))})
        {'n': 1, 'x': '<array shape=(2, 3) dtype=float64>'}
    """
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    if isinstance(value, np.ndarray):
        return f"<array shape={value.shape} dtype={value.dtype}>"
    return repr(value)
