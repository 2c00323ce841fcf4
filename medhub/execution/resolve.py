"""Find a model package on disk and check it against the sha256 pinned in the catalog.

A package link is a Hugging Face Hub repository (``hf://``), a URL (a remote archive, fetched into
the cache) or a path: absolute, or relative to the catalog's models folder; :data:`SOURCES` maps
each scheme to its source. Folders are pinned by their *tree digest* (see
:func:`tree_digest`), archives by the sha256 of the archive file.

What the resolver hands to the loader is the folder *and* the sha256 of every file of the tree it
verified (:attr:`ResolvedPackage.files`), so the loader can check each source file as it reads it.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import IntegrityError, PackageNotAvailableError
from .tree import (
    IGNORED_DIRS,
    check_relative,
    file_sha256,
    manifest_digest,
    package_files,
    package_root,
    tree_digest,
    tree_manifest,
)

__all__ = ["IGNORED_DIRS", "SOURCES", "PackageResolver", "ResolvedPackage", "file_sha256", "is_remote_link",
           "package_files", "package_root", "tree_digest", "weights_path"]

logger = logging.getLogger("medhub.execution.resolve")


def is_remote_link(link: str) -> bool:
    """True when a catalog ``package_link`` names a remote archive (http or https), not a path.

    Example:
        >>> is_remote_link("https://zenodo.org/record/1/files/p.zip"), is_remote_link("00101_DCGAN")
        (True, False)
    """
    return link.startswith(("http://", "https://"))


@dataclass(frozen=True)
class ResolvedPackage:
    """A package folder ready to import, with where it came from and its digest.

    ``files`` maps every file of the verified tree (relative to ``folder``) to its sha256; the
    loader imports only Python files listed there, with that content. None for packages that were
    not verified (a ``package_path`` of the user's, an unpinned local entry).
    """

    folder: Path
    source: str  # "catalog", "user" or "cache"
    sha256: str | None
    verified: bool
    files: Mapping[str, str] | None = None
    #: What keeps a cached package from ``medhub cache prune`` while the package is used
    #: (:meth:`~medhub.execution.cache.PackageCache.hold`).
    in_use: Any = field(default=None, compare=False, repr=False)


class PackageResolver:
    """Turns a catalog entry (or a user-given path) into a verified package folder.

    ``base_dir`` is the folder relative links resolve against; ``home`` the medhub cache.
    Remote packages are downloaded, verified and extracted into the cache by
    :class:`~medhub.execution.cache.PackageCache`, which checks them again on every use.
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
                trust_remote_code: bool = False, python: bool = True) -> ResolvedPackage:
        """The package of ``execution``: the user's ``package_path`` as is (unverified), else the
        source of its ``package_link``'s scheme (:data:`SOURCES`). ``python``: the package is a Python
        package (the folder holding ``__init__.py`` is looked for), not an adapter's folder."""
        if package_path is not None:
            path = Path(package_path).expanduser().resolve()
            return ResolvedPackage(package_root(path, model_id, execution) if python else path, "user", None, False)
        link = str(execution["package_link"])
        scheme = link.split("://", 1)[0].lower() if "://" in link else ""
        source = SOURCES.get(scheme)
        if source is None:
            raise PackageNotAvailableError(f"Model {model_id}: package_link {link!r} has the scheme {scheme!r}; "
                                           f"medhub fetches packages from {', '.join(s + '://' for s in SOURCES if s)} "
                                           "links and local paths.")
        return source(self, model_id, execution, trust_remote_code)

    def hub(self, model_id: str, execution: dict[str, Any], trust_remote_code: bool = False) -> ResolvedPackage:
        """A Hugging Face Hub repository (``hf://``, :mod:`medhub.execution.hub`)."""
        from .hub import HubSource

        snap = HubSource(self.home).fetch(model_id, execution, trust_remote_code)
        return ResolvedPackage(snap.folder, "hub", snap.tree_sha256, snap.pinned, snap.files)

    def local(self, model_id: str, execution: dict[str, Any], trust_remote_code: bool = False) -> ResolvedPackage:
        """A folder named by an absolute path or one relative to the catalog, checked against its pin."""
        pinned = execution.get("sha256")
        folder = package_root(self.local_path(execution["package_link"]).resolve(), model_id, execution)
        if not pinned:
            return ResolvedPackage(folder, "catalog", None, False)
        manifest = tree_manifest(folder)
        digest, _ = manifest_digest(manifest)
        if digest != pinned:
            raise IntegrityError(
                f"Model package {model_id} at {folder} does not match the sha256 pinned in the catalog "
                f"(expected {pinned}, found {digest}). The package was modified; reinstall medhub or "
                "restore the package before running it."
            )
        return ResolvedPackage(folder, "catalog", pinned, True, {rel: r.sha256 for rel, r in manifest.items()})

    def fetch_remote(self, model_id: str, execution: dict[str, Any], trust_remote_code: bool = False) -> ResolvedPackage:
        """The cached copy of a remote package: downloaded, verified and extracted on first use, and
        checked against the record of what was extracted on every use."""
        from .cache import PackageCache

        cache = PackageCache(self.home)
        for _ in range(3):  # held before it is checked: no prune removes it while this process uses it
            root = cache.fetch(model_id, execution, trust_remote_code=trust_remote_code)
            marker = cache.hold(root)
            if marker is not None:
                break
        else:
            raise PackageNotAvailableError(f"Cached package {model_id} was removed three times while this run "
                                           "started (medhub cache prune in a loop?); run it again.")
        sha, manifest = cache.check(model_id, root, cache.expected_sha(model_id, execution))
        folder = package_root(root, model_id, execution)
        prefix = "" if folder == root else folder.relative_to(root).as_posix() + "/"
        files = {rel[len(prefix):]: r.sha256 for rel, r in manifest.items() if rel.startswith(prefix)}
        # verified means: matched a pin of the catalog; a trusted unpinned package matched none
        return ResolvedPackage(folder, "cache", sha, bool(execution.get("sha256")), files, marker)


#: Where a package comes from, by the scheme of its ``package_link`` ("" for a local path).
SOURCES: dict[str, Callable[[PackageResolver, str, dict[str, Any], bool], ResolvedPackage]] = {
    "hf": PackageResolver.hub,
    "http": PackageResolver.fetch_remote,
    "https": PackageResolver.fetch_remote,
    "": PackageResolver.local,
}


def weights_path(folder: Path, execution: dict[str, Any], model_id: str = "the model") -> Path:
    """Absolute path of the weights file: ``execution.weights`` or medigan's ``model_name + extension``,
    which must lie inside the package."""
    if execution.get("weights"):
        return folder.joinpath(*check_relative(model_id, "weights", execution["weights"]).parts)
    if execution.get("model_name"):
        name = f"{execution['model_name']}{execution.get('extension', '')}"
        return folder.joinpath(*check_relative(model_id, "model_name", name).parts)
    return folder / "weights.safetensors"

