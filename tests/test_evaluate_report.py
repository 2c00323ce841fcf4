"""The memorisation check and ``medhub report`` (HTML + JSON)."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest
from conftest import entry, write_catalog, write_package
from PIL import Image
from test_evaluate import _blobs, tiny_weights  # noqa: F401  (fixture)

from medhub import evaluate
from medhub.errors import InvalidArgumentError
from medhub.evaluate.memorization import memorization_from_arrays

# A model that memorised: each sample is one of its 12 "training" images (blobs, seed 1) plus faint noise.
COPYCAT = """
import numpy as np

def _blobs(n, seed):
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:32, :32]
    out = []
    for _ in range(n):
        cy, cx = rng.uniform(10, 22, 2)
        out.append((np.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / 32.0) * 255).astype(np.uint8))
    return np.stack(out)

def load(weights_path, device):
    return _blobs(12, 1)

def sample(model, seeds, **inputs):
    out = []
    for s in seeds:
        rng = np.random.default_rng(int(s))
        img = model[int(s) % len(model)].astype(np.int16) + rng.integers(-1, 2, (32, 32))
        out.append(np.clip(img, 0, 255).astype(np.uint8))
    return {"image": np.stack(out)}
"""
IMG32 = {"name": "image", "kind": "image", "shape": [32, 32], "dtype": "uint8", "range": [0, 255]}


def _folder(path, images):
    path.mkdir()
    for i, img in enumerate(images):
        Image.fromarray(img).save(path / f"{i:02d}.png")
    return path


def test_memorization_flags_copies_and_not_fresh_samples(tiny_weights):  # noqa: F811
    train, held = _blobs(12, 0.0, 1), _blobs(10, 0.0, 2)
    rng = np.random.default_rng(0)
    copies = np.clip(train[[3, 7, 3, 0, 11, 5]].astype(int) + rng.integers(-1, 2, (6, 32, 32)), 0, 255).astype(np.uint8)
    fresh = _blobs(6, 0.0, 3)
    opts = {"weights": tiny_weights, "progress": False}
    rep = evaluate.memorization_report(copies, train, held_out=held, **opts)
    assert [r["nearest_pixel"] for r in rep.samples] == [3, 7, 3, 0, 11, 5]
    assert [r["nearest_feature"] for r in rep.samples] == [3, 7, 3, 0, 11, 5]
    px = rep.summary["pixels"]
    assert px["near_copies"] == 1.0 and px["closer_than_held_out"] == 1.0
    assert px["closer_than_held_out"] > px["closer_than_held_out_baseline"] + 0.3
    assert rep.samples[0]["pixel_distance"] < 0.01 < px["median_distance_held_out"]
    ok = evaluate.memorization_report(fresh, train, held_out=held, **opts)
    assert ok.summary["pixels"]["near_copies"] < 0.5
    assert ok.summary["pixels"]["closer_than_held_out"] < px["closer_than_held_out"]
    assert "closer than held-out" in rep.summary_text()
    json.loads(rep.to_json())
    # pixels only, no held-out set: distances without a yardstick
    bare = evaluate.memorization_report(copies, train, extractor=None)
    assert set(bare.summary) == {"pixels"} and "closer_than_held_out" not in bare.summary["pixels"]


def test_memorization_compares_images_of_other_sizes_and_channels():
    train = [np.zeros((16, 16), np.uint8), np.full((16, 16), 255, np.uint8)]
    syn = [np.full((8, 8, 3), 250, np.uint8), np.zeros((8, 8, 3), np.uint8)]  # RGB, half size
    rep = memorization_from_arrays(syn, train)
    assert [r["nearest_pixel"] for r in rep.samples] == [1, 0] and rep.pixel_size == [8, 8, 3]
    assert rep.samples[1]["pixel_distance"] == pytest.approx(0.0)
    with pytest.raises(InvalidArgumentError, match="at least one"):
        memorization_from_arrays([], train)


@pytest.fixture
def copycat(tmp_path, monkeypatch):
    write_package(tmp_path, "copycat", COPYCAT)
    cat = write_catalog(tmp_path / "c.json", {"00950_COPYCAT": entry(
        "copycat", [IMG32], selection={"modality": ["toy MRI"], "organ": ["blob"], "license": "MIT",
                                       "performance": {"FID": 12.5}})})
    monkeypatch.setenv("MEDHUB_CONFIG", str(cat))
    real = _folder(tmp_path / "held_out", _blobs(10, 0.0, 2))
    train = _folder(tmp_path / "train", _blobs(12, 0.0, 1))
    return real, train


def test_model_report_writes_one_self_contained_page_and_json(tmp_path, copycat, tiny_weights):  # noqa: F811
    real, train = copycat
    out = tmp_path / "out" / "report.html"
    out.parent.mkdir()  # a missing folder is refused (see test_evaluate_edges.py)
    res = evaluate.model_report(950, real, train=train, output=out, weights=tiny_weights, bootstrap=100, k=3,
                                seed=0)
    page = out.read_text()
    assert res.html_path == out and res.json_path == out.with_suffix(".json")
    # self-contained: every image inline, nothing fetched
    assert not re.search(r'(src|href)="(?!data:)', page)
    assert page.count("data:image/png;base64,") == 2 + 8  # two grids, eight panels
    data = json.loads(res.json_path.read_text())
    assert data["model_id"] == "00950_COPYCAT" and data["model_card"]["license"] == "MIT"
    assert "FID: 12.5" in data["model_card"]["catalog performance"]
    figs = data["metrics"]["figures"]
    assert set(figs) == {"FID", "KID", "precision", "recall", "density", "coverage"}
    assert all(f["low"] <= f["value"] <= f["high"] for f in figs.values())
    assert set(data["baseline"]) == set(figs) and data["run"]["n_synthetic"] == 10
    mem = data["memorization"]["summary"]["pixels"]
    assert mem["near_copies"] == 1.0 and mem["closer_than_held_out"] > mem["closer_than_held_out_baseline"]
    assert "class=flag" in page and "Memorisation check" in page and "real-real baseline" in page
    assert "[" in page and "toy MRI" in page and "precision" in res.summary


def test_model_report_without_training_images_and_cli(tmp_path, capsys, copycat, tiny_weights):  # noqa: F811
    real, train = copycat
    res = evaluate.model_report("00950", real, num_samples=6, output=tmp_path / "r.html", weights=tiny_weights,
                                metrics="fid,kid", bootstrap=0)
    data = json.loads(res.json_path.read_text())
    assert data["memorization"] is None and data["baseline"] == {} and set(data["metrics"]["figures"]) == {"FID", "KID"}
    assert data["metrics"]["figures"]["FID"]["low"] is None  # no bootstrap: no interval, strict JSON
    assert "no real-real baseline" in res.html_path.read_text()
    from medhub.cli import main

    code = main(["report", "950", "--real", str(real), "--train", str(train), "-o", str(tmp_path / "cli.html"),
                 "--weights", str(tiny_weights), "--bootstrap", "20", "--k", "3", "--json"])
    assert code == 0 and json.loads(capsys.readouterr().out)["html"].endswith("cli.html")
    code = main(["report", "950", "--real", str(real), "-n", "1", "-o", str(tmp_path / "x.html")])
    assert code == 2 and "num_samples must be at least 2" in capsys.readouterr().err
