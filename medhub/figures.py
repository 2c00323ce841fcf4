"""Figures and backends for medhub's plots: pyplot where it is in use or a display exists, else
matplotlib's ``Figure`` API on an Agg canvas (nothing shown, the global backend never switched)."""

from __future__ import annotations

import os
import sys
from typing import TYPE_CHECKING

from .errors import DependencyError

try:
    import matplotlib
except ImportError as exc:  # pragma: no cover - matplotlib is the optional "viz" extra
    raise DependencyError(
        "medhub's plots need matplotlib: pip install 'medhub[viz]' (or pip install 'matplotlib>=3.7').",
        ["matplotlib>=3.7"],
    ) from exc

if TYPE_CHECKING:  # pragma: no cover
    from matplotlib.figure import Figure

_NON_INTERACTIVE = {"agg", "pdf", "ps", "svg", "pgf", "cairo", "template"}


# ---------------------------------------------------------------------------- figures and backends
def _has_display() -> bool:
    if sys.platform.startswith(("linux", "freebsd", "openbsd", "netbsd")):
        return bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))
    return True


def use_pyplot() -> bool:
    """True where figures should be pyplot figures: pyplot already imported, a notebook, or a display."""
    return "matplotlib.pyplot" in sys.modules or "ipykernel" in sys.modules or _has_display()


def new_figure(figsize: tuple[float, float], pyplot: bool | None = None) -> Figure:
    """A figure: a pyplot one where pyplot is usable (see :func:`use_pyplot`), else a plain
    ``Figure`` on an Agg canvas (headless; no global backend change)."""
    if use_pyplot() if pyplot is None else pyplot:
        import matplotlib.pyplot as plt

        return plt.figure(figsize=figsize)
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=figsize)
    FigureCanvasAgg(fig)
    return fig


def close_figure(fig: Figure) -> None:
    """Release a figure from pyplot (if pyplot manages it); the Figure object stays usable."""
    if is_pyplot_figure(fig):
        import matplotlib.pyplot as plt

        plt.close(fig)


def is_pyplot_figure(fig: Figure) -> bool:
    if "matplotlib.pyplot" not in sys.modules:
        return False
    import matplotlib.pyplot as plt

    manager = getattr(fig.canvas, "manager", None)
    return manager is not None and plt.fignum_exists(manager.num)


def is_live(fig: Figure) -> bool:
    """True when ``fig`` is shown by an interactive backend (a window, or ipympl in Jupyter), so
    redrawing it after each change is worth its cost."""
    if not is_pyplot_figure(fig):
        return False
    backend = str(matplotlib.get_backend()).lower()
    return backend not in _NON_INTERACTIVE and not backend.endswith("backend_inline")


def show_if_interactive(fig: Figure) -> None:
    if not is_pyplot_figure(fig) or str(matplotlib.get_backend()).lower() in _NON_INTERACTIVE:
        return
    import matplotlib.pyplot as plt

    plt.show()
