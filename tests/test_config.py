"""ConfigManager: loading, validation, id resolution, dotted keys, refresh against a loopback server."""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from conftest import IMG8, entry, write_catalog

from medhub.config import ConfigManager, validate_catalog
from medhub.errors import CatalogError, ConfigKeyError, ModelNotFoundError


def test_bundled_catalog_has_versions_and_medigan_models():
    cm = ConfigManager()
    assert cm.schema_version == 1
    assert cm.catalog_version
    medigan = [m for m in cm.model_ids if int(m[:5]) <= 23]
    assert len(medigan) == 23
    for model_id in medigan:
        ex = cm.get_config_by_id(model_id, "execution")
        assert ex["interface"] == "medigan"
        assert ex["sha256"] is None
        assert ex["package_link"].startswith("https://zenodo.org/")
        assert "path" not in [d.lower() for d in ex["dependencies"]]
    assert cm.get_config_by_id(1, "selection.performance.FID") == 67.6


@pytest.mark.parametrize("given", [5, "5", "00005", "00005_DCGAN_MMG_MASS_ROI", "00005_dcgan_mmg_mass_roi"])
def test_short_ids_resolve_like_medigan(given):
    assert ConfigManager().resolve_model_id(given) == "00005_DCGAN_MMG_MASS_ROI"


@pytest.mark.parametrize("given", ["00005_DCGAN", "DCGAN_MMG_MASS", 99999, "abc"])
def test_unknown_id_names_closest_ids(given):
    with pytest.raises(ModelNotFoundError) as err:
        ConfigManager().resolve_model_id(given)
    assert "Closest ids" in str(err.value)
    assert err.value.candidates
    assert all(c in ConfigManager().model_ids for c in err.value.candidates)


def test_close_match_is_the_obvious_one():
    with pytest.raises(ModelNotFoundError) as err:
        ConfigManager().resolve_model_id("00005_DCGAN_MMG_MASS")
    assert err.value.candidates[0] == "00005_DCGAN_MMG_MASS_ROI"


@pytest.mark.parametrize("bad", [None, 1.5, True, ["5"]])
def test_id_of_wrong_type(bad):
    with pytest.raises(ModelNotFoundError, match="string or an integer"):
        ConfigManager().resolve_model_id(bad)


def test_dotted_config_keys():
    cm = ConfigManager()
    assert cm.get_config_by_id("00101", "execution.generate_method.name") == "generate"
    assert cm.get_config_by_id(101, "execution.outputs.0.name") == "image"
    assert cm.get_config_by_id(101)["description"]["title"]
    with pytest.raises(ConfigKeyError, match="execution.nope") as err:
        cm.get_config_by_id(101, "execution.nope")
    assert "generate_method" in str(err.value)


def test_invalid_json_is_reported_with_position(tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text('{"schema_version": 1,')
    with pytest.raises(CatalogError, match="not valid JSON"):
        ConfigManager(bad)


def test_bad_entry_reported_with_json_path_and_rule(tmp_path):
    models = {"00900_X": entry("pkg", [IMG8], sha256="not-a-digest")}
    with pytest.raises(CatalogError) as err:
        ConfigManager(write_catalog(tmp_path / "c.json", models))
    msg = str(err.value)
    assert "$.models.00900_X.execution.sha256" in msg
    assert "pattern" in msg
    assert "Traceback" not in msg


@pytest.mark.parametrize(
    "mutate, where",
    [
        (lambda m: m["00900_X"]["execution"].update(interface="tensorflow"), "execution.interface"),
        (lambda m: m["00900_X"]["execution"]["outputs"][0].update(kind="video"), "execution.outputs[0].kind"),
        (lambda m: m["00900_X"]["execution"].pop("package_link"), "execution"),
        (lambda m: m.update({"bad id": m.pop("00900_X")}), "models"),
    ],
)
def test_schema_rules(tmp_path, mutate, where):
    models = {"00900_X": entry("pkg", [dict(IMG8)])}
    mutate(models)
    with pytest.raises(CatalogError) as err:
        ConfigManager(write_catalog(tmp_path / "c.json", models))
    assert where.split("[")[0] in str(err.value)


def test_a_bad_model_id_names_the_key_and_what_an_id_looks_like(tmp_path, capsys):
    """Issue 31, point 12: not fastjsonschema's "must be named by propertyName definition"."""
    from medhub.cli import main

    models = {"00900_X": entry("pkg", [dict(IMG8)]), "900_MY GAN": entry("pkg", [dict(IMG8)])}
    path = write_catalog(tmp_path / "c.json", models)
    with pytest.raises(CatalogError, match=r"the key '900_MY GAN' of \$\.models is not a model id; .*five digits.*"
                                           r"e\.g\. 00150_MY_GAN"):
        ConfigManager(path)
    assert main(["--config", str(path), "list"]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "'900_MY GAN'" in err and "propertyName" not in err


def test_unsupported_schema_version(tmp_path):
    path = tmp_path / "c.json"
    path.write_text(json.dumps({"schema_version": 2, "catalog_version": "1", "models": {}}))
    with pytest.raises(CatalogError, match="schema_version 2 is not supported"):
        ConfigManager(path)


def test_missing_file(tmp_path):
    with pytest.raises(CatalogError, match="does not exist"):
        ConfigManager(tmp_path / "nope.json")


def test_medhub_config_env(tmp_path, monkeypatch, toy_catalog):
    monkeypatch.setenv("MEDHUB_CONFIG", str(toy_catalog))
    cm = ConfigManager()
    assert "00900_NUMPY_TOY" in cm.model_ids
    assert cm.base_dir == toy_catalog.parent


def test_medigan_format_catalog_is_converted(tmp_path):
    medigan = {
        "00001_DCGAN_X": {
            "execution": {"package_name": "x", "package_link": "https://zenodo.org/record/1/files/x.zip?download=1",
                          "model_name": "DCGAN", "extension": ".pt", "image_size": ["128", "128"],
                          "dependencies": ["numpy", "Path", "torch"],
                          "generate_method": {"name": "generate", "args": {"base": [], "custom": {}}}},
            "selection": {"performance": {"FID": 10}, "license": None},
            "description": {"title": "x", "version": 1, "doi": "10.5281/zenodo.1"},
        }
    }
    path = tmp_path / "medigan.json"
    path.write_text(json.dumps(medigan))
    ConfigManager(path)
    cm = ConfigManager(path)  # converted again when its validation is remembered
    ex = cm.get_config_by_id(1, "execution")
    assert ex["interface"] == "medigan" and ex["sha256"] is None
    assert ex["dependencies"] == ["numpy", "torch"]
    assert ex["image_size"] == [128, 128]
    assert cm.get_config_by_id(1, "description.doi") == ["10.5281/zenodo.1"]


def test_validate_catalog_accepts_bundled():
    validate_catalog(json.loads(Path(ConfigManager().source).read_text()))


# ---------------------------------------------------------------------------- refresh
class CatalogServer:
    """A real HTTP server on 127.0.0.1 serving one catalog document with an ETag."""

    def __init__(self) -> None:
        self.body = b"{}"
        self.status = 200
        self.delay = 0.0
        self.requests: list[dict[str, str]] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802
                outer.requests.append(dict(self.headers))
                if outer.delay:
                    time.sleep(outer.delay)
                etag = f'"{hash(outer.body) & 0xFFFFFFFF:x}"'
                if outer.status == 200 and self.headers.get("If-None-Match") == etag:
                    self.send_response(304)
                    self.end_headers()
                    return
                self.send_response(outer.status)
                self.send_header("Content-Type", "application/json")
                self.send_header("ETag", etag)
                self.send_header("Content-Length", str(len(outer.body)))
                self.end_headers()
                try:
                    self.wfile.write(outer.body)
                except (BrokenPipeError, ConnectionResetError):
                    pass

            def log_message(self, *args: object) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/global.json"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def serve(self, doc: dict) -> None:
        self.body = json.dumps(doc).encode()


@pytest.fixture
def catalog_server():
    server = CatalogServer()
    server.thread.start()
    yield server
    server.httpd.shutdown()
    server.httpd.server_close()


def _newer_catalog(version: str = "999.0.0") -> dict:
    doc = json.loads(Path(ConfigManager().source).read_text())
    doc["catalog_version"] = version
    doc["models"]["00950_NEW_MODEL"] = entry("https://example.invalid/new.zip", [IMG8], interface="medigan")
    return doc


def test_refresh_accepts_newer_catalog_and_uses_etag(catalog_server, _isolated_home):
    catalog_server.serve(_newer_catalog())
    cm = ConfigManager(catalog_url=catalog_server.url)
    result = cm.refresh()
    assert result.status == "updated" and result.catalog_version == "999.0.0"
    assert "00950_NEW_MODEL" in cm.model_ids
    assert (_isolated_home / "catalog" / "global.json").exists()
    # a new ConfigManager picks the stored newer catalog up
    assert ConfigManager().catalog_version == "999.0.0"
    # the second refresh sends the ETag and gets 304
    again = ConfigManager(catalog_url=catalog_server.url).refresh()
    assert again.status == "not-modified"
    assert "If-None-Match" in catalog_server.requests[-1]


def test_refresh_rejects_same_or_older_version(catalog_server):
    cm = ConfigManager(catalog_url=catalog_server.url)
    catalog_server.serve(_newer_catalog(cm.catalog_version))
    assert cm.refresh().status == "not-newer"
    assert "00950_NEW_MODEL" not in cm.model_ids


def test_refresh_rejects_other_schema_version(catalog_server, _isolated_home):
    doc = _newer_catalog()
    doc["schema_version"] = 2
    catalog_server.serve(doc)
    cm = ConfigManager(catalog_url=catalog_server.url)
    before = cm.catalog_version
    result = cm.refresh()
    assert result.status == "failed" and "schema_version" in result.reason
    assert cm.catalog_version == before
    assert not (_isolated_home / "catalog" / "global.json").exists()


def test_refresh_rejects_invalid_catalog(catalog_server):
    doc = _newer_catalog()
    doc["models"]["00950_NEW_MODEL"]["execution"]["interface"] = "bogus"
    catalog_server.serve(doc)
    cm = ConfigManager(catalog_url=catalog_server.url)
    result = cm.refresh()
    assert result.status == "failed" and "00950_NEW_MODEL" in result.reason


def test_refresh_keeps_catalog_on_http_error_and_timeout(catalog_server):
    catalog_server.serve(_newer_catalog())
    catalog_server.status = 500
    cm = ConfigManager(catalog_url=catalog_server.url)
    before = cm.catalog_version
    assert cm.refresh().status == "failed"
    catalog_server.status = 200
    catalog_server.delay = 2.0
    started = time.monotonic()
    result = cm.refresh(timeout=0.3)
    assert result.status == "failed" and time.monotonic() - started < 1.9
    assert cm.catalog_version == before


def test_refresh_unreachable_server():
    cm = ConfigManager(catalog_url="http://127.0.0.1:9/global.json")
    assert cm.refresh(timeout=1).status == "failed"


def test_offline_makes_no_request(catalog_server, monkeypatch):
    catalog_server.serve(_newer_catalog())
    monkeypatch.setenv("MEDHUB_OFFLINE", "1")
    cm = ConfigManager(catalog_url=catalog_server.url)
    assert cm.refresh().status == "offline"
    assert catalog_server.requests == []


def test_corrupt_cached_catalog_falls_back_to_bundled(_isolated_home):
    cached = _isolated_home / "catalog" / "global.json"
    cached.parent.mkdir(parents=True)
    cached.write_text("{broken")
    cm = ConfigManager()
    assert cm.source != cached


def test_catalog_validation_is_remembered_until_the_file_changes(tmp_path, monkeypatch, _isolated_home):
    """Issue 33 point 8: an unchanged catalog is validated once, not by every process (compiling the
    schema was most of ``Generators()``); an edit is seen even with the size and mtime put back."""
    import os

    import medhub.config as config

    calls = []
    real = config.validate_catalog
    monkeypatch.setattr(config, "validate_catalog", lambda doc, source="": (calls.append(source), real(doc, source)))
    models = {f"0090{i}_X": entry("pkg", [IMG8]) for i in range(3)}
    path = write_catalog(tmp_path / "c.json", models)
    ConfigManager(path)
    ConfigManager(path)
    assert len(calls) == 1
    st = path.stat()
    path.write_text(path.read_text().replace('"medhub/1"', '"medhub/9"', 1))  # same size, mtime put back
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))
    with pytest.raises(CatalogError, match="interface"):
        ConfigManager(path)
    models["00901_X"]["execution"]["interface"] = "bogus"
    write_catalog(path, models)
    with pytest.raises(CatalogError, match="00901_X"):
        ConfigManager(path)
