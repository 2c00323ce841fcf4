"""medigan parity on packages in the shapes of real published ones (tests/medigan_packages),
served from a loopback server through a medigan-format catalog (issue 23)."""

from __future__ import annotations

import csv
import json
import logging
import random
from pathlib import Path

import numpy as np
import pytest
from conftest import REPO, import_file
from fake_zenodo import FakeZenodo
from medigan_corpus import BEZIER, DCGAN, I2I, NAMES, NUM_INPUTS, archive, make_assets, medigan_catalog
from PIL import Image

from medhub import Generators
from medhub.cli import main as cli_main
from medhub.execution.seeds import sample_seeds


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    folder = tmp_path_factory.mktemp("medigan_corpus")
    make_assets(folder)
    server = FakeZenodo().start()
    urls = {}
    for model_id in (DCGAN, BEZIER, I2I, NAMES):
        server.files[f"{model_id}.zip"] = archive(folder, model_id, at_root=model_id == BEZIER)
        urls[model_id] = server.record_url(f"{model_id}.zip")
    catalog = folder / "global.json"
    catalog.write_text(json.dumps(medigan_catalog(urls)))
    yield folder, catalog
    server.stop()


@pytest.fixture
def g(corpus):
    return Generators(config_file=corpus[1])


def direct(folder: Path, model_id: str, module_name: str):
    """The package imported as medigan would, to call its generate() directly."""
    return import_file(folder / model_id / "__init__.py", module_name)


def seed_globals(seed: int) -> None:
    import torch

    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def translated(folder: Path, k: int) -> np.ndarray:
    x = np.asarray(Image.open(folder / I2I / "inputs" / "T1" / f"t1_{k:02d}.png").convert("L"), np.float32)
    return np.clip(np.round(np.float32(0.8) * (255 - x) + np.float32(10.0)), 0, 255).astype(np.uint8)


def rows(folder: Path) -> list[dict]:
    with open(folder / "manifest.csv", newline="") as fh:
        return list(csv.DictReader(fh))


# ---------------------------------------------------------------------------- 1, 2, 4: image-to-image
def test_image_to_image_uses_every_input_once_in_order(g, corpus):
    folder = corpus[0]
    samples = g.generate(I2I, num_samples=4, batch_size=2, save_images=False, seed=0, trust_remote_code=True)
    assert len(samples) == 4
    for k, sample in enumerate(samples):
        assert np.array_equal(sample, translated(folder, k))  # not 0, 1, 0, 1 as with a call per batch


def test_translate_all_images_and_more_samples_than_inputs_give_the_package_count(g, tmp_path, caplog):
    with caplog.at_level(logging.WARNING, logger="medhub.execution"):
        run = g.generate(I2I, num_samples=2, output_path=tmp_path / "all", seed=0, trust_remote_code=True,
                         translate_all_images=True, progress=False)
    assert "returned 5 samples where 2 were asked" in caplog.text
    assert run.num_samples == NUM_INPUTS and [r["index"] for r in rows(run.output_path)] == ["0", "1", "2", "3", "4"]
    provenance = json.loads(run.provenance_path.read_text())
    assert provenance["num_samples"] == NUM_INPUTS and provenance["requested_samples"] == 2
    more = g.generate(I2I, num_samples=8, save_images=False, seed=0, trust_remote_code=True)
    assert len(more) == NUM_INPUTS


def test_user_path_in_medigan_form_points_into_the_package(g, corpus):
    samples = g.generate(I2I, num_samples=3, save_images=False, seed=0, trust_remote_code=True,
                         input_path=f"models/{I2I}/inputs/T1")
    assert [np.array_equal(s, translated(corpus[0], k)) for k, s in enumerate(samples)] == [True] * 3


# ---------------------------------------------------------------------------- 3: (H, W, 1) images
def test_hw1_images_are_pngs_and_equal_a_direct_call(g, corpus, tmp_path):
    module = direct(corpus[0], DCGAN, "_direct_dcgan")
    seed_globals(sample_seeds(5, [0])[0])
    expected = module.generate(str(corpus[0] / DCGAN / "dcgan.pt"), 6, None, False)
    samples = g.generate(DCGAN, num_samples=6, batch_size=6, save_images=False, seed=5, device="cpu",
                         trust_remote_code=True)
    assert samples[0].shape == (32, 32, 1) and all(np.array_equal(a, b) for a, b in zip(samples, expected))
    run = g.generate(DCGAN, num_samples=3, output_path=tmp_path / "dcgan", seed=5, device="cpu",
                     trust_remote_code=True, progress=False)
    assert sorted(p.name for p in run.output_path.glob("0000*")) == [f"{i:06d}_image.png" for i in range(3)]
    png = np.asarray(Image.open(run.output_path / "000000_image.png"))
    assert png.shape == (32, 32)


# ---------------------------------------------------------------------------- 5, 7: empty package_name, 0/1 masks
def test_weightless_mask_package_at_the_archive_root_writes_visible_masks(g, tmp_path):
    run = g.generate(BEZIER, num_samples=4, output_path=tmp_path / "masks", seed=1, trust_remote_code=True,
                     progress=False)
    table = rows(run.output_path)
    assert list(table[0]) == ["index", "seed", "image", "image_scale"] and table[0]["image_scale"] == "255"
    values = set(np.unique(np.asarray(Image.open(run.output_path / table[0]["image"]))).tolist())
    assert values == {0, 255}
    in_memory = g.generate(BEZIER, num_samples=4, save_images=False, seed=1, trust_remote_code=True)
    assert set(np.unique(in_memory[0]).tolist()) == {0, 1}  # in memory, the package's own values


def test_one_unusable_entry_does_not_reject_the_catalog(corpus, tmp_path, caplog):
    doc = json.loads(corpus[1].read_text())
    doc["00999_BROKEN"] = {"execution": {"package_name": "x", "image_size": ["big"]}}
    path = tmp_path / "global.json"
    path.write_text(json.dumps(doc))
    with caplog.at_level(logging.WARNING):
        g = Generators(config_file=path)
    assert set(g.list_models()) == {DCGAN, BEZIER, I2I, NAMES}
    assert "00999_BROKEN" in caplog.text and "package_link" in caplog.text


# ---------------------------------------------------------------------------- 6: list-valued metrics
def test_rank_by_a_list_valued_metric_uses_its_best_element():
    g = Generators()
    desc = g.rank_models_by_performance(metric="turing_test.AUC", order="desc")
    row = next(r for r in desc if r["model_id"].startswith("00002"))
    assert row["turing_test.AUC"] == 0.56
    asc = g.rank_models_by_performance(metric="turing_test.AUC", order="asc")
    assert next(r for r in asc if r["model_id"].startswith("00002"))["turing_test.AUC"] == 0.45


# ---------------------------------------------------------------------------- 8: names, sys.path, gpu_id
def test_image_name_tuples_put_the_name_in_the_manifest(g, tmp_path):
    samples = g.generate(NAMES, num_samples=3, save_images=False, seed=0, trust_remote_code=True)
    assert [s[1] for s in samples] == ["case_00.npy", "case_01.npy", "case_02.npy"]
    run = g.generate(NAMES, num_samples=3, output_path=tmp_path / "names", seed=0, trust_remote_code=True,
                     progress=False)
    assert [r["name"] for r in rows(run.output_path)] == ["case_00.npy", "case_01.npy", "case_02.npy"]


# ---------------------------------------------------------------------------- 9: provenance of unpinned packages
def test_trusted_unpinned_package_is_not_recorded_as_verified(g, tmp_path):
    run = g.generate(DCGAN, num_samples=1, output_path=tmp_path / "p", seed=0, device="cpu", trust_remote_code=True,
                     progress=False)
    provenance = json.loads(run.provenance_path.read_text())
    assert provenance["package_verified"] is False


# ---------------------------------------------------------------------------- the CLI and the DataLoader
@pytest.mark.parametrize("model_id", [DCGAN, BEZIER, I2I, NAMES])
def test_each_package_runs_through_the_cli_and_the_dataloader(corpus, tmp_path, capsys, model_id):
    out = tmp_path / "cli"
    assert cli_main(["--config", str(corpus[1]), "generate", model_id, "-n", "3", "-o", str(out), "--seed", "0",
                     "--device", "cpu", "--trust-remote-code", "--no-progress"]) == 0
    assert len(rows(out)) == 3
    loader = Generators(config_file=corpus[1]).get_as_torch_dataloader(model_id, num_samples=4, batch_size=2,
                                                                      trust_remote_code=True)
    batches = list(loader)
    assert sum(len(b["sample"]) for b in batches) == 4


# ---------------------------------------------------------------------------- medigan 1.0.0 itself
MEDIGAN_SCRIPT = r"""
import json, pickle, random, sys
import numpy as np, torch
from medigan import Generators
cases = json.loads(sys.argv[1])
g = Generators()  # reads config/global.json of the working directory (ours), downloads from the loopback server
out = {}
for name, model_id, n, seed, kwargs in cases:
    random.seed(seed); np.random.seed(seed % 2**32); torch.manual_seed(seed)
    out[name] = g.generate(model_id=model_id, num_samples=n, save_images=False, **kwargs)
pickle.dump(out, open(sys.argv[2], "wb"))
"""


@pytest.mark.slow
def test_same_in_memory_samples_as_medigan_1_0_0(corpus, tmp_path):
    """The four packages under medigan 1.0.0 (its own venv, ``MEDIGAN_PYTHON``; .ci/run makes it with
    ``pip install 'setuptools<81' medigan==1.0.0``) and under medhub give equal in-memory samples."""
    import os
    import pickle
    import subprocess

    python = os.environ.get("MEDIGAN_PYTHON")
    if not python:
        pytest.skip("MEDIGAN_PYTHON (a Python with medigan 1.0.0 installed) is not set")
    work = tmp_path / "medigan-cwd"
    (work / "config").mkdir(parents=True)
    (work / "config" / "global.json").write_text(corpus[1].read_text())
    cases = [("dcgan", DCGAN, 6, 3, {}), ("bezier", BEZIER, 4, 1, {}), ("i2i", I2I, 4, 0, {}),
             ("i2i_all", I2I, 2, 0, {"translate_all_images": True}), ("names", NAMES, 3, 0, {})]
    medigan_cases = [(name, model_id, n, sample_seeds(seed, [0])[0], kw) for name, model_id, n, seed, kw in cases]
    result = subprocess.run([python, "-c", MEDIGAN_SCRIPT, json.dumps(medigan_cases), str(tmp_path / "medigan.pkl")],
                            cwd=work, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    theirs = pickle.loads((tmp_path / "medigan.pkl").read_bytes())
    g = Generators(config_file=corpus[1])
    for name, model_id, n, seed, kw in cases:
        ours = g.generate(model_id, num_samples=n, batch_size=n, save_images=False, seed=seed, device="cpu",
                          trust_remote_code=True, **kw)
        assert len(ours) == len(theirs[name]), name
        for a, b in zip(ours, theirs[name]):
            a, b = (a, b) if isinstance(a, tuple) else ((a,), (b,))
            assert len(a) == len(b) and all(np.array_equal(np.asarray(x), np.asarray(y)) for x, y in zip(a, b)), name


SHIPPED_UNDER_MEDIGAN = '''
import json, pickle, sys
import numpy as np
from medigan import Generators
cases, out = json.loads(sys.argv[1]), {}
g = Generators()
for name, model_id, n, seed, kw in cases:
    np.random.seed(seed)
    out[name] = g.generate(model_id, num_samples=n, save_images=False, **kw)
pickle.dump(out, open(sys.argv[2], "wb"))
'''


@pytest.mark.slow
def test_shipped_v2_packages_run_under_medigan_1_0_0(tmp_path):
    """The shipped packages draw their noise with medhub.noise (version 2), use medhub.package_kit and declare
    medhub in their dependencies: all seven, under medigan 1.0.0, in a venv with medhub installed (.ci/run installs it), they run
    through medigan's own Generators and give what their generate() gives here with the same seeds."""
    import os
    import pickle
    import subprocess

    python = os.environ.get("MEDIGAN_PYTHON")
    if not python:
        pytest.skip("MEDIGAN_PYTHON (a Python with medigan 1.0.0 installed) is not set")
    probe = subprocess.run([python, "-c", "import medhub.noise"], capture_output=True, text=True)
    assert probe.returncode == 0, "medhub is not installed in MEDIGAN_PYTHON's environment (.ci/run installs it)"
    builder = import_file(REPO / "benchmarks" / "build_medigan_package.py", "build_medigan_package")
    work = tmp_path / "medigan-cwd"
    folders = builder.build(["00101", "00102", "00103", "00104", "00105", "00106", "00107"], work)
    cases = [("dcgan", "00101_DCGAN_BRAIN_MRI_T1", 5, 11, {}),
             ("wgangp", "00102_WGANGP_HEAD_CT", 3, 14, {}),
             ("cdcgan", "00103_CDCGAN_BRAIN_MRI_TISSUE", 4, 12, {"condition": "GM"}),
             ("pix2pix", "00104_PIX2PIX_BRAIN_SEG_TO_T1", 3, 15, {}),
             ("cyclegan", "00105_CYCLEGAN_HEAD_MRI_T1_CT", 2, 16, {"direction": "CT_to_T1"}),
             ("ddpm", "00106_DDPM_FUNDUS_RGB", 2, 17, {"num_inference_steps": 2}),
             ("atlas", "00107_ATLAS3D_BRAIN_MRI_T1_SEG", 1, 13, {})]
    env = {**os.environ, "PYTHONPATH": str(work)}
    result = subprocess.run([python, "-c", SHIPPED_UNDER_MEDIGAN, json.dumps(cases), str(tmp_path / "out.pkl")],
                            cwd=work, env=env, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    theirs = pickle.loads((tmp_path / "out.pkl").read_bytes())
    for name, model_id, n, seed, kw in cases:
        folder = folders[model_id]
        module = direct(folder.parent, folder.name, f"medigan_v2_{name}")
        np.random.seed(seed)
        ours = module.generate(str(folder / "weights.safetensors"), num_samples=n, output_path=None,
                               save_images=False, **kw)
        assert len(ours) == len(theirs[name]) == n, name
        for a, b in zip(ours, theirs[name]):
            a, b = (a, b) if isinstance(a, tuple) else ((a,), (b,))
            assert all(np.array_equal(np.asarray(x), np.asarray(y)) for x, y in zip(a, b)), name
