"""Catalog entry 00207 (MAISI, ``MONAI/maisi_ct_generative``): its sampling expression, run through medhub.

MAISI needs a data-centre GPU at its published sizes, so the bundle is laid out here from the facts
of its public inference config (version 1.0.x, rectified flow: the item names, the MAISI network
classes, the sampler's methods and what they return), with small networks and random weights,
and the sampler's own code replaced by a stand-in with the published interface (written for this
test: no published file is copied). The entry's sampling expression and adapter settings are read
from the shipped catalog; only the sizes are made small. For the same seed, medhub's sample equals a
direct MONAI ``ConfigParser`` evaluation of the same expression.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from conftest import REPO, import_file, write_catalog

from medhub import Generators
from medhub.errors import InvalidArgumentError
from medhub.execution.seeds import sample_seeds

torch = pytest.importorskip("torch")
pytest.importorskip("monai.apps.generation.maisi.networks.controlnet_maisi")

MODEL_ID = "00207_LDM_CT_MAISI_MONAI"
#: tools/check_maisi_bundle.py: the same check on a published bundle (random weights, direct MONAI run)
TOOL = import_file(REPO / "tools" / "check_maisi_bundle.py", "check_maisi_bundle")

#: A stand-in for the bundle's scripts/sample.py with the published interface of its LDMSampler
#: (version 1.0.x): prepare_anatomy_size_condtion -> prepare_one_mask_and_meta_info -> (mask,
#: spacing); sample_one_pair(mask, modality_tensor, spacing_tensor) -> (image in HU, mask). The
#: sampler draws its noise from torch's global generator, as the published one does.
SAMPLER = b'''
import torch
from monai.inferers import DiffusionInferer

SIZES = ["gallbladder", "liver", "stomach", "pancreas", "colon", "lung tumor", "pancreatic tumor",
         "hepatic tumor", "colon cancer primaries", "bone lesion"]
MODALITIES = {"unknown": 0, "ct": 1}


class LDMSampler:
    def __init__(self, autoencoder, diffusion_unet, controlnet, noise_scheduler, scale_factor,
                 mask_generation_autoencoder, mask_generation_diffusion_unet, mask_generation_scale_factor,
                 mask_generation_noise_scheduler, device, latent_shape, mask_generation_latent_shape,
                 output_size, spacing, modality, num_inference_steps, mask_generation_num_inference_steps,
                 controllable_anatomy_size):
        self.autoencoder, self.diffusion_unet, self.controlnet = autoencoder.eval(), diffusion_unet.eval(), controlnet.eval()
        self.noise_scheduler, self.scale_factor = noise_scheduler, scale_factor
        self.mask_autoencoder, self.mask_unet = mask_generation_autoencoder.eval(), mask_generation_diffusion_unet.eval()
        self.mask_scale_factor, self.mask_scheduler = mask_generation_scale_factor, mask_generation_noise_scheduler
        self.device, self.latent_shape, self.mask_latent_shape = device, latent_shape, mask_generation_latent_shape
        self.output_size, self.spacing, self.modality_int = output_size, spacing, MODALITIES[modality]
        self.steps, self.mask_steps = num_inference_steps, mask_generation_num_inference_steps

    def prepare_anatomy_size_condtion(self, controllable_anatomy_size):
        sizes = [-1.0] * len(SIZES)
        for name, size in controllable_anatomy_size:
            sizes[SIZES.index(name)] = float(size)
        return sizes

    def prepare_one_mask_and_meta_info(self, anatomy_size_condtion):
        with torch.no_grad():
            noise = torch.randn([1] + list(self.mask_latent_shape)).to(self.device)
            condition = torch.tensor(anatomy_size_condtion, device=self.device)[None, None]
            self.mask_scheduler.set_timesteps(num_inference_steps=self.mask_steps)
            latent = DiffusionInferer(self.mask_scheduler).sample(
                input_noise=noise, diffusion_model=self.mask_unet, scheduler=self.mask_scheduler,
                conditioning=condition, verbose=False)
            logits = self.mask_autoencoder.decode_stage_2_outputs(latent / self.mask_scale_factor)
            mask = torch.argmax(logits, dim=1, keepdim=True).float()
            mask = torch.nn.functional.interpolate(mask, size=list(self.output_size), mode="nearest")
        spacing = torch.tensor(self.spacing, device=self.device)[None] * 1e2
        return mask, spacing

    def sample_one_pair(self, combine_label_or_aug, modality_tensor, spacing_tensor):
        labels = combine_label_or_aug.long()
        bits = ((labels >> torch.arange(8, device=labels.device).view(1, 8, 1, 1, 1)) & 1).float()
        with torch.no_grad():
            latents = torch.randn([1] + list(self.latent_shape)).to(self.device)
            self.noise_scheduler.set_timesteps(num_inference_steps=self.steps,
                                               input_img_size_numel=int(torch.tensor(self.latent_shape[1:]).prod()))
            steps = self.noise_scheduler.timesteps
            for t, next_t in zip(steps, torch.cat((steps[1:], torch.zeros(1, dtype=steps.dtype)))):
                timesteps = torch.tensor((float(t),), device=self.device)
                down, mid = self.controlnet(x=latents, timesteps=timesteps, controlnet_cond=bits,
                                            class_labels=modality_tensor)
                velocity = self.diffusion_unet(x=latents, timesteps=timesteps, spacing_tensor=spacing_tensor,
                                               class_labels=modality_tensor, down_block_additional_residuals=down,
                                               mid_block_additional_residual=mid)
                latents, _ = self.noise_scheduler.step(velocity, t, latents, next_timestep=next_t)
            image = self.autoencoder.decode_stage_2_outputs(latents / self.scale_factor).clip(0, 1)
        return image * 2000 - 1000, labels
'''

AE = {"spatial_dims": 3, "latent_channels": 4, "num_channels": [8, 8, 8], "num_res_blocks": [1, 1, 1],
      "norm_num_groups": 4, "norm_eps": 1e-6, "attention_levels": [False, False, False],
      "with_encoder_nonlocal_attn": False,
      "with_decoder_nonlocal_attn": False, "use_checkpointing": False, "use_convtranspose": False,
      "norm_float16": False, "num_splits": 1, "dim_split": 1}
UNET = {"spatial_dims": 3, "in_channels": 4, "num_channels": [8, 8], "attention_levels": [False, False],
        "num_head_channels": [8, 8], "num_res_blocks": 1, "norm_num_groups": 4, "num_class_embeds": 128,
        "resblock_updown": True, "include_fc": True}
MAISI = "monai.apps.generation.maisi.networks."


def maisi_bundle(folder: Path) -> Path:
    """The bundle layout of MONAI/maisi_ct_generative 1.0.x (item names as its inference.json),
    small networks of the published classes, random weights."""
    models = "$@bundle_root + '/models/"
    inference = {
        "imports": ["$import torch", "$from pathlib import Path", "$import scripts"],
        "bundle_root": ".", "output_dir": "$@bundle_root + '/output'",
        "trained_autoencoder_path": f"{models}autoencoder_epoch273.pt'",
        "trained_diffusion_path": f"{models}diff_unet_ckpt_epoch19350.pt'",
        "trained_controlnet_path": f"{models}controlnet_epoch150.pt'",
        "trained_mask_generation_autoencoder_path": f"{models}mask_generation_autoencoder.pt'",
        "trained_mask_generation_diffusion_path": f"{models}mask_generation_diffusion_unet.pt'",
        "create_output_dir": "$Path(@output_dir).mkdir(exist_ok=True)",
        "device": "$torch.device('cuda:0' if torch.cuda.is_available() else 'cpu')",
        "controllable_anatomy_size": [], "modality": "ct", "num_inference_steps": 30,
        "mask_generation_num_inference_steps": 1000, "latent_channels": 4,
        "output_size_xy": 512, "output_size_z": 512,
        "output_size": ["@output_size_xy", "@output_size_xy", "@output_size_z"],
        "spacing_xy": 1.0, "spacing_z": 1.0, "spacing": ["@spacing_xy", "@spacing_xy", "@spacing_z"],
        "latent_shape": ["@latent_channels", "$@output_size[0]//4", "$@output_size[1]//4", "$@output_size[2]//4"],
        "mask_generation_latent_shape": [4, 64, 64, 64],
        "autoencoder_def": {"_target_": MAISI + "autoencoderkl_maisi.AutoencoderKlMaisi", **AE,
                            "in_channels": 1, "out_channels": 1},
        "diffusion_unet_def": {"_target_": MAISI + "diffusion_model_unet_maisi.DiffusionModelUNetMaisi", **UNET,
                               "out_channels": 4, "include_spacing_input": True, "use_flash_attention": False},
        "controlnet_def": {"_target_": MAISI + "controlnet_maisi.ControlNetMaisi", **UNET,
                           "conditioning_embedding_in_channels": 8, "conditioning_embedding_num_channels": [8, 8, 8],
                           "use_flash_attention": False},
        "mask_generation_autoencoder_def": {"_target_": MAISI + "autoencoderkl_maisi.AutoencoderKlMaisi", **AE,
                                            "in_channels": 8, "out_channels": 125},
        "mask_generation_diffusion_def": {
            "_target_": "monai.networks.nets.diffusion_model_unet.DiffusionModelUNet", "spatial_dims": 3,
            "in_channels": 4, "out_channels": 4, "channels": [8, 8], "attention_levels": [False, True],
            "num_head_channels": [0, 8], "num_res_blocks": 1, "norm_num_groups": 4, "with_conditioning": True,
            "upcast_attention": True, "cross_attention_dim": 10},
        "autoencoder": "$@autoencoder_def.to(@device)",
        "checkpoint_autoencoder": "$torch.load(@trained_autoencoder_path, weights_only=True)",
        "load_autoencoder": "$@autoencoder.load_state_dict(@checkpoint_autoencoder)",
        "diffusion_unet": "$@diffusion_unet_def.to(@device)",
        "checkpoint_diffusion_unet": "$torch.load(@trained_diffusion_path, weights_only=False)",
        "load_diffusion": "$@diffusion_unet.load_state_dict(@checkpoint_diffusion_unet['unet_state_dict'])",
        "controlnet": "$@controlnet_def.to(@device)",
        "checkpoint_controlnet": "$torch.load(@trained_controlnet_path, weights_only=False)",
        "load_controlnet": "$@controlnet.load_state_dict(@checkpoint_controlnet['controlnet_state_dict'], strict=True)",
        "scale_factor": "$@checkpoint_diffusion_unet['scale_factor'].to(@device)",
        "mask_generation_autoencoder": "$@mask_generation_autoencoder_def.to(@device)",
        "checkpoint_mask_generation_autoencoder": "$torch.load(@trained_mask_generation_autoencoder_path)",
        "load_mask_generation_autoencoder": "$@mask_generation_autoencoder.load_state_dict("
                                            "@checkpoint_mask_generation_autoencoder, strict=True)",
        "mask_generation_diffusion_unet": "$@mask_generation_diffusion_def.to(@device)",
        "checkpoint_mask_generation_diffusion_unet": "$torch.load(@trained_mask_generation_diffusion_path)",
        "load_mask_generation_diffusion": "$@mask_generation_diffusion_unet.load_state_dict("
                                          "@checkpoint_mask_generation_diffusion_unet['unet_state_dict'], strict=True)",
        "mask_generation_scale_factor": "$@checkpoint_mask_generation_diffusion_unet['scale_factor']",
        "noise_scheduler": {"_target_": "monai.networks.schedulers.RFlowScheduler", "num_train_timesteps": 1000,
                            "use_discrete_timesteps": False, "use_timestep_transform": True,
                            "sample_method": "logit-normal", "scale": 1.2},
        "mask_generation_noise_scheduler": {"_target_": "monai.networks.schedulers.DDPMScheduler",
                                            "num_train_timesteps": 1000, "beta_start": 0.0015, "beta_end": 0.0195,
                                            "schedule": "scaled_linear_beta", "clip_sample": False},
        "ldm_sampler": {
            "_target_": "scripts.sample.LDMSampler",
            "_requires_": ["@create_output_dir", "@load_diffusion", "@load_autoencoder", "@load_controlnet",
                           "@load_mask_generation_autoencoder", "@load_mask_generation_diffusion"],
            **{name: f"@{name}" for name in (
                "autoencoder", "diffusion_unet", "controlnet", "noise_scheduler", "scale_factor",
                "mask_generation_autoencoder", "mask_generation_diffusion_unet", "mask_generation_scale_factor",
                "mask_generation_noise_scheduler", "device", "latent_shape", "mask_generation_latent_shape",
                "output_size", "spacing", "modality", "num_inference_steps", "mask_generation_num_inference_steps",
                "controllable_anatomy_size")}},
        "num_output_samples": 1,
        "run": ["$@ldm_sampler.sample_multiple_images(@num_output_samples)"],
    }
    image = {"type": "image", "num_channels": 1, "spatial_shape": [512, 512, 512], "value_range": [0, 1]}
    metadata = {"version": "1.0.2", "monai_version": "1.4.0", "name": "MAISI: Medical AI for Synthetic Imaging",
                "autoencoder_data_format": {"outputs": {"pred": image}}}
    for name, text in {"configs/inference.json": json.dumps(inference, indent=1),
                       "configs/metadata.json": json.dumps(metadata), "scripts/__init__.py": "from . import sample\n",
                       "LICENSE": "Apache License, Version 2.0\n"}.items():
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_text(text)
    (folder / "scripts" / "sample.py").write_bytes(SAMPLER)
    TOOL.random_weights(folder, {})
    return folder


def small_entry() -> dict:
    """Entry 00207 as shipped, at a 16^3 output (4^3 latents) with two steps for the image and the mask (and
    only torch and MONAI as dependencies: the stand-in sampler needs none of the bundle's scikit-image...)."""
    entry = json.loads((REPO / "config" / "global.json").read_text())["models"][MODEL_ID]
    entry["execution"]["dependencies"] = ["torch", "monai"]
    adapter = entry["execution"]["adapter"]
    adapter["overrides"].update({"output_size_xy": 16, "output_size_z": 16, "num_inference_steps": 2,
                                 "mask_generation_num_inference_steps": 2, "mask_generation_latent_shape": [4, 4, 4, 4]})
    entry["execution"]["outputs"][0]["shape"] = [16, 16, 16]
    entry["execution"]["image_size"] = [16, 16, 16]
    return entry


def test_maisi_entry_samples_as_a_direct_monai_run(tmp_path):
    folder = maisi_bundle(tmp_path / "maisi_ct_generative")
    entry = small_entry()
    assert entry["execution"]["adapter"]["scheduler"] is None  # the sampler sets its own rectified-flow steps
    cat = write_catalog(tmp_path / "cat.json", {MODEL_ID: entry})
    g = Generators(config_file=str(cat))
    volumes = g.generate("00207", num_samples=2, save_images=False, seed=0, package_path=str(folder), device="cpu")
    assert volumes[0].shape == (16, 16, 16) and volumes[0].dtype == np.float32
    assert volumes[0].min() >= -1000 and volumes[0].max() <= 1000 and not np.array_equal(volumes[0], volumes[1])
    # sample 1 is the expression run by MONAI with torch seeded from sample 1's seed (the tool's test does sample 0)
    np.testing.assert_array_equal(volumes[1], TOOL.direct(folder, entry["execution"]["adapter"], sample_seeds(0, [1])[0]))
    assert not (folder / "output").exists()  # the bundle's own writing (run, create_output_dir) never ran
    # the sampler takes its steps from the bundle: medhub has no num_inference_steps to set
    assert g.get_model_executor("00207", package_path=str(folder)).prepare().input_names() == []
    with pytest.raises(InvalidArgumentError, match="takes no input 'num_inference_steps'"):
        g.generate("00207", num_samples=1, save_images=False, seed=0, package_path=str(folder), device="cpu",
                   num_inference_steps=5)


def test_check_tool_runs_the_shipped_entry_on_a_bundle_folder(tmp_path, capsys):
    pytest.importorskip("skimage")  # a dependency of the entry (the published scripts import it)
    folder = maisi_bundle(tmp_path / "maisi_ct_generative")
    assert TOOL.main([str(folder), "--size", "16", "--seed", "3"]) == 0
    out = capsys.readouterr().out
    assert "equal to the direct MONAI run: True" in out and "medhub: (16, 16, 16) float32" in out
    assert torch.Tensor.half is not None and torch.ones(1).half().dtype == torch.float16  # restored
    assert not (folder / "output").exists() and sorted(p.name for p in folder.iterdir()) == [
        "LICENSE", "configs", "models", "scripts"]  # the bundle folder is only read
