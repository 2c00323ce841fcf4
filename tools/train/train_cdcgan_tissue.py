"""Train the shipped class-conditional DCGAN ``00103_CDCGAN_BRAIN_MRI_TISSUE`` on MNI152 T1 / GM / WM slices.

    python tools/train/train_cdcgan_tissue.py --iterations 1853 --run-dir runs/cdcgan_tissue

Data: ``data_sources.mni152_axial(kind, 64, part="train")`` for kind t1, gm, wm (85 training
slices each, the same positions for every map). Class 0 = T1, 1 = GM, 2 = WM. Each iteration
trains on one class, drawn uniformly (real and fake batches of that class).

The generator (in the package) gets the class as a learned embedding concatenated to the latent
vector and uses per-class BatchNorm statistics; the discriminator here is a projection discriminator (Miyato & Koyama, 2018): the logit is
an unconditional head on the image features (plus a minibatch-standard-deviation channel) plus the
inner product of a learned class embedding with the pooled features.

Resumes from ``<run-dir>/checkpoint.pt`` (written at least every 3 minutes) when it exists;
``--iterations N`` with N <= the checkpoint's iteration only exports the weights and the grid.
Writes ``models/00103_CDCGAN_BRAIN_MRI_TISSUE/weights.safetensors``,
``docs/img/00103_CDCGAN_BRAIN_MRI_TISSUE_grid.png`` and ``<run-dir>/training.json``.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import torch
from common import ROOT, augment, load_package, save_grid, write_json
from data_sources import mni152_axial
from torch import nn

from medhub.package_kit import to_uint8

MODEL_ID = "00103_CDCGAN_BRAIN_MRI_TISSUE"
KINDS = ("t1", "gm", "wm")  # class 0, 1, 2 (the package's CONDITIONS order)


class Discriminator(nn.Module):
    """DCGAN discriminator with a class projection and a minibatch-standard-deviation feature.

    logit = head([phi(x), mbstd(phi(x))]) + <embed(y), sum_xy phi(x)>. The minibatch-std channel
    (Karras et al., 2018: the mean standard deviation of the features over groups of 4 samples)
    lets the discriminator see a lack of diversity; without it the generator ignored its latent
    vector and produced one image per class.
    """

    def __init__(self, num_classes: int = 3, width: int = 32, group: int = 4) -> None:
        super().__init__()
        w = width
        self.group = group
        self.features = nn.Sequential(
            nn.Conv2d(1, w, 4, 2, 1),  # 32
            nn.LeakyReLU(0.2, True),
            nn.Conv2d(w, w * 2, 4, 2, 1, bias=False),  # 16
            nn.BatchNorm2d(w * 2),
            nn.LeakyReLU(0.2, True),
            nn.Conv2d(w * 2, w * 4, 4, 2, 1, bias=False),  # 8
            nn.BatchNorm2d(w * 4),
            nn.LeakyReLU(0.2, True),
            nn.Conv2d(w * 4, w * 8, 4, 2, 1, bias=False),  # 4
            nn.BatchNorm2d(w * 8),
            nn.LeakyReLU(0.2, True),
        )
        self.head = nn.Conv2d(w * 8 + 1, 1, 4, 1, 0)
        self.embed = nn.Embedding(num_classes, w * 8)

    def minibatch_std(self, f: torch.Tensor) -> torch.Tensor:
        n, c, h, w = f.shape
        gs = self.group if n % self.group == 0 else 1
        if gs == 1:
            return f.new_zeros(n, 1, h, w)
        std = (f.view(gs, n // gs, c, h, w).var(dim=0, unbiased=False) + 1e-8).sqrt()  # (n/gs, c, h, w)
        return std.mean(dim=(1, 2, 3)).view(1, n // gs, 1, 1, 1).expand(gs, -1, 1, h, w).reshape(n, 1, h, w)

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        f = self.features(x)
        proj = (self.embed(y) * f.sum(dim=(2, 3))).sum(dim=1)
        return self.head(torch.cat([f, self.minibatch_std(f)], dim=1)).view(-1) + proj


def init_weights(m: nn.Module) -> None:
    if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d)):
        nn.init.normal_(m.weight, 0.0, 0.02)
    elif isinstance(m, nn.BatchNorm2d):
        nn.init.normal_(m.weight, 1.0, 0.02)
        nn.init.zeros_(m.bias)




@torch.no_grad()
def recalibrate_batchnorm(g: nn.Module, latent_dim: int, num_classes: int, batches: int = 100,
                          batch_size: int = 64) -> None:
    """Replace the per-class BatchNorm running statistics by exact averages over fresh one-class batches."""
    gen = torch.Generator().manual_seed(1234)
    for m in g.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.reset_running_stats()
            m.momentum = None
    g.train()
    for k in range(num_classes):
        c = torch.full((batch_size,), k, dtype=torch.long)
        for _ in range(batches):
            g(torch.randn(batch_size, latent_dim, generator=gen), c)
    g.eval()


def preview(pkg, g: nn.Module, path: Path) -> None:
    """Rows T1, GM, WM; column j uses the same latent vector in every row."""
    g.eval()
    z = pkg.latents(range(8)).repeat(3, 1)
    c = torch.arange(3).repeat_interleave(8)
    with torch.no_grad():
        save_grid(to_uint8(g(z, c)), path)
    g.train()


def grid_conditions() -> list[str]:
    """Conditions of the 32 samples of the docs grid: a row of 8 for each of T1, GM, WM, then 8
    samples whose condition is drawn from their seeds (given as the per-sample default)."""
    return ["T1"] * 8 + ["GM"] * 8 + ["WM"] * 8


def export_grid(pkg) -> None:
    """The docs grid from the shipped weights through medhub, seed 0 (rows: T1, GM, WM, drawn)."""
    folder = ROOT / "models" / MODEL_ID
    from medhub import Generators
    from medhub.execution.seeds import sample_seeds

    g = Generators()
    try:
        g.get_model_executor(MODEL_ID)
        known = True
    except Exception:  # the catalog entry may not exist yet on a first run
        known = False
    if known:
        first = g.generate(MODEL_ID, num_samples=32, save_images=False, seed=0, package_path=str(folder),
                           device="cpu", condition=grid_conditions() + [None] * 8)
        images = np.stack([s[0] for s in first])
    else:
        model = pkg.load(folder / pkg.WEIGHTS_FILE, "cpu")
        seeds = sample_seeds(0, list(range(32)))
        images = np.concatenate([pkg.sample(model, seeds[:24], condition=grid_conditions())["image"],
                                 pkg.sample(model, seeds[24:])["image"]])
    save_grid(images, ROOT / "docs" / "img" / f"{MODEL_ID}_grid.png")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--iterations", type=int, default=1853)  # the shipped weights
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--lr-g", type=float, default=1e-3)
    ap.add_argument("--lr-d", type=float, default=2e-4)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--run-dir", type=Path, default=ROOT / "runs" / "cdcgan_tissue")
    ap.add_argument("--checkpoint-seconds", type=float, default=150.0)
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()

    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    pkg = load_package(MODEL_ID)
    data = torch.from_numpy(np.stack([mni152_axial(k, pkg.IMAGE_SIZE, part="train") for k in KINDS]))
    num_classes, n_slices = data.shape[0], data.shape[1]
    data = data.reshape(num_classes * n_slices, 1, pkg.IMAGE_SIZE, pkg.IMAGE_SIZE)
    labels = torch.arange(num_classes).repeat_interleave(n_slices)
    g, d = pkg.Generator(), Discriminator(num_classes)
    g.apply(init_weights)
    d.apply(init_weights)
    nn.init.normal_(d.embed.weight, 0.0, 0.02)
    opt_g = torch.optim.Adam(g.parameters(), lr=args.lr_g, betas=(0.5, 0.999))
    opt_d = torch.optim.Adam(d.parameters(), lr=args.lr_d, betas=(0.5, 0.999))
    gen = torch.Generator().manual_seed(args.seed)
    start, elapsed = 0, 0.0
    args.run_dir.mkdir(parents=True, exist_ok=True)
    ckpt = args.run_dir / "checkpoint.pt"
    if ckpt.exists():
        state = torch.load(ckpt, weights_only=True)
        g.load_state_dict(state["g"])
        d.load_state_dict(state["d"])
        opt_g.load_state_dict(state["opt_g"])
        opt_d.load_state_dict(state["opt_d"])
        gen.set_state(state["rng"])
        start, elapsed = int(state["iteration"]), float(state["elapsed"])
        print(f"resumed at iteration {start}", flush=True)

    def save_checkpoint(iteration: int) -> None:
        state = {"g": g.state_dict(), "d": d.state_dict(), "opt_g": opt_g.state_dict(),
                 "opt_d": opt_d.state_dict(), "rng": gen.get_state(), "iteration": iteration,
                 "elapsed": time.time() - t0}
        torch.save(state, args.run_dir / "checkpoint.tmp")
        (args.run_dir / "checkpoint.tmp").replace(ckpt)
        preview(pkg, g, args.run_dir / f"preview_{iteration:05d}.png")

    bce = nn.BCEWithLogitsLoss()
    t0 = time.time() - elapsed
    last_ckpt = time.time()
    done = start
    for it in range(start, args.iterations):
        # one class per iteration (real and fake): the generator's per-class BatchNorm then sees
        # only latent variation within a batch, as in an unconditional DCGAN
        k = int(torch.randint(0, num_classes, (1,), generator=gen))
        idx = k * n_slices + torch.randint(0, n_slices, (args.batch_size,), generator=gen)
        real, real_y = augment(data[idx], gen), labels[idx]
        z = torch.randn(args.batch_size, pkg.LATENT_DIM, generator=gen)
        fake_y = torch.full((args.batch_size,), k, dtype=torch.long)
        fake = g(z, fake_y)
        ones, zeros = torch.ones(args.batch_size), torch.zeros(args.batch_size)
        loss_d = bce(d(real, real_y), ones * 0.9) + bce(d(fake.detach(), fake_y), zeros)
        opt_d.zero_grad()
        loss_d.backward()
        opt_d.step()
        loss_g = bce(d(fake, fake_y), ones)
        opt_g.zero_grad()
        loss_g.backward()
        opt_g.step()
        done = it + 1
        if done % 25 == 0:
            print(f"it {done} loss_d {loss_d.item():.3f} loss_g {loss_g.item():.3f} {time.time() - t0:.0f}s",
                  flush=True)
        if time.time() - last_ckpt >= args.checkpoint_seconds or done == args.iterations:
            save_checkpoint(done)
            last_ckpt = time.time()
    wall = time.time() - t0 if done > start else elapsed

    from safetensors.torch import save_file

    recalibrate_batchnorm(g, pkg.LATENT_DIM, num_classes)
    out = ROOT / "models" / MODEL_ID / pkg.WEIGHTS_FILE
    save_file({k: v.contiguous() for k, v in g.state_dict().items()}, str(out), metadata={"format": "pt"})
    out.chmod(0o644)
    export_grid(pkg)
    write_json(args.run_dir / "training.json", {
        "model_id": MODEL_ID, "iterations": done, "wall_time_s": round(wall, 1), "batch_size": args.batch_size,
        "lr_g": args.lr_g, "lr_d": args.lr_d, "betas": [0.5, 0.999], "seed": args.seed, "threads": args.threads,
        "torch": torch.__version__, "num_slices_per_class": int(n_slices), "classes": list(pkg.CONDITIONS),
        "generator_parameters": sum(p.numel() for p in g.parameters()),
        "discriminator_parameters": sum(p.numel() for p in d.parameters()),
    })
    print(f"done: {done} iterations in {wall:.0f}s -> {out}", flush=True)


if __name__ == "__main__":
    main()
