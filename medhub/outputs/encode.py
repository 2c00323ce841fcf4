"""Encoders: one output of one sample -> the bytes of its file (PNG, NIfTI, NPY, DICOM), and its file name."""

from __future__ import annotations

import io
import logging
import struct
import zlib
from collections.abc import Mapping
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np

from .marks import mark_nifti, png_chunk, png_chunks, png_texts_of
from .specs import OutputSpec

#: A file's sample record (:func:`medhub.outputs.marks.sample_record`), or None for an unmarked file.
Record = Mapping[str, Any] | None

logger = logging.getLogger("medhub.outputs")

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
    if spec.scale:  # a 0/1 mask written visibly as 0/255 (the manifest records the scale)
        return (arr.astype(np.uint16) * int(spec.scale)).clip(0, 255).astype(np.uint8)
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


def encode_png(arr: np.ndarray, level: int = 1, chunks: bytes = b"") -> bytes:
    """A PNG file of ``arr``: (H, W) uint8 or uint16 grey, or (H, W, C) uint8 with C in 1..4.

    Plain numpy and zlib (no Pillow, fewer per-file Python calls): each row is stored with the
    PNG *Sub* filter (the difference to the pixel on its left, computed for the whole image at
    once) and the rows are deflated at zlib level ``level``. Any PNG reader gives back ``arr``.
    ``chunks`` (whole ancillary chunks, e.g. the mark of :func:`medhub.outputs.marks.png_chunks`)
    go before the image data.

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
    return b"".join((_PNG_SIGNATURE, png_chunk(b"IHDR", header), chunks,
                     png_chunk(b"IDAT", zlib.compress(filtered.tobytes(), level)), png_chunk(b"IEND", b"")))


def write_png(path: Path | BinaryIO, arr: np.ndarray, spec: OutputSpec, record: Record = None) -> None:
    """Write one PNG file to a path or a binary file object (the Ray workers encode into memory),
    marked with ``record`` when one is given (and signed with C2PA content credentials when the
    record carries a signing key, :mod:`medhub.outputs.credentials`)."""
    image = _to_png_array(arr, spec)
    chunks = png_chunks(record) if record is not None else b""
    try:
        data = encode_png(image, chunks=chunks)
    except ValueError:  # a layout the plain encoder does not write: Pillow decides (and explains)
        from PIL import Image, PngImagePlugin

        info = PngImagePlugin.PngInfo()
        for key, text in (png_texts_of(record) if record is not None else {}).items():
            info.add_itxt(key, text)  # the same two iTXt chunks, written by Pillow
        buf = io.BytesIO()
        Image.fromarray(image).save(buf, format="PNG", compress_level=1, pnginfo=info)
        data = buf.getvalue()
    signing = getattr(record, "signing", None)
    if signing is not None:
        from .credentials import sign_png

        data = sign_png(data, record, signing)  # type: ignore[arg-type]
    if hasattr(path, "write"):
        path.write(data)  # type: ignore[union-attr]
        return
    with open(path, "wb") as fh:
        fh.write(data)


def write_nifti(path: Path, arr: np.ndarray, spec: OutputSpec, record: Record = None) -> None:
    """Write one NIfTI file, marked with ``record`` (``descrip`` and a header extension) when one is given."""
    import nibabel as nib

    affine = np.eye(4)
    if spec.spacing:
        affine[: len(spec.spacing[:3]), : len(spec.spacing[:3])] = np.diag(spec.spacing[:3])
    data = arr.astype(np.uint8) if arr.dtype == np.bool_ else arr
    image = nib.Nifti1Image(data, affine)
    if record is not None:
        mark_nifti(image, record)
    nib.save(image, str(path))


def write_npy(path: Path | BinaryIO, arr: np.ndarray, spec: OutputSpec, record: Record = None) -> None:
    """Write one NPY file (the format has no place for metadata: ``record`` is not stored)."""
    np.save(path, arr)


def write_dicom(path: Path | BinaryIO, arr: np.ndarray, spec: OutputSpec, record: Record = None) -> None:
    """:func:`medhub.outputs.dicom.write_dicom` (pydicom and highdicom load only for DICOM runs)."""
    from .dicom import write_dicom as write

    write(path, arr, spec, record)


_WRITERS = {"png": (write_png, ".png"), "nifti": (write_nifti, ".nii.gz"), "npy": (write_npy, ".npy"),
            "dicom": (write_dicom, ".dcm")}


def sample_filename(index: int, spec: OutputSpec) -> str | None:
    """File name of output ``spec`` of sample ``index`` (None for outputs kept in the manifest)."""
    fmt = spec.file_format
    return None if fmt == "manifest" else f"{index:06d}_{spec.name}{_WRITERS[fmt][1]}"


def write_file(path: Path | BinaryIO, arr: np.ndarray, spec: OutputSpec, record: Record = None) -> None:
    """Write output ``spec`` of one sample to ``path`` in the spec's file format, marked with the
    sample ``record`` (:mod:`medhub.outputs.marks`) when one is given."""
    _WRITERS[spec.file_format][0](path, arr, spec, record)  # type: ignore[operator]


def encode(arr: np.ndarray, spec: OutputSpec, record: Record = None) -> bytes:
    """The file of output ``spec`` of one sample, as bytes: exactly what :func:`write_file` writes."""
    if spec.file_format in ("png", "npy", "dicom"):  # these writers take a file object
        buf = io.BytesIO()
        write_file(buf, arr, spec, record)
        return buf.getvalue()
    import tempfile

    with tempfile.TemporaryDirectory(prefix="medhub-encode-") as tmp:  # nibabel writes to a path only
        path = Path(tmp) / f"sample{_WRITERS[spec.file_format][1]}"
        write_file(path, arr, spec, record)
        return path.read_bytes()


def file_suffix(spec: OutputSpec) -> str:
    """The file name suffix of the spec's format (``.png``, ``.nii.gz``, ``.npy``, ``.dcm``)."""
    return str(_WRITERS[spec.file_format][1])
