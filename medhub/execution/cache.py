"""The package cache in ``MEDHUB_HOME``: verified archives, extracted packages, trust records.

Layout::

    $MEDHUB_HOME/archives/<sha256><.zip|.tar.gz>     verified archives, named by their sha256
    $MEDHUB_HOME/packages/<model_id>/<sha256[:16]>/  extracted packages (+ .medhub-package.json)
    $MEDHUB_HOME/downloads/                          partial downloads (unique names) and their validators
    $MEDHUB_HOME/locks/                              one lock file per package
    $MEDHUB_HOME/locks/in-use/                       markers of packages used by running processes
    $MEDHUB_HOME/trust.json                          sha256 seen for packages the user trusted

``.medhub-package.json`` records the sha256, size and mtime of every extracted file. Each use of a
cached package checks, before anything of it is imported (:meth:`PackageCache.check`), that the
record is of the archive the catalog pins (or the user trusted), that the record matches that kept
archive's members (the archive hashed again, once per process while it is unchanged: a record
rewritten together with the files is refused), and that the files are the recorded ones: every file
but weights hashed on every use, weights once per process (see :mod:`medhub.execution.tree`).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import shutil
import time
import uuid
from collections.abc import Iterator
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from ..atomic import write_json_atomically
from ..errors import IntegrityError, PackageError, PackageNotAvailableError, UntrustedPackageError
from .archive import Limits, member_digests, safe_extract
from .fetch import download, validators_of
from .tree import (
    FileRecord,
    file_sha256,
    first_difference,
    identity,
    manifest_digest,
    package_files,
    package_root,
    tree_manifest,
)

logger = logging.getLogger("medhub.execution.cache")

META = ".medhub-package.json"
#: Partial downloads and extraction folders are left alone for this long where file locks do not
#: work (then nothing tells whether a process still uses them).
STALE_S = 3600.0
_TMP = ".tmp-"
#: Kept archives checked in this process: identity of the file -> (its sha256, its members' sha256).
#: Only memory of this process, which no one else can write, lets a later check skip the work.
_ARCHIVES: dict[tuple[int, ...], tuple[str, dict[str, str]]] = {}
#: Folder of ``locks/`` holding the markers of packages in use (:meth:`PackageCache.hold`).
IN_USE = "in-use"


def trust_from_env() -> bool:
    """True when ``MEDHUB_TRUST_REMOTE_CODE`` is on."""
    from .. import settings

    return bool(settings.get("MEDHUB_TRUST_REMOTE_CODE"))


def download_key(model_id: str, execution: dict[str, Any]) -> str:
    """Name of a package's lock and partial downloads: its pinned sha256, else a hash of id and link."""
    return execution.get("sha256") or hashlib.sha256(f"{model_id}|{execution['package_link']}".encode()).hexdigest()[:32]


def _suffix(url: str) -> str:
    name = url.split("?", 1)[0].rstrip("/")
    for ext in (".tar.gz", ".tgz", ".tar", ".zip"):
        if name.endswith(ext) or name.endswith(ext + "/content"):
            return ext
    return ".zip"


def _rmdir_if_empty(folder: Path) -> None:
    with contextlib.suppress(OSError):
        folder.rmdir()


class PackageCache:
    """Downloads, verifies, extracts and manages remote model packages.

    Example:
        >>> cache = PackageCache()
        >>> isinstance(cache.list(), list)
        True
    """

    def __init__(self, home: Path | None = None, limits: Limits | None = None) -> None:
        from .._paths import medhub_home

        self.root = Path(home) if home else medhub_home()
        self.limits = limits

    # ------------------------------------------------------------------ paths
    @property
    def archives(self) -> Path:
        return self.root / "archives"

    @property
    def packages(self) -> Path:
        return self.root / "packages"

    @property
    def downloads(self) -> Path:
        return self.root / "downloads"

    @property
    def trust_file(self) -> Path:
        return self.root / "trust.json"

    def package_dir(self, model_id: str, sha256: str) -> Path:
        return self.packages / model_id / sha256[:16]

    def _lock_file(self, name: str) -> Path:
        return self.root / "locks" / f"{name}.lock"

    @contextlib.contextmanager
    def _lock(self, name: str) -> Iterator[bool]:
        """Hold the lock ``name``; yields False where file locks do not work (then no resuming)."""
        from filelock import FileLock, Timeout

        (self.root / "locks").mkdir(parents=True, exist_ok=True)
        lock = FileLock(str(self._lock_file(name)))
        try:
            lock.acquire(timeout=3600)
        except (OSError, NotImplementedError, Timeout) as exc:
            logger.warning("No file lock for %s (%s); continuing without one", name, exc)
            yield False
            return
        try:
            yield True
        finally:
            lock.release()

    # ------------------------------------------------------------------ packages in use
    @staticmethod
    def _package_key(folder: Path) -> str:
        """Name of the lock that orders :meth:`hold` and :meth:`prune` for one extracted package."""
        return f"package-{folder.parent.name}.{folder.name}"

    def _markers(self, folder: Path) -> list[Path]:
        return sorted((self.root / "locks" / IN_USE).glob(f"{folder.parent.name}.{folder.name}.*.lock"))

    def hold(self, folder: Path) -> Any:
        """Mark the extracted package ``folder`` as in use by this process, so that no
        :meth:`prune` (of any process, whatever its catalog) removes it, until the returned marker is
        released, dropped or the process ends (the OS releases its lock).

        The marker is a file of ``locks/in-use/`` named after the package and this process, locked
        by this process; :meth:`prune` skips a package whose marker it cannot lock. Returns None when
        ``folder`` is gone (a prune removed it just before: fetch it again).
        """
        from filelock import FileLock, Timeout

        with self._lock(self._package_key(folder)):
            if not (folder / META).is_file():
                return None
            (self.root / "locks" / IN_USE).mkdir(parents=True, exist_ok=True)
            name = f"{IN_USE}/{folder.parent.name}.{folder.name}.{os.getpid()}-{uuid.uuid4().hex[:8]}"
            marker = FileLock(str(self._lock_file(name)))
            try:
                marker.acquire(timeout=0)
            except (OSError, NotImplementedError, Timeout) as exc:  # no file locks: the marker's age counts
                logger.warning("Cannot lock %s (%s); a prune keeps %s for an hour", self._lock_file(name), exc, folder)
            return marker

    def _held(self, folder: Path, now: float) -> bool:
        """Whether a live process holds ``folder`` (see :meth:`hold`); removes the markers of processes
        that ended. Call with the package's lock held."""
        held = False
        for marker in self._markers(folder):
            if self._leftover(marker, f"{IN_USE}/{marker.stem}", now):
                marker.unlink(missing_ok=True)
            else:
                held = True
        return held

    def _in_use(self, key: str) -> bool | None:
        """Whether a process holds the lock of ``key`` now (None where file locks do not work)."""
        from filelock import FileLock, Timeout

        if not self._lock_file(key).exists():
            return False
        lock = FileLock(str(self._lock_file(key)))
        try:
            lock.acquire(timeout=0)
        except Timeout:
            return True
        except (OSError, NotImplementedError):
            return None
        lock.release()
        return False

    # ------------------------------------------------------------------ trust
    def trusted(self) -> dict[str, dict[str, Any]]:
        try:
            return json.loads(self.trust_file.read_text())
        except (OSError, ValueError):
            return {}

    def _record_trust(self, model_id: str, url: str, sha256: str, size: int) -> None:
        with self._lock("trust"):
            records = self.trusted()
            records[model_id] = {"url": url, "sha256": sha256, "size": size,
                                 "trusted_at": datetime.now(timezone.utc).isoformat()}
            self.root.mkdir(parents=True, exist_ok=True)
            write_json_atomically(self.trust_file, records, indent=2)

    # ------------------------------------------------------------------ lookup
    def expected_sha(self, model_id: str, execution: dict[str, Any]) -> str | None:
        """The archive sha256 a package must have: the catalog's pin, else the one the user trusted."""
        if execution.get("sha256"):
            return execution["sha256"]
        record = self.trusted().get(model_id)
        return record["sha256"] if record else None

    def find(self, model_id: str, execution: dict[str, Any]) -> Path | None:
        """The extracted package for this catalog entry, if it is in the cache (not checked: see :meth:`check`)."""
        sha = self.expected_sha(model_id, execution)
        if sha is None:
            return None
        folder = self.package_dir(model_id, sha)
        return folder if (folder / META).is_file() else None

    def check(self, model_id: str, folder: Path, expected: str | None = None) -> tuple[str, dict[str, FileRecord]]:
        """Check an extracted package against the record made when it was extracted, and the record
        against the kept archive whose sha256 is ``expected`` (the catalog's pin, or the trusted one).

        Returns the archive's sha256 and the record of every file; raises :class:`IntegrityError`
        naming the first difference. Every file but weights is hashed on every call; weights as
        :func:`~medhub.execution.tree.current_sha256` says.
        """
        fix = f"Run `medhub prefetch {model_id} --force` to fetch it again (or `medhub cache rm {model_id}`)."
        try:
            meta = json.loads((folder / META).read_text())
            recorded = {rel: FileRecord(*entry) for rel, entry in meta["files"].items()}
            archive_sha = meta["archive_sha256"]
        except (OSError, ValueError, KeyError, TypeError) as exc:
            if isinstance(exc, KeyError) and exc.args == ("files",):  # extracted by an older medhub
                return self._upgrade(model_id, folder, fix)
            raise IntegrityError(f"Cached package {model_id} at {folder} has no readable record {META}. {fix}") from None
        if manifest_digest(recorded)[0] != meta.get("tree_sha256") or not archive_sha.startswith(folder.name):
            raise IntegrityError(f"Cached package {model_id} at {folder}: its record {META} was altered. {fix}")
        if expected is not None and archive_sha != expected:
            raise IntegrityError(f"Cached package {model_id} at {folder} was extracted from the archive {archive_sha}, "
                                 f"not the one the catalog pins ({expected}); refusing to import it. {fix}")
        self._match_archive(model_id, folder, meta, recorded, fix)
        present = {path.relative_to(folder).as_posix(): path for path in package_files(folder)}
        present.pop(META, None)
        found = first_difference(present, recorded)
        if found is not None:
            rel, what = found
            raise IntegrityError(f"Cached package {model_id} at {folder}: {rel} {what} since it was verified; "
                                 f"refusing to import it. {fix}")
        return archive_sha, recorded

    def _match_archive(self, model_id: str, folder: Path, meta: dict[str, Any], recorded: dict[str, FileRecord],
                       fix: str, fresh: bool = False) -> None:
        """The record's files against the members of the kept archive it names, whose sha256 is checked too
        (``fresh``: read again even if this process checked the unchanged archive before)."""
        sha = str(meta["archive_sha256"])
        archive = self.archives / str(meta.get("archive") or "")
        if not meta.get("archive") or not archive.is_file():
            raise IntegrityError(f"Cached package {model_id} at {folder}: its archive {archive.name or sha} is gone "
                                 f"from {self.archives}, so the extracted files cannot be checked. {fix}")
        known = None if fresh else _ARCHIVES.get(identity(archive.stat()))
        if known is None or known[0] != sha:
            before = identity(archive.stat())
            if file_sha256(archive) != sha:
                raise IntegrityError(f"Cached archive {archive} of {model_id} does not match its sha256. {fix}")
            known = (sha, member_digests(archive, self.limits))
            if identity(archive.stat()) == before:
                _ARCHIVES[before] = known
        if {rel: r.sha256 for rel, r in recorded.items()} != known[1]:
            rel = next((r for r in sorted(known[1].keys() | recorded.keys())
                        if r not in recorded or r not in known[1] or recorded[r].sha256 != known[1][r]), "?")
            raise IntegrityError(f"Cached package {model_id} at {folder}: its record {META} does not match the archive "
                                 f"it was extracted from ({rel}); refusing to import it. {fix}")

    def _upgrade(self, model_id: str, folder: Path, fix: str) -> tuple[str, dict[str, FileRecord]]:
        meta = json.loads((folder / META).read_text())
        manifest = tree_manifest(folder, exclude=frozenset({META}))
        if manifest_digest(manifest)[0] != meta.get("tree_sha256"):
            raise IntegrityError(f"Cached package {model_id} at {folder}: files changed since extraction. {fix}")
        meta["files"] = {rel: [r.sha256, r.size, r.mtime_ns] for rel, r in manifest.items()}
        self._match_archive(model_id, folder, meta, manifest, fix)
        write_json_atomically(folder / META, meta, indent=2)
        return meta["archive_sha256"], manifest

    def fetch(self, model_id: str, execution: dict[str, Any], trust_remote_code: bool = False,
              progress: bool | None = None, offline: bool | None = None) -> Path:
        """Return the extracted package of a remote entry, downloading it if needed.

        The archive is kept, and an unpinned package's sha256 recorded as trusted, only after the
        whole archive arrived, matched its pin (if any) and unpacked safely.
        """
        from .. import settings

        url = execution["package_link"]
        pinned = execution.get("sha256")
        if not pinned and not (trust_remote_code or trust_from_env()):
            raise UntrustedPackageError(
                f"Model {model_id} comes from {url} with no sha256 pinned in the catalog, so medhub cannot verify "
                "its code. If you trust it, pass trust_remote_code=True (CLI: --trust-remote-code, or set "
                "MEDHUB_TRUST_REMOTE_CODE=1); medhub then records the sha256 it sees and refuses later changes."
            )
        found = self.find(model_id, execution)
        if found is not None:
            return found
        if settings.is_offline() if offline is None else offline:
            raise PackageNotAvailableError(
                f"Model {model_id} is not in the cache ({self.packages / model_id}) and MEDHUB_OFFLINE is set. "
                f"While online, run `medhub prefetch {model_id}` (or Generators().prefetch(['{model_id}']))."
            )
        limits = self.limits or Limits.from_settings()  # a bad MEDHUB_MAX_EXTRACT_* fails before downloading
        key = download_key(model_id, execution)
        with self._lock(key) as locked:
            found = self.find(model_id, execution)  # another process may have finished meanwhile
            if found is not None:
                return found
            archive = self.archives / f"{pinned}{_suffix(url)}" if pinned else None
            if archive is not None and archive.is_file() and file_sha256(archive) != pinned:
                logger.warning("Cached archive %s is corrupt; downloading it again", archive)
                archive.unlink()
            if archive is not None and archive.is_file():
                return self._unpack(model_id, execution, archive, pinned, limits, key)
            part, digest, size = download(url, self.downloads, key, sha256=pinned, size=execution.get("size"),
                                          progress=progress, resume=locked)
            record = None if pinned else self.trusted().get(model_id)
            if record and record["sha256"] != digest:
                part.unlink(missing_ok=True)
                raise UntrustedPackageError(
                    f"Model {model_id} at {url} changed since you trusted it (sha256 was {record['sha256']}, "
                    f"now {digest}); refusing to use it. If you trust the new version, run "
                    f"`medhub cache rm {model_id}` and try again."
                )
            return self._unpack(model_id, execution, part, digest, limits, key, size=size)

    def _unpack(self, model_id: str, execution: dict[str, Any], archive: Path, digest: str, limits: Limits,
                key: str, size: int | None = None) -> Path:
        """Extract ``archive`` (a verified download or a kept archive), record it, and keep the archive."""
        url = execution["package_link"]
        target = self.package_dir(model_id, digest)
        tmp = target.parent / f"{_TMP}{key}-{uuid.uuid4().hex[:8]}"
        downloaded = archive.parent == self.downloads
        try:
            safe_extract(archive, tmp, limits, label=f"The package of {model_id} ({url})")
            package_root(tmp, model_id, execution)  # a package is in there
            manifest = tree_manifest(tmp)
            tree, total = manifest_digest(manifest)
            meta = {"model_id": model_id, "url": url, "archive": f"{digest}{_suffix(url)}", "archive_sha256": digest,
                    "tree_sha256": tree, "size": total,
                    "files": {rel: [r.sha256, r.size, r.mtime_ns] for rel, r in manifest.items()},
                    "fetched": datetime.now(timezone.utc).isoformat()}
            write_json_atomically(tmp / META, meta, indent=2)
            if downloaded:
                self.archives.mkdir(parents=True, exist_ok=True)
                os.replace(archive, self.archives / f"{digest}{_suffix(url)}")
                if not execution.get("sha256"):
                    self._record_trust(model_id, url, digest, size if size is not None else total)
            try:
                os.replace(tmp, target)
            except OSError:  # another process (without a working lock) got there first
                shutil.rmtree(tmp, ignore_errors=True)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            if downloaded:
                archive.unlink(missing_ok=True)
            _rmdir_if_empty(target.parent)
            raise
        logger.info("Model %s cached in %s", model_id, target)
        return target

    # ------------------------------------------------------------------ management
    def _metas(self) -> list[tuple[Path, dict[str, Any]]]:
        out = []
        for meta in sorted(self.packages.glob(f"*/*/{META}")):
            try:
                out.append((meta.parent, json.loads(meta.read_text())))
            except (OSError, ValueError):
                out.append((meta.parent, {"model_id": meta.parent.parent.name, "broken": True}))
        return out

    def list(self) -> list[dict[str, Any]]:
        """One row per cached package: model id, archive sha256, size, folder, url."""
        return [{"model_id": m.get("model_id"), "sha256": m.get("archive_sha256"), "size": m.get("size"),
                 "path": str(folder), "url": m.get("url"), "fetched": m.get("fetched")} for folder, m in self._metas()]

    def verify(self) -> list[str]:
        """Check every archive against its sha256 name and every package against its record.
        Returns the problems found (empty when all is well)."""
        problems = []
        for archive in sorted(self.archives.glob("*")) if self.archives.exists() else []:
            if archive.is_file() and file_sha256(archive) != archive.name[:64]:
                problems.append(f"archive {archive.name}: content does not match its sha256")
        for folder, meta in self._metas():
            if meta.get("broken"):
                problems.append(f"package {folder}: unreadable {META}")
                continue
            manifest = tree_manifest(folder, exclude=frozenset({META}), fresh=True)
            if manifest_digest(manifest)[0] != meta.get("tree_sha256"):
                problems.append(f"package {meta['model_id']} ({folder}): files changed since extraction")
                continue
            try:
                self._match_archive(str(meta.get("model_id")), folder, meta, manifest, "", fresh=True)
            except (IntegrityError, KeyError) as exc:
                problems.append(f"package {meta.get('model_id')} ({folder}): {str(exc).strip() or 'no archive'}")
        return problems

    def discard_extracted(self, model_id: str) -> list[Path]:
        """Remove a model's extracted packages (not its archives or trust record), so that the next
        fetch extracts them again from the verified archive."""
        folder = self.packages / model_id
        if not folder.is_dir():
            return []
        shutil.rmtree(folder, ignore_errors=True)
        return [folder]

    def remove(self, model_id: str, execution: dict[str, Any] | None = None) -> list[Path]:
        """Remove a model's extracted packages, their archives, its partial downloads (when its
        catalog entry ``execution`` is given) and its trust record.

        Refused, with nothing removed, while a running process holds one of the model's packages
        (:meth:`hold`): the run would lose files it still reads.
        """
        folders = sorted(p for p in (self.packages / model_id).glob("*") if p.is_dir()) \
            if (self.packages / model_id).is_dir() else []
        for folder in folders:  # nothing is removed while a run holds one of them
            with self._refuse_held(model_id, folder):
                pass
        removed = []
        archives = {str(meta.get("archive", "")) for folder, meta in self._metas()
                    if meta.get("model_id") == model_id or folder.parent.name == model_id}
        record = self.trusted().get(model_id)
        shas = {record["sha256"]} if record else set()
        if execution is not None and execution.get("sha256"):
            shas.add(execution["sha256"])
        if self.archives.exists():
            archives.update(a.name for sha in shas for a in self.archives.glob(f"{sha}.*"))
        for name in sorted(a for a in archives if a):
            if (self.archives / name).is_file():
                (self.archives / name).unlink()
                removed.append(self.archives / name)
        for folder in folders:  # each under its lock, so that no run starts on it meanwhile
            with self._refuse_held(model_id, folder):
                shutil.rmtree(folder)
        if (self.packages / model_id).exists():
            shutil.rmtree(self.packages / model_id)
            removed.append(self.packages / model_id)
        if execution is not None and self.downloads.exists():
            for partial in sorted(self.downloads.glob(f"{download_key(model_id, execution)}.*.part")):
                partial.unlink(missing_ok=True)
                validators_of(partial).unlink(missing_ok=True)
                removed.append(partial)
        if record:
            with self._lock("trust"):
                records = self.trusted()
                records.pop(model_id, None)
                write_json_atomically(self.trust_file, records, indent=2)
        return removed

    @contextlib.contextmanager
    def _refuse_held(self, model_id: str, folder: Path) -> Iterator[None]:
        """Within the package lock of ``folder``: PackageError if a running process holds it (:meth:`hold`)."""
        with self._lock(self._package_key(folder)):
            if self._held(folder, time.time()):
                raise PackageError(f"Model {model_id}: its package {folder} is in use by a running medhub process; "
                                   "remove it when that run has ended.")
            yield

    def _leftover(self, path: Path, key: str, now: float) -> bool:
        """Whether a partial download or extraction folder of ``key`` belongs to no running process."""
        in_use = self._in_use(key)
        if in_use is None:  # no working file locks: go by age
            try:
                return now - path.stat().st_mtime > STALE_S
            except OSError:
                return False
        return not in_use

    def prune(self, catalog: dict[str, dict[str, Any]] | None = None) -> list[Path]:
        """Remove what killed or failed runs left in the cache and what the catalog no longer needs.

        * partial downloads and extraction folders that no running process holds (by their
          package lock; by age, an hour, where file locks do not work), and empty folders;
        * with ``catalog``: packages whose model is gone from it or pinned to another sha256,
          unless a running process holds them (:meth:`hold`: runs started with another catalog
          keep their package);
        * archives no package refers to.
        """
        removed: list[Path] = []
        now = time.time()
        for partial in sorted(self.downloads.glob("*.part")) if self.downloads.exists() else []:
            if self._leftover(partial, partial.name.split(".", 1)[0], now):
                partial.unlink(missing_ok=True)
                validators_of(partial).unlink(missing_ok=True)
                removed.append(partial)
        for orphan in sorted(self.downloads.glob("*.part.json")) if self.downloads.exists() else []:
            if not orphan.with_suffix("").exists():
                orphan.unlink(missing_ok=True)
        for tmp in sorted(self.packages.glob(f"*/{_TMP}*")) if self.packages.exists() else []:
            key = tmp.name[len(_TMP):].rsplit("-", 1)[0]
            if self._leftover(tmp, key, now):
                shutil.rmtree(tmp, ignore_errors=True)
                removed.append(tmp)
        keep_archives = set()
        for folder, meta in self._metas():
            model_id = meta.get("model_id")
            entry = (catalog or {}).get(model_id) if catalog is not None else None
            pinned = entry["execution"].get("sha256") if entry else None
            stale = catalog is not None and (entry is None or (pinned and pinned != meta.get("archive_sha256")))
            with self._lock(self._package_key(folder)):
                if (stale or meta.get("broken")) and not self._held(folder, now):
                    shutil.rmtree(folder, ignore_errors=True)
                    removed.append(folder)
                    continue
            if stale:
                logger.info("Kept %s: a running process uses it", folder)
            keep_archives.add(meta.get("archive"))
        for marker in sorted((self.root / "locks" / IN_USE).glob("*.lock")) if self.root.exists() else []:
            model_id, sha, _ = marker.stem.rsplit(".", 2) if marker.stem.count(".") >= 2 else ("", "", "")
            with self._lock(self._package_key(self.packages / model_id / sha)):  # markers of packages gone
                if self._leftover(marker, f"{IN_USE}/{marker.stem}", now):
                    marker.unlink(missing_ok=True)
        for archive in sorted(self.archives.glob("*")) if self.archives.exists() else []:
            if archive.name not in keep_archives:
                archive.unlink()
                removed.append(archive)
        for folder in sorted(self.packages.glob("*")) if self.packages.exists() else []:
            if folder.is_dir() and not any(folder.iterdir()):
                _rmdir_if_empty(folder)
                removed.append(folder)
        return removed
