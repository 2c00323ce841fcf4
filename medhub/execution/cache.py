"""The package cache in ``MEDHUB_HOME``: verified archives, extracted packages, trust records.

Layout::

    $MEDHUB_HOME/archives/<sha256><.zip|.tar.gz>     verified archives, named by their sha256
    $MEDHUB_HOME/packages/<model_id>/<sha256[:16]>/  extracted packages (+ .medhub-package.json)
    $MEDHUB_HOME/downloads/                          partial downloads (unique names)
    $MEDHUB_HOME/locks/                              one lock file per package
    $MEDHUB_HOME/trust.json                          sha256 seen for packages the user trusted
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

from .._paths import env_switched_on
from ..errors import PackageNotAvailableError, UntrustedPackageError
from .archive import Limits, safe_extract
from .fetch import download
from .resolve import file_sha256, tree_digest

logger = logging.getLogger("medhub.execution.cache")

META = ".medhub-package.json"
_STALE_S = 3600.0


def trust_from_env() -> bool:
    """True when ``MEDHUB_TRUST_REMOTE_CODE`` is set to a true value."""
    return env_switched_on("MEDHUB_TRUST_REMOTE_CODE")


def _suffix(url: str) -> str:
    name = url.split("?", 1)[0].rstrip("/")
    for ext in (".tar.gz", ".tgz", ".tar", ".zip"):
        if name.endswith(ext) or name.endswith(ext + "/content"):
            return ext
    return ".zip"


def _write_json(path: Path, doc: Any) -> None:
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex[:8]}.tmp")
    tmp.write_text(json.dumps(doc, indent=2))
    os.replace(tmp, path)


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

    @contextlib.contextmanager
    def _lock(self, name: str) -> Iterator[bool]:
        """Hold the lock ``name``; yields False where file locks do not work (then no resuming)."""
        from filelock import FileLock, Timeout

        (self.root / "locks").mkdir(parents=True, exist_ok=True)
        lock = FileLock(str(self.root / "locks" / f"{name}.lock"))
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
            _write_json(self.trust_file, records)

    # ------------------------------------------------------------------ lookup
    def _expected_sha(self, model_id: str, execution: dict[str, Any]) -> str | None:
        if execution.get("sha256"):
            return execution["sha256"]
        record = self.trusted().get(model_id)
        return record["sha256"] if record else None

    def find(self, model_id: str, execution: dict[str, Any]) -> Path | None:
        """The extracted package for this catalog entry, if it is in the cache."""
        sha = self._expected_sha(model_id, execution)
        if sha is None:
            return None
        folder = self.package_dir(model_id, sha)
        return folder if (folder / META).is_file() else None

    def fetch(self, model_id: str, execution: dict[str, Any], trust_remote_code: bool = False,
              progress: bool | None = None, offline: bool | None = None) -> Path:
        """Return the extracted package of a remote entry, downloading it if needed."""
        from .._paths import is_offline

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
        if is_offline() if offline is None else offline:
            raise PackageNotAvailableError(
                f"Model {model_id} is not in the cache ({self.packages / model_id}) and MEDHUB_OFFLINE is set. "
                f"While online, run `medhub prefetch {model_id}` (or Generators().prefetch(['{model_id}']))."
            )
        key = pinned or hashlib.sha256(f"{model_id}|{url}".encode()).hexdigest()[:32]
        with self._lock(key) as locked:
            found = self.find(model_id, execution)  # another process may have finished meanwhile
            if found is not None:
                return found
            archive = self.archives / f"{pinned}{_suffix(url)}" if pinned else None
            if archive is not None and archive.is_file() and file_sha256(archive) != pinned:
                logger.warning("Cached archive %s is corrupt; downloading it again", archive)
                archive.unlink()
            if archive is None or not archive.is_file():
                part, digest, size = download(url, self.downloads, key, sha256=pinned, size=execution.get("size"),
                                              progress=progress, resume=locked)
                if not pinned:
                    record = self.trusted().get(model_id)
                    if record and record["sha256"] != digest:
                        part.unlink(missing_ok=True)
                        raise UntrustedPackageError(
                            f"Model {model_id} at {url} changed since you trusted it (sha256 was {record['sha256']}, "
                            f"now {digest}); refusing to use it. If you trust the new version, run "
                            f"`medhub cache rm {model_id}` and try again."
                        )
                self.archives.mkdir(parents=True, exist_ok=True)
                archive = self.archives / f"{digest}{_suffix(url)}"
                os.replace(part, archive)
                if not pinned:
                    self._record_trust(model_id, url, digest, size)
            digest = archive.name[:64]
            target = self.package_dir(model_id, digest)
            tmp = target.parent / f".tmp-{uuid.uuid4().hex[:8]}"
            safe_extract(archive, tmp, self.limits)
            tree, size = tree_digest(tmp)
            _write_json(tmp / META, {"model_id": model_id, "url": url, "archive": archive.name,
                                     "archive_sha256": digest, "tree_sha256": tree, "size": size,
                                     "fetched": datetime.now(timezone.utc).isoformat()})
            try:
                os.replace(tmp, target)
            except OSError:  # another process (without a working lock) got there first
                shutil.rmtree(tmp, ignore_errors=True)
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
        """Check every archive against its sha256 name and every package against its tree digest.
        Returns the problems found (empty when all is well)."""
        problems = []
        for archive in sorted(self.archives.glob("*")) if self.archives.exists() else []:
            if archive.is_file() and file_sha256(archive) != archive.name[:64]:
                problems.append(f"archive {archive.name}: content does not match its sha256")
        for folder, meta in self._metas():
            if meta.get("broken"):
                problems.append(f"package {folder}: unreadable {META}")
                continue
            tree, _ = tree_digest(folder, exclude=frozenset({META}))
            if tree != meta.get("tree_sha256"):
                problems.append(f"package {meta['model_id']} ({folder}): files changed since extraction")
        return problems

    def remove(self, model_id: str) -> list[Path]:
        """Remove a model's extracted packages, their archives and its trust record."""
        removed = []
        for folder, meta in self._metas():
            if meta.get("model_id") == model_id or folder.parent.name == model_id:
                archive = self.archives / str(meta.get("archive", ""))
                if meta.get("archive") and archive.is_file():
                    archive.unlink()
                    removed.append(archive)
        if (self.packages / model_id).exists():
            shutil.rmtree(self.packages / model_id)
            removed.append(self.packages / model_id)
        if model_id in self.trusted():
            with self._lock("trust"):
                records = self.trusted()
                records.pop(model_id, None)
                _write_json(self.trust_file, records)
        return removed

    def prune(self, catalog: dict[str, dict[str, Any]] | None = None) -> list[Path]:
        """Remove stale partial downloads and temp folders, packages whose model is gone from
        ``catalog`` or pinned to another sha256, and archives no package refers to."""
        removed: list[Path] = []
        now = time.time()
        for partial in self.downloads.glob("*.part") if self.downloads.exists() else []:
            if now - partial.stat().st_mtime > _STALE_S:
                partial.unlink(missing_ok=True)
                removed.append(partial)
        for tmp in self.packages.glob("*/.tmp-*") if self.packages.exists() else []:
            if now - tmp.stat().st_mtime > _STALE_S:
                shutil.rmtree(tmp, ignore_errors=True)
                removed.append(tmp)
        keep_archives = set()
        for folder, meta in self._metas():
            model_id = meta.get("model_id")
            entry = (catalog or {}).get(model_id) if catalog is not None else None
            pinned = entry["execution"].get("sha256") if entry else None
            stale = catalog is not None and (entry is None or (pinned and pinned != meta.get("archive_sha256")))
            if stale or meta.get("broken"):
                shutil.rmtree(folder, ignore_errors=True)
                removed.append(folder)
            else:
                keep_archives.add(meta.get("archive"))
        for archive in self.archives.glob("*") if self.archives.exists() else []:
            if archive.name not in keep_archives:
                archive.unlink()
                removed.append(archive)
        return removed
