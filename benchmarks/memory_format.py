"""Benchmark: each shipped torch model with its weights contiguous (NCHW) and channels-last.

Run from the repository root::

    python benchmarks/memory_format.py                  # all shipped medhub/1 torch models
    python benchmarks/memory_format.py --quick          # one timed pass per layout (smoke test)
    python benchmarks/memory_format.py --models 00101_DCGAN_BRAIN_MRI_T1 --json out.json

For each model, one process loads the package twice through medhub's executor (``memory_format``
``"contiguous"`` and ``"channels_last"``, the value a catalog entry may declare in
``execution.generate_method.memory_format``) and times ``sample_batch`` on the CPU at the catalog's
batch size, alternating the two, median of ``--rounds`` passes (5) after a warm-up. It also checks what a package
author must check before declaring ``channels_last``: that the outputs are the same bytes in both
layouts (or how many values differ, and by how much), and that in channels-last a sample is still
bit-identical whatever batch it is computed in (samples 3-9 alone against the same samples inside
the full batch). The catalog declares ``channels_last`` only for the packages where it is faster
and both checks pass.
"""

from __future__ import annotations

import statistics
import sys
from typing import Any

import numpy as np
from common import alternate, declared, executor, finish, machine_info, per_model_parser, shipped_models, timed
from report import Run, Section, fill, short, table

SEED = 0

REPORT = """
    ## Memory layout of the networks

    `{command}` ({when}): each shipped torch model through medhub's executor with its weights contiguous
    and channels-last (`execution.generate_method.memory_format`), `sample_batch` at the catalog's batch
    size on the CPU, median of {rounds} alternated passes after a warm-up. *Values differing*: output
    values of one batch that are not the same in both layouts (and the largest difference, in grey
    levels); *batch-invariant*: in channels-last, samples 3-9 generated alone are bit-identical to the
    same samples inside the full batch. The catalog declares channels-last where it is faster and the
    outputs stay batch-invariant.

    {table}
"""


def _same(a: dict[str, np.ndarray], b: dict[str, np.ndarray]) -> tuple[int, float]:
    """(number of values that differ, largest absolute difference) over all outputs."""
    differ, largest = 0, 0.0
    for name in a:
        x, y = np.asarray(a[name]), np.asarray(b[name])
        if x.dtype.kind in "iufb":
            d = np.abs(x.astype(np.float64) - y.astype(np.float64))
            differ += int((d > 0).sum())
            largest = max(largest, float(d.max()) if d.size else 0.0)
        else:
            differ += int((x != y).sum())
    return differ, largest


def measure(model_id: str, rounds: int) -> dict[str, Any]:
    import torch

    from medhub.errors import PackageError

    executors = {fmt: executor(model_id, memory_format=fmt) for fmt in ("contiguous", "channels_last")}
    batch = executors["contiguous"].default_batch_size()
    indices = range(batch)
    try:
        executors["channels_last"].load("cpu")
    except PackageError as exc:  # not a torch module (e.g. the 3D atlas model): nothing to measure
        return {"model": model_id, "batch_size": batch, "applicable": False, "reason": str(exc)}
    outputs = {fmt: ex.sample_batch(indices, SEED, "cpu") for fmt, ex in executors.items()}  # warm-up too
    times = alternate({fmt: timed(lambda ex=ex: ex.sample_batch(indices, SEED, "cpu"))
                       for fmt, ex in executors.items()}, rounds, warm_up=False)
    differ, largest = _same(outputs["contiguous"], outputs["channels_last"])
    part = executors["channels_last"].sample_batch(range(3, min(10, batch)), SEED, "cpu")
    full = {k: v[3:10] for k, v in outputs["channels_last"].items()}
    invariant = _same(part, full)[0] == 0
    rate = {fmt: batch / statistics.median(t) for fmt, t in times.items()}
    return {"model": model_id, "batch_size": batch, "applicable": True, "rounds": rounds,
            "torch_threads": torch.get_num_threads(), "samples_per_s": rate,
            "speedup": rate["channels_last"] / rate["contiguous"], "values_differing": differ,
            "largest_difference": largest, "batch_invariant_channels_last": invariant}


def report(run: Run) -> Section:
    """The memory-layout section (no goal: the catalog's declarations follow from it)."""
    res = run.result
    rows = []
    for r in res["results"]:
        layout = res["declared"].get(r["model"]) or "contiguous"
        if not r["applicable"]:
            rows.append([short(r["model"]), r["batch_size"], "", "", "n/a (not a torch module)", "", "", layout])
            continue
        rate = r["samples_per_s"]
        rows.append([short(r["model"]), r["batch_size"], f"{rate['contiguous']:.1f}", f"{rate['channels_last']:.1f}",
                     f"{r['speedup']:.2f}", f"{r['values_differing']:,} (max {r['largest_difference']:g})",
                     "yes" if r["batch_invariant_channels_last"] else "**no**", layout])
    return Section([], fill(REPORT, command=run.command, when=run.when, rounds=res["settings"]["rounds"],
                            table=table(["Model", "Batch", "contiguous samples/s", "channels-last samples/s",
                                         "speed-up", "values differing", "batch-invariant", "catalog declares"],
                                        rows, "lrrrrrll")))


def main(argv: list[str] | None = None) -> int:
    args = per_model_parser(__doc__, "every shipped medhub/1 torch model", "layout").parse_args(argv)
    rounds = args.rounds or (1 if args.quick else 5)
    info = machine_info()
    rows = []
    for model_id in args.models or shipped_models(torch_only=True):
        print(f"Measuring {model_id} ...", flush=True)
        rows.append(measure(model_id, rounds))
    doc = {"benchmark": "memory_format", "machine": info, "settings": {"rounds": rounds, "quick": args.quick},
           "declared": declared("memory_format"), "results": rows}
    return finish(args, doc, report, argv)


if __name__ == "__main__":
    sys.exit(main())
