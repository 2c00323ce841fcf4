"""Benchmark: torch DataLoader over a synthetic dataset against a bare batch loop; memory flatness.

Run from the repository root (any interpreter with medhub and torch installed)::

    python benchmarks/dataloader.py                  # full run (about 2-3 minutes on 2 cores)
    python benchmarks/dataloader.py --quick          # fewer repeats, 1,000 and 10,000 samples only
    python benchmarks/dataloader.py --json out.json  # also write the results as JSON

What it does, on the shipped model ``00101_DCGAN_BRAIN_MRI_T1`` on the CPU:

1. Throughput: ``--samples`` samples (default 1,024) in batches of 64, with
   * *bare*: ``executor.sample_batch(range(i, i + 64), seed)`` in a loop (uint8 numpy arrays, no
     conversion), the floor any loader pays;
   * *DataLoader, map-style, num_workers=0*: ``get_as_torch_dataloader(101, batch_size=64)``
     (float tensors (64, 1, 64, 64) in [0, 1], collated);
   * *DataLoader, map-style, num_workers=2* (persistent workers, each with torch's 1 thread);
   * *DataLoader, iterable, num_workers=0*;
   * for reference, two bare loops in two processes with one torch thread each (half the samples
     each): what two workers could reach without any loader (informational, no goal).
   Each mode gets one untimed warm-up pass, then the modes alternate for ``--repeat`` rounds (so
   drift of a shared machine hits all of them); reported: the median samples/s of each and its
   ratio to the bare loop's median (the goal), and the median of the per-round ratios. The datasets
   keep one chunk in their cache (``cache_chunks=1``), so no pass is served from a previous pass's cache.
2. Memory: in a fresh subprocess per size (1,000, 10,000, 100,000 samples), build the loader
   (``batch_size=64``), record the resident set size (VmRSS), iterate through every batch reading
   VmRSS after each one, and report the largest (and the process high-water mark ``ru_maxrss``,
   which importing torch dominates). Flat means the peak does not grow with the size.

Goals: DataLoader throughput at least 0.9 of the bare loop (num_workers=0 and 2); peak RSS at
100,000 samples within 10% of the peak at 1,000.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from typing import Any

from _common import benchmark_env, machine_info, print_machine, verdict, write_json

MODEL = "00101_DCGAN_BRAIN_MRI_T1"
BATCH = 64
GOAL_RATIO = 0.9
GOAL_RSS_GROWTH = 0.10

# A helper process for the reference mode: a bare loop with one torch thread, run on "go" lines.
PARALLEL_CODE = r"""
import sys, time, torch
torch.set_num_threads(1)  # as in a DataLoader worker
from medhub import Generators
executor = Generators().get_model_executor(sys.argv[1])
n, batch = int(sys.argv[2]), int(sys.argv[3])
executor.sample_batch(range(batch), 0, "cpu")
print("ready", flush=True)
for line in sys.stdin:
    start = time.perf_counter()
    for i in range(0, n, batch):
        executor.sample_batch(range(i, min(i + batch, n)), 0, "cpu")
    print(time.perf_counter() - start, flush=True)
"""

MEMORY_CODE = r"""
import json, resource, sys, time


def rss_kb():  # current resident set size (Linux), not the high-water mark
    with open("/proc/self/status") as fh:
        return next(int(line.split()[1]) for line in fh if line.startswith("VmRSS:"))


n, batch_size = int(sys.argv[1]), int(sys.argv[2])
from medhub.data import get_as_torch_dataloader
loader = get_as_torch_dataloader(101, num_samples=n, batch_size=batch_size, seed=0)
built_kb = rss_kb()
start = time.perf_counter()
seen, total, peak_kb, trajectory = 0, 0.0, built_kb, []
marks = {len(loader) * k // 10 for k in range(1, 11)}  # RSS at every tenth of the epoch
for step, batch in enumerate(loader, 1):
    seen += batch["sample"].shape[0]
    total += float(batch["sample"].sum())
    now = rss_kb()
    peak_kb = max(peak_kb, now)
    if step in marks:
        trajectory.append(now)
elapsed = time.perf_counter() - start
print(json.dumps({"samples": seen, "seconds": elapsed, "rss_after_build_kb": built_kb, "peak_rss_kb": peak_kb,
                  "rss_trajectory_kb": trajectory, "ru_maxrss_kb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
                  "checksum": total}))
"""


def _modes(n: int) -> dict[str, Any]:
    """name -> zero-argument function that produces ``n`` samples once."""
    from medhub import Generators
    from medhub.data import get_as_torch_dataloader

    g = Generators()
    executor = g.get_model_executor(MODEL)

    def bare() -> int:
        seen = 0
        for start in range(0, n, BATCH):
            seen += len(executor.sample_batch(range(start, min(start + BATCH, n)), 0, "cpu")["image"])
        return seen

    # cache_chunks=1: a pass never finds chunks of the previous pass in the cache (sequential passes
    # generate every chunk anyway; a small --samples with persistent workers could otherwise be served
    # from the workers' caches)
    common = dict(num_samples=n, batch_size=BATCH, seed=0, generators=g, cache_chunks=1)
    loaders = {
        "loader_w0": get_as_torch_dataloader(MODEL, **common),
        "loader_w2": get_as_torch_dataloader(MODEL, num_workers=2, persistent_workers=True, **common),
        "iterable_w0": get_as_torch_dataloader(MODEL, iterable=True, **common),
    }

    def run(loader: Any) -> Any:
        def go() -> int:
            return sum(b["sample"].shape[0] for b in loader)

        return go

    # reference: two independent bare loops in two processes, one torch thread each (what two
    # DataLoader workers could do at best, without any loader)
    helpers = [subprocess.Popen([sys.executable, "-c", PARALLEL_CODE, MODEL, str(n // 2), str(BATCH)],
                                stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True) for _ in range(2)]
    for h in helpers:
        assert h.stdout is not None and h.stdout.readline().strip() == "ready"

    def parallel() -> int:
        for h in helpers:
            assert h.stdin is not None
            h.stdin.write("go\n")
            h.stdin.flush()
        for h in helpers:
            assert h.stdout is not None
            float(h.stdout.readline())
        return 2 * (n // 2)

    modes = {"bare": bare, **{name: run(loader) for name, loader in loaders.items()}}
    modes["parallel_bare"] = parallel
    return modes, helpers


LABELS = {
    "bare": "bare loop: executor.sample_batch(range(i, i+64), seed)",
    "loader_w0": "DataLoader, map-style, num_workers=0",
    "loader_w2": "DataLoader, map-style, num_workers=2 (persistent)",
    "iterable_w0": "DataLoader, iterable, num_workers=0",
    "parallel_bare": "reference: 2 bare loops in 2 processes, 1 thread each (no loader)",
}


def measure_throughput(n: int, repeat: int) -> dict[str, Any]:
    import torch

    modes, helpers = _modes(n)
    try:
        for fn in modes.values():  # warm-up: weights, worker start, allocator
            assert fn() == n
        times: dict[str, list[float]] = {name: [] for name in modes}
        for r in range(repeat):
            order = list(modes) if r % 2 == 0 else list(reversed(modes))
            for name in order:
                start = time.perf_counter()
                seen = modes[name]()
                times[name].append(time.perf_counter() - start)
                assert seen == n, (name, seen)
    finally:  # (forked DataLoader workers hold copies of the helpers' pipes: end the helpers directly)
        for h in helpers:
            h.kill()
            h.wait()
    rates = {name: [n / t for t in ts] for name, ts in times.items()}
    bare = statistics.median(rates["bare"])
    out = {}
    for name, rs in rates.items():
        med = statistics.median(rs)
        # the ratio of each round's pass to the bare pass of the same round (adjacent in time), whose
        # median is less sensitive to other jobs on a shared machine than the ratio of medians
        paired = statistics.median(r / b for r, b in zip(rs, rates["bare"]))
        out[name] = {"label": LABELS[name], "samples_per_s": rs, "median_samples_per_s": med, "min": min(rs),
                     "max": max(rs), "ratio_to_bare": med / bare, "paired_ratio_median": paired}
    return {"samples": n, "batch_size": BATCH, "repeat": repeat, "torch_threads_main": torch.get_num_threads(),
            "modes": out}


def measure_memory(sizes: list[int], python: str, env: dict[str, str]) -> list[dict[str, Any]]:
    rows = []
    for n in sizes:
        proc = subprocess.run([python, "-c", MEMORY_CODE, str(n), str(BATCH)], env=env, capture_output=True, text=True, check=True)
        row = json.loads(proc.stdout.strip().splitlines()[-1])
        row["num_samples"] = n
        row["eager_float32_mb"] = n * 64 * 64 * 4 / 2**20
        rows.append(row)
        print(f"  {n:>7,} samples: RSS at each tenth of the epoch (MB): "
              + " ".join(f"{kb / 1024:.0f}" for kb in row["rss_trajectory_kb"]))
        print(f"  {n:>7,} samples: peak RSS while iterating {row['peak_rss_kb'] / 1024:7.1f} MB (after building the "
              f"loader {row['rss_after_build_kb'] / 1024:6.1f} MB, ru_maxrss {row['ru_maxrss_kb'] / 1024:6.1f} MB), "
              f"{row['samples'] / row['seconds']:6.0f} samples/s; all as float32 up front would be "
              f"{row['eager_float32_mb']:,.0f} MB", flush=True)
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--quick", action="store_true", help="fewer repeats; memory at 1,000 and 10,000 only")
    parser.add_argument("--samples", type=int, default=1024, help="samples per timed pass (default 1024)")
    parser.add_argument("--repeat", type=int, help="timed rounds per mode (default 11; 3 quick)")
    parser.add_argument("--sizes", type=int, nargs="+", help="dataset sizes for the memory runs")
    parser.add_argument("--json", metavar="PATH", help="write the results to this JSON file")
    parser.add_argument("--python", default=sys.executable, help="interpreter for the memory subprocesses")
    parser.add_argument("--fail-on-miss", action="store_true", help="exit with status 1 if a goal is missed")
    args = parser.parse_args(argv)
    repeat = args.repeat or (3 if args.quick else 11)
    sizes = args.sizes or ([1_000, 10_000] if args.quick else [1_000, 10_000, 100_000])

    info = machine_info(args.python)
    print_machine(info)
    with tempfile.TemporaryDirectory(prefix="medhub-bench-home-") as home:
        env = benchmark_env(home)
        for key in ("MEDHUB_CONFIG", "MEDHUB_CATALOG_URL"):  # this process too: the bundled catalog, offline
            os.environ.pop(key, None)
        os.environ.update({k: v for k, v in env.items() if k.startswith("MEDHUB_")})
        print(f"Throughput: {args.samples} samples of {MODEL}, batches of {BATCH}, {repeat} alternated rounds")
        tp = measure_throughput(args.samples, repeat)
        for m in tp["modes"].values():
            print(f"  {m['label']:<58} median {m['median_samples_per_s']:7.0f} samples/s "
                  f"(min {m['min']:.0f}, max {m['max']:.0f})  ratio {m['ratio_to_bare']:.2f} "
                  f"(paired {m['paired_ratio_median']:.2f})")
        print()
        print(f"Peak memory through a whole epoch (batch {BATCH}, num_workers=0, fresh subprocess per size):")
        mem = measure_memory(sizes, args.python, env)
    print()
    growth = mem[-1]["peak_rss_kb"] / mem[0]["peak_rss_kb"] - 1
    goals = []
    for name in ("loader_w0", "loader_w2"):
        ratio = tp["modes"][name]["ratio_to_bare"]
        goals.append({"goal": f"{LABELS[name]}: throughput >= {GOAL_RATIO} x bare loop", "value": f"{ratio:.2f}",
                      "passed": ratio >= GOAL_RATIO, "mode": name, "target": GOAL_RATIO})
    goals.append({"goal": f"peak RSS at {mem[-1]['num_samples']:,} samples within {GOAL_RSS_GROWTH:.0%} of "
                          f"{mem[0]['num_samples']:,}", "value": f"{growth:+.1%}", "passed": growth <= GOAL_RSS_GROWTH,
                  "target": GOAL_RSS_GROWTH})
    for g in goals:
        print(f"Goal {g['goal']:<90} {g['value']:>8}  {verdict(g['passed'])}")
    result = {
        "benchmark": "dataloader",
        "machine": info,
        "settings": {"model": MODEL, "batch_size": BATCH, "samples": args.samples, "repeat": repeat, "sizes": sizes,
                     "quick": args.quick},
        "throughput": tp,
        "memory": mem,
        "rss_growth": growth,
        "goals": goals,
        "all_goals_passed": all(g["passed"] for g in goals),
    }
    if args.json:
        write_json(args.json, result)
    return 1 if args.fail_on_miss and not result["all_goals_passed"] else 0


if __name__ == "__main__":
    sys.exit(main())
