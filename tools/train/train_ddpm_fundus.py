"""Train the shipped DDPM ``00106_DDPM_FUNDUS_RGB`` on 64x64 RGB patches of a fundus photograph.

    python tools/train/train_ddpm_fundus.py --iterations 3000 --run-dir runs/ddpm_fundus

Epsilon-prediction DDPM (T = 1000, cosine schedule) with an EMA of the UNet weights, trained on
the training patches of ``data_sources.retina_patches(64, part="train")`` (scikit-image
``retina.jpg``, CC0; only the left two thirds of the photo). Resumes from
``<run-dir>/checkpoint.pt`` when it exists (written at least every ``--checkpoint-seconds``);
``--iterations N`` with N <= the checkpoint's iteration only exports the weights and the grid.
Writes ``models/00106_DDPM_FUNDUS_RGB/weights.safetensors`` (EMA weights, float16),
``docs/img/00106_DDPM_FUNDUS_RGB_grid.png`` and ``<run-dir>/training.json``.
"""

from __future__ import annotations

import argparse
import copy
import time
from pathlib import Path

import torch
from common import ROOT, load_package, save_grid, write_json
from data_sources import retina_patches

MODEL_ID = "00106_DDPM_FUNDUS_RGB"


def augment(x: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    """Random element of the dihedral group (flips and 90-degree rotations) per image (N, 3, H, W)."""
    k = torch.randint(0, 4, (x.shape[0],), generator=gen).tolist()
    flip = torch.rand(x.shape[0], generator=gen) < 0.5
    out = torch.empty_like(x)
    for i in range(x.shape[0]):
        img = torch.rot90(x[i], k[i], dims=(1, 2))
        out[i] = img.flip(-1) if flip[i] else img
    return out


def preview(pkg, model: torch.nn.Module, path: Path, n: int = 16) -> None:
    """DDIM samples (default steps) of seeds 0..n-1 from ``model``, saved as a grid."""
    model.eval()
    save_grid(pkg.sample(model, list(range(n)))["image"], path)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--iterations", type=int, default=3600)
    ap.add_argument("--batch-size", type=int, default=16)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--warmup", type=int, default=100, help="linear learning-rate warm-up iterations")
    ap.add_argument("--ema", type=float, default=0.995, help="EMA decay (with the usual (1+n)/(10+n) warm-up)")
    ap.add_argument("--stride", type=int, default=4,
                    help="stride of the overlapping training patches (translation augmentation; 16 gives 166)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--run-dir", type=Path, default=ROOT / "runs" / "ddpm_fundus")
    ap.add_argument("--checkpoint-seconds", type=float, default=150.0)
    ap.add_argument("--preview-every", type=int, default=500)
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()

    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    pkg = load_package(MODEL_ID)
    data = torch.from_numpy(retina_patches(pkg.IMAGE_SIZE, part="train", stride=args.stride)).permute(0, 3, 1, 2)
    data = data.contiguous()
    model = pkg.UNet()
    ema = copy.deepcopy(model).eval()
    for p in ema.parameters():
        p.requires_grad_(False)
    n_params = sum(p.numel() for p in model.parameters())
    print(f"{data.shape[0]} training patches, UNet with {n_params} parameters", flush=True)
    opt = torch.optim.Adam(model.parameters(), lr=args.lr)
    alpha_bar = pkg.cosine_alpha_bar().float()
    gen = torch.Generator().manual_seed(args.seed)
    start, elapsed, cpu = 0, 0.0, 0.0
    ckpt = args.run_dir / "checkpoint.pt"
    if ckpt.exists():
        state = torch.load(ckpt, weights_only=True)
        model.load_state_dict(state["model"])
        ema.load_state_dict(state["ema"])
        opt.load_state_dict(state["opt"])
        gen.set_state(state["rng"])
        start, elapsed, cpu = int(state["iteration"]), float(state["elapsed"]), float(state["cpu"])
        print(f"resumed at iteration {start}", flush=True)
    args.run_dir.mkdir(parents=True, exist_ok=True)

    def save_checkpoint(iteration: int) -> None:
        state = {"model": model.state_dict(), "ema": ema.state_dict(), "opt": opt.state_dict(),
                 "rng": gen.get_state(), "iteration": iteration, "elapsed": time.time() - t0,
                 "cpu": time.process_time() - c0}
        torch.save(state, args.run_dir / "checkpoint.tmp")
        (args.run_dir / "checkpoint.tmp").replace(ckpt)

    t0, c0 = time.time() - elapsed, time.process_time() - cpu
    last_ckpt = time.time()
    running = 0.0
    model.train()
    for it in range(start, args.iterations):
        for group in opt.param_groups:
            group["lr"] = args.lr * min(1.0, (it + 1) / args.warmup)
        idx = torch.randint(0, data.shape[0], (args.batch_size,), generator=gen)
        x0 = augment(data[idx], gen)
        t = torch.randint(0, pkg.T, (args.batch_size,), generator=gen)
        noise = torch.randn(x0.shape, generator=gen)
        a = alpha_bar[t][:, None, None, None]
        xt = a.sqrt() * x0 + (1 - a).sqrt() * noise
        loss = torch.nn.functional.mse_loss(model(xt, t), noise)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        if not torch.isfinite(loss):
            print(f"it {it + 1}: non-finite loss, step skipped", flush=True)
            continue
        opt.step()
        decay = min(args.ema, (1 + it) / (10 + it))
        with torch.no_grad():
            for pe, pm in zip(ema.parameters(), model.parameters()):
                pe.lerp_(pm, 1 - decay)
        running = 0.98 * running + 0.02 * loss.item() if it > start else loss.item()
        if (it + 1) % 50 == 0:
            print(f"it {it + 1} loss {running:.4f} wall {time.time() - t0:.0f}s cpu {time.process_time() - c0:.0f}s",
                  flush=True)
        done = it + 1 == args.iterations
        if done or time.time() - last_ckpt > args.checkpoint_seconds:
            save_checkpoint(it + 1)
            last_ckpt = time.time()
        if (it + 1) % args.preview_every == 0 or done:
            preview(pkg, ema, args.run_dir / f"preview_{it + 1:05d}.png")
    if ckpt.exists():  # export exactly what the checkpoint holds (also when stopped early)
        state = torch.load(ckpt, weights_only=True)
        ema.load_state_dict(state["ema"])
        iterations, wall, cpu = int(state["iteration"]), float(state["elapsed"]), float(state["cpu"])
    else:
        iterations, wall, cpu = start, time.time() - t0, time.process_time() - c0

    from safetensors.torch import save_file

    out = ROOT / "models" / MODEL_ID / pkg.WEIGHTS_FILE
    save_file({k: v.detach().half().contiguous() for k, v in ema.state_dict().items()}, str(out),
              metadata={"format": "pt"})
    shipped = pkg.load(out, "cpu")
    from medhub.execution.seeds import sample_seeds

    images = pkg.sample(shipped, [int(s) for s in sample_seeds(0, range(32))])["image"]
    save_grid(images, ROOT / "docs" / "img" / f"{MODEL_ID}_grid.png")
    write_json(args.run_dir / "training.json", {
        "iterations": iterations, "wall_time_s": round(wall, 1), "cpu_time_s": round(cpu, 1),
        "batch_size": args.batch_size, "lr": args.lr, "warmup": args.warmup, "ema": args.ema,
        "stride": args.stride, "seed": args.seed, "threads": args.threads, "num_patches": int(data.shape[0]),
        "parameters": n_params, "schedule": "cosine", "T": pkg.T, "torch": torch.__version__,
    })
    print(f"done: {iterations} iterations, {wall:.0f}s wall, {cpu:.0f}s cpu -> {out}", flush=True)


if __name__ == "__main__":
    main()
