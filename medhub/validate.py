"""Checks of user arguments, in one place: each bad value gives one line that says what to fix.

Example:
    >>> check_num_samples(3)
    3
    >>> check_num_samples(0)
    Traceback (most recent call last):
    ...
    medhub.errors.InvalidArgumentError: num_samples must be a positive integer, not 0.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .errors import InvalidArgumentError


def memory_bytes() -> int | None:
    """This machine's physical memory in bytes, where the platform tells it."""
    import os

    try:
        return int(os.sysconf("SC_PAGE_SIZE")) * int(os.sysconf("SC_PHYS_PAGES"))
    except (AttributeError, ValueError, OSError):  # pragma: no cover - not POSIX
        return None


def _is_int(value: Any) -> bool:
    return not isinstance(value, bool) and isinstance(value, (int, np.integer))


def check_num_samples(num_samples: Any) -> int:
    """A positive integer number of samples."""
    if not _is_int(num_samples) or num_samples <= 0:
        raise InvalidArgumentError(f"num_samples must be a positive integer, not {num_samples!r}.")
    return int(num_samples)


def check_batch_size(batch_size: Any) -> int | None:
    """A positive integer batch size, or None (the model's default)."""
    if batch_size is None:
        return None
    if not _is_int(batch_size) or batch_size <= 0:
        raise InvalidArgumentError(f"batch_size must be a positive integer or None, not {batch_size!r}.")
    return int(batch_size)


def check_positive(name: str, value: Any, allow_none: bool = True, number: type = int) -> Any:
    """``value`` if it is a positive integer (or number, with ``number=float``), or None when allowed."""
    if value is None and allow_none:
        return None
    ok = _is_int(value) if number is int else (not isinstance(value, bool) and isinstance(value, (int, float, np.number)))
    if not ok or value <= 0:
        kind = "integer" if number is int else "number"
        raise InvalidArgumentError(f"{name} must be a positive {kind}{' or None' if allow_none else ''}, not {value!r}.")
    return value


def parse_model_args(items: list[str]) -> dict[str, Any]:
    """``--arg KEY=VALUE`` options -> model arguments; a VALUE that parses as JSON is taken as such.

    Example:
        >>> parse_model_args(["latent=[1, 2]", "direction=CT_to_T1"])
        {'latent': [1, 2], 'direction': 'CT_to_T1'}
    """
    import json

    out: dict[str, Any] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.isidentifier():
            raise InvalidArgumentError(f"--arg takes KEY=VALUE with KEY a Python name, not {item!r}.")
        try:
            out[key] = json.loads(value)
        except json.JSONDecodeError:
            out[key] = value
    return out


def check_in_memory(model_id: str, num_samples: int, bytes_per_sample: int) -> None:
    """Refuse, before generating, a ``save_images=False`` call whose samples would not fit in memory."""
    need, have = num_samples * bytes_per_sample, memory_bytes()
    if have is not None and need > have:
        raise InvalidArgumentError(
            f"{num_samples} samples of {model_id} need {need / 2**30:.1f} GiB in memory, more than this machine's {have / 2**30:.1f} GiB; write them to files "
            "(save_images=True / output_path=...) or stream them with get_as_torch_dataloader.")
