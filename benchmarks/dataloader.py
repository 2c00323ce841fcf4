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
   Each mode gets one untimed warm-up pass, then 11 rounds (3 with ``--quick``) run every mode
   once, each round in a rotated order (so drift of a shared machine hits all of them); reported: the median samples/s of each and its
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

import json
import os
import statistics
import subprocess
import sys
import tempfile
from collections.abc import Callable
from typing import Any

from common import alternate, benchmark_env, finish, machine_info, parser, timed
from report import Goal, Run, Section, fill, table

MODEL = "00101_DCGAN_BRAIN_MRI_T1"
BATCH = 64
GOAL_RATIO = 0.9
GOAL_RSS_GROWTH = 0.10

# A helper process for the reference mode: a bare loop with one torch thread, run on "go" lines.
PARALLEL_CODE = r"""
import sys, time, torch
torch.set_num_threads(1)  # as in a DataLoader worker
from medhub.config import ConfigManager
from medhub.execution.ref import executor_for
executor = executor_for(ConfigManager(), sys.argv[1])
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


LABELS = {
    "bare": "bare loop: executor.sample_batch(range(i, i+64), seed)",
    "loader_w0": "DataLoader, map-style, num_workers=0",
    "loader_w2": "DataLoader, map-style, num_workers=2 (persistent)",
    "iterable_w0": "DataLoader, iterable, num_workers=0",
    "parallel_bare": "reference: 2 bare loops in 2 processes, 1 thread each (no loader)",
}

REPORT = """
    ## Torch DataLoader

    `{command}` ({when}): `{model}` on the CPU, {samples:,} samples per pass in batches of {batch}, {repeat}
    rounds with the modes alternated, after one untimed warm-up pass of each. The bare loop calls
    `executor.sample_batch(range(i, i + 64), seed)` and keeps the uint8 arrays; the loaders return
    collated float32 tensors (64, 1, 64, 64) in [0, 1]; their datasets cache one chunk (`cache_chunks=1`),
    so no pass is served from the previous one. With `num_workers=2` each worker runs torch with one
    thread (the main process uses {threads}); the last row, two bare loops in two single-threaded
    processes, is what two workers could reach without any loader on this machine (no goal).

    {throughput}

    Memory while iterating a whole epoch (`get_as_torch_dataloader(101, num_samples=N, batch_size=64)`,
    `num_workers=0`, a fresh subprocess per size): the resident set size (VmRSS) after building the
    loader, its largest value read after each batch, and the process high-water mark `ru_maxrss` (set
    by importing torch). Samples are generated a chunk at a time and a few chunks are cached, so the
    peak does not depend on N; generating everything up front (as medigan did) would hold N float32
    images (last column). The samples/s column is informational: these long runs are the most exposed
    to other jobs on a shared machine.

    {memory}

    RSS at each tenth of the {largest:,}-sample epoch: {trajectory} MB.
"""


def _modes(n: int) -> tuple[dict[str, Callable[[], int]], list[subprocess.Popen[str]]]:
    """name -> zero-argument function that produces ``n`` samples once; and the helper processes."""
    from medhub.config import ConfigManager
    from medhub.data import get_as_torch_dataloader
    from medhub.execution.ref import executor_for

    executor = executor_for(ConfigManager(), MODEL)

    def bare() -> int:
        seen = 0
        for start in range(0, n, BATCH):
            seen += len(executor.sample_batch(range(start, min(start + BATCH, n)), 0, "cpu")["image"])
        return seen

    # cache_chunks=1: a pass never finds chunks of the previous pass in the cache (sequential passes
    # generate every chunk anyway; a small --samples with persistent workers could otherwise be served
    # from the workers' caches)
    common = dict(num_samples=n, batch_size=BATCH, seed=0, cache_chunks=1)
    loaders = {
        "loader_w0": get_as_torch_dataloader(MODEL, **common),
        "loader_w2": get_as_torch_dataloader(MODEL, num_workers=2, persistent_workers=True, **common),
        "iterable_w0": get_as_torch_dataloader(MODEL, iterable=True, **common),
    }

    def run(loader: Any) -> Callable[[], int]:
        return lambda: sum(b["sample"].shape[0] for b in loader)

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

    return {"bare": bare, **{name: run(loader) for name, loader in loaders.items()}, "parallel_bare": parallel}, helpers


def measure_throughput(n: int, repeat: int) -> dict[str, Any]:
    import torch

    modes, helpers = _modes(n)
    try:
        for name, fn in modes.items():  # warm-up: weights, worker start, allocator
            assert fn() == n, name
        times = alternate({name: timed(fn) for name, fn in modes.items()}, repeat, warm_up=False)
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
        proc = subprocess.run([python, "-c", MEMORY_CODE, str(n), str(BATCH)], env=env, capture_output=True,
                              text=True, check=True)
        row = json.loads(proc.stdout.strip().splitlines()[-1])
        row["num_samples"] = n
        row["eager_float32_mb"] = n * 64 * 64 * 4 / 2**20
        rows.append(row)
        print(f"  {n:>7,} samples: peak RSS while iterating {row['peak_rss_kb'] / 1024:7.1f} MB", flush=True)
    return rows


def report(run: Run) -> Section:
    """The DataLoader section and its goals (throughput against the bare loop, flat memory)."""
    res = run.result
    tp, mem, st = res["throughput"], res["memory"], res["settings"]
    modes, bare = tp["modes"], tp["modes"]["bare"]["median_samples_per_s"]
    goals = [Goal("dataloader", f"{modes[name]['label']}: throughput / bare loop "
                  f"({modes[name]['median_samples_per_s']:.0f} vs {bare:.0f} samples/s)",
                  f"{modes[name]['ratio_to_bare']:.2f}", f">= {GOAL_RATIO}", modes[name]["ratio_to_bare"] >= GOAL_RATIO)
             for name in ("loader_w0", "loader_w2")]
    growth = mem[-1]["peak_rss_kb"] / mem[0]["peak_rss_kb"] - 1
    goals.append(Goal("dataloader", f"peak RSS growth, {mem[0]['num_samples']:,} -> {mem[-1]['num_samples']:,} "
                      f"samples ({mem[0]['peak_rss_kb'] / 1024:.0f} -> {mem[-1]['peak_rss_kb'] / 1024:.0f} MB)",
                      f"{growth:+.1%}", f"<= +{GOAL_RSS_GROWTH:.0%}", growth <= GOAL_RSS_GROWTH))
    throughput = table(
        ["Mode", "Median samples/s", "Min – max", "Ratio to bare loop (of medians)", "Median of per-round ratios"],
        [[m["label"], f"{m['median_samples_per_s']:.0f}", f"{m['min']:.0f} – {m['max']:.0f}",
          f"{m['ratio_to_bare']:.2f}", f"{m['paired_ratio_median']:.2f}"] for m in modes.values()], "lrrrr")
    memory = table(
        ["Samples", "RSS after building", "Peak RSS while iterating", "ru_maxrss", "Samples/s", "All up front (float32)"],
        [[f"{r['num_samples']:,}", f"{r['rss_after_build_kb'] / 1024:.1f} MB", f"{r['peak_rss_kb'] / 1024:.1f} MB",
          f"{r['ru_maxrss_kb'] / 1024:.1f} MB", f"{r['samples'] / r['seconds']:.0f}",
          f"{r['eager_float32_mb']:,.0f} MB"] for r in mem], "rrrrrr")
    text = fill(REPORT, command=run.command, when=run.when, model=st["model"], samples=tp["samples"],
                batch=tp["batch_size"], repeat=tp["repeat"], threads=tp["torch_threads_main"], throughput=throughput,
                memory=memory, largest=mem[-1]["num_samples"],
                trajectory=", ".join(f"{kb / 1024:.0f}" for kb in mem[-1]["rss_trajectory_kb"]))
    return Section(goals, text)


def main(argv: list[str] | None = None) -> int:
    cli = parser(__doc__, "3 rounds; memory at 1,000 and 10,000 samples only", python=True)
    cli.add_argument("--samples", type=int, default=1024, help="samples per timed pass (default 1024)")
    cli.add_argument("--sizes", type=int, nargs="+", help="dataset sizes for the memory runs")
    args = cli.parse_args(argv)
    repeat = 3 if args.quick else 11
    sizes = args.sizes or ([1_000, 10_000] if args.quick else [1_000, 10_000, 100_000])
    info = machine_info(args.python)
    with tempfile.TemporaryDirectory(prefix="medhub-bench-home-") as home:
        env = benchmark_env(home)
        for key in ("MEDHUB_CONFIG", "MEDHUB_CATALOG_URL"):  # this process too: the bundled catalog, offline
            os.environ.pop(key, None)
        os.environ.update({k: v for k, v in env.items() if k.startswith("MEDHUB_")})
        print(f"Throughput: {args.samples} samples of {MODEL}, batches of {BATCH}, {repeat} alternated rounds",
              flush=True)
        tp = measure_throughput(args.samples, repeat)
        print(f"Peak memory through a whole epoch (batch {BATCH}, num_workers=0, fresh subprocess per size):")
        mem = measure_memory(sizes, args.python, env)
    doc = {"benchmark": "dataloader", "machine": info,
           "settings": {"model": MODEL, "batch_size": BATCH, "samples": args.samples, "repeat": repeat,
                        "sizes": sizes, "quick": args.quick},
           "throughput": tp, "memory": mem}
    return finish(args, doc, report, argv)


if __name__ == "__main__":
    sys.exit(main())
