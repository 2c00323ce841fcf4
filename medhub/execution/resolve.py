"""Find a model package on disk and check it against the sha256 pinned in the catalog.

A package link is either a URL (a remote archive, fetched into the cache) or a path: absolute,
or relative to the catalog's models folder. Folders are pinned by their *tree digest* (see
:func:`tree_digest`), archives by the sha256 of the archive file.
"""

from __future__ import annotations

import hashlib
import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import IntegrityError, PackageError, PackageNotAvailableError

logger = logging.getLogger("medhub.execution.resolve")

_IGNORED_DIRS = {"__pycache__", ".git", ".ipynb_checkpoints"}
_IGNORED_SUFFIXES = {".pyc", ".pyo"}
_IGNORED_NAMES = {".DS_Store"}


def _package_files(folder: Path) -> list[Path]:
    files = []
    for root, dirs, names in os.walk(folder):
        dirs[:] = sorted(d for d in dirs if d not in _IGNORED_DIRS)
        for name in names:
            path = Path(root) / name
            if name in _IGNORED_NAMES or path.suffix in _IGNORED_SUFFIXES:
                continue
            files.append(path)
    return sorted(files, key=lambda p: p.relative_to(folder).as_posix())


def file_sha256(path: Path, chunk: int = 1 << 20) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def tree_digest(folder: Path) -> tuple[str, int]:
    """sha256 and total size of a package folder.

    The digest is the sha256 of the lines ``<sha256 of file>  <relative posix path>\\n`` for
    every file, sorted by path (``__pycache__``, ``*.pyc`` and ``.DS_Store`` left out), so it
    does not depend on timestamps, permissions or the order the file system lists files in.
    """
    lines, size = [], 0
    for path in _package_files(folder):
        size += path.stat().st_size
        lines.append(f"{file_sha256(path)}  {path.relative_to(folder).as_posix()}\n")
    return hashlib.sha256("".join(lines).encode()).hexdigest(), size


def is_url(link: str) -> bool:
    return link.startswith(("http://", "https://"))


@dataclass(frozen=True)
class ResolvedPackage:
    """A package folder ready to import, with where it came from and its digest."""

    folder: Path
    source: str  # "catalog", "user" or "cache"
    sha256: str | None
    verified: bool


class PackageResolver:
    """Turns a catalog entry (or a user-given path) into a verified package folder.

    ``base_dir`` is the folder relative links resolve against; ``home`` the medhub cache.
    Remote downloads plug in here (``fetch_remote``); until then a remote package must already
    be in the cache at ``<home>/packages/<model_id>/``.
    """

    def __init__(self, base_dir: Path, home: Path | None = None) -> None:
        self.base_dir = Path(base_dir)
        self.home = home

    def local_path(self, link: str) -> Path:
        """An absolute link as is; a relative one against the catalog's folder, else medhub's models."""
        path = Path(link).expanduser()
        if path.is_absolute():
            return path
        candidate = self.base_dir / path
        if not candidate.exists():
            from .._paths import bundled

            shipped = bundled("models") / path
            if shipped.exists():
                return shipped
        return candidate

    def cache_folder(self, model_id: str) -> Path:
        from .._paths import medhub_home

        return (self.home or medhub_home()) / "packages" / model_id

    def resolve(self, model_id: str, execution: dict[str, Any], package_path: str | os.PathLike[str] | None = None) -> ResolvedPackage:
        pinned = execution.get("sha256")
        if package_path is not None:
            folder = self._package_root(Path(package_path).expanduser().resolve(), model_id, execution)
            return ResolvedPackage(folder, "user", None, False)
        link = execution["package_link"]
        if is_url(link):
            return self.fetch_remote(model_id, execution)
        folder = self._package_root(self.local_path(link).resolve(), model_id, execution)
        if pinned:
            digest, _ = tree_digest(folder)
            if digest != pinned:
                raise IntegrityError(
                    f"Model package {model_id} at {folder} does not match the sha256 pinned in the catalog "
                    f"(expected {pinned}, found {digest}). The package was modified; reinstall medhub or "
                    "restore the package before running it."
                )
        return ResolvedPackage(folder, "catalog", pinned, bool(pinned))

    def fetch_remote(self, model_id: str, execution: dict[str, Any]) -> ResolvedPackage:
        """Return the cached copy of a remote package (downloading is a separate component)."""
        folder = self.cache_folder(model_id)
        if (folder / "__init__.py").is_file() or any(folder.glob("*/__init__.py")):
            return ResolvedPackage(self._package_root(folder, model_id, execution), "cache", execution.get("sha256"), False)
        raise PackageNotAvailableError(
            f"Model {model_id} is a remote package ({execution['package_link']}) that is not in the cache "
            f"({folder}). This medhub version does not download packages yet: download and extract the archive "
            f"into {folder}, or pass package_path=<folder of the extracted package>."
        )

    @staticmethod
    def _package_root(path: Path, model_id: str, execution: dict[str, Any]) -> Path:
        """The folder holding ``__init__.py``: the path itself or medigan's ``<package_name>/`` inside it."""
        if path.is_file():
            raise PackageError(
                f"Package path {path} of {model_id} is a file; give the folder of the extracted package."
            )
        if not path.is_dir():
            raise PackageNotAvailableError(f"Model package {model_id} not found at {path}.")
        if (path / "__init__.py").is_file():
            return path
        name = execution.get("package_name")
        if name and (path / name / "__init__.py").is_file():
            return path / name
        raise PackageError(f"Model package {model_id} at {path} has no __init__.py (nor {name}/__init__.py).")


def weights_path(folder: Path, execution: dict[str, Any]) -> Path:
    """Absolute path of the weights file: ``execution.weights`` or medigan's ``model_name + extension``."""
    if execution.get("weights"):
        return folder / execution["weights"]
    if execution.get("model_name"):
        return folder / f"{execution['model_name']}{execution.get('extension', '')}"
    return folder / "weights.safetensors"
