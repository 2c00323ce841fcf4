"""Output specs, their checks, and the writers that put samples on disk (PNG, NIfTI, NPY).

A model's ``execution.outputs`` lists what one sample holds, e.g.::

    [{"name": "image", "kind": "image", "shape": [64, 64], "dtype": "uint8", "range": [0, 255]},
     {"name": "label", "kind": "label", "shape": [], "dtype": "int64", "values": [0, 1, 2]}]

Batches are dicts of batch-first numpy arrays keyed by output name.
"""

from __future__ import annotations

import csv
import json
import logging
import os
import shutil
import struct
import tempfile
import uuid
import zlib
from collections import deque
from collections.abc import Iterable, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np

from .errors import OutputPathError, OutputSpecError

logger = logging.getLogger("medhub.outputs")


@dataclass(frozen=True)
class OutputSpec:
    """What one output of one sample is: name, kind, per-sample shape, dtype, value range."""

    name: str
    kind: str
    shape: tuple[int, ...]
    dtype: str
    channels: int | None = None
    range: tuple[float, float] | None = None
    values: tuple[Any, ...] | None = None
    format: str | None = None
    spacing: tuple[float, ...] | None = None

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> OutputSpec:
        return cls(
            name=d["name"],
            kind=d["kind"],
            shape=tuple(d.get("shape", ())),
            dtype=d["dtype"],
            channels=d.get("channels"),
            range=tuple(d["range"]) if d.get("range") is not None else None,
            values=tuple(d["values"]) if d.get("values") is not None else None,
            format=d.get("format"),
            spacing=tuple(d["spacing"]) if d.get("spacing") is not None else None,
        )

    @property
    def file_format(self) -> str:
        """``png`` for 2D images and masks, ``nifti`` for volumes, ``manifest`` for labels."""
        if self.format:
            return self.format
        if self.kind == "label":
            return "manifest"
        if self.kind == "volume":
            return "nifti"
        three = len(self.shape) == 3 and self.channels in (1, 3, 4)
        two_d = len(self.shape) == 2 or (three and self.channels in (self.shape[0], self.shape[-1]))
        return "png" if two_d else "nifti"

    def describe(self) -> str:
        return f"{self.name} ({self.kind}, shape (n, {', '.join(map(str, self.shape))}), {self.dtype})".replace(
            "(n, )", "(n,)"
        )


def parse_specs(outputs: Sequence[Mapping[str, Any]] | None) -> list[OutputSpec]:
    return [OutputSpec.from_dict(o) for o in outputs or []]


def infer_specs(batch: Mapping[str, np.ndarray]) -> list[OutputSpec]:
    """Specs for a package that declares none, read off its first batch."""
    specs = []
    for name, arr in batch.items():
        arr = np.asarray(arr)
        shape = arr.shape[1:]
        if arr.dtype.kind in "OUS" or len(shape) == 0:
            kind = "label"
        elif name.startswith("mask"):
            kind = "mask"
        elif len(shape) == 2 or (len(shape) == 3 and shape[-1] in (3, 4)):
            kind = "image"
        else:
            kind = "volume"
        dtype = "str" if arr.dtype.kind in "OUS" else str(arr.dtype)
        channels = shape[-1] if kind in ("image", "mask") and len(shape) == 3 else None
        specs.append(OutputSpec(name, kind, tuple(shape), dtype, channels=channels))
    return specs


def _distinct_values(arr: np.ndarray) -> np.ndarray:
    """The distinct values of ``arr``, sorted (as ``np.unique``).

    One-byte integers (label maps) are counted with ``np.bincount``, a single pass instead of
    ``np.unique``'s sort of the whole batch.
    """
    if arr.dtype in (np.uint8, np.int8):
        counts = np.bincount(arr.view(np.uint8).ravel(), minlength=256)
        present = np.flatnonzero(counts)
        if arr.dtype == np.int8:
            return np.sort(present.astype(np.uint8).view(np.int8))
        return present.astype(np.uint8)
    return np.unique(arr)


def check_outputs(model_id: str, batch: Any, specs: Sequence[OutputSpec], n: int) -> dict[str, np.ndarray]:
    """Check one batch against the outputs spec; return it as a dict of numpy arrays.

    Raises :class:`OutputSpecError` naming the spec and the offending shape, dtype or value.
    """
    if not isinstance(batch, Mapping):
        raise OutputSpecError(
            f"Model {model_id}: sample() must return a dict of batch-first arrays, not {type(batch).__name__}."
        )
    out: dict[str, np.ndarray] = {}
    for spec in specs:
        if spec.name not in batch:
            raise OutputSpecError(
                f"Model {model_id}: output '{spec.name}' declared in its outputs spec is missing; "
                f"the package returned {sorted(batch)}."
            )
        arr = np.asarray(batch[spec.name])
        expected = (n, *spec.shape)
        if arr.shape != expected:
            raise OutputSpecError(
                f"Model {model_id}: output '{spec.name}' has shape {arr.shape}, but its outputs spec "
                f"{spec.describe()} requires {expected} for a batch of {n}."
            )
        if spec.dtype == "str":
            if arr.dtype.kind not in "OUS":
                raise OutputSpecError(f"Model {model_id}: output '{spec.name}' has dtype {arr.dtype}, spec says str.")
        elif arr.dtype != np.dtype(spec.dtype):
            raise OutputSpecError(
                f"Model {model_id}: output '{spec.name}' has dtype {arr.dtype}, but its outputs spec "
                f"{spec.describe()} requires {spec.dtype}."
            )
        if spec.range is not None and arr.size and arr.dtype.kind in "biuf":
            lo, hi = float(arr.min()), float(arr.max())
            if np.isnan(lo) or np.isnan(hi) or lo < spec.range[0] or hi > spec.range[1]:
                raise OutputSpecError(
                    f"Model {model_id}: output '{spec.name}' has values in [{lo}, {hi}], outside the range "
                    f"{list(spec.range)} of its outputs spec."
                )
        if spec.values is not None and arr.size:
            bad = set(_distinct_values(arr).tolist()) - set(spec.values)
            if bad:
                raise OutputSpecError(
                    f"Model {model_id}: output '{spec.name}' holds {sorted(bad)[:5]}, not among the values "
                    f"{list(spec.values)} of its outputs spec."
                )
        out[spec.name] = arr
    return out


def to_samples(batch: Mapping[str, np.ndarray], specs: Sequence[OutputSpec]) -> list[Any]:
    """Batch dict -> medigan-style list: one array per sample, or a tuple ``(image, mask, ..., label)``."""
    names = [s.name for s in specs] if specs else list(batch)
    arrays = [batch[name] for name in names]
    n = len(arrays[0]) if arrays else 0
    if len(arrays) == 1:
        return list(arrays[0])
    return [tuple(_item(a[i]) for a in arrays) for i in range(n)]


def _item(x: Any) -> Any:
    if isinstance(x, np.generic) or (isinstance(x, np.ndarray) and x.ndim == 0):
        return x.item()
    return x


def from_samples(result: Any, specs: Sequence[OutputSpec], model_id: str) -> dict[str, np.ndarray]:
    """medigan-style return value (list of arrays or of tuples) -> batch dict keyed by spec name."""
    if result is None:
        raise OutputSpecError(
            f"Model {model_id}: its generate() returned None with save_images=False; a medigan package must "
            "return the samples as a list of arrays or tuples."
        )
    items = list(result)
    if not items:
        raise OutputSpecError(f"Model {model_id}: its generate() returned no samples.")
    first = items[0]
    width = len(first) if isinstance(first, tuple) else 1
    if specs:
        names = [s.name for s in specs]
    else:
        names = ["image"] if width == 1 else ["image"] + [f"mask{'_' + str(k) if k > 1 else ''}" for k in range(1, width)]
        if width > 1 and np.ndim(first[-1]) == 0:
            names[-1] = "label"
    if len(names) != width:
        raise OutputSpecError(
            f"Model {model_id}: each sample has {width} element(s), its outputs spec declares {len(names)}: {names}."
        )
    if width == 1:
        return {names[0]: np.stack([np.asarray(x) for x in items])}
    columns = list(zip(*items))
    return {name: np.stack([np.asarray(x) for x in col]) for name, col in zip(names, columns)}


# ---------------------------------------------------------------------------- writing
_warned_unscaled: set[str] = set()


def _to_png_array(arr: np.ndarray, spec: OutputSpec) -> np.ndarray:
    """Array for a PNG file: (H, W) or (H, W, C) of uint8, or (H, W) of uint16.

    uint8 and uint16 are written as they are (8- and 16-bit PNG), booleans as 0/255. Other integer
    types (e.g. int16 CT) are mapped from the spec's ``range`` to 16 bit, floats to 8 bit. Without a
    ``range`` each image is scaled by its own min and max (logged once, as intensities are then
    not comparable between files). Channel-first arrays are moved to channel-last.
    """
    if arr.ndim == 3 and arr.shape[0] in (1, 3, 4) and arr.shape[-1] not in (1, 3, 4):
        arr = np.moveaxis(arr, 0, -1)
    if arr.ndim == 3 and arr.shape[-1] == 1:
        arr = arr[..., 0]
    if arr.dtype == np.bool_:
        return arr.astype(np.uint8) * 255
    if arr.dtype in (np.uint8, np.uint16):
        return arr
    if spec.range:
        lo, hi = spec.range
    else:
        if spec.name not in _warned_unscaled:
            _warned_unscaled.add(spec.name)
            logger.warning("Output %r has dtype %s and no range in its outputs spec; each PNG is scaled by its own "
                           "min and max.", spec.name, arr.dtype)
        lo, hi = float(arr.min()), float(arr.max())
    to16 = arr.dtype.kind in "iu" and arr.ndim == 2
    top = 65535 if to16 else 255
    scaled = (arr.astype(np.float64) - lo) / max(hi - lo, 1e-12)
    return np.clip(np.round(scaled * top), 0, top).astype(np.uint16 if to16 else np.uint8)


_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_PNG_COLOR_TYPE = {1: 0, 2: 4, 3: 2, 4: 6}  # channels -> grey, grey+alpha, RGB, RGBA


def _png_chunk(tag: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(data, zlib.crc32(tag)))


def encode_png(arr: np.ndarray, level: int = 1) -> bytes:
    """A PNG file of ``arr``: (H, W) uint8 or uint16 grey, or (H, W, C) uint8 with C in 1..4.

    Plain numpy and zlib (no Pillow, fewer per-file Python calls): each row is stored with the
    PNG *Sub* filter (the difference to the pixel on its left, computed for the whole image at
    once) and the rows are deflated at zlib level ``level``. Any PNG reader gives back ``arr``.

    Example:
        >>> import io
        >>> from PIL import Image
        >>> a = np.arange(12, dtype=np.uint8).reshape(3, 4)
        >>> bool((np.asarray(Image.open(io.BytesIO(encode_png(a)))) == a).all())
        True
    """
    if arr.dtype == np.uint16:
        depth, data = 16, arr.astype(">u2", copy=False)
    elif arr.dtype == np.uint8:
        depth, data = 8, arr
    else:
        raise ValueError(f"encode_png takes uint8 or uint16 arrays, not {arr.dtype}")
    channels = 1 if arr.ndim == 2 else arr.shape[2]
    if arr.ndim not in (2, 3) or channels not in _PNG_COLOR_TYPE or (depth == 16 and channels != 1):
        raise ValueError(f"encode_png takes (H, W) or (H, W, 1..4) uint8 arrays or (H, W) uint16, not {arr.shape}")
    h, w = arr.shape[:2]
    rows = np.ascontiguousarray(data).view(np.uint8).reshape(h, -1)
    bpp = channels * depth // 8
    filtered = np.empty((h, rows.shape[1] + 1), np.uint8)
    filtered[:, 0] = 1  # filter type Sub
    filtered[:, 1 : 1 + bpp] = rows[:, :bpp]
    np.subtract(rows[:, bpp:], rows[:, :-bpp], out=filtered[:, 1 + bpp :])  # wraps modulo 256, as PNG wants
    header = struct.pack(">IIBBBBB", w, h, depth, _PNG_COLOR_TYPE[channels], 0, 0, 0)
    return b"".join((_PNG_SIGNATURE, _png_chunk(b"IHDR", header),
                     _png_chunk(b"IDAT", zlib.compress(filtered.tobytes(), level)), _png_chunk(b"IEND", b"")))


def write_png(path: Path | BinaryIO, arr: np.ndarray, spec: OutputSpec) -> None:
    """Write one PNG file to a path or a binary file object (the Ray workers encode into memory)."""
    image = _to_png_array(arr, spec)
    try:
        data = encode_png(image)
    except ValueError:  # a layout the plain encoder does not write: Pillow decides (and explains)
        from PIL import Image

        Image.fromarray(image).save(path, format="PNG", compress_level=1)
        return
    if hasattr(path, "write"):
        path.write(data)  # type: ignore[union-attr]
        return
    with open(path, "wb") as fh:
        fh.write(data)


def write_nifti(path: Path, arr: np.ndarray, spec: OutputSpec) -> None:
    import nibabel as nib

    affine = np.eye(4)
    if spec.spacing:
        affine[: len(spec.spacing[:3]), : len(spec.spacing[:3])] = np.diag(spec.spacing[:3])
    data = arr.astype(np.uint8) if arr.dtype == np.bool_ else arr
    nib.save(nib.Nifti1Image(data, affine), str(path))


def write_npy(path: Path, arr: np.ndarray, spec: OutputSpec) -> None:
    np.save(path, arr)


_WRITERS = {"png": (write_png, ".png"), "nifti": (write_nifti, ".nii.gz"), "npy": (write_npy, ".npy")}


def sample_filename(index: int, spec: OutputSpec) -> str | None:
    """File name of output ``spec`` of sample ``index`` (None for outputs kept in the manifest)."""
    fmt = spec.file_format
    return None if fmt == "manifest" else f"{index:06d}_{spec.name}{_WRITERS[fmt][1]}"


def prepare_output_dir(output_path: str | os.PathLike[str]) -> tuple[Path, Path]:
    """Check ``output_path`` and create a private staging folder beside it.

    Returns (final folder, staging folder). The final folder must not exist, or be an empty
    folder: medhub never mixes a new run with files that are already there.
    """
    final = Path(output_path).expanduser().resolve()
    if final.exists():
        if not final.is_dir():
            raise OutputPathError(f"Output path {final} is a file; give a folder path.")
        if any(final.iterdir()):
            raise OutputPathError(
                f"Output folder {final} is not empty; medhub does not mix runs. Choose a new folder or empty it."
            )
    parent = final.parent
    try:
        parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=f".{final.name}.partial-", dir=parent))
    except OSError as exc:
        raise OutputPathError(f"Cannot write to output folder {final}: {exc.strerror or exc}.") from None
    return final, staging


@dataclass
class GenerationRun:
    """What a saving ``generate`` call wrote. ``os.fspath(run)`` is the output folder."""

    output_path: Path
    num_samples: int
    seed: int
    manifest_path: Path
    provenance_path: Path

    @property
    def files(self) -> list[str]:
        """Names of the sample files, read from the manifest (label columns are not files)."""
        provenance = json.loads(self.provenance_path.read_text())
        file_columns = [o["name"] for o in provenance.get("outputs", []) if OutputSpec(**o).file_format != "manifest"]
        return [row[c] for row in read_manifest(self.output_path) for c in file_columns]

    def __fspath__(self) -> str:
        return str(self.output_path)

    def __str__(self) -> str:
        return f"{self.num_samples} samples (seed {self.seed}) in {self.output_path}"


class RunWriter:
    """Writes batches to a staging folder with a pool of encoder threads, then publishes it.

    At most ``max_pending`` encoding tasks are in flight and manifest rows are streamed to
    ``manifest.csv``, so memory stays bounded for any run length. :meth:`finish` writes
    ``provenance.json`` and renames the staging folder into place; :meth:`abort` removes it,
    leaving the output path as it was.
    """

    def __init__(self, output_path: str | os.PathLike[str], specs: Sequence[OutputSpec], workers: int | None = None,
                 max_pending: int | None = None) -> None:
        self.final, self.staging = prepare_output_dir(output_path)
        self.specs = list(specs)
        self.workers = workers or max(1, min(4, os.cpu_count() or 1))
        self.max_pending = max_pending or 4 * self.workers
        self._pool = ThreadPoolExecutor(self.workers, thread_name_prefix="medhub-writer")
        self._pending: deque[Future[None]] = deque()
        self._manifest: Any = None
        self._csv: Any = None
        self.num_samples = 0
        self.num_files = 0

    def set_specs(self, specs: Sequence[OutputSpec]) -> None:
        self.specs = list(specs)

    def _encode(self, jobs: list[tuple[Path, np.ndarray, OutputSpec]]) -> None:
        for path, arr, spec in jobs:
            _WRITERS[spec.file_format][0](path, arr, spec)

    def submit(self, indices: Sequence[int], seeds: Sequence[int], batch: Mapping[str, np.ndarray]) -> None:
        if self._csv is None:  # the columns are known once the first batch fixed the specs
            self._manifest = open(self.staging / "manifest.csv", "w", newline="", encoding="utf-8")
            self._csv = csv.DictWriter(self._manifest, fieldnames=["index", "seed"] + [s.name for s in self.specs],
                                       lineterminator="\n")
            self._csv.writeheader()
        jobs: list[tuple[Path, np.ndarray, OutputSpec]] = []
        rows = []
        for j, (index, seed) in enumerate(zip(indices, seeds)):
            row: dict[str, Any] = {"index": int(index), "seed": int(seed)}
            for spec in self.specs:
                value = batch[spec.name][j]
                name = sample_filename(int(index), spec)
                if name is None:
                    row[spec.name] = _item(np.asarray(value))
                else:
                    row[spec.name] = name
                    jobs.append((self.staging / name, np.asarray(value), spec))
            rows.append(row)
        self._csv.writerows(rows)
        self.num_samples += len(rows)
        self.num_files += len(jobs)
        chunk = max(1, -(-len(jobs) // self.workers))
        for k in range(0, len(jobs), chunk):
            while len(self._pending) >= self.max_pending:
                self._pending.popleft().result()
            self._pending.append(self._pool.submit(self._encode, jobs[k : k + chunk]))

    def finish(self, provenance: dict[str, Any]) -> GenerationRun:
        try:
            while self._pending:
                self._pending.popleft().result()
        finally:
            self._pool.shutdown(wait=True)
            if self._manifest is not None:
                self._manifest.close()
        provenance = dict(provenance, files=self.num_files, outputs=[s.__dict__ for s in self.specs])
        (self.staging / "provenance.json").write_text(json.dumps(provenance, indent=2, default=str) + "\n")
        if self.final.exists():
            self.final.rmdir()  # checked empty in prepare_output_dir
        os.replace(self.staging, self.final)
        return GenerationRun(self.final, self.num_samples, int(provenance.get("seed", 0)), self.final / "manifest.csv",
                             self.final / "provenance.json")

    def abort(self) -> None:
        for fut in self._pending:
            fut.cancel()
        self._pool.shutdown(wait=True)
        if self._manifest is not None:
            self._manifest.close()
        shutil.rmtree(self.staging, ignore_errors=True)


def read_manifest(folder: str | os.PathLike[str]) -> list[dict[str, str]]:
    """Rows of ``manifest.csv`` in a generation output folder (merged from the shards' manifest
    parts first, if a sharded run has not been merged yet)."""
    if not (Path(folder) / "manifest.csv").exists() and any(Path(folder).glob("manifest.part-*.csv")):
        from .shards import merge_manifests

        merge_manifests(folder)
    with open(Path(folder) / "manifest.csv", newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


def unique_run_dir(root: Path, model_id: str) -> Path:
    """A fresh folder name under ``root/<model_id>/`` for runs without an explicit output path."""
    from datetime import datetime, timezone

    stamp = datetime.now(timezone.utc).strftime("%Y%m%d-%H%M%S")
    return root / model_id / f"{stamp}-{uuid.uuid4().hex[:6]}"


def iter_batches(total: int, batch_size: int) -> Iterable[range]:
    """Consecutive index ranges of at most ``batch_size`` covering ``0 .. total - 1``."""
    for lo in range(0, total, batch_size):
        yield range(lo, min(lo + batch_size, total))
