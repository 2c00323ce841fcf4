"""Attack and fault cases from security reports, one test per finding (issue 25 onwards).

Add a test here for every new report: it names the report's point, fails on the code the report
was made against, and passes once the finding is fixed. Everything runs against real HTTP servers
on 127.0.0.1 that the tests start and stop; nothing reaches the internet.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import marshal
import os
import socket
import subprocess
import sys
import time
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from conftest import IMG8, LABEL, NUMPY_TOY, entry, write_catalog, write_package
from fake_http import Server
from test_remote import make_zip

from medhub import Generators
from medhub.cli import EXIT_ERROR, EXIT_OK, EXIT_USAGE, main
from medhub.errors import (
    CatalogError,
    DownloadError,
    IntegrityError,
    PackageError,
    SettingError,
    UnsafeArchiveError,
)
from medhub.execution.archive import safe_extract
from medhub.execution.cache import PackageCache

SPEC = [{"name": "image", "kind": "image", "shape": [4, 4], "dtype": "uint8"}]
PKG = """
import numpy as np

VALUE = 7


def load(weights_path, device):
    return None


def sample(model, seeds, latent=None, **inputs):
    return {"image": np.full((len(seeds), 4, 4), VALUE, np.uint8)}
"""


pytestmark = pytest.mark.usefixtures("fast_downloads")


def package_zip(value: int = 7, padding: int = 0) -> bytes:
    files = {"__init__.py": PKG.replace("VALUE = 7", f"VALUE = {value}").encode()}
    if padding:
        files["weights.bin"] = os.urandom(padding)
    return make_zip(files, compress=not padding)


def remote_entry(url: str, data: bytes | None, **execution: Any) -> dict:
    pinned = {"sha256": hashlib.sha256(data).hexdigest(), "size": len(data)} if data is not None else {}
    return entry(url, SPEC, **pinned, **execution)


def catalog(tmp_path: Path, models: dict) -> Generators:
    return Generators(config_file=write_catalog(tmp_path / "catalog.json", models))


def plant_pyc(source: Path, code: str) -> Path:
    """Write the bytecode of ``code`` where Python looks for ``source``'s cache, with a header that
    matches ``source``'s mtime and size, so Python's own import would run it instead of the source."""
    st = source.stat()
    header = importlib.util.MAGIC_NUMBER + (0).to_bytes(4, "little") + \
        (int(st.st_mtime) & 0xFFFFFFFF).to_bytes(4, "little") + (st.st_size & 0xFFFFFFFF).to_bytes(4, "little")
    target = Path(importlib.util.cache_from_source(str(source)))
    target.parent.mkdir(exist_ok=True)
    target.write_bytes(header + marshal.dumps(compile(code, str(source), "exec")))
    return target


def cli(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


# ------------------------------------------------------------------ 1, 2: what is imported is the verified tree
def test_1_code_appended_to_a_cached_package_is_refused(server, tmp_path, _isolated_home):
    server.files["/p.zip"] = package_zip()
    models = {"00001_P": remote_entry(server.url("/p.zip"), server.files["/p.zip"])}
    folder = Path(catalog(tmp_path, models).prefetch([1], progress=False)["00001_P"])
    with open(folder / "__init__.py", "a") as fh:
        fh.write("\nVALUE = 99\n")
    with pytest.raises(IntegrityError, match=r"__init__.py changed since it was verified"):
        catalog(tmp_path, models).generate(1, num_samples=1, save_images=False)


def test_1_same_size_edit_with_restored_mtime_is_refused(server, tmp_path, _isolated_home):
    server.files["/p.zip"] = package_zip()
    models = {"00001_P": remote_entry(server.url("/p.zip"), server.files["/p.zip"])}
    folder = Path(catalog(tmp_path, models).prefetch([1], progress=False)["00001_P"])
    init = folder / "__init__.py"
    st = init.stat()
    init.write_text(init.read_text().replace("VALUE = 7", "VALUE = 9"))
    os.utime(init, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert init.stat().st_size == st.st_size
    with pytest.raises(IntegrityError, match="changed since it was verified"):
        catalog(tmp_path, models).generate(1, num_samples=1, save_images=False)


def test_1_file_added_to_a_cached_package_is_refused(server, tmp_path, _isolated_home):
    server.files["/p.zip"] = package_zip()
    models = {"00001_P": remote_entry(server.url("/p.zip"), server.files["/p.zip"])}
    folder = Path(catalog(tmp_path, models).prefetch([1], progress=False)["00001_P"])
    (folder / "helper.py").write_text("VALUE = 99\n")
    with pytest.raises(IntegrityError, match="helper.py was added"):
        catalog(tmp_path, models).generate(1, num_samples=1, save_images=False)


def test_2_planted_pyc_in_a_pinned_local_package_never_runs(tmp_path):
    from medhub.execution.resolve import tree_digest

    folder = write_package(tmp_path, "pkg", PKG)
    digest, size = tree_digest(folder)
    plant_pyc(folder / "__init__.py", PKG.replace("VALUE = 7", "VALUE = 99"))
    assert tree_digest(folder) == (digest, size)  # the digest does not see it...
    cat = write_catalog(tmp_path / "c.json", {"00001_PIN": entry("pkg", SPEC, sha256=digest, size=size)})
    out = Generators(config_file=cat).generate(1, num_samples=1, save_images=False)
    assert (out[0] == 7).all()  # ...and it never runs: the verified source does


def test_2_finders_python_cached_for_the_package_before_medhub_imported_it_are_dropped(tmp_path, monkeypatch):
    # An earlier plain import leaves Python's own finders (which read .pyc files) for the package's
    # folders, and for links to them; medhub drops them, so every later import goes through its
    # verified loader. Finders of other folders stay.
    from importlib.machinery import FileFinder

    from medhub.execution.loader import import_package

    folder = write_package(tmp_path, "pkg", PKG)
    (folder / "sub").mkdir()
    with zipfile.ZipFile(folder / "lib.zip", "w") as zf:
        zf.writestr("extra.py", "VALUE = 1\n")
    (tmp_path / "link").symlink_to(folder)
    (tmp_path / "zip-link.zip").symlink_to(folder / "lib.zip")
    (tmp_path / "other").mkdir()
    inside = [folder, folder / "sub", tmp_path / "link", tmp_path / "link" / "sub", folder / "lib.zip",
              tmp_path / "zip-link.zip"]
    cache = dict(sys.path_importer_cache)
    monkeypatch.setattr(sys, "path_importer_cache", cache)  # the test's own copy, restored afterwards
    for path in [*inside, tmp_path / "other", tmp_path]:
        cache[str(path)] = FileFinder(str(path))
    import_package(folder, "00001_FINDERS")
    assert [str(p) for p in inside if str(p) in cache] == []
    assert str(tmp_path / "other") in cache and str(tmp_path) in cache


def test_2_planted_pyc_of_a_submodule_in_the_cache_never_runs(server, tmp_path, _isolated_home):
    source = PKG.replace("VALUE = 7", "from .net import VALUE")
    server.files["/p.zip"] = make_zip({"__init__.py": source.encode(), "net.py": b"VALUE = 7\n"})
    models = {"00001_P": remote_entry(server.url("/p.zip"), server.files["/p.zip"])}
    folder = Path(catalog(tmp_path, models).prefetch([1], progress=False)["00001_P"])
    plant_pyc(folder / "net.py", "VALUE = 99\n")
    assert (catalog(tmp_path, models).generate(1, num_samples=1, save_images=False)[0] == 7).all()
    assert PackageCache().verify() == []


def test_2_loader_checks_each_source_against_the_verified_files(tmp_path):
    from medhub.execution.loader import import_resolved
    from medhub.execution.resolve import PackageResolver

    folder = write_package(tmp_path, "pkg", PKG.replace("VALUE = 7", "from .net import VALUE"),
                           {"net.py": b"VALUE = 7\n"})
    from medhub.execution.resolve import tree_digest

    execution = {"package_link": str(folder), "sha256": tree_digest(folder)[0]}
    package = PackageResolver(tmp_path).resolve("00001_X", execution)
    (folder / "net.py").write_text("VALUE = 99\n")  # changed after verification, before import
    with pytest.raises(IntegrityError, match="net.py changed after the package was verified"):
        import_resolved(package, "00001_X")


# ------------------------------------------------------------------ 3: offline means no connection
def test_3_offline_commands_make_no_connection(server, tmp_path, toy_catalog, capsys, monkeypatch):
    server.files["/p.zip"] = package_zip()
    models = {"00001_P": remote_entry(server.url("/p.zip"), server.files["/p.zip"])}
    cat = write_catalog(tmp_path / "remote.json", models)
    monkeypatch.setenv("MEDHUB_OFFLINE", "1")
    for name, value in {"PIP_CONFIG_FILE": os.devnull, "PIP_INDEX_URL": server.url("/simple/"), "PIP_FIND_LINKS": "",
                        "PIP_RETRIES": "0", "PIP_TIMEOUT": "2", "PIP_DISABLE_PIP_VERSION_CHECK": "1"}.items():
        monkeypatch.setenv(name, value)  # were pip run, it would ask this server
    code, _, err = cli(capsys, "--config", str(toy_catalog), "generate", "905", "-n", "1", "-o",
                       str(tmp_path / "o"), "--install-dependencies", "--no-progress")
    assert server.connections == 0
    assert code == EXIT_ERROR and "MEDHUB_OFFLINE" in err and err.count("\n") == 1
    assert cli(capsys, "--config", str(cat), "prefetch", "1", "--no-progress")[0] == EXIT_ERROR
    assert cli(capsys, "--config", str(cat), "generate", "1", "-n", "1", "-o", str(tmp_path / "p"))[0] == EXIT_ERROR
    assert cli(capsys, "--config", str(cat), "refresh", "--url", server.url("/catalog.json"))[0] == EXIT_OK
    assert cli(capsys, "--config", str(cat), "cache", "prune")[0] == EXIT_OK
    assert server.connections == 0


# ------------------------------------------------------------------ 6: resumed downloads and trust on first use
def _killed_first_download(server: Server, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, etag: bool) -> dict:
    old = package_zip(5, padding=2 << 20)
    server.files["/u.zip"] = old
    if etag:
        server.etags["/u.zip"] = '"v1"'
    server.modes["/u.zip"].append("cut:1048576")
    models = {"00001_U": entry(server.url("/u.zip"), SPEC)}
    monkeypatch.setenv("MEDHUB_DOWNLOAD_RETRIES", "0")
    with pytest.raises(DownloadError):
        catalog(tmp_path, models).prefetch([1], trust_remote_code=True, progress=False)
    monkeypatch.setenv("MEDHUB_DOWNLOAD_RETRIES", "1")
    new = package_zip(6, padding=2 << 20)
    assert len(new) == len(old)
    server.files["/u.zip"] = new  # the file changes on the server, same size
    if etag:
        server.etags["/u.zip"] = '"v2"'
    return models


def test_6_resume_sends_if_range_and_a_changed_file_starts_again(server, tmp_path, _isolated_home, monkeypatch):
    models = _killed_first_download(server, tmp_path, monkeypatch, etag=True)
    out = catalog(tmp_path, models).generate(1, num_samples=1, save_images=False, trust_remote_code=True)
    assert (out[0] == 6).all()
    resumed = server.requests[-1][1]
    assert resumed.get("Range", "").startswith("bytes=1") and resumed.get("If-Range") == '"v1"'
    record = json.loads((_isolated_home / "trust.json").read_text())["00001_U"]
    assert record["sha256"] == hashlib.sha256(server.files["/u.zip"]).hexdigest()


def test_6_unpinned_partial_without_validators_is_not_resumed(server, tmp_path, _isolated_home, monkeypatch):
    models = _killed_first_download(server, tmp_path, monkeypatch, etag=False)
    out = catalog(tmp_path, models).generate(1, num_samples=1, save_images=False, trust_remote_code=True)
    assert (out[0] == 6).all() and "Range" not in server.requests[-1][1]


def test_6_pinned_resume_of_a_changed_file_starts_again_instead_of_failing(server, tmp_path, monkeypatch):
    old, new = package_zip(5, padding=2 << 20), package_zip(6, padding=2 << 20)
    server.files["/p.zip"] = old  # no ETag, no Last-Modified: only the pin can check a resumed file
    server.modes["/p.zip"].append("cut:1048576")
    models = {"00001_P": remote_entry(server.url("/p.zip"), new)}
    monkeypatch.setenv("MEDHUB_DOWNLOAD_RETRIES", "0")
    with pytest.raises(DownloadError):
        catalog(tmp_path, models).prefetch([1], progress=False)
    server.files["/p.zip"] = new
    assert (catalog(tmp_path, models).generate(1, num_samples=1, save_images=False)[0] == 6).all()
    assert server.requests[-2][1].get("Range") == "bytes=1048576-" and "Range" not in server.requests[-1][1]


def test_6_trust_is_recorded_only_for_an_extractable_archive(server, tmp_path, _isolated_home):
    server.files["/u.zip"] = b"this is not an archive" * 100
    models = {"00001_U": entry(server.url("/u.zip"), SPEC)}
    with pytest.raises(UnsafeArchiveError, match="neither a zip nor a tar"):
        catalog(tmp_path, models).prefetch([1], trust_remote_code=True, progress=False)
    assert "00001_U" not in PackageCache().trusted()
    assert not list(_isolated_home.glob("archives/*")) and not list(_isolated_home.glob("downloads/*"))
    server.files["/u.zip"] = package_zip(4)  # the fixed file is accepted: nothing wrong was trusted
    assert (catalog(tmp_path, models).generate(1, num_samples=1, save_images=False, trust_remote_code=True)[0]
            == 4).all()


def test_6_cache_rm_removes_partial_downloads(server, tmp_path, _isolated_home, monkeypatch, capsys):
    models = _killed_first_download(server, tmp_path, monkeypatch, etag=True)
    assert list((_isolated_home / "downloads").glob("*.part"))
    cat = write_catalog(tmp_path / "catalog.json", models)
    assert cli(capsys, "--config", str(cat), "cache", "rm", "1")[0] == EXIT_OK
    assert not list((_isolated_home / "downloads").glob("*"))


# ------------------------------------------------------------------ 7: bounded downloads
_PREFETCH = ("import sys; from medhub import Generators\n"
             "try:\n"
             "    Generators(config_file=sys.argv[1]).prefetch([1], trust_remote_code=True, progress=False)\n"
             "except Exception as exc:\n"
             "    print(type(exc).__name__, exc)\n")


def test_7_a_trickling_server_cannot_outlast_the_deadline(server, tmp_path, _isolated_home):
    server.files["/slow.zip"] = package_zip(padding=1 << 20)
    server.modes["/slow.zip"].extend(["trickle"] * 3)
    cat = write_catalog(tmp_path / "c.json", {"00001_S": entry(server.url("/slow.zip"), SPEC)})
    env = dict(os.environ, MEDHUB_HOME=str(_isolated_home), MEDHUB_DOWNLOAD_TIMEOUT="2",
               MEDHUB_DOWNLOAD_DEADLINE="2", MEDHUB_DOWNLOAD_RETRIES="2")
    started = time.monotonic()
    try:
        done = subprocess.run([sys.executable, "-c", _PREFETCH, str(cat)], env=env, capture_output=True, text=True,
                              timeout=30)
    except subprocess.TimeoutExpired:
        pytest.fail("the download was still running after 30 s with a 2 s deadline")
    assert "DownloadError" in done.stdout and "MEDHUB_DOWNLOAD_DEADLINE" in done.stdout, done.stdout + done.stderr
    assert time.monotonic() - started < 15


def test_7_an_oversized_unpinned_download_is_cut_and_not_trusted(server, tmp_path, _isolated_home, monkeypatch):
    server.files["/big.zip"] = package_zip(padding=3 << 20)
    server.modes["/big.zip"].extend(["close-delimited"] * 3)  # no Content-Length to refuse up front
    monkeypatch.setenv("MEDHUB_MAX_DOWNLOAD_BYTES", str(1 << 20))
    models = {"00001_B": entry(server.url("/big.zip"), SPEC)}
    with pytest.raises(DownloadError, match="larger than 1048576 bytes.*MEDHUB_MAX_DOWNLOAD_BYTES"):
        catalog(tmp_path, models).prefetch([1], trust_remote_code=True, progress=False)
    assert "00001_B" not in PackageCache().trusted() and not list(_isolated_home.glob("downloads/*.part"))


def test_7_an_all_zero_body_is_not_an_empty_package(server, tmp_path, _isolated_home):
    server.files["/z.tar"] = bytes(10240)
    models = {"00001_Z": entry(server.url("/z.tar"), SPEC)}
    with pytest.raises(UnsafeArchiveError, match="holds no files"):
        catalog(tmp_path, models).prefetch([1], trust_remote_code=True, progress=False)
    assert "00001_Z" not in PackageCache().trusted()


# ------------------------------------------------------------------ 8: package_name must stay inside the archive
def test_8_package_name_cannot_point_outside_the_archive(server, tmp_path, _isolated_home):
    evil = write_package(tmp_path / "elsewhere", "evil", PKG.replace("VALUE = 7", "VALUE = 99"))
    server.files["/p.zip"] = make_zip({"data/readme.txt": b"no package here"})
    for name in (str(evil), "../../../elsewhere/evil"):
        execution = remote_entry(server.url("/p.zip"), server.files["/p.zip"], package_name=name)["execution"]
        with pytest.raises(CatalogError, match="package_name"):
            catalog(tmp_path, {"00001_N": {"execution": execution, "selection": {}, "description": {"title": "n"}}})
        from medhub.execution.resolve import PackageResolver

        with pytest.raises(PackageError, match="package_name"):
            PackageResolver(tmp_path, _isolated_home).resolve("00001_N", execution)
    assert not [m for m in sys.modules if m.startswith("medhub_pkg_00001_N_")]


def test_8_weights_cannot_point_outside_the_package(tmp_path):
    from medhub.execution.resolve import weights_path

    with pytest.raises(PackageError, match="execution.weights"):
        weights_path(tmp_path, {"weights": "../../etc/passwd"})
    with pytest.raises(PackageError, match="execution.model_name"):
        weights_path(tmp_path, {"model_name": "/etc/passwd"})


# ------------------------------------------------------------------ 9: bad input gives one line naming what to fix
@pytest.mark.parametrize("execution, where", [
    ({"package_name": "x", "dependencies": []}, r"\$\.00001_M\.execution\.package_link is missing"),
    ({"package_link": "https://x/p.zip", "image_size": ["big"]}, r"\$\.00001_M\.execution\.image_size\[0\]"),
    ("a string", r"\$\.00001_M\.execution must be an object"),
    ({"package_link": "https://x/p.zip", "dependencies": "numpy"}, r"\$\.00001_M\.execution\.dependencies must be a list"),
])
def test_9_10_malformed_medigan_catalogs_name_the_json_path(tmp_path, execution, where):
    path = tmp_path / "medigan.json"
    path.write_text(json.dumps({"00001_M": {"execution": execution, "selection": {}, "description": {"title": "m"}}}))
    with pytest.raises(CatalogError, match=where):
        Generators(config_file=path)


def test_9_deeply_nested_catalog_and_a_folder_as_catalog(tmp_path, monkeypatch, capsys):
    deep = tmp_path / "deep.json"
    deep.write_text('{"schema_version": 1, "catalog_version": "1", "models": ' + "[" * 100_000 + "]" * 100_000 + "}")
    with pytest.raises(CatalogError, match="nested deeper|nests deeper"):
        Generators(config_file=deep)
    monkeypatch.setenv("MEDHUB_CONFIG", str(tmp_path))
    code, _, err = cli(capsys, "list")
    assert code == EXIT_ERROR and err.startswith("medhub: error:") and "is a folder" in err and err.count("\n") == 1


def _stored_zip_with_bad_crc() -> bytes:
    data = bytearray(make_zip({"__init__.py": b"VALUE = 7\n" * 20}, compress=False))
    data[data.index(b"VALUE = 7") + 3] ^= 0xFF
    return bytes(data)


@pytest.mark.parametrize("archive, match", [
    (make_zip({"__init__.py": b"x = 1\n", ".": b"dot"}), "named '.'"),
    (make_zip({"__init__.py": b"x = 1\n", "a": b"file", "a/b.py": b"x"}), "inside 'a', which is a file"),
    (make_zip({"__init__.py": b"x = 1\n", "n" * 300 + ".py": b"x"}), "longer than 255 bytes"),
    (_stored_zip_with_bad_crc(), "damaged"),
])
def test_9_archive_members_that_cannot_be_written_are_refused_in_one_line(tmp_path, archive, match):
    path = tmp_path / "a.zip"
    path.write_bytes(archive)
    with pytest.raises(UnsafeArchiveError, match=match) as err:
        safe_extract(path, tmp_path / "out")
    assert "\n" not in str(err.value) and not (tmp_path / "out").exists()


@pytest.mark.parametrize("variable, value", [("MEDHUB_DOWNLOAD_TIMEOUT", "abc"), ("MEDHUB_DOWNLOAD_RETRIES", "-1"),
                                             ("MEDHUB_MAX_EXTRACT_BYTES", "abc")])
def test_9_bad_settings_fail_before_any_request(server, tmp_path, capsys, monkeypatch, variable, value):
    server.files["/p.zip"] = package_zip()
    cat = write_catalog(tmp_path / "c.json", {"00001_P": remote_entry(server.url("/p.zip"), server.files["/p.zip"])})
    monkeypatch.setenv(variable, value)
    code, _, err = cli(capsys, "--config", str(cat), "prefetch", "1", "--no-progress")
    assert code == EXIT_USAGE and err.startswith(f"medhub: error: {variable}={value!r} is not valid")
    assert err.count("\n") == 1
    with pytest.raises(SettingError, match=variable):
        Generators(config_file=cat).prefetch([1], progress=False)
    assert server.connections == 0


# ------------------------------------------------------------------ 10: nothing wrong is accepted silently
LATENT_PKG = """
import numpy as np

def load(weights_path, device):
    return None

def sample(model, seeds, latent=None, **_):
    return {"image": np.zeros((len(seeds), 8, 8), np.uint8), "label": np.zeros(len(seeds), np.int64)}
"""


def test_10_a_mistyped_model_argument_is_refused(tmp_path, capsys):
    write_package(tmp_path, "lat", LATENT_PKG)
    toy = entry("lat", [IMG8, LABEL])
    toy["execution"]["generate_method"].update({"input_latent_vector_size": 4, "per_sample_inputs": ["latent"]})
    cat = write_catalog(tmp_path / "c.json", {"00001_L": toy})
    code, _, err = cli(capsys, "--config", str(cat), "generate", "1", "-n", "1", "-o", str(tmp_path / "o"),
                       "--arg", "laten=[1,2,3,4]")
    assert code == EXIT_USAGE and "did you mean 'latent'" in err and err.count("\n") == 1
    assert not (tmp_path / "o").exists()


def test_10_one_exit_code_for_every_argument_mistake(toy_catalog, tmp_path, capsys):
    base = ("--config", str(toy_catalog), "generate", "900", "-o", str(tmp_path / "o"))
    for extra in (["--device", "foo"], ["-n", "0"], ["--seed", "x"], ["--seed", "-1"], ["--arg", "nope"],
                  ["--batch-size", "0"]):
        code, _, err = cli(capsys, *base, *extra)
        assert code == EXIT_USAGE and err.startswith("medhub: error:") and err.count("\n") == 1, (extra, err)
    assert not (tmp_path / "o").exists()


# ------------------------------------------------------------------ 11: archives
def test_11_a_high_ratio_zip_bomb_is_refused_below_the_size_limit(tmp_path):
    path = tmp_path / "bomb.zip"
    path.write_bytes(make_zip({"__init__.py": b"x = 1\n", "zeros.bin": bytes(64 << 20)}))
    assert path.stat().st_size < (64 << 20) // 500
    with pytest.raises(UnsafeArchiveError, match="MEDHUB_MAX_EXTRACT_RATIO"):
        safe_extract(path, tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_11_duplicate_member_names_are_refused(tmp_path):
    path = tmp_path / "dup.zip"
    with zipfile.ZipFile(path, "w") as zf, pytest.warns(UserWarning, match="Duplicate name"):
        zf.writestr("__init__.py", b"VALUE = 7\n")
        zf.writestr("__init__.py", b"VALUE = 99\n")
    with pytest.raises(UnsafeArchiveError, match="twice"):
        safe_extract(path, tmp_path / "out")
    case = tmp_path / "case.zip"
    case.write_bytes(make_zip({"__init__.py": b"x = 1\n", "Net.py": b"a", "net.py": b"b"}))
    with pytest.raises(UnsafeArchiveError, match="differ only in case"):
        safe_extract(case, tmp_path / "out")


def test_11_a_refused_archive_leaves_no_folder_behind(server, tmp_path, _isolated_home):
    server.files["/bad.zip"] = make_zip({"__init__.py": b"x = 1\n", "../evil.py": b"x"})
    models = {"00001_BAD": remote_entry(server.url("/bad.zip"), server.files["/bad.zip"])}
    with pytest.raises(UnsafeArchiveError):
        catalog(tmp_path, models).prefetch([1], progress=False)
    assert not (_isolated_home / "packages" / "00001_BAD").exists()
    assert not list(_isolated_home.glob("archives/*")) and not list(_isolated_home.glob("downloads/*"))


# ------------------------------------------------------------------ 4, 5: leftovers of killed runs
def test_5_cache_prune_removes_leftovers_of_killed_processes(tmp_path, _isolated_home, capsys):
    from filelock import FileLock

    downloads = _isolated_home / "downloads"
    downloads.mkdir(parents=True)
    dead = downloads / "abc123.999-deadbeef.part"  # a download whose process was killed: no lock held
    dead.write_bytes(b"partial")
    (downloads / "abc123.999-deadbeef.part.json").write_text("{}")
    live = downloads / "fff000.1-cafecafe.part"  # a download in progress: its lock is held
    live.write_bytes(b"partial")
    (_isolated_home / "locks").mkdir()
    tmp_extract = _isolated_home / "packages" / "00001_X" / ".tmp-abc123-0badf00d"
    tmp_extract.mkdir(parents=True)
    (tmp_extract / "__init__.py").write_text("")
    outputs = tmp_path / "runs"
    staging = outputs / ".r1.partial-x1y2"
    staging.mkdir(parents=True)
    (staging / ".medhub-run.json").write_text(json.dumps({"host": socket.gethostname(), "pid": 2**22 + 12345}))
    with FileLock(str(_isolated_home / "locks" / "fff000.lock")):
        code, out, _ = cli(capsys, "cache", "prune", "--outputs", str(outputs), "--json")
    removed = json.loads(out)
    assert code == EXIT_OK and str(dead) in removed and str(tmp_extract) in removed and str(staging) in removed
    assert live.exists() and not dead.exists() and not tmp_extract.exists() and not staging.exists()
    assert not (_isolated_home / "packages" / "00001_X").exists() and not list(downloads.glob("*.json"))


def test_2_package_code_never_writes_bytecode(tmp_path, monkeypatch):
    from medhub.execution.resolve import tree_digest

    monkeypatch.setattr(sys, "dont_write_bytecode", False)  # as in a plain Python session

    folder = write_package(tmp_path, "pkg", NUMPY_TOY)
    digest, size = tree_digest(folder)
    cat = write_catalog(tmp_path / "c.json", {"00001_T": entry("pkg", [IMG8, LABEL], sha256=digest, size=size)})
    out = Generators(config_file=cat).generate(1, num_samples=2, save_images=False, seed=0)
    assert len(out) == 2 and isinstance(out[0][0], np.ndarray)
    assert not (folder / "__pycache__").exists()  # nothing written next to the package either
