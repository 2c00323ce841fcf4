"""The files of a package folder: which count, their sha256, the tree digest, and where the package's
``__init__.py`` is.

These are shared by :mod:`~medhub.execution.resolve` (verifying folders),
:mod:`~medhub.execution.cache` (recording what was extracted) and :mod:`~medhub.execution.hub`, so
none imports another.

What is hashed when a tree is checked (:func:`first_difference`):

* every file that can steer what runs (Python, configs, JSON/YAML, scripts, text: everything that is
  not a weights file) is hashed on every use, so a same-length edit with its mtime put back is seen;
* weights files (:data:`WEIGHT_SUFFIXES`, loaded only as data: safetensors or
  ``torch.load(weights_only=True)``) are hashed once per process and then recognised by their
  identity (device, inode, size, mtime and ctime: :func:`os.utime` can put the mtime back, never the
  ctime, and a replaced file has another inode). A record on disk is never trusted to skip a hash.
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


#: Files loaded as data only (safetensors, or ``torch.load(weights_only=True)``): checked by identity
#: after their first hash in a process. Every other file is hashed on every use.
WEIGHT_SUFFIXES = frozenset({".safetensors", ".pt", ".pth", ".bin", ".ckpt", ".npy", ".npz", ".h5", ".onnx"})

#: sha256 of weights files hashed in this process, by file identity (see :func:`identity`). Only
#: memory of this process, which no one else can write, can let a later check skip a hash.
_HASHED: dict[tuple[int, ...], str] = {}


def file_sha256(path: Path, chunk: int = 1 << 20) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def is_weights(rel: str) -> bool:
    """Whether a package file is a weights file (checked by identity after its first hash in a process).

    Example:
        >>> is_weights("unet/diffusion_pytorch_model.safetensors"), is_weights("configs/inference.json")
        (True, False)
    """
    return PurePosixPath(rel).suffix.lower() in WEIGHT_SUFFIXES


def identity(st: os.stat_result) -> tuple[int, ...]:
    """What identifies one version of a file: device, inode, size, mtime and ctime (in ns)."""
    return (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)


def current_sha256(path: Path, rel: str) -> str:
    """The sha256 of a package file as it is now: hashed, except a weights file this process hashed
    before and whose identity has not changed since."""
    if not is_weights(rel):
        return file_sha256(path)
    before = identity(path.stat())
    known = _HASHED.get(before)
    if known is not None:
        return known
    sha = file_sha256(path)
    if identity(path.stat()) == before:  # not changed while it was read
        _HASHED[before] = sha
    return sha


@dataclass(frozen=True)
class FileRecord:
    """One file of a verified tree: its sha256, and the size and mtime it had when hashed."""

    sha256: str
    size: int
    mtime_ns: int


def tree_manifest(folder: Path, exclude: frozenset[str] = frozenset(), fresh: bool = False) -> dict[str, FileRecord]:
    """The :class:`FileRecord` of every file of ``folder`` (as :func:`package_files`), by relative posix path
    (``fresh``: every file hashed now, weights too)."""
    out = {}
    for path in package_files(folder):
        rel = path.relative_to(folder).as_posix()
        if rel in exclude:
            continue
        st = path.stat()
        out[rel] = FileRecord(file_sha256(path) if fresh else current_sha256(path, rel), st.st_size, st.st_mtime_ns)
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

    Every file but weights is hashed on every call (a same-length edit of a config with its mtime
    put back must not pass); weights as :func:`current_sha256` says.
    """
    for rel in sorted(present.keys() ^ recorded.keys()):
        return rel, "was added" if rel in present else "is missing"
    for rel, path in sorted(present.items()):
        record = recorded[rel]
        if path.stat().st_size != record.size or current_sha256(path, rel) != record.sha256:
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
