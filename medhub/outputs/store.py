"""Where a shared run's files go: a local folder or an fsspec URL, behind one small interface.

Sharded runs and Ray workers write into a *store*: :class:`LocalStore` (a local or
network-mounted folder; files are written to a temporary name and renamed) or
:class:`FsspecStore` (``s3://``, ``gs://``, ``file://``, ``memory://``...; objects appear whole
when closed). fsspec is imported only for URLs.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from ..atomic import write_bytes_atomically
from ..errors import DependencyError, InvalidArgumentError, OutputPathError

#: Folder of the journal markers inside a shared run (see :mod:`medhub.outputs.shared`).
MARKERS = ".medhub-chunks"


def is_fsspec_url(path: Any) -> bool:
    """True for fsspec URLs (``s3://bucket/x``, ``file:///tmp/x``, ``memory://x``).

    Example:
        >>> is_fsspec_url("s3://bucket/run"), is_fsspec_url("/tmp/run")
        (True, False)
    """
    return isinstance(path, str) and "://" in path


class LocalStore:
    """A local (or network-mounted) folder; files are written to a temporary name and renamed."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.root = Path(path).expanduser().resolve()
        self.url = str(self.root)

    def __reduce__(self) -> tuple[Any, ...]:
        return (LocalStore, (self.url,))

    def location(self, name: str) -> str:
        return str(self.root / name)

    def makedirs(self, sub: str = "") -> None:
        try:
            (self.root / sub if sub else self.root).mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise OutputPathError(f"Cannot create output folder {self.root}: {exc.strerror or exc}.") from None

    def write_bytes(self, name: str, data: bytes) -> None:
        write_bytes_atomically(self.root / name, data)

    def create_exclusive(self, name: str, data: bytes) -> bool:
        try:
            fd = os.open(self.root / name, os.O_WRONLY | os.O_CREAT | os.O_EXCL)
        except FileExistsError:
            return False
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        return True

    def read_bytes(self, name: str) -> bytes | None:
        try:
            return (self.root / name).read_bytes()
        except OSError:
            return None

    def remove(self, name: str) -> None:
        (self.root / name).unlink(missing_ok=True)

    def names(self, sub: str = "") -> list[str]:
        folder = self.root / sub if sub else self.root
        return sorted(p.name for p in folder.iterdir()) if folder.is_dir() else []

    def clean_temporary(self) -> None:
        """Remove temporary files left by killed writers (only called while no worker runs)."""
        for folder in (self.root, self.root / MARKERS):
            for p in folder.glob(".*.tmp"):
                p.unlink(missing_ok=True)

    def verifier(self) -> Callable[[str, str, int], bool]:
        def verify(name: str, sha: str, size: int) -> bool:
            data = self.read_bytes(name)
            return data is not None and len(data) == size and hashlib.sha256(data).hexdigest() == sha

        return verify


class FsspecStore:
    """A folder at an fsspec URL (``s3://``, ``gs://``, ``file://``, ``memory://``...)."""

    def __init__(self, url: str, storage_options: Mapping[str, Any] | None = None) -> None:
        self.url = url.rstrip("/")
        self.storage_options = dict(storage_options or {})
        try:
            import fsspec
        except ImportError as exc:
            raise DependencyError(f"Writing to {url} needs fsspec: pip install fsspec (and the filesystem's "
                                  "package, e.g. s3fs for s3://, gcsfs for gs://).", ["fsspec"]) from exc
        try:
            self.fs, self.path = fsspec.core.url_to_fs(self.url, **self.storage_options)
        except ImportError as exc:
            raise DependencyError(f"Writing to {url} needs the fsspec filesystem package: {exc}",
                                  []) from exc
        self.path = self.path.rstrip("/")

    def __reduce__(self) -> tuple[Any, ...]:
        return (FsspecStore, (self.url, self.storage_options))

    def _p(self, name: str) -> str:
        return f"{self.path}/{name}"

    def location(self, name: str) -> str:
        return f"{self.url}/{name}"

    def makedirs(self, sub: str = "") -> None:
        try:
            self.fs.makedirs(self._p(sub) if sub else self.path, exist_ok=True)
        except OSError as exc:
            raise OutputPathError(f"Cannot create output folder {self.url}: {exc}.") from None

    def write_bytes(self, name: str, data: bytes) -> None:
        with self.fs.open(self._p(name), "wb") as fh:
            fh.write(data)

    def create_exclusive(self, name: str, data: bytes) -> bool:
        # object stores have no O_EXCL; one driver claims a folder, so check-then-write is enough
        if self.fs.exists(self._p(name)):
            return False
        self.write_bytes(name, data)
        return True

    def read_bytes(self, name: str) -> bytes | None:
        try:
            return self.fs.cat_file(self._p(name))
        except (OSError, KeyError):
            return None

    def remove(self, name: str) -> None:
        try:
            self.fs.rm_file(self._p(name))
        except (OSError, KeyError):
            pass

    def _listing(self, sub: str = "") -> dict[str, int]:
        folder = self._p(sub) if sub else self.path
        try:
            entries = self.fs.ls(folder, detail=True)
        except (OSError, KeyError):
            return {}
        return {e["name"].rstrip("/").rsplit("/", 1)[-1]: int(e.get("size") or 0) for e in entries}

    def names(self, sub: str = "") -> list[str]:
        return sorted(self._listing(sub))

    def clean_temporary(self) -> None:
        pass  # nothing is written under a temporary name

    def verifier(self) -> Callable[[str, str, int], bool]:
        sizes = self._listing()  # one listing instead of one request per file

        def verify(name: str, sha: str, size: int) -> bool:
            return sizes.get(name) == size

        return verify


def open_store(output_path: str | os.PathLike[str], storage_options: Mapping[str, Any] | None = None
               ) -> LocalStore | FsspecStore:
    """The store for a local path or an fsspec URL."""
    path = os.fspath(output_path)
    if is_fsspec_url(path):
        return FsspecStore(path, storage_options)
    if storage_options:
        raise InvalidArgumentError("storage_options only apply to fsspec URLs such as s3://bucket/folder.")
    return LocalStore(path)
