"""The manifest: one CSV row per sample (index, seed, file names, labels), built and written in one place.

Every run type (a single-process run, shards, Ray workers) builds its rows with
:func:`sample_rows` and writes them with :class:`ManifestWriter`, so ``manifest.csv`` has the
same columns, order and bytes whichever way the samples were made.
"""

from __future__ import annotations

import csv
import io
import os
import re
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, TextIO

import numpy as np

from ..atomic import write_text_atomically
from ..errors import OutputPathError
from .encode import sample_filename
from .marks import Marker
from .specs import OutputSpec, plain_value

MANIFEST = "manifest.csv"
#: The record of what ran, beside the manifest.
PROVENANCE = "provenance.json"
_PART = re.compile(r"^manifest\.part-(\d+)-of-(\d+)\.csv$")

#: One file to write: (file name, the sample's array, its spec, its sample record or None for no mark).
FileJob = tuple[str, np.ndarray, OutputSpec, "dict[str, Any] | None"]


def manifest_columns(specs: Sequence[OutputSpec]) -> list[str]:
    """The manifest's columns: ``index``, ``seed``, then one per output (and ``<name>_scale`` for
    outputs whose files are scaled, e.g. 0/1 masks written as 0/255)."""
    columns = ["index", "seed"]
    for s in specs:
        columns += [s.name] + ([f"{s.name}_scale"] if s.scale else [])
    return columns


def sample_rows(indices: Sequence[int], seeds: Sequence[int], arrays: Mapping[str, np.ndarray],
                specs: Sequence[OutputSpec], marker: Marker | None = None,
                inputs: Mapping[str, np.ndarray] | None = None) -> list[tuple[dict[str, Any], list[FileJob]]]:
    """For each sample of a batch: its manifest row and the files to write for it.

    File outputs get their file name in the row; outputs kept in the manifest (labels) their value.
    With a ``marker`` (:class:`medhub.outputs.marks.Marker`) each file gets its sample record
    (``inputs``: the batch's rows of the per-sample inputs, recorded in it); without one the files
    are not marked.

    Example:
        >>> spec = OutputSpec("image", "image", (2, 2), "uint8")
        >>> [(row, [name for name, _, _, _ in files]) for row, files in
        ...  sample_rows([7], [99], {"image": np.zeros((1, 2, 2), np.uint8)}, [spec])]
        [({'index': 7, 'seed': 99, 'image': '000007_image.png'}, ['000007_image.png'])]
    """
    out = []
    for j, (index, seed) in enumerate(zip(indices, seeds)):
        own = {k: v[j] for k, v in inputs.items()} if inputs else None
        row: dict[str, Any] = {"index": int(index), "seed": int(seed)}
        files: list[FileJob] = []
        for spec in specs:
            value = np.asarray(arrays[spec.name][j])
            name = sample_filename(int(index), spec)
            if name is None:
                row[spec.name] = plain_value(value)
            else:
                row[spec.name] = name
                record = None if marker is None else marker.record(index, seed, spec.name, own)
                files.append((name, value, spec, record))
            if spec.scale:
                row[f"{spec.name}_scale"] = spec.scale
        out.append((row, files))
    return out


class ManifestWriter:
    """Writes manifest rows to a text file object: the header first, then rows as they come."""

    def __init__(self, fh: TextIO, specs: Sequence[OutputSpec] | Sequence[str]) -> None:
        """``specs``: the outputs spec, or the column names themselves (e.g. a manifest's header)."""
        columns = [c for c in specs if isinstance(c, str)] or manifest_columns(specs)  # type: ignore[arg-type]
        self._csv = csv.DictWriter(fh, fieldnames=columns, lineterminator="\n")
        self._csv.writeheader()

    def write(self, rows: Iterable[Mapping[str, Any]]) -> None:
        self._csv.writerows(rows)


def manifest_text(specs: Sequence[OutputSpec] | Sequence[str], rows: Iterable[Mapping[str, Any]]) -> str:
    """A whole manifest as text."""
    buf = io.StringIO()
    ManifestWriter(buf, specs).write(rows)
    return buf.getvalue()


def read_manifest(folder: str | os.PathLike[str]) -> list[dict[str, str]]:
    """Rows of ``manifest.csv`` in a generation output folder (merged from the shards' manifest
    parts first, if a sharded run has not been merged yet)."""
    if not (Path(folder) / MANIFEST).exists() and any(Path(folder).glob("manifest.part-*.csv")):
        merge_manifests(folder)
    with open(Path(folder) / MANIFEST, newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


def part_name(k: int, n: int, stem: str = "manifest", suffix: str = ".csv") -> str:
    """The name of shard ``k`` of ``n``'s part file, e.g. ``manifest.part-00000-of-00004.csv``."""
    return f"{stem}.part-{k:05d}-of-{n:05d}{suffix}"


def try_merge(folder: str | os.PathLike[str]) -> bool:
    """Merge the manifest parts into ``manifest.csv`` if all parts are there; return whether it did."""
    try:
        merge_manifests(folder)
    except OutputPathError:
        return False
    return True


def merge_manifests(folder: str | os.PathLike[str]) -> Path:
    """Join ``manifest.part-K-of-N.csv`` of all N shards into ``manifest.csv`` (atomically).

    Raises :class:`OutputPathError` naming the missing shards, or indices missing or duplicated.
    """
    import json

    folder = Path(folder)
    run = json.loads((folder / "run.json").read_text()) if (folder / "run.json").exists() else {}
    parts = {}
    for p in folder.iterdir():
        m = _PART.match(p.name)
        if m:
            parts[int(m.group(1))] = (p, int(m.group(2)))
    if not parts:
        raise OutputPathError(f"No manifest parts in {folder}.")
    n = {total for _, total in parts.values()}
    if len(n) != 1:
        raise OutputPathError(f"Manifest parts in {folder} come from runs with different shard counts: {sorted(n)}.")
    total = n.pop()
    missing = [k for k in range(total) if k not in parts]
    if missing:
        raise OutputPathError(f"Shards {missing[:10]} of {total} have not finished in {folder}; run them, then merge.")
    rows: list[dict[str, str]] = []
    header: list[str] | None = None
    for k in range(total):
        with open(parts[k][0], newline="", encoding="utf-8") as fh:
            reader = csv.DictReader(fh)
            header = header or list(reader.fieldnames or [])
            rows.extend(reader)
    indices = sorted(int(r["index"]) for r in rows)
    expected = run.get("num_samples", len(rows))
    if indices != list(range(expected)):
        raise OutputPathError(f"The manifest parts in {folder} do not cover indices 0..{expected - 1} exactly once.")
    rows.sort(key=lambda r: int(r["index"]))
    target = folder / MANIFEST
    write_text_atomically(target, manifest_text(header or [], rows))
    return target
