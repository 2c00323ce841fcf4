"""Train the shipped pix2pix ``00104_PIX2PIX_BRAIN_SEG_TO_T1``: brain tissue label map -> T1 slice.

    python tools/train/train_pix2pix_seg_t1.py --iterations 3000 --run-dir runs/pix2pix_seg_t1

Data: the 85 training pairs of ``data_sources.mni152_tissue_labels(64, part="train")`` and
``data_sources.mni152_axial("t1", 64, part="train")`` (MNI152 2009a, nilearn). Conditional GAN
with a U-Net generator and a 34x34-receptive-field PatchGAN discriminator, loss
GAN (BCE) + 100 * L1, Adam (0.5, 0.999), constant learning rate for the first half and linear
decay to zero over the second half (as in the pix2pix paper). Pairs are augmented identically
(left-right flip, shifts of up to 3 pixels).

Resumes from ``<run-dir>/checkpoint.pt`` (written at least every 3 minutes); with
``--iterations N`` at or below the checkpoint's iteration it only exports. Writes
``models/00104_PIX2PIX_BRAIN_SEG_TO_T1/weights.safetensors`` (generator + ``mask_bank``, the 85
training label maps), ``<run-dir>/training.json``, preview grids in the run dir, and
``docs/img/00104_PIX2PIX_BRAIN_SEG_TO_T1_grid.png``.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from common import ROOT, load_package, save_grid, write_json
from data_sources import mni152_axial, mni152_tissue_labels
from torch import nn

from medhub.package_kit import to_uint8

MODEL_ID = "00104_PIX2PIX_BRAIN_SEG_TO_T1"


class Discriminator(nn.Module):
    """Conditional PatchGAN: (one-hot label map, image) (N, 5, 64, 64) -> (N, 1, 7, 7) logits."""

    def __init__(self, in_channels: int = 5, width: int = 32) -> None:
        super().__init__()
        w = width
        self.net = nn.Sequential(
            nn.Conv2d(in_channels, w, 4, 2, 1),  # 32
            nn.LeakyReLU(0.2, True),
            nn.Conv2d(w, w * 2, 4, 2, 1, bias=False),  # 16
            nn.InstanceNorm2d(w * 2, affine=True),
            nn.LeakyReLU(0.2, True),
            nn.Conv2d(w * 2, w * 4, 4, 2, 1, bias=False),  # 8
            nn.InstanceNorm2d(w * 4, affine=True),
            nn.LeakyReLU(0.2, True),
            nn.Conv2d(w * 4, 1, 4, 1, 1),  # 7x7 patches
        )

    def forward(self, cond: torch.Tensor, img: torch.Tensor) -> torch.Tensor:
        return self.net(torch.cat([cond, img], 1))


def init_weights(m: nn.Module) -> None:
    if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d)):
        nn.init.normal_(m.weight, 0.0, 0.02)
        if m.bias is not None:
            nn.init.zeros_(m.bias)
    elif isinstance(m, nn.InstanceNorm2d) and m.affine:
        nn.init.normal_(m.weight, 1.0, 0.02)
        nn.init.zeros_(m.bias)


def augment(labels: torch.Tensor, images: torch.Tensor, gen: torch.Generator,
            max_shift: int = 3) -> tuple[torch.Tensor, torch.Tensor]:
    """The same random left-right flip and integer shift for each (label map, image) pair."""
    n, s = labels.shape[0], labels.shape[-1]
    flip = torch.rand(n, generator=gen) < 0.5
    labels = torch.where(flip[:, None, None], labels.flip(-1), labels)
    images = torch.where(flip[:, None, None], images.flip(-1), images)
    lp = F.pad(labels, [max_shift] * 4, value=0)
    ip = F.pad(images, [max_shift] * 4, value=-1.0)
    shifts = torch.randint(0, 2 * max_shift + 1, (n, 2), generator=gen)
    out_l, out_i = torch.empty_like(labels), torch.empty_like(images)
    for i, (dy, dx) in enumerate(shifts.tolist()):
        out_l[i] = lp[i, dy : dy + s, dx : dx + s]
        out_i[i] = ip[i, dy : dy + s, dx : dx + s]
    return out_l, out_i


def preview(pkg, g: nn.Module, labels: np.ndarray, real: np.ndarray, path: Path) -> None:
    """Rows of 8: label maps (x85), generated images, real images."""
    g.eval()
    with torch.no_grad():
        fake = to_uint8(g(pkg.one_hot(labels)))
    g.train()
    rows = []
    for k in range(0, len(labels), 8):
        rows += [labels[k : k + 8] * 85, fake[k : k + 8], real[k : k + 8]]
    save_grid(np.concatenate(rows).astype(np.uint8), path)


def export_grid(pkg, path: Path) -> None:
    """16 (mask, image) pairs of run seed 0 through medhub: a row of masks (x85), then a row of images."""
    try:
        from medhub import Generators

        samples = Generators().generate(MODEL_ID, num_samples=16, save_images=False, seed=0, device="cpu",
                                        package_path=str(ROOT / "models" / MODEL_ID))
        images = np.stack([s[0] for s in samples])
        masks = np.stack([s[1] for s in samples])
        print("grid made through medhub")
    except Exception as exc:  # catalog entry not written yet: the same seeds, straight through the package
        from medhub.execution.seeds import sample_seeds

        print(f"medhub could not run the package ({exc}); using it directly with medhub's seeds")
        model = pkg.load(ROOT / "models" / MODEL_ID / pkg.WEIGHTS_FILE, "cpu")
        out = pkg.sample(model, sample_seeds(0, range(16)))
        images, masks = out["image"], out["mask"]
    rows = []
    for k in range(0, 16, 8):
        rows += [masks[k : k + 8] * 85, images[k : k + 8]]
    save_grid(np.concatenate(rows).astype(np.uint8), path)


EXAMPLE_HELD_OUT = (5, 11, 17, 23)  # held-out slices z = 48, 72, 96, 120 of the MNI152 template


def write_examples(folder: Path) -> None:
    """The package's example input: 4 held-out label maps as 8-bit PNGs with values 0..3 (as medhub writes
    masks), named ``<k>_mni152_z<z>.png``."""
    from data_sources import mni152_slice_positions, split
    from PIL import Image

    positions = mni152_slice_positions()
    held = [positions[i] for i in split(len(positions))[1]]
    labels = mni152_tissue_labels(64, part="held_out")
    folder.mkdir(parents=True, exist_ok=True)
    for k, j in enumerate(EXAMPLE_HELD_OUT):
        Image.fromarray(labels[j]).save(folder / f"{k}_mni152_z{held[j]:03d}.png")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--iterations", type=int, default=3000)
    ap.add_argument("--batch-size", type=int, default=8)
    ap.add_argument("--lr-g", type=float, default=2e-4)
    ap.add_argument("--lr-d", type=float, default=2e-4)
    ap.add_argument("--l1", type=float, default=100.0)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--run-dir", type=Path, default=ROOT / "runs" / "pix2pix_seg_t1")
    ap.add_argument("--checkpoint-seconds", type=float, default=150.0)
    ap.add_argument("--preview-every", type=int, default=250)
    args = ap.parse_args()

    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    pkg = load_package(MODEL_ID)
    labels_np = mni152_tissue_labels(pkg.IMAGE_SIZE, part="train")
    labels = torch.from_numpy(labels_np.astype(np.int64))
    images = torch.from_numpy(mni152_axial("t1", pkg.IMAGE_SIZE, part="train"))
    held_labels = mni152_tissue_labels(pkg.IMAGE_SIZE, part="held_out")[:16]
    held_real = to_uint8(torch.from_numpy(mni152_axial("t1", pkg.IMAGE_SIZE, part="held_out")[:16])[:, None])

    g, d = pkg.Generator(), Discriminator()
    g.apply(init_weights)
    d.apply(init_weights)
    opt_g = torch.optim.Adam(g.parameters(), lr=args.lr_g, betas=(0.5, 0.999))
    opt_d = torch.optim.Adam(d.parameters(), lr=args.lr_d, betas=(0.5, 0.999))
    half = args.iterations // 2

    def lr_factor(it: int) -> float:  # constant, then linear decay to 0 over the second half
        return 1.0 if it < half else max(0.0, 1.0 - (it - half) / max(1, args.iterations - half))

    sched_g = torch.optim.lr_scheduler.LambdaLR(opt_g, lr_factor)
    sched_d = torch.optim.lr_scheduler.LambdaLR(opt_d, lr_factor)
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
        sched_g.last_epoch = sched_d.last_epoch = start - 1
        sched_g.step()
        sched_d.step()
        print(f"resumed at iteration {start}", flush=True)
    args.run_dir.mkdir(parents=True, exist_ok=True)
    print(f"generator {sum(p.numel() for p in g.parameters())} parameters, "
          f"discriminator {sum(p.numel() for p in d.parameters())}", flush=True)

    def save_checkpoint(iteration: int) -> None:
        state = {"g": g.state_dict(), "d": d.state_dict(), "opt_g": opt_g.state_dict(),
                 "opt_d": opt_d.state_dict(), "rng": gen.get_state(), "iteration": iteration,
                 "elapsed": time.time() - t0}
        torch.save(state, args.run_dir / "checkpoint.tmp")
        (args.run_dir / "checkpoint.tmp").replace(ckpt)

    bce = nn.BCEWithLogitsLoss()
    t0 = time.time() - elapsed
    last_ckpt = time.time()
    g.train()
    d.train()
    for it in range(start, args.iterations):
        idx = torch.randint(0, labels.shape[0], (args.batch_size,), generator=gen)
        lab, real = augment(labels[idx], images[idx], gen)
        cond, real = pkg.one_hot(lab), real[:, None]
        fake = g(cond)
        pred_real, pred_fake = d(cond, real), d(cond, fake.detach())
        loss_d = 0.5 * (bce(pred_real, torch.ones_like(pred_real)) + bce(pred_fake, torch.zeros_like(pred_fake)))
        opt_d.zero_grad()
        loss_d.backward()
        opt_d.step()
        pred = d(cond, fake)
        loss_gan = bce(pred, torch.ones_like(pred))
        loss_l1 = F.l1_loss(fake, real)
        loss_g = loss_gan + args.l1 * loss_l1
        opt_g.zero_grad()
        loss_g.backward()
        opt_g.step()
        sched_g.step()
        sched_d.step()
        done = it + 1
        if done % 25 == 0:
            print(f"it {done} loss_d {loss_d.item():.3f} gan {loss_gan.item():.3f} l1 {loss_l1.item():.4f} "
                  f"lr {sched_g.get_last_lr()[0]:.2e} {time.time() - t0:.0f}s", flush=True)
        if done % args.preview_every == 0:
            preview(pkg, g, held_labels, held_real, args.run_dir / f"preview_{done:05d}.png")
        if time.time() - last_ckpt >= args.checkpoint_seconds or done == args.iterations:
            save_checkpoint(done)
            last_ckpt = time.time()
    wall = time.time() - t0
    iterations = max(start, args.iterations)
    if start >= args.iterations:
        wall = elapsed
        print(f"checkpoint at iteration {start} >= --iterations {args.iterations}: exporting only", flush=True)

    from safetensors.torch import save_file

    g.eval()
    tensors = {k: v.detach().contiguous() for k, v in g.state_dict().items()}
    tensors["mask_bank"] = torch.from_numpy(np.ascontiguousarray(labels_np, dtype=np.uint8))
    out = ROOT / "models" / MODEL_ID / pkg.WEIGHTS_FILE
    save_file(tensors, str(out), metadata={"format": "pt"})
    preview(pkg, g, held_labels, held_real, args.run_dir / "preview_final.png")
    write_examples(ROOT / "models" / MODEL_ID / "examples")
    export_grid(pkg, ROOT / "docs" / "img" / f"{MODEL_ID}_grid.png")
    write_json(args.run_dir / "training.json", {
        "iterations": iterations, "wall_time_s": round(wall, 1), "batch_size": args.batch_size,
        "lr_g": args.lr_g, "lr_d": args.lr_d, "betas": [0.5, 0.999], "l1_weight": args.l1,
        "lr_schedule": "constant for the first half, linear decay to 0 over the second half",
        "seed": args.seed, "threads": args.threads, "torch": torch.__version__,
        "num_train_pairs": int(labels.shape[0]),
        "generator_parameters": sum(p.numel() for p in g.parameters()),
        "discriminator_parameters": sum(p.numel() for p in d.parameters()),
        "command": f"python tools/train/train_pix2pix_seg_t1.py --iterations {iterations} "
                   f"--batch-size {args.batch_size} --lr-g {args.lr_g} --lr-d {args.lr_d} --l1 {args.l1} "
                   f"--seed {args.seed}",
    })
    print(f"done: {iterations} iterations in {wall:.0f}s -> {out}", flush=True)


if __name__ == "__main__":
    main()
