"""The files of a package folder: which count, their sha256, the tree digest, and where the package's
``__init__.py`` is.

These are shared by :mod:`~medhub.execution.resolve` (verifying folders) and
:mod:`~medhub.execution.cache` (recording what was extracted), so neither imports the other.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

from ..errors import PackageError, PackageNotAvailableError

#: Left out of tree digests and archives: caches of tools, never package content. medhub never
#: loads bytecode from a package (see :mod:`medhub.execution.loader`), so leaving it out is safe.
IGNORED_DIRS = frozenset({"__pycache__", ".git", ".ipynb_checkpoints"})
IGNORED_SUFFIXES = frozenset({".pyc", ".pyo"})
IGNORED_NAMES = frozenset({".DS_Store"})


def package_files(folder: Path) -> list[Path]:
    """Every file of a package folder that its tree digest covers, sorted by relative posix path."""
    files = []
    for root, dirs, names in os.walk(folder, followlinks=True):  # linked content counts too
        dirs[:] = sorted(d for d in dirs if d not in IGNORED_DIRS)
        for name in names:
            path = Path(root) / name
            if name in IGNORED_NAMES or path.suffix in IGNORED_SUFFIXES:
                continue
            files.append(path)
    return sorted(files, key=lambda p: p.relative_to(folder).as_posix())


def file_sha256(path: Path, chunk: int = 1 << 20) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            digest.update(block)
    return digest.hexdigest()


@dataclass(frozen=True)
class FileRecord:
    """One file of a verified tree: its sha256, and the size and mtime it had when hashed."""

    sha256: str
    size: int
    mtime_ns: int


def tree_manifest(folder: Path, exclude: frozenset[str] = frozenset()) -> dict[str, FileRecord]:
    """The :class:`FileRecord` of every file of ``folder`` (as :func:`package_files`), by relative posix path."""
    out = {}
    for path in package_files(folder):
        rel = path.relative_to(folder).as_posix()
        if rel in exclude:
            continue
        st = path.stat()
        out[rel] = FileRecord(file_sha256(path), st.st_size, st.st_mtime_ns)
    return out


def manifest_digest(manifest: Mapping[str, FileRecord]) -> tuple[str, int]:
    """The tree digest and total size of a manifest (see :func:`tree_digest`)."""
    lines = "".join(f"{manifest[rel].sha256}  {rel}\n" for rel in sorted(manifest))
    return hashlib.sha256(lines.encode()).hexdigest(), sum(r.size for r in manifest.values())


def tree_digest(folder: Path, exclude: frozenset[str] = frozenset()) -> tuple[str, int]:
    """sha256 and total size of a package folder.

    The digest is the sha256 of the lines ``<sha256 of file>  <relative posix path>\\n`` for
    every file, sorted by path (``__pycache__``, ``*.pyc`` and ``.DS_Store`` left out), so it
    does not depend on timestamps, permissions or the order the file system lists files in.
    """
    return manifest_digest(tree_manifest(folder, exclude))


def first_difference(present: Mapping[str, Path], recorded: Mapping[str, FileRecord]) -> tuple[str, str] | None:
    """The first file that differs from its verified record, as ``(relative path, "was added" |
    "is missing" | "changed")``, or None when the files are the recorded ones.

    Python files are hashed every time (a same-size edit with a restored mtime must not pass);
    other files only when their size or mtime differs from the record.
    """
    for rel in sorted(present.keys() ^ recorded.keys()):
        return rel, "was added" if rel in present else "is missing"
    for rel, path in present.items():
        record, st = recorded[rel], path.stat()
        if (rel.endswith(".py") or st.st_size != record.size or st.st_mtime_ns != record.mtime_ns) \
                and file_sha256(path) != record.sha256:
            return rel, "changed"
    return None


def check_relative(model_id: str, key: str, rel: str) -> PurePosixPath:
    """``rel`` (a path inside a package, from the catalog) as a relative path that stays inside.

    Example:
        >>> check_relative("00001_X", "weights", "nets/g.pt").as_posix()
        'nets/g.pt'
    """
    path = PurePosixPath(rel.replace("\\", "/"))
    if not rel or path.is_absolute() or ".." in path.parts or rel[1:2] == ":":
        raise PackageError(f"Catalog entry of {model_id}: execution.{key} {rel!r} must be a path inside the package "
                           "(relative, without '..'); fix the catalog entry.")
    return path


def package_root(path: Path, model_id: str, execution: dict[str, Any]) -> Path:
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
    if name and (len(check_relative(model_id, "package_name", name).parts) != 1 or name in (".", "..")):
        raise PackageError(f"Catalog entry of {model_id}: execution.package_name {name!r} must be the name of a "
                           "folder inside the package, not a path; fix the catalog entry.")
    if name and (path / name / "__init__.py").is_file():
        return path / name
    inner = [p for p in path.iterdir() if p.is_dir() and (p / "__init__.py").is_file()]
    if len(inner) == 1:  # a zip holding one package folder under another name
        return inner[0]
    raise PackageError(f"Model package {model_id} at {path} has no __init__.py (nor {name}/__init__.py).")
