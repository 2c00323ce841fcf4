"""Benchmark: building an nnU-Net dataset (`medhub dataset`) against `generate` to files, and its memory.

Run from the repository root::

    python benchmarks/dataset.py                 # full run: 2,000 cases per cell, 3 rounds, memory up to 100,000 cases
    python benchmarks/dataset.py --quick         # 200 cases, one round, memory at 200 and 1,000 cases (smoke test)
    python benchmarks/dataset.py --json out.json

Model ``00104_PIX2PIX_BRAIN_SEG_TO_T1`` (image + mask, 64x64) on the CPU, seed 0, loaded once
before the timed cells. Cells, alternated each round, median reported:

* **generate to files**: ``Generators.generate(104, N, output_path=..., seed=0)`` (two PNG files per
  sample, ``manifest.csv``, ``provenance.json``, published whole);
* **dataset (nnunet)**: ``Generators.export_dataset(104, "nnunet", ..., num_samples=N, seed=0)`` (two
  PNG files per case with label integers, ``cases.jsonl`` with each sample's record, ``dataset.json``,
  the card, published whole).

Goal (issue 34, point 4): the dataset builds at least 0.9x as many cases per second as ``generate``
writes samples. Memory: the peak resident memory of a fresh process that builds a ``folder`` dataset
of model ``00101_DCGAN_BRAIN_MRI_T1`` (the fastest model) of each size, so growth with the number of
cases shows (it must stay flat).
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from common import alternate, finish, machine_info, parser, timed
from report import Goal, Run, Section, fill, table

MODEL = "00104_PIX2PIX_BRAIN_SEG_TO_T1"
MEMORY_MODEL = "00101_DCGAN_BRAIN_MRI_T1"
GOAL = 0.9

MEMORY_CHILD = """
import resource, sys
from medhub import Generators
n, out = int(sys.argv[1]), sys.argv[2]
Generators().export_dataset(sys.argv[3], "folder", out, seed=0, num_samples=n, progress=False, device="cpu")
print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
"""

REPORT = """
    ## Building training sets (`medhub dataset`)

    `{command}` ({when}): {cases:,} cases of `{model}` (image + mask, 64x64) on the CPU per cell, model
    loaded once, median of {rounds} alternated rounds. *generate to files*: `generate(..., output_path=...)`;
    *dataset (nnunet)*: `export_dataset(..., "nnunet")` (label integers, `cases.jsonl` with each sample's
    record, `dataset.json`, dataset card). Both write two PNG files per sample and publish their folder whole.

    {table}

    {goal_text}

    Peak resident memory of a fresh process building a `folder` dataset of `{memory_model}`:
    {memory}.
"""


def measure(scratch: Path, n: int, rounds: int, memory_sizes: list[int]) -> dict[str, Any]:
    from medhub import Generators

    g = Generators()
    g.generate(MODEL, num_samples=2, save_images=False, seed=0, device="cpu", progress=False)  # load once
    counter = [0]

    def fresh() -> Path:
        counter[0] += 1
        return scratch / f"cell{counter[0]}"

    variants = {
        "generate to files": timed(lambda: g.generate(MODEL, num_samples=n, output_path=fresh(), seed=0, device="cpu",
                                                      progress=False)),
        "dataset (nnunet)": timed(lambda: g.export_dataset(MODEL, "nnunet", fresh(), seed=0, num_samples=n,
                                                           name="Dataset900_Bench", device="cpu", progress=False)),
    }
    times = alternate(variants, rounds, warm_up=False)
    memory = {}
    for size in memory_sizes:
        out = subprocess.run([sys.executable, "-c", MEMORY_CHILD, str(size), str(scratch / f"memory{size}"),
                              MEMORY_MODEL], capture_output=True, text=True, check=True)
        memory[str(size)] = int(out.stdout.split()[-1]) * 1024  # ru_maxrss is in KiB on Linux
    return {"model": MODEL, "memory_model": MEMORY_MODEL, "cases": n, "seconds": times,
            "cases_per_s": {k: n / statistics.median(v) for k, v in times.items()}, "peak_rss_bytes": memory}


def report(run: Run) -> Section:
    res = run.result
    rate = res["cases_per_s"]
    ratio = rate["dataset (nnunet)"] / rate["generate to files"]
    rows = [[name, f"{v:,.0f}", f"{v / rate['generate to files']:.2f}x"] for name, v in rate.items()]
    passed = ratio >= GOAL
    goal = Goal("dataset", "nnU-Net dataset cases/s / generate-to-files samples/s", f"{ratio:.2f}x", f">= {GOAL}x",
                passed)
    memory = ", ".join(f"{int(k):,} cases: {v / 2**20:,.0f} MiB" for k, v in res["peak_rss_bytes"].items())
    text = fill(REPORT, command=run.command, when=run.when, cases=res["cases"], model=res["model"],
                rounds=res["settings"]["rounds"], table=table(["Cell", "cases/s", "vs generate"], rows, "lrr"),
                goal_text=f"Goal (>= {GOAL}x generate): {'met' if passed else 'missed'} ({ratio:.2f}x).",
                memory_model=res["memory_model"], memory=memory)
    return Section([goal], text)


def main(argv: list[str] | None = None) -> int:
    p = parser(__doc__, "200 cases per cell, one round, memory at 200 and 1,000 cases")
    p.add_argument("--cases", type=int, help="cases per cell (default 2,000; 200 quick)")
    p.add_argument("--memory-sizes", type=int, nargs="*", help="dataset sizes of the memory check "
                                                                "(default 1,000 10,000 100,000; 200 1,000 quick)")
    args = p.parse_args(argv)
    n = args.cases or (200 if args.quick else 2_000)
    rounds = 1 if args.quick else 3
    sizes = args.memory_sizes if args.memory_sizes is not None else ([200, 1_000] if args.quick
                                                                      else [1_000, 10_000, 100_000])
    with tempfile.TemporaryDirectory(prefix="medhub-bench-dataset-") as tmp:
        result = measure(Path(tmp), n, rounds, sizes)
    doc = {"benchmark": "dataset", "machine": machine_info(), "settings": {"rounds": rounds, "quick": args.quick},
           **result}
    return finish(args, doc, report, argv)


if __name__ == "__main__":
    sys.exit(main())
