"""Benchmark: throughput of ``generate_on_ray`` with 1 and 2 Ray workers against a single process.

Run from the repository root (needs ``pip install 'medhub[ray]'``)::

    python benchmarks/distributed.py                   # 4,096 samples, 5 alternated rounds
    python benchmarks/distributed.py --quick           # 1,024 samples, 2 rounds
    python benchmarks/distributed.py --json out.json   # also write the results as JSON

What it does, on the shipped model ``00101_DCGAN_BRAIN_MRI_T1`` on the CPU, writing PNG files,
``manifest.csv`` and ``provenance.json`` into a fresh temporary folder each time:

* *single process*: ``Generators().generate(101, n, output_path=..., seed=0)`` in this process
  (model loaded once, before timing; torch uses all cores, PNGs are encoded by a thread pool);
* *Ray, 1 worker* and *Ray, 2 workers*: ``generate_on_ray(101, n, ..., num_workers=k)`` on a local
  Ray instance started once (``ray.init(num_cpus=CORES)``), each worker with 1 CPU (so torch runs
  1 thread per worker).

For the Ray modes two numbers are reported: *end to end* (the whole call: starting the actors,
loading the model in each, generating, writing, the manifest) and *steady state* (samples divided
by the time from all workers ready to the last chunk done, as recorded in ``provenance.json``).
The scaling ratio is the steady-state throughput of 2 workers over that of 1 worker. Modes
alternate for ``--repeat`` rounds after one untimed warm-up run of each path; medians are reported.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from _common import benchmark_env, machine_info, print_machine, write_json

MODEL = "00101_DCGAN_BRAIN_MRI_T1"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--quick", action="store_true", help="1,024 samples, 2 rounds")
    parser.add_argument("--samples", type=int, help="samples per run (default 4096; 1024 quick)")
    parser.add_argument("--repeat", type=int, help="alternated rounds (default 5; 2 quick)")
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2], help="Ray worker counts (default 1 2)")
    parser.add_argument("--json", metavar="PATH", help="write the results to this JSON file")
    args = parser.parse_args(argv)
    n = args.samples or (1024 if args.quick else 4096)
    repeat = args.repeat or (2 if args.quick else 5)

    import ray

    from medhub import Generators
    from medhub.distributed import generate_on_ray

    info = machine_info()
    print_machine(info)
    cores = info["cores_usable"] or 1
    with tempfile.TemporaryDirectory(prefix="medhub-bench-dist-") as tmp:
        os.environ.update(benchmark_env(Path(tmp) / "home"))
        g = Generators()
        executor = g.get_model_executor(MODEL)
        executor.load("cpu")
        batch = executor.default_batch_size()
        t = time.perf_counter()
        ray.init(num_cpus=cores, include_dashboard=False, log_to_driver=False)
        ray_init_s = time.perf_counter() - t
        modes: dict[str, dict[str, list[float]]] = {"single": {"end_to_end": []}}
        modes.update({f"ray_{k}": {"end_to_end": [], "steady": [], "startup_s": []} for k in args.workers})
        threads: dict[str, Any] = {}
        try:
            # untimed warm-up of both paths (first-call imports, thread pools, Ray's worker processes)
            g.generate(MODEL, num_samples=min(n, 256), output_path=Path(tmp) / "warm-single", seed=0, device="cpu",
                       progress=False)
            generate_on_ray(MODEL, min(n, 256), Path(tmp) / "warm-ray", seed=0, num_workers=1, device="cpu",
                            generators=g, progress=False)
            for r in range(repeat):
                order = list(modes) if r % 2 == 0 else list(reversed(modes))
                for name in order:
                    out = Path(tmp) / f"{name}-{r}"
                    start = time.perf_counter()
                    if name == "single":
                        g.generate(MODEL, num_samples=n, output_path=out, seed=0, device="cpu", progress=False)
                        modes[name]["end_to_end"].append(n / (time.perf_counter() - start))
                    else:
                        k = int(name.split("_")[1])
                        run = generate_on_ray(MODEL, n, out, seed=0, num_workers=k, device="cpu", generators=g,
                                              progress=False)
                        modes[name]["end_to_end"].append(n / (time.perf_counter() - start))
                        prov = json.loads(Path(run.provenance_path).read_text())["ray"]
                        modes[name]["steady"].append(n / prov["generate_s"])
                        modes[name]["startup_s"].append(prov["startup_s"])
                        threads[name] = [w["torch_threads"] for w in prov["workers"]]
                    print(f"  round {r + 1}/{repeat} {name:<8} {modes[name]['end_to_end'][-1]:7.0f} samples/s end to end",
                          flush=True)
        finally:
            ray.shutdown()
    import torch

    results: dict[str, Any] = {}
    for name, series in modes.items():
        results[name] = {key: {"values": vals, "median": statistics.median(vals)} for key, vals in series.items()}
    single = results["single"]["end_to_end"]["median"]
    print()
    print(f"{n} samples of {MODEL} (batch {batch}), {repeat} rounds, {cores} cores; single process torch threads "
          f"{torch.get_num_threads()}; ray.init took {ray_init_s:.1f}s (not counted)")
    print(f"  {'single process':<24} {single:7.0f} samples/s")
    for k in args.workers:
        res = results[f"ray_{k}"]
        print(f"  {f'Ray, {k} worker(s)':<24} {res['end_to_end']['median']:7.0f} samples/s end to end, "
              f"{res['steady']['median']:7.0f} steady state (startup {res['startup_s']['median']:.2f}s; "
              f"torch threads per worker {threads.get(f'ray_{k}')})")
    scaling = None
    if {1, 2} <= set(args.workers):
        scaling = {key: results["ray_2"][key]["median"] / results["ray_1"][key]["median"]
                   for key in ("steady", "end_to_end")}
        print(f"  scaling 2 workers / 1 worker: {scaling['steady']:.2f} steady state, "
              f"{scaling['end_to_end']:.2f} end to end; 2 workers / single process: "
              f"{results['ray_2']['end_to_end']['median'] / single:.2f} end to end")
    if args.json:
        write_json(args.json, {"machine": info, "settings": {"model": MODEL, "samples": n, "repeat": repeat,
                                                             "batch_size": batch, "workers": args.workers,
                                                             "ray_version": ray.__version__,
                                                             "torch_threads_single": torch.get_num_threads(),
                                                             "ray_init_s": ray_init_s},
                               "results": results, "torch_threads_per_worker": threads, "scaling": scaling})
    return 0


if __name__ == "__main__":
    sys.exit(main())
