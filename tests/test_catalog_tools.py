"""The generated catalog page docs/models.md matches config/global.json (it is never edited by hand)."""

from __future__ import annotations

import json

from conftest import REPO, import_file


def _models_page():
    return import_file(REPO / "tools" / "models_page.py", "models_page")


def test_models_page_is_up_to_date():
    assert _models_page().main(["--check"]) == 0, "run: python tools/models_page.py"


def test_models_page_lists_every_model_and_shows_measured_fid(tmp_path):
    page = _models_page()
    doc = json.loads((REPO / "config" / "global.json").read_text())
    text = page.render(doc)
    for model_id in doc["models"]:
        assert f"`{model_id}`" in text
    # a changed metric changes the page: the page follows the catalog
    shipped = next(m for m, e in doc["models"].items() if not e["execution"]["package_link"].startswith("http"))
    doc["models"][shipped]["selection"]["performance"]["FID"] = 12345.6
    assert "12345.6" in page.render(doc)
    out = tmp_path / "models.md"
    (tmp_path / "c.json").write_text(json.dumps(doc))
    assert page.main(["--catalog", str(tmp_path / "c.json"), "--output", str(out)]) == 0
    assert page.main(["--catalog", str(tmp_path / "c.json"), "--output", str(out), "--check"]) == 0
    out.write_text(out.read_text() + "hand edit\n")
    assert page.main(["--catalog", str(tmp_path / "c.json"), "--output", str(out), "--check"]) == 1
