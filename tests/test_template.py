"""The model package template (templates/medhub_package) runs through medhub and keeps its contract.

Every test works on a copy of the template in tmp_path, with a catalog whose package link is the
copy's absolute path. CPU only, no network.
"""

from __future__ import annotations

import csv
import importlib.util
import json
import shutil
import sys
from pathlib import Path

import numpy as np
import pytest

from medhub import Generators
from medhub.cli import main as cli_main
from medhub.config import validate_catalog
from medhub.errors import GenerationError, IntegrityError
from medhub.execution.resolve import tree_digest

pytest.importorskip("torch")
pytest.importorskip("safetensors")

TEMPLATE = Path(__file__).resolve().parents[1] / "templates" / "medhub_package"
MODEL_ID = "00999_TEMPLATE_MODEL"
REQUIRED_FILES = ["__init__.py", "metadata.json", "README.md", "LICENSE", "requirements.txt", "make_weights.py",
                  "weights.safetensors"]
README_HEADINGS = ["## Data source and license", "## Preprocessing", "## Architecture", "## Training settings and time",
                   "## Intended use", "## Known limits"]


# ---------------------------------------------------------------------------- fixtures and helpers
@pytest.fixture(autouse=True)
def _isolated_home(tmp_path, monkeypatch):
    monkeypatch.setenv("MEDHUB_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("MEDHUB_CONFIG", raising=False)


def _metadata() -> dict:
    return json.loads((TEMPLATE / "metadata.json").read_text(encoding="utf-8"))


def _write_catalog(path: Path, package: Path, **execution_overrides) -> Path:
    models = json.loads((package / "metadata.json").read_text(encoding="utf-8"))
    execution = models[MODEL_ID]["execution"]
    execution["package_link"] = str(package.resolve())
    execution.update(execution_overrides)
    path.write_text(json.dumps({"schema_version": 1, "catalog_version": "0.0.1", "models": models}), encoding="utf-8")
    return path


@pytest.fixture
def package(tmp_path) -> Path:
    """A fresh copy of the template, as a model author would make it."""
    dest = tmp_path / "packages" / MODEL_ID
    shutil.copytree(TEMPLATE, dest, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    return dest


@pytest.fixture
def catalog(tmp_path, package) -> Path:
    return _write_catalog(tmp_path / "catalog.json", package)


@pytest.fixture
def specs() -> list[dict]:
    return _metadata()[MODEL_ID]["execution"]["outputs"]


def _import_template(package: Path, name: str):
    spec = importlib.util.spec_from_file_location(name, package / "__init__.py",
                                                  submodule_search_locations=[str(package)])
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    finally:
        del sys.modules[name]
    return module


def _check_value(value, spec: dict) -> None:
    """One output of one sample against its spec entry (shape, dtype, range, values)."""
    arr = np.asarray(value)
    assert arr.shape == tuple(spec["shape"]), spec["name"]
    assert arr.dtype == np.dtype(spec["dtype"]), spec["name"]
    if "range" in spec:
        assert spec["range"][0] <= arr.min() and arr.max() <= spec["range"][1], spec["name"]
    if "values" in spec:
        assert set(np.unique(arr).tolist()) <= set(spec["values"]), spec["name"]


def _check_samples(samples: list, specs: list[dict], n: int) -> None:
    assert len(samples) == n
    for item in samples:
        assert isinstance(item, tuple) and len(item) == len(specs)
        for value, spec in zip(item, specs):
            _check_value(value, spec)


def _as_arrays(samples: list) -> list[np.ndarray]:
    return [np.stack([np.asarray(item[k]) for item in samples]) for k in range(len(samples[0]))]


# ---------------------------------------------------------------------------- the template's files
def test_template_has_every_file_and_small_weights():
    for name in REQUIRED_FILES:
        assert (TEMPLATE / name).is_file(), name
    assert (TEMPLATE / "weights.safetensors").stat().st_size < 200_000
    assert "MIT License" in (TEMPLATE / "LICENSE").read_text(encoding="utf-8")
    readme = (TEMPLATE / "README.md").read_text(encoding="utf-8")
    for heading in README_HEADINGS:
        assert heading in readme, heading
    assert "research only" in readme.lower()


def test_metadata_is_a_valid_catalog_entry_and_matches_requirements():
    models = _metadata()
    assert list(models) == [MODEL_ID]
    validate_catalog({"schema_version": 1, "catalog_version": "0.0.1", "models": models})
    execution = models[MODEL_ID]["execution"]
    assert execution["interface"] == "medhub/1"
    assert {o["kind"] for o in execution["outputs"]} == {"image", "mask", "label"}
    lines = (TEMPLATE / "requirements.txt").read_text(encoding="utf-8").splitlines()
    requirements = [line.strip() for line in lines if line.strip() and not line.lstrip().startswith("#")]
    assert requirements == execution["dependencies"]


def test_make_weights_rewrites_the_shipped_weights_byte_for_byte(tmp_path, package):
    spec = importlib.util.spec_from_file_location("_template_make_weights", package / "make_weights.py")
    make_weights = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(make_weights)
    out = make_weights.make_weights(tmp_path / "w.safetensors")
    assert out.read_bytes() == (TEMPLATE / "weights.safetensors").read_bytes()


# ---------------------------------------------------------------------------- through medhub
def test_generate_in_memory_honours_outputs_spec(catalog, specs):
    samples = Generators(config_file=catalog).generate("00999", num_samples=4, save_images=False, seed=0, device="cpu")
    _check_samples(samples, specs, 4)
    assert all(isinstance(item[2], int) for item in samples)  # labels come back as Python ints


def test_generate_to_folder_writes_pngs_manifest_and_provenance(tmp_path, catalog, specs):
    from PIL import Image

    g = Generators(config_file=catalog)
    out = tmp_path / "run"
    run = g.generate("00999", num_samples=5, output_path=out, seed=3, batch_size=2, device="cpu", progress=False)
    assert run.output_path == out.resolve() and run.num_samples == 5 and run.seed == 3
    names = sorted(p.name for p in out.iterdir())
    expected = sorted([f"{i:06d}_{kind}.png" for i in range(5) for kind in ("image", "mask")]
                      + ["manifest.csv", "provenance.json"])
    assert names == expected

    in_memory = g.generate("00999", num_samples=5, save_images=False, seed=3, device="cpu")
    with open(out / "manifest.csv", newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    assert [int(r["index"]) for r in rows] == list(range(5))
    for i, (row, (image, mask, label)) in enumerate(zip(rows, in_memory)):
        assert row["image"] == f"{i:06d}_image.png" and row["mask"] == f"{i:06d}_mask.png"
        assert int(row["label"]) == label
        png = np.asarray(Image.open(out / row["image"]))
        assert png.dtype == np.uint8 and png.shape == tuple(specs[0]["shape"])
        assert np.array_equal(png, image)
        png_mask = np.asarray(Image.open(out / row["mask"]))
        assert np.array_equal(png_mask, mask.astype(np.uint8) * 255)

    provenance = json.loads((out / "provenance.json").read_text(encoding="utf-8"))
    assert provenance["model_id"] == MODEL_ID and provenance["seed"] == 3 and provenance["num_samples"] == 5
    assert provenance["interface"] == "medhub/1"
    assert [o["name"] for o in provenance["outputs"]] == [s["name"] for s in specs]


def test_same_seed_gives_identical_samples_and_another_seed_does_not(catalog):
    a = Generators(config_file=catalog).generate("00999", num_samples=6, save_images=False, seed=11, device="cpu")
    b = Generators(config_file=catalog).generate("00999", num_samples=6, save_images=False, seed=11, device="cpu")
    c = Generators(config_file=catalog).generate("00999", num_samples=6, save_images=False, seed=12, device="cpu")
    for x, y in zip(_as_arrays(a), _as_arrays(b)):
        assert np.array_equal(x, y)
    assert not np.array_equal(_as_arrays(a)[0], _as_arrays(c)[0])


def test_sample_i_is_the_same_alone_and_inside_a_batch(catalog):
    g = Generators(config_file=catalog)
    one_by_one = _as_arrays(g.generate("00999", num_samples=10, save_images=False, seed=5, batch_size=1, device="cpu"))
    batched = _as_arrays(g.generate("00999", num_samples=10, save_images=False, seed=5, batch_size=8, device="cpu"))
    for x, y in zip(one_by_one, batched):
        assert np.array_equal(x, y)
    # sample 7 addressed directly by its index, without generating samples 0-6
    executor = g.get_model_executor("00999")
    alone = executor.sample_batch([7], seed=5, device="cpu")
    for name, column in zip(("image", "mask", "label"), batched):
        assert np.array_equal(alone[name][0], column[7])


def test_label_input_conditions_every_sample(catalog):
    g = Generators(config_file=catalog)
    samples = g.generate("00999", num_samples=6, save_images=False, seed=0, device="cpu", label=1)
    assert [item[2] for item in samples] == [1] * 6
    with pytest.raises(GenerationError, match="label"):
        g.generate("00999", num_samples=2, save_images=False, seed=0, device="cpu", label=7)


def test_pinned_tree_digest_is_verified(tmp_path, package):
    digest, size = tree_digest(package)
    pinned = _write_catalog(tmp_path / "pinned.json", package, sha256=digest, size=size)
    run = Generators(config_file=pinned).generate("00999", num_samples=2, output_path=tmp_path / "ok", seed=0,
                                                  device="cpu")
    provenance = json.loads(Path(run.provenance_path).read_text(encoding="utf-8"))
    assert provenance["package_sha256"] == digest and provenance["package_verified"] is True

    with open(package / "README.md", "a", encoding="utf-8") as fh:
        fh.write("\nedited after pinning\n")
    with pytest.raises(IntegrityError, match="sha256"):
        Generators(config_file=pinned).generate("00999", num_samples=1, save_images=False, seed=0, device="cpu")


def test_cli_generate_with_package_path(tmp_path, package, capsys):
    catalog = _write_catalog(tmp_path / "catalog.json", package, package_link="elsewhere/not-there")
    out = tmp_path / "cli-run"
    code = cli_main(["generate", "00999", "--config", str(catalog), "--package-path", str(package), "-n", "3",
                     "-o", str(out), "--seed", "0", "--device", "cpu", "--no-progress", "--arg", "label=0", "--json"])
    assert code == 0, capsys.readouterr().err
    data = json.loads(capsys.readouterr().out)
    assert data["num_samples"] == 3
    with open(out / "manifest.csv", newline="", encoding="utf-8") as fh:
        assert [row["label"] for row in csv.DictReader(fh)] == ["0", "0", "0"]


# ---------------------------------------------------------------------------- medigan compatibility
def test_template_entry_points_give_the_same_samples_for_the_same_seed(catalog, package):
    """The package's medigan ``generate(seed=s)`` and medhub's ``generate(..., seed=s)`` use one
    per-sample seed scheme, so they give the same samples."""
    from medhub.execution.seeds import sample_seeds

    module = _import_template(package, "_medhub_template_seeds")
    for seed in (0, 1, 2**40 + 3, 2**64 - 1):
        assert module.per_sample_seeds(seed, 50) == sample_seeds(seed, range(50))
    direct = module.generate(str(package / "weights.safetensors"), 5, None, False, seed=9)
    via_medhub = Generators(config_file=catalog).generate("00999", num_samples=5, save_images=False, seed=9,
                                                          device="cpu")
    for x, y in zip(_as_arrays(direct), _as_arrays(via_medhub)):
        assert np.array_equal(x, y)


def test_template_generate_is_medigan_compatible(tmp_path, package, specs):
    module = _import_template(package, "_medhub_template_under_test")
    weights = str(package / "weights.safetensors")

    samples = module.generate(model_file=weights, num_samples=4, output_path=None, save_images=False, seed=0)
    _check_samples(samples, specs, 4)
    again = module.generate(weights, 6, None, False, seed=0)
    for x, y in zip(_as_arrays(samples), _as_arrays(again[:4])):
        assert np.array_equal(x, y)  # sample i does not depend on num_samples
    other = module.generate(weights, 4, None, False, seed=1)
    assert not np.array_equal(_as_arrays(samples)[0], _as_arrays(other)[0])

    np.random.seed(0)  # without a seed argument the seed comes from numpy's global RNG, as in medigan
    unseeded = module.generate(weights, 4, None, False)
    np.random.seed(0)
    for x, y in zip(_as_arrays(unseeded), _as_arrays(module.generate(weights, 4, None, False))):
        assert np.array_equal(x, y)

    out = tmp_path / "medigan-out"
    assert module.generate(model_file=weights, num_samples=3, output_path=str(out), save_images=True) is None
    assert sorted(p.name for p in out.iterdir()) == sorted(
        [f"{i}_{kind}.png" for i in range(3) for kind in ("image", "mask")] + ["labels.csv"]
    )


def test_medhub_runs_the_template_as_a_medigan_package(tmp_path, package, specs):
    catalog = _write_catalog(tmp_path / "medigan.json", package, interface="medigan")
    samples = Generators(config_file=catalog).generate("00999", num_samples=5, save_images=False, seed=0,
                                                       batch_size=2, device="cpu")
    _check_samples(samples, specs, 5)
    images = _as_arrays(samples)[0]
    assert len({img.tobytes() for img in images}) == 5  # each batch of the run gets its own samples
    again = Generators(config_file=catalog).generate("00999", num_samples=5, save_images=False, seed=0,
                                                     batch_size=2, device="cpu")
    assert np.array_equal(images, _as_arrays(again)[0])  # medhub seeds the global RNGs per batch
