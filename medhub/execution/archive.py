"""Safe extraction of model package archives (zip, tar, tar.gz).

Every member is checked *before* anything is written: no absolute paths, no ``..``, no links,
no device files or FIFOs, a bounded member count and total size. Bytes are counted again while
extracting (a header may lie), into a fresh folder that the caller renames into place.
"""

from __future__ import annotations

import os
import shutil
import stat
import tarfile
import zipfile
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from ..errors import UnsafeArchiveError

#: Defaults, overridable with MEDHUB_MAX_EXTRACT_BYTES / MEDHUB_MAX_EXTRACT_MEMBERS or arguments.
DEFAULT_MAX_BYTES = 8 * 2**30
DEFAULT_MAX_MEMBERS = 100_000


@dataclass(frozen=True)
class Limits:
    max_bytes: int = DEFAULT_MAX_BYTES
    max_members: int = DEFAULT_MAX_MEMBERS

    @classmethod
    def from_env(cls, max_bytes: int | None = None, max_members: int | None = None) -> Limits:
        return cls(
            max_bytes=max_bytes or int(os.environ.get("MEDHUB_MAX_EXTRACT_BYTES", DEFAULT_MAX_BYTES)),
            max_members=max_members or int(os.environ.get("MEDHUB_MAX_EXTRACT_MEMBERS", DEFAULT_MAX_MEMBERS)),
        )


def _check_name(archive: Path, name: str) -> PurePosixPath:
    if "\\" in name or name.startswith("/") or (len(name) > 1 and name[1] == ":"):
        raise UnsafeArchiveError(f"{archive.name}: member {name!r} has an absolute or Windows path; refusing to extract.")
    path = PurePosixPath(name)
    if any(part == ".." for part in path.parts):
        raise UnsafeArchiveError(f"{archive.name}: member {name!r} points outside the package (..); refusing to extract.")
    return path


def _zip_members(archive: Path, zf: zipfile.ZipFile, limits: Limits) -> list[tuple[zipfile.ZipInfo, PurePosixPath]]:
    infos = zf.infolist()
    if len(infos) > limits.max_members:
        raise UnsafeArchiveError(f"{archive.name} has {len(infos)} members, more than the limit {limits.max_members}.")
    total, out = 0, []
    for info in infos:
        path = _check_name(archive, info.filename)
        mode = info.external_attr >> 16
        kind = stat.S_IFMT(mode)
        if kind and kind not in (stat.S_IFREG, stat.S_IFDIR):
            what = "a symbolic link" if kind == stat.S_IFLNK else "a special file"
            raise UnsafeArchiveError(f"{archive.name}: member {info.filename!r} is {what}; refusing to extract.")
        total += info.file_size
        if total > limits.max_bytes:
            raise UnsafeArchiveError(
                f"{archive.name} unpacks to more than {limits.max_bytes} bytes (zip bomb?); refusing to extract. "
                "Raise MEDHUB_MAX_EXTRACT_BYTES if the package really is that large."
            )
        out.append((info, path))
    return out


def _tar_members(archive: Path, tf: tarfile.TarFile, limits: Limits) -> list[tuple[tarfile.TarInfo, PurePosixPath]]:
    total, out = 0, []
    for count, member in enumerate(tf, start=1):
        if count > limits.max_members:
            raise UnsafeArchiveError(f"{archive.name} has more than {limits.max_members} members; refusing to extract.")
        path = _check_name(archive, member.name)
        if member.issym() or member.islnk():
            raise UnsafeArchiveError(f"{archive.name}: member {member.name!r} is a link; refusing to extract.")
        if not (member.isfile() or member.isdir()):
            raise UnsafeArchiveError(f"{archive.name}: member {member.name!r} is a special file; refusing to extract.")
        total += member.size
        if total > limits.max_bytes:
            raise UnsafeArchiveError(f"{archive.name} unpacks to more than {limits.max_bytes} bytes; refusing to extract.")
        out.append((member, path))
    return out


def _copy_counted(src, dst: Path, budget: list[int], archive: Path) -> None:  # noqa: ANN001 - file object
    with open(dst, "wb") as fh:
        while block := src.read(1 << 20):
            budget[0] -= len(block)
            if budget[0] < 0:
                raise UnsafeArchiveError(f"{archive.name} unpacks to more bytes than its headers say; refusing to extract.")
            fh.write(block)


def safe_extract(archive: Path, dest: Path, limits: Limits | None = None) -> None:
    """Extract ``archive`` into the new folder ``dest`` after checking every member.

    Raises :class:`UnsafeArchiveError` (and leaves ``dest`` absent) for absolute paths, ``..``,
    links, special files, too many members or too many bytes.
    """
    limits = limits or Limits.from_env()
    dest.mkdir(parents=True)
    budget = [limits.max_bytes]
    try:
        if zipfile.is_zipfile(archive):
            with zipfile.ZipFile(archive) as zf:
                for info, path in _zip_members(archive, zf, limits):
                    target = dest.joinpath(*path.parts)
                    if info.is_dir():
                        target.mkdir(parents=True, exist_ok=True)
                        continue
                    target.parent.mkdir(parents=True, exist_ok=True)
                    with zf.open(info) as src:
                        _copy_counted(src, target, budget, archive)
        elif tarfile.is_tarfile(archive):
            with tarfile.open(archive) as tf:
                members = _tar_members(archive, tf, limits)
                for member, path in members:
                    target = dest.joinpath(*path.parts)
                    if member.isdir():
                        target.mkdir(parents=True, exist_ok=True)
                        continue
                    target.parent.mkdir(parents=True, exist_ok=True)
                    src = tf.extractfile(member)
                    assert src is not None
                    with src:
                        _copy_counted(src, target, budget, archive)
        else:
            raise UnsafeArchiveError(f"{archive.name} is neither a zip nor a tar archive.")
    except BaseException:
        shutil.rmtree(dest, ignore_errors=True)
        raise
