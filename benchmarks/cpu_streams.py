"""Benchmark: each shipped medhub/1 model generating on one CPU stream and on parallel streams.

Run from the repository root::

    python benchmarks/cpu_streams.py                  # every shipped medhub/1 model
    python benchmarks/cpu_streams.py --quick          # one timed pass per setting (smoke test)
    python benchmarks/cpu_streams.py --models 00101_DCGAN_BRAIN_MRI_T1 --json out.json

Parallel CPU streams are an opt-in (``generate(..., cpu_streams=N)``; see
``medhub.execution.streams``). For each model, one process runs ``medhub.runs.single.generate_samples`` in
memory on the CPU (seed 0, two catalog batches) with ``cpu_streams=1`` (one package call at a time
on all of torch's threads, the default) and with ``cpu_streams=min(4, torch threads)`` (that many
calls at once, each on a share of the threads), alternating the two, median of ``--rounds``
passes (5) after a warm-up. The package is treated as declared thread safe for the measurement,
whatever the catalog says. It also checks what a package author must check before declaring
``execution.generate_method.thread_safe: true``: that the samples are the same bytes on one
stream, on that many streams and on 3 streams (an odd split); and that torch's thread count is
the same after every call as before it.
"""

from __future__ import annotations

import statistics
import sys
from typing import Any

import numpy as np
from common import alternate, declared, executor, finish, machine_info, per_model_parser, shipped_models, timed
from report import Run, Section, fill, short, table

SEED = 0
MAX_STREAMS = 4

REPORT = """
    ## Parallel CPU streams

    `{command}` ({when}): each shipped `medhub/1` package through medhub's executor, `generate` in memory
    on the CPU (seed 0, two catalog batches) with `cpu_streams=1` (one package call at a time on all of
    torch's threads, the default) and with `cpu_streams=N`, N = min(4, torch's threads) (that many calls
    at once, each on a share of the threads; an opt-in, `medhub.execution.streams`), treated as thread
    safe whatever the catalog says, median of {rounds} alternated passes after a warm-up. *Same samples*:
    the samples are the same bytes on 1 stream, N and 3 streams; *threads kept*: torch's thread count is
    the same after every call as before. The catalog declares `thread_safe` where it is faster and the
    samples stay the same.

    {table}
"""


def _arrays(samples: list[Any]) -> list[np.ndarray]:
    """Every array of every sample, flattened in order (a sample is an array or a tuple of them)."""
    out: list[np.ndarray] = []
    for s in samples:
        out.extend(np.asarray(a) for a in (s if isinstance(s, tuple) else (s,)))
    return out


def measure(model_id: str, rounds: int) -> dict[str, Any]:
    import torch

    from medhub.runs.single import generate_samples

    ex = executor(model_id, thread_safe=True)
    ex.prepare()
    threads = torch.get_num_threads()
    streams = min(MAX_STREAMS, threads)
    n = 2 * ex.default_batch_size()
    kept = []

    def run(k: int) -> list[np.ndarray]:
        samples = generate_samples(ex, n, seed=SEED, device="cpu", progress=False, cpu_streams=k)
        kept.append(torch.get_num_threads() == threads)
        return _arrays(samples)

    one, many, three = run(1), run(streams), run(3)  # the warm-up of both, and their outputs
    same = len(one) == len(many) == len(three) and all(
        np.array_equal(a, b) and np.array_equal(a, c) for a, b, c in zip(one, many, three))
    times = alternate({"1": timed(lambda: run(1)), "streams": timed(lambda: run(streams))}, rounds, warm_up=False)
    rate = {name: n / statistics.median(t) for name, t in times.items()}
    return {"model": model_id, "batch_size": ex.default_batch_size(), "num_samples": n, "rounds": rounds,
            "torch_threads": threads, "streams": streams, "samples_per_s": rate,
            "speedup": rate["streams"] / rate["1"], "identical": bool(same), "threads_kept": all(kept)}


def report(run: Run) -> Section:
    """The CPU-streams section (no goal: the catalog's declarations follow from it)."""
    res = run.result
    rows = []
    for r in res["results"]:
        rate = r["samples_per_s"]
        rows.append([short(r["model"]), f"{r['num_samples']:,}", f"{rate['1']:.1f}", r["streams"],
                     f"{rate['streams']:.1f}", f"{r['speedup']:.2f}", "yes" if r["identical"] else "**no**",
                     "yes" if r["threads_kept"] else "**no**", "yes" if res["declared"].get(r["model"]) else "no"])
    return Section([], fill(REPORT, command=run.command, when=run.when, rounds=res["settings"]["rounds"],
                            table=table(["Model", "Samples", "1 stream samples/s", "N", "N streams samples/s",
                                         "speed-up", "same samples", "threads kept", "catalog declares"],
                                        rows, "lrrrrrlll")))


def main(argv: list[str] | None = None) -> int:
    args = per_model_parser(__doc__, "every shipped medhub/1 model", "setting").parse_args(argv)
    rounds = args.rounds or (1 if args.quick else 5)
    import torch  # noqa: F401  (every row runs with torch imported, as a user's process has it)

    info = machine_info()
    rows = []
    for model_id in args.models or shipped_models():
        print(f"Measuring {model_id} ...", flush=True)
        rows.append(measure(model_id, rounds))
    doc = {"benchmark": "cpu_streams", "machine": info, "settings": {"rounds": rounds, "quick": args.quick},
           "declared": {m: v is True for m, v in declared("thread_safe").items()}, "results": rows}
    return finish(args, doc, report, argv)


if __name__ == "__main__":
    sys.exit(main())
