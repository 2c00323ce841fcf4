"""Heap settings for generation runs on Linux with glibc's malloc.

A generator on the CPU allocates and frees the same few megabyte-sized tensors (activations,
outputs) for every batch. With glibc's default heuristic these often go back to the kernel
(``munmap``, or a heap trim) as soon as they are freed, and the next batch faults the same pages in
again, zeroed: hundreds of thousands of minor page faults per run, seconds of kernel time, measured
by ``benchmarks/heap.py``. :func:`tune_heap` fixes glibc's two thresholds at the largest values its
own heuristic ever picks on a 64-bit machine (allocations up to 32 MiB come from the heap, whose top
is trimmed beyond 64 MiB free), so freed tensors are reused; :func:`release_heap` hands the free
memory back to the kernel at the end of a run (``malloc_trim``).

The settings are process-wide and stay in effect after the first run (glibc's heuristic would
reach them by itself in a long process); they change no result. medhub leaves the heap alone where
``MEDHUB_MALLOC_TUNING=0``, where the user set glibc's malloc tunables (``GLIBC_TUNABLES`` naming
``glibc.malloc.*``, ``MALLOC_*_`` variables), where another allocator is preloaded (jemalloc,
tcmalloc, mimalloc), and off glibc (macOS, Windows, musl).

Example::

    >>> from medhub.execution.heap import tune_heap, heap_tuning
    >>> tuned = tune_heap()          # True on Linux/glibc unless opted out
    >>> heap_tuning() == tuned
    True
"""

from __future__ import annotations

import logging
import os
import sys
import threading
from typing import Any

from .._paths import env_switched_off

logger = logging.getLogger("medhub.execution")

#: glibc's mallopt parameters (malloc.h).
M_TRIM_THRESHOLD = -1
M_MMAP_THRESHOLD = -3
#: The values medhub sets: the ceilings of glibc's dynamic thresholds on 64-bit systems
#: (``DEFAULT_MMAP_THRESHOLD_MAX`` and twice it).
MMAP_THRESHOLD = 32 * 1024 * 1024
TRIM_THRESHOLD = 2 * MMAP_THRESHOLD
_USER_MALLOC_ENV = ("MALLOC_MMAP_THRESHOLD_", "MALLOC_TRIM_THRESHOLD_", "MALLOC_TOP_PAD_", "MALLOC_MMAP_MAX_",
                    "MALLOC_ARENA_MAX")
_OTHER_ALLOCATORS = ("jemalloc", "tcmalloc", "mimalloc")

_lock = threading.Lock()
_state: dict[str, object] = {}


def _skip_reason() -> str | None:
    """Why medhub leaves the heap alone here, or None."""
    if env_switched_off("MEDHUB_MALLOC_TUNING"):
        return "MEDHUB_MALLOC_TUNING is off"
    if not sys.platform.startswith("linux"):
        return f"not Linux ({sys.platform})"
    if "glibc.malloc." in os.environ.get("GLIBC_TUNABLES", ""):
        return "GLIBC_TUNABLES sets glibc.malloc tunables"
    user = [name for name in _USER_MALLOC_ENV if name in os.environ]
    if user:
        return f"{user[0]} is set"
    preload = os.environ.get("LD_PRELOAD", "")
    other = [name for name in _OTHER_ALLOCATORS if name in preload]
    if other:
        return f"{other[0]} is preloaded"
    return None


def _libc() -> Any:
    import ctypes

    try:
        libc = ctypes.CDLL(None)
        libc.gnu_get_libc_version  # noqa: B018 - only glibc has it
        return libc
    except (OSError, AttributeError):
        return None


def tune_heap() -> bool:
    """Set glibc's malloc thresholds for generation (once per process); True when they are in effect.

    Idempotent and thread-safe; returns False, changing nothing, where medhub leaves the heap alone
    (see the module docstring).
    """
    if "tuned" in _state:  # every batch calls this: no lock once decided
        return bool(_state["tuned"])
    with _lock:
        if "tuned" in _state:
            return bool(_state["tuned"])
        reason = _skip_reason()
        libc = None if reason else _libc()
        if reason is None and libc is None:
            reason = "the C library is not glibc"
        tuned = False
        if libc is not None:
            tuned = bool(libc.mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD)) and bool(
                libc.mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD))
            if not tuned:
                reason = "mallopt refused the settings"
        if reason:
            logger.debug("heap left alone: %s", reason)
        _state.update(libc=libc if tuned else None, tuned=tuned)  # "tuned" last: the fast path reads it
        return tuned


def heap_tuning() -> bool | None:
    """Whether :func:`tune_heap` set the thresholds (None before its first call)."""
    return bool(_state["tuned"]) if "tuned" in _state else None


def release_heap() -> None:
    """Hand the heap's free memory back to the kernel (``malloc_trim(0)``) after a tuned run."""
    libc = _state.get("libc")
    if libc is not None:
        libc.malloc_trim(0)  # type: ignore[attr-defined]
