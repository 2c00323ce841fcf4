"""Train the shipped DCGAN ``00101_DCGAN_BRAIN_MRI_T1`` on MNI152 T1 axial slices.

    python tools/train/train_dcgan_mri_t1.py --iterations 5000 --run-dir runs/dcgan

Resumes from ``<run-dir>/checkpoint.pt`` when it exists, so a long run can be restarted.
Writes ``models/00101_DCGAN_BRAIN_MRI_T1/weights.safetensors`` and ``docs/img/00101_grid.png``.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import torch
from common import ROOT, augment, load_package, recalibrate_batchnorm, save_grid, write_json
from data_sources import mni152_axial
from torch import nn

from medhub.package_kit import to_uint8

MODEL_ID = "00101_DCGAN_BRAIN_MRI_T1"


class Discriminator(nn.Module):
    def __init__(self, width: int = 32) -> None:
        super().__init__()
        w = width
        self.net = nn.Sequential(
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
            nn.Conv2d(w * 8, 1, 4, 1, 0),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x).view(-1)


def init_weights(m: nn.Module) -> None:
    if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d)):
        nn.init.normal_(m.weight, 0.0, 0.02)
    elif isinstance(m, nn.BatchNorm2d):
        nn.init.normal_(m.weight, 1.0, 0.02)
        nn.init.zeros_(m.bias)






def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--iterations", type=int, default=5000)
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--lr-g", type=float, default=1e-3)
    ap.add_argument("--lr-d", type=float, default=2e-4)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--run-dir", type=Path, default=ROOT / "runs" / "dcgan")
    ap.add_argument("--checkpoint-every", type=int, default=250)
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()

    torch.manual_seed(args.seed)
    pkg = load_package(MODEL_ID)
    torch.set_num_threads(args.threads)
    # the training split only: every 4th slice is held out for evaluation (data_sources.split)
    data = torch.from_numpy(mni152_axial("t1", size=pkg.IMAGE_SIZE, part="train"))[:, None]
    g, d = pkg.Generator(), Discriminator()
    g.apply(init_weights)
    d.apply(init_weights)
    opt_g = torch.optim.Adam(g.parameters(), lr=args.lr_g, betas=(0.5, 0.999))
    opt_d = torch.optim.Adam(d.parameters(), lr=args.lr_d, betas=(0.5, 0.999))
    gen = torch.Generator().manual_seed(args.seed)
    start, elapsed = 0, 0.0
    ckpt = args.run_dir / "checkpoint.pt"
    if ckpt.exists():
        state = torch.load(ckpt, weights_only=True)
        g.load_state_dict(state["g"])
        d.load_state_dict(state["d"])
        opt_g.load_state_dict(state["opt_g"])
        opt_d.load_state_dict(state["opt_d"])
        gen.set_state(state["rng"])
        start, elapsed = int(state["iteration"]), float(state["elapsed"])
        print(f"resumed at iteration {start}")
    bce = nn.BCEWithLogitsLoss()
    t0 = time.time() - elapsed
    total = max(start, args.iterations)  # an --iterations at or below the checkpoint only exports
    for it in range(start, total):
        idx = torch.randint(0, data.shape[0], (args.batch_size,), generator=gen)
        real = augment(data[idx], gen)
        z = torch.randn(args.batch_size, pkg.LATENT_DIM, generator=gen)
        fake = g(z)
        ones, zeros = torch.ones(args.batch_size), torch.zeros(args.batch_size)
        loss_d = bce(d(real), ones * 0.9) + bce(d(fake.detach()), zeros)
        opt_d.zero_grad()
        loss_d.backward()
        opt_d.step()
        loss_g = bce(d(fake), ones)
        opt_g.zero_grad()
        loss_g.backward()
        opt_g.step()
        if (it + 1) % 50 == 0:
            print(f"it {it + 1} loss_d {loss_d.item():.3f} loss_g {loss_g.item():.3f} {time.time() - t0:.0f}s", flush=True)
        if (it + 1) % args.checkpoint_every == 0 or it + 1 == args.iterations:
            args.run_dir.mkdir(parents=True, exist_ok=True)
            state = {"g": g.state_dict(), "d": d.state_dict(), "opt_g": opt_g.state_dict(),
                     "opt_d": opt_d.state_dict(), "rng": gen.get_state(), "iteration": it + 1,
                     "elapsed": time.time() - t0}
            torch.save(state, args.run_dir / "checkpoint.tmp")
            (args.run_dir / "checkpoint.tmp").replace(ckpt)
            g.eval()
            with torch.no_grad():
                preview = to_uint8(g(pkg.latents(range(32))))
            g.train()
            save_grid(preview, args.run_dir / f"preview_{it + 1:05d}.png")
    wall = time.time() - t0

    from safetensors.torch import save_file

    recalibrate_batchnorm(g, pkg.LATENT_DIM)
    out = ROOT / "models" / MODEL_ID / pkg.WEIGHTS_FILE
    save_file({k: v.contiguous() for k, v in g.state_dict().items()}, str(out))
    with torch.no_grad():
        save_grid(to_uint8(g(pkg.latents(range(32)))), ROOT / "docs" / "img" / "00101_grid.png")
    write_json(args.run_dir / "training.json", {"iterations": total, "wall_time_s": round(wall, 1),
                                                "batch_size": args.batch_size, "lr_g": args.lr_g,
                                                "lr_d": args.lr_d, "seed": args.seed,
                                                "torch": torch.__version__, "num_slices": int(data.shape[0]),
                                                "split": "train (data_sources.split: every 4th slice held out)",
                                                "threads": args.threads})
    print(f"done in {wall:.0f}s -> {out}")


if __name__ == "__main__":
    main()
