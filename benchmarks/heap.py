"""Benchmark: generation with medhub's heap settings (``medhub.execution.heap``) and without.

Run from the repository root::

    python benchmarks/heap.py                       # both default models, 2,000 samples, 3 rounds
    python benchmarks/heap.py --quick               # 500 samples, one round (smoke test)
    python benchmarks/heap.py --json out.json       # also write the results as JSON

Every run is a fresh process of ``benchmarks/generate.py``'s worker (torch imported, then one
timed call that returns N samples in memory on the CPU), for the shipped DCGAN and pix2pix models:

* **medhub**: ``Generators().generate(model, num_samples=N, save_images=False, seed=0)``, as
  shipped (glibc's malloc thresholds set on the first batch) and with ``MEDHUB_MALLOC_TUNING=0``
  (glibc's defaults);
* **raw**: the bare torch loop of ``generate.py`` at the packages' block size of 32, with glibc's
  defaults and with the same two thresholds set for the whole process through ``GLIBC_TUNABLES``
  (what a user's own loop would get from them).

Rounds alternate the four variants; reported are the medians of the call's wall time, its CPU time
(user and kernel, all threads) and its minor page faults (``getrusage`` around the call), and the
speed-up of each tuned variant over its untuned twin. Numbers only, no goal: the generation
benchmark's goals are measured with the settings as shipped.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
MODELS = ("00101_DCGAN_BRAIN_MRI_T1", "00104_PIX2PIX_BRAIN_SEG_TO_T1")
RAW_BATCH = 32


def _tunables() -> str:
    sys.path.insert(0, str(ROOT))
    from medhub.execution.heap import MMAP_THRESHOLD, TRIM_THRESHOLD

    return f"glibc.malloc.mmap_threshold={MMAP_THRESHOLD}:glibc.malloc.trim_threshold={TRIM_THRESHOLD}"


def variants() -> dict[str, tuple[str, dict[str, str]]]:
    """name -> (worker, extra environment); the untuned twin of ``X tuned`` is ``X default``."""
    return {
        "medhub tuned": ("medhub", {}),
        "medhub default": ("medhub", {"MEDHUB_MALLOC_TUNING": "0"}),
        "raw tuned": ("raw", {"GLIBC_TUNABLES": _tunables()}),
        "raw default": ("raw", {}),
    }


def _env(home: str, extra: dict[str, str]) -> dict[str, str]:
    from _common import benchmark_env

    env = benchmark_env(home)
    env.pop("PYTHONPATH", None)
    for name in ("MEDHUB_MALLOC_TUNING", "GLIBC_TUNABLES"):  # the variant decides, not the caller's shell
        env.pop(name, None)
    env.update(extra)
    return env


def run_one(python: str, worker: str, model: str, n: int, env: dict[str, str]) -> dict[str, Any]:
    cmd = [python, str(HERE / "generate.py"), "--worker", worker, "--model", model, "--num-samples", str(n),
           "--mode", "memory", "--batch", str(RAW_BATCH)]
    proc = subprocess.run(cmd, env=env, cwd=ROOT, capture_output=True, text=True, timeout=900, check=False)
    if proc.returncode != 0:
        raise SystemExit(f"benchmark run failed ({proc.returncode}): {' '.join(cmd)}\n{proc.stderr[-3000:]}")
    line = next(ln for ln in reversed(proc.stdout.splitlines()) if ln.startswith("RESULT "))
    row = json.loads(line[len("RESULT "):])
    if row["produced"] != n:
        raise SystemExit(f"{worker} made {row['produced']} samples of {model}, not {n}")
    return row


def summarize(rows: list[dict[str, Any]]) -> dict[str, Any]:
    def med(key: str) -> float:
        return statistics.median(r[key] for r in rows)

    return {"rounds": len(rows), "call_s": med("call_s"), "min_call_s": min(r["call_s"] for r in rows),
            "max_call_s": max(r["call_s"] for r in rows), "user_s": med("call_user_s"), "sys_s": med("call_sys_s"),
            "minor_faults": med("call_minor_faults"), "peak_rss_kb": med("peak_rss_kb")}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--models", nargs="+", default=list(MODELS), help=f"models (default {' '.join(MODELS)})")
    parser.add_argument("--num-samples", type=int, help="samples per run (default 2000; 500 quick)")
    parser.add_argument("--rounds", type=int, help="rounds of the four variants (default 3; 1 quick)")
    parser.add_argument("--json", metavar="PATH", help="write the results to this JSON file")
    parser.add_argument("--python", default=sys.executable, help="interpreter for the runs")
    parser.add_argument("--quick", action="store_true", help="500 samples, one round (smoke test)")
    args = parser.parse_args(argv)
    n = args.num_samples or (500 if args.quick else 2000)
    rounds = args.rounds or (1 if args.quick else 3)
    sys.path.insert(0, str(HERE))
    from _common import machine_info, print_machine, write_json

    if not sys.platform.startswith("linux"):
        raise SystemExit("heap.py measures glibc's malloc settings: run it on Linux")
    info = machine_info(args.python)
    print_machine(info)
    started = time.perf_counter()
    results = []
    with tempfile.TemporaryDirectory(prefix="medhub-bench-heap-") as home:
        for model in args.models:
            runs: dict[str, list[dict[str, Any]]] = {name: [] for name in variants()}
            for r in range(rounds):
                order = list(variants().items())
                if r % 2:
                    order.reverse()
                for name, (worker, extra) in order:
                    row = run_one(args.python, worker, model, n, _env(home, extra))
                    runs[name].append(row)
                    print(f"{model:<32} {name:<15} {row['call_s']:6.2f} s  {n / row['call_s']:7.1f} samples/s  "
                          f"sys {row['call_sys_s']:5.2f} s  minor faults {row['call_minor_faults']:>8,}", flush=True)
            summary = {name: summarize(rows) for name, rows in runs.items()}
            speedups = {impl: summary[f"{impl} default"]["call_s"] / summary[f"{impl} tuned"]["call_s"]
                        for impl in ("medhub", "raw")}
            results.append({"model": model, "variants": summary, "speedup": speedups})
            print(f"{model:<32} speed-up from the heap settings: medhub {speedups['medhub']:.2f}x, "
                  f"raw {speedups['raw']:.2f}x", flush=True)
    elapsed = time.perf_counter() - started
    if args.json:
        write_json(args.json, {"benchmark": "heap", "machine": info, "settings": {
            "num_samples": n, "rounds": rounds, "quick": args.quick, "raw_batch_size": RAW_BATCH,
            "tunables": _tunables(), "elapsed_s": elapsed},
            "results": results})
    return 0


if __name__ == "__main__":
    sys.exit(main())
