"""Marks (issue 32): every file medhub writes says it is synthetic and carries its sample record, in
generate, shards and Ray alike; `medhub inspect` reads it and `medhub verify` checks it by regenerating."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from conftest import IMG8, LABEL, NUMPY_TOY, VOLUME, entry, write_catalog, write_package

from medhub import Generators
from medhub.cli import main as cli_main
from medhub.errors import MarkError, SettingError
from medhub.outputs import encode_png
from medhub.outputs.marks import MARK, NIFTI_ECODE, SOURCE_TYPE, creation_time, png_chunks, read_mark
from medhub.verification import CANNOT_VERIFY, DIFFERS, IDENTICAL, NO_MARK, WITHIN_TOLERANCE, inspect, verify

EPOCH = "1796655600"  # 2026-12-07T15:00:00Z

OFFSET_TOY = NUMPY_TOY.replace("def sample(model, seeds, **inputs):", "def sample(model, seeds, offset=None, **inputs):"
                               ).replace('    return {"image": imgs, "label": labels}', """
    if offset is not None:
        imgs = imgs // 2 + np.asarray(offset, np.uint8).reshape(-1, 1, 1)
    return {"image": imgs, "label": labels}""")

FOLDER_TOY = """
import numpy as np
from pathlib import Path

def load(weights_path, device):
    return None

def sample(model, seeds, indices=None, input_path=None):
    folder = Path(input_path) if input_path else Path(__file__).parent / "examples" / "set"
    files = sorted(folder.glob("*.npy"))
    return {"image": np.stack([np.load(files[i % len(files)]) for i in indices])}
"""

VOLUME_SPEC = [{"name": "volume", "kind": "volume", "shape": [6, 7, 5], "dtype": "float32", "range": [0, 1]},
               {"name": "mask", "kind": "mask", "shape": [6, 7, 5], "dtype": "uint8", "format": "nifti"}]


def _example(folder: Path, seed: int) -> None:
    folder.mkdir(parents=True)
    for k in range(2):
        np.save(folder / f"{k}.npy", np.random.default_rng(seed + k).integers(0, 256, (8, 8), dtype=np.uint8))


@pytest.fixture
def cat(tmp_path) -> Path:
    write_package(tmp_path, "toy", NUMPY_TOY)
    write_package(tmp_path, "offset", OFFSET_TOY)
    write_package(tmp_path, "volume", VOLUME)
    write_package(tmp_path, "folder", FOLDER_TOY)
    _example(tmp_path / "folder" / "examples" / "set", 0)
    models = {
        "00001_TOY": entry("toy", [IMG8, LABEL]),
        "00002_OFFSET": entry("offset", [IMG8, LABEL], generate_method={"name": "generate",
                                                                       "per_sample_inputs": ["offset"]}),
        "00003_VOLUME": entry("volume", VOLUME_SPEC),
        "00004_FOLDER": entry("folder", [IMG8], generate_method={"name": "generate",
                                                                "args": {"custom": {"input_path": None}}}),
    }
    for m in models.values():
        m["description"]["version"] = "1.0.0"
    return write_catalog(tmp_path / "c.json", models)


@pytest.fixture
def epoch(monkeypatch):
    monkeypatch.setenv("SOURCE_DATE_EPOCH", EPOCH)


def _files(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in Path(folder).iterdir() if p.name[:6].isdigit()}


# ---------------------------------------------------------------------------- the marks
def test_png_files_carry_the_record_and_the_iptc_source_type(cat, tmp_path):
    from PIL import Image

    run = Generators(config_file=cat).generate(1, num_samples=3, output_path=tmp_path / "run", seed=4)
    rows = {int(r["index"]): r for r in __import__("medhub").outputs.read_manifest(run.output_path)}
    for i in range(3):
        path = tmp_path / "run" / f"{i:06d}_image.png"
        record = read_mark(path)
        assert record["mark"] == MARK and record["synthetic"] is True and record["model_id"] == "00001_TOY"
        assert (record["seed"], record["index"], record["output"], record["device"]) == (4, i, "image", "cpu")
        assert record["sample_seed"] == int(rows[i]["seed"]) and record["model_version"] == "1.0.0"
        assert record["package_digest"].startswith("sha256:") and record["inputs_digest"] is None
        with Image.open(path) as im:  # a reader nobody here wrote
            assert json.loads(im.text["medhub"]) == record
            assert f'Iptc4xmpExt:DigitalSourceType="{SOURCE_TYPE}"' in im.text["XML:com.adobe.xmp"]
            pixels = np.asarray(im)
        unmarked = Generators(config_file=cat).generate(1, num_samples=3, save_images=False, seed=4)
        assert np.array_equal(pixels, unmarked[i][0])  # the pixels are untouched


def test_pillow_parses_the_xmp_packet(cat, tmp_path):
    pytest.importorskip("defusedxml")
    from PIL import Image

    Generators(config_file=cat).generate(1, num_samples=1, output_path=tmp_path / "run", seed=0)
    with Image.open(tmp_path / "run" / "000000_image.png") as im:
        xmp = im.getxmp()
    description = xmp["xmpmeta"]["RDF"]["Description"]
    assert description["DigitalSourceType"] == SOURCE_TYPE


def test_exiftool_reads_the_digital_source_type(cat, tmp_path):
    import subprocess

    exiftool = shutil.which("exiftool")
    if exiftool is None:
        pytest.skip("exiftool is not installed (Debian: libimage-exiftool-perl)")
    Generators(config_file=cat).generate(1, num_samples=1, output_path=tmp_path / "run", seed=0)
    out = subprocess.run([exiftool, "-j", "-XMP:all", str(tmp_path / "run" / "000000_image.png")],
                         capture_output=True, text=True, check=True).stdout
    assert json.loads(out)[0]["DigitalSourceType"] == SOURCE_TYPE


def test_nifti_files_say_synthetic_in_descrip_and_hold_the_record(cat, tmp_path):
    import nibabel as nib

    Generators(config_file=cat).generate(3, num_samples=2, output_path=tmp_path / "run", seed=1)
    for name, output in (("000001_volume.nii.gz", "volume"), ("000001_mask.nii.gz", "mask")):
        img = nib.load(tmp_path / "run" / name)
        descrip = img.header["descrip"].item()
        assert descrip.startswith(b"synthetic") and b"00003_VOLUME" in descrip
        (ext,) = [e for e in img.header.extensions if e.get_code() == NIFTI_ECODE]
        record = json.loads(ext.get_content())
        assert record["output"] == output and record["index"] == 1 and record == read_mark(tmp_path / "run" / name)


def test_writer_processes_write_the_same_marked_bytes(cat, tmp_path, monkeypatch, epoch):
    g = Generators(config_file=cat)
    monkeypatch.setenv("MEDHUB_WRITERS", "1")
    threads = g.generate(1, num_samples=9, output_path=tmp_path / "threads", seed=2, batch_size=4)
    monkeypatch.setenv("MEDHUB_WRITERS", "2")
    processes = g.generate(1, num_samples=9, output_path=tmp_path / "processes", seed=2, batch_size=4)
    assert _files(threads.output_path) == _files(processes.output_path)
    assert read_mark(tmp_path / "processes" / "000008_image.png")["created"] == "2026-12-07T15:00:00Z"


def test_shards_share_one_time_and_equal_one_process_with_source_date_epoch(cat, tmp_path, monkeypatch):
    g = Generators(config_file=cat)
    for k in range(2):  # no SOURCE_DATE_EPOCH: the second shard takes the first one's time from run.json
        g.generate(2, num_samples=6, output_path=tmp_path / "a", seed=3, shard=f"{k}/2", offset=np.arange(6))
    times = {read_mark(p)["created"] for p in (tmp_path / "a").glob("*.png")}
    assert len(times) == 1 and json.loads((tmp_path / "a" / "run.json").read_text())["created"] in times
    monkeypatch.setenv("SOURCE_DATE_EPOCH", EPOCH)
    single = g.generate(2, num_samples=6, output_path=tmp_path / "single", seed=3, offset=np.arange(6))
    for k in range(3):
        g.generate(2, num_samples=6, output_path=tmp_path / "sharded", seed=3, shard=f"{k}/3", offset=np.arange(6))
    assert _files(single.output_path) == _files(tmp_path / "sharded") and len(_files(tmp_path / "sharded")) == 6
    record = read_mark(tmp_path / "sharded" / "000004_image.png")
    assert record["inputs"]["offset"] == {"ndarray": 4, "dtype": "int64"} and record["inputs_digest"]


def test_ray_chunk_workers_write_the_marked_bytes_of_one_process(cat, tmp_path, epoch):
    from medhub.distributed import ChunkWorker
    from medhub.execution.marking import run_marker
    from medhub.execution.ref import ModelRef
    from medhub.outputs.shared import claim_run
    from medhub.outputs.store import open_store

    g = Generators(config_file=cat)
    for model, n in ((1, 5), (3, 3)):
        executor = g.get_model_executor(model)
        executor.prepare()
        out = tmp_path / f"ray-{model}"
        claim_run(open_store(out), executor.run_record(4, n, engine="ray"))
        ref = ModelRef(executor.model_id, executor.execution_config, executor.description, "1", str(cat.parent))
        worker = ChunkWorker({"model": ref.__dict__, "install_dependencies": False, "trust_remote_code": False,
                              "device": "cpu", "output": str(out), "storage_options": {}, "seed": 4, "batch_size": 2,
                              "kwargs": {}, "io_threads": 2, "marker": run_marker(executor, 4, "cpu", {})})
        worker.run(list(range(n // 2, n)))
        worker.run(list(range(n // 2)))
        single = g.generate(model, num_samples=n, output_path=tmp_path / f"single-{model}", seed=4)
        assert _files(out) == _files(single.output_path) and all(read_mark(p) for p in out.glob("0*"))


def test_no_mark_leaves_the_marks_out_and_says_so(cat, tmp_path, capsys):
    g = Generators(config_file=cat)
    run = g.generate(1, num_samples=2, output_path=tmp_path / "plain", seed=0, mark=False)
    assert json.loads(run.provenance_path.read_text())["mark"] is False
    assert read_mark(tmp_path / "plain" / "000000_image.png") is None
    marked = g.generate(1, num_samples=2, output_path=tmp_path / "marked", seed=0)
    prov = json.loads(marked.provenance_path.read_text())
    assert prov["mark"] == MARK and prov["mark_created"] == read_mark(tmp_path / "marked" / "000001_image.png")["created"]
    assert cli_main(["--config", str(cat), "generate", "1", "-n", "1", "-o", str(tmp_path / "cli"), "--no-mark",
                     "--no-progress"]) == 0
    assert read_mark(tmp_path / "cli" / "000000_image.png") is None


def test_source_date_epoch_fixes_the_time(monkeypatch):
    monkeypatch.setenv("SOURCE_DATE_EPOCH", EPOCH)
    assert creation_time() == "2026-12-07T15:00:00Z"
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "yesterday")
    with pytest.raises(SettingError, match="SOURCE_DATE_EPOCH"):
        creation_time()


# ---------------------------------------------------------------------------- inspect
def test_inspect_prints_the_record_and_a_foreign_png_has_no_mark(cat, tmp_path, capsys):
    from PIL import Image

    Generators(config_file=cat).generate(1, num_samples=2, output_path=tmp_path / "run", seed=7)
    path = str(tmp_path / "run" / "000001_image.png")
    assert cli_main(["inspect", path]) == 0
    out = capsys.readouterr().out
    assert "00001_TOY version 1.0.0" in out and "index 1" in out and "run seed 7" in out and "medhub" in out
    assert cli_main(["inspect", "--json", path]) == 0
    assert json.loads(capsys.readouterr().out)[0]["record"] == inspect(path)
    Image.fromarray(np.zeros((4, 4), np.uint8)).save(tmp_path / "foreign.png")
    assert inspect(tmp_path / "foreign.png") is None
    assert cli_main(["inspect", str(tmp_path / "foreign.png")]) == 1
    assert capsys.readouterr().out.strip() == f"{tmp_path / 'foreign.png'}: no medhub mark"


@pytest.mark.parametrize("content", [None, b"just text", b"\x89PNG\r\n\x1a\n\x00\x00\x00\x0dIHDR", b"\x1f\x8bjunk"])
def test_bad_files_give_one_line_and_exit_2(tmp_path, capsys, content):
    path = tmp_path / "bad.png"
    if content is not None:
        path.write_bytes(content)
    for command in ("inspect", "verify"):
        assert cli_main([command, str(path)]) == 2
        err = capsys.readouterr().err.strip()
        assert err.startswith("medhub: error: ") and "\n" not in err and "Traceback" not in err
    with pytest.raises(MarkError):
        read_mark(path)


# ---------------------------------------------------------------------------- verify
def _edited(src: Path, dst: Path, change: int = 0xFF, record: dict | None = None) -> Path:
    from PIL import Image

    pixels = np.asarray(Image.open(src)).copy()
    pixels[3, 5] ^= change
    dst.write_bytes(encode_png(pixels, chunks=png_chunks(record or read_mark(src))))
    return dst


def test_verify_identical_changed_pixel_and_moved_copy(cat, tmp_path, capsys):
    g = Generators(config_file=cat)
    g.generate(1, num_samples=3, output_path=tmp_path / "run", seed=5)
    original = tmp_path / "run" / "000002_image.png"
    verdict = verify(original, generators=g)
    assert verdict.status == IDENTICAL and verdict.ok and verdict.pixels_changed == 0
    moved = tmp_path / "elsewhere" / "renamed.png"
    moved.parent.mkdir()
    shutil.copy(original, moved)
    shutil.rmtree(tmp_path / "run")  # no run folder, no manifest: the mark is enough
    assert verify(moved, generators=g).status == IDENTICAL
    edited = _edited(moved, tmp_path / "edited.png", change=0x10)
    verdict = verify(edited, generators=g)
    assert (verdict.status, verdict.pixels_changed, verdict.pixels, verdict.largest_difference) == (DIFFERS, 1, 64, 16)
    assert "1 of 64 pixels changed, largest difference 16" in str(verdict)
    assert cli_main(["--config", str(cat), "verify", str(moved), str(edited)]) == 1
    out = capsys.readouterr().out
    assert f"{moved}: identical (00001_TOY 1.0.0, seed 5, index 2, image; regenerated on cpu)" in out
    assert cli_main(["--config", str(cat), "verify", str(moved)]) == 0
    capsys.readouterr()
    assert cli_main(["--config", str(cat), "verify", "--json", str(edited)]) == 1
    assert json.loads(capsys.readouterr().out)[0]["pixels_changed"] == 1


def test_verify_nifti_and_per_sample_inputs(cat, tmp_path):
    g = Generators(config_file=cat)
    g.generate(3, num_samples=2, output_path=tmp_path / "vol", seed=1)
    assert verify(tmp_path / "vol" / "000001_volume.nii.gz", generators=g).status == IDENTICAL
    assert verify(tmp_path / "vol" / "000000_mask.nii.gz", generators=g).status == IDENTICAL
    g.generate(2, num_samples=3, output_path=tmp_path / "off", seed=1, offset=np.array([5, 9, 77]))
    assert verify(tmp_path / "off" / "000002_image.png", generators=g).status == IDENTICAL


def test_verify_cannot_verify_a_missing_model_version_or_an_unknown_model(cat, tmp_path, capsys):
    g = Generators(config_file=cat)
    g.generate(1, num_samples=1, output_path=tmp_path / "run", seed=0)
    path = tmp_path / "run" / "000000_image.png"
    newer = json.loads(cat.read_text())
    newer["models"]["00001_TOY"]["description"]["version"] = "2.0.0"
    newer_cat = write_catalog(tmp_path / "newer.json", newer["models"])
    verdict = verify(path, generators=Generators(config_file=newer_cat))
    assert verdict.status == CANNOT_VERIFY and "version 1.0.0" in verdict.reason and "2.0.0" in verdict.reason
    assert cli_main(["--config", str(newer_cat), "verify", str(path)]) == 1
    assert "cannot verify: it was made by version 1.0.0" in capsys.readouterr().out
    stranger = _edited(path, tmp_path / "stranger.png", change=0, record={**read_mark(path), "model_id": "07777_NOPE"})
    assert cli_main(["--config", str(cat), "verify", str(stranger)]) == 1
    out, err = capsys.readouterr()
    assert "cannot verify: its mark names model '07777_NOPE', which is not in this catalog" in out and not err


def test_verify_other_device_kinds(cat, tmp_path):
    g = Generators(config_file=cat)
    g.generate(1, num_samples=1, output_path=tmp_path / "run", seed=0)
    path = tmp_path / "run" / "000000_image.png"
    on_mps = {**read_mark(path), "device": "mps"}  # a device this machine does not have
    same = _edited(path, tmp_path / "same.png", change=0, record=on_mps)
    verdict = verify(same, generators=g)
    assert verdict.status == CANNOT_VERIFY and "made on mps" in verdict.reason and "--device cpu" in verdict.reason
    verdict = verify(_edited(path, tmp_path / "near.png", change=1, record=on_mps), device="cpu", generators=g)
    assert verdict.status == WITHIN_TOLERANCE and verdict.ok and "2 grey levels" in verdict.reason
    verdict = verify(_edited(path, tmp_path / "far.png", change=0x40, record=on_mps), device="cpu", generators=g)
    assert verdict.status == DIFFERS and not verdict.ok
    import nibabel as nib

    from medhub.outputs import OutputSpec
    from medhub.outputs.encode import write_nifti

    g.generate(3, num_samples=1, output_path=tmp_path / "vol", seed=0)
    volume = tmp_path / "vol" / "000000_volume.nii.gz"
    values = np.asanyarray(nib.load(volume).dataobj).copy()
    values[1, 2, 3] += 0.5
    edited = tmp_path / "vol-edited.nii.gz"
    write_nifti(edited, values, OutputSpec("volume", "volume", (6, 7, 5), "float32"), {**read_mark(volume), "device": "mps"})
    verdict = verify(edited, device="cpu", generators=g)  # floats: no documented tolerance across devices
    assert verdict.status == CANNOT_VERIFY and "float32 values differ" in verdict.reason


def test_verify_image_to_image_inputs(cat, tmp_path):
    g = Generators(config_file=cat)
    _example(tmp_path / "mine", 10)
    g.generate(4, num_samples=3, output_path=tmp_path / "mine-run", seed=0, input_path=str(tmp_path / "mine"))
    path = tmp_path / "mine-run" / "000001_image.png"
    assert read_mark(path)["inputs_digest"].startswith("sha256:")
    assert verify(path, generators=g).status == IDENTICAL  # the recorded folder is still there
    shutil.move(tmp_path / "mine", tmp_path / "moved-inputs")
    verdict = verify(path, generators=g)
    assert verdict.status == CANNOT_VERIFY and "inputs unavailable" in verdict.reason and "--inputs" in verdict.reason
    assert verify(path, inputs=tmp_path / "moved-inputs", generators=g).status == IDENTICAL
    assert verify(path, inputs=tmp_path / "folder" / "examples" / "set", generators=g).status == CANNOT_VERIFY
    # made from the package's own example folder, passed by its path: found in the package again
    example = tmp_path / "copy-of-example"
    shutil.copytree(tmp_path / "folder" / "examples" / "set", example)
    g.generate(4, num_samples=2, output_path=tmp_path / "ex-run", seed=0, input_path=str(example))
    shutil.rmtree(example)
    assert verify(tmp_path / "ex-run" / "000001_image.png", generators=g).status == IDENTICAL


def test_verify_a_file_without_a_mark(tmp_path):
    from PIL import Image

    Image.fromarray(np.zeros((4, 4), np.uint8)).save(tmp_path / "plain.png")
    assert verify(tmp_path / "plain.png").status == NO_MARK


def test_marks_are_not_imported_with_medhub():
    import subprocess
    import sys

    code = "import sys, medhub; assert 'medhub.verification' not in sys.modules; print(medhub.verify.__name__)"
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True).stdout.strip() == "verify"


def test_a_png_written_by_pillow_keeps_the_mark(monkeypatch):
    """Where the plain encoder refuses a layout, Pillow writes the file, with the same mark."""
    import importlib

    from medhub.outputs import OutputSpec, encode
    from medhub.outputs.marks import record_of

    encode_module = importlib.import_module("medhub.outputs.encode")
    record = {"mark": MARK, "model_id": "m", "model_version": None, "medhub_version": "0", "created": "x"}

    def refuse(*args, **kwargs):
        raise ValueError("a layout the plain encoder does not write")

    monkeypatch.setattr(encode_module, "encode_png", refuse)
    data = encode(np.zeros((4, 4), np.uint8), OutputSpec("image", "image", (4, 4), "uint8"), record)
    assert record_of(data) == record


# ---------------------------------------------------------------------------- C2PA content credentials
def _throwaway_ca(folder: Path) -> tuple[Path, Path, Path]:
    """A CA and an ES256 signing certificate made for the test: (key, certificate chain, CA) PEM files."""
    import datetime

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    now = datetime.datetime.now(datetime.timezone.utc)

    def cert(subject: str, key, issuer, issuer_key, ca: bool):
        usage = dict(content_commitment=False, key_encipherment=False, data_encipherment=False, key_agreement=False,
                     encipher_only=False, decipher_only=False)
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject),
                          x509.NameAttribute(NameOID.ORGANIZATION_NAME, "medhub tests")])
        b = (x509.CertificateBuilder().subject_name(name).issuer_name(issuer or name).public_key(key.public_key())
             .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(days=1))
             .not_valid_after(now + datetime.timedelta(days=7))
             .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
             .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=ca, crl_sign=ca, **usage), critical=True)
             .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False))
        if not ca:
            b = (b.add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.EMAIL_PROTECTION]), critical=False)
                 .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer_key.public_key()),
                                critical=False))
        return b.sign(issuer_key, hashes.SHA256())

    ca_key, key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    ca = cert("medhub test CA", ca_key, None, ca_key, True)
    signer = cert("medhub test signer", key, ca.subject, ca_key, False)
    pem = serialization.Encoding.PEM
    paths = folder / "key.pem", folder / "chain.pem", folder / "ca.pem"
    paths[0].write_bytes(key.private_bytes(pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
    paths[1].write_bytes(signer.public_bytes(pem) + ca.public_bytes(pem))
    paths[2].write_bytes(ca.public_bytes(pem))
    return paths


def test_c2pa_content_credentials_signed_offline(cat, tmp_path, capsys, monkeypatch):
    pytest.importorskip("c2pa")
    key, chain, ca = _throwaway_ca(tmp_path)
    g = Generators(config_file=cat)
    run = g.generate(1, num_samples=2, output_path=tmp_path / "run", seed=0, sign=(key, chain))
    path = tmp_path / "run" / "000001_image.png"
    assert json.loads(run.provenance_path.read_text())["c2pa_signed"] is True
    assert read_mark(path)["index"] == 1  # the medhub mark survives the signing
    assert cli_main(["inspect", str(path)]) == 0
    assert "c2pa:    Valid (signingCredential.untrusted); source type " + SOURCE_TYPE in capsys.readouterr().out
    monkeypatch.setenv("MEDHUB_C2PA_TRUST_ANCHORS", str(ca))
    assert cli_main(["inspect", "--json", str(path)]) == 0
    c2pa = json.loads(capsys.readouterr().out)[0]["c2pa"]
    assert c2pa == {"validation_state": "Trusted", "status": [], "digital_source_type": SOURCE_TYPE, "record": True}
    verdict = verify(path, generators=g)
    assert verdict.status == IDENTICAL and "other bytes differ" in verdict.reason  # signatures are randomised
    data = bytearray(path.read_bytes())
    data[data.find(b"IDAT") + 12] ^= 1  # one bit of the image data: the signature no longer holds
    path.write_bytes(bytes(data))
    from medhub.verification import credentials

    assert credentials(path)["validation_state"] == "Invalid"
    assert cli_main(["--config", str(cat), "generate", "1", "-n", "1", "-o", str(tmp_path / "bad"), "--sign-key",
                     str(chain), "--sign-cert", str(chain), "--no-progress"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("medhub: error: The signing key") and "\n" not in err and not (tmp_path / "bad").exists()
