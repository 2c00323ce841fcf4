"""Atomic file writes: a temporary file beside the target, renamed onto it (``os.replace``).

A reader sees the old file or the new one, never half of one; a failed or interrupted write
leaves the old file (or none) and no temporary file. Every medhub write of a state or record
file (catalog cache, trust records, manifests, provenance, sample files) goes through here.

Example:
    >>> import json, tempfile
    >>> from pathlib import Path
    >>> path = Path(tempfile.mkdtemp()) / "state.json"
    >>> write_json_atomically(path, {"a": 1}, indent=2)
    >>> json.loads(path.read_text()), [p.name for p in path.parent.iterdir()]
    ({'a': 1}, ['state.json'])
"""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

__all__ = ["replacing", "write_bytes_atomically", "write_json_atomically", "write_text_atomically"]


@contextmanager
def replacing(path: str | os.PathLike[str], suffix: str = "") -> Iterator[Path]:
    """A fresh temporary path beside ``path`` to write; renamed onto ``path`` when the block ends
    without an error, removed when it raises (the error goes on).

    ``suffix`` ends the temporary name (for writers that add an ending, e.g. ``np.savez``: ``".npz"``).

    Example:
        >>> import tempfile
        >>> from pathlib import Path
        >>> target = Path(tempfile.mkdtemp()) / "a.txt"
        >>> with replacing(target) as tmp:
        ...     _ = tmp.write_text("done")
        >>> target.read_text()
        'done'
    """
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex[:8]}.tmp{suffix}")
    try:
        yield tmp
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def write_bytes_atomically(path: str | os.PathLike[str], data: bytes) -> None:
    """Write ``data`` to ``path`` atomically (see :func:`replacing`)."""
    with replacing(path) as tmp:
        tmp.write_bytes(data)


def write_text_atomically(path: str | os.PathLike[str], text: str) -> None:
    """Write ``text`` (UTF-8) to ``path`` atomically (see :func:`replacing`)."""
    with replacing(path) as tmp:
        tmp.write_text(text, encoding="utf-8")


def write_json_atomically(path: str | os.PathLike[str], doc: Any, *, parents: bool = False, **dumps: Any) -> None:
    """Write ``doc`` as JSON to ``path`` atomically; ``dumps`` are :func:`json.dumps` options
    (``indent``, ``default``...); ``parents`` creates missing parent folders first."""
    if parents:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
    write_text_atomically(path, json.dumps(doc, **dumps))
