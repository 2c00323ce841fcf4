"""GAN-train / GAN-test of the conditional model 00103 and the U-Net Dice check of 00104.

    python tools/measure_downstream.py [--seed 0] [--repeats 3] [--epochs 30] [--steps 400] [--json results.json]

Needs nilearn (the MNI152 templates, ``tools/train/data_sources.py``). Everything runs on the CPU:
about 30 s for 00103 and 2-4 minutes per repeat for 00104 on one core. Every figure is the mean
over ``--repeats`` training seeds (``--seed``, ``--seed + 1``, ...) of the networks, with its
standard deviation; the synthetic samples are drawn once, with ``--seed``.

* 00103 (class-conditional DCGAN, conditions T1 / GM / WM): real training images are the 85
  training axial slices of each MNI152 map, real test images the 28 held-out slices of each map;
  the synthetic set has 85 samples of each condition (seed ``--seed``). A small CNN classifies
  the map type. GAN-train: trained on synthetic, accuracy on the real test slices; GAN-test:
  trained on the real training slices, accuracy on the synthetic ones; real baseline: trained on
  real training, tested on real test (``medhub.evaluate.downstream.gan_train_test``).
* 00104 (pix2pix, tissue label map -> T1): synthetic pairs are 85 samples with the model's own
  seeded label maps (training maps, flipped and shifted) and the T1 slices it paints for them; a
  small U-Net learns T1 -> labels (background, CSF / other, grey matter, white matter) from them,
  and another from the 85 real training pairs; both are scored by Dice on the 28 held-out real
  pairs (``medhub.evaluate.downstream.segmentation_transfer``).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tools" / "train"))

import data_sources as ds  # noqa: E402

from medhub import Generators  # noqa: E402
from medhub.evaluate.downstream import gan_train_test, segmentation_transfer  # noqa: E402

MAPS = (("t1", "T1"), ("gm", "GM"), ("wm", "WM"))


def measure_00103(seed: int, epochs: int, repeats: int) -> dict:
    g = Generators()
    train, train_y, test, test_y, syn, syn_y = [], [], [], [], [], []
    for kind, condition in MAPS:
        tr = ds.to_uint8(ds.mni152_axial(kind, 64, "train"))
        te = ds.to_uint8(ds.mni152_axial(kind, 64, "held_out"))
        samples = g.generate("00103", num_samples=len(tr), save_images=False, seed=seed, device="cpu",
                             condition=condition)
        train += list(tr)
        test += list(te)
        syn += [s[0] if isinstance(s, tuple) else s for s in samples]
        train_y += [condition] * len(tr)
        test_y += [condition] * len(te)
        syn_y += [condition] * len(samples)
    return gan_train_test(syn, syn_y, train, train_y, test, test_y, epochs=epochs, seed=seed, repeats=repeats)


def measure_00104(seed: int, steps: int, repeats: int) -> dict:
    tr_img = ds.to_uint8(ds.mni152_axial("t1", 64, "train"))
    tr_lab = ds.mni152_tissue_labels(64, "train")
    te_img = ds.to_uint8(ds.mni152_axial("t1", 64, "held_out"))
    te_lab = ds.mni152_tissue_labels(64, "held_out")
    pairs = Generators().generate("00104", num_samples=len(tr_img), save_images=False, seed=seed, device="cpu")
    syn_img, syn_lab = [p[0] for p in pairs], [p[1] for p in pairs]
    return segmentation_transfer(syn_img, syn_lab, list(tr_img), list(tr_lab), list(te_img), list(te_lab),
                                 classes=4, steps=steps, seed=seed, repeats=repeats)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--repeats", type=int, default=3, help="training seeds per network")
    ap.add_argument("--epochs", type=int, default=30, help="classifier epochs (00103)")
    ap.add_argument("--steps", type=int, default=400, help="U-Net steps of 16 pairs (00104)")
    ap.add_argument("--json", type=Path, help="also write the results to this file")
    args = ap.parse_args()
    import torch

    torch.set_num_threads(max(1, min(2, torch.get_num_threads())))
    results = {}
    for model_id, fn, arg in (("00103_CDCGAN_BRAIN_MRI_TISSUE", measure_00103, args.epochs),
                              ("00104_PIX2PIX_BRAIN_SEG_TO_T1", measure_00104, args.steps)):
        started = time.time()
        results[model_id] = {**fn(args.seed, arg, args.repeats), "seconds": round(time.time() - started, 1)}
        print(json.dumps({model_id: results[model_id]}, indent=2), flush=True)
    if args.json:
        args.json.write_text(json.dumps(results, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
