"""Golden samples pin what each model draws (issue 33, point 6): ``execution.golden`` in the catalog,
recomputed here for every shipped model, by ``medhub verify --model ID`` and by the contribution flow."""

from __future__ import annotations

import hashlib
import json
from functools import partial

import numpy as np
import pytest
from conftest import IMG8, LABEL, NUMPY_TOY, entry, write_catalog, write_package

from medhub import Generators
from medhub.cli import main as cli_main
from medhub.config import ConfigManager
from medhub.errors import InvalidArgumentError
from medhub.golden import check_golden, golden_entry, samples_digest

CM = ConfigManager()
SHIPPED = [m for m in CM.model_ids if CM.get_config_by_id(m)["execution"].get("golden")]


def test_samples_digest_hashes_raw_bytes_in_order():
    a, b = np.arange(6, dtype=np.uint8).reshape(2, 3), np.ones((2, 2), np.float32)
    expected = hashlib.sha256(a.tobytes() + b.tobytes() + np.asarray("T1").tobytes()).hexdigest()
    assert samples_digest([(a, b, "T1")]) == expected
    assert samples_digest([a, b, "T1"]) == expected  # parts of tuples and whole samples alike
    assert samples_digest([a.T]) == hashlib.sha256(np.ascontiguousarray(a.T).tobytes()).hexdigest()  # C order
    assert samples_digest([(b, a, "T1")]) != expected


def test_every_shipped_model_has_a_golden_entry():
    shipped = [m for m in CM.model_ids if not CM.get_config_by_id(m, "execution.package_link").startswith(
        ("http", "hf://"))]
    assert SHIPPED == shipped and len(SHIPPED) >= 7
    for model_id in SHIPPED:
        golden = CM.get_config_by_id(model_id, "execution.golden")
        assert (golden["seed"], golden["num_samples"]) == (0, 8), model_id


SLOW = {"00106_DDPM_FUNDUS_RGB"}  # 5 DDIM steps of a UNet on a padded block of 32: several seconds on 2 cores


@pytest.mark.parametrize("model_id", [pytest.param(m, marks=pytest.mark.slow) if m in SLOW else m for m in SHIPPED])
def test_shipped_golden_digests_recomputed(model_id):
    """The samples each shipped model draws now are bit-identical to those pinned in the catalog (the
    default run checks all but the DDPM, the slow run that one too)."""
    check = Generators().verify_model(model_id)
    assert check.equal, str(check)


@pytest.fixture
def golden_catalog(tmp_path):
    """A one-model catalog whose golden digest is computed here; ``tamper`` writes a wrong one."""
    write_package(tmp_path / "packages", "numpy_toy", NUMPY_TOY)
    models = {"00900_NUMPY_TOY": entry("packages/numpy_toy", [IMG8, LABEL])}
    path = write_catalog(tmp_path / "catalog.json", models)
    models["00900_NUMPY_TOY"]["execution"]["golden"] = golden_entry(partial(Generators(config_file=path).generate, 900))
    return write_catalog(path, models), models


def test_verify_cli_reports_equal_and_differs(golden_catalog, capsys):
    path, models = golden_catalog
    assert cli_main(["--config", str(path), "verify", "--model", "900"]) == 0
    assert "golden samples equal" in capsys.readouterr().out
    models["00900_NUMPY_TOY"]["execution"]["golden"]["sha256"] = "0" * 64
    write_catalog(path, models)
    assert cli_main(["--config", str(path), "--json", "verify", "--model", "900"]) == 1
    report = json.loads(capsys.readouterr().out)
    assert report["equal"] is False and report["expected"] == "0" * 64 and len(report["actual"]) == 64


def test_verify_without_golden_is_bad_input(capsys):
    with pytest.raises(InvalidArgumentError, match="no execution.golden"):
        check_golden(Generators(), "00001")
    assert cli_main(["verify", "--model", "00001"]) == 2
    assert "no execution.golden" in capsys.readouterr().err


def test_golden_schema_rejects_a_malformed_entry(golden_catalog):
    from medhub.config import validate_catalog
    from medhub.errors import CatalogError

    path, models = golden_catalog
    models["00900_NUMPY_TOY"]["execution"]["golden"]["sha256"] = "not a digest"
    with pytest.raises(CatalogError, match="golden"):
        validate_catalog({"schema_version": 1, "catalog_version": "1.0.0", "models": models})


def test_catalog_tool_writes_golden_entries_and_pins_again(tmp_path, monkeypatch):
    """``tools/catalog.py golden`` pins, generates, writes execution.golden, and pins again (metadata.json
    holds the golden entry, so the package digest changes with it)."""
    from conftest import REPO, import_file

    tool = import_file(REPO / "tools" / "catalog.py", "catalog_tool")
    write_package(tmp_path, "numpy_toy", NUMPY_TOY)
    path = write_catalog(tmp_path / "global.json", {"00900_NUMPY_TOY": entry("numpy_toy", [IMG8, LABEL])})
    monkeypatch.setattr(tool, "CATALOG", path)
    monkeypatch.setattr(tool, "MODELS", tmp_path)
    doc = tool.load()
    tool.golden(doc, ["900"], {})
    tool.save(doc)
    assert tool.check(tool.load()) == 0
    inner = json.loads((tmp_path / "numpy_toy" / "metadata.json").read_text())["00900_NUMPY_TOY"]
    assert inner["execution"]["golden"] == doc["models"]["00900_NUMPY_TOY"]["execution"]["golden"]
    assert Generators(config_file=path).verify_model(900).equal
