"""Output specs and their checks: what one sample of a model holds, and whether a batch matches.

A model's ``execution.outputs`` lists what one sample holds, e.g.::

    [{"name": "image", "kind": "image", "shape": [64, 64], "dtype": "uint8", "range": [0, 255]},
     {"name": "label", "kind": "label", "shape": [], "dtype": "int64", "values": [0, 1, 2]}]

Batches are dicts of batch-first numpy arrays keyed by output name.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from ..errors import InvalidArgumentError, OutputSpecError

#: The file formats medhub writes (``output_format`` of a run; ``format`` of an output).
FILE_FORMATS = ("png", "nifti", "npy", "dicom")


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
    scale: int | None = None
    modality: str | None = None
    #: DICOM runs (:func:`medhub.outputs.dicom.dicom_specs`): the output's Series Number, and for a
    #: mask the spec of the image it segments (the referenced image of its Segmentation).
    series: int | None = None
    source: OutputSpec | None = None

    def __post_init__(self) -> None:
        if isinstance(self.source, Mapping):  # a spec sent as a dict (dataclasses.asdict) to a writer process
            object.__setattr__(self, "source", OutputSpec(**self.source))

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
            scale=d.get("scale"),
            modality=d.get("modality"),
        )

    @property
    def file_format(self) -> str:
        """``png`` for 2D images and masks, ``nifti`` for volumes, ``manifest`` for labels."""
        if self.format:
            return self.format
        if self.kind == "label":
            return "manifest"
        return "png" if self.is_2d else "nifti"

    @property
    def is_2d(self) -> bool:
        """Whether one sample of this output is a 2D image: (H, W), or (H, W, C) / (C, H, W) with C
        its ``channels`` (1, 3 or 4)."""
        if self.kind == "volume":
            return False
        three = len(self.shape) == 3 and self.channels in (1, 3, 4)
        return len(self.shape) == 2 or (three and self.channels in (self.shape[0], self.shape[-1]))

    @property
    def nbytes(self) -> int:
        """Bytes of this output for one sample in memory (strings count 64 bytes)."""
        if self.dtype == "str":
            return 64
        size = 1
        for n in self.shape:
            size *= int(n)
        return size * np.dtype(self.dtype).itemsize

    def describe(self) -> str:
        return f"{self.name} ({self.kind}, shape (n, {', '.join(map(str, self.shape))}), {self.dtype})".replace(
            "(n, )", "(n,)"
        )


def parse_specs(outputs: Sequence[Mapping[str, Any]] | None) -> list[OutputSpec]:
    return [OutputSpec.from_dict(o) for o in outputs or []]


def check_format(output_format: str | None) -> str | None:
    """``output_format`` if medhub writes it (or None); else an :class:`InvalidArgumentError`."""
    if output_format is not None and output_format not in FILE_FORMATS:
        raise InvalidArgumentError(f"Unknown output format {output_format!r}; medhub writes {', '.join(FILE_FORMATS)}.")
    return output_format


def with_format(specs: Sequence[OutputSpec], output_format: str | None,
                modality: str | None = None) -> list[OutputSpec]:
    """The specs of a run written in ``output_format`` (None: each output's own format).

    Every file output (images, masks, volumes; labels stay in the manifest) gets ``format``;
    ``modality`` (for DICOM) fills the outputs that name none. Raises
    :class:`InvalidArgumentError` for an unknown format, or PNG asked for an output that is not 2D.

    Example:
        >>> image = OutputSpec("image", "image", (8, 8), "uint8")
        >>> [s.file_format for s in with_format([image], "dicom", "MR")], with_format([image], "dicom", "MR")[0].modality
        (['dicom'], 'MR')
    """
    if check_format(output_format) is None:
        return list(specs)
    out = []
    for spec in specs:
        if spec.file_format == "manifest":
            out.append(spec)
            continue
        if output_format == "png" and not spec.is_2d:
            raise InvalidArgumentError(f"Output {spec.name!r} of shape {spec.shape} is not a 2D image, which PNG needs; "
                                       "choose nifti, npy or dicom.")
        out.append(replace(spec, format=output_format, modality=spec.modality or modality))
    return out


def infer_specs(batch: Mapping[str, np.ndarray]) -> list[OutputSpec]:
    """Specs for a package that declares none, read off its first batch.

    2D arrays, and 3D arrays with a trailing axis of 1, 3 or 4 (one-channel, RGB, RGBA), are
    images (masks when the output is named ``mask...``); other 3D arrays are volumes; scalars and
    strings are labels. An integer image or mask of 0 and 1 only (a binary mask, e.g. of a package
    that returns masks alone) gets ``values=(0, 1)`` and ``scale=255``: its PNG is written 0/255,
    so that it can be seen (as medigan's own save path does), and the manifest records the scale.

    Example:
        >>> [(s.kind, s.channels) for s in infer_specs({"image": np.zeros((2, 8, 8, 1), np.uint8)})]
        [('image', 1)]
    """
    specs = []
    for name, arr in batch.items():
        arr = np.asarray(arr)
        shape = arr.shape[1:]
        two_d = len(shape) == 2 or (len(shape) == 3 and shape[-1] in (1, 3, 4))
        if arr.dtype.kind in "OUS" or len(shape) == 0:
            kind = "label"
        elif name.startswith("mask") and two_d:
            kind = "mask"
        elif two_d:
            kind = "image"
        else:
            kind = "volume"
        dtype = "str" if arr.dtype.kind in "OUS" else str(arr.dtype)
        channels = shape[-1] if kind in ("image", "mask") and len(shape) == 3 else None
        binary = (kind in ("image", "mask") and arr.dtype.kind in "iu" and arr.size
                  and set(distinct_values(arr).tolist()) == {0, 1})
        specs.append(OutputSpec(name, kind, tuple(shape), dtype, channels=channels,
                                values=(0, 1) if binary else None, scale=255 if binary else None))
    return specs


def distinct_values(arr: np.ndarray) -> np.ndarray:
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
        if spec.range is not None and arr.size and arr.dtype.kind in "biuf" and not _within(arr.dtype, spec.range):
            lo, hi = float(arr.min()), float(arr.max())
            if np.isnan(lo) or np.isnan(hi) or lo < spec.range[0] or hi > spec.range[1]:
                raise OutputSpecError(
                    f"Model {model_id}: output '{spec.name}' has values in [{lo}, {hi}], outside the range "
                    f"{list(spec.range)} of its outputs spec."
                )
        if spec.values is not None and arr.size:
            bad = set(distinct_values(arr).tolist()) - set(spec.values)
            if bad:
                raise OutputSpecError(
                    f"Model {model_id}: output '{spec.name}' holds {sorted(bad)[:5]}, not among the values "
                    f"{list(spec.values)} of its outputs spec."
                )
        out[spec.name] = arr
    return out


def _within(dtype: np.dtype, bounds: tuple[float, float]) -> bool:
    """Whether every value of integer ``dtype`` lies in ``bounds`` (then a range check of a batch
    of it cannot fail and is skipped: a uint8 image with range [0, 255])."""
    if dtype.kind not in "iu":
        return False
    info = np.iinfo(dtype)
    return bool(bounds[0] <= info.min and info.max <= bounds[1])


def to_samples(batch: Mapping[str, np.ndarray], specs: Sequence[OutputSpec]) -> list[Any]:
    """Batch dict -> medigan-style list: one array per sample, or a tuple ``(image, mask, ..., label)``."""
    names = [s.name for s in specs] if specs else list(batch)
    arrays = [batch[name] for name in names]
    n = len(arrays[0]) if arrays else 0
    if len(arrays) == 1:
        return list(arrays[0])
    return [tuple(plain_value(a[i]) for a in arrays) for i in range(n)]


def plain_value(x: Any) -> Any:
    """A numpy scalar (or 0-d array) as a Python value; anything else unchanged."""
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
        if width > 1 and isinstance(first[-1], str):
            names[-1] = "name"  # e.g. (image, file name) of image-to-image packages
        elif width > 1 and np.ndim(first[-1]) == 0:
            names[-1] = "label"
    if len(names) != width:
        raise OutputSpecError(
            f"Model {model_id}: each sample has {width} element(s), its outputs spec declares {len(names)}: {names}."
        )
    if width == 1:
        return {names[0]: np.stack([np.asarray(x) for x in items])}
    columns = list(zip(*items))
    return {name: np.stack([np.asarray(x) for x in col]) for name, col in zip(names, columns)}
