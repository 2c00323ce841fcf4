"""Marks: every file medhub writes says that it is synthetic, what made it, and how to make it again.

A file's mark holds its *sample record*, a small JSON object (:func:`sample_record`)::

    {"mark": "medhub-sample/1", "synthetic": true, "medhub_version": "...",
     "model_id": "00101_DCGAN_BRAIN_MRI_T1", "model_version": "2.0.0", "package_digest": "sha256:...",
     "commit": null, "seed": 0, "sample_seed": 1234..., "index": 7, "output": "image",
     "inputs": {...}, "inputs_digest": null, "device": "cpu", "created": "2026-12-07T15:00:00Z"}

Where it goes (the pixels are never touched):

* **PNG**: an iTXt chunk ``medhub`` holding the record, and an XMP packet (iTXt
  ``XML:com.adobe.xmp``) whose ``Iptc4xmpExt:DigitalSourceType`` is IPTC's
  ``trainedAlgorithmicMedia``, both before the image data;
* **NIfTI**: ``descrip`` starts with ``synthetic`` and names the model; the record is a header
  extension (code 6, *comment*);
* **DICOM**: :mod:`medhub.outputs.dicom` (SyntheticData (0008,001C) = YES and the record);
* **NPY** has no place for metadata: those files carry no mark.

``created`` is taken once per run (:func:`creation_time`): ``SOURCE_DATE_EPOCH`` when set (the
reproducible-builds convention), so that a rerun writes the same bytes. :func:`read_mark` reads
the record back from any of these formats; :func:`read_pixels` decodes their pixels, one path
for every format (``medhub verify`` compares through it).
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import struct
import zlib
from collections.abc import Mapping
from datetime import datetime, timezone
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import MarkError

MARK = "medhub-sample/1"
SOURCE_TYPE = "http://cv.iptc.org/newscodes/digitalsourcetype/trainedAlgorithmicMedia"
PNG_KEYWORD = "medhub"
XMP_KEYWORD = "XML:com.adobe.xmp"
NIFTI_ECODE = 6  # NIfTI-1 extension code "comment"
#: Per-sample input rows up to this many values are kept in the record itself (so ``medhub verify``
#: can remake the sample); larger ones only by their digest.
MAX_INLINE_VALUES = 4096
_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


# ---------------------------------------------------------------------------- the record
def creation_time() -> str:
    """The ``created`` time of a run's records: ``SOURCE_DATE_EPOCH`` if set, else now (UTC, seconds).

    Example:
        >>> import os
        >>> os.environ["SOURCE_DATE_EPOCH"] = "1796655600"
        >>> creation_time()
        '2026-12-07T15:00:00Z'
        >>> del os.environ["SOURCE_DATE_EPOCH"]
    """
    from ..settings import get

    epoch = get("SOURCE_DATE_EPOCH")
    moment = datetime.now(timezone.utc) if epoch is None else datetime.fromtimestamp(epoch, timezone.utc)
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def sample_record(*, model_id: str, model_version: str | None, package_digest: str | None, commit: str | None,
                  seed: int, sample_seed: int, index: int, output: str, inputs: Mapping[str, Any],
                  inputs_digest: str | None, device: str, created: str,
                  medhub_version: str | None = None) -> dict[str, Any]:
    """The sample record of one output of one sample (the keys, in this order, are ``medhub-sample/1``).

    Example:
        >>> r = sample_record(model_id="00101_DCGAN_BRAIN_MRI_T1", model_version="2.0.0", package_digest=None,
        ...                   commit=None, seed=0, sample_seed=5, index=3, output="image", inputs={},
        ...                   inputs_digest=None, device="cpu", created="2026-12-07T15:00:00Z")
        >>> r["mark"], r["synthetic"], r["index"]
        ('medhub-sample/1', True, 3)
    """
    if medhub_version is None:
        from ..version import __version__ as medhub_version
    return {"mark": MARK, "synthetic": True, "medhub_version": medhub_version, "model_id": model_id,
            "model_version": model_version, "package_digest": package_digest, "commit": commit, "seed": int(seed),
            "sample_seed": int(sample_seed), "index": int(index), "output": output, "inputs": dict(inputs),
            "inputs_digest": inputs_digest, "device": device, "created": created}


def device_class(device: str) -> str:
    """``"cuda:1"`` -> ``"cuda"``; the kind of device, which is what decides the arithmetic."""
    return str(device).split(":", 1)[0].split(",", 1)[0].strip().lower() or "cpu"


def plain_input(value: Any) -> Any:
    """A model input as plain JSON: arrays of up to :data:`MAX_INLINE_VALUES` values as
    ``{"ndarray": [...], "dtype": ...}`` (:func:`from_plain` gives them back), larger ones and other
    objects as ``{"unavailable": "what it was"}``."""
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        if value.ndim == 0 and value.dtype.kind in "USO":  # one text (or object) value, e.g. a condition
            return plain_input(value.item())
        if value.size > MAX_INLINE_VALUES or value.dtype.kind not in "biuf":
            return {"unavailable": f"array of shape {list(value.shape)} and dtype {value.dtype}"}
        return {"ndarray": value.tolist(), "dtype": str(value.dtype)}
    if isinstance(value, (list, tuple)):
        return [plain_input(v) for v in value]
    if isinstance(value, Mapping):
        return {str(k): plain_input(v) for k, v in value.items()}
    if hasattr(value, "__fspath__"):
        import os

        return os.fspath(value)
    return {"unavailable": f"{type(value).__name__} object"}


def from_plain(value: Any) -> Any:
    """The model input a recorded value stands for (inverse of :func:`plain_input`); raises
    :class:`MarkError` naming what was not recorded."""
    if isinstance(value, list):
        return [from_plain(v) for v in value]
    if isinstance(value, dict):
        if "unavailable" in value and len(value) == 1:
            raise MarkError(f"an input was not recorded in the mark ({value['unavailable']})")
        if set(value) == {"ndarray", "dtype"}:
            return np.asarray(value["ndarray"], dtype=value["dtype"])
        return {k: from_plain(v) for k, v in value.items()}
    return value


def inputs_digest(rows: Mapping[str, Any], sources: Mapping[str, str]) -> str | None:
    """``sha256:...`` of one sample's per-sample input ``rows`` and the digests of the files or
    folders its inputs name (``sources``: input name -> digest); None when it has neither."""
    if not rows and not sources:
        return None
    h = hashlib.sha256()
    for name in sorted(rows):
        row = np.ascontiguousarray(rows[name])
        h.update(f"{name}|{row.dtype.str}|{row.shape}|".encode())
        h.update(row.tobytes())
    for name in sorted(sources):
        h.update(f"{name}|{sources[name]}|".encode())
    return f"sha256:{h.hexdigest()}"


def _json(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"))


def _items(fields: Mapping[str, Any]) -> str:
    return ",".join(f"{_json(k)}:{_json(v)}" for k, v in fields.items())


class Record(dict):  # type: ignore[type-arg]
    """A sample record built by a :class:`Marker`: a plain dict that also carries its JSON text
    (:func:`record_json`), filled in from the run's template instead of encoded for every file, and
    the run's C2PA signing key (:class:`~medhub.outputs.credentials.Signing`, or None)."""

    text: str | None = None
    signing: Any = None
    xmp: bytes | None = None


@lru_cache(maxsize=256)
def _quoted(text: str) -> str:
    return _json(text)


class Marker:
    """The part of the sample records that one run shares; :meth:`record` adds each file's own.

    ``run`` holds the keyword arguments of :func:`sample_record` that are the same for every sample
    (``model_id``, ``model_version``, ``package_digest``, ``commit``, ``seed``, ``inputs`` (the run's
    model arguments), ``device``, ``created``); ``sources`` the digests of the files or folders the
    inputs name (e.g. ``input_path``); ``signing`` the key that signs PNG files with C2PA content
    credentials (:mod:`medhub.outputs.credentials`), or None.

    Example:
        >>> m = Marker({"model_id": "m", "model_version": "1", "package_digest": None, "commit": None, "seed": 0,
        ...             "inputs": {}, "device": "cpu", "created": "2026-12-07T15:00:00Z"})
        >>> r = m.record(4, 11, "image")
        >>> r["index"], r["sample_seed"], r["output"], record_json(r) == json.dumps(r, separators=(",", ":"))
        (4, 11, 'image', True)
    """

    def __init__(self, run: Mapping[str, Any], sources: Mapping[str, str] | None = None, signing: Any = None) -> None:
        self.run, self.sources, self.signing = dict(run), dict(sources or {}), signing
        self.base = sample_record(**self.run, sample_seed=0, index=0, output="", inputs_digest=None)
        keys = list(self.base)
        self.head = "{" + _items({k: self.base[k] for k in keys[: keys.index("sample_seed")]}) + ","
        self.tail = _items({k: self.base[k] for k in keys[keys.index("inputs_digest") + 1 :]}) + "}"
        self.digest = inputs_digest({}, self.sources)
        self.rest = f',"inputs":{_json(self.base["inputs"])},"inputs_digest":{_json(self.digest)},{self.tail}'
        self.xmp = _xmp_chunk(self.base["model_id"], self.base["model_version"], str(self.base["medhub_version"]),
                              str(self.base["created"]))

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Marker) and (self.run, self.sources) == (other.run, other.sources)

    def record(self, index: int, seed: int, output: str, own: Mapping[str, np.ndarray] | None = None) -> Record:
        """The record of the file of ``output`` of sample ``index`` (its ``seed``, and ``own``: its rows
        of the per-sample inputs)."""
        index, seed = int(index), int(seed)
        rest = self.rest
        record = Record(self.base, sample_seed=seed, index=index, output=output)
        if own:
            inputs = {**self.base["inputs"], **{k: plain_input(np.asarray(v)) for k, v in own.items()}}
            record["inputs"], record["inputs_digest"] = inputs, inputs_digest(own, self.sources)
            rest = f',"inputs":{_json(inputs)},"inputs_digest":{_json(record["inputs_digest"])},{self.tail}'
        else:
            record["inputs_digest"] = self.digest
        record.text = f'{self.head}"sample_seed":{seed},"index":{index},"output":{_quoted(output)}{rest}'
        record.signing, record.xmp = self.signing, self.xmp
        return record


# ---------------------------------------------------------------------------- PNG
def png_chunk(tag: bytes, data: bytes) -> bytes:
    """One PNG chunk: length, type, data, CRC."""
    return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(data, zlib.crc32(tag)))


def itxt_chunk(keyword: str, text: str) -> bytes:
    """An uncompressed iTXt chunk (no language tag) holding UTF-8 ``text`` under ``keyword``."""
    return png_chunk(b"iTXt", keyword.encode("latin-1") + b"\0\0\0\0\0" + text.encode("utf-8"))


@lru_cache(maxsize=64)
def xmp_packet(model_id: str, model_version: str | None, medhub_version: str, created: str) -> str:
    """The XMP packet of a run's PNG files: IPTC digital source type ``trainedAlgorithmicMedia``,
    the creating tool and time, and a description naming the model."""
    from xml.sax.saxutils import quoteattr

    description = f"Synthetic image made by the generative model {model_id}" + (
        f" version {model_version}" if model_version else "") + " with medhub"
    return ('<?xpacket begin="\ufeff" id="W5M0MpCehiHzreSzNTczkc9d"?>'
            '<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">'
            '<rdf:Description rdf:about="" xmlns:Iptc4xmpExt="http://iptc.org/std/Iptc4xmpExt/2008-02-29/"'
            ' xmlns:xmp="http://ns.adobe.com/xap/1.0/" xmlns:dc="http://purl.org/dc/elements/1.1/"'
            f' Iptc4xmpExt:DigitalSourceType="{SOURCE_TYPE}" xmp:CreatorTool={quoteattr("medhub " + medhub_version)}'
            f' xmp:CreateDate="{created}"><dc:description><rdf:Alt><rdf:li xml:lang="x-default">'
            f'{description}</rdf:li></rdf:Alt></dc:description></rdf:Description></rdf:RDF></x:xmpmeta>'
            '<?xpacket end="r"?>')


def record_json(record: Mapping[str, Any]) -> str:
    """The record as compact JSON text (what every format stores)."""
    text = getattr(record, "text", None)
    return text if text is not None else _json(record)


def png_texts_of(record: Mapping[str, Any]) -> dict[str, str]:
    """The iTXt texts that mark a PNG file, by keyword: the record (``medhub``) and the XMP packet."""
    xmp = xmp_packet(str(record["model_id"]), record.get("model_version"), str(record["medhub_version"]),
                     str(record["created"]))
    return {PNG_KEYWORD: record_json(record), XMP_KEYWORD: xmp}


_RECORD_HEAD = b"iTXt" + PNG_KEYWORD.encode("latin-1") + b"\0\0\0\0\0"
_RECORD_CRC = zlib.crc32(_RECORD_HEAD)


def png_chunks(record: Mapping[str, Any]) -> bytes:
    """The chunks that mark a PNG file (:func:`png_texts_of` as uncompressed iTXt chunks).

    Runs once per file: the record's chunk is framed from a precomputed head and CRC state, and
    the XMP chunk (the same for a whole run) is made once."""
    text = record_json(record).encode("utf-8")
    xmp = getattr(record, "xmp", None) or _xmp_chunk(
        str(record["model_id"]), record.get("model_version"), str(record["medhub_version"]), str(record["created"]))
    return b"".join((struct.pack(">I", len(_RECORD_HEAD) - 4 + len(text)), _RECORD_HEAD, text,
                     struct.pack(">I", zlib.crc32(text, _RECORD_CRC)), xmp))


@lru_cache(maxsize=64)
def _xmp_chunk(model_id: str, model_version: str | None, medhub_version: str, created: str) -> bytes:
    return itxt_chunk(XMP_KEYWORD, xmp_packet(model_id, model_version, medhub_version, created))


def png_texts(data: bytes) -> dict[str, str]:
    """The iTXt and tEXt texts of a PNG file, by keyword; ValueError for a file cut short."""
    texts: dict[str, str] = {}
    pos = len(_PNG_SIGNATURE)
    while True:
        if pos + 8 > len(data):
            raise ValueError("it ends before its IEND chunk")
        length, tag = struct.unpack(">I4s", data[pos : pos + 8])
        body = data[pos + 8 : pos + 8 + length]
        if len(body) < length:
            raise ValueError(f"its {tag.decode('latin-1')} chunk is cut short")
        if tag == b"IEND":
            return texts
        if tag == b"iTXt":
            keyword, _, rest = body.partition(b"\0")
            compressed, text = rest[:1] == b"\1", rest[2:].split(b"\0", 2)[-1]
            texts[keyword.decode("latin-1")] = (zlib.decompress(text) if compressed else text).decode("utf-8")
        elif tag == b"tEXt":
            keyword, _, text = body.partition(b"\0")
            texts[keyword.decode("latin-1")] = text.decode("latin-1")
        pos += 12 + length


# ---------------------------------------------------------------------------- NIfTI
def nifti_descrip(record: Mapping[str, Any]) -> bytes:
    """The NIfTI ``descrip`` field (80 bytes at most): ``synthetic: <model id> <version> (medhub)``."""
    version = f" v{record['model_version']}" if record.get("model_version") else ""
    return f"synthetic: {record['model_id']}{version} (medhub)".encode("ascii", "replace")[:80]


def mark_nifti(image: Any, record: Mapping[str, Any]) -> None:
    """Put the mark into a nibabel NIfTI image before it is saved."""
    import nibabel as nib

    image.header["descrip"] = nifti_descrip(record)
    image.header.extensions.append(nib.nifti1.Nifti1Extension(NIFTI_ECODE, record_json(record).encode()))


def _nifti(data: bytes) -> Any:
    import nibabel as nib

    raw = gzip.decompress(data) if data[:2] == b"\x1f\x8b" else data
    return nib.Nifti1Image.from_bytes(raw)


# ---------------------------------------------------------------------------- reading
def file_format(data: bytes) -> str | None:
    """``png``, ``nifti``, ``dicom``, ``npy`` by the file's first bytes (None: none of them)."""
    if data.startswith(_PNG_SIGNATURE):
        return "png"
    if data[128:132] == b"DICM":
        return "dicom"
    if data.startswith(b"\x93NUMPY"):
        return "npy"
    head = data
    if data[:2] == b"\x1f\x8b":
        try:
            head = zlib.decompressobj(31).decompress(data[:65536], 352)
        except zlib.error:
            return None
    return "nifti" if head[344:348] in (b"n+1\0", b"ni1\0") else None


def read_bytes(path: str | Path) -> bytes:
    """The bytes of ``path``, or :class:`MarkError` saying why it cannot be read."""
    try:
        return Path(path).read_bytes()
    except OSError as exc:
        raise MarkError(f"{path}: cannot read the file ({exc.strerror or exc}).") from None


def _checked(path: Any, data: bytes) -> str:
    fmt = file_format(data)
    if fmt is None:
        raise MarkError(f"{path}: not a PNG, NIfTI or DICOM file; medhub marks only those formats.")
    return fmt


def _dicom(name: str) -> Any:
    """``medhub.outputs.dicom.<name>`` (``read_record`` or ``read_pixels``; they take a binary file
    object); a one-line :class:`MarkError` when pydicom is not installed."""
    import importlib

    try:
        importlib.import_module("pydicom")
    except ImportError:
        raise MarkError("Reading DICOM files needs pydicom: pip install 'medhub[dicom]'.") from None
    return getattr(importlib.import_module("medhub.outputs.dicom"), name)


def record_of(data: bytes, path: Any = "file") -> dict[str, Any] | None:
    """The sample record held by a file's bytes, or None for a file without a medhub mark."""
    fmt = _checked(path, data)
    dicom = _dicom("read_record") if fmt == "dicom" else None  # outside the try: its MarkError is no damage
    try:
        if fmt == "png":
            text = png_texts(data).get(PNG_KEYWORD)
        elif fmt == "nifti":
            texts = [e.get_content() for e in _nifti(data).header.extensions if e.get_code() == NIFTI_ECODE]
            text = next((t.decode("utf-8", "replace") for t in texts if MARK.encode() in t), None)
        elif dicom is not None:
            return dicom(io.BytesIO(data))  # type: ignore[no-any-return]
        else:
            return None  # NPY files carry no mark
    except (ValueError, zlib.error, struct.error, EOFError, OSError) as exc:
        raise MarkError(f"{path}: a damaged {fmt.upper()} file ({exc}).") from None
    if text is None:
        return None
    try:
        record = json.loads(text)
    except ValueError:
        raise MarkError(f"{path}: its medhub mark is not valid JSON.") from None
    if not isinstance(record, dict) or record.get("mark") != MARK:
        raise MarkError(f"{path}: its medhub mark is not a {MARK} record.")
    return record


def read_mark(path: str | Path) -> dict[str, Any] | None:
    """The sample record of a PNG, NIfTI or DICOM file medhub wrote; None when it has no medhub mark.

    Raises :class:`MarkError` (one line) for an unreadable file, a foreign format or a damaged mark.
    """
    return record_of(read_bytes(path), path)


def read_pixels(data: bytes, path: Any = "file") -> np.ndarray:
    """The pixel (voxel) array a file's bytes hold, whatever its format: the one decoder through
    which ``medhub verify`` compares a file with the regenerated sample."""
    fmt = _checked(path, data)
    dicom = _dicom("read_pixels") if fmt == "dicom" else None
    try:
        if fmt == "png":
            from PIL import Image

            with Image.open(io.BytesIO(data)) as im:
                return np.asarray(im)
        if fmt == "nifti":
            return np.asanyarray(_nifti(data).dataobj)
        if dicom is not None:
            return np.asarray(dicom(io.BytesIO(data)))
        return np.load(io.BytesIO(data), allow_pickle=False)
    except (ValueError, OSError, EOFError, zlib.error) as exc:
        raise MarkError(f"{path}: a damaged {fmt.upper()} file ({exc}).") from None
