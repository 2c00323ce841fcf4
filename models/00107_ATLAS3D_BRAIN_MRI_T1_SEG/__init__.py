"""Atlas-deformation generator of 3D T1 brain MRI volumes with tissue segmentations (medhub/1).

Each sample is the MNI152 2009a atlas (T1 intensities and a 4-class tissue map, 64x64x64 at
3.64 mm) warped by a random smooth diffeomorphism and given a random intensity appearance:

1. a stationary velocity field on a coarse control grid (the latent vector, 3 x 4 x 4 x 4 = 192
   standard-normal values, scaled by ``deformation_mm``) is upsampled to the volume and
   integrated by scaling and squaring (6 steps, on a 32^3 grid), which gives an invertible,
   smooth warp;
2. a small random affine transform (rotation up to ``rotation_deg``, scale up to ``scale``);
3. the T1 atlas is warped with trilinear interpolation, the tissue probabilities with trilinear
   interpolation followed by argmax, so image and mask stay aligned;
4. appearance: per-tissue contrast drawn around the atlas's own tissue means (estimated by the
   build script), a smooth multiplicative bias field, a gamma curve and Rician-like noise.

The module implements both interfaces of the medhub package contract: :func:`load` /
:func:`sample` (native) and :func:`generate` (medigan).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from medhub.noise import normal, uniform
from medhub.package_kit import latent_input, medigan_generate

SIZE = 64
GRID = 4
LATENT_DIM = 3 * GRID**3
WEIGHTS_FILE = "weights.safetensors"
SPACING_MM = 233.0 / SIZE
SQUARING_STEPS = 6
INTEGRATION_SIZE = 32
CLASSES = ("background", "csf", "grey_matter", "white_matter")


class AtlasModel:
    """The atlas tensors (on one device) and the tissue intensity statistics."""

    def __init__(self, tensors: dict[str, torch.Tensor], device: str) -> None:
        self.device = torch.device(device)
        self.t1 = tensors["t1"].float().to(self.device)[None, None]  # (1, 1, D, H, W) in [0, 1]
        self.probs = tensors["tissue_probs"].float().to(self.device)[None]  # (1, 4, D, H, W)
        self.tissue_mean = tensors["tissue_mean"].float()  # (4,) mean T1 of each class in the atlas
        self.tissue_std = tensors["tissue_std"].float()
        self.identity = _identity_grid(SIZE, self.device)
        self.coarse_identity = _identity_grid(INTEGRATION_SIZE, self.device)


def _identity_grid(n: int, device: torch.device) -> torch.Tensor:
    """Normalised sampling grid of an n^3 volume, (1, n, n, n, 3) in grid_sample's (x, y, z) order."""
    lin = torch.linspace(-1, 1, n, device=device)
    d, h, w = torch.meshgrid(lin, lin, lin, indexing="ij")
    return torch.stack([w, h, d], dim=-1)[None]


def load(weights_path: str | Path, device: str = "cpu") -> AtlasModel:
    """Load the atlas (safetensors) onto ``device``."""
    from safetensors.torch import load_file

    return AtlasModel(load_file(str(weights_path)), device)


def latents(seeds: Sequence[int], device: Any = "cpu") -> torch.Tensor:
    """The standard-normal latent vector of each seed (the velocity control points), drawn for the
    whole batch on ``device`` with :func:`medhub.noise.normal` (stream 0; the same random bits on
    every device)."""
    return normal(seeds, LATENT_DIM, device=device)


def _warp(vol: torch.Tensor, grid: torch.Tensor, mode: str = "bilinear") -> torch.Tensor:
    return F.grid_sample(vol, grid, mode=mode, padding_mode="border", align_corners=True)


def _displacement(model: AtlasModel, z: torch.Tensor, deformation_mm: float) -> torch.Tensor:
    """Integrate the velocity field of latent ``z`` (192,) into a displacement (1, n, n, n, 3).

    The field is smooth (a 4^3 control grid), so it is integrated on a 32^3 grid and the result
    upsampled to the volume: 8x cheaper than integrating at 64^3, with the same warp to well
    under a voxel.
    """
    per_voxel = 2.0 / (SIZE - 1)  # normalised units per voxel
    v = z.reshape(1, 3, GRID, GRID, GRID).to(model.device) * (deformation_mm / SPACING_MM) * per_voxel
    v = F.interpolate(v, size=(INTEGRATION_SIZE,) * 3, mode="trilinear", align_corners=True)
    disp = v.permute(0, 2, 3, 4, 1) / 2**SQUARING_STEPS
    for _ in range(SQUARING_STEPS):  # phi = exp(v): compose the small warp with itself
        moved = _warp(disp.permute(0, 4, 1, 2, 3), model.coarse_identity + disp).permute(0, 2, 3, 4, 1)
        disp = disp + moved
    disp = F.interpolate(disp.permute(0, 4, 1, 2, 3), size=(SIZE,) * 3, mode="trilinear", align_corners=True)
    return disp.permute(0, 2, 3, 4, 1)


#: Streams of :mod:`medhub.noise` per seed: 0 the latent, then the appearance draws.
AFFINE_STREAM, APPEARANCE_STREAM, NOISE_STREAM = 1, 2, 3
#: Appearance normals per sample: 4 tissue shifts, 3^3 bias-field control values, 1 gamma.
FIELD_GRID = 3
APPEARANCE_DIM = 4 + FIELD_GRID**3 + 1


def _affine(u: torch.Tensor, rotation_deg: float, scale: float) -> torch.Tensor:
    """A 3x3 rotation-and-scale matrix (rotations about each axis, isotropic scale) from four
    uniforms in [0, 1): three angles and the scale."""
    angles = (u[:3] * 2 - 1) * np.deg2rad(rotation_deg)
    s = 1 + (float(u[3]) * 2 - 1) * scale
    m = torch.eye(3)
    for axis, a in enumerate(angles.tolist()):
        c, sn = np.cos(a), np.sin(a)
        r = torch.eye(3)
        i, j = [k for k in range(3) if k != axis]
        r[i, i], r[i, j], r[j, i], r[j, j] = c, -sn, sn, c
        m = r @ m
    return m * s


def _smooth_field(control: torch.Tensor, device: torch.device) -> torch.Tensor:
    """A smooth field (1, 1, n, n, n) with values around 0 (std about 1) from 3^3 standard-normal
    control values."""
    c = control.reshape(1, 1, FIELD_GRID, FIELD_GRID, FIELD_GRID).to(device)
    return F.interpolate(c, size=(SIZE,) * 3, mode="trilinear", align_corners=True)


def _one(model: AtlasModel, seed: int, z: torch.Tensor, u: torch.Tensor, appearance: torch.Tensor,
         deformation_mm: float, rotation_deg: float, scale: float, bias_field: float,
         noise: float) -> tuple[np.ndarray, np.ndarray]:
    """One sample from its latent ``z`` (the shape), affine uniforms ``u`` and appearance normals."""
    disp = _displacement(model, z, deformation_mm)
    a = _affine(u, rotation_deg, scale).to(model.device)
    grid = (model.identity + disp) @ a.T
    probs = _warp(model.probs, grid)
    p = probs[0]
    mask = torch.where(p[1] > p[0], 1, 0)
    best = torch.maximum(p[0], p[1])
    for k in (2, 3):  # argmax over the 4 classes (as fast elementwise maxima)
        mask = torch.where(p[k] > best, k, mask)
        best = torch.maximum(best, p[k])
    t1 = _warp(model.t1, grid)[0, 0]
    # appearance: move each tissue's mean intensity a little, keep the atlas's texture inside it
    shift = appearance[:4] * model.tissue_std * 0.5
    shift[0] = 0.0
    shift_map = (probs[0] * shift.to(model.device)[:, None, None, None]).sum(0)
    img = (t1 + shift_map).clamp(0, 1)
    img = img * torch.exp(_smooth_field(appearance[4:-1], model.device)[0, 0] * bias_field)
    gamma = float(torch.exp(appearance[-1] * 0.1))
    img = img.clamp(0, 1) ** gamma
    if noise > 0:
        n1, n2 = normal([seed], (2, *img.shape), device=model.device, stream=NOISE_STREAM)[0] * noise
        img = torch.sqrt((img + n1) ** 2 + n2**2)  # Rician magnitude noise
    img = torch.where(mask > 0, img, img * 0.25)  # background stays dark but not exactly zero
    vol = (img.clamp(0, 1) * 255).round().to(torch.uint8)
    # the atlas is stored in the MNI152 NIfTI's (x, y, z) voxel order, so the outputs are too
    return vol.cpu().numpy(), mask.to(torch.uint8).cpu().numpy()


def sample(model: AtlasModel, seeds: Sequence[int], latent: Any = None, deformation_mm: float = 4.0,
           rotation_deg: float = 6.0, scale: float = 0.05, bias_field: float = 0.15,
           noise: float = 0.02, **_: Any) -> dict[str, np.ndarray]:
    """Generate one (volume, mask) pair per seed; sample i depends only on ``seeds[i]`` (and
    ``latent[i]`` when given) and the other inputs.

    ``latent`` (N, 192) replaces the seeded velocity control points; ``deformation_mm`` is the
    standard deviation of a control-point velocity in mm; ``rotation_deg`` and ``scale`` bound the
    random affine; ``bias_field`` and ``noise`` set the appearance. All must be >= 0.
    """
    for name, value in (("deformation_mm", deformation_mm), ("rotation_deg", rotation_deg), ("scale", scale),
                        ("bias_field", bias_field), ("noise", noise)):
        if not np.isfinite(value) or value < 0:
            raise ValueError(f"{name} must be a finite number >= 0, not {value!r}")
    if scale >= 0.5:
        raise ValueError(f"scale must be below 0.5 (a fraction of the size), not {scale!r}")
    if latent is None:
        z = latents(seeds, model.device)
    else:
        z = latent_input(latent, len(seeds), LATENT_DIM)
    u = uniform(seeds, 4, stream=AFFINE_STREAM)
    appearance = normal(seeds, APPEARANCE_DIM, stream=APPEARANCE_STREAM)
    vols, masks = [], []
    with torch.inference_mode():
        for i, seed in enumerate(seeds):  # one sample at a time: nothing depends on the batch
            v, m = _one(model, seed, z[i], u[i], appearance[i], deformation_mm, rotation_deg, scale, bias_field,
                        noise)
            vols.append(v)
            masks.append(m)
    return {"volume": np.stack(vols), "mask": np.stack(masks)}


def generate(model_file: str | Path, num_samples: int = 4, output_path: str | Path | None = None,
             save_images: bool = True, seed: int | None = None,
             **kwargs: Any) -> list[tuple[np.ndarray, np.ndarray]] | None:
    """medigan-compatible entry point: a list of (volume, mask) pairs of (64, 64, 64) uint8 arrays,
    or, with ``save_images``, NIfTI files ``<i>_volume.nii.gz`` / ``<i>_mask.nii.gz`` in
    ``output_path``. Keyword arguments are those of :func:`sample`."""
    import nibabel as nib

    affine = np.diag([SPACING_MM, SPACING_MM, SPACING_MM, 1.0])
    return medigan_generate(load, sample, model_file, num_samples, output_path, save_images, seed,
                            outputs=("volume", "mask"), files={"volume": "{i}_volume.nii.gz", "mask": "{i}_mask.nii.gz"},
                            save=lambda path, array: nib.save(nib.Nifti1Image(array, affine), str(path)), **kwargs)
