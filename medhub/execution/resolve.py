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
    for root, dirs, names in os.walk(folder, followlinks=True):  # linked content counts too
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


def tree_digest(folder: Path, exclude: frozenset[str] = frozenset()) -> tuple[str, int]:
    """sha256 and total size of a package folder.

    The digest is the sha256 of the lines ``<sha256 of file>  <relative posix path>\\n`` for
    every file, sorted by path (``__pycache__``, ``*.pyc`` and ``.DS_Store`` left out), so it
    does not depend on timestamps, permissions or the order the file system lists files in.
    """
    lines, size = [], 0
    for path in _package_files(folder):
        rel = path.relative_to(folder).as_posix()
        if rel in exclude:
            continue
        size += path.stat().st_size
        lines.append(f"{file_sha256(path)}  {rel}\n")
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
    Remote packages are downloaded, verified and extracted into the cache by
    :class:`~medhub.execution.cache.PackageCache`.
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

    def resolve(self, model_id: str, execution: dict[str, Any], package_path: str | os.PathLike[str] | None = None,
                trust_remote_code: bool = False) -> ResolvedPackage:
        pinned = execution.get("sha256")
        if package_path is not None:
            folder = self._package_root(Path(package_path).expanduser().resolve(), model_id, execution)
            return ResolvedPackage(folder, "user", None, False)
        link = execution["package_link"]
        if is_url(link):
            return self.fetch_remote(model_id, execution, trust_remote_code)
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

    def fetch_remote(self, model_id: str, execution: dict[str, Any], trust_remote_code: bool = False) -> ResolvedPackage:
        """The cached copy of a remote package, downloaded, verified and extracted on first use."""
        from .cache import PackageCache

        root = PackageCache(self.home).fetch(model_id, execution, trust_remote_code=trust_remote_code)
        import json

        sha = json.loads((root / ".medhub-package.json").read_text())["archive_sha256"]
        return ResolvedPackage(self._package_root(root, model_id, execution), "cache", sha, True)

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
        inner = [p for p in path.iterdir() if p.is_dir() and (p / "__init__.py").is_file()]
        if len(inner) == 1:  # a zip holding one package folder under another name
            return inner[0]
        raise PackageError(f"Model package {model_id} at {path} has no __init__.py (nor {name}/__init__.py).")


def weights_path(folder: Path, execution: dict[str, Any]) -> Path:
    """Absolute path of the weights file: ``execution.weights`` or medigan's ``model_name + extension``."""
    if execution.get("weights"):
        return folder / execution["weights"]
    if execution.get("model_name"):
        return folder / f"{execution['model_name']}{execution.get('extension', '')}"
    return folder / "weights.safetensors"
