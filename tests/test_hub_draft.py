"""``medhub hub draft``: a catalog entry drafted from a bundle's configs or a pipeline's model_index.json.

The repositories are small networks built here, laid out as a MONAI latent diffusion bundle (as the
model zoo's 2D BraTS bundle is: an autoencoder, a diffusion UNet, a DDIM scheduler, a ``scripts``
sampler whose ``run`` writes a file, no ``sample`` item) and as a diffusers folder; ``--from DIR``
means nothing is downloaded.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from conftest import write_catalog

from medhub import Generators
from medhub.cli import main as cli_main

torch = pytest.importorskip("torch")

COMMIT = "ab" * 20

SAMPLER = b'''
import numpy as np
import torch


class LDMSampler:
    """Denoise the latent, decode it; `run` writes the bundle's own file (what medhub does not apply)."""

    def sampling_fn(self, noise, autoencoder, diffusion, scheduler):
        latent = noise
        with torch.no_grad():
            for t in scheduler.timesteps:
                out = diffusion(latent, timesteps=torch.tensor((t,), device=noise.device).long())
                latent, _ = scheduler.step(out, t, latent)
            return autoencoder.decode_stage_2_outputs(latent)

    def run(self, noise, autoencoder, diffusion, scheduler, path):
        image = self.sampling_fn(noise, autoencoder, diffusion, scheduler)[0, 0].cpu().numpy().T[::-1, ::-1]
        np.save(path, image)
'''

AE = {"spatial_dims": 2, "in_channels": 1, "out_channels": 1, "latent_channels": 1, "channels": [8, 8],
      "num_res_blocks": 1, "norm_num_groups": 4, "attention_levels": [False, False],
      "with_encoder_nonlocal_attn": False, "with_decoder_nonlocal_attn": False}
UNET = {"spatial_dims": 2, "in_channels": 1, "out_channels": 1, "channels": [8, 8], "attention_levels": [False, False],
        "num_res_blocks": 1, "norm_num_groups": 4, "num_head_channels": 8}


def ldm_bundle(folder: Path, weights: bool = True) -> Path:
    """A small latent diffusion bundle in the layout of the model zoo's 2D BraTS bundle (16x16 images
    from an 8x8 latent), with random weights when ``weights``."""
    pytest.importorskip("monai")
    from monai.networks.nets import AutoencoderKL, DiffusionModelUNet

    inference = {
        "imports": ["$import torch", "$import os"],
        "bundle_root": ".",
        "output_dir": "$@bundle_root + '/output'",
        "device": "$torch.device('cuda:0' if torch.cuda.is_available() else 'cpu')",
        "latent_channels": 1,
        "latent_shape": ["@latent_channels", 8, 8],
        "autoencoder_def": {"_target_": "monai.networks.nets.AutoencoderKL", **AE},
        "network_def": {"_target_": "monai.networks.nets.DiffusionModelUNet", **UNET},
        "load_autoencoder": "$@autoencoder_def.load_state_dict(torch.load(@bundle_root + '/models/model_autoencoder.pt'))",
        "autoencoder": "$@autoencoder_def.to(@device)",
        "load_diffusion": "$@network_def.load_state_dict(torch.load(@bundle_root + '/models/model.pt'))",
        "diffusion": "$@network_def.to(@device)",
        "noise_scheduler": {"_target_": "monai.networks.schedulers.DDIMScheduler", "num_train_timesteps": 20,
                            "_requires_": ["@load_diffusion", "@load_autoencoder"]},
        "noise": "$torch.randn([1] + @latent_shape).to(@device)",
        "set_timesteps": "$@noise_scheduler.set_timesteps(num_inference_steps=5)",
        "inferer": {"_target_": "scripts.ldm.LDMSampler", "_requires_": "@set_timesteps"},
        "run": ["$os.makedirs(@output_dir, exist_ok=True)",
                "$@inferer.run(@noise, @autoencoder, @diffusion, @noise_scheduler, os.path.join(@output_dir, 'x.npy'))"],
    }
    image = {"type": "image", "num_channels": 1, "spatial_shape": [16, 16], "value_range": [0, 1]}
    metadata = {"version": "1.1.2", "monai_version": "1.4.0", "name": "Tiny axial LDM", "authors": "MONAI team",
                "description": "A tiny latent diffusion bundle.", "intended_use": "Tests only",
                "required_packages_version": {"lpips": "0.1.4"},
                "autoencoder_data_format": {"outputs": {"pred": image}},
                "network_data_format": {"outputs": {"pred": {"type": "feature", "value_range": [-4, 4]}}}}
    for name, text in {"configs/inference.json": json.dumps(inference, indent=1),
                       "configs/metadata.json": json.dumps(metadata), "scripts/__init__.py": "from . import ldm\n",
                       "LICENSE": "                    Apache License\n              Version 2.0, January 2004\n"
                       }.items():
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_text(text)
    (folder / "scripts" / "ldm.py").write_bytes(SAMPLER)
    if weights:
        torch.manual_seed(0)
        (folder / "models").mkdir(exist_ok=True)
        torch.save(AutoencoderKL(**AE).state_dict(), folder / "models" / "model_autoencoder.pt")
        torch.save(DiffusionModelUNet(**UNET).state_dict(), folder / "models" / "model.pt")
    return folder


def draft(capsys: pytest.CaptureFixture, *argv: str) -> dict:
    assert cli_main(["hub", "draft", *argv]) == 0, capsys.readouterr().err
    return json.loads(capsys.readouterr().out)


def test_draft_of_a_latent_diffusion_bundle_runs_as_drafted(tmp_path, capsys):
    folder = ldm_bundle(tmp_path / "ldm", weights=False)  # the dry run needs no weights
    doc = draft(capsys, f"hf://owner/tiny-ldm@{COMMIT}", "--from", str(folder), "--id", "00298_TINY_LDM", "--check")
    entry = doc["entry"]["00298_TINY_LDM"]
    execution, review = entry["execution"], doc["review"]
    assert execution["package_link"] == "hf://owner/tiny-ldm" and execution["revision"] == COMMIT
    assert execution["interface"] == "monai-bundle"
    # the bundle only has a file-writing run: the candidate made from it that returns (1, C, ...) is kept
    assert execution["adapter"]["sample"] == "$@inferer.sampling_fn(@noise, @autoencoder, @diffusion, @noise_scheduler)"
    assert review["candidates"][0] == execution["adapter"]["sample"] and review["not_applied"] == ["run"]
    assert execution["adapter"]["noise"] == "noise" and execution["adapter"]["scheduler"] == "noise_scheduler"
    assert review["latent_shape"] == [1, 8, 8] and review["dry_run"]["shape"] == [1, 1, 16, 16]
    assert execution["outputs"] == [{"name": "image", "kind": "image", "shape": [16, 16], "dtype": "uint8",
                                     "range": [0, 255]}]
    # the decoded image's range (autoencoder_data_format), not the UNet's latent (network_data_format)
    assert execution["adapter"]["value_range"] == [0.0, 1.0] and "autoencoder_data_format" in review["value_range_from"]
    assert execution["generate_method"]["args"]["custom"] == {"num_inference_steps": 5}
    assert execution["adapter"]["ignore_packages"] == ["lpips"]  # the sampling did not import it
    assert entry["selection"]["license"] == "Apache-2.0" and entry["description"]["version"] == "1.1.2"
    assert entry["description"]["title"] == "Tiny axial LDM"
    # the drafted entry runs the bundle (with its weights) through medhub
    ldm_bundle(folder)
    cat = write_catalog(tmp_path / "cat.json", {"00298_TINY_LDM": entry})
    images = Generators(config_file=str(cat)).generate("00298", num_samples=2, save_images=False, seed=0,
                                                       package_path=str(folder), device="cpu")
    assert images[0].shape == (16, 16) and images[0].dtype == np.uint8 and not np.array_equal(images[0], images[1])
    assert not (folder / "output").exists()  # the bundle's run (its own writing) never ran


def test_draft_of_a_diffusers_pipeline(tmp_path, capsys):
    diffusers = pytest.importorskip("diffusers")
    torch.manual_seed(0)
    unet = diffusers.UNet2DModel(sample_size=16, in_channels=1, out_channels=1, layers_per_block=1,
                                 block_out_channels=(8, 16), down_block_types=("DownBlock2D", "DownBlock2D"),
                                 up_block_types=("UpBlock2D", "UpBlock2D"), norm_num_groups=4)
    diffusers.DDPMPipeline(unet=unet, scheduler=diffusers.DDPMScheduler(num_train_timesteps=10)).save_pretrained(
        tmp_path / "ddpm", safe_serialization=True)
    (tmp_path / "ddpm" / "README.md").write_text("---\nlicense: mit\n---\n# tiny DDPM\n")
    doc = draft(capsys, "hf://owner/tiny-ddpm", "--from", str(tmp_path / "ddpm"), "--check")
    entry, review = doc["entry"]["00299_DRAFT"], doc["review"]
    assert entry["execution"]["interface"] == "diffusers" and entry["execution"]["adapter"] == {"pipeline": "DDPMPipeline"}
    assert entry["execution"]["outputs"][0]["shape"] == [16, 16] and review["dry_run"]["shape"] == [1, 1, 16, 16]
    assert entry["execution"]["generate_method"]["args"]["custom"] == {"num_inference_steps": 1000}
    assert review["scheduler"] == "DDPMScheduler" and review["latent_shape"] == [1, 16, 16]
    assert review["inputs"] == ["num_inference_steps"] and entry["selection"]["license"] == "MIT"
    assert any("not a commit" in note for note in review["notes"])  # main is not a pin


def test_draft_problems_give_one_line(tmp_path, capsys):
    folder = ldm_bundle(tmp_path / "ldm", weights=False)
    cases = [(["hf://owner/x", "--from", str(tmp_path)], 1, "neither model_index.json"),
             (["not a link", "--from", str(folder)], 2, "is not a Hub model"),
             (["hf://owner/x"], 1, "--trust-remote-code"),
             (["hf://owner/x", "--from", str(folder), "--id", "bad", "--check"], 2, "is not a model id")]
    for argv, code, message in cases:
        assert cli_main(["hub", "draft", *argv]) == code
        err = capsys.readouterr().err.strip()
        assert len(err.splitlines()) == 1 and message in err, err


def test_contribute_hub_from_a_local_copy_uses_the_draft(tmp_path, capsys):
    folder = ldm_bundle(tmp_path / "ldm", weights=False)
    fields = ["--field", "description.authors=MONAI team", "--field", "selection.modality=MRI", "--field",
              "selection.organ=brain"]
    assert cli_main(["contribute", "00298_TINY_LDM", "--hub", "owner/tiny-ldm", "--revision", COMMIT, "--interface",
                     "monai-bundle", "--from", str(folder), "--dry-run", "--json", *fields]) == 0
    entry = json.loads(capsys.readouterr().out)["entry"]["00298_TINY_LDM"]
    assert entry["execution"]["adapter"]["sample"].startswith("$@inferer.sampling_fn(")
    assert entry["execution"]["outputs"][0]["shape"] == [16, 16] and entry["selection"]["license"] == "Apache-2.0"
    assert entry["selection"]["modality"] == ["MRI"] and "MONAI bundle" in entry["selection"]["tags"]
