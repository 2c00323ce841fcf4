"""The Hugging Face Hub as a package source: ``package_link: "hf://<owner>/<repo>"``.

A catalog entry names a Hub repository and a revision (``execution.revision``). A 40-hex commit is
the pin, as ``sha256`` is for archives; a branch or tag (default ``main``) counts as unpinned and
runs only with ``trust_remote_code`` (then the commit it resolved to is recorded and kept, as the
sha256 of a trusted archive is).

Files come from ``huggingface_hub.snapshot_download`` with the ``allow_patterns`` of the package
kind, into Hugging Face's own cache: ``HF_HOME`` / ``HF_HUB_CACHE``, ``HF_ENDPOINT`` and ``HF_TOKEN``
(for gated or private repositories; never logged) are read by ``huggingface_hub`` itself.
With ``MEDHUB_OFFLINE`` or ``HF_HUB_OFFLINE`` on, no connection is made: only snapshots medhub
has verified before are used.

Integrity, as for medhub's own cache: after a download every file is checked against the Hub's
listing of that commit (git blob id, or sha256 for LFS files), then medhub's tree digest of the
files is recorded in ``$MEDHUB_HOME/hub/<model_id>/<commit>.json`` with each file's sha256 and size,
keyed by repository, commit and digest (never by where the snapshot lies, so ``HF_HOME`` and
``MEDHUB_HOME`` copied together to another machine or path work offline). Every later use checks,
before anything of it runs, that the record is the one the catalog pins (repository, commit and,
where the entry gives one, the tree digest in ``sha256``) and that the snapshot is what the record
says: every file but weights hashed on every use, weights hashed once per process and then known by
their identity (inode, size, mtime and ctime; see :mod:`medhub.execution.tree`). ``medhub cache
verify`` hashes everything again; ``medhub prefetch <id> --force`` downloads a damaged snapshot again.

Example:
    >>> link = HubLink.of({"package_link": "hf://MONAI/mednist_ddpm", "revision": "main"})
    >>> link.repo_id, link.revision, link.pinned
    ('MONAI/mednist_ddpm', 'main', False)
"""

from __future__ import annotations

import fnmatch
import hashlib
import json
import logging
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from .. import settings
from ..atomic import write_json_atomically
from ..errors import (
    DependencyError,
    DownloadError,
    IntegrityError,
    PackageError,
    PackageNotAvailableError,
    UntrustedPackageError,
)
from ..progress import shows_progress
from .kinds import allow_patterns, required_files
from .tree import FileRecord, file_sha256, first_difference, manifest_digest, package_files

logger = logging.getLogger("medhub.execution.hub")

SCHEME = "hf://"
DEFAULT_REVISION = "main"
COMMIT = re.compile(r"^[0-9a-f]{40}$")
_REPO = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*/[A-Za-z0-9][A-Za-z0-9_.-]*$")
HF_EXTRA = "pip install 'medhub[hf]'"


def is_hub_link(link: str) -> bool:
    """True when a catalog ``package_link`` names a Hugging Face Hub repository.

    Example:
        >>> is_hub_link("hf://MONAI/mednist_ddpm"), is_hub_link("https://zenodo.org/x.zip")
        (True, False)
    """
    return isinstance(link, str) and link.startswith(SCHEME)


@dataclass(frozen=True)
class HubLink:
    """A Hub repository and the revision a catalog entry asks for."""

    repo_id: str
    revision: str

    @classmethod
    def of(cls, execution: Mapping[str, Any], model_id: str = "the model") -> HubLink:
        """The link of a catalog entry's ``execution`` (``package_link`` and ``revision``)."""
        link = str(execution.get("package_link", ""))
        repo = link[len(SCHEME):].strip("/") if is_hub_link(link) else ""
        if not _REPO.match(repo):
            raise PackageError(f"Catalog entry of {model_id}: package_link {link!r} must be hf://<owner>/<repo>; "
                               "fix the catalog entry.")
        revision = str(execution.get("revision") or DEFAULT_REVISION).strip()
        if not revision or revision.startswith("/") or ".." in revision:
            raise PackageError(f"Catalog entry of {model_id}: execution.revision {revision!r} is not a commit, branch "
                               "or tag; fix the catalog entry.")
        return cls(repo, revision)

    @property
    def pinned(self) -> bool:
        """Whether the revision is a full commit hash (the pin)."""
        return bool(COMMIT.match(self.revision))


@dataclass(frozen=True)
class HubSnapshot:
    """A verified snapshot of a Hub repository, ready to run.

    ``files`` maps each verified file (relative to ``folder``) to its sha256; ``pinned`` is True when
    the catalog pinned the commit.
    """

    folder: Path
    repo_id: str
    commit: str
    tree_sha256: str
    size: int
    files: Mapping[str, str]
    pinned: bool


def matches(rel: str, patterns: Sequence[str]) -> bool:
    """Whether a repository path matches one of ``patterns`` (``fnmatch``, as ``huggingface_hub``).

    Example:
        >>> matches("unet/config.json", ["*.json"]), matches("unet/model.bin", ["*.safetensors"])
        (True, False)
    """
    return any(fnmatch.fnmatch(rel, p + "*" if p.endswith("/") else p) for p in patterns)


def git_blob_id(path: Path) -> str:
    """The git object id of a file (what the Hub lists as ``oid`` for files not stored with LFS)."""
    digest = hashlib.sha1(f"blob {path.stat().st_size}\0".encode(), usedforsecurity=False)
    with open(path, "rb") as fh:
        while block := fh.read(1 << 20):
            digest.update(block)
    return digest.hexdigest()


def _hf() -> Any:
    try:
        import huggingface_hub
    except ImportError:
        raise DependencyError(f"Models from the Hugging Face Hub need huggingface_hub: {HF_EXTRA}",
                              requirements=["huggingface_hub"]) from None
    return huggingface_hub


def _hf_error(name: str) -> type[BaseException]:
    hf = _hf()
    for where in ("errors", "utils"):
        cls = getattr(getattr(hf, where, None), name, None)
        if isinstance(cls, type):
            return cls
    return type(f"Missing{name}", (Exception,), {})  # never raised by this huggingface_hub


def _constants() -> Any:
    """``huggingface_hub.constants``, imported (it is not an attribute of the package until then)."""
    _hf()
    import huggingface_hub.constants

    return huggingface_hub.constants


def _fix(model_id: str) -> str:
    return (f"Run `medhub prefetch {model_id} --force` to download it again from the Hub and verify it "
            f"(or `medhub cache rm {model_id}` to forget it).")


def _quiet_tqdm() -> type:
    """A tqdm class that shows nothing (Hub downloads outside a terminal)."""
    from tqdm.auto import tqdm

    class Quiet(tqdm):  # type: ignore[misc, valid-type]
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            kwargs["disable"] = True
            super().__init__(*args, **kwargs)

    return Quiet


class HubSource:
    """Fetches, verifies and re-checks Hub snapshots of catalog entries; records live in ``home/hub``.

    Example:
        >>> HubSource().records.name
        'hub'
    """

    def __init__(self, home: Path | None = None) -> None:
        from .._paths import medhub_home

        self.root = Path(home) if home else medhub_home()

    @property
    def records(self) -> Path:
        return self.root / "hub"

    def record_path(self, model_id: str, commit: str) -> Path:
        return self.records / model_id / f"{commit}.json"

    def trust_path(self, model_id: str) -> Path:
        return self.records / model_id / "trusted.json"

    @staticmethod
    def offline() -> bool:
        """``MEDHUB_OFFLINE``, or ``huggingface_hub``'s own ``HF_HUB_OFFLINE`` (also when it is set before
        ``huggingface_hub`` was first imported)."""
        if settings.is_offline():
            return True
        constants = _constants()
        check = getattr(constants, "is_offline_mode", None)
        return bool(check() if callable(check) else getattr(constants, "HF_HUB_OFFLINE", False))

    @staticmethod
    def snapshot_folder(repo_id: str, commit: str) -> Path:
        """Where Hugging Face's cache (``HF_HUB_CACHE``, ``HF_HOME``) keeps ``repo_id`` at ``commit``."""
        return Path(_constants().HF_HUB_CACHE) / f"models--{repo_id.replace('/', '--')}" / "snapshots" / commit

    # ------------------------------------------------------------------ records
    def _read(self, path: Path) -> dict[str, Any] | None:
        try:
            return json.loads(path.read_text())
        except (OSError, ValueError):
            return None

    def trusted_commit(self, model_id: str, link: HubLink) -> str | None:
        """The commit recorded when the user trusted this unpinned entry, if it still names the same revision."""
        record = self._read(self.trust_path(model_id))
        if record and record.get("repo_id") == link.repo_id and record.get("revision") == link.revision:
            return str(record.get("commit"))
        return None

    def forget(self, model_id: str) -> list[Path]:
        """Remove medhub's records (verification and trust) of a model; Hugging Face's cache is left alone."""
        folder = self.records / model_id
        removed = sorted(folder.glob("*.json")) if folder.is_dir() else []
        for path in removed:
            path.unlink(missing_ok=True)
        if folder.is_dir() and not any(folder.iterdir()):
            folder.rmdir()
        return removed

    # ------------------------------------------------------------------ use
    def fetch(self, model_id: str, execution: Mapping[str, Any], trust_remote_code: bool = False,
              force: bool = False) -> HubSnapshot:
        """The verified snapshot of an ``hf://`` entry: checked against medhub's record when there is one,
        else downloaded, checked against the Hub's listing of the commit, and recorded.

        ``force`` downloads the files again (replacing what Hugging Face's cache holds of the commit,
        e.g. after a snapshot was refused as changed) and verifies them as a first download.
        """
        link = HubLink.of(execution, model_id)
        interface = str(execution.get("interface", ""))
        patterns = allow_patterns(interface, execution)
        trusted = trust_remote_code or bool(settings.get("MEDHUB_TRUST_REMOTE_CODE"))
        if not link.pinned and not trusted:
            raise UntrustedPackageError(
                f"Model {model_id} comes from the Hugging Face Hub repository {link.repo_id} at revision "
                f"{link.revision!r}, which is not a commit hash, so medhub cannot pin its content. If you trust it, "
                "pass trust_remote_code=True (CLI: --trust-remote-code, or set MEDHUB_TRUST_REMOTE_CODE=1); medhub then "
                "records the commit it gets and keeps to it.")
        commit = link.revision if link.pinned else self.trusted_commit(model_id, link)
        record = self._read(self.record_path(model_id, commit)) if commit else None
        if record and not force and self.snapshot_folder(link.repo_id, commit).is_dir():
            manifest = self.check(model_id, record, link, commit, execution.get("sha256"))
            return self._snapshot(record, manifest, link.pinned)
        if self.offline():
            where = f"{link.repo_id}@{link.revision}"
            raise PackageNotAvailableError(
                f"Model {model_id} ({where}) has no snapshot verified by medhub on this machine, and offline mode is "
                f"on (MEDHUB_OFFLINE or HF_HUB_OFFLINE). While online, run `medhub prefetch {model_id}`.")
        if force and commit:
            self._clear(self.snapshot_folder(link.repo_id, commit), patterns)
        folder = self._download(model_id, link, commit or link.revision, patterns, force=force)
        seen = folder.name
        if commit and seen != commit:
            raise IntegrityError(f"Model {model_id}: the Hub answered with commit {seen} for {link.repo_id}@{commit}; "
                                 "refusing to use it.")
        manifest = self._verify_with_hub(model_id, link, folder, seen, patterns)
        for needed in required_files(interface, execution):
            if needed not in manifest:
                raise PackageNotAvailableError(
                    f"Model {model_id}: {link.repo_id}@{seen[:12]} has no {needed}, which a {interface} package needs "
                    f"(files fetched: {', '.join(patterns)}). Check the repository and execution.revision.")
        tree, size = manifest_digest(manifest)
        if record and record.get("tree_sha256") != tree and not force:
            raise IntegrityError(f"Model {model_id}: {link.repo_id}@{seen[:12]} downloaded again differs from the "
                                 f"snapshot medhub verified before (tree {record.get('tree_sha256')}, now {tree}).")
        pinned_tree = execution.get("sha256")
        if pinned_tree and pinned_tree != tree:
            raise IntegrityError(f"Model {model_id}: the files of {link.repo_id}@{seen[:12]} do not match the sha256 "
                                 f"pinned in the catalog (expected {pinned_tree}, found {tree}).")
        record = {"model_id": model_id, "repo_id": link.repo_id, "revision": link.revision, "commit": seen,
                  "patterns": list(patterns), "tree_sha256": tree, "size": size,
                  "files": {rel: [r.sha256, r.size, r.mtime_ns] for rel, r in manifest.items()},
                  "fetched": datetime.now(timezone.utc).isoformat()}
        write_json_atomically(self.record_path(model_id, seen), record, parents=True, indent=2)
        if not link.pinned:
            trust = {"repo_id": link.repo_id, "revision": link.revision, "commit": seen, "tree_sha256": tree,
                     "trusted_at": record["fetched"]}
            write_json_atomically(self.trust_path(model_id), trust, parents=True, indent=2)
        logger.info("Model %s: %s@%s verified (%d files, tree %s)", model_id, link.repo_id, seen[:12], len(manifest),
                    tree[:16])
        return self._snapshot(record, manifest, link.pinned)

    def _snapshot(self, record: Mapping[str, Any], manifest: Mapping[str, FileRecord], pinned: bool) -> HubSnapshot:
        return HubSnapshot(self.snapshot_folder(record["repo_id"], record["commit"]), record["repo_id"],
                           record["commit"], record["tree_sha256"], int(record.get("size", 0)),
                           {rel: r.sha256 for rel, r in manifest.items()}, pinned)

    def files_of(self, folder: Path, patterns: Sequence[str]) -> dict[str, Path]:
        """The files of a snapshot folder that the package kind uses (those matching ``patterns``)."""
        out = {}
        for path in package_files(folder):
            rel = path.relative_to(folder).as_posix()
            if matches(rel, patterns):
                out[rel] = path
        return out

    def _clear(self, folder: Path, patterns: Sequence[str]) -> None:
        """Remove the kind's files from a snapshot folder (links or files; never the blobs others share),
        so that a forced download puts back every one of them."""
        for path in self.files_of(folder, patterns).values() if folder.is_dir() else []:
            path.unlink(missing_ok=True)

    def check(self, model_id: str, record: Mapping[str, Any], link: HubLink | None = None, commit: str | None = None,
              pinned_tree: str | None = None) -> dict[str, FileRecord]:
        """Check medhub's record against the catalog's pins (``link``'s repository, ``commit``, the tree
        digest ``pinned_tree``) and the snapshot against the record; raises :class:`IntegrityError`
        naming the first difference. Every file but weights is hashed on every call, weights as
        :func:`~medhub.execution.tree.current_sha256` says."""
        fix = _fix(model_id)
        try:
            recorded = {rel: FileRecord(*entry) for rel, entry in record["files"].items()}
            repo_id, recorded_commit = str(record["repo_id"]), str(record["commit"])
        except (KeyError, TypeError, AttributeError, ValueError):
            raise IntegrityError(f"Model {model_id}: medhub's record of its Hub snapshot is unreadable. {fix}") from None
        where = f"{repo_id}@{recorded_commit[:12]}"
        if (link is not None and repo_id != link.repo_id) or (commit is not None and recorded_commit != commit):
            raise IntegrityError(f"Model {model_id}: medhub's record is of {where}, but the catalog names "
                                 f"{link.repo_id if link else repo_id}@{(commit or recorded_commit)[:12]}; refusing to "
                                 f"run it. {fix}")
        if manifest_digest(recorded)[0] != record.get("tree_sha256"):
            raise IntegrityError(f"Model {model_id}: medhub's record of {where} was altered. {fix}")
        if pinned_tree and pinned_tree != record.get("tree_sha256"):
            raise IntegrityError(f"Model {model_id}: the files medhub verified for {where} (tree "
                                 f"{record.get('tree_sha256')}) do not match the sha256 pinned in the catalog "
                                 f"({pinned_tree}); refusing to run them. Fix the catalog entry, or {fix[0].lower()}"
                                 f"{fix[1:]}")
        folder = self.snapshot_folder(repo_id, recorded_commit)
        found = first_difference(self.files_of(folder, record.get("patterns") or ["*"]), recorded)
        if found is not None:
            rel, what = found
            place = f"{rel} in {folder} {what}" if what == "changed" else f"{rel} {what} in {folder}"
            raise IntegrityError(f"Model {model_id}: {place} since medhub verified it; refusing to run it. {fix}")
        return recorded

    # ------------------------------------------------------------------ cache management
    def _records(self) -> list[tuple[Path, dict[str, Any] | None]]:
        paths = sorted(p for p in self.records.glob("*/*.json") if p.name != "trusted.json") \
            if self.records.is_dir() else []
        return [(path, self._read(path)) for path in paths]

    def list(self) -> list[dict[str, Any]]:
        """One row per Hub snapshot medhub verified: model id, tree digest, size, folder, ``hf://repo@commit``
        (rows of the same shape as :meth:`~medhub.execution.cache.PackageCache.list`)."""
        rows = []
        for path, record in self._records():
            if not record or "repo_id" not in record or "commit" not in record:
                rows.append({"model_id": path.parent.name, "sha256": "", "size": 0, "path": str(path),
                             "url": "unreadable record", "fetched": None})
                continue
            folder = self.snapshot_folder(record["repo_id"], record["commit"])
            rows.append({"model_id": record.get("model_id", path.parent.name), "sha256": record.get("tree_sha256", ""),
                         "size": record.get("size"), "path": str(folder) if folder.is_dir() else f"{folder} (absent)",
                         "url": f"{SCHEME}{record['repo_id']}@{record['commit']}", "fetched": record.get("fetched")})
        return rows

    def verify(self) -> list[str]:
        """Hash every file of every Hub snapshot medhub verified again and compare it with the record.
        Returns the problems found (a snapshot no longer in Hugging Face's cache is none)."""
        problems = []
        for path, found in self._records():
            record = found or {}
            model_id = str(record.get("model_id", path.parent.name))
            try:
                recorded = {rel: FileRecord(*entry) for rel, entry in record["files"].items()}
                repo_id, commit = str(record["repo_id"]), str(record["commit"])
            except (KeyError, TypeError, AttributeError, ValueError):
                problems.append(f"hub snapshot {model_id}: unreadable record {path}; {_fix(model_id)}")
                continue
            where = f"hub snapshot {model_id} ({repo_id}@{commit[:12]})"
            if manifest_digest(recorded)[0] != record.get("tree_sha256"):
                problems.append(f"{where}: its record {path} was altered; {_fix(model_id)}")
                continue
            folder = self.snapshot_folder(repo_id, commit)
            if not folder.is_dir():
                continue
            present = self.files_of(folder, record.get("patterns") or ["*"])
            for rel in sorted(present.keys() | recorded.keys()):
                what = ("was added" if rel not in recorded else "is missing" if rel not in present
                        else "changed" if file_sha256(present[rel]) != recorded[rel].sha256 else None)
                if what:
                    problems.append(f"{where}: {rel} {what} since medhub verified it; {_fix(model_id)}")
        return problems

    # ------------------------------------------------------------------ network
    def _download(self, model_id: str, link: HubLink, revision: str, patterns: Sequence[str],
                  force: bool = False) -> Path:
        hf = _hf()
        quiet = {} if shows_progress(None) else {"tqdm_class": _quiet_tqdm()}  # bars only on a terminal
        try:
            folder = hf.snapshot_download(link.repo_id, revision=revision, allow_patterns=list(patterns),
                                          force_download=force, **quiet)
        except Exception as exc:
            raise self._explain(model_id, link, revision, exc) from None
        return Path(folder)

    def _explain(self, model_id: str, link: HubLink, revision: str, exc: Exception) -> Exception:
        """One line saying what went wrong with a Hub request, and what to do (never the token)."""
        hf = _hf()
        endpoint = getattr(getattr(hf, "constants", None), "ENDPOINT", "the Hub")
        where = f"{link.repo_id}@{revision} on {endpoint}"
        status = getattr(getattr(exc, "response", None), "status_code", None)
        if isinstance(exc, _hf_error("RevisionNotFoundError")):
            return PackageNotAvailableError(f"Model {model_id}: revision {revision!r} does not exist in {link.repo_id} "
                                            f"on {endpoint}; fix execution.revision in the catalog.")
        gated = PackageNotAvailableError(
            f"Model {model_id}: {where} is gated or private and the Hub refused access (HTTP {status or 401}). "
            "Accept its conditions on the model page, then set HF_TOKEN to an access token (or run `hf auth login`).")
        if isinstance(exc, _hf_error("GatedRepoError")):
            return gated
        if isinstance(exc, _hf_error("RepositoryNotFoundError")):
            return PackageNotAvailableError(f"Model {model_id}: repository {link.repo_id} was not found on {endpoint} "
                                            "(if it is private, set HF_TOKEN); fix package_link in the catalog.")
        if status in (401, 403):
            return gated
        if isinstance(exc, _hf_error("LocalEntryNotFoundError")):
            return PackageNotAvailableError(f"Model {model_id}: {where} could not be reached and is not in the Hugging "
                                            f"Face cache ({type(exc).__name__}). Check the connection (and HF_ENDPOINT).")
        if isinstance(exc, _hf_error("EntryNotFoundError")) or status == 404:
            return PackageNotAvailableError(f"Model {model_id}: a file of {where} is missing on the Hub "
                                            f"({' '.join(str(exc).split())[:200]}).")
        if isinstance(exc, (OSError, ConnectionError, TimeoutError)) or status:
            return DownloadError(f"Model {model_id}: downloading {where} failed ({type(exc).__name__}"
                                 f"{', HTTP ' + str(status) if status else ''}); try again later.")
        return PackageError(f"Model {model_id}: fetching {where} failed with {type(exc).__name__}: "
                            f"{' '.join(str(exc).split())[:300]}")

    def hub_listing(self, model_id: str, link: HubLink, commit: str) -> dict[str, tuple[str, str]]:
        """``{path: ("sha256", hex) or ("git", blob id)}`` of every file of ``commit``, from the Hub."""
        hf = _hf()
        try:
            entries = list(hf.HfApi().list_repo_tree(link.repo_id, revision=commit, recursive=True))
        except Exception as exc:
            raise self._explain(model_id, link, commit, exc) from None
        out = {}
        for entry in entries:
            path, oid = getattr(entry, "path", None), getattr(entry, "blob_id", None)
            if path is None or oid is None:  # a folder
                continue
            lfs = getattr(entry, "lfs", None)
            sha = lfs.get("sha256") if isinstance(lfs, Mapping) else getattr(lfs, "sha256", None)
            out[path] = ("sha256", str(sha)) if sha else ("git", str(oid))
        return out

    def _verify_with_hub(self, model_id: str, link: HubLink, folder: Path, commit: str,
                         patterns: Sequence[str], retried: bool = False) -> dict[str, FileRecord]:
        """Every downloaded file, checked against the Hub's listing of ``commit``; a mismatch downloads the
        snapshot again once (a damaged cache), then raises :class:`IntegrityError`."""
        listing = {rel: v for rel, v in self.hub_listing(model_id, link, commit).items() if matches(rel, patterns)}
        present = self.files_of(folder, patterns)
        problem = None
        manifest: dict[str, FileRecord] = {}
        for rel in sorted(listing.keys() | present.keys()):
            if rel not in present:
                problem = f"{rel} is missing from the download"
            elif rel not in listing:
                problem = f"{rel} is not part of commit {commit[:12]}"
            else:
                path, (kind, expected) = present[rel], listing[rel]
                st = path.stat()
                sha = file_sha256(path)
                if (sha if kind == "sha256" else git_blob_id(path)) != expected:
                    problem = f"{rel} does not match the Hub's {'sha256' if kind == 'sha256' else 'git id'} of it"
                manifest[rel] = FileRecord(sha, st.st_size, st.st_mtime_ns)
            if problem:
                break
        if problem is None:
            return manifest
        if not retried:
            logger.warning("Model %s: %s; downloading %s@%s again", model_id, problem, link.repo_id, commit[:12])
            self._clear(folder, patterns)
            folder = self._download(model_id, link, commit, patterns, force=True)
            return self._verify_with_hub(model_id, link, folder, commit, patterns, retried=True)
        raise IntegrityError(f"Model {model_id}: {link.repo_id}@{commit[:12]}: {problem}; refusing to use it.")
