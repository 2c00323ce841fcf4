"""Safe extraction of model package archives (zip, tar, tar.gz).

Every member is checked *before* anything is written: no absolute paths, no ``..``, no links, no
device files or FIFOs, no two members with the same name (or names equal but for case), no file
that is also a folder, no name a file system cannot hold, at least one file, a bounded member
count, total size and ratio of unpacked to packed size (zip bombs). Bytes are counted again while
extracting (a header may lie), into a fresh folder that the caller renames into place; a damaged
archive (bad CRC, truncated) is refused with one line, and nothing is left behind.
"""

from __future__ import annotations

import hashlib
import shutil
import stat
import tarfile
import zipfile
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import IO, Any

from ..errors import PackageError, UnsafeArchiveError
from .tree import IGNORED_DIRS, IGNORED_NAMES, IGNORED_SUFFIXES

#: Defaults of MEDHUB_MAX_EXTRACT_BYTES / _MEMBERS / _RATIO (see :mod:`medhub.settings`).
DEFAULT_MAX_BYTES = 8 * 2**30
DEFAULT_MAX_MEMBERS = 100_000
DEFAULT_MAX_RATIO = 200
#: The ratio limit applies only to archives unpacking to more than this (small text files compress well).
RATIO_FLOOR_BYTES = 1 << 20
#: Longest member name component and whole member name, in bytes (what common file systems hold).
MAX_NAME_BYTES = 255
MAX_PATH_BYTES = 1024


@dataclass(frozen=True)
class Limits:
    """Bounds on what one archive may unpack to."""

    max_bytes: int = DEFAULT_MAX_BYTES
    max_members: int = DEFAULT_MAX_MEMBERS
    max_ratio: int = DEFAULT_MAX_RATIO

    @classmethod
    def from_settings(cls) -> Limits:
        """The limits set by MEDHUB_MAX_EXTRACT_BYTES / _MEMBERS / _RATIO (a bad value raises SettingError)."""
        from .. import settings

        return cls(max_bytes=settings.get("MEDHUB_MAX_EXTRACT_BYTES"),
                   max_members=settings.get("MEDHUB_MAX_EXTRACT_MEMBERS"),
                   max_ratio=settings.get("MEDHUB_MAX_EXTRACT_RATIO"))

    def budget(self, packed: int) -> int:
        """Most bytes an archive of ``packed`` bytes may unpack to."""
        return min(self.max_bytes, max(self.max_ratio * packed, RATIO_FLOOR_BYTES))


@dataclass(frozen=True)
class Member:
    """One checked archive member: its normalised path, whether it is a folder, its declared size."""

    path: PurePosixPath
    is_dir: bool
    size: int
    entry: Any  # the ZipInfo or TarInfo


def _refuse(archive: Path, what: str) -> UnsafeArchiveError:
    return UnsafeArchiveError(f"{archive.name}: {what}; refusing to extract.")


def check_name(archive: Path, name: str) -> PurePosixPath:
    """The member path of ``name`` without ``.`` parts, or :class:`UnsafeArchiveError`."""
    if "\\" in name or name.startswith("/") or (len(name) > 1 and name[1] == ":"):
        raise _refuse(archive, f"member {name!r} has an absolute or Windows path")
    if "\0" in name:
        raise _refuse(archive, f"member {name!r} holds a NUL character")
    parts = [p for p in name.split("/") if p not in ("", ".")]
    if ".." in parts:
        raise _refuse(archive, f"member {name!r} points outside the package (..)")
    if any(len(p.encode("utf-8", "surrogateescape")) > MAX_NAME_BYTES for p in parts) or \
            len(name.encode("utf-8", "surrogateescape")) > MAX_PATH_BYTES:
        raise _refuse(archive, f"member {name[:60]!r}... has a name longer than {MAX_NAME_BYTES} bytes per part "
                               f"or {MAX_PATH_BYTES} in all")
    return PurePosixPath(*parts) if parts else PurePosixPath(".")


def _zip_members(archive: Path, zf: zipfile.ZipFile) -> Iterator[Member]:
    for info in zf.infolist():
        kind = stat.S_IFMT(info.external_attr >> 16)
        if kind and kind not in (stat.S_IFREG, stat.S_IFDIR):
            what = "a symbolic link" if kind == stat.S_IFLNK else "a special file"
            raise _refuse(archive, f"member {info.filename!r} is {what}")
        yield Member(check_name(archive, info.filename), info.is_dir(), info.file_size, info)


def _tar_members(archive: Path, tf: tarfile.TarFile) -> Iterator[Member]:
    for member in tf:
        if member.issym() or member.islnk():
            raise _refuse(archive, f"member {member.name!r} is a link")
        if not (member.isfile() or member.isdir()):
            raise _refuse(archive, f"member {member.name!r} is a special file")
        yield Member(check_name(archive, member.name), member.isdir(), member.size, member)


def check_members(archive: Path, members: Iterator[Member], limits: Limits) -> list[Member]:
    """Every member checked against each other and ``limits``; only the members to write are returned."""
    budget = limits.budget(archive.stat().st_size)
    files: dict[str, str] = {}  # lower-cased path -> path, of files
    dirs: set[str] = set()  # lower-cased folders, declared or implied
    out: list[Member] = []
    total = 0
    for count, member in enumerate(members, start=1):
        if count > limits.max_members:
            raise _refuse(archive, f"it has more than {limits.max_members} members (MEDHUB_MAX_EXTRACT_MEMBERS)")
        rel = member.path.as_posix()
        key = rel.lower()
        parents = [p.as_posix().lower() for p in member.path.parents if p.as_posix() != "."]
        if rel == ".":
            if not member.is_dir:
                raise _refuse(archive, "a file member is named '.' (no file name)")
            continue
        clash = next((files[p] for p in parents if p in files), None)
        if clash is not None:
            raise _refuse(archive, f"member {rel!r} lies inside {clash!r}, which is a file")
        if member.is_dir:
            if key in files:
                raise _refuse(archive, f"{rel!r} is both a file and a folder")
            dirs.add(key)
            dirs.update(parents)
            out.append(member)
            continue
        if key in files:
            same = "twice" if files[key] == rel else f"twice ({files[key]!r} and {rel!r} differ only in case)"
            raise _refuse(archive, f"it holds {rel!r} {same}: a reader would see other code than what runs")
        if key in dirs:
            raise _refuse(archive, f"{rel!r} is both a file and a folder")
        files[key] = rel
        dirs.update(parents)
        total += member.size
        if total > budget:
            raise _too_big(archive, budget, limits)
        out.append(member)
    if not files:
        raise _refuse(archive, "it holds no files (is the download complete?)")
    return out


def _too_big(archive: Path, budget: int, limits: Limits) -> UnsafeArchiveError:
    if budget < limits.max_bytes:
        return _refuse(archive, f"it unpacks to more than {budget} bytes, over {limits.max_ratio} times its own size "
                                "(zip bomb?; MEDHUB_MAX_EXTRACT_RATIO)")
    return _refuse(archive, f"it unpacks to more than {budget} bytes (zip bomb?). Raise MEDHUB_MAX_EXTRACT_BYTES if "
                            "the package really is that large")


def _copy_counted(src: IO[bytes], dst: Path, left: list[int], archive: Path, limits: Limits) -> None:
    with open(dst, "xb") as fh:
        while block := src.read(1 << 20):
            left[0] -= len(block)
            if left[0] < 0:
                raise _too_big(archive, limits.budget(archive.stat().st_size), limits)
            fh.write(block)


def _open(archive: Path) -> tuple[str, Any]:
    if zipfile.is_zipfile(archive):
        return "zip", zipfile.ZipFile(archive)
    if tarfile.is_tarfile(archive):
        return "tar", tarfile.open(archive)
    raise _refuse(archive, "it is neither a zip nor a tar archive")


def member_digests(archive: Path, limits: Limits | None = None) -> dict[str, str]:
    """The sha256 of every file member of a (checked) archive, by normalised path, leaving out what
    tree digests leave out (``__pycache__``, ``*.pyc``, ``.DS_Store``): the files it extracts to.

    Example:
        >>> import io, tempfile, zipfile
        >>> path = Path(tempfile.mkdtemp()) / "p.zip"
        >>> with zipfile.ZipFile(path, "w") as zf:
        ...     zf.writestr("pkg/__init__.py", "")
        >>> member_digests(path)
        {'pkg/__init__.py': 'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855'}
    """
    limits = limits or Limits.from_settings()
    out: dict[str, str] = {}
    try:
        kind, handle = _open(archive)
        with handle:
            members = check_members(archive, _zip_members(archive, handle) if kind == "zip"
                                    else _tar_members(archive, handle), limits)
            for member in members:
                parts = member.path.parts
                if member.is_dir or any(p in IGNORED_DIRS for p in parts[:-1]) or parts[-1] in IGNORED_NAMES \
                        or member.path.suffix in IGNORED_SUFFIXES:
                    continue
                digest = hashlib.sha256()
                src = handle.open(member.entry) if kind == "zip" else handle.extractfile(member.entry)
                assert src is not None
                with src:
                    while block := src.read(1 << 20):
                        digest.update(block)
                out[member.path.as_posix()] = digest.hexdigest()
    except (OSError, EOFError, zlib.error, zipfile.BadZipFile, tarfile.TarError) as exc:
        raise _refuse(archive, f"it is damaged ({type(exc).__name__}: {exc})") from None
    return out


def _relabel(exc: UnsafeArchiveError, archive: Path, label: str | None) -> UnsafeArchiveError:
    """The error naming ``label`` (the model and its URL) instead of the archive's file name."""
    text = str(exc)
    if label and text.startswith(archive.name):
        return UnsafeArchiveError(label + text[len(archive.name):])
    return exc


def safe_extract(archive: Path, dest: Path, limits: Limits | None = None, label: str | None = None) -> None:
    """Extract ``archive`` into the new folder ``dest`` after checking every member.

    Raises :class:`UnsafeArchiveError` (and leaves ``dest`` absent) for absolute paths, ``..``,
    links, special files, duplicate or clashing names, too many members or bytes, a too high
    compression ratio, no files at all, or a damaged archive. Messages name ``label`` (e.g. the model
    and the URL it came from) where given, else the archive's file name.
    """
    limits = limits or Limits.from_settings()
    try:
        _extract(archive, dest, limits)
    except UnsafeArchiveError as exc:
        raise _relabel(exc, archive, label) from None
    except PackageError as exc:
        if label and archive.name in str(exc):
            raise PackageError(str(exc).replace(archive.name, label, 1)) from None
        raise


def _extract(archive: Path, dest: Path, limits: Limits) -> None:
    try:
        kind, handle = _open(archive)
    except (OSError, EOFError, zipfile.BadZipFile, tarfile.TarError) as exc:
        raise _refuse(archive, f"it is damaged ({type(exc).__name__}: {exc})") from None
    dest.mkdir(parents=True)
    left = [limits.budget(archive.stat().st_size)]
    try:
        with handle:
            members = check_members(archive, _zip_members(archive, handle) if kind == "zip"
                                    else _tar_members(archive, handle), limits)
            for member in members:
                target = dest.joinpath(*member.path.parts)
                if member.is_dir:
                    target.mkdir(parents=True, exist_ok=True)
                    continue
                target.parent.mkdir(parents=True, exist_ok=True)
                src = handle.open(member.entry) if kind == "zip" else handle.extractfile(member.entry)
                assert src is not None
                with src:
                    _copy_counted(src, target, left, archive, limits)
    except UnsafeArchiveError:
        shutil.rmtree(dest, ignore_errors=True)
        raise
    except (EOFError, zlib.error, zipfile.BadZipFile, tarfile.TarError) as exc:
        shutil.rmtree(dest, ignore_errors=True)
        raise _refuse(archive, f"it is damaged ({type(exc).__name__}: {exc})") from None
    except OSError as exc:
        shutil.rmtree(dest, ignore_errors=True)
        raise PackageError(f"Cannot unpack {archive.name} into {dest.parent}: {exc.strerror or exc}. Free some space "
                           "or point MEDHUB_HOME at another disk.") from None
    except BaseException:
        shutil.rmtree(dest, ignore_errors=True)
        raise
