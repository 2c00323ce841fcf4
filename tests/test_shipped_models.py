"""Every model shipped in models/ runs offline on CPU and honours its catalog entry."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import REPO, import_file

from medhub import Generators
from medhub.config import ConfigManager
from medhub.execution.hub import is_hub_link
from medhub.execution.resolve import is_remote_link, tree_digest
from medhub.outputs import parse_specs

CM = ConfigManager()
SHIPPED = [m for m in CM.model_ids
           if not (is_remote_link(link := CM.get_config_by_id(m, "execution.package_link")) or is_hub_link(link))]
#: The DDPM takes 5-8 s a test on 2 cores (a U-Net call per step) and the 3D atlas model's batch of 32 about
#: 10 s: those cases of the longest tests run with ``-m slow``; tests/test_model_ddpm_fundus.py and
#: test_model_atlas3d.py keep both models in the default run.
SLOW_MODELS = ("00106_DDPM", "00107_ATLAS3D")
SHIPPED_SLOW_DDPM = [pytest.param(m, marks=pytest.mark.slow) if m.startswith(SLOW_MODELS) else m for m in SHIPPED]


@pytest.fixture(scope="module")
def g() -> Generators:
    return Generators()


def test_there_is_a_shipped_model():
    assert "00101_DCGAN_BRAIN_MRI_T1" in SHIPPED


@pytest.mark.parametrize("model_id", SHIPPED)
def test_package_is_pinned_and_complete(model_id):
    ex = CM.get_config_by_id(model_id, "execution")
    folder = REPO / "models" / ex["package_link"]
    for name in ("__init__.py", "metadata.json", "README.md", "LICENSE", "requirements.txt", ex["weights"]):
        assert (folder / name).is_file(), name
    assert (folder / ex["weights"]).stat().st_size <= 8 * 2**20
    assert ex["interface"] == "medhub/1" and ex["outputs"]
    assert tree_digest(folder)[0] == ex["sha256"], "run: python tools/catalog.py pin"


@pytest.mark.parametrize("model_id", SHIPPED_SLOW_DDPM)
def test_generates_its_outputs_spec_reproducibly(g, model_id):
    specs = parse_specs(CM.get_config_by_id(model_id, "execution.outputs"))
    samples = g.generate(model_id, num_samples=4, save_images=False, seed=0, device="cpu")
    again = g.generate(model_id, num_samples=4, save_images=False, seed=0, device="cpu")
    for s, t in zip(samples, again):
        parts = s if isinstance(s, tuple) else (s,)
        for spec, part in zip(specs, parts):
            if spec.kind != "label":
                assert part.shape == spec.shape and part.dtype == np.dtype(spec.dtype)
        assert all(np.array_equal(a, b) for a, b in zip(parts, t if isinstance(t, tuple) else (t,)))
    first = samples[0][0] if isinstance(samples[0], tuple) else samples[0]
    assert first.std() > 5, "output looks constant"


@pytest.mark.parametrize("model_id", SHIPPED_SLOW_DDPM)
def test_sample_alone_equals_sample_in_batch_of_32(g, model_id):
    batch = g.generate(model_id, num_samples=32, save_images=False, seed=11, batch_size=32, device="cpu")
    for i in (0, 17, 31):
        ex = g.get_model_executor(model_id)
        alone = ex.sample_batch([i], seed=11, device="cpu")
        first = batch[i][0] if isinstance(batch[i], tuple) else batch[i]
        assert np.array_equal(alone[ex.specs[0].name][0], first)


@pytest.mark.parametrize("model_id", SHIPPED_SLOW_DDPM)
def test_medigan_interface_of_shipped_package(model_id, tmp_path):
    ex = CM.get_config_by_id(model_id, "execution")
    folder = REPO / "models" / ex["package_link"]
    module = _package_module(model_id)
    weights = str(folder / ex["weights"])
    out = module.generate(weights, num_samples=3, output_path=None, save_images=False, seed=0)
    assert len(out) == 3
    specs = parse_specs(ex["outputs"])
    for sample in out:  # each sample: an array, or a tuple in the order of the outputs spec
        parts = sample if isinstance(sample, tuple) else (sample,)
        assert len(parts) == len(specs)
        for spec, part in zip(specs, parts):
            if spec.kind != "label":
                assert np.shape(part) == spec.shape and np.asarray(part).dtype == np.dtype(spec.dtype), spec.name
    again = module.generate(weights, num_samples=3, output_path=None, save_images=False, seed=0)
    for a, b in zip(out, again):
        assert all(np.array_equal(x, y) for x, y in zip(a if isinstance(a, tuple) else (a,),
                                                         b if isinstance(b, tuple) else (b,)))
    module.generate(weights, num_samples=2, output_path=str(tmp_path / "m"), save_images=True)
    # one file per output and sample, named after the sample index ("0.png", "1_volume.nii.gz", ...)
    written = {f.name.split("_")[0].split(".")[0] for f in (tmp_path / "m").iterdir()}
    assert written == {"0", "1"}


@pytest.mark.parametrize("model_id", SHIPPED_SLOW_DDPM)
def test_cli_generates_offline(model_id, tmp_path, monkeypatch, capsys):
    import json

    from medhub.cli import main

    monkeypatch.setenv("MEDHUB_OFFLINE", "1")
    code = main(["generate", model_id[:5], "-n", "16", "--seed", "0", "-o", str(tmp_path / "o"), "--json"])
    assert code == 0
    data = json.loads(capsys.readouterr().out)
    assert data["num_samples"] == 16 and (tmp_path / "o" / "manifest.csv").exists()


def _package_module(model_id):
    """The shipped package's module, imported from its folder (as a medigan user would)."""
    folder = REPO / "models" / CM.get_config_by_id(model_id, "execution.package_link")
    return import_file(folder / "__init__.py", f"shipped_{model_id}")


def test_shipped_packages_draw_their_noise_with_medhub_noise():
    """Version 2 of the shipped packages draws each batch's noise with medhub.noise on the model's
    device (issue 24, point 1): the same bits on every device, no torch.Generator per sample."""
    import torch

    from medhub import noise

    seeds = [3, 2**62 + 7, 11]
    for model_id, dim in (("00101_DCGAN_BRAIN_MRI_T1", 100), ("00102_WGANGP_HEAD_CT", 100),
                          ("00107_ATLAS3D_BRAIN_MRI_T1_SEG", 192)):
        assert torch.equal(_package_module(model_id).latents(seeds), noise.normal(seeds, dim)), model_id
    z, c = _package_module("00103_CDCGAN_BRAIN_MRI_TISSUE").draw_inputs(seeds)
    assert torch.equal(z, noise.normal(seeds, 100)) and torch.equal(c, noise.integers(seeds, 0, 3, stream=1))
    ddpm = _package_module("00106_DDPM_FUNDUS_RGB")
    assert torch.equal(ddpm.initial_noise(seeds), noise.normal(seeds, (3, 64, 64)))
    for model_id in ("00101", "00102", "00103", "00104", "00106", "00107"):
        assert int(CM.get_config_by_id(model_id, "description.version").split(".")[0]) >= 2, model_id


def test_shipped_packages_require_a_bounded_medhub():
    """medhub.noise and medhub.package_kit are frozen within a major version, so a package's digest
    pins its samples only with an upper bound on medhub (issue 33, point 5): in the catalog entry
    and in requirements.txt alike."""
    bounded = "medhub>=0.2.0.dev0,<1"
    for model_id in [m for m in CM.model_ids if m.startswith("001")]:
        deps = CM.get_config_by_id(model_id, "execution.dependencies")
        assert [d for d in deps if d.startswith("medhub")] == [bounded], model_id
        folder = REPO / "models" / CM.get_config_by_id(model_id, "execution.package_link")
        assert bounded in (folder / "requirements.txt").read_text().splitlines(), model_id
