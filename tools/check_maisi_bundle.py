"""Run catalog entry 00207's sampling expression (MAISI) on a real MAISI bundle on the CPU, with random
weights of the bundle's exact networks, through medhub and through MONAI directly, and compare.

The bundle folder holds the published ``configs/`` and ``scripts/`` of ``maisi_ct_generative`` (a
Hub snapshot or a model-zoo checkout; its weights and large files are not needed, except the small
JSON files the sampler reads: ``label_dict.json``, ``label_dict_124_to_132.json``,
``all_anatomy_size_condtions.json``, ``image_median_statistics.json``). Nothing is written to it: the
configs and scripts are copied to a temporary folder, where random weights are saved.

To run on a CPU at all, the check changes what only matters on a GPU: flash attention off, the
autoencoders' ``num_splits`` 1 and ``norm_float16`` off, the sampler's float16 casts (made for CUDA
autocast) done in float32, and ``check_input`` skipped (it accepts 256, 384 or 512 voxels across only).
See docs/hub-and-monai.md for the result.

Usage:
    python tools/check_maisi_bundle.py BUNDLE_DIR [--size 64] [--steps 2] [--seed 0]
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
MODEL_ID = "00207_LDM_CT_MAISI_MONAI"
NETWORKS = {  # network definition -> (checkpoint file, key of its state dict or None)
    "autoencoder_def": ("trained_autoencoder_path", None),
    "diffusion_unet_def": ("trained_diffusion_path", "unet_state_dict"),
    "controlnet_def": ("trained_controlnet_path", "controlnet_state_dict"),
    "mask_generation_autoencoder_def": ("trained_mask_generation_autoencoder_path", None),
    "mask_generation_diffusion_def": ("trained_mask_generation_diffusion_path", "unet_state_dict"),
}


def cpu_overrides(size: int, steps: int) -> dict:
    """The entry's overrides plus what a small CPU run needs."""
    out = {f"{net}#use_flash_attention": False for net in ("diffusion_unet_def", "controlnet_def",
                                                            "mask_generation_diffusion_def")}
    for net in ("autoencoder_def", "mask_generation_autoencoder_def"):
        out |= {f"{net}#num_splits": 1, f"{net}#norm_float16": False}
    return out | {"output_size_xy": size, "output_size_z": size, "num_inference_steps": steps,
                  "mask_generation_num_inference_steps": steps, "mask_generation_latent_shape": [4] + [size // 4] * 3,
                  "check_input": "$None"}


def random_weights(folder: Path, overrides: dict) -> dict:
    """Save random weights of the bundle's networks where its inference config loads them; their sizes."""
    import torch
    from monai.bundle import ConfigParser

    parser = ConfigParser(json.loads((folder / "configs" / "inference.json").read_text()))
    parser["bundle_root"] = str(folder)
    for key, value in overrides.items():
        parser[key] = value
    torch.manual_seed(0)
    sizes = {}
    for name, (path_item, key) in NETWORKS.items():
        net = parser.get_parsed_content(name)
        sizes[name] = sum(p.numel() for p in net.parameters())
        state = net.state_dict() if key is None else {key: net.state_dict(), "scale_factor": torch.tensor(1.0)}
        path = Path(parser.get_parsed_content(path_item))
        path.parent.mkdir(parents=True, exist_ok=True)
        torch.save(state, path)
    return sizes


def direct(folder: Path, adapter: dict, seed: int):
    """The entry's sampling expression evaluated by MONAI's own ConfigParser on the CPU, with the entry's
    overrides and torch seeded with ``seed`` (as medhub seeds a sample), clipped to its value range."""
    import numpy as np
    import torch
    from monai.bundle import ConfigParser

    sys.path.insert(0, str(folder))  # the bundle's scripts package, as `python -m monai.bundle run` finds it
    try:
        parser = ConfigParser(json.loads((folder / "configs" / "inference.json").read_text()))
        parser["bundle_root"] = str(folder)
        parser["device"] = "$torch.device('cpu')"
        for key, value in adapter["overrides"].items():
            parser[key] = value
        parser["medhub_check"] = adapter["sample"]
        parser.get_parsed_content("ldm_sampler")
        torch.manual_seed(seed % 2**63)
        with torch.no_grad():
            image = parser.get_parsed_content("medhub_check")[0]
    finally:
        sys.path.remove(str(folder))
        for name in [n for n in sys.modules if n == "scripts" or n.startswith("scripts.")]:
            del sys.modules[name]
    return np.clip(image.float().numpy()[0, 0], *adapter["value_range"])


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("bundle", type=Path)
    ap.add_argument("--size", type=int, default=64, help="output voxels per axis (a multiple of 16)")
    ap.add_argument("--steps", type=int, default=2)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    import torch

    entry = json.loads((REPO / "config" / "global.json").read_text())["models"][MODEL_ID]
    adapter = entry["execution"]["adapter"]
    adapter["overrides"] |= cpu_overrides(args.size, args.steps)
    entry["execution"]["outputs"][0]["shape"] = [args.size] * 3
    half = torch.Tensor.half
    torch.Tensor.half = lambda self, *a, **k: self.float()  # the sampler's CUDA-autocast casts, on the CPU
    try:
        return check(args, entry, adapter)
    finally:
        torch.Tensor.half = half


def check(args: argparse.Namespace, entry: dict, adapter: dict) -> int:
    import numpy as np

    from medhub import Generators
    from medhub.execution.seeds import sample_seeds

    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "maisi_ct_generative"
        for part in ("configs", "scripts"):
            shutil.copytree(args.bundle / part, folder / part)
        sizes = random_weights(folder, adapter["overrides"])
        print("parameters (M):", {k: round(v / 1e6, 1) for k, v in sizes.items()})
        catalog = Path(tmp) / "catalog.json"
        catalog.write_text(json.dumps({"schema_version": 1, "catalog_version": "0.0.1", "models": {MODEL_ID: entry}}))
        start = time.perf_counter()
        ours = Generators(config_file=str(catalog)).generate("00207", num_samples=1, save_images=False,
                                                             seed=args.seed, package_path=str(folder), device="cpu")[0]
        print(f"medhub: {ours.shape} {ours.dtype} [{ours.min():.1f}, {ours.max():.1f}] in {time.perf_counter() - start:.0f} s")
        theirs = direct(folder, adapter, sample_seeds(args.seed, [0])[0])
        same = np.array_equal(ours, theirs)
        print("equal to the direct MONAI run:", same, f"(max difference {np.abs(ours - theirs).max():.3g})")
    return 0 if same else 1


if __name__ == "__main__":
    sys.exit(main())
