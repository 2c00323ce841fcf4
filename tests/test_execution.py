"""ModelExecutor and generate(): both interfaces, seeding, writers, bad inputs, integrity."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from importlib import metadata
from pathlib import Path

import numpy as np
import pytest
from conftest import IMG8, LABEL, NUMPY_TOY, entry, write_catalog, write_package
from PIL import Image

from medhub import Generators
from medhub.errors import (
    DependencyError,
    DeviceError,
    GenerationError,
    IntegrityError,
    InvalidArgumentError,
    OutputPathError,
    OutputSpecError,
    PackageError,
    PackageNotAvailableError,
)
from medhub.execution.resolve import tree_digest
from medhub.execution.seeds import sample_seeds
from medhub.outputs import read_manifest


@pytest.fixture
def g(toy_catalog) -> Generators:
    return Generators(config_file=toy_catalog)


def test_numpy_only_package_runs_without_torch(toy_catalog, tmp_path):
    code = (
        "import sys; from medhub import Generators;"
        f"g = Generators(config_file={str(toy_catalog)!r});"
        "s = g.generate(900, num_samples=3, save_images=False, seed=0);"
        "r = g.generate(900, num_samples=3, output_path=sys.argv[1], seed=0);"
        "assert len(s) == 3 and s[0][0].shape == (8, 8);"
        "print('torch' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code, str(tmp_path / "o")], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


@pytest.mark.parametrize("model", [900, 901, 906])
def test_sample_i_depends_only_on_seed_and_index(g, model):
    whole = g.generate(model, num_samples=7, save_images=False, seed=42, batch_size=3)
    alone = g.generate(model, num_samples=7, save_images=False, seed=42, batch_size=1)
    big = g.generate(model, num_samples=7, save_images=False, seed=42, batch_size=32)
    for a, b, c in zip(whole, alone, big):
        for x, y, z in zip(a, b, c):
            assert np.array_equal(x, y) and np.array_equal(x, z)
    other = g.generate(model, num_samples=7, save_images=False, seed=43)
    assert not np.array_equal(whole[0][0], other[0][0])


def test_sample_seeds_are_stable():
    assert sample_seeds(0, [0, 1, 2]) == sample_seeds(0, range(3))
    assert sample_seeds(0, [5]) == [sample_seeds(0, range(10))[5]]
    assert len(set(sample_seeds(1, range(1000)))) == 1000
    assert sample_seeds(1, [0]) != sample_seeds(2, [0])
    assert all(0 <= s < 2**63 for s in sample_seeds(2**64 - 1, range(10)))


def test_in_memory_shapes_follow_medigan(g):
    numpy_out = g.generate(900, num_samples=2, save_images=False, seed=0)
    image, label = numpy_out[0]
    assert image.shape == (8, 8) and image.dtype == np.uint8 and isinstance(label, int)
    medigan_out = g.generate(902, num_samples=4, save_images=False, seed=0, batch_size=2)
    assert len(medigan_out) == 4 and len(medigan_out[0]) == 3


def test_save_writes_files_manifest_and_provenance(g, tmp_path):
    in_memory = g.generate(900, num_samples=5, save_images=False, seed=7)
    run = g.generate(900, num_samples=5, output_path=tmp_path / "out", seed=7, batch_size=2)
    out = tmp_path / "out"
    assert Path(run.output_path) == out and Path(run) == out
    rows = read_manifest(out)
    assert [int(r["index"]) for r in rows] == list(range(5))
    assert [int(r["seed"]) for r in rows] == sample_seeds(7, range(5))
    for row, (image, label) in zip(rows, in_memory):
        assert np.array_equal(np.asarray(Image.open(out / row["image"])), image)
        assert int(row["label"]) == label
    prov = json.loads((out / "provenance.json").read_text())
    for key in ("model_id", "model_version", "package_sha256", "seed", "arguments", "medhub_version",
                "torch_version", "started", "finished", "catalog_version", "batch_size", "device"):
        assert key in prov
    assert prov["seed"] == 7 and prov["model_id"] == "00900_NUMPY_TOY" and prov["files"] == 5
    assert sorted(p.name for p in out.iterdir()) == sorted(run.files + ["manifest.csv", "provenance.json"])
    assert not list(tmp_path.glob(".out.partial-*"))


def test_sixteen_bit_png_and_masks(g, tmp_path):
    mem = g.generate(901, num_samples=2, save_images=False, seed=1)
    g.generate(901, num_samples=2, output_path=tmp_path / "o", seed=1)
    img = Image.open(tmp_path / "o" / "000000_image.png")
    assert img.mode.startswith("I")  # 16-bit PNG
    assert np.array_equal(np.asarray(img).astype(np.uint16), mem[0][0])
    assert np.array_equal(np.asarray(Image.open(tmp_path / "o" / "000000_mask.png")), mem[0][1])


def test_volumes_written_as_nifti(g, tmp_path):
    import nibabel as nib

    mem = g.generate(906, num_samples=2, save_images=False, seed=3)
    g.generate(906, num_samples=2, output_path=tmp_path / "v", seed=3)
    vol = nib.load(tmp_path / "v" / "000001_volume.nii.gz")
    assert np.array_equal(np.asarray(vol.dataobj), mem[1][0])
    assert np.allclose(np.diag(vol.affine)[:3], [1.5, 1.5, 2.0])
    assert np.array_equal(np.asarray(nib.load(tmp_path / "v" / "000001_mask.nii.gz").dataobj), mem[1][1])


def test_random_seed_is_recorded_and_replays(g, tmp_path):
    run = g.generate(900, num_samples=3, output_path=tmp_path / "a")
    replay = g.generate(900, num_samples=3, save_images=False, seed=run.seed)
    first = np.asarray(Image.open(tmp_path / "a" / "000000_image.png"))
    assert np.array_equal(first, replay[0][0])


def test_default_output_path_is_under_medhub_home(g, _isolated_home):
    run = g.generate(900, num_samples=1, seed=0)
    assert Path(run.output_path).is_relative_to(_isolated_home / "outputs" / "00900_NUMPY_TOY")


def test_existing_non_empty_output_is_never_mixed(g, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    with pytest.raises(OutputPathError, match="not empty"):
        g.generate(900, num_samples=2, output_path=out, seed=0)
    assert [p.name for p in out.iterdir()] == ["keep.txt"]
    empty = tmp_path / "empty"
    empty.mkdir()
    g.generate(900, num_samples=2, output_path=empty, seed=0)
    assert (empty / "manifest.csv").exists()


def test_unwritable_output_path(g, tmp_path):
    blocker = tmp_path / "file.txt"
    blocker.write_text("x")
    with pytest.raises(OutputPathError, match="is a file"):
        g.generate(900, num_samples=1, output_path=blocker, seed=0)
    with pytest.raises(OutputPathError, match="Cannot write"):
        g.generate(900, num_samples=1, output_path=blocker / "sub", seed=0)


def test_failure_mid_run_leaves_nothing_behind(g, tmp_path):
    with pytest.raises(GenerationError, match="00903_RAISES.*RuntimeError.*boom") as err:
        g.generate(903, num_samples=10, output_path=tmp_path / "out", seed=0, batch_size=4)
    assert isinstance(err.value.__cause__, RuntimeError)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["catalog.json", "packages"]


@pytest.mark.parametrize("n", [0, -1, 2.5, "3", True, None])
def test_num_samples_must_be_positive_int(g, n, tmp_path):
    with pytest.raises(InvalidArgumentError, match="num_samples"):
        g.generate(900, num_samples=n, output_path=tmp_path / "o")
    assert not (tmp_path / "o").exists()


@pytest.mark.parametrize("kwargs, match", [({"batch_size": 0}, "batch_size"), ({"seed": -1}, "seed"),
                                           ({"seed": "x"}, "seed")])
def test_other_bad_arguments(g, kwargs, match):
    with pytest.raises(InvalidArgumentError, match=match):
        g.generate(900, num_samples=1, save_images=False, **kwargs)


def test_outputs_breaking_spec_name_spec_and_shape(g, tmp_path):
    with pytest.raises(OutputSpecError) as err:
        g.generate(904, num_samples=2, output_path=tmp_path / "o", seed=0)
    msg = str(err.value)
    assert "00904_BAD_SPEC" in msg and "(2, 3, 32, 32)" in msg and "(2, 32, 32)" in msg and "image (image" in msg
    assert not (tmp_path / "o").exists()


def test_missing_dependency_gives_pip_command(g):
    with pytest.raises(DependencyError) as err:
        g.generate(905, num_samples=1, save_images=False)
    assert "pip install 'medhub-no-such-dist>=1.0'" in str(err.value)
    assert err.value.requirements == ["medhub-no-such-dist>=1.0"]


def test_install_dependencies_runs_pip_and_reports_failure(g, monkeypatch, caplog):
    calls = []

    def fake_run(cmd, **kw):
        calls.append(cmd)
        return subprocess.CompletedProcess(cmd, 1, "", "ERROR: No matching distribution found")

    monkeypatch.setattr("medhub.execution.deps.subprocess.run", fake_run)
    with pytest.raises(DependencyError, match="No matching distribution"):
        g.generate(905, num_samples=1, save_images=False, install_dependencies=True)
    assert calls == [[sys.executable, "-m", "pip", "install", "medhub-no-such-dist>=1.0"]]
    assert "pip install" in caplog.text


def test_medigan_package_with_custom_args(g, tmp_path):
    samples = g.generate(902, num_samples=3, save_images=False, seed=5, size=6)
    again = g.generate(902, num_samples=3, save_images=False, seed=5)
    assert all(np.array_equal(a[0], b[0]) for a, b in zip(samples, again))
    run = g.generate(902, num_samples=3, output_path=tmp_path / "m", seed=5)
    assert sorted(read_manifest(run.output_path)[0]) == ["image", "index", "label", "mask", "seed"]
    with pytest.raises(OutputSpecError, match="shape"):
        g.generate(902, num_samples=1, save_images=False, size=7)


def test_gen_function_is_returned(g):
    fn = g.generate(900, num_samples=2, save_images=False, seed=1, is_gen_function_returned=True)
    assert callable(fn)
    assert len(fn()) == 2 and len(fn(num_samples=5)) == 5
    assert np.array_equal(fn()[0][0], g.generate(900, num_samples=1, save_images=False, seed=1)[0][0])
    assert callable(g.get_generate_function(900, num_samples=1))


def test_devices(g):
    assert g.generate(901, num_samples=1, save_images=False, device="cpu", seed=0)
    with pytest.raises(DeviceError, match="Unknown device"):
        g.generate(901, num_samples=1, save_images=False, device="gpu")
    import torch

    if not torch.cuda.is_available():
        with pytest.raises(DeviceError, match="CUDA is not available"):
            g.generate(901, num_samples=1, save_images=False, device="cuda:1")
    assert g.get_model_executor(900)._models.keys() <= {"cpu"}


def test_executor_created_lazily_and_weights_loaded_once(g):
    assert len(g) == 0
    for _ in range(3):
        g.generate("00900", num_samples=2, save_images=False, seed=0)
    assert len(g.model_executors) == 1
    module = g.get_model_executor(900).prepare()
    assert module.LOADS == ["cpu"]
    assert module.__name__.startswith("medhub_pkg_00900_NUMPY_TOY_")


def test_packages_do_not_shadow_each_other(tmp_path):
    for name, value in (("one", 1), ("two", 2)):
        folder = write_package(tmp_path, name, "from .net import VALUE\nimport numpy as np\n"
                               "def load(w, d): return VALUE\n"
                               "def sample(m, seeds, **k): return {'image': np.full((len(seeds), 2, 2), m, np.uint8)}\n")
        (folder / "net.py").write_text(f"VALUE = {value}\n")
    spec = [{"name": "image", "kind": "image", "shape": [2, 2], "dtype": "uint8"}]
    cat = write_catalog(tmp_path / "c.json", {"00001_ONE": entry("one", spec), "00002_TWO": entry("two", spec)})
    g = Generators(config_file=cat)
    assert g.generate(1, num_samples=1, save_images=False)[0][0, 0] == 1
    assert g.generate(2, num_samples=1, save_images=False)[0][0, 0] == 2
    assert str(tmp_path) not in sys.path


def test_pinned_sha256_is_verified(tmp_path):
    folder = write_package(tmp_path, "pkg", NUMPY_TOY)
    digest, size = tree_digest(folder)
    cat = write_catalog(tmp_path / "c.json", {"00001_PINNED": entry("pkg", [IMG8, LABEL], sha256=digest, size=size)})
    assert Generators(config_file=cat).generate(1, num_samples=1, save_images=False)
    (folder / "__init__.py").write_text(NUMPY_TOY + "\n# tampered\n")
    with pytest.raises(IntegrityError, match="does not match the sha256"):
        Generators(config_file=cat).generate(1, num_samples=1, save_images=False)


def test_tree_digest_ignores_caches_and_order(tmp_path):
    folder = write_package(tmp_path, "pkg", NUMPY_TOY)
    before = tree_digest(folder)
    (folder / "__pycache__").mkdir()
    (folder / "__pycache__" / "x.pyc").write_bytes(b"junk")
    assert tree_digest(folder) == before
    (folder / "extra.txt").write_text("x")
    assert tree_digest(folder)[0] != before[0]


def test_remote_unpinned_package_needs_trust_and_offline_needs_cache(g, monkeypatch):
    from medhub.errors import UntrustedPackageError

    with pytest.raises(UntrustedPackageError, match="trust_remote_code=True"):
        g.generate(907, num_samples=1, save_images=False)
    monkeypatch.setenv("MEDHUB_OFFLINE", "1")
    with pytest.raises(PackageNotAvailableError, match="medhub prefetch 00907_REMOTE"):
        g.generate(907, num_samples=1, save_images=False, trust_remote_code=True)


def test_package_path_overrides_catalog_link(g, tmp_path):
    folder = write_package(tmp_path / "mine", "pkg", NUMPY_TOY.replace("integers(0, 256", "integers(7, 8"))
    out = g.generate(900, num_samples=1, save_images=False, seed=0, package_path=folder)
    assert (out[0][0] == 7).all()


def test_package_without_required_functions(tmp_path):
    write_package(tmp_path, "empty", "X = 1\n")
    cat = write_catalog(tmp_path / "c.json", {"00001_EMPTY": entry("empty", [IMG8])})
    with pytest.raises(PackageError, match=r"does not define load\(\), sample\(\)|does not define load, sample"):
        Generators(config_file=cat).generate(1, num_samples=1, save_images=False)


def test_package_import_error_is_reported(tmp_path):
    write_package(tmp_path, "broken", "import medhub_no_such_module\n")
    cat = write_catalog(tmp_path / "c.json", {"00001_BROKEN": entry("broken", [IMG8])})
    with pytest.raises(PackageError, match="medhub_no_such_module"):
        Generators(config_file=cat).generate(1, num_samples=1, save_images=False)


def test_missing_package_folder(tmp_path):
    cat = write_catalog(tmp_path / "c.json", {"00001_GONE": entry("gone", [IMG8])})
    with pytest.raises(PackageNotAvailableError, match="not found"):
        Generators(config_file=cat).generate(1, num_samples=1, save_images=False)


def test_package_without_spec_is_inferred(tmp_path):
    write_package(tmp_path, "pkg", NUMPY_TOY)
    cat = write_catalog(tmp_path / "c.json", {"00001_NOSPEC": entry("pkg")})
    g = Generators(config_file=cat)
    run = g.generate(1, num_samples=3, output_path=tmp_path / "o", seed=0)
    assert sorted(read_manifest(run.output_path)[0]) == ["image", "index", "label", "seed"]


def test_package_path_does_not_stick(g, tmp_path):
    folder = write_package(tmp_path / "mine", "pkg", NUMPY_TOY.replace("integers(0, 256", "integers(7, 8"))
    assert (g.generate(900, num_samples=1, save_images=False, seed=0, package_path=folder)[0][0] == 7).all()
    assert not (g.generate(900, num_samples=1, save_images=False, seed=0)[0][0] == 7).all()


def test_edited_package_is_imported_afresh(tmp_path):
    folder = write_package(tmp_path, "pkg", NUMPY_TOY)
    cat = write_catalog(tmp_path / "c.json", {"00001_EDIT": entry("pkg", [IMG8, LABEL])})
    first = Generators(config_file=cat).generate(1, num_samples=1, save_images=False, seed=0)[0][0]
    import os

    (folder / "__init__.py").write_text(NUMPY_TOY.replace("integers(0, 256", "integers(9, 10"))
    st = (folder / "__init__.py").stat()
    os.utime(folder / "__init__.py", ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))
    second = Generators(config_file=cat).generate(1, num_samples=1, save_images=False, seed=0)[0][0]
    assert not np.array_equal(first, second) and (second == 9).all()


PER_SAMPLE = """
import numpy as np
def load(w, d): return None
def sample(model, seeds, offset=None, scale=1, **_):
    return {"image": (np.asarray(offset, dtype=np.uint8).reshape(-1, 1, 1) * scale + np.zeros((len(seeds), 2, 2), np.uint8))}
"""


def test_per_sample_inputs_are_sliced_per_batch(tmp_path):
    write_package(tmp_path, "pkg", PER_SAMPLE)
    spec = [{"name": "image", "kind": "image", "shape": [2, 2], "dtype": "uint8"}]
    e = entry("pkg", spec)
    e["execution"]["generate_method"]["per_sample_inputs"] = ["offset"]
    g = Generators(config_file=write_catalog(tmp_path / "c.json", {"00001_PS": e}))
    out = g.generate(1, num_samples=7, save_images=False, batch_size=3, offset=np.arange(7), scale=2)
    assert [int(o[0, 0]) for o in out] == [2 * i for i in range(7)]
    with pytest.raises(InvalidArgumentError, match=r"one row per sample: shape \(7, ...\)"):
        g.generate(1, num_samples=7, save_images=False, offset=np.arange(6))
    # a scalar applies to every sample
    assert [int(o[0, 0]) for o in g.generate(1, num_samples=4, save_images=False, batch_size=3, offset=5)] == [5] * 4


INDICES = """
import numpy as np
def load(w, d): return None
def sample(model, seeds, indices, **_):
    return {"image": np.asarray(indices, dtype=np.uint8).reshape(-1, 1, 1) + np.zeros((len(seeds), 2, 2), np.uint8)}
"""


def test_sample_that_declares_indices_gets_run_positions(tmp_path):
    write_package(tmp_path, "pkg", INDICES)
    spec = [{"name": "image", "kind": "image", "shape": [2, 2], "dtype": "uint8"}]
    g = Generators(config_file=write_catalog(tmp_path / "c.json", {"00001_IX": entry("pkg", spec)}))
    out = g.generate(1, num_samples=7, save_images=False, batch_size=3)
    assert [int(o[0, 0]) for o in out] == list(range(7))
    assert int(g.get_model_executor(1).sample_batch([5], seed=0)["image"][0, 0, 0]) == 5


def test_shipped_model_takes_latents_per_sample():
    g = Generators()
    z = np.random.default_rng(0).standard_normal((5, 100)).astype(np.float32)
    a = g.generate(101, num_samples=5, save_images=False, batch_size=2, latent=z)
    b = g.generate(101, num_samples=5, save_images=False, batch_size=5, latent=z)
    assert all(np.array_equal(x, y) for x, y in zip(a, b))


def test_relative_links_of_a_copied_catalog_fall_back_to_shipped_models(tmp_path):
    import shutil

    from conftest import REPO

    copy = tmp_path / "global.json"
    shutil.copy(REPO / "config" / "global.json", copy)
    assert Generators(config_file=copy).generate(101, num_samples=1, save_images=False, seed=0)[0].shape == (64, 64)


WIDE = """
import numpy as np
def load(w, d): return None
def sample(model, seeds, **_):
    n = len(seeds)
    ct = np.tile(np.linspace(-1000, 2000, 16, dtype=np.float32).astype(np.int16), (n, 16, 1))
    rgb_first = np.zeros((n, 3, 5, 6), np.uint8); rgb_first[:, 0] = 200
    return {"ct": ct, "rgb": rgb_first, "prob": np.full((n, 4, 4), 0.5, np.float32)}
"""


def test_png_writer_maps_wide_types_and_channel_first(tmp_path):
    write_package(tmp_path, "pkg", WIDE)
    spec = [{"name": "ct", "kind": "image", "shape": [16, 16], "dtype": "int16", "range": [-1000, 2000]},
            {"name": "rgb", "kind": "image", "shape": [3, 5, 6], "dtype": "uint8", "channels": 3},
            {"name": "prob", "kind": "image", "shape": [4, 4], "dtype": "float32", "range": [0, 1]}]
    g = Generators(config_file=write_catalog(tmp_path / "c.json", {"00001_WIDE": entry("pkg", spec)}))
    g.generate(1, num_samples=1, output_path=tmp_path / "o", seed=0)
    ct = np.asarray(Image.open(tmp_path / "o" / "000000_ct.png")).astype(np.int64)
    assert ct.min() == 0 and ct.max() == 65535  # int16 range mapped to 16 bit
    rgb = Image.open(tmp_path / "o" / "000000_rgb.png")
    assert rgb.mode == "RGB" and rgb.size == (6, 5) and np.asarray(rgb)[0, 0, 0] == 200
    assert np.asarray(Image.open(tmp_path / "o" / "000000_prob.png")).max() == 128


def test_writer_keeps_a_bounded_number_of_batches_in_flight(tmp_path, monkeypatch):
    import threading
    import time

    from medhub.outputs import OutputSpec, RunWriter

    spec = OutputSpec("image", "image", (4, 4), "uint8")
    writer = RunWriter(tmp_path / "o", [spec], workers=2, max_pending=3)
    active, peak, lock = [0], [0], threading.Lock()
    real = writer._encode

    def slow(jobs):
        with lock:
            active[0] += 1
            peak[0] = max(peak[0], active[0])
        time.sleep(0.005)
        real(jobs)
        with lock:
            active[0] -= 1

    monkeypatch.setattr(writer, "_encode", slow)
    for start in range(0, 200, 10):
        writer.submit(range(start, start + 10), range(start, start + 10), {"image": np.zeros((10, 4, 4), np.uint8)})
        assert len(writer._pending) <= 3
    run = writer.finish({"seed": 0})
    assert peak[0] == 2  # both encoder threads were busy at once
    assert run.num_samples == 200 and len(list((tmp_path / "o").glob("*.png"))) == 200


def test_edited_submodule_is_imported_afresh(tmp_path):
    folder = write_package(tmp_path, "pkg", "from .net import VALUE\nimport numpy as np\n"
                           "def load(w, d): return VALUE\n"
                           "def sample(m, seeds, **k): return {'image': np.full((len(seeds), 2, 2), m, np.uint8)}\n")
    (folder / "net.py").write_text("VALUE = 1\n")
    spec = [{"name": "image", "kind": "image", "shape": [2, 2], "dtype": "uint8"}]
    cat = write_catalog(tmp_path / "c.json", {"00001_SUB": entry("pkg", spec)})
    assert Generators(config_file=cat).generate(1, num_samples=1, save_images=False)[0][0, 0] == 1
    (folder / "net.py").write_text("VALUE = 22\n")  # same mtime granularity is fine: the size changed too
    assert Generators(config_file=cat).generate(1, num_samples=1, save_images=False)[0][0, 0] == 22


def test_in_memory_results_are_gathered_into_one_array_per_output(tmp_path):
    write_package(tmp_path, "pkg", NUMPY_TOY)
    g = Generators(config_file=write_catalog(tmp_path / "c.json", {"00001_T": entry("pkg", [IMG8, LABEL])}))
    out = g.generate(1, num_samples=10, save_images=False, seed=0, batch_size=3)
    assert len(out) == 10 and all(isinstance(label, int) for _, label in out)
    # all 10 images are rows of one (10, 8, 8) array filled batch by batch, not 4 separate batch arrays
    assert out[0][0].base is out[9][0].base and out[0][0].base.shape == (10, 8, 8)
    single = g.generate(1, num_samples=10, save_images=False, seed=0, batch_size=10)
    assert all(np.array_equal(a[0], b[0]) and a[1] == b[1] for a, b in zip(out, single))


STRINGS = """
import numpy as np

def load(weights_path, device):
    return None

def sample(model, seeds, indices, **inputs):
    return {"name": np.array(["x" * (1 + i) for i in indices])}
"""


def test_in_memory_string_outputs_keep_their_width_across_batches(tmp_path):
    write_package(tmp_path, "pkg", STRINGS)
    spec = {"name": "name", "kind": "label", "shape": [], "dtype": "str"}
    g = Generators(config_file=write_catalog(tmp_path / "c.json", {"00001_S": entry("pkg", [spec])}))
    out = g.generate(1, num_samples=5, save_images=False, seed=0, batch_size=2)
    assert [str(x) for x in out] == ["x", "xx", "xxx", "xxxx", "xxxxx"]


# ---------------------------------------------------------------- dependency checks (packaging)
SPECS = ["", "[cuda]", "[a, b]>=2", ">=2.1", ">2.1", "<=2.1", "<2.1", "==2.1", "!=2.1", "==2.1.0", ">=1.24,<3",
         ">= 2, != 2.13.0", ">2.13", "<2.13.0", "~=2.1", "==2.*"]
INSTALLED = ["2.1", "2.1.0", "2.1+cpu", "2.13.0+cpu", "2.0.9", "3", "1.24.0", "2.13", "10.0.1", "2.1rc1",
             "2.1.post1", "2.1.dev3", "1!2.0"]


@pytest.mark.parametrize("spec", SPECS)
def test_requirements_follow_pep_440(monkeypatch, spec):
    """Every requirement is checked by packaging against the installed version (pre-releases count)."""
    from packaging.requirements import Requirement

    from medhub.execution import deps

    for installed in INSTALLED:
        monkeypatch.setattr(deps.metadata, "version", lambda name, v=installed: v)
        expected = Requirement(f"torch{spec}").specifier.contains(installed, prereleases=True)
        assert deps.missing_requirements([f"torch{spec}"]) == ([] if expected else [f"torch{spec}"]), installed


def test_markers_are_evaluated_and_bad_requirements_named():
    from medhub.execution.deps import missing_requirements

    assert missing_requirements(['medhub-no-such-dist; python_version < "3"']) == []
    assert missing_requirements(['medhub-no-such-dist; python_version >= "3"']) == [
        'medhub-no-such-dist; python_version >= "3"']
    with pytest.raises(DependencyError, match="'numpy>=>1' is not a valid PEP 508"):
        missing_requirements(["numpy>=>1"])


def test_requirement_answers_are_remembered_so_later_processes_skip_packaging(tmp_path):
    # whether a version satisfies a plain requirement never changes: the second process looks the
    # installed version up but does not import packaging's specifiers (a cost of every first generate)
    code = ("import sys, json; from medhub.execution.deps import missing_requirements, requirement_name; "
            "assert requirement_name('Torch>=2.1,<3') == 'torch'; "
            "print(json.dumps([missing_requirements(['numpy>=1.0', 'numpy>=999', 'numpy']), "
            "'packaging.specifiers' in sys.modules]))")
    env = {**os.environ, "MEDHUB_HOME": str(tmp_path)}
    runs = [json.loads(subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                                      check=True).stdout) for _ in range(2)]
    assert runs == [[["numpy>=999"], True], [["numpy>=999"], False]]
    stored = json.loads((tmp_path / "requirements.json").read_text())["answers"]
    assert sorted(stored.values()) == [False, True]


def test_a_foreign_or_broken_answers_store_is_ignored_and_an_unwritable_one_only_costs_time(tmp_path, monkeypatch):
    from medhub.execution import deps

    store = tmp_path / "requirements.json"
    monkeypatch.setattr(deps, "_answers_store", lambda: store)
    version = metadata.version("numpy")
    for text in ("{not json", json.dumps({"scope": "0|old", "answers": {f"numpy>=999\x00{version}": True}})):
        store.write_text(text)
        monkeypatch.setattr(deps, "_ANSWERS", None)
        assert deps.missing_requirements(["numpy>=999"]) == ["numpy>=999"]
        assert json.loads(store.read_text())["answers"] == {f"numpy>=999\x00{version}": False}
    (tmp_path / "file").write_text("")
    monkeypatch.setattr(deps, "_answers_store", lambda: tmp_path / "file" / "requirements.json")
    monkeypatch.setattr(deps, "_ANSWERS", None)
    assert deps.missing_requirements(["numpy>=998", "numpy>=1"]) == ["numpy>=998"]


def test_shipped_requirements_parse():
    from packaging.requirements import Requirement

    from medhub.config import ConfigManager
    from medhub.execution.deps import missing_requirements, requirement_name

    reqs = sorted({r for e in ConfigManager().config_dict.values() for r in e["execution"].get("dependencies", [])})
    assert any(">=" in r for r in reqs) and any("[" in r for r in reqs)  # version bounds and extras
    assert [requirement_name(r) for r in reqs] == [Requirement(r).name.lower() for r in reqs]
    assert isinstance(missing_requirements(reqs), list)


def test_requirement_name_of_other_forms_uses_packaging():
    from medhub.errors import DependencyError
    from medhub.execution.deps import requirement_name

    assert requirement_name("Torch>=2.1,<3") == "torch"
    assert requirement_name('torch>=2.1; python_version >= "3.8"') == "torch"
    assert requirement_name("my.pkg~=1.4") == "my.pkg"
    with pytest.raises(DependencyError, match="not a valid PEP 508"):
        requirement_name("torch>=>2")


@pytest.mark.parametrize("dtype", ["uint8", "int8", "int16", "int64"])
def test_outputs_values_check_for_integer_dtypes(dtype):
    """A ``values`` spec is enforced for every integer dtype (one-byte ones are counted, others sorted)."""
    from medhub.outputs.specs import check_outputs, distinct_values, parse_specs

    specs = parse_specs([{"name": "mask", "kind": "mask", "shape": [4, 4], "dtype": dtype, "values": [-1, 0, 3]}])
    good = np.array([[-1, 0, 3, 0]] * 4 * 2, dtype=dtype).reshape(2, 4, 4) if dtype != "uint8" else \
        np.array([[0, 3, 3, 0]] * 4 * 2, dtype=dtype).reshape(2, 4, 4)
    assert check_outputs("m", {"mask": good}, specs, 2)["mask"] is not None
    bad = good.copy()
    bad[1, 2, 1] = 7
    bad[0, 0, 0] = 2
    with pytest.raises(OutputSpecError, match=r"holds \[2, 7\], not among the values \[-1, 0, 3\]"):
        check_outputs("m", {"mask": bad}, specs, 2)
    assert distinct_values(bad).tolist() == np.unique(bad).tolist()
    if dtype == "int8":
        assert distinct_values(np.array([-128, 127, -1, 0, -1], np.int8)).tolist() == [-128, -1, 0, 127]


def test_device_name_of_the_cpu_starts_no_subprocess_on_linux(monkeypatch):
    # platform.processor() runs `uname -p` in a subprocess on Linux: a cost of every run to files
    import platform

    from medhub.execution.device import device_name

    if not sys.platform.startswith("linux"):
        pytest.skip("Linux only")

    def no_subprocess(*args, **kwargs):
        raise AssertionError("device_name started a subprocess")

    monkeypatch.setattr(subprocess, "Popen", no_subprocess)
    monkeypatch.setattr(platform, "processor", lambda: no_subprocess())
    assert device_name("cpu") == (platform.machine() or "cpu")
