"""Progress bars: the one place that decides whether one is drawn.

Every ``progress`` argument of medhub means the same: True draws a bar, False draws none, None
(the default) draws one when stderr is a terminal. Without a bar, tqdm is never imported.

Example:
    >>> shows_progress(False), shows_progress(True)
    (False, True)
    >>> with progress_bar(10, "demo", progress=False) as bar:
    ...     bar.update(10)
"""

from __future__ import annotations

import sys
from typing import Any

__all__ = ["progress_bar", "shows_progress"]


def shows_progress(progress: bool | None) -> bool:
    """Whether to draw a progress bar: ``progress`` when given, else whether stderr is a terminal."""
    return sys.stderr.isatty() if progress is None else bool(progress)


class NoBar:
    """Stands in for a tqdm bar that is not drawn (so a run without a bar never imports tqdm)."""

    def update(self, n: int = 1) -> None:
        pass

    def close(self) -> None:
        pass

    def __enter__(self) -> NoBar:
        return self

    def __exit__(self, *exc: object) -> None:
        pass


def progress_bar(total: int | None, desc: str, progress: bool | None, initial: int = 0, unit: str = "sample",
                 **tqdm_options: Any) -> Any:
    """A tqdm bar of ``total`` units when :func:`shows_progress` says so, else a :class:`NoBar`
    (both have ``update``, ``close`` and work as context managers). ``tqdm_options`` go to tqdm
    (e.g. ``unit_scale=True``)."""
    if not shows_progress(progress):
        return NoBar()
    from tqdm.auto import tqdm

    return tqdm(total=total, initial=initial, desc=desc, unit=unit, **tqdm_options)
