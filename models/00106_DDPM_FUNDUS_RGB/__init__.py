"""DDPM generating 64x64 RGB patches of a colour fundus photograph (medhub/1 package).

A small UNet predicts the noise (epsilon) of a denoising diffusion probabilistic model trained with
T = 1000 steps and a cosine noise schedule; images are generated with deterministic DDIM sampling
(eta = 0) in ``num_inference_steps`` steps. Trained on patches of the scikit-image fundus
photograph ``retina.jpg`` (see README.md). The module implements both interfaces of the medhub
model package contract:

* native ``medhub/1``: :func:`load` once, then :func:`sample` with one seed per sample;
* medigan compatibility: :func:`generate`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from medhub import noise
from medhub import package_kit as kit

IMAGE_SIZE = 64
CHANNELS = 3
#: Number of diffusion steps of the training process.
T = 1000
#: Default number of DDIM steps.
DEFAULT_STEPS = 25
WEIGHTS_FILE = "weights.safetensors"
#: The UNet always runs on blocks of exactly this many images (the last one padded), so the
#: arithmetic for a sample never depends on how many samples were asked for at once.
CHUNK = 32
#: UNet widths at 32x32, 16x16, 8x8 and 4x4 (after a 2x2 pixel unshuffle of the 64x64 input).
WIDTHS = (32, 32, 64, 128)
#: Residual blocks per level (down; the same number on the way up).
BLOCKS = (1, 2, 2, 2)
TIME_DIM = 128
#: Per-channel mean and standard deviation (in [-1, 1] units) of the training patches; they set the
#: fixed skip connection of the noise prediction (see :class:`UNet`).
DATA_MEAN = (0.701, -0.272, -0.471)
DATA_STD = (0.185, 0.173, 0.128)


def cosine_alpha_bar(t: int = T, s: float = 0.008, max_beta: float = 0.999) -> torch.Tensor:
    """Cumulative products alpha_bar_t (t = 0..T-1) of the cosine schedule (Nichol & Dhariwal 2021)."""
    steps = torch.arange(t + 1, dtype=torch.float64) / t
    f = torch.cos((steps + s) / (1 + s) * math.pi / 2) ** 2
    betas = (1 - f[1:] / f[:-1]).clamp(max=max_beta)
    return torch.cumprod(1 - betas, 0)


def timestep_embedding(t: torch.Tensor, dim: int = TIME_DIM) -> torch.Tensor:
    """Sinusoidal embedding (N, dim) of integer timesteps t (N,)."""
    half = dim // 2
    freqs = torch.exp(-math.log(10000.0) * torch.arange(half, dtype=torch.float32) / half).to(t.device)
    args = t.float()[:, None] * freqs[None]
    return torch.cat([torch.cos(args), torch.sin(args)], dim=1)


class ResBlock(nn.Module):
    """GroupNorm-SiLU-conv twice, with the time embedding added in between, and a skip path."""

    def __init__(self, cin: int, cout: int, tdim: int = TIME_DIM) -> None:
        super().__init__()
        self.norm1 = nn.GroupNorm(8, cin)
        self.conv1 = nn.Conv2d(cin, cout, 3, padding=1)
        self.temb = nn.Linear(tdim, cout)
        self.norm2 = nn.GroupNorm(8, cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, padding=1)
        self.skip = nn.Conv2d(cin, cout, 1) if cin != cout else nn.Identity()

    def forward(self, x: torch.Tensor, temb: torch.Tensor) -> torch.Tensor:
        h = self.conv1(F.silu(self.norm1(x)))
        h = h + self.temb(temb)[:, :, None, None]
        h = self.conv2(F.silu(self.norm2(h)))
        return self.skip(x) + h


class Attention(nn.Module):
    """Single-head self-attention over the pixels of a feature map."""

    def __init__(self, c: int) -> None:
        super().__init__()
        self.norm = nn.GroupNorm(8, c)
        self.qkv = nn.Conv2d(c, 3 * c, 1)
        self.proj = nn.Conv2d(c, c, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, c, h, w = x.shape
        q, k, v = self.qkv(self.norm(x)).reshape(n, 3, c, h * w).unbind(1)
        att = torch.softmax(torch.einsum("ncq,nck->nqk", q, k) / math.sqrt(c), dim=-1)
        out = torch.einsum("nqk,nck->ncq", att, v).reshape(n, c, h, w)
        return x + self.proj(out)


class UNet(nn.Module):
    """Epsilon-prediction UNet: noisy image (N, 3, 64, 64) and timestep -> predicted noise.

    The 64x64 input is pixel-unshuffled to 12 channels at 32x32; four levels of widths
    :data:`WIDTHS` at 32x32, 16x16, 8x8 and 4x4 with :data:`BLOCKS` residual blocks each on the way
    down and up (skip connections), strided-convolution downsampling, transposed-convolution
    upsampling, GroupNorm and SiLU, a sinusoidal time embedding and one self-attention layer in the
    4x4 middle. The output convolution sees the last features and the unshuffled input. Its output
    f is turned into the noise prediction ``c_skip(t) * (x_t - sqrt(a_t) * m) + c_out(t) * f`` with
    a_t = alpha_bar_t, per-channel data mean m and variance s2 (:data:`DATA_MEAN`, :data:`DATA_STD`),
    ``c_skip = sqrt(1 - a_t) / (a_t s2 + 1 - a_t)`` (the best linear estimate of the noise) and
    ``c_out = sqrt(a_t s2 / (a_t s2 + 1 - a_t))`` (EDM-style preconditioning); it is still epsilon
    prediction, trained with the plain epsilon MSE.
    """

    def __init__(self, widths: Sequence[int] = WIDTHS, blocks: Sequence[int] = BLOCKS, tdim: int = TIME_DIM) -> None:
        super().__init__()
        self.tdim = tdim
        self.time_mlp = nn.Sequential(nn.Linear(tdim, tdim), nn.SiLU(), nn.Linear(tdim, tdim))
        self.inp = nn.Conv2d(CHANNELS * 4, widths[0], 3, padding=1)
        self.down = nn.ModuleList()
        self.downsample = nn.ModuleList()
        chans: list[int] = []
        c = widths[0]
        for i, w in enumerate(widths):
            level = nn.ModuleList()
            for _ in range(blocks[i]):
                level.append(ResBlock(c, w, tdim))
                c = w
                chans.append(c)
            self.down.append(level)
            if i < len(widths) - 1:
                self.downsample.append(nn.Conv2d(c, c, 3, stride=2, padding=1))
        self.mid1 = ResBlock(c, c, tdim)
        self.mid_attn = Attention(c)
        self.mid2 = ResBlock(c, c, tdim)
        self.up = nn.ModuleList()
        self.upsample = nn.ModuleList()
        for i, w in reversed(list(enumerate(widths))):
            level = nn.ModuleList()
            for _ in range(blocks[i]):
                level.append(ResBlock(c + chans.pop(), w, tdim))
                c = w
            self.up.append(level)
            if i > 0:
                self.upsample.append(nn.ConvTranspose2d(c, c, 2, stride=2))
        self.out_norm = nn.GroupNorm(8, c)
        # fixed skip connection: the best linear estimate of the noise from x_t for data of the
        # given per-channel mean and variance, plus c_out times the network output
        ab = cosine_alpha_bar().float()[:, None]
        var = torch.tensor(DATA_STD) ** 2
        denom = ab * var + 1 - ab
        self.register_buffer("c_skip", (1 - ab).sqrt() / denom, persistent=False)  # (T, 3)
        self.register_buffer("c_out", (ab * var / denom).sqrt(), persistent=False)  # (T, 3)
        self.register_buffer("c_mean", ab.sqrt() * torch.tensor(DATA_MEAN), persistent=False)  # (T, 3)
        # the output convolution also sees the (unshuffled) input: a linear path for the noise
        self.out = nn.Conv2d(c + CHANNELS * 4, CHANNELS * 4, 3, padding=1)

    def forward(self, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        """``t`` holds one timestep per image (N,), or a single one (1,) shared by the whole batch."""
        temb = self.time_mlp(timestep_embedding(t, self.tdim).to(x.dtype))
        xs = F.pixel_unshuffle(x, 2)
        h = self.inp(xs)
        skips = []
        for i, level in enumerate(self.down):
            for block in level:
                h = block(h, temb)
                skips.append(h)
            if i < len(self.downsample):
                h = self.downsample[i](h)
        h = self.mid2(self.mid_attn(self.mid1(h, temb)), temb)
        for i, level in enumerate(self.up):
            for block in level:
                h = block(torch.cat([h, skips.pop()], dim=1), temb)
            if i < len(self.upsample):
                h = self.upsample[i](h)
        f = F.pixel_shuffle(self.out(torch.cat([F.silu(self.out_norm(h)), xs], dim=1)), 2)
        # predicted noise = c_skip(t) (x_t - sqrt(alpha_bar_t) mean) + c_out(t) f
        return (self.c_skip[t][:, :, None, None] * (x - self.c_mean[t][:, :, None, None])
                + self.c_out[t][:, :, None, None] * f)


def load(weights_path: str | Path, device: str = "cpu") -> UNet:
    """Build the UNet, load its safetensors weights (stored as float16) in float32 on ``device``."""
    from safetensors.torch import load_file

    model = UNet()
    state = {k: v.float() for k, v in load_file(str(weights_path)).items()}
    model.load_state_dict(state)
    return model.to(device).eval()


def check_steps(num_inference_steps: Any) -> int:
    """Validate ``num_inference_steps`` (an integer in 1..1000) and return it as an int."""
    if isinstance(num_inference_steps, bool) or not isinstance(num_inference_steps, (int, np.integer)):
        if isinstance(num_inference_steps, float) and num_inference_steps.is_integer():
            num_inference_steps = int(num_inference_steps)
        else:
            raise ValueError(f"num_inference_steps must be an integer in 1..{T}, not {num_inference_steps!r}")
    steps = int(num_inference_steps)
    if not 1 <= steps <= T:
        raise ValueError(f"num_inference_steps must be an integer in 1..{T}, not {steps}")
    return steps


def ddim_timesteps(num_inference_steps: int) -> list[int]:
    """The DDIM timesteps, from T-1 down to 0 ("trailing" spacing; one step: only T-1)."""
    steps = check_steps(num_inference_steps)
    return sorted({round(T - 1 - i * T / steps) for i in range(steps)}, reverse=True)


def initial_noise(seeds: Sequence[int], device: Any = "cpu") -> torch.Tensor:
    """One standard-normal (3, 64, 64) noise image per seed, drawn for the whole batch on ``device``
    with :func:`medhub.noise.normal` (Philox keyed by the seed: the same random bits on every device)."""
    return noise.normal(seeds, (CHANNELS, IMAGE_SIZE, IMAGE_SIZE), device=device)


def ddim_sample(model: UNet, noise: torch.Tensor, num_inference_steps: int = DEFAULT_STEPS) -> torch.Tensor:
    """Deterministic DDIM (eta = 0) from ``noise`` (N, 3, 64, 64); returns images in [-1, 1]."""
    device = next(model.parameters()).device
    alpha_bar = cosine_alpha_bar().to(device)
    x = noise.to(device)
    ts = ddim_timesteps(num_inference_steps)
    for i, t in enumerate(ts):
        a_t = alpha_bar[t]
        a_prev = alpha_bar[ts[i + 1]] if i + 1 < len(ts) else torch.ones((), dtype=alpha_bar.dtype, device=device)
        tt = torch.tensor([t], device=device)
        eps = kit.run_in_blocks(partial(model, t=tt), x, block=CHUNK, device=device).double()
        xd = x.double()
        x0 = ((xd - (1 - a_t).sqrt() * eps) / a_t.sqrt()).clamp(-1, 1)
        eps = (xd - a_t.sqrt() * x0) / (1 - a_t).sqrt()
        x = (a_prev.sqrt() * x0 + (1 - a_prev).sqrt() * eps).float()
    return x.clamp(-1, 1)


def sample(model: UNet, seeds: Sequence[int], num_inference_steps: int = DEFAULT_STEPS,
           **_: Any) -> dict[str, np.ndarray]:
    """Generate one RGB fundus patch per seed; sample i depends only on ``seeds[i]`` and the steps.

    ``num_inference_steps``: number of deterministic DDIM steps, an integer in 1..1000 (default 25;
    fewer is faster and blurrier). Returns ``{"image": uint8 array (N, 64, 64, 3)}``.
    """
    steps = check_steps(num_inference_steps)
    if len(seeds) == 0:
        return {"image": np.zeros((0, IMAGE_SIZE, IMAGE_SIZE, CHANNELS), np.uint8)}
    return {"image": kit.to_uint8(ddim_sample(model, initial_noise(seeds, next(model.parameters()).device), steps))}


def generate(model_file: str | Path, num_samples: int = 16, output_path: str | Path | None = None,
             save_images: bool = True, seed: int | None = None, num_inference_steps: int = DEFAULT_STEPS,
             **kwargs: Any) -> list[np.ndarray] | None:
    """medigan-compatible entry point: returns a list of (64, 64, 3) uint8 arrays, or writes PNGs.

    Without ``seed`` the per-sample seeds come from numpy's global generator, so seeding it
    (as medigan users do with ``np.random.seed``) makes the call reproducible.
    """
    steps = check_steps(num_inference_steps)
    return kit.medigan_generate(load, sample, model_file, num_samples, output_path, save_images, seed,
                                num_inference_steps=steps)
