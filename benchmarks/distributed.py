"""Benchmark: throughput of ``generate_on_ray`` with 1 and 2 Ray workers against a single process.

Run from the repository root (needs ``pip install 'medhub[ray]'``)::

    python benchmarks/distributed.py                   # 4,096 samples, 5 alternated rounds
    python benchmarks/distributed.py --quick           # 1,024 samples, 2 rounds
    python benchmarks/distributed.py --json out.json   # also write the results as JSON

What it does, on the shipped model ``00101_DCGAN_BRAIN_MRI_T1`` on the CPU, writing PNG files,
``manifest.csv`` and ``provenance.json`` into a fresh temporary folder each time:

* *single process*: ``Generators().generate(101, n, output_path=..., seed=0)`` in this process
  (model loaded once, before timing; torch uses all cores, PNGs are encoded by a thread pool);
* *Ray, 1 worker* and *Ray, 2 workers*: ``Generators().generate_on_ray(101, n, ..., num_workers=k)`` on a local
  Ray instance started once (``ray.init(num_cpus=CORES)``), each worker with 1 CPU (so torch runs
  1 thread per worker).

For the Ray modes two numbers are reported: *end to end* (the whole call: starting the actors,
loading the model in each, generating, writing, the manifest) and *steady state* (samples divided
by the time from all workers ready to the last chunk done, as recorded in ``provenance.json``).
The scaling ratio is the steady-state throughput of 2 workers over that of 1 worker. Each
round runs every mode once, in a rotated order (5 rounds, 2 with ``--quick``), after one untimed
warm-up run of each path; medians are reported. Not part of docs/performance.md (it needs Ray).
"""

from __future__ import annotations

import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from common import alternate, benchmark_env, finish, machine_info, parser
from report import Run, Section, fill, table

MODEL = "00101_DCGAN_BRAIN_MRI_T1"

REPORT = """
    ## Ray workers

    `{command}` ({when}): {samples:,} samples of `{model}` (batch {batch}) written as PNG files, {repeat}
    rounds, {cores} cores; Ray {ray} (`ray.init` took {ray_init_s:.1f} s, not counted); torch threads
    {threads} in the single process. Scaling, 2 workers over 1: {scaling}.

    {table}
"""


def measure(n: int, repeat: int, workers: list[int], cores: int, tmp: Path) -> dict[str, Any]:
    import ray

    from medhub import Generators

    g = Generators()
    executor = g.get_model_executor(MODEL)
    executor.load("cpu")  # loaded once, before timing
    t = time.perf_counter()
    ray.init(num_cpus=cores, include_dashboard=False, log_to_driver=False)
    ray_init_s = time.perf_counter() - t
    steady: dict[str, list[float]] = {f"ray_{k}": [] for k in workers}
    startup: dict[str, list[float]] = {f"ray_{k}": [] for k in workers}
    threads: dict[str, Any] = {}
    counter = [0]

    def single() -> float:
        counter[0] += 1
        start = time.perf_counter()
        g.generate(MODEL, num_samples=n, output_path=tmp / f"single-{counter[0]}", seed=0, device="cpu",
                   progress=False)
        return n / (time.perf_counter() - start)

    def on_ray(k: int) -> float:
        counter[0] += 1
        start = time.perf_counter()
        run = g.generate_on_ray(MODEL, n, tmp / f"ray-{counter[0]}", seed=0, num_workers=k, device="cpu",
                                progress=False)
        rate = n / (time.perf_counter() - start)
        prov = json.loads(Path(run.provenance_path).read_text())["ray"]
        steady[f"ray_{k}"].append(n / prov["generate_s"])
        startup[f"ray_{k}"].append(prov["startup_s"])
        threads[f"ray_{k}"] = [w["torch_threads"] for w in prov["workers"]]
        return rate

    try:
        # untimed warm-up of both paths (first-call imports, thread pools, Ray's worker processes)
        modes = {"single": single, **{f"ray_{k}": (lambda k=k: on_ray(k)) for k in workers}}
        end_to_end = alternate(modes, repeat)
    finally:
        ray.shutdown()
    import torch

    results = {name: {"end_to_end": {"values": v, "median": statistics.median(v)}} for name, v in end_to_end.items()}
    for name in steady:  # the warm-up's runs are left out
        results[name]["steady"] = {"values": steady[name][1:], "median": statistics.median(steady[name][1:])}
        results[name]["startup_s"] = {"values": startup[name][1:], "median": statistics.median(startup[name][1:])}
    return {"batch_size": executor.default_batch_size(), "ray_version": ray.__version__, "ray_init_s": ray_init_s,
            "torch_threads_single": torch.get_num_threads(), "torch_threads_per_worker": threads, "results": results}


def report(run: Run) -> Section:
    """The Ray section (printed by this benchmark; not part of docs/performance.md)."""
    res, st = run.result, run.result["settings"]
    out = res["results"]
    rows = [["single process", f"{out['single']['end_to_end']['median']:.0f}", "", "", ""]]
    for k in st["workers"]:
        r = out[f"ray_{k}"]
        rows.append([f"Ray, {k} worker(s)", f"{r['end_to_end']['median']:.0f}", f"{r['steady']['median']:.0f}",
                     f"{r['startup_s']['median']:.2f} s", str(res["torch_threads_per_worker"].get(f"ray_{k}"))])
    scaling = "not measured"
    if {1, 2} <= set(st["workers"]):
        scaling = ", ".join(f"{out['ray_2'][key]['median'] / out['ray_1'][key]['median']:.2f} {label}"
                            for key, label in (("steady", "steady state"), ("end_to_end", "end to end")))
    return Section([], fill(REPORT, command=run.command, when=run.when, samples=st["samples"], model=MODEL,
                            batch=res["batch_size"], repeat=st["repeat"], cores=run.result["machine"]["cores_usable"],
                            ray=res["ray_version"], ray_init_s=res["ray_init_s"], threads=res["torch_threads_single"],
                            scaling=scaling,
                            table=table(["Mode", "End to end samples/s", "Steady state samples/s", "Startup",
                                         "torch threads per worker"], rows, "lrrrl")))


def main(argv: list[str] | None = None) -> int:
    cli = parser(__doc__, "1,024 samples, 2 rounds")
    cli.add_argument("--samples", type=int, help="samples per run (default 4096; 1024 quick)")
    cli.add_argument("--workers", type=int, nargs="+", default=[1, 2], help="Ray worker counts (default 1 2)")
    args = cli.parse_args(argv)
    n = args.samples or (1024 if args.quick else 4096)
    repeat = 2 if args.quick else 5
    info = machine_info()
    with tempfile.TemporaryDirectory(prefix="medhub-bench-dist-") as tmp:
        os.environ.update(benchmark_env(Path(tmp) / "home"))
        res = measure(n, repeat, args.workers, info["cores_usable"] or 1, Path(tmp))
    doc = {"benchmark": "distributed", "machine": info,
           "settings": {"model": MODEL, "samples": n, "repeat": repeat, "workers": args.workers, "quick": args.quick},
           **res}
    return finish(args, doc, report, argv)


if __name__ == "__main__":
    sys.exit(main())
