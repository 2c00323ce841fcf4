"""Nothing published names a file on the contributor's machine: finding local paths in metadata and files."""

from __future__ import annotations

import os
import re
from pathlib import Path

from ..errors import MetadataError

_WINDOWS_PATH = re.compile(r"^[A-Za-z]:[\\/]")
#: Files of a package searched for local paths (code, model card, configs).
TEXT_SUFFIXES = frozenset({".py", ".md", ".txt", ".json", ".yaml", ".yml", ".cfg", ".toml", ".ini", ".sh", ".ipynb"})


def is_local_path(text: str) -> bool:
    """Whether a metadata string is an absolute path on this machine (``/...``, ``~/...``, ``C:\\...``, ``file://``).

    Example:
        >>> [is_local_path(t) for t in ("/home/ada/w.pt", "C:\\\\w.pt", "weights.pt", "https://x.org/w.pt")]
        [True, True, False, False]
    """
    if "\n" in text:
        return False
    return text.startswith(("/", "~/", "\\\\", "file://")) or bool(_WINDOWS_PATH.match(text))


def forbidden_strings(*paths: Path) -> list[str]:
    """Local path strings that must never appear in anything published: the given folders, their
    parents, and the home folder (longest first).

    Example:
        >>> "/srv/lab/my_gan" in forbidden_strings(Path("/srv/lab/my_gan"))
        True
    """
    out = set()
    for path in paths:
        for p in (path, path.resolve(), path.parent, path.resolve().parent):
            text = str(p)
            if len(text) > 4 and text not in (os.sep, "/"):
                out.add(text)
    home = str(Path.home())
    if len(home) > 4:
        out.add(home)
    return sorted(out, key=len, reverse=True)


def check_no_local_paths(text: str, forbidden: list[str], where: str) -> None:
    """Raise MetadataError if ``text`` holds one of the ``forbidden`` paths as a whole path (not as part
    of a longer name or URL path: ``/root`` is not found in ``https://x.org/rootkit`` or ``x.org/root``).

    Example:
        >>> check_no_local_paths("see https://x.org/srv/lab", ["/srv/lab"], "The description")
        >>> check_no_local_paths("trained in /srv/lab/run1", ["/srv/lab"], "The description")
        Traceback (most recent call last):
        ...
        medhub.errors.MetadataError: The description would publish the local path /srv/lab; remove it from the metadata, model_description and creator fields.
    """
    for path in forbidden:
        if re.search(rf"(?<![A-Za-z0-9_.-]){re.escape(path)}(?![A-Za-z0-9_.-])", text):
            raise MetadataError(f"{where} would publish the local path {path}; remove it from the metadata, "
                                "model_description and creator fields.", step="metadata")


def files_with_local_paths(folder: Path, forbidden: list[str], skip: frozenset[str] = frozenset()) -> list[str]:
    """Text files of the package (code, model card, configs; under 1 MB) that name a forbidden local path."""
    from .archive import package_members

    found = []
    for rel, path in package_members(folder):
        if rel not in skip and path.suffix.lower() in TEXT_SUFFIXES and path.stat().st_size < 1 << 20:
            text = path.read_text(encoding="utf-8", errors="replace")
            try:
                check_no_local_paths(text, forbidden, rel)
            except MetadataError:
                found.append(rel)
    return found
