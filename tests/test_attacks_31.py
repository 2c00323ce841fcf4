"""Attack and fault cases of issue 31 on remote archive packages (the Hub's are in test_hub.py):
pins checked against medhub's record on every run, archive errors that name the model and its URL,
and a resumed download whose ETag changed. Real HTTP servers on 127.0.0.1 only.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import pytest
from conftest import write_catalog
from test_attacks import SPEC, catalog, cli, package_zip, remote_entry
from test_remote import make_zip

from medhub.cli import EXIT_OK
from medhub.errors import DownloadError, IntegrityError, UnsafeArchiveError
from medhub.execution.cache import META
from medhub.execution.tree import FileRecord, manifest_digest

pytestmark = pytest.mark.usefixtures("fast_downloads")


def test_31_2_weights_changed_with_a_consistently_rewritten_record_are_refused(server, tmp_path, capsys):
    server.files["/p.zip"] = package_zip(7, padding=4096)
    models = {"00001_P": remote_entry(server.url("/p.zip"), server.files["/p.zip"])}
    folder = Path(catalog(tmp_path, models).prefetch([1], progress=False)["00001_P"])
    weights = folder / "weights.bin"
    weights.write_bytes(os.urandom(4096))  # other weights, same size
    meta = json.loads((folder / META).read_text())
    st = weights.stat()
    meta["files"]["weights.bin"] = [hashlib.sha256(weights.read_bytes()).hexdigest(), st.st_size, st.st_mtime_ns]
    meta["tree_sha256"] = manifest_digest({rel: FileRecord(*e) for rel, e in meta["files"].items()})[0]
    (folder / META).write_text(json.dumps(meta))  # the record agrees with the new weights
    with pytest.raises(IntegrityError, match=r"does not match the archive it was extracted from \(weights\.bin\)"):
        catalog(tmp_path, models).generate(1, num_samples=1, save_images=False)
    cat = write_catalog(tmp_path / "catalog.json", models)
    code, out, _ = cli(capsys, "--config", str(cat), "cache", "verify")
    assert code != EXIT_OK and "weights.bin" in out
    # the fix the message names puts the package back from its verified archive
    assert cli(capsys, "--config", str(cat), "prefetch", "1", "--force")[0] == EXIT_OK
    assert (catalog(tmp_path, models).generate(1, num_samples=1, save_images=False)[0] == 7).all()
    assert cli(capsys, "--config", str(cat), "cache", "verify")[0] == EXIT_OK


def test_31_2_a_zero_pin_never_runs_from_what_is_cached(server, tmp_path):
    server.files["/p.zip"] = package_zip(7)
    models = {"00001_P": remote_entry(server.url("/p.zip"), server.files["/p.zip"])}
    catalog(tmp_path, models).prefetch([1], progress=False)
    models["00001_P"]["execution"]["sha256"] = "0" * 64
    with pytest.raises(IntegrityError, match="catalog pins 0000"):
        catalog(tmp_path, models).generate(1, num_samples=1, save_images=False)


def test_31_12a_archive_errors_name_the_model_and_its_url(server, tmp_path, _isolated_home):
    server.files["/bad.zip"] = make_zip({"__init__.py": b"x = 1\n", "../evil.py": b"x"})
    models = {"00001_BAD": remote_entry(server.url("/bad.zip"), server.files["/bad.zip"])}
    with pytest.raises(UnsafeArchiveError) as err:
        catalog(tmp_path, models).prefetch([1], progress=False)
    message = str(err.value)
    assert "00001_BAD" in message and server.url("/bad.zip") in message and ".part" not in message, message
    assert "points outside the package" in message


def test_31_12c_a_resumed_206_with_another_etag_starts_again(server, tmp_path, _isolated_home, monkeypatch):
    old, new = package_zip(5, padding=2 << 20), package_zip(6, padding=2 << 20)
    assert len(old) == len(new)
    server.files["/u.zip"], server.etags["/u.zip"] = old, '"v1"'
    server.modes["/u.zip"].append("cut:1048576")
    models = {"00001_U": remote_entry(server.url("/u.zip"), None)}
    monkeypatch.setenv("MEDHUB_DOWNLOAD_RETRIES", "0")
    with pytest.raises(DownloadError):
        catalog(tmp_path, models).prefetch([1], trust_remote_code=True, progress=False)
    server.files["/u.zip"], server.etags["/u.zip"] = new, '"v2"'  # changed on the server ...
    server.modes["/u.zip"].append("ignore-if-range")  # ... and a broken cache answers the range of the new file
    monkeypatch.setenv("MEDHUB_DOWNLOAD_RETRIES", "1")
    out = catalog(tmp_path, models).generate(1, num_samples=1, save_images=False, trust_remote_code=True)
    assert (out[0] == 6).all()
    assert server.requests[-2][1].get("If-Range") == '"v1"' and "Range" not in server.requests[-1][1]
    record = json.loads((_isolated_home / "trust.json").read_text())["00001_U"]
    assert record["sha256"] == hashlib.sha256(new).hexdigest()
    assert SPEC
