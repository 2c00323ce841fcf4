"""The ``medhub dataset`` command: its options and its run."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import Any


def add_parser(sub: Any, common: argparse.ArgumentParser) -> None:
    """Add ``dataset`` to the ``medhub`` subcommands."""
    p = sub.add_parser("dataset", parents=[common], help="build a synthetic training set (nnU-Net, MONAI, HF, folder)")
    p.add_argument("models", nargs="+", metavar="MODEL[:N]", help="models and their case counts, e.g. 104:300 107:20 "
                                                                    "(one model: MODEL with -n N)")
    p.add_argument("--layout", required=True, metavar="LAYOUT", help="nnunet, monai, hf or folder")
    p.add_argument("-o", "--output", required=True, help="output folder (must not exist or be empty)")
    p.add_argument("-n", "--num-samples", type=int, help="number of cases (one model)")
    p.add_argument("--seed", type=int, help="seed (default: random, recorded in the dataset)")
    p.add_argument("--name", help="dataset name (nnU-Net: DatasetNNN_Name, e.g. Dataset501_SynthT1)")
    p.add_argument("--val-fraction", type=float, default=0.0, help="share of validation cases, drawn from the seed")
    p.add_argument("--balance", action="store_true", help="equal counts per condition (conditional models)")
    p.add_argument("--add-real", metavar="DIR", help="add real cases: DIR/images (and DIR/masks), copied unchanged")
    p.add_argument("--shard", metavar="K/N", help="build shard K of N; the last one done publishes the dataset")
    p.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:N")
    p.add_argument("--batch-size", type=int)
    p.add_argument("--trust-remote-code", action="store_true",
                   help="run remote packages that have no pinned sha256 (their sha256 is recorded)")
    p.add_argument("--no-progress", action="store_true")


def run(args: argparse.Namespace, g: Any, emit: Callable[[argparse.Namespace, Any, str], None]) -> int:
    """Run ``medhub dataset``; prints where the dataset is, its warnings and what to run next."""
    build = g.export_dataset(args.models, layout=args.layout, output_path=args.output, seed=args.seed,
                             num_samples=args.num_samples, name=args.name, val_fraction=args.val_fraction,
                             balance=args.balance, add_real=args.add_real, shard=args.shard, device=args.device,
                             batch_size=args.batch_size, progress=False if args.no_progress else None,
                             trust_remote_code=args.trust_remote_code)
    lines = [str(build)]  # the licence warnings went to stderr as they were found
    if build.complete and build.next_steps:
        lines += ["next: " + build.next_steps]
    emit(args, {"output": str(build.output_path), "dataset": str(build.dataset_path), "layout": build.layout,
                "num_cases": build.num_cases, "complete": build.complete, "warnings": build.warnings,
                "next_steps": build.next_steps}, "\n".join(lines))
    return 0
