"""Models from the Hugging Face Hub: ``hf://`` links, the ``diffusers`` and ``monai-bundle`` adapters.

No internet: a loopback Hub (``fake_hub.FakeHub``) serves what ``huggingface_hub.snapshot_download``
asks for, pointed at with ``HF_ENDPOINT``. It serves a tiny diffusers ``DDPMPipeline`` the tests
build with ``save_pretrained`` and tiny MONAI bundles (a ``DiffusionModelUNet`` and a DDPM scheduler
in the bundle layout, with a ``scripts`` package), generated through ``Generators``, the CLI and the
DataLoader.
"""

from __future__ import annotations

import hashlib
import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from conftest import write_catalog
from fake_hub import FakeHub

from medhub import Generators
from medhub.cli import main as cli_main
from medhub.errors import (
    DependencyError,
    IntegrityError,
    InvalidArgumentError,
    UntrustedPackageError,
)
from medhub.execution.hub import HubSource

pytest.importorskip("huggingface_hub")
torch = pytest.importorskip("torch")

DDPM_REPO = "medhub-test/tiny-ddpm"
BUNDLE_REPO = "medhub-test/tiny-bundle"
VOLUME_REPO = "medhub-test/tiny-volume-bundle"
IMG16 = {"name": "image", "kind": "image", "shape": [16, 16], "dtype": "uint8", "range": [0, 255]}
VOL8 = {"name": "volume", "kind": "volume", "shape": [8, 8, 8], "dtype": "float32", "range": [-1, 1],
        "spacing": [1.5, 1.5, 2.0]}

SAMPLER = b'''
import torch
from monai.inferers import DiffusionInferer


class Sampler:
    """The bundle's own sampling code (a `scripts` package, as MONAI's generative bundles have)."""

    def sample(self, noise, network, scheduler):
        inferer = DiffusionInferer(scheduler)
        with torch.no_grad():
            return inferer.sample(input_noise=noise, diffusion_model=network, scheduler=scheduler, verbose=False)
'''


# ---------------------------------------------------------------------------------------------- fixtures
@pytest.fixture(scope="module")
def ddpm_files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, bytes]:
    """A tiny diffusers DDPMPipeline (16x16 grey), saved with save_pretrained."""
    diffusers = pytest.importorskip("diffusers")
    torch.manual_seed(0)
    unet = diffusers.UNet2DModel(sample_size=16, in_channels=1, out_channels=1, layers_per_block=1,
                                 block_out_channels=(8, 16), down_block_types=("DownBlock2D", "DownBlock2D"),
                                 up_block_types=("UpBlock2D", "UpBlock2D"), norm_num_groups=4)
    pipe = diffusers.DDPMPipeline(unet=unet, scheduler=diffusers.DDPMScheduler(num_train_timesteps=10))
    folder = tmp_path_factory.mktemp("ddpm")
    pipe.save_pretrained(folder, safe_serialization=True)
    files = FakeHub.folder_files(folder)
    files["README.md"] = b"# tiny DDPM\n"
    files["unet/diffusion_pytorch_model.bin"] = b"pickles are never fetched"
    return files


def bundle_files(tmp_path: Path, dims: int = 2) -> dict[str, bytes]:
    """A tiny MONAI bundle: DiffusionModelUNet + DDPM scheduler, a scripts package, metadata."""
    pytest.importorskip("monai")
    from monai.networks.nets import DiffusionModelUNet

    net_args = {"spatial_dims": dims, "in_channels": 1, "out_channels": 1, "channels": [8, 8],
                "attention_levels": [False, False], "num_res_blocks": 1, "norm_num_groups": 4, "num_head_channels": 8}
    torch.manual_seed(1)
    net = DiffusionModelUNet(**net_args)
    weights = tmp_path / f"model{dims}.pt"
    torch.save(net.state_dict(), weights)
    size = [16, 16] if dims == 2 else [8, 8, 8]
    inference = {
        "imports": ["$import torch"],
        "bundle_root": ".",
        "device": "$torch.device('cuda' if torch.cuda.is_available() else 'cpu')",
        "contrast": 1.0,
        "network_def": {"_target_": "monai.networks.nets.DiffusionModelUNet", **net_args},
        "load_path": "$@bundle_root + '/models/model.pt'",
        "load": "$@network_def.load_state_dict(torch.load(@load_path, weights_only=True))",
        "network": "$@network_def.to(@device).eval()",
        "scheduler": {"_target_": "monai.networks.schedulers.DDPMScheduler", "num_train_timesteps": 10,
                      "_requires_": "@load"},
        "set_timesteps": "$@scheduler.set_timesteps(num_inference_steps=5)",
        "sampler": {"_target_": "scripts.sampler.Sampler", "_requires_": "@set_timesteps"},
        "latent_shape": [1, *size],
        "noise": "$torch.randn([1] + @latent_shape).to(@device)",
        "sample": "$@sampler.sample(@noise, @network, @scheduler).clamp(-1, 1) * @contrast",
        "saver": "$print('the saver is never run')",
    }
    metadata = {"version": "0.1.0", "monai_version": "1.4.0", "required_packages_version": {"nibabel": "5.0.0"},
                "name": "tiny bundle", "network_data_format": {"outputs": {"pred": {
                    "type": "image", "num_channels": 1, "spatial_shape": size, "value_range": [-1, 1]}}}}
    return {"configs/inference.json": json.dumps(inference, indent=1).encode(),
            "configs/metadata.json": json.dumps(metadata, indent=1).encode(),
            "models/model.pt": weights.read_bytes(),
            "models/model.ts": b"TorchScript is not fetched",
            "scripts/__init__.py": b"from . import sampler\n",
            "scripts/sampler.py": SAMPLER,
            "LICENSE": b"Apache-2.0\n"}


@pytest.fixture(scope="module")
def bundle2d(tmp_path_factory: pytest.TempPathFactory) -> dict[str, bytes]:
    return bundle_files(tmp_path_factory.mktemp("bundle"), 2)


@pytest.fixture
def hub(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> FakeHub:
    """A loopback Hub, with huggingface_hub pointed at it (HF_ENDPOINT) and a private HF_HOME."""
    import huggingface_hub.constants as constants

    server = FakeHub().start()
    hf_home = tmp_path / "hf_home"
    for name, value in {"HF_ENDPOINT": server.url, "HF_HOME": str(hf_home), "HF_HUB_DISABLE_PROGRESS_BARS": "1"}.items():
        monkeypatch.setenv(name, value)
    for name in ("HF_TOKEN", "HUGGING_FACE_HUB_TOKEN", "HF_HUB_OFFLINE", "HF_HUB_CACHE", "MEDHUB_TRUST_REMOTE_CODE"):
        monkeypatch.delenv(name, raising=False)
    # huggingface_hub reads its variables when imported: point this process's copy at the test Hub too
    monkeypatch.setattr(constants, "ENDPOINT", server.url)
    monkeypatch.setattr(constants, "HUGGINGFACE_CO_URL_TEMPLATE", server.url + "/{repo_id}/resolve/{revision}/{filename}")
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(hf_home / "hub"))
    monkeypatch.setattr(constants, "HF_TOKEN_PATH", str(hf_home / "token"))
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    import huggingface_hub.file_download as file_download  # older huggingface_hub copies the URL template

    monkeypatch.setattr(file_download, "HUGGINGFACE_CO_URL_TEMPLATE", constants.HUGGINGFACE_CO_URL_TEMPLATE,
                        raising=False)
    real_getaddrinfo = socket.getaddrinfo

    def loopback_only(host, *args, **kwargs):  # whatever happens, no test reaches the internet
        if host not in ("127.0.0.1", "localhost", "::1"):
            raise OSError(f"test_hub: no connection to {host} (loopback only)")
        return real_getaddrinfo(host, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", loopback_only)
    yield server
    server.stop()


def hub_entry(repo: str, revision: str, interface: str, outputs: list[dict] | None, **generate: object) -> dict:
    deps = ["torch", "diffusers"] if interface == "diffusers" else ["torch", "monai"]
    method = {"name": "generate", "args": {"custom": dict(generate)}, "batch_size": 4}
    execution = {"package_link": f"hf://{repo}", "revision": revision, "interface": interface, "dependencies": deps,
                 "generate_method": method}
    if outputs:
        execution["outputs"] = outputs
    return {"execution": execution, "description": {"title": f"test model {repo}"},
            "selection": {"modality": ["toy"], "organ": ["nothing"], "tags": ["hub"],
                          "performance": {"FID": 10.0 if interface == "diffusers" else 20.0}}}


def catalog_for(tmp_path: Path, **models: dict) -> Path:
    return write_catalog(tmp_path / "hub_catalog.json", models)


# ---------------------------------------------------------------------------------------------- diffusers
def test_diffusers_pipeline_generates_reproducibly(hub, ddpm_files, tmp_path):
    commit = hub.add(DDPM_REPO, ddpm_files)
    cat = catalog_for(tmp_path, **{"00290_TINY_DDPM": hub_entry(DDPM_REPO, commit, "diffusers", [IMG16],
                                                                 num_inference_steps=3)})
    g = Generators(config_file=str(cat))
    a = g.generate("00290", num_samples=5, save_images=False, seed=7, batch_size=5)
    b = Generators(config_file=str(cat)).generate("00290", num_samples=5, save_images=False, seed=7, batch_size=2)
    assert a[0].shape == (16, 16) and a[0].dtype == np.uint8
    assert all(np.array_equal(x, y) for x, y in zip(a, b))  # sample i depends only on (seed, i)
    c = g.generate("00290", num_samples=2, save_images=False, seed=8)
    assert not np.array_equal(a[0], c[0])
    # only what a diffusers pipeline needs was fetched (no pickles), from the pinned commit
    fetched = {path.split(f"/resolve/{commit}/", 1)[1] for _, path, _ in hub.requests("/resolve/")}
    assert "unet/diffusion_pytorch_model.bin" not in fetched and "model_index.json" in fetched
    run = g.generate("00290", num_samples=3, output_path=tmp_path / "out", seed=7)
    prov = json.loads((run.output_path / "provenance.json").read_text())
    assert prov["interface"] == "diffusers" and prov["package_commit"] == commit and prov["package_verified"] is True
    import diffusers
    import huggingface_hub

    versions = prov["adapter"]["versions"]  # the libraries that ran it, and the pipeline's own version
    assert versions["diffusers"] == diffusers.__version__ and versions["huggingface_hub"] == huggingface_hub.__version__
    assert versions["pipeline"] == "DDPMPipeline" and versions["pipeline_diffusers"] == diffusers.__version__
    assert sorted(p.name for p in run.output_path.glob("*.png")) == [f"00000{i}_image.png" for i in range(3)]
    from medhub import verify
    from medhub.outputs.marks import read_mark

    assert read_mark(run.output_path / "000001_image.png")["commit"] == commit  # the Hub commit in each mark
    assert verify(run.output_path / "000001_image.png", generators=g).status == "identical"


def test_diffusers_cli_dataloader_and_inputs(hub, ddpm_files, tmp_path, capsys):
    commit = hub.add(DDPM_REPO, ddpm_files)
    cat = catalog_for(tmp_path, **{"00290_TINY_DDPM": hub_entry(DDPM_REPO, commit, "diffusers", [IMG16],
                                                                 num_inference_steps=3)})
    g = Generators(config_file=str(cat))
    expected = g.generate("00290", num_samples=4, save_images=False, seed=3)
    out = tmp_path / "cli"
    assert cli_main(["generate", "00290", "--config", str(cat), "-n", "4", "-o", str(out), "--seed", "3",
                     "--arg", "num_inference_steps=3", "--batch-size", "3"]) == 0
    from PIL import Image

    assert np.array_equal(np.asarray(Image.open(out / "000002_image.png")), expected[2])
    loader = g.get_as_torch_dataloader("00290", num_samples=4, batch_size=2, seed=3, shuffle=False)
    first = next(iter(loader))
    image = first["sample"] if isinstance(first, dict) else first[0]
    assert tuple(image.shape)[0] == 2
    with pytest.raises(InvalidArgumentError, match="takes no input 'colour'"):
        g.generate("00290", num_samples=1, save_images=False, seed=0, colour=3)
    assert cli_main(["search", "hub", "--config", str(cat)]) == 0
    assert "00290_TINY_DDPM" in capsys.readouterr().out


# ---------------------------------------------------------------------------------------------- MONAI bundles
def test_monai_bundle_generates_through_its_scripts(hub, bundle2d, tmp_path):
    commit = hub.add(BUNDLE_REPO, bundle2d)
    entry = hub_entry(BUNDLE_REPO, commit, "monai-bundle", [IMG16], num_inference_steps=2, contrast=1.0)
    cat = catalog_for(tmp_path, **{"00291_TINY_BUNDLE": entry})
    g = Generators(config_file=str(cat))
    a = g.generate("00291", num_samples=3, save_images=False, seed=1, batch_size=3)
    b = Generators(config_file=str(cat)).generate("00291", num_samples=3, save_images=False, seed=1, batch_size=1)
    assert a[0].shape == (16, 16) and a[0].dtype == np.uint8
    assert all(np.array_equal(x, y) for x, y in zip(a, b))
    assert not np.array_equal(a[0], a[1])
    # an input replaces the bundle item of that name (and what is computed from it)
    dim = g.generate("00291", num_samples=1, save_images=False, seed=1, contrast=0.0)
    assert np.all(dim[0] == 128)
    with pytest.raises(InvalidArgumentError, match="takes no input .brightness."):
        g.generate("00291", num_samples=1, save_images=False, seed=1, brightness=2)
    fetched = {path.rsplit("/", 1)[1] for _, path, _ in hub.requests("/resolve/")}
    assert "model.ts" not in fetched and "sampler.py" in fetched
    assert "scripts" not in sys.modules  # imported under a private name, never as `scripts`


def test_monai_volume_bundle_writes_nifti_with_spacing(hub, tmp_path):
    nib = pytest.importorskip("nibabel")
    commit = hub.add(VOLUME_REPO, bundle_files(tmp_path, 3))
    cat = catalog_for(tmp_path, **{"00292_TINY_VOLUME": hub_entry(VOLUME_REPO, commit, "monai-bundle", [VOL8],
                                                                   num_inference_steps=2)})
    run = Generators(config_file=str(cat)).generate("00292", num_samples=2, output_path=tmp_path / "vol", seed=0)
    image = nib.load(run.output_path / "000001_volume.nii.gz")
    assert image.shape == (8, 8, 8) and np.allclose(image.header.get_zooms(), (1.5, 1.5, 2.0))
    assert float(np.abs(np.asarray(image.dataobj)).max()) <= 1.0


def test_bundle_provenance_records_versions_and_what_is_not_applied(hub, bundle2d, tmp_path, caplog):
    monai = pytest.importorskip("monai")
    import huggingface_hub

    commit = hub.add(BUNDLE_REPO, bundle2d)
    entry = hub_entry(BUNDLE_REPO, commit, "monai-bundle", [IMG16], num_inference_steps=2)
    cat = catalog_for(tmp_path, **{"00291_TINY_BUNDLE": entry})
    with caplog.at_level("WARNING", logger="medhub"):
        run = Generators(config_file=str(cat)).generate("00291", num_samples=1, output_path=tmp_path / "o", seed=0)
    assert "does not apply the bundle's own post-processing and writing (saver)" in caplog.text  # never silent
    prov = json.loads((run.output_path / "provenance.json").read_text())
    from importlib.metadata import version

    assert prov["adapter"]["versions"] == {"monai": monai.__version__, "huggingface_hub": huggingface_hub.__version__,
                                           "torch": version("torch"), "bundle": "0.1.0"}  # the bundle's metadata version
    assert prov["adapter"]["bundle_not_applied"] == ["saver"]
    caplog.clear()
    entry["execution"]["adapter"] = {"not_applied": ["saver"]}  # checked by the entry's author: no warning
    cat = catalog_for(tmp_path, **{"00291_TINY_BUNDLE": entry})
    with caplog.at_level("WARNING", logger="medhub"):
        Generators(config_file=str(cat)).generate("00291", num_samples=1, save_images=False, seed=0)
    assert "post-processing" not in caplog.text


def test_inputs_a_bundle_does_not_take_are_refused(hub, bundle2d, tmp_path, capsys):
    commit = hub.add(BUNDLE_REPO, bundle2d)
    cat = catalog_for(tmp_path, **{"00291_TINY_BUNDLE": hub_entry(BUNDLE_REPO, commit, "monai-bundle", [IMG16],
                                                                   num_inference_steps=2)})
    g = Generators(config_file=str(cat))
    assert g.get_model_executor("00291").prepare().input_names() == ["contrast", "num_inference_steps"]
    # latent_shape only shapes the noise medhub draws; device and the networks are not inputs either
    for arg in ("latent_shape=[1,32,32]", "device=cpu", "network_def=1"):
        code = cli_main(["generate", "00291", "--config", str(cat), "-n", "1", "-o", str(tmp_path / "o"), "--arg", arg])
        err = capsys.readouterr().err
        assert code == 2 and "takes no input" in err and "its inputs: contrast, num_inference_steps" in err, err
    with pytest.raises(InvalidArgumentError, match="takes no input 'latent_shape'; its inputs: contrast, num_inference"):
        g.generate("00291", num_samples=1, save_images=False, seed=0, latent_shape=[1, 32, 32])
    assert cli_main(["generate", "00291", "--config", str(cat), "-n", "1", "-o", str(tmp_path / "ok"), "--arg",
                     "contrast=0.5"]) == 0


def test_diffusers_latents_are_not_an_input(hub, ddpm_files, tmp_path):
    commit = hub.add(DDPM_REPO, ddpm_files)
    cat = catalog_for(tmp_path, **{"00290_TINY_DDPM": hub_entry(DDPM_REPO, commit, "diffusers", [IMG16])})
    g = Generators(config_file=str(cat))
    assert g.get_model_executor("00290").prepare().input_names() == ["num_inference_steps"]
    with pytest.raises(InvalidArgumentError, match="takes no input 'latents'; its inputs: num_inference_steps"):
        g.generate("00290", num_samples=1, save_images=False, seed=0, latents=np.zeros((1, 1, 16, 16)))


def old_generative_keys(state: dict) -> dict:
    """A DiffusionModelUNet state_dict under the key names of MONAI GenerativeAI (what MONAI's
    ``load_old_state_dict`` renames: attention q/k/v and projections, cross-attention outputs, and
    the upsampling convolutions, which were ``conv`` before they became ``postconv``)."""
    old = {}
    for key, value in state.items():
        for new, was in ((".attn.to_q.", ".to_q."), (".attn.to_k.", ".to_k."), (".attn.to_v.", ".to_v."),
                         (".attn.out_proj.", ".proj_attn."), ("postconv", "conv")):
            key = key.replace(new, was)
        if "transformer_blocks" in key and ".out_proj." in key:
            key = key.replace(".out_proj.", ".to_out.0.")
        old[key] = value
    return old


def test_old_generative_checkpoints_load_mapped_to_the_device(hub, tmp_path, monkeypatch):
    pytest.importorskip("monai")
    from monai.networks.nets import DiffusionModelUNet

    files = bundle_files(tmp_path, 2)
    inference = json.loads(files["configs/inference.json"])
    inference["network_def"].update(attention_levels=[False, True], num_head_channels=8)
    torch.manual_seed(3)
    state = DiffusionModelUNet(**{k: v for k, v in inference["network_def"].items() if k != "_target_"}).state_dict()
    old = old_generative_keys(state)
    assert set(old) != set(state) and any("proj_attn" in k for k in old) and any(".to_q." in k for k in old)
    new_path, old_path = tmp_path / "new.pt", tmp_path / "old.pt"
    torch.save(state, new_path)
    torch.save(old, old_path)
    runs, loads = {}, []
    real_load = torch.load

    def recording_load(*args, **kwargs):
        loads.append(kwargs)
        return real_load(*args, **kwargs)

    monkeypatch.setattr(torch, "load", recording_load)
    for name, weights, call in (("new", new_path, "load_state_dict"), ("old", old_path, "load_old_state_dict")):
        inference["load"] = f"$@network_def.{call}(torch.load(@load_path))"  # as the published bundles: no map_location
        repo = f"medhub-test/{name}-keys"
        commit = hub.add(repo, dict(files, **{"configs/inference.json": json.dumps(inference).encode(),
                                               "models/model.pt": weights.read_bytes()}))
        entry = hub_entry(repo, commit, "monai-bundle", [IMG16], num_inference_steps=2)
        if name == "new":  # a catalog's own item that loads weights goes through medhub's loader too
            entry["execution"]["adapter"] = {"overrides": {"load": inference["load"]}}
        cat = catalog_for(tmp_path, **{"00291_TINY_BUNDLE": entry})
        loads.clear()
        runs[name] = Generators(config_file=str(cat)).generate("00291", num_samples=2, save_images=False, seed=5,
                                                               device="cpu")
        assert loads and all(k["map_location"] == torch.device("cpu") and k["weights_only"] is True for k in loads)
    assert all(np.array_equal(a, b) for a, b in zip(runs["new"], runs["old"]))
    assert not np.array_equal(runs["old"][0], runs["old"][1])


def test_hub_draft_from_the_hub_fetches_configs_only(hub, bundle2d, tmp_path, capsys):
    commit = hub.add(BUNDLE_REPO, bundle2d)
    assert cli_main(["hub", "draft", f"hf://{BUNDLE_REPO}@{commit}"]) == 1  # it runs the repository's configs
    assert "--trust-remote-code" in capsys.readouterr().err and not hub.requests()
    assert cli_main(["hub", "draft", f"hf://{BUNDLE_REPO}@{commit}", "--trust-remote-code", "--check"]) == 0
    doc = json.loads(capsys.readouterr().out)
    entry = doc["entry"]["00299_DRAFT"]
    assert entry["execution"]["revision"] == commit and "sample" not in entry["execution"]["adapter"]  # its own
    assert entry["execution"]["outputs"][0]["shape"] == [16, 16] and doc["review"]["not_applied"] == ["saver"]
    assert entry["execution"]["adapter"]["value_range"] == [-1.0, 1.0] and entry["selection"]["license"] == "Apache-2.0"
    fetched = {path.split(f"/resolve/{commit}/", 1)[1] for _, path, _ in hub.requests("/resolve/")}
    assert "configs/inference.json" in fetched and not [f for f in fetched if f.startswith("models/")]  # no weights


def test_bundle_required_packages_give_the_pip_command(hub, bundle2d, tmp_path):
    files = dict(bundle2d)
    meta = json.loads(files["configs/metadata.json"])
    meta["required_packages_version"] = {"medhub-no-such-dist": "1.2.3", "nibabel": "5.0.0"}
    files["configs/metadata.json"] = json.dumps(meta).encode()
    commit = hub.add(BUNDLE_REPO, files)
    cat = catalog_for(tmp_path, **{"00291_TINY_BUNDLE": hub_entry(BUNDLE_REPO, commit, "monai-bundle", [IMG16])})
    with pytest.raises(DependencyError, match=r"pip install medhub-no-such-dist==1\.2\.3"):
        Generators(config_file=str(cat)).generate("00291", num_samples=1, save_images=False, seed=0)


# ---------------------------------------------------------------------------------------------- pins, integrity
def test_unpinned_revision_needs_trust_and_keeps_the_trusted_commit(hub, bundle2d, tmp_path):
    first = hub.add(BUNDLE_REPO, bundle2d)
    cat = catalog_for(tmp_path, **{"00291_TINY_BUNDLE": hub_entry(BUNDLE_REPO, "main", "monai-bundle", [IMG16],
                                                                   num_inference_steps=2)})
    with pytest.raises(UntrustedPackageError, match="trust_remote_code"):
        Generators(config_file=str(cat)).generate("00291", num_samples=1, save_images=False, seed=0)
    a = Generators(config_file=str(cat)).generate("00291", num_samples=1, save_images=False, seed=0,
                                                   trust_remote_code=True)
    changed = dict(bundle2d, **{"configs/extra.json": b"{}"})
    assert hub.add(BUNDLE_REPO, changed) != first  # main moves on
    b = Generators(config_file=str(cat)).generate("00291", num_samples=1, save_images=False, seed=0,
                                                   trust_remote_code=True)
    assert np.array_equal(a[0], b[0])
    record = json.loads((HubSource().trust_path("00291_TINY_BUNDLE")).read_text())
    assert record["commit"] == first


def test_snapshot_is_checked_before_every_use(hub, bundle2d, tmp_path):
    commit = hub.add(BUNDLE_REPO, bundle2d)
    cat = catalog_for(tmp_path, **{"00291_TINY_BUNDLE": hub_entry(BUNDLE_REPO, commit, "monai-bundle", [IMG16],
                                                                   num_inference_steps=2)})
    g = Generators(config_file=str(cat))
    g.generate("00291", num_samples=1, save_images=False, seed=0)
    folder = g.get_model_executor("00291").package_folder
    before = len(hub.requests())
    Generators(config_file=str(cat)).generate("00291", num_samples=1, save_images=False, seed=0)
    assert len(hub.requests()) == before  # a verified snapshot is used without asking the Hub
    script = folder / "scripts" / "sampler.py"
    text = script.read_text()
    script.unlink()  # Hugging Face's cache links to blobs: replace the link by an edited file
    script.write_text(text + "\nimport os  # tampered\n")
    with pytest.raises(IntegrityError, match=r"scripts/sampler\.py in .* changed since medhub verified it"):
        Generators(config_file=str(cat)).generate("00291", num_samples=1, save_images=False, seed=0)


def test_pinned_tree_digest_and_damaged_downloads(hub, ddpm_files, tmp_path):
    commit = hub.add(DDPM_REPO, ddpm_files)
    entry = hub_entry(DDPM_REPO, commit, "diffusers", [IMG16], num_inference_steps=2)
    entry["execution"]["sha256"] = "0" * 64
    cat = catalog_for(tmp_path, **{"00290_TINY_DDPM": entry})
    with pytest.raises(IntegrityError, match="do not match the sha256 pinned in the catalog"):
        Generators(config_file=str(cat)).generate("00290", num_samples=1, save_images=False, seed=0)
    # the Hub serving other bytes than its listing says: downloaded again once, then refused
    import shutil

    shutil.rmtree(tmp_path / "hf_home" / "hub")
    hub.corrupt[(DDPM_REPO, "scheduler/scheduler_config.json")] = b'{"_class_name": "DDPMScheduler"}'
    entry["execution"].pop("sha256")
    cat = catalog_for(tmp_path, **{"00290_TINY_DDPM": entry})
    with pytest.raises(IntegrityError, match="scheduler_config.json does not match the Hub's git id"):
        Generators(config_file=str(cat)).generate("00290", num_samples=1, save_images=False, seed=0)
    assert len([p for _, p, _ in hub.requests("scheduler_config.json")]) >= 2  # fetched again once


# ---------------------------------------------------------------------------------------------- one clear line
@pytest.mark.parametrize("case", ["revision", "repo", "files", "gated"])
def test_hub_problems_give_one_line(hub, ddpm_files, tmp_path, capsys, case):
    files = dict(ddpm_files)
    revision = hub.add(DDPM_REPO, files, token="hf_secret_token" if case == "gated" else None)
    repo = DDPM_REPO
    if case == "revision":
        revision = "f" * 40
    elif case == "repo":
        repo = "medhub-test/no-such-model"
    elif case == "files":
        files.pop("model_index.json")
        revision = hub.add(DDPM_REPO, files)
    cat = catalog_for(tmp_path, **{"00290_TINY_DDPM": hub_entry(repo, revision, "diffusers", [IMG16])})
    code = cli_main(["generate", "00290", "--config", str(cat), "-n", "1", "-o", str(tmp_path / "o")])
    err = capsys.readouterr().err.strip()
    assert code != 0 and len(err.splitlines()) == 1, err
    expected = {"revision": "does not exist", "repo": "was not found", "files": "has no model_index.json",
                "gated": "gated or private"}[case]
    assert expected in err and "hf_secret_token" not in err
    if case == "gated":  # with the token it works, and the token is sent only to the Hub
        os.environ["HF_TOKEN"] = "hf_secret_token"
        try:
            assert cli_main(["generate", "00290", "--config", str(cat), "-n", "1", "-o", str(tmp_path / "o2"),
                             "--arg", "num_inference_steps=2"]) == 0
        finally:
            del os.environ["HF_TOKEN"]
        assert all(sent for _, _, sent in hub.requests()[-3:])


def test_offline_without_a_verified_snapshot(hub, ddpm_files, tmp_path, monkeypatch, capsys):
    commit = hub.add(DDPM_REPO, ddpm_files)
    cat = catalog_for(tmp_path, **{"00290_TINY_DDPM": hub_entry(DDPM_REPO, commit, "diffusers", [IMG16],
                                                                 num_inference_steps=2)})
    monkeypatch.setenv("MEDHUB_OFFLINE", "1")
    assert cli_main(["generate", "00290", "--config", str(cat), "-n", "1", "-o", str(tmp_path / "o")]) != 0
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "offline mode is on" in err and "medhub prefetch 00290_TINY_DDPM" in err
    assert hub.requests() == []  # no connection of any kind
    monkeypatch.delenv("MEDHUB_OFFLINE")
    online = Generators(config_file=str(cat)).generate("00290", num_samples=2, save_images=False, seed=0)
    import huggingface_hub.constants as constants

    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)  # huggingface_hub's own switch works too
    before = len(hub.requests())
    offline = Generators(config_file=str(cat)).generate("00290", num_samples=2, save_images=False, seed=0)
    assert len(hub.requests()) == before and np.array_equal(online[1], offline[1])


def test_cache_rm_forgets_hub_records(hub, bundle2d, tmp_path, capsys):
    cat = catalog_for(tmp_path, **{"00291_TINY_BUNDLE": hub_entry(BUNDLE_REPO, hub.add(BUNDLE_REPO, bundle2d),
                                                                   "monai-bundle", [IMG16], num_inference_steps=2)})
    Generators(config_file=str(cat)).prefetch(["00291"])
    assert list(HubSource().records.glob("00291_TINY_BUNDLE/*.json"))
    assert cli_main(["cache", "rm", "00291_TINY_BUNDLE", "--config", str(cat)]) == 0
    assert not list(HubSource().records.glob("00291_TINY_BUNDLE/*.json"))


def test_hf_endpoint_and_home_are_honoured_in_a_fresh_process(hub, bundle2d, tmp_path):
    """A new process configured only by environment variables (HF_ENDPOINT, HF_HOME, MEDHUB_HOME)."""
    commit = hub.add(BUNDLE_REPO, bundle2d)
    cat = catalog_for(tmp_path, **{"00291_TINY_BUNDLE": hub_entry(BUNDLE_REPO, commit, "monai-bundle", [IMG16])})
    env = dict(os.environ, HF_HOME=str(tmp_path / "fresh_hf"), MEDHUB_HOME=str(tmp_path / "fresh_home"))
    code = "import sys; from medhub.cli import main; sys.exit(main(sys.argv[1:]))"
    done = subprocess.run([sys.executable, "-c", code, "prefetch", "00291", "--config", str(cat)],
                          capture_output=True, text=True, env=env, timeout=300)
    assert done.returncode == 0, done.stderr
    snapshots = tmp_path / "fresh_hf" / "hub" / "models--medhub-test--tiny-bundle" / "snapshots" / commit
    assert (snapshots / "configs" / "inference.json").is_file()
    assert (tmp_path / "fresh_home" / "hub" / "00291_TINY_BUNDLE" / f"{commit}.json").is_file()


# ---------------------------------------------------------------------------------------------- contribute
HUB_FIELDS = ["--field", "description.title=Tiny DDPM of chest X-rays", "--field", "description.authors=A. Author",
              "--field", "selection.modality=X-ray", "--field", "selection.organ=chest", "--field",
              "selection.license=MIT"]


def test_contribute_proposes_a_hub_model_as_an_issue(tmp_path, monkeypatch, capsys):
    pytest.importorskip("github")
    from fake_publish import FakeGitHub

    gh = FakeGitHub().start()
    try:
        monkeypatch.setenv("GITHUB_TOKEN", gh.token)
        monkeypatch.setenv("MEDHUB_GITHUB_URL", gh.api)
        commit = "c" * 40
        argv = ["contribute", "00299_TINY_DDPM_CXR", "--hub", "owner/tiny-ddpm", "--revision", commit, "--interface",
                "diffusers", *HUB_FIELDS]
        assert cli_main(argv) == 0
        out = capsys.readouterr().out
        assert "issue: https://github.example/medhub-org/medhub/issues/1" in out
        (issue,) = gh.issues
        assert issue["title"] == "Model contribution: 00299_TINY_DDPM_CXR (Hugging Face Hub: owner/tiny-ddpm)"
        assert f"`{commit}` (a commit: pinned)" in issue["body"] and "No package archive" in issue["body"]
        entry = json.loads(issue["body"].split("```json", 1)[1].split("```", 1)[0])["00299_TINY_DDPM_CXR"]
        assert entry["execution"]["package_link"] == "hf://owner/tiny-ddpm" and entry["execution"]["revision"] == commit
        assert "package_name" not in entry["execution"] and "Hugging Face Hub" in entry["selection"]["tags"]
        assert not [r for r in gh.log if "zenodo" in r["path"]]
        assert cli_main(argv) == 0 and len(gh.issues) == 1  # an open issue is not opened twice
        assert "(already open)" in capsys.readouterr().out
    finally:
        gh.stop()


def test_contribute_hub_dry_run_and_bad_input(capsys):
    argv = ["contribute", "00299_TINY", "--hub", "owner/tiny", "--revision", "main", "--interface", "monai-bundle",
            "--dry-run", "--json", *HUB_FIELDS]
    assert cli_main(argv) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["pinned"] is False and doc["issue_url"] is None
    assert doc["entry"]["00299_TINY"]["execution"]["interface"] == "monai-bundle"
    assert cli_main(["contribute", "00299_TINY", "--hub", "not a repo", "--revision", "main", "--interface",
                     "diffusers", "--dry-run", *HUB_FIELDS]) != 0
    assert "is not a Hugging Face Hub repository id" in capsys.readouterr().err
    assert cli_main(["contribute", "00299_TINY", "--hub", "owner/tiny", "--revision", "main", "--interface",
                     "diffusers", "--dry-run"]) != 0
    assert "Required metadata is missing" in capsys.readouterr().err
    assert cli_main(["contribute", "00201_OTHER", "--hub", "owner/tiny", "--revision", "main", "--interface",
                     "diffusers", "--dry-run", *HUB_FIELDS]) != 0
    assert "already taken" in capsys.readouterr().err


# ---------------------------------------------------------------------------------------------- extras, catalog
def test_missing_extras_give_the_install_command(hub, ddpm_files, tmp_path, monkeypatch):
    commit = hub.add(DDPM_REPO, ddpm_files)
    cat = catalog_for(tmp_path, **{"00290_TINY_DDPM": hub_entry(DDPM_REPO, commit, "diffusers", [IMG16])})
    with monkeypatch.context() as m:
        m.setitem(sys.modules, "huggingface_hub", None)  # as if huggingface_hub were not installed
        with pytest.raises(DependencyError, match=r"pip install 'medhub\[hf\]'"):
            HubSource().fetch("00290_TINY_DDPM", {"package_link": f"hf://{DDPM_REPO}", "revision": commit,
                                                  "interface": "diffusers"})
    monkeypatch.setitem(sys.modules, "diffusers", None)  # as if diffusers were not installed
    with pytest.raises(DependencyError, match=r"pip install 'medhub\[hf\]'"):
        Generators(config_file=str(cat)).generate("00290", num_samples=1, save_images=False, seed=0)


def test_catalog_hub_models_are_searched_and_ranked():
    g = Generators()
    hub_ids = {m for m, e in g.config_manager.config_dict.items()
               if e["execution"]["package_link"].startswith("hf://")}
    assert {"00201_LDM_BRAIN_MRI_T1_UKB_MONAI", "00205_DDPM_CHEST_XRAY_COVID_HF"} <= hub_ids
    found = [m.model_id for m in g.find_model(["brain", "mri", "latent diffusion"], "AND")]
    assert "00201_LDM_BRAIN_MRI_T1_UKB_MONAI" in found
    assert "00205_DDPM_CHEST_XRAY_COVID_HF" in [m.model_id for m in g.find_model(["chest", "x-ray", "ddpm"], "AND")]
    ranked = [r["model_id"] for r in g.rank_models_by_performance(metric="MS-SSIM")]  # only 00201 reports it
    assert ranked[0] == "00201_LDM_BRAIN_MRI_T1_UKB_MONAI"
    for model_id in hub_ids:  # every Hub entry builds an executor; pinned ones name a commit
        ex = g.get_model_executor(model_id)
        assert ex.is_native and ex.interface in ("diffusers", "monai-bundle")


# ---------------------------------------------------------------------------------------------- shards and Ray
def _sample_files(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(Path(folder).glob("0*_*"))}


def test_two_shards_of_a_bundle_equal_one_run(hub, bundle2d, tmp_path, monkeypatch):
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "1796655600")  # one time in the marks of the runs compared
    commit = hub.add(BUNDLE_REPO, bundle2d)
    cat = catalog_for(tmp_path, **{"00291_TINY_BUNDLE": hub_entry(BUNDLE_REPO, commit, "monai-bundle", [IMG16],
                                                                   num_inference_steps=2)})
    g = Generators(config_file=str(cat))
    single = g.generate("00291", num_samples=5, output_path=tmp_path / "single", seed=4, batch_size=2)
    for k in range(2):
        g.generate("00291", num_samples=5, output_path=tmp_path / "sharded", seed=4, batch_size=3, shard=f"{k}/2")
    assert _sample_files(single.output_path) == _sample_files(tmp_path / "sharded")
    assert len(_sample_files(tmp_path / "sharded")) == 5


@pytest.mark.slow
def test_ray_workers_run_a_hub_pipeline(hub, ddpm_files, tmp_path, monkeypatch):
    ray = pytest.importorskip("ray")
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "1700000000")  # one `created` in the marks of both runs
    commit = hub.add(DDPM_REPO, ddpm_files)
    cat = catalog_for(tmp_path, **{"00290_TINY_DDPM": hub_entry(DDPM_REPO, commit, "diffusers", [IMG16],
                                                                 num_inference_steps=2)})
    g = Generators(config_file=str(cat))
    single = g.generate("00290", num_samples=6, output_path=tmp_path / "single", seed=2)
    env = {k: os.environ[k] for k in ("HF_ENDPOINT", "HF_HOME", "MEDHUB_HOME", "SOURCE_DATE_EPOCH")}
    if ray.is_initialized():  # pragma: no cover - only when something else left Ray running
        ray.shutdown()
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, runtime_env={"env_vars": env})
    try:
        run = g.generate_on_ray("00290", 6, tmp_path / "ray", seed=2, num_workers=2, chunk_size=3, progress=False)
    finally:
        ray.shutdown()
    assert _sample_files(run.output_path) == _sample_files(single.output_path)


def test_catalog_schema_and_links_of_hub_entries(tmp_path):
    from medhub.config import validate_catalog
    from medhub.errors import CatalogError, PackageError
    from medhub.execution.hub import HubLink

    bad = hub_entry("owner/x", "main", "diffusers", [IMG16])
    bad["execution"]["package_link"] = "models/x"  # an adapter kind runs only from the Hub
    with pytest.raises(CatalogError, match=r"package_link must match pattern \^hf://"):
        validate_catalog({"schema_version": 1, "catalog_version": "1", "models": {"00290_X": bad}})
    assert HubLink.of({"package_link": "hf://a/b"}).revision == "main"
    assert HubLink.of({"package_link": "hf://a/b", "revision": "0" * 40}).pinned
    assert not HubLink.of({"package_link": "hf://a/b", "revision": "v1.0"}).pinned
    for link in ("hf://a", "hf://a/b/c", "hf://../b"):
        with pytest.raises(PackageError, match="must be hf://<owner>/<repo>"):
            HubLink.of({"package_link": link}, "00290_X")


# ---------------------------------------------------------------------------------------------- issue 31: trust at the edges
def snapshot(tmp_path: Path, repo: str, commit: str) -> Path:
    """Where Hugging Face's cache (the ``hub`` fixture's HF_HOME) keeps ``repo`` at ``commit``."""
    return tmp_path / "hf_home" / "hub" / f"models--{repo.replace('/', '--')}" / "snapshots" / commit


def _rewrite_same_length(path: Path, new: bytes) -> None:
    """Rewrite ``path`` (through Hugging Face's link to its blob) to ``new`` padded to the same length,
    then put its times back with os.utime, as an attacker covering their tracks would."""
    st = path.stat()
    assert len(new) <= st.st_size
    path.write_bytes(new + b" " * (st.st_size - len(new)))
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert path.stat().st_size == st.st_size and path.stat().st_mtime_ns == st.st_mtime_ns


def test_31_1_bundle_config_rewritten_to_the_same_length_is_refused_and_repaired(hub, bundle2d, tmp_path, capsys,
                                                                                monkeypatch):
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "1796655600")  # one time in the marks of the runs compared
    commit = hub.add(BUNDLE_REPO, bundle2d)
    cat = catalog_for(tmp_path, **{"00291_TINY_BUNDLE": hub_entry(BUNDLE_REPO, commit, "monai-bundle", [IMG16],
                                                                   num_inference_steps=2)})
    args = ["--config", str(cat), "-n", "1", "--seed", "0", "--arg", "num_inference_steps=2"]
    assert cli_main(["generate", "00291", *args, "-o", str(tmp_path / "first")]) == 0
    config = snapshot(tmp_path, BUNDLE_REPO, commit) / "configs" / "inference.json"
    marker = tmp_path / "pwned"
    doc = json.loads(config.read_bytes())
    doc["contrast"] = f"$__import__('os').system('touch {marker}') + 1.0"  # runs, and still returns 1.0
    _rewrite_same_length(config, json.dumps(doc, separators=(",", ":")).encode())
    capsys.readouterr()
    assert cli_main(["generate", "00291", *args, "-o", str(tmp_path / "second")]) != 0
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "configs/inference.json" in err and "changed" in err, err
    assert "`medhub prefetch 00291_TINY_BUNDLE --force`" in err
    assert not marker.exists() and not (tmp_path / "second").exists()
    # the fix the message gives repairs the snapshot
    assert cli_main(["prefetch", "00291", "--force", "--config", str(cat)]) == 0
    assert b"pwned" not in config.read_bytes()
    assert cli_main(["generate", "00291", *args, "-o", str(tmp_path / "third")]) == 0 and not marker.exists()
    assert (tmp_path / "first" / "000000_image.png").read_bytes() == (tmp_path / "third" / "000000_image.png").read_bytes()


def test_31_1_diffusers_unet_config_rewritten_to_the_same_length_is_refused(hub, ddpm_files, tmp_path):
    commit = hub.add(DDPM_REPO, ddpm_files)
    cat = catalog_for(tmp_path, **{"00290_TINY_DDPM": hub_entry(DDPM_REPO, commit, "diffusers", [IMG16],
                                                                 num_inference_steps=2)})
    Generators(config_file=str(cat)).generate("00290", num_samples=1, save_images=False, seed=0)
    config = snapshot(tmp_path, DDPM_REPO, commit) / "unet" / "config.json"
    text = config.read_bytes()
    assert b'"silu"' in text
    _rewrite_same_length(config, text.replace(b'"silu"', b'"relu"'))
    with pytest.raises(IntegrityError, match=r"unet/config\.json in .* changed since medhub verified it"):
        Generators(config_file=str(cat)).generate("00290", num_samples=1, save_images=False, seed=0)


def test_31_1_bundle_weights_load_as_data_only(hub, bundle2d, tmp_path):
    files = dict(bundle2d)  # a config asking torch.load for a full unpickle gets weights_only=True all the same
    doc = json.loads(files["configs/inference.json"])
    doc["load"] = "$@network_def.load_state_dict(torch.load(@load_path, weights_only=False))"
    files["configs/inference.json"] = json.dumps(doc).encode()
    seen = []
    real_load = torch.load

    def spy(*args, **kwargs):
        seen.append((kwargs.get("weights_only"), os.environ.get("TORCH_FORCE_WEIGHTS_ONLY_LOAD")))
        return real_load(*args, **kwargs)

    cat = catalog_for(tmp_path, **{"00291_TINY_BUNDLE": hub_entry(BUNDLE_REPO, hub.add(BUNDLE_REPO, files),
                                                                   "monai-bundle", [IMG16], num_inference_steps=2)})
    torch.load = spy
    try:
        Generators(config_file=str(cat)).generate("00291", num_samples=1, save_images=False, seed=0)
    finally:
        torch.load = real_load
    # weights only, and the user's environment untouched (no process-wide switch, not even for the call)
    assert seen == [(True, None)] and "TORCH_FORCE_WEIGHTS_ONLY_LOAD" not in os.environ


def test_31_2_catalog_pins_are_checked_against_the_record_on_every_run(hub, ddpm_files, tmp_path):
    commit = hub.add(DDPM_REPO, ddpm_files)
    entry = hub_entry(DDPM_REPO, commit, "diffusers", [IMG16], num_inference_steps=2)
    cat = catalog_for(tmp_path, **{"00290_TINY_DDPM": entry})
    Generators(config_file=str(cat)).generate("00290", num_samples=1, save_images=False, seed=0)
    entry["execution"]["sha256"] = "0" * 64  # a record exists now: the pin must still hold
    cat = catalog_for(tmp_path, **{"00290_TINY_DDPM": entry})
    with pytest.raises(IntegrityError, match="do not match the sha256 pinned in the catalog"):
        Generators(config_file=str(cat)).generate("00290", num_samples=1, save_images=False, seed=0)
    # the right tree digest runs; weights changed together with a consistently rewritten record do not
    record_path = HubSource().record_path("00290_TINY_DDPM", commit)
    record = json.loads(record_path.read_text())
    entry["execution"]["sha256"] = record["tree_sha256"]
    cat = catalog_for(tmp_path, **{"00290_TINY_DDPM": entry})
    Generators(config_file=str(cat)).generate("00290", num_samples=1, save_images=False, seed=0)
    weights = snapshot(tmp_path, DDPM_REPO, commit) / "unet" / "diffusion_pytorch_model.safetensors"
    data = bytearray(weights.read_bytes())
    data[-1] ^= 1
    weights.unlink()
    weights.write_bytes(bytes(data))
    st = weights.stat()
    record["files"]["unet/diffusion_pytorch_model.safetensors"] = [hashlib.sha256(data).hexdigest(), st.st_size,
                                                                    st.st_mtime_ns]
    from medhub.execution.tree import FileRecord, manifest_digest

    record["tree_sha256"] = manifest_digest({r: FileRecord(*e) for r, e in record["files"].items()})[0]
    record_path.write_text(json.dumps(record))
    with pytest.raises(IntegrityError, match="do not match the sha256 pinned in the catalog"):
        Generators(config_file=str(cat)).generate("00290", num_samples=1, save_images=False, seed=0)
    # a record of another commit, or of another repository, is not the pinned one
    record["commit"] = "e" * 40
    record_path.write_text(json.dumps(record))
    with pytest.raises(IntegrityError, match="but the catalog names"):
        Generators(config_file=str(cat)).generate("00290", num_samples=1, save_images=False, seed=0)


def test_31_8_hf_hub_offline_set_before_import_gives_the_offline_message(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HF_", "MEDHUB_"))}
    env.update(HF_HUB_OFFLINE="1", HF_HOME=str(tmp_path / "hf"), MEDHUB_HOME=str(tmp_path / "home"),
               HF_ENDPOINT="http://127.0.0.1:9")  # were a request made, it would fail at once, on this machine
    code = "import sys; from medhub.cli import main; sys.exit(main(sys.argv[1:]))"
    done = subprocess.run([sys.executable, "-c", code, "generate", "205", "-n", "1", "-o", str(tmp_path / "o")],
                          capture_output=True, text=True, env=env, timeout=300, cwd=Path(__file__).parents[1])
    err = done.stderr.strip()
    assert done.returncode != 0 and len(err.splitlines()) == 1, err
    assert "offline mode is on" in err and "run `medhub prefetch 00205_DDPM_CHEST_XRAY_COVID_HF`" in err, err


def test_31_9_a_copied_cache_works_offline_at_another_path(hub, bundle2d, tmp_path):
    import shutil

    commit = hub.add(BUNDLE_REPO, bundle2d)
    cat = catalog_for(tmp_path, **{"00291_TINY_BUNDLE": hub_entry(BUNDLE_REPO, commit, "monai-bundle", [IMG16],
                                                                   num_inference_steps=2)})
    expected = Generators(config_file=str(cat)).generate("00291", num_samples=2, save_images=False, seed=5)
    # an air-gapped site copies HF_HOME and MEDHUB_HOME together, to other paths
    site = tmp_path / "air-gapped"
    shutil.copytree(tmp_path / "hf_home", site / "hf", symlinks=True)
    shutil.copytree(os.environ["MEDHUB_HOME"], site / "medhub", symlinks=True)
    shutil.rmtree(tmp_path / "hf_home")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HF_", "MEDHUB_"))}
    env.update(HF_HUB_OFFLINE="1", HF_HOME=str(site / "hf"), MEDHUB_HOME=str(site / "medhub"),
               HF_ENDPOINT="http://127.0.0.1:9")
    script = ("import sys, numpy as np; from medhub import Generators; "
              f"out = Generators(config_file={str(cat)!r}).generate('00291', num_samples=2, save_images=False, seed=5); "
              "np.save(sys.argv[1], np.stack(out))")
    done = subprocess.run([sys.executable, "-c", script, str(tmp_path / "copied.npy")], capture_output=True, text=True,
                          env=env, timeout=300, cwd=Path(__file__).parents[1])
    assert done.returncode == 0, done.stderr
    assert np.array_equal(np.load(tmp_path / "copied.npy"), np.stack(expected))


def test_31_10_cache_ls_and_verify_see_hub_snapshots(hub, bundle2d, tmp_path, capsys):
    commit = hub.add(BUNDLE_REPO, bundle2d)
    cat = catalog_for(tmp_path, **{"00291_TINY_BUNDLE": hub_entry(BUNDLE_REPO, commit, "monai-bundle", [IMG16])})
    Generators(config_file=str(cat)).prefetch(["00291"])
    assert cli_main(["cache", "ls"]) == 0
    out = capsys.readouterr().out
    assert "00291_TINY_BUNDLE" in out and str(snapshot(tmp_path, BUNDLE_REPO, commit)) in out, out
    assert "1 Hugging Face Hub snapshot(s)" in out
    assert cli_main(["cache", "verify"]) == 0 and "cache ok" in capsys.readouterr().out


def test_31_10_cache_verify_reports_a_tampered_snapshot_and_force_repairs_it(hub, ddpm_files, tmp_path, capsys):
    commit = hub.add(DDPM_REPO, ddpm_files)
    cat = catalog_for(tmp_path, **{"00290_TINY_DDPM": hub_entry(DDPM_REPO, commit, "diffusers", [IMG16],
                                                                 num_inference_steps=2)})
    Generators(config_file=str(cat)).prefetch(["00290"])
    weights = snapshot(tmp_path, DDPM_REPO, commit) / "unet" / "diffusion_pytorch_model.safetensors"
    data = bytearray(weights.read_bytes())
    data[-1] ^= 1
    _rewrite_same_length(weights, bytes(data))  # through the link: the blob itself changes
    capsys.readouterr()
    assert cli_main(["cache", "verify"]) == 1
    out = capsys.readouterr().out
    assert "hub snapshot 00290_TINY_DDPM" in out and "diffusion_pytorch_model.safetensors changed" in out
    assert "`medhub prefetch 00290_TINY_DDPM --force`" in out
    with pytest.raises(IntegrityError, match="changed since medhub verified it"):  # its ctime moved: hashed again
        HubSource().check("00290_TINY_DDPM", json.loads(HubSource().record_path("00290_TINY_DDPM", commit).read_text()))
    assert cli_main(["prefetch", "00290", "--force", "--config", str(cat)]) == 0
    assert cli_main(["cache", "verify"]) == 0
    Generators(config_file=str(cat)).generate("00290", num_samples=1, save_images=False, seed=0)


def test_31_1_a_config_changed_after_verification_is_refused_as_it_is_read(hub, bundle2d, tmp_path):
    commit = hub.add(BUNDLE_REPO, bundle2d)
    cat = catalog_for(tmp_path, **{"00291_TINY_BUNDLE": hub_entry(BUNDLE_REPO, commit, "monai-bundle", [IMG16],
                                                                   num_inference_steps=2)})
    g = Generators(config_file=str(cat))
    g.get_model_executor("00291").prepare()  # verified; the bundle is loaded later, at the first generate
    config = snapshot(tmp_path, BUNDLE_REPO, commit) / "configs" / "inference.json"
    _rewrite_same_length(config, config.read_bytes().replace(b'"contrast": 1.0', b'"contrast": 9.0'))
    with pytest.raises(IntegrityError, match=r"configs/inference\.json is not the file medhub verified"):
        g.generate("00291", num_samples=1, save_images=False, seed=0)
