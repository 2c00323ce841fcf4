"""Remote packages against a real HTTP server on 127.0.0.1 acting as Zenodo."""

from __future__ import annotations

import hashlib
import io
import json
import os
import signal
import stat
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import numpy as np
import pytest
from conftest import entry, write_catalog
from fake_zenodo import FakeZenodo

from medhub import Generators
from medhub.cli import main as cli_main
from medhub.errors import (
    DownloadError,
    IntegrityError,
    PackageNotAvailableError,
    UnsafeArchiveError,
    UntrustedPackageError,
)
from medhub.execution.cache import PackageCache

MEDIGAN_PKG = b"""
import numpy as np
from pathlib import Path

def generate(model_file, num_samples, output_path, save_images, input_path=None, **kwargs):
    assert Path(model_file).is_absolute() and Path(model_file).is_file(), model_file
    base = int(Path(input_path, "value.txt").read_text()) if input_path else 0
    return [np.full((4, 4), base, np.uint8) for _ in range(num_samples)]
"""
SPEC = [{"name": "image", "kind": "image", "shape": [4, 4], "dtype": "uint8"}]


def make_zip(files: dict[str, bytes], links: dict[str, str] | None = None, compress: bool = True) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED if compress else zipfile.ZIP_STORED) as zf:
        for name, data in files.items():
            zf.writestr(name, data)
        for name, target in (links or {}).items():
            info = zipfile.ZipInfo(name)
            info.external_attr = (stat.S_IFLNK | 0o777) << 16
            zf.writestr(info, target)
    return buf.getvalue()


def flat_zip(value: int = 7, padding: int = 0) -> bytes:
    return make_zip({"__init__.py": MEDIGAN_PKG, "gen.pt": b"w" * 100 + os.urandom(padding),
                     "images/value.txt": str(value).encode()})


def nested_zip(value: int = 9) -> bytes:  # medigan layout: <package_name>/ inside, inputs beside it
    return make_zip({"mypkg/__init__.py": MEDIGAN_PKG, "mypkg/gen.pt": b"w" * 100,
                     "images/value.txt": str(value).encode()})


def remote(url: str, data: bytes | None, pin: bool = True, **custom: object) -> dict:
    sha = hashlib.sha256(data).hexdigest() if (pin and data is not None) else None
    e = entry(url, SPEC, interface="medigan", model_name="gen", extension=".pt", package_name="mypkg",
              sha256=sha, size=len(data) if (pin and data is not None) else None)
    e["execution"]["generate_method"]["args"] = {"custom": dict(custom)}
    return e


@pytest.fixture
def zenodo():
    server = FakeZenodo().start()
    yield server
    server.stop()


@pytest.fixture(autouse=True)
def _fast_retries(monkeypatch):
    monkeypatch.setenv("MEDHUB_DOWNLOAD_BACKOFF", "0.05")
    monkeypatch.setenv("MEDHUB_DOWNLOAD_RETRIES", "2")


def catalog(tmp_path: Path, models: dict) -> Generators:
    return Generators(config_file=write_catalog(tmp_path / "catalog.json", models))


def test_happy_path_both_url_forms_and_medigan_layouts(zenodo, tmp_path, _isolated_home):
    zenodo.files["flat.zip"] = flat_zip(7)
    zenodo.files["nested.zip"] = nested_zip(9)
    g = catalog(tmp_path, {
        "00001_FLAT": remote(zenodo.record_url("flat.zip"), zenodo.files["flat.zip"],
                             input_path="models/00001_FLAT/images"),
        "00002_NESTED": remote(zenodo.api_url("nested.zip"), zenodo.files["nested.zip"],
                               input_path="models/00002_NESTED/images"),
    })
    assert (g.generate(1, num_samples=2, save_images=False, seed=0)[0] == 7).all()
    assert (g.generate(2, num_samples=2, save_images=False, seed=0)[0] == 9).all()
    sha = hashlib.sha256(zenodo.files["flat.zip"]).hexdigest()
    assert (_isolated_home / "archives" / f"{sha}.zip").is_file()
    assert len(zenodo.content_requests("flat.zip")) == 1
    # a second Generators uses the cache: no new request
    catalog(tmp_path, {"00001_FLAT": remote(zenodo.record_url("flat.zip"), zenodo.files["flat.zip"])}).generate(
        1, num_samples=1, save_images=False)
    assert len(zenodo.content_requests("flat.zip")) == 1
    assert not list((_isolated_home / "downloads").glob("*.part"))


def test_checksum_mismatch_removes_file_and_imports_nothing(zenodo, tmp_path, _isolated_home):
    zenodo.files["p.zip"] = flat_zip()
    e = remote(zenodo.api_url("p.zip"), zenodo.files["p.zip"])
    e["execution"]["sha256"] = "0" * 64
    g = catalog(tmp_path, {"00001_BAD": e})
    with pytest.raises(IntegrityError, match="the catalog pins 0000"):
        g.generate(1, num_samples=1, save_images=False)
    assert not list(_isolated_home.glob("archives/*")) and not list(_isolated_home.glob("downloads/*.part"))
    assert not (_isolated_home / "packages" / "00001_BAD").exists() or not any((_isolated_home / "packages").rglob("*.py"))
    assert not [m for m in sys.modules if m.startswith("medhub_pkg_00001_BAD")]


def test_transfer_cut_short_is_resumed(zenodo, tmp_path):
    zenodo.files["p.zip"] = flat_zip(padding=3_000_000)
    zenodo.behaviour["p.zip"].extend(["truncate"])
    g = catalog(tmp_path, {"00001_CUT": remote(zenodo.api_url("p.zip"), zenodo.files["p.zip"])})
    assert (g.generate(1, num_samples=1, save_images=False)[0] == 0).all()
    ranges = zenodo.content_requests("p.zip")
    assert ranges[0] is None and ranges[1] is not None and ranges[1].startswith("bytes=") and ranges[1] != "bytes=0-"


def test_always_truncated_fails_after_bounded_retries(zenodo, tmp_path):
    zenodo.files["p.zip"] = flat_zip(padding=100_000)
    zenodo.behaviour["p.zip"].extend(["truncate"] * 10)
    g = catalog(tmp_path, {"00001_CUT": remote(zenodo.api_url("p.zip"), zenodo.files["p.zip"])})
    with pytest.raises(DownloadError, match="after 3 attempts"):
        g.generate(1, num_samples=1, save_images=False)
    assert len(zenodo.content_requests("p.zip")) == 3


def test_server_error_then_success(zenodo, tmp_path):
    zenodo.files["p.zip"] = flat_zip()
    zenodo.behaviour["p.zip"].extend(["500"])
    g = catalog(tmp_path, {"00001_RETRY": remote(zenodo.record_url("p.zip"), zenodo.files["p.zip"])})
    assert g.generate(1, num_samples=1, save_images=False)
    assert len(zenodo.content_requests("p.zip")) == 2


def test_timeout_is_bounded(zenodo, tmp_path, monkeypatch):
    zenodo.files["p.zip"] = flat_zip()
    zenodo.behaviour["p.zip"].extend(["hang"] * 5)
    zenodo.hang_s = 2.0
    monkeypatch.setenv("MEDHUB_DOWNLOAD_TIMEOUT", "0.3")
    monkeypatch.setenv("MEDHUB_DOWNLOAD_RETRIES", "1")
    g = catalog(tmp_path, {"00001_SLOW": remote(zenodo.api_url("p.zip"), zenodo.files["p.zip"])})
    started = time.monotonic()
    with pytest.raises(DownloadError, match="Timeout"):
        g.generate(1, num_samples=1, save_images=False)
    assert time.monotonic() - started < 3.0


def test_not_found_fails_at_once(zenodo, tmp_path, _isolated_home):
    g = catalog(tmp_path, {"00001_GONE": remote(zenodo.api_url("missing.zip"), b"x")})
    with pytest.raises(DownloadError, match="HTTP 404"):
        g.generate(1, num_samples=1, save_images=False)
    assert len(zenodo.content_requests("missing.zip")) == 1
    assert not list((_isolated_home / "downloads").glob("*"))


@pytest.mark.parametrize("archive, match", [
    (make_zip({"__init__.py": MEDIGAN_PKG, "../evil.py": b"x"}), r"outside the package"),
    (make_zip({"__init__.py": MEDIGAN_PKG, "/abs/evil.py": b"x"}), r"absolute"),
    (make_zip({"__init__.py": MEDIGAN_PKG}, links={"gen.pt": "/etc/passwd"}), r"symbolic link"),
    (make_zip({"__init__.py": MEDIGAN_PKG, "bomb.bin": b"\0" * (3 * 2**20)}), r"zip bomb"),
])
def test_unsafe_archives_are_refused_before_writing(zenodo, tmp_path, _isolated_home, monkeypatch, archive, match):
    monkeypatch.setenv("MEDHUB_MAX_EXTRACT_BYTES", str(2 * 2**20))
    zenodo.files["bad.zip"] = archive
    g = catalog(tmp_path, {"00001_UNSAFE": remote(zenodo.api_url("bad.zip"), archive)})
    with pytest.raises(UnsafeArchiveError, match=match):
        g.generate(1, num_samples=1, save_images=False)
    assert not (tmp_path / "evil.py").exists() and not (_isolated_home / "evil.py").exists()
    assert not list((_isolated_home / "packages").rglob("*.py"))


def test_tar_archives_and_tar_links(tmp_path):
    import tarfile

    from medhub.execution.archive import safe_extract

    good = tmp_path / "good.tar.gz"
    with tarfile.open(good, "w:gz") as tf:
        info = tarfile.TarInfo("pkg/__init__.py")
        info.size = len(MEDIGAN_PKG)
        tf.addfile(info, io.BytesIO(MEDIGAN_PKG))
    safe_extract(good, tmp_path / "out")
    assert (tmp_path / "out" / "pkg" / "__init__.py").read_bytes() == MEDIGAN_PKG
    bad = tmp_path / "bad.tar"
    with tarfile.open(bad, "w") as tf:
        link = tarfile.TarInfo("pkg/link")
        link.type = tarfile.SYMTYPE
        link.linkname = "/etc/passwd"
        tf.addfile(link)
    with pytest.raises(UnsafeArchiveError, match="link"):
        safe_extract(bad, tmp_path / "out2")
    assert not (tmp_path / "out2").exists()


def test_offline_with_warm_and_cold_cache(zenodo, tmp_path, monkeypatch):
    zenodo.files["p.zip"] = flat_zip(3)
    models = {"00001_OFF": remote(zenodo.api_url("p.zip"), zenodo.files["p.zip"], input_path="models/00001_OFF/images"),
              "00002_COLD": remote(zenodo.api_url("q.zip"), b"never fetched")}
    g = catalog(tmp_path, models)
    assert list(g.prefetch([1])) == ["00001_OFF"]
    monkeypatch.setenv("MEDHUB_OFFLINE", "1")
    zenodo.stop()
    offline = catalog(tmp_path, models)
    assert (offline.generate(1, num_samples=1, save_images=False)[0] == 3).all()
    with pytest.raises(PackageNotAvailableError, match="medhub prefetch 00002_COLD"):
        offline.generate(2, num_samples=1, save_images=False)


def test_unpinned_needs_trust_then_is_pinned_locally(zenodo, tmp_path, _isolated_home, monkeypatch):
    zenodo.files["u.zip"] = flat_zip(5)
    models = {"00001_UNPINNED": remote(zenodo.api_url("u.zip"), zenodo.files["u.zip"], pin=False)}
    g = catalog(tmp_path, models)
    with pytest.raises(UntrustedPackageError, match="trust_remote_code=True"):
        g.generate(1, num_samples=1, save_images=False)
    assert zenodo.content_requests("u.zip") == []
    assert g.generate(1, num_samples=1, save_images=False, trust_remote_code=True)
    record = json.loads((_isolated_home / "trust.json").read_text())["00001_UNPINNED"]
    assert record["sha256"] == hashlib.sha256(zenodo.files["u.zip"]).hexdigest()
    # the package changes on the server and the cache is lost: medhub refuses the new bytes
    zenodo.files["u.zip"] = flat_zip(6)
    import shutil

    shutil.rmtree(_isolated_home / "packages")
    shutil.rmtree(_isolated_home / "archives")
    with pytest.raises(UntrustedPackageError, match="changed since you trusted it"):
        catalog(tmp_path, models).generate(1, num_samples=1, save_images=False, trust_remote_code=True)
    assert not list((_isolated_home / "archives").glob("*")) if (_isolated_home / "archives").exists() else True
    # `cache rm` forgets the trust record; trusting again accepts the new version
    PackageCache().remove("00001_UNPINNED")
    monkeypatch.setenv("MEDHUB_TRUST_REMOTE_CODE", "1")
    assert (catalog(tmp_path, models).generate(1, num_samples=1, save_images=False)[0] == 0).all()


def test_cache_commands(zenodo, tmp_path, _isolated_home, capsys):
    zenodo.files["p.zip"] = flat_zip()
    cat = write_catalog(tmp_path / "catalog.json", {"00001_C": remote(zenodo.api_url("p.zip"), zenodo.files["p.zip"])})
    assert cli_main(["--config", str(cat), "prefetch", "1", "--no-progress", "--json"]) == 0
    folder = Path(json.loads(capsys.readouterr().out)["00001_C"])
    assert cli_main(["cache", "ls", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [r["model_id"] for r in rows] == ["00001_C"] and rows[0]["sha256"] == hashlib.sha256(
        zenodo.files["p.zip"]).hexdigest()
    assert cli_main(["cache", "verify"]) == 0
    capsys.readouterr()
    (folder / "__init__.py").write_text("tampered = True\n")
    assert cli_main(["cache", "verify"]) == 1
    assert "files changed" in capsys.readouterr().out
    # prune: partial downloads older than an hour and packages that left the catalog
    stale = _isolated_home / "downloads" / "x.123.part"
    stale.write_bytes(b"partial")
    os.utime(stale, (time.time() - 7200, time.time() - 7200))
    empty = write_catalog(tmp_path / "empty.json", {})
    assert cli_main(["--config", str(empty), "cache", "prune", "--json"]) == 0
    pruned = json.loads(capsys.readouterr().out)
    assert str(stale) in pruned and str(folder) in pruned
    assert not list((_isolated_home / "archives").glob("*"))
    assert cli_main(["--config", str(cat), "prefetch", "1", "--no-progress"]) == 0
    assert cli_main(["--config", str(cat), "cache", "rm", "1"]) == 0
    assert not (_isolated_home / "packages" / "00001_C").exists()


_PREFETCH = (
    "import sys; from medhub import Generators;"
    "print(Generators(config_file=sys.argv[1]).prefetch([1], progress=False)['00001_PAR'])"
)


def test_eight_processes_download_once(zenodo, tmp_path, _isolated_home):
    zenodo.files["p.zip"] = flat_zip(padding=600_000)
    zenodo.slow = 0.03
    cat = write_catalog(tmp_path / "catalog.json", {"00001_PAR": remote(zenodo.api_url("p.zip"), zenodo.files["p.zip"])})
    env = dict(os.environ, MEDHUB_HOME=str(_isolated_home))
    procs = [subprocess.Popen([sys.executable, "-c", _PREFETCH, str(cat)], env=env, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True) for _ in range(8)]
    outs = [p.communicate(timeout=120) for p in procs]
    assert all(p.returncode == 0 for p in procs), [o[1][-500:] for o in outs]
    assert len({o[0].strip() for o in outs}) == 1
    assert len(zenodo.content_requests("p.zip")) == 1
    archives = list((_isolated_home / "archives").glob("*.zip"))
    assert len(archives) == 1 and archives[0].read_bytes() == zenodo.files["p.zip"]


def test_process_killed_mid_download_then_resumed(zenodo, tmp_path, _isolated_home):
    zenodo.files["p.zip"] = flat_zip(padding=2_000_000)
    zenodo.slow = 0.05
    cat = write_catalog(tmp_path / "catalog.json", {"00001_PAR": remote(zenodo.api_url("p.zip"), zenodo.files["p.zip"])})
    env = dict(os.environ, MEDHUB_HOME=str(_isolated_home))
    proc = subprocess.Popen([sys.executable, "-c", _PREFETCH, str(cat)], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)
    downloads = _isolated_home / "downloads"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        parts = list(downloads.glob("*.part")) if downloads.exists() else []
        if parts and parts[0].stat().st_size > 300_000:
            break
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert not list((_isolated_home / "archives").glob("*")) if (_isolated_home / "archives").exists() else True
    zenodo.slow = 0.0
    g = Generators(config_file=cat)
    assert g.generate(1, num_samples=1, save_images=False)
    resumed = zenodo.content_requests("p.zip")[-1]
    assert resumed is not None and int(resumed.split("=")[1].rstrip("-")) >= 300_000
    assert not list(downloads.glob("*.part"))
    archive = next((_isolated_home / "archives").glob("*.zip"))
    assert archive.read_bytes() == zenodo.files["p.zip"]


def test_generated_samples_match_between_runs(zenodo, tmp_path):
    zenodo.files["p.zip"] = flat_zip(4)
    g = catalog(tmp_path, {"00001_R": remote(zenodo.api_url("p.zip"), zenodo.files["p.zip"],
                                             input_path="models/00001_R/images")})
    a = g.generate(1, num_samples=3, save_images=False, seed=1)
    b = g.generate(1, num_samples=3, save_images=False, seed=1)
    assert all(np.array_equal(x, y) for x, y in zip(a, b))


def test_corrupt_cached_archive_is_downloaded_again(zenodo, tmp_path, _isolated_home):
    import shutil

    zenodo.files["p.zip"] = flat_zip(2)
    models = {"00001_A": remote(zenodo.api_url("p.zip"), zenodo.files["p.zip"], input_path="models/00001_A/images")}
    catalog(tmp_path, models).prefetch([1], progress=False)
    archive = next((_isolated_home / "archives").glob("*.zip"))
    archive.write_bytes(b"garbage")
    shutil.rmtree(_isolated_home / "packages")
    assert (catalog(tmp_path, models).generate(1, num_samples=1, save_images=False)[0] == 2).all()
    assert archive.read_bytes() == zenodo.files["p.zip"]
    assert len(zenodo.content_requests("p.zip")) == 2


def test_package_cached_by_an_older_medhub_is_checked_in_full_and_upgraded(zenodo, tmp_path, _isolated_home):
    zenodo.files["p.zip"] = flat_zip(3)
    models = {"00001_OLD": remote(zenodo.api_url("p.zip"), zenodo.files["p.zip"], input_path="models/00001_OLD/images")}
    folder = Path(catalog(tmp_path, models).prefetch([1], progress=False)["00001_OLD"])
    meta = json.loads((folder / ".medhub-package.json").read_text())
    del meta["files"]  # the record of an older medhub: the tree digest only
    (folder / ".medhub-package.json").write_text(json.dumps(meta))
    assert (catalog(tmp_path, models).generate(1, num_samples=1, save_images=False)[0] == 3).all()
    assert "files" in json.loads((folder / ".medhub-package.json").read_text())
    (folder / ".medhub-package.json").write_text(json.dumps(meta))
    (folder / "__init__.py").write_text("X = 1\n")
    with pytest.raises(IntegrityError, match="files changed since extraction"):
        catalog(tmp_path, models).generate(1, num_samples=1, save_images=False)


GATED_PKG = b"""
import time
import numpy as np
from pathlib import Path

def generate(model_file, num_samples, output_path, save_images, gate=None, **kwargs):
    Path(gate, "started").write_text("1")
    while not Path(gate, "go").exists():
        time.sleep(0.05)
    value = int((Path(__file__).parent / "images" / "value.txt").read_text())  # the package's own file, read late
    return [np.full((4, 4), value, np.uint8) for _ in range(num_samples)]
"""


def test_prune_and_rm_keep_a_package_a_run_with_another_catalog_uses(zenodo, tmp_path, _isolated_home):
    """Issue 31, point 3: `MEDHUB_CONFIG=other.json medhub generate` runs in one process while `medhub
    cache prune` (the bundled catalog, which does not know the model) runs in another: the package
    stays, the run ends well; once the run is over, a prune removes it. `medhub cache rm` of the model
    during the run is refused in one line and removes nothing (not even the archive)."""
    zenodo.files["g.zip"] = make_zip({"__init__.py": GATED_PKG, "gen.pt": b"w" * 100, "images/value.txt": b"5"})
    other = write_catalog(tmp_path / "other.json", {"00001_GATED": remote(zenodo.api_url("g.zip"), zenodo.files["g.zip"])})
    gate = tmp_path / "gate"
    gate.mkdir()
    env = dict(os.environ, MEDHUB_HOME=str(_isolated_home), MEDHUB_CONFIG=str(other))
    run = subprocess.Popen([sys.executable, "-m", "medhub.cli", "generate", "1", "-n", "2", "-o", str(tmp_path / "out"),
                            "--seed", "0", "--no-progress", "--arg", f"gate={gate}"], env=env, stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 120
        while not (gate / "started").exists():
            assert run.poll() is None and time.monotonic() < deadline, run.communicate()
            time.sleep(0.05)
        package = next((_isolated_home / "packages" / "00001_GATED").iterdir())
        rm = subprocess.run([sys.executable, "-m", "medhub.cli", "cache", "rm", "1"], env=env,
                            capture_output=True, text=True, timeout=120)  # `cache rm` refuses too, removing nothing
        assert rm.returncode == 1 and "is in use by a running medhub process" in rm.stderr, rm.stderr
        assert len(rm.stderr.strip().splitlines()) == 1 and (package / "images" / "value.txt").is_file()
        assert list((_isolated_home / "archives").iterdir())
        env.pop("MEDHUB_CONFIG")
        prune = subprocess.run([sys.executable, "-m", "medhub.cli", "cache", "prune", "--json"], env=env,
                               capture_output=True, text=True, timeout=120)
        assert prune.returncode == 0 and str(package) not in json.loads(prune.stdout), prune.stdout
        assert (package / "images" / "value.txt").is_file()
        (gate / "go").write_text("1")
        out, err = run.communicate(timeout=120)
    finally:
        (gate / "go").write_text("1")
        run.wait(timeout=120)
    assert run.returncode == 0, err
    from PIL import Image

    assert np.asarray(Image.open(tmp_path / "out" / "000000_image.png")).max() == 5
    prune = subprocess.run([sys.executable, "-m", "medhub.cli", "cache", "prune", "--json"], env=env,
                           capture_output=True, text=True, timeout=120)
    assert prune.returncode == 0 and str(package) in json.loads(prune.stdout)
    assert not list((_isolated_home / "locks" / "in-use").iterdir())  # the run's marker went with it
