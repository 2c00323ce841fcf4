"""Train the shipped CycleGAN ``00105_CYCLEGAN_HEAD_MRI_T1_CT`` (head MRI T1 <-> head CT, unpaired).

    python tools/train/train_cyclegan_t1_ct.py --iterations 2000 --run-dir runs/cyclegan_t1_ct

Domain A: the training slices of the Colin27 T1 with skull (``colin27_axial(64, part="train")``,
123 slices); domain B: the training slices of the InVesalius head CT (``ct_head_axial(64,
part="train")``, 77 slices, window level 40 / width 400 HU). Both from ``data_sources.py``; the
held-out slices are never seen in training, and 8 of each are written to the package's
``examples/t1`` and ``examples/ct`` folders.

Resumes from ``<run-dir>/checkpoint.pt`` when it exists (written at least every 3 minutes);
``--iterations N`` with N <= the checkpoint's iteration only exports the weights and the grid.
Writes ``models/00105_CYCLEGAN_HEAD_MRI_T1_CT/weights.safetensors``, ``<run-dir>/training.json``,
preview grids in ``<run-dir>`` and ``docs/img/00105_CYCLEGAN_HEAD_MRI_T1_CT_grid.png``.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import torch
from common import ROOT, augment, load_package, save_grid, write_json
from data_sources import colin27_axial, ct_head_axial, to_uint8
from torch import nn

MODEL_ID = "00105_CYCLEGAN_HEAD_MRI_T1_CT"
PACKAGE = ROOT / "models" / MODEL_ID
GRID = ROOT / "docs" / "img" / f"{MODEL_ID}_grid.png"
N_EXAMPLES = 8


class Discriminator(nn.Module):
    """PatchGAN discriminator for 64x64 images: a 14x14 map of logits, each seeing a 34x34 patch."""

    def __init__(self, width: int = 32) -> None:
        super().__init__()
        w = width
        self.net = nn.Sequential(
            nn.Conv2d(1, w, 4, 2, 1), nn.LeakyReLU(0.2, True),  # 32
            nn.Conv2d(w, 2 * w, 4, 2, 1), nn.InstanceNorm2d(2 * w), nn.LeakyReLU(0.2, True),  # 16
            nn.Conv2d(2 * w, 4 * w, 4, 1, 1), nn.InstanceNorm2d(4 * w), nn.LeakyReLU(0.2, True),  # 15
            nn.Conv2d(4 * w, 1, 4, 1, 1),  # 14
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


def init_weights(m: nn.Module) -> None:
    if isinstance(m, nn.Conv2d):
        nn.init.normal_(m.weight, 0.0, 0.02)
        if m.bias is not None:
            nn.init.zeros_(m.bias)




class ImagePool:
    """History of generated images (Shrivastava et al.): the discriminators see a mix of current and
    older fakes. Random choices come from the training generator, so runs are reproducible."""

    def __init__(self, size: int) -> None:
        self.size = size
        self.images: list[torch.Tensor] = []

    def query(self, batch: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
        if self.size == 0:
            return batch
        out = []
        for img in batch.detach():
            if len(self.images) < self.size:
                self.images.append(img.clone())
                out.append(img)
            elif torch.rand(1, generator=gen).item() < 0.5:
                k = int(torch.randint(0, self.size, (1,), generator=gen))
                out.append(self.images[k].clone())
                self.images[k] = img.clone()
            else:
                out.append(img)
        return torch.stack(out)


def write_examples() -> dict[str, list[Path]]:
    """Write 8 held-out slices of each domain as 8-bit PNGs into the package's examples folders."""
    from PIL import Image

    written = {}
    for name, slices, prefix in (("t1", colin27_axial(64, brain_only=False, part="held_out"), "colin27_t1_heldout"),
                                 ("ct", ct_head_axial(64, part="held_out"), "invesalius_ct_heldout")):
        folder = PACKAGE / "examples" / name
        folder.mkdir(parents=True, exist_ok=True)
        picks = np.linspace(0.2 * len(slices), 0.8 * len(slices), N_EXAMPLES).round().astype(int)
        written[name] = []
        for k in picks:
            path = folder / f"{prefix}_{k:02d}.png"
            Image.fromarray(to_uint8(slices[k])).save(path)
            written[name].append(path)
    return written


def preview(pkg, model, path: Path) -> None:
    """Rows: T1 examples, their CT translations, CT examples, their T1 translations."""
    rows = []
    for direction, folder in (("T1_to_CT", "t1"), ("CT_to_T1", "ct")):
        src = np.stack([pkg.read_image(p) for p in pkg.list_images(PACKAGE / "examples" / folder)])
        rows += [src, pkg.translate(model, src, direction)]
    save_grid(np.concatenate(rows), path)


def medhub_grid() -> None:
    """The docs grid from the exported package through medhub (unverified package_path, so it works
    before the catalog pin): rows T1 inputs, CT translations, CT inputs, T1 translations."""
    sys.path.insert(0, str(ROOT))
    from medhub import Generators
    from medhub.config import ConfigManager

    if MODEL_ID not in ConfigManager().model_ids:
        print(f"{MODEL_ID} is not in the catalog yet: grid skipped")
        return
    g = Generators()
    rows = []
    for direction in ("T1_to_CT", "CT_to_T1"):
        samples = g.generate(MODEL_ID, num_samples=N_EXAMPLES, save_images=False, seed=0, device="cpu",
                             package_path=str(PACKAGE), direction=direction)
        rows += [np.stack([s[1] for s in samples]), np.stack([s[0] for s in samples])]
    save_grid(np.concatenate(rows), GRID)
    print(f"grid -> {GRID}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--iterations", type=int, default=2000)
    ap.add_argument("--batch-size", type=int, default=2)
    ap.add_argument("--lr-g", type=float, default=2e-4)
    ap.add_argument("--lr-d", type=float, default=2e-4)
    ap.add_argument("--decay-start", type=float, default=0.5,
                    help="fraction of the iterations after which the learning rates decay linearly to 0")
    ap.add_argument("--lambda-cycle", type=float, default=10.0)
    ap.add_argument("--lambda-identity", type=float, default=5.0)
    ap.add_argument("--pool-size", type=int, default=50)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--run-dir", type=Path, default=ROOT / "runs" / "cyclegan_t1_ct")
    ap.add_argument("--checkpoint-seconds", type=float, default=150.0)
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()

    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    args.run_dir.mkdir(parents=True, exist_ok=True)
    write_examples()
    pkg = load_package(MODEL_ID)
    data_a = torch.from_numpy(colin27_axial(pkg.IMAGE_SIZE, brain_only=False, part="train"))[:, None]
    data_b = torch.from_numpy(ct_head_axial(pkg.IMAGE_SIZE, part="train"))[:, None]
    model = pkg.CycleGAN()
    d_a, d_b = Discriminator(), Discriminator()  # d_a judges T1 images, d_b CT images
    for net in (model, d_a, d_b):
        net.apply(init_weights)
    g_ab, g_ba = model.t1_to_ct, model.ct_to_t1
    opt_g = torch.optim.Adam(model.parameters(), lr=args.lr_g, betas=(0.5, 0.999))
    opt_d = torch.optim.Adam(list(d_a.parameters()) + list(d_b.parameters()), lr=args.lr_d, betas=(0.5, 0.999))
    pool_a, pool_b = ImagePool(args.pool_size), ImagePool(args.pool_size)
    gen = torch.Generator().manual_seed(args.seed)
    start, elapsed = 0, 0.0
    ckpt = args.run_dir / "checkpoint.pt"
    if ckpt.exists():
        state = torch.load(ckpt, weights_only=True)
        model.load_state_dict(state["g"])
        d_a.load_state_dict(state["d_a"])
        d_b.load_state_dict(state["d_b"])
        opt_g.load_state_dict(state["opt_g"])
        opt_d.load_state_dict(state["opt_d"])
        pool_a.images, pool_b.images = list(state["pool_a"]), list(state["pool_b"])
        gen.set_state(state["rng"])
        start, elapsed = int(state["iteration"]), float(state["elapsed"])
        print(f"resumed at iteration {start}", flush=True)

    def save_checkpoint(iteration: int) -> None:
        state = {"g": model.state_dict(), "d_a": d_a.state_dict(), "d_b": d_b.state_dict(),
                 "opt_g": opt_g.state_dict(), "opt_d": opt_d.state_dict(), "pool_a": pool_a.images,
                 "pool_b": pool_b.images, "rng": gen.get_state(), "iteration": iteration,
                 "elapsed": time.time() - t0}
        torch.save(state, args.run_dir / "checkpoint.tmp")
        (args.run_dir / "checkpoint.tmp").replace(ckpt)
        model.eval()
        preview(pkg, model, args.run_dir / f"preview_{iteration:05d}.png")
        model.train()

    def lr_factor(it: int) -> float:
        begin = args.decay_start * args.iterations
        return 1.0 if it < begin else max(0.0, 1.0 - (it - begin) / max(1.0, args.iterations - begin))

    mse, l1 = nn.MSELoss(), nn.L1Loss()
    t0 = time.time() - elapsed
    last_ckpt = time.time()
    model.train()
    for it in range(start, args.iterations):
        for opt, lr in ((opt_g, args.lr_g), (opt_d, args.lr_d)):
            for group in opt.param_groups:
                group["lr"] = lr * lr_factor(it)
        real_a = augment(data_a[torch.randint(0, data_a.shape[0], (args.batch_size,), generator=gen)], gen)
        real_b = augment(data_b[torch.randint(0, data_b.shape[0], (args.batch_size,), generator=gen)], gen)

        # generators: LSGAN adversarial + cycle consistency + identity
        fake_b, fake_a = g_ab(real_a), g_ba(real_b)
        rec_a, rec_b = g_ba(fake_b), g_ab(fake_a)
        for p in list(d_a.parameters()) + list(d_b.parameters()):
            p.requires_grad_(False)
        pred_b, pred_a = d_b(fake_b), d_a(fake_a)
        loss_gan = mse(pred_b, torch.ones_like(pred_b)) + mse(pred_a, torch.ones_like(pred_a))
        loss_cycle = l1(rec_a, real_a) + l1(rec_b, real_b)
        loss_idt = l1(g_ba(real_a), real_a) + l1(g_ab(real_b), real_b)
        loss_g = loss_gan + args.lambda_cycle * loss_cycle + args.lambda_identity * loss_idt
        opt_g.zero_grad()
        loss_g.backward()
        opt_g.step()

        # discriminators on real images and pooled fakes
        for p in list(d_a.parameters()) + list(d_b.parameters()):
            p.requires_grad_(True)
        old_b, old_a = pool_b.query(fake_b, gen), pool_a.query(fake_a, gen)
        loss_d = 0.0
        for d, real, fake in ((d_b, real_b, old_b), (d_a, real_a, old_a)):
            pr, pf = d(real), d(fake.detach())
            loss_d = loss_d + 0.5 * (mse(pr, torch.ones_like(pr)) + mse(pf, torch.zeros_like(pf)))
        opt_d.zero_grad()
        loss_d.backward()
        opt_d.step()

        if (it + 1) % 25 == 0:
            print(f"it {it + 1} loss_d {loss_d.item():.3f} gan {loss_gan.item():.3f} cycle {loss_cycle.item():.3f} "
                  f"idt {loss_idt.item():.3f} lr {lr_factor(it):.2f} {time.time() - t0:.0f}s", flush=True)
        if time.time() - last_ckpt >= args.checkpoint_seconds or it + 1 == args.iterations:
            save_checkpoint(it + 1)
            last_ckpt = time.time()
    iterations = max(start, args.iterations)
    wall = elapsed if start >= args.iterations else time.time() - t0

    from safetensors.torch import save_file

    model.eval()
    out = PACKAGE / pkg.WEIGHTS_FILE
    save_file({k: v.detach().contiguous() for k, v in model.state_dict().items()}, str(out), metadata={"format": "pt"})
    params = sum(p.numel() for p in model.t1_to_ct.parameters())
    write_json(args.run_dir / "training.json", {
        "iterations": iterations, "wall_time_s": round(wall, 1), "batch_size": args.batch_size,
        "lr_g": args.lr_g, "lr_d": args.lr_d, "decay_start": args.decay_start, "lambda_cycle": args.lambda_cycle,
        "lambda_identity": args.lambda_identity, "pool_size": args.pool_size, "seed": args.seed,
        "threads": args.threads, "torch": torch.__version__, "num_t1_slices": int(data_a.shape[0]),
        "num_ct_slices": int(data_b.shape[0]), "generator_parameters": params,
        "discriminator_parameters": sum(p.numel() for p in d_a.parameters()),
    })
    print(f"done: {iterations} iterations, {wall:.0f}s -> {out}", flush=True)
    preview(pkg, model, args.run_dir / "final.png")
    try:
        medhub_grid()
    except Exception as exc:  # the weights are exported; the grid can be made again with --iterations 0
        print(f"grid not made: {type(exc).__name__}: {exc}")


if __name__ == "__main__":
    main()
