"""Train the shipped WGAN-GP ``00102_WGANGP_HEAD_CT`` on axial head CT slices.

    python tools/train/train_wgangp_ct.py --iterations 3000 --run-dir runs/wgangp_ct

Data: ``data_sources.ct_head_axial(64, part="train")`` (the InVesalius example head CT, windowed at
level 40 / width 400 HU; the held-out slices of ``data_sources.split`` are never read).
Resumes from ``<run-dir>/checkpoint.pt`` when it exists (written at least every 3 minutes); with
``--iterations N`` at or below the checkpoint's iteration it only exports the weights and the grid.
Writes ``models/00102_WGANGP_HEAD_CT/weights.safetensors``, ``<run-dir>/training.json`` and
``docs/img/00102_WGANGP_HEAD_CT_grid.png``. ``--iterations`` counts generator updates; each one
follows ``--n-critic`` critic updates.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import torch
from common import ROOT, augment, load_package, recalibrate_batchnorm, save_grid, write_json
from data_sources import ct_head_axial
from torch import nn

from medhub.package_kit import to_uint8

MODEL_ID = "00102_WGANGP_HEAD_CT"


class Critic(nn.Module):
    """WGAN critic without batch normalisation (layer norm = GroupNorm with one group)."""

    def __init__(self, width: int = 32) -> None:
        super().__init__()
        w = width
        self.net = nn.Sequential(
            nn.Conv2d(1, w, 4, 2, 1),  # 32
            nn.LeakyReLU(0.2, True),
            nn.Conv2d(w, w * 2, 4, 2, 1),  # 16
            nn.GroupNorm(1, w * 2),
            nn.LeakyReLU(0.2, True),
            nn.Conv2d(w * 2, w * 4, 4, 2, 1),  # 8
            nn.GroupNorm(1, w * 4),
            nn.LeakyReLU(0.2, True),
            nn.Conv2d(w * 4, w * 8, 4, 2, 1),  # 4
            nn.GroupNorm(1, w * 8),
            nn.LeakyReLU(0.2, True),
            nn.Conv2d(w * 8, 1, 4, 1, 0),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x).view(-1)


def init_weights(m: nn.Module) -> None:
    if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d)):
        nn.init.normal_(m.weight, 0.0, 0.02)
        if m.bias is not None:
            nn.init.zeros_(m.bias)
    elif isinstance(m, nn.BatchNorm2d):
        nn.init.normal_(m.weight, 1.0, 0.02)
        nn.init.zeros_(m.bias)




def gradient_penalty(d: nn.Module, real: torch.Tensor, fake: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    """WGAN-GP penalty: (||grad_x D(x)||_2 - 1)^2 at random points between real and fake samples."""
    eps = torch.rand(real.shape[0], 1, 1, 1, generator=gen)
    x = (eps * real + (1 - eps) * fake).requires_grad_(True)
    grad = torch.autograd.grad(d(x).sum(), x, create_graph=True)[0]
    return ((grad.flatten(1).norm(2, dim=1) - 1) ** 2).mean()




def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--iterations", type=int, default=3000, help="generator updates")
    ap.add_argument("--n-critic", type=int, default=5)
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--lr-g", type=float, default=2e-4)
    ap.add_argument("--lr-d", type=float, default=2e-4)
    ap.add_argument("--critic-width", type=int, default=16)
    ap.add_argument("--gp", type=float, default=10.0, help="gradient penalty weight lambda")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--run-dir", type=Path, default=ROOT / "runs" / "wgangp_ct")
    ap.add_argument("--checkpoint-every", type=int, default=100, help="iterations (also every 3 minutes)")
    ap.add_argument("--preview-every", type=int, default=100)
    args = ap.parse_args()

    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    pkg = load_package(MODEL_ID)
    data = torch.from_numpy(ct_head_axial(pkg.IMAGE_SIZE, part="train"))[:, None]
    g, d = pkg.Generator(), Critic(args.critic_width)
    g.apply(init_weights)
    d.apply(init_weights)
    opt_g = torch.optim.Adam(g.parameters(), lr=args.lr_g, betas=(0.0, 0.9))
    opt_d = torch.optim.Adam(d.parameters(), lr=args.lr_d, betas=(0.0, 0.9))
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
        for opt, lr in ((opt_g, args.lr_g), (opt_d, args.lr_d)):  # the command line wins on resume
            for group in opt.param_groups:
                group["lr"] = lr
        print(f"resumed at iteration {start}", flush=True)
    print(f"{data.shape[0]} training slices; generator {sum(p.numel() for p in g.parameters())} parameters, "
          f"critic {sum(p.numel() for p in d.parameters())}", flush=True)

    def save_checkpoint(iteration: int) -> None:
        state = {"g": g.state_dict(), "d": d.state_dict(), "opt_g": opt_g.state_dict(),
                 "opt_d": opt_d.state_dict(), "rng": gen.get_state(), "iteration": iteration,
                 "elapsed": time.time() - t0}
        torch.save(state, args.run_dir / "checkpoint.tmp")
        (args.run_dir / "checkpoint.tmp").replace(ckpt)

    t0 = time.time() - elapsed
    last_ckpt = time.time()
    bs = args.batch_size
    it = start
    for it in range(start, args.iterations):
        for _ in range(args.n_critic):
            idx = torch.randint(0, data.shape[0], (bs,), generator=gen)
            real = augment(data[idx], gen)
            with torch.no_grad():
                fake = g(torch.randn(bs, pkg.LATENT_DIM, generator=gen))
            w_dist = d(real).mean() - d(fake).mean()
            gp = gradient_penalty(d, real, fake, gen)
            loss_d = -w_dist + args.gp * gp
            opt_d.zero_grad()
            loss_d.backward()
            opt_d.step()
        for p in d.parameters():
            p.requires_grad_(False)
        loss_g = -d(g(torch.randn(bs, pkg.LATENT_DIM, generator=gen))).mean()
        opt_g.zero_grad()
        loss_g.backward()
        opt_g.step()
        for p in d.parameters():
            p.requires_grad_(True)
        done = it + 1
        if done % 10 == 0:
            print(f"it {done} W {w_dist.item():.3f} gp {gp.item():.3f} loss_g {loss_g.item():.3f} "
                  f"{time.time() - t0:.0f}s", flush=True)
        if done % args.checkpoint_every == 0 or done == args.iterations or time.time() - last_ckpt > 150:
            save_checkpoint(done)
            last_ckpt = time.time()
        if done % args.preview_every == 0 or done == args.iterations:
            g.eval()
            with torch.no_grad():
                preview = to_uint8(g(pkg.latents(range(32))))
            g.train()
            save_grid(preview, args.run_dir / f"preview_{done:05d}.png")
    trained = max(start, args.iterations if args.iterations > start else start)
    wall = time.time() - t0

    from safetensors.torch import save_file

    recalibrate_batchnorm(g, pkg.LATENT_DIM)
    out = ROOT / "models" / MODEL_ID / pkg.WEIGHTS_FILE
    save_file({k: v.contiguous() for k, v in g.state_dict().items()}, str(out))
    model = pkg.load(out, "cpu")
    save_grid(pkg.sample(model, list(range(32)))["image"], args.run_dir / "final_preview.png")
    write_json(args.run_dir / "training.json", {
        "model_id": MODEL_ID, "iterations": trained, "n_critic": args.n_critic, "wall_time_s": round(wall, 1),
        "batch_size": bs, "lr_g": args.lr_g, "lr_d": args.lr_d, "betas": [0.0, 0.9], "gp_lambda": args.gp, "critic_width": args.critic_width,
        "seed": args.seed, "threads": args.threads, "torch": torch.__version__,
        "num_train_slices": int(data.shape[0]),
        "generator_parameters": sum(p.numel() for p in g.parameters()),
        "critic_parameters": sum(p.numel() for p in d.parameters())})
    try:
        from medhub import Generators

        grid = Generators().generate(MODEL_ID, num_samples=32, save_images=False, seed=0)
        save_grid(__import__("numpy").stack(grid), ROOT / "docs" / "img" / f"{MODEL_ID}_grid.png")
    except Exception as exc:  # the catalog entry may not be pinned yet
        print(f"grid through medhub skipped ({exc}); run it after tools/catalog.py pin", flush=True)
    print(f"done: {trained} iterations in {wall:.0f}s -> {out}", flush=True)


if __name__ == "__main__":
    main()
