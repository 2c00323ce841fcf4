"""Reproducible zip archives of model packages: the same files give the same bytes, so the same sha256.

Members are sorted by path and stored under one top folder (``<model_id>/``, the catalog's
``package_name``), with a fixed timestamp (1980-01-01 00:00), fixed permissions (0644), a fixed
"made on" system and a fixed compression level, so neither modification times, permissions, the
order the file system lists files in, nor the machine change the archive. Bytecode
(``__pycache__``, ``*.pyc``, ``*.pyo``), ``.git``, ``.ipynb_checkpoints`` and ``.DS_Store`` are
left out, as in :func:`medhub.execution.tree.tree_digest`.
"""

from __future__ import annotations

import hashlib
import os
import zipfile
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

from ..atomic import replacing
from ..errors import ContributionError

#: Earliest timestamp a zip file can hold; every member gets it.
FIXED_DATE_TIME = (1980, 1, 1, 0, 0, 0)
_FILE_MODE = 0o100644  # regular file, rw-r--r--
_UNIX = 3  # "made on" system of every member, whatever the machine
_COMPRESSLEVEL = 6
_CHUNK = 1 << 20


@dataclass(frozen=True)
class Archive:
    """A package archive written by :func:`make_archive`."""

    path: Path
    sha256: str
    md5: str
    size: int
    members: tuple[str, ...]


def package_members(folder: Path) -> list[tuple[str, Path]]:
    """``(relative posix path, file)`` of every file that goes into the archive, sorted by path.

    Symbolic links are refused: they could pull files from outside the package into a published
    archive, and medhub's extractor refuses them anyway.
    """
    from ..execution.tree import IGNORED_DIRS, package_files

    for root, dirs, names in os.walk(folder):
        dirs[:] = [d for d in dirs if d not in IGNORED_DIRS]
        for name in dirs + names:
            path = Path(root) / name
            if path.is_symlink():
                raise ContributionError(
                    f"{path.relative_to(folder).as_posix()} in the package is a symbolic link; copy the file into "
                    "the package instead.", step="archive")
    return [(path.relative_to(folder).as_posix(), path) for path in package_files(folder)]


def _zipinfo(name: str, size: int) -> zipfile.ZipInfo:
    info = zipfile.ZipInfo(name, date_time=FIXED_DATE_TIME)
    info.compress_type = zipfile.ZIP_DEFLATED
    info.create_system = _UNIX
    info.external_attr = _FILE_MODE << 16
    info.file_size = size
    return info


def _check_secrets(rel: str, window: bytes, secrets: Iterable[bytes]) -> None:
    if any(secret in window for secret in secrets):
        raise ContributionError(
            f"{rel} in the package contains one of your access tokens; remove it (and revoke the token) before "
            "contributing.", step="archive")


def make_archive(folder: Path, dest: Path, root: str, replace: Mapping[str, bytes] | None = None,
                 secrets: Iterable[str] = ()) -> Archive:
    """Zip ``folder`` into ``dest`` reproducibly, every member under ``root/``.

    ``replace`` maps relative paths to the bytes to store instead of the file on disk (or in
    addition to the files, for paths not on disk): the contributor stores the metadata it built as
    ``metadata.json``. ``secrets`` are strings (access tokens) no member may contain. The archive
    is written to a temporary file and renamed into place.
    """
    replace = dict(replace or {})
    secret_bytes = [s.encode() for s in secrets if s]
    overlap = max((len(s) for s in secret_bytes), default=1) - 1
    on_disk = {rel: path for rel, path in package_members(folder)}
    names = sorted(set(on_disk) | set(replace))
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    with replacing(dest) as tmp:
        with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=_COMPRESSLEVEL) as zf:
            for rel in names:
                arcname = f"{root}/{rel}"
                if rel in replace:
                    data = replace[rel]
                    _check_secrets(rel, data, secret_bytes)
                    info = _zipinfo(arcname, len(data))
                    with zf.open(info, "w") as out:
                        out.write(data)
                    continue
                path = on_disk[rel]
                size = path.stat().st_size
                info = _zipinfo(arcname, size)
                with open(path, "rb") as fh, zf.open(info, "w", force_zip64=size >= zipfile.ZIP64_LIMIT) as out:
                    tail = b""
                    while block := fh.read(_CHUNK):
                        if secret_bytes:
                            window = tail + block
                            _check_secrets(rel, window, secret_bytes)
                            tail = window[-overlap:] if overlap else b""
                        out.write(block)
        sha256, md5 = hashlib.sha256(), hashlib.md5(usedforsecurity=False)  # md5: the checksum Zenodo reports for uploads
        with open(tmp, "rb") as fh:
            while block := fh.read(_CHUNK):
                sha256.update(block)
                md5.update(block)
    return Archive(dest, sha256.hexdigest(), md5.hexdigest(), dest.stat().st_size, tuple(f"{root}/{n}" for n in names))
