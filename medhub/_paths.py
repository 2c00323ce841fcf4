"""Where medhub finds its bundled resources and keeps its state (never the working directory)."""

from __future__ import annotations

from pathlib import Path

_PACKAGE_DIR = Path(__file__).resolve().parent


def bundled(relative: str) -> Path:
    """Path of a resource shipped with medhub (``config/global.json``, ``models``, ``templates``).

    A wheel carries them under ``medhub/_bundled/``; a source checkout (or an editable install)
    has them at the repository root, next to the ``medhub`` package.
    """
    inside = _PACKAGE_DIR / "_bundled" / relative
    if inside.exists():
        return inside
    return _PACKAGE_DIR.parent / relative


def schema_path() -> Path:
    """The JSON Schema of the catalog, shipped inside the package."""
    return _PACKAGE_DIR / "schema" / "catalog.schema.json"


def medhub_home() -> Path:
    """Folder for medhub's state: ``$MEDHUB_HOME`` or the platform's user cache dir."""
    from . import settings

    env = settings.get("MEDHUB_HOME")
    if env:
        return Path(env).expanduser().resolve()
    from platformdirs import user_cache_dir

    return Path(user_cache_dir("medhub", appauthor=False))

