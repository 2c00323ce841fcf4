"""DICOM output: one sample's image, volume or mask -> the bytes of a DICOM file, and its record back.

Needs ``pip install 'medhub[dicom]'`` (pydicom, and highdicom for the segmentations); both are
imported inside the functions. What is written (see ``docs/generation.md``, "DICOM output"):

* a 2D image: one **Secondary Capture Image** instance (grey 8 or 16 bit, or RGB);
* a volume: one **Multi-frame Grayscale Byte / Word Secondary Capture** instance, one frame per
  axial slice, with pixel spacing, slice positions and orientation when the outputs spec gives
  ``spacing`` (voxel axes taken as the NIfTI output takes them: x right, y anterior, z superior);
* a mask: a **Segmentation** (binary, one segment per label value) that references the image of
  the same sample (the first image or volume output of the same shape); a mask with no such image
  is written as a Secondary Capture image instead.

Secondary Capture, not the MR or CT IODs: a generated image has no acquisition (no echo time, no
kVp), so the modality's own IOD could not be filled honestly. Values other than 8 and 16 bit
unsigned are stored as 16 bit with a rescale slope and intercept that give them back (signed
integers of a CT output are taken as Hounsfield units, ``RescaleType`` HU).

Every instance is marked: patient ``SYNTHETIC^MEDHUB`` / ``SYN-<model>``, Synthetic Data
(0008,001C) YES, Conversion Type SYN, Image Type DERIVED\\SECONDARY, Burned In Annotation NO,
Manufacturer ``medhub``, and the sample record as JSON in the private element (0071,1001) of the
private creator ``medhub`` (:func:`read_record`). UIDs are ``2.25.`` UIDs derived from the record:
the study from (model, version, seed), a series from the run and the output, an instance from the
run, the output and the sample index, so the same sample gets the same UIDs when made again.
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np

from ..errors import DependencyError, OutputSpecError
from .marks import record_json
from .specs import OutputSpec, with_format

logger = logging.getLogger("medhub.outputs")

SC_IMAGE = "1.2.840.10008.5.1.4.1.1.7"  # Secondary Capture Image Storage
SC_MULTIFRAME_BYTE = "1.2.840.10008.5.1.4.1.1.7.2"
SC_MULTIFRAME_WORD = "1.2.840.10008.5.1.4.1.1.7.3"
PRIVATE_GROUP = 0x0071
PRIVATE_CREATOR = "medhub"
RECORD_ELEMENT = 0x01  # (0071,1001) UT: the sample record, JSON
RECORD_MARK = "medhub-sample/"
PATIENT_NAME = "SYNTHETIC^MEDHUB"
DICOM_REQUIREMENTS = ["pydicom>=3.0", "highdicom>=0.22"]

#: Catalog modality words (``selection.modality``, lower case) -> DICOM Modality (0008,0060).
MODALITIES = {
    **dict.fromkeys(["mri", "mr", "magnetic resonance imaging", "brain mri", "cranial mri", "dce-mri",
                     "t1-weighted mri", "t1", "t2", "t1c", "flair", "t1-weighted"], "MR"),
    **dict.fromkeys(["ct", "computed tomography", "head ct"], "CT"),
    **dict.fromkeys(["mmg", "mammography", "mammogram", "x-ray mammography", "digital mammography",
                     "full-field digital mmg", "full-field mammography", "digital mmg", "full-field mmg"], "MG"),
    **dict.fromkeys(["x-ray", "xray", "cxr", "radiography", "chest x-ray"], "DX"),
    **dict.fromkeys(["endoscopy", "gastrointestinal endoscopy"], "ES"),
    **dict.fromkeys(["fundus photography", "colour fundus photograph", "color fundus photograph", "cfp"], "OP"),
    **dict.fromkeys(["pet", "positron emission tomography"], "PT"),
    **dict.fromkeys(["ultrasound", "us"], "US"),
}


def modality_of(words: Iterable[str] | None) -> str:
    """The DICOM Modality of a catalog entry's ``selection.modality`` words: the one modality they
    name (``MRI`` -> ``MR``, ``Mammography`` -> ``MG``...), or ``OT`` (other) when they name none
    or several (a model translating MRI to CT).

    Example:
        >>> modality_of(["MRI", "T1", "magnetic resonance imaging"]), modality_of(["MRI", "CT"]), modality_of([])
        ('MR', 'OT', 'OT')
    """
    found = {MODALITIES[w.strip().lower()] for w in words or [] if w.strip().lower() in MODALITIES}
    return found.pop() if len(found) == 1 else "OT"


def dicom_specs(specs: Sequence[OutputSpec], catalog_modality: Iterable[str] | None = None) -> list[OutputSpec]:
    """The specs of a DICOM run, once pydicom (and highdicom, for masks) are found to be importable
    (a missing one fails before any work): every image, mask and volume as DICOM, with the modality
    of the catalog's ``selection.modality`` words where an output names none, its series number
    (its place among the run's files) and, for a mask, the image it segments (:func:`source_of`).

    Example:
        >>> image, mask = OutputSpec("image", "image", (4, 4), "uint8"), OutputSpec("mask", "mask", (4, 4), "uint8")
        >>> [(s.series, s.modality, s.source and s.source.name) for s in dicom_specs([image, mask], ["MRI"])]
        [(1, 'MR', None), (2, 'MR', 'image')]
    """
    import_pydicom()
    if any(s.kind == "mask" for s in specs):
        import_pydicom("highdicom")
    out = with_format(specs, "dicom", modality_of(catalog_modality))
    numbers = {s.name: k + 1 for k, s in enumerate(s for s in out if s.file_format == "dicom")}
    out = [replace(s, series=numbers[s.name]) if s.name in numbers else s for s in out]
    return [replace(s, source=source_of(s, out)) if s.kind == "mask" and s.name in numbers else s for s in out]


def derived_uid(*parts: Any) -> str:
    """A UID under the ``2.25.`` root (a UUID-derived UID, no registration needed) that is a pure
    function of ``parts``: the decimal value of the first 128 bits of their sha256 (at most 44
    characters).

    Example:
        >>> u = derived_uid("00101_DCGAN_BRAIN_MRI_T1", "2.0", 0, 7)
        >>> u.startswith("2.25.") and len(u) <= 64 and u == derived_uid("00101_DCGAN_BRAIN_MRI_T1", "2.0", 0, 7)
        True
    """
    digest = hashlib.sha256(json.dumps([str(p) for p in parts]).encode()).digest()
    return f"2.25.{int.from_bytes(digest[:16], 'big')}"


def import_pydicom(name: str = "pydicom") -> Any:
    """``import pydicom`` (or ``name``: ``highdicom``), or a :class:`DependencyError` with the pip command."""
    import importlib

    try:
        return importlib.import_module(name)
    except ImportError as exc:
        raise DependencyError(f"DICOM output needs pydicom and highdicom ({name} cannot be imported: {exc}): "
                              "pip install 'medhub[dicom]'.", DICOM_REQUIREMENTS) from None


# ---------------------------------------------------------------------------- identity of a sample
def _run_key(record: Mapping[str, Any] | None) -> tuple[Any, ...]:
    if not record:
        return ("unmarked",)
    return (record.get("model_id"), record.get("model_version"), record.get("seed"))


def study_uid(record: Mapping[str, Any] | None) -> str:
    """The Study Instance UID of a run: one study per (model, version, seed)."""
    return derived_uid("study", *_run_key(record))


def series_uid(record: Mapping[str, Any] | None, output: str) -> str:
    """The Series Instance UID of one output of a run (an image series, a segmentation series)."""
    return derived_uid("series", *_run_key(record), output)


def instance_uid(record: Mapping[str, Any] | None, output: str, fallback: bytes = b"") -> str:
    """The SOP Instance UID of output ``output`` of the sample the record names (without a record:
    of the bytes ``fallback``)."""
    if not record:
        return derived_uid("instance", hashlib.sha256(fallback).hexdigest(), output)
    return derived_uid("instance", *_run_key(record), record.get("index"), output)


# ---------------------------------------------------------------------------- pixels
def _stored_values(arr: np.ndarray, spec: OutputSpec) -> tuple[np.ndarray, float, float]:
    """(stored array of uint8 or uint16, rescale slope, intercept): ``stored * slope + intercept``
    gives back the values (floats to within 1/65535 of their range)."""
    if arr.dtype == np.bool_:
        return arr.astype(np.uint8), 1.0, 0.0
    if arr.dtype in (np.uint8, np.uint16):
        return arr, 1.0, 0.0
    if arr.dtype.kind in "iu":  # e.g. int16 HU: shifted into 16-bit unsigned, the intercept shifts back
        if spec.range:
            lo = int(spec.range[0])
        else:  # the type's minimum where it fits (the same intercept in every file), else the file's
            lo = int(np.iinfo(arr.dtype).min) if arr.dtype.itemsize <= 2 else int(arr.min(initial=0))
        if not arr.size or (int(arr.min()) >= lo and int(arr.max()) - lo <= 65535):
            return (arr.astype(np.int64) - lo).astype(np.uint16), 1.0, float(lo)
    lo, hi = spec.range if spec.range else (float(np.nanmin(arr)), float(np.nanmax(arr)))
    # slope and intercept as the file holds them (a DS has at most 16 characters), and the stored
    # values computed with exactly those
    slope = float(_ds(max(float(hi) - float(lo), 1e-12) / 65535))
    intercept = float(_ds(lo))
    stored = np.clip(np.round((arr.astype(np.float64) - intercept) / slope), 0, 65535).astype(np.uint16)
    return stored, slope, intercept


def _ds(value: float) -> str:
    """A decimal string (DS) of ``value``: at most 16 characters, as DICOM allows."""
    from pydicom.valuerep import format_number_as_ds

    return str(format_number_as_ds(float(value)))


def _channels_last(arr: np.ndarray, spec: OutputSpec) -> np.ndarray:
    if arr.ndim == 3 and spec.is_2d and arr.shape[0] in (1, 3, 4) and arr.shape[-1] not in (1, 3, 4):
        arr = np.moveaxis(arr, 0, -1)
    if arr.ndim == 3 and spec.is_2d and arr.shape[-1] == 1:
        arr = arr[..., 0]
    return arr


def _set_pixels(ds: Any, stored: np.ndarray, rgb: bool = False, pixels: bool = True) -> None:
    """The Image Pixel module of ``stored`` (frames first for a volume); ``pixels=False``: the
    attributes without the pixel data."""
    ds.SamplesPerPixel = 3 if rgb else 1
    ds.PhotometricInterpretation = "RGB" if rgb else "MONOCHROME2"
    if rgb:
        ds.PlanarConfiguration = 0
    ds.Rows, ds.Columns = int(stored.shape[-2 - rgb]), int(stored.shape[-1 - rgb])
    ds.BitsAllocated = ds.BitsStored = 8 * stored.dtype.itemsize
    ds.HighBit = ds.BitsStored - 1
    ds.PixelRepresentation = 0
    if pixels:
        ds.PixelData = np.ascontiguousarray(stored).astype(stored.dtype.newbyteorder("<"), copy=False).tobytes()


# ---------------------------------------------------------------------------- the datasets
def _dicom_datetime(record: Mapping[str, Any] | None) -> tuple[str, str] | None:
    """(DA, TM) of the record's creation time, or None."""
    created = (record or {}).get("created")
    if not created:
        return None
    from datetime import datetime

    try:
        moment = datetime.fromisoformat(str(created))
    except ValueError:
        return None
    return moment.strftime("%Y%m%d"), moment.strftime("%H%M%S")


def _base_dataset(spec: OutputSpec, record: Mapping[str, Any] | None, sop_class: str, sop_instance: str,
                  series_number: int) -> Any:
    """The dataset of one instance with everything but its pixels: patient, study, series,
    equipment, the synthetic marks and the record."""
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.uid import ExplicitVRLittleEndian

    from ..version import __version__

    record = record or {}
    model_id = str(record.get("model_id") or "unknown")
    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.MediaStorageSOPClassUID = sop_class
    ds.file_meta.MediaStorageSOPInstanceUID = sop_instance
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.SOPClassUID, ds.SOPInstanceUID = sop_class, sop_instance
    when = _dicom_datetime(record)
    if when:
        ds.InstanceCreationDate, ds.InstanceCreationTime = when
        ds.ContentDate, ds.ContentTime = when
    # patient: plainly synthetic, no realistic identity (type 2 attributes present, empty)
    ds.PatientName = PATIENT_NAME
    ds.PatientID = f"SYN-{model_id}"[:64]
    ds.PatientBirthDate = ds.PatientSex = ""
    # study and series: one study per run, one series per output
    ds.StudyInstanceUID = study_uid(record)
    # the study's date is the run's creation time (a DICOMDIR needs one); empty without a record
    ds.StudyDate, ds.StudyTime = when or ("", "")
    ds.ReferringPhysicianName = ds.AccessionNumber = ""
    ds.StudyID = "SYNTHETIC"
    ds.StudyDescription = f"SYNTHETIC {model_id} seed {record.get('seed', '')}"[:64]
    ds.SeriesInstanceUID = series_uid(record, spec.name)
    ds.SeriesNumber = series_number
    ds.SeriesDescription = f"SYNTHETIC {spec.name} of {model_id}"[:64]
    ds.Modality = spec.modality or "OT"
    ds.Laterality = ""  # unknown (type 2C): a generated image is of no patient's side
    ds.InstanceNumber = int(record.get("index", 0)) + 1
    # equipment: medhub made it, with this model
    ds.Manufacturer = "medhub"
    ds.SoftwareVersions = str(record.get("medhub_version") or __version__)
    ds.ConversionType = "SYN"  # Secondary Capture: synthetic image
    ds.SecondaryCaptureDeviceManufacturer = "medhub"
    ds.SecondaryCaptureDeviceManufacturerModelName = model_id[:64]
    ds.SecondaryCaptureDeviceSoftwareVersions = str(record.get("model_version") or "")[:64]
    # the marks
    ds.ImageType = ["DERIVED", "SECONDARY"]
    ds.BurnedInAnnotation = "NO"
    ds.SyntheticData = "YES"
    ds.PatientOrientation = ""
    ds.ImageComments = (f"Synthetic image generated by medhub model {model_id} (version {record.get('model_version')}, "
                        f"seed {record.get('seed')}, sample {record.get('index')}); not an image of a patient.")
    if record:
        block = ds.private_block(PRIVATE_GROUP, PRIVATE_CREATOR, create=True)
        block.add_new(RECORD_ELEMENT, "UT", record_json(record))
    return ds


def _image_dataset(arr: np.ndarray, spec: OutputSpec, record: Mapping[str, Any] | None, series_number: int,
                   pixels: bool = True) -> Any:
    """The Secondary Capture instance of an image (2D) or a volume (multi-frame); ``pixels=False``
    leaves the pixel data out (the header a segmentation references)."""
    arr = _channels_last(np.asarray(arr), spec)
    rgb = arr.ndim == 3 and spec.is_2d
    if rgb and (arr.shape[-1] != 3 or arr.dtype != np.uint8):
        raise OutputSpecError(f"Output {spec.name!r}: DICOM holds colour images as 8-bit RGB, not {arr.shape[-1]} "
                              f"channels of {arr.dtype}; choose png, nifti or npy.")
    if arr.ndim not in (2, 3) or arr.dtype.kind not in "biuf":
        raise OutputSpecError(f"Output {spec.name!r} of shape {arr.shape} is neither a 2D image nor a 3D volume; "
                              "DICOM output cannot hold it. Choose nifti or npy.")
    volume = arr.ndim == 3 and not rgb
    stored, slope, intercept = _stored_values(arr, spec)
    if volume:
        sop_class = SC_MULTIFRAME_BYTE if stored.dtype == np.uint8 else SC_MULTIFRAME_WORD
    else:
        sop_class = SC_IMAGE
    ds = _base_dataset(spec, record, sop_class, instance_uid(record, spec.name, stored.tobytes()), series_number)
    rescale_type = "HU" if spec.modality == "CT" and arr.dtype.kind == "i" else "US"
    if volume:
        frames = stored[::-1, ::-1, :].transpose(2, 1, 0)  # (x, y, z) -> axial frames, anterior up, right on the left
        ds.NumberOfFrames = frames.shape[0]
        ds.FrameIncrementPointer = 0x00182005  # Slice Location Vector
        ds.PresentationLUTShape = "IDENTITY"
        ds.RescaleIntercept, ds.RescaleSlope, ds.RescaleType = _ds(intercept), _ds(slope), rescale_type
        spacing = [float(s) for s in (spec.spacing or ())][:3]
        ds.SliceLocationVector = [_ds(k * (spacing[2] if len(spacing) == 3 else 1.0)) for k in range(frames.shape[0])]
        if len(spacing) == 3:
            _set_geometry(ds, stored.shape, spacing, record)
        stored = frames
    else:
        if spec.spacing and len(spec.spacing) >= 2:
            ds.PixelSpacing = [_ds(spec.spacing[1]), _ds(spec.spacing[0])]
        if (slope, intercept) != (1.0, 0.0):
            ds.RescaleIntercept, ds.RescaleSlope, ds.RescaleType = _ds(intercept), _ds(slope), rescale_type
    _set_pixels(ds, stored, rgb, pixels)
    return ds


def _set_geometry(ds: Any, shape: tuple[int, ...], spacing: Sequence[float], record: Mapping[str, Any] | None) -> None:
    """Frame of reference, pixel measures and the position and orientation of each axial frame of a
    volume of ``shape`` (x, y, z) voxels of ``spacing`` mm, its voxel axes taken as the NIfTI output
    takes them (x right, y anterior, z superior); frame k's first pixel is voxel (nx-1, ny-1, k)."""
    from pydicom.dataset import Dataset
    from pydicom.sequence import Sequence as DicomSequence

    (sx, sy, sz), (nx, ny, nz) = spacing, shape
    ds.FrameOfReferenceUID = derived_uid("frame-of-reference", *_run_key(record), (record or {}).get("index"))
    ds.PositionReferenceIndicator = ""
    measures = Dataset()
    measures.PixelSpacing = [_ds(sy), _ds(sx)]
    measures.SliceThickness = measures.SpacingBetweenSlices = _ds(sz)
    orientation = Dataset()
    orientation.ImageOrientationPatient = [1, 0, 0, 0, 1, 0]  # rows to the patient's left, columns posterior (LPS)
    shared = Dataset()
    shared.PixelMeasuresSequence = DicomSequence([measures])
    shared.PlaneOrientationSequence = DicomSequence([orientation])
    ds.SharedFunctionalGroupsSequence = DicomSequence([shared])
    frames = []
    for k in range(nz):
        position = Dataset()
        position.ImagePositionPatient = [_ds(-(nx - 1) * sx), _ds(-(ny - 1) * sy), _ds(k * sz)]
        frame = Dataset()
        frame.PlanePositionSequence = DicomSequence([position])
        frames.append(frame)
    ds.PerFrameFunctionalGroupsSequence = DicomSequence(frames)


def source_of(spec: OutputSpec, specs: Sequence[OutputSpec]) -> OutputSpec | None:
    """The output a mask segments: the first image or volume output of the same shape (None when
    there is none, or it is a volume without the ``spacing`` a Segmentation needs)."""
    for other in specs:
        if other.kind in ("image", "volume") and other.shape == spec.shape and other.name != spec.name:
            if len(other.shape) == 3 and not other.is_2d and not other.spacing:
                logger.warning("Mask %r: its volume %r has no spacing in the outputs spec, which a DICOM Segmentation "
                               "needs; written as a Secondary Capture image instead.", spec.name, other.name)
                return None
            return other
    return None


def _segmentation(arr: np.ndarray, spec: OutputSpec, record: Mapping[str, Any] | None, source: OutputSpec,
                  series_number: int, source_series: int) -> Any:
    """The Segmentation of mask ``arr`` over the image ``source`` of the same sample (one binary
    segment per label value other than 0)."""
    hd = import_pydicom("highdicom")
    from pydicom.sr.codedict import codes

    record = record or {}
    arr = np.asarray(arr)
    header = _image_dataset(np.zeros(source.shape, np.dtype(source.dtype)), source,
                            dict(record, output=source.name), source_series, pixels=False)
    volume = arr.ndim == 3
    frames = arr[::-1, ::-1, :].transpose(2, 1, 0) if volume else arr[None]
    values = [v for v in (spec.values or np.unique(frames).tolist()) if v not in (0, False)] or [1]
    labels = np.stack([frames == v for v in values], axis=-1)
    tissue = hd.sr.CodedConcept("85756007", "SCT", "Tissue")
    algorithm = hd.AlgorithmIdentificationSequence(
        name=str(record.get("model_id") or "medhub")[:64], version=str(record.get("model_version") or "unknown"),
        family=codes.cid7162.ArtificialIntelligence)
    segments = [hd.seg.SegmentDescription(
        segment_number=k + 1, segment_label=f"{spec.name} = {v}"[:64], segmented_property_category=tissue,
        segmented_property_type=tissue, algorithm_type=hd.seg.SegmentAlgorithmTypeValues.AUTOMATIC,
        algorithm_identification=algorithm) for k, v in enumerate(values)]
    model_id = str(record.get("model_id") or "unknown")
    seg = hd.seg.Segmentation(
        source_images=[header], pixel_array=labels, segmentation_type=hd.seg.SegmentationTypeValues.BINARY,
        segment_descriptions=segments, series_instance_uid=series_uid(record, spec.name), series_number=series_number,
        sop_instance_uid=instance_uid(record, spec.name, frames.tobytes()), instance_number=int(record.get("index", 0)) + 1,
        manufacturer="medhub", manufacturer_model_name=model_id[:64],
        software_versions=str(record.get("medhub_version") or header.SoftwareVersions),
        device_serial_number="none", series_description=f"SYNTHETIC {spec.name} of {model_id}"[:64],
        omit_empty_frames=False)
    # the same bytes when the sample is made again: no clock, no random UID
    when = _dicom_datetime(record)
    for keyword in ("InstanceCreationDate", "InstanceCreationTime", "ContentDate", "ContentTime", "SeriesDate",
                    "SeriesTime"):
        if keyword in seg:
            setattr(seg, keyword, when[keyword.endswith("Time")] if when else "")
    for item in seg.get("ContributingEquipmentSequence", []):
        if "ContributionDateTime" in item:
            del item.ContributionDateTime
    organization = derived_uid("dimensions", *_run_key(record), spec.name)
    for item in [*seg.get("DimensionOrganizationSequence", []), *seg.get("DimensionIndexSequence", [])]:
        item.DimensionOrganizationUID = organization
    if "PatientOrientation" not in seg:
        seg.PatientOrientation = ""
    seg.SyntheticData = "YES"
    seg.BurnedInAnnotation = "NO"
    seg.ImageComments = header.ImageComments.replace("Synthetic image", "Segmentation of a synthetic image")
    if record:
        block = seg.private_block(PRIVATE_GROUP, PRIVATE_CREATOR, create=True)
        block.add_new(RECORD_ELEMENT, "UT", record_json(record))
    return seg


# ---------------------------------------------------------------------------- files
def encode_dicom(arr: np.ndarray, spec: OutputSpec, record: Mapping[str, Any] | None = None) -> bytes:
    """The DICOM file of output ``spec`` of one sample.

    Args:
        arr: the sample's array (2D image, ``(H, W, 3)`` RGB, 3D volume ``(x, y, z)`` or a mask).
        spec: its output spec (``modality``, ``spacing``, ``range``, ``values``, ``series`` and, for a
            mask, ``source``, the image it segments: see :func:`dicom_specs`).
        record: the sample record (model, version, seed, index...): the UIDs derive from it, and
            it is stored in the file (:func:`read_record`). None writes no record.

    Returns:
        The bytes of the file (Explicit VR Little Endian).

    Example:
        >>> import pydicom
        >>> spec = OutputSpec("image", "image", (4, 4), "uint8", modality="MR")
        >>> record = {"mark": "medhub-sample/1", "model_id": "00101", "model_version": "2.0", "seed": 0, "index": 3}
        >>> ds = pydicom.dcmread(io.BytesIO(encode_dicom(np.arange(16, dtype=np.uint8).reshape(4, 4), spec, record)))
        >>> ds.Modality, ds.SyntheticData, int(ds.pixel_array[3, 3]), read_record(io.BytesIO(encode_dicom(ds.pixel_array, spec, record)))["index"]
        ('MR', 'YES', 15, 3)
    """
    import_pydicom()
    if spec.kind == "mask" and spec.source is not None:
        ds = _segmentation(arr, spec, record, spec.source, spec.series or 1, spec.source.series or 1)
    else:
        ds = _image_dataset(arr, spec, record, spec.series or 1)
    buf = io.BytesIO()
    ds.save_as(buf, enforce_file_format=True)
    return buf.getvalue()


def write_dicom(path: Path | BinaryIO, arr: np.ndarray, spec: OutputSpec, record: Mapping[str, Any] | None = None) -> None:
    """Write :func:`encode_dicom` 's file to a path or a binary file object (the writer of
    ``medhub.outputs.encode`` for the ``dicom`` format)."""
    data = encode_dicom(arr, spec, record)
    if hasattr(path, "write"):
        path.write(data)  # type: ignore[union-attr]
        return
    with open(path, "wb") as fh:
        fh.write(data)


def _dataset(fileobj: BinaryIO, pixels: bool) -> Any:
    """The dataset of a DICOM file object; ValueError for one pydicom cannot read."""
    pydicom = import_pydicom()
    from pydicom.errors import InvalidDicomError

    try:
        return pydicom.dcmread(fileobj, stop_before_pixels=not pixels)
    except (InvalidDicomError, KeyError, TypeError, AttributeError) as exc:
        raise ValueError(f"pydicom cannot read it: {exc}") from None


def read_record(fileobj: BinaryIO) -> dict[str, Any] | None:
    """The medhub sample record stored in a DICOM file (a binary file object), or None for one
    that holds none (a DICOM file medhub did not write). ValueError for a damaged file.

    :func:`medhub.outputs.marks.record_of` (``medhub inspect`` and ``medhub verify``) reads DICOM
    files through it.

    Example:
        >>> spec = OutputSpec("image", "image", (2, 2), "uint8")
        >>> read_record(io.BytesIO(encode_dicom(np.zeros((2, 2), np.uint8), spec))) is None
        True
    """
    ds = _dataset(fileobj, pixels=False)
    try:
        text = ds.private_block(PRIVATE_GROUP, PRIVATE_CREATOR)[RECORD_ELEMENT].value
    except KeyError:
        return None
    record = json.loads(text)
    if not isinstance(record, dict) or not str(record.get("mark", "")).startswith(RECORD_MARK):
        return None
    return record


def read_pixels(fileobj: BinaryIO) -> np.ndarray:
    """The stored pixel values of a DICOM file (a binary file object): frames first for a
    multi-frame image or a Segmentation, as pydicom decodes them (no rescale applied).

    :func:`medhub.outputs.marks.read_pixels` (``medhub verify``) reads DICOM files through it.

    Example:
        >>> spec = OutputSpec("image", "image", (2, 2), "uint8")
        >>> read_pixels(io.BytesIO(encode_dicom(np.eye(2, dtype=np.uint8), spec))).tolist()
        [[1, 0], [0, 1]]
    """
    ds = _dataset(fileobj, pixels=True)
    try:
        return np.asarray(ds.pixel_array)
    except (AttributeError, KeyError, TypeError, RuntimeError) as exc:
        raise ValueError(f"its pixel data cannot be decoded: {exc}") from None
