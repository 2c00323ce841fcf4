"""Benchmark: the cold start of medhub, split into its phases, and its first call against the raw loop.

Run from the repository root (any interpreter with medhub and torch installed)::

    python benchmarks/cold_start.py                  # 9 rounds of each part (about 3 minutes on 2 cores)
    python benchmarks/cold_start.py --quick          # 3 rounds
    python benchmarks/cold_start.py --profile        # also a cProfile listing of one instrumented CLI run
    python benchmarks/cold_start.py --json out.json  # also write the results as JSON
    python benchmarks/cold_start.py --num-samples 200 --raw-batch 32
    python benchmarks/cold_start.py --package-block 64   # what-if: the package alone on blocks of 64
    python benchmarks/cold_start.py --env MALLOC_TOP_PAD_=67108864   # what-if: raw and medhub with it

**First call of ``generate``** (issue #33): the first call in a fresh process of
``Generators().generate(<model>, num_samples=1000, seed=0, device="cpu")``, in memory
(``save_images=False``) and to PNG files, against the raw loop of ``generate.py`` (the package's
network in a bare torch loop at ``--raw-batch``, 64 by default: the best batch size of
``generate.py``'s sweep for 00101 on the 2-core machine of docs/performance.md; PNGs written one by
one with medhub's encoder). Each round starts four fresh processes (``cold_start_worker.py``:
raw and medhub, in memory and to PNG) in a rotated order; each imports torch first, then its library
and catalog, then times the call, as ``generate.py``'s runs do. Inside each process the phases are
timed on the calling thread (exclusive times): for medhub ``import medhub``, the catalog
(``Generators()``), the executor set-up (the execution modules imported on first use, the executor
built), the dependency check, resolve + verification hashing, the package import, ``load()``, the
first batch, the other batches, writing (the run writer's calls on the calling thread; its encoder
threads run beside the batches) and the rest; for the raw loop the torch import, the catalog facts
and encoder import, build + load (package import, ``load``, memory layout), the first batch, the other
batches and writing. Reported: the median of each phase and of the call, and medhub / raw (the
throughput ratio: the raw call's median time over medhub's). Goals (issue #33): at least 0.95 in memory
and at least 1.0 to PNG.

**Cold start of the command** (issue #9): each round also starts four fresh processes, in a rotated
order:

* the real command, ``medhub generate 00101_DCGAN_BRAIN_MRI_T1 -n 1 -o <new folder> --seed 0
  --no-progress`` (the ``medhub`` console script of the interpreter's environment): its wall time;
* the same command run by ``medhub.cli.main`` (then ending as the console script does,
  ``medhub.cli.finish``) in an instrumented process that times, by wrapping the
  functions the command calls (exclusive times: a phase's time leaves out the phases inside it):
  the imports (``import medhub.cli``), the catalog (``Generators()``), the numpy import and the
  imports of the executor modules (which the command makes on first use of a model), the dependency check, the
  package's sha256 verification, the torch import, the package import (without torch), the weight
  load, the first batch (the forward pass and the output check), writing the outputs (PNG,
  manifest, provenance, publishing the folder), the provenance record, and the rest (argument
  parsing, executor set-up, device choice, progress bar); interpreter start and exit are the
  process's wall time less the time measured inside;
* ``python -m medhub.cli generate ...``: the same through ``medhub.cli.console_main``, which (like
  the console script) ends the process right after a successful generate instead of waiting for
  torch's interpreter teardown;
* ``python -c pass``: the bare interpreter start, for reference.

Reported: the median of each phase over the rounds (after one untimed warm-up round, so the page
cache is warm as for any second use). Goal (issue #9): no phase but the torch import and the
forward pass above 100 ms. numpy's import is shown apart and exempt with torch's: ``import torch``
imports numpy itself, so medhub importing it first only moves that cost from one line to the other.

Every output folder stays until the benchmark ends (see ``generate.py`` on deleting files between runs).
"""

from __future__ import annotations

import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from common import HERE, ROOT, alternate, benchmark_env, finish, machine_info, parser
from report import Goal, Run, Section, fill, goal_ms, ms, short, table

MODEL = "00101_DCGAN_BRAIN_MRI_T1"
GOAL_S = 0.100
#: First call of generate (issue #33): medhub / raw at least this, in memory and to PNG.
GOAL_FIRST_CALL = {"memory": 0.95, "png": 1.0}
MODE_LABELS = {"memory": "in memory", "png": "PNG files"}
#: The cell of ``--package-block N``: the package alone on blocks of N (a what-if).
WHAT_IF = "package-block"
#: The cells of ``--env NAME=VALUE``: raw and medhub in memory with those environment variables (a what-if).
WITH_ENV = {"raw-env": "raw", "medhub-env": "medhub"}
FIRST_CALL_PHASES = ("import torch", "import medhub", "catalog (Generators())", "catalog facts and encoder (raw)",
                     "executor set-up (imports, executor)", "dependency check", "resolve + verification hashing",
                     "package import", "load()", "build + load", "first batch", "other batches", "writing", "other")
#: The phases before the call (not part of the timed call, nor of the ratio).
BEFORE_CALL = FIRST_CALL_PHASES[:4]
#: numpy is exempt with torch: ``import torch`` imports numpy itself, so a process that runs a torch
#: package pays for it with or without medhub; medhub merely imports it before torch.
EXEMPT = ("numpy import (part of torch's import)", "torch import", "first batch (forward pass)")
PHASES = ("interpreter start and exit", "imports (medhub.cli)", "catalog (Generators())",
          "numpy import (part of torch's import)", "imports (executor modules)", "dependency check",
          "package sha256 verification", "torch import", "package import (without torch)", "weight load",
          "first batch (forward pass)", "writing outputs", "provenance record",
          "other (arguments, executor, device, progress bar)")

HARNESS = r"""
import json, sys, time
T0 = time.perf_counter()
totals, stack = {}, []

class timed:
    def __init__(self, label):
        self.label = label
    def __enter__(self):
        stack.append([self.label, time.perf_counter(), 0.0])
    def __exit__(self, *exc):
        label, start, child = stack.pop()
        elapsed = time.perf_counter() - start
        totals[label] = totals.get(label, 0.0) + elapsed - child
        if stack:
            stack[-1][2] += elapsed

def wrap(owner, name, label):
    original = getattr(owner, name)
    def wrapper(*args, **kwargs):
        with timed(label):
            return original(*args, **kwargs)
    setattr(owner, name, wrapper)

with timed("imports (medhub.cli)"):
    import medhub.cli
with timed("numpy import (part of torch's import)"):  # the first module get_model_executor() needs
    import numpy
with timed("imports (executor modules)"):  # what get_model_executor() imports on first use
    import medhub.generators, medhub.outputs
    import medhub.execution.executor as ex_mod
    import medhub.execution.kinds as kinds_mod
    import medhub.execution.resolve as res_mod
wrap(medhub.generators.Generators, "__init__", "catalog (Generators())")
wrap(ex_mod, "ensure_dependencies", "dependency check")
wrap(res_mod.PackageResolver, "resolve", "package sha256 verification")
original_import = kinds_mod.import_resolved
def import_resolved(package, model_id):
    if "torch" not in sys.modules:
        with timed("torch import"):
            import torch
    with timed("package import (without torch)"):
        return original_import(package, model_id)
kinds_mod.import_resolved = import_resolved
wrap(ex_mod.ModelExecutor, "load", "weight load")
wrap(ex_mod.ModelExecutor, "call_package", "first batch (forward pass)")
wrap(ex_mod.ModelExecutor, "provenance", "provenance record")
for name in ("__init__", "submit", "finish"):
    wrap(medhub.outputs.RunWriter, name, "writing outputs")
profile = len(sys.argv) > 4 and sys.argv[4] == "profile"
if profile:
    import cProfile, io, pstats
    prof = cProfile.Profile()
    prof.enable()
rc = medhub.cli.main(["generate", sys.argv[1], "-n", "1", "-o", sys.argv[2], "--seed", sys.argv[3], "--no-progress"])
inside = time.perf_counter() - T0
out = {"rc": rc, "inside_s": inside, "phases": totals}
if profile:
    prof.disable()
    buf = io.StringIO()
    pstats.Stats(prof, stream=buf).sort_stats("cumulative").print_stats(30)
    out["profile"] = buf.getvalue()
print("RESULT " + json.dumps(out), flush=True)
medhub.cli.finish(rc, ["generate"])  # ends as the console script does (medhub.cli.console_main)
"""


def _medhub_command(python: str) -> list[str]:
    script = Path(python).with_name("medhub")
    return [str(script)] if script.exists() else [python, "-m", "medhub.cli"]


def _timed(cmd: list[str], env: dict[str, str], cwd: Path | None = None) -> tuple[float, str]:
    start = time.perf_counter()
    proc = subprocess.run(cmd, env=env, cwd=cwd, capture_output=True, text=True, check=False)
    wall = time.perf_counter() - start
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed ({proc.returncode}): {proc.stderr[-2000:]}")
    return wall, proc.stdout


def measure(python: str, model: str, rounds: int, env: dict[str, str], scratch: Path,
            profile: bool) -> dict[str, Any]:
    cli = _medhub_command(python)
    counter = [0]

    def fresh() -> str:
        counter[0] += 1
        return str(scratch / f"out{counter[0]}")

    def real() -> float:
        return _timed([*cli, "generate", model, "-n", "1", "-o", fresh(), "--seed", "0", "--no-progress"], env)[0]

    def instrumented(extra: list[str] | None = None) -> dict[str, Any]:
        wall, stdout = _timed([python, "-c", HARNESS, model, fresh(), "0", *(extra or [])], env)
        doc = json.loads(next(ln for ln in stdout.splitlines() if ln.startswith("RESULT "))[len("RESULT "):])
        doc["wall_s"] = wall
        return doc

    def fast() -> float:  # medhub.cli.console_main: ends the process without torch's teardown
        return _timed([python, "-m", "medhub.cli", "generate", model, "-n", "1", "-o", fresh(), "--seed", "0",
                       "--no-progress"], env)[0]

    def bare() -> float:
        return _timed([python, "-c", "pass"], env)[0]

    done = alternate({"real": real, "instrumented": instrumented, "fast": fast, "bare": bare}, rounds)
    reals, docs, fasts, bares = done["real"], done["instrumented"], done["fast"], done["bare"]
    phases: dict[str, list[float]] = {p: [] for p in PHASES}
    for doc in docs:
        t = doc["phases"]
        labelled = sum(t.values())
        t["interpreter start and exit"] = doc["wall_s"] - doc["inside_s"]
        t["other (arguments, executor, device, progress bar)"] = doc["inside_s"] - labelled
        for p in PHASES:
            phases[p].append(t.get(p, 0.0))
    out = {
        "command": " ".join(["medhub", "generate", model, "-n", "1", "-o", "<new folder>", "--seed", "0",
                             "--no-progress"]),
        "rounds": rounds,
        "real_wall_s": {"median": statistics.median(reals), "min": min(reals), "max": max(reals), "all": reals},
        "instrumented_wall_s": statistics.median(d["wall_s"] for d in docs),
        "fast_exit_wall_s": statistics.median(fasts),
        "bare_python_s": statistics.median(bares),
        "phases": {p: {"median_s": statistics.median(v), "min_s": min(v), "max_s": max(v)} for p, v in phases.items()},
    }
    if profile:
        out["profile"] = instrumented(["profile"])["profile"]
    return out


def first_call(python: str, model: str, num_samples: int, raw_batch: int, rounds: int, env: dict[str, str],
               scratch: Path, package_block: int | None = None, what_if_env: dict[str, str] | None = None
               ) -> dict[str, Any]:
    """The first call of generate in fresh processes, raw and medhub, in memory and to PNG (see the docstring);
    ``package_block``: also the package alone on blocks of that size; ``what_if_env``: also raw and medhub in
    memory with these environment variables (what-ifs)."""
    counter = [0]

    def process(impl: str, mode: str, block: int | None = None, extra: dict[str, str] | None = None) -> dict[str, Any]:
        counter[0] += 1
        cmd = [python, str(HERE / "cold_start_worker.py"), "--impl", impl, "--mode", mode, "--model", model,
               "--num-samples", str(num_samples), "--batch", str(raw_batch), "--out", str(scratch / f"call{counter[0]}"),
               *(["--block", str(block)] if block else [])]
        _, stdout = _timed(cmd, {**env, **(extra or {})}, cwd=ROOT)
        doc = json.loads(next(ln for ln in reversed(stdout.splitlines()) if ln.startswith("RESULT "))[len("RESULT "):])
        if doc["produced"] != num_samples:
            raise SystemExit(f"{impl} {mode} produced {doc['produced']} of {num_samples} samples")
        return doc

    variants = {f"{impl}|{mode}": (lambda impl=impl, mode=mode: process(impl, mode))
                for mode in GOAL_FIRST_CALL for impl in ("raw", "medhub")}
    if native(model):  # the package alone, in memory: splits the gap (see cold_start_worker.py)
        variants["package|memory"] = lambda: process("package", "memory")
        if package_block:
            variants[f"{WHAT_IF}|memory"] = lambda: process("package", "memory", package_block)
    for cell, impl in WITH_ENV.items() if what_if_env else ():
        variants[f"{cell}|memory"] = lambda impl=impl: process(impl, "memory", extra=what_if_env)
    done = alternate(variants, rounds)
    cells: dict[str, Any] = {}
    for key, docs in done.items():
        phases = {p: [{**d["before_call"], **d["phases"]}.get(p) for d in docs] for p in FIRST_CALL_PHASES}
        calls = [d["call_s"] for d in docs]
        cells[key] = {"call_s": statistics.median(calls), "call_s_all": calls, "runs": docs,
                      "call_cpu_s": statistics.median(d["call_cpu_s"] for d in docs),
                      "call_faults": statistics.median(d.get("call_faults", 0) for d in docs),
                      "phases": {p: statistics.median(v) for p, v in phases.items() if None not in v}}
    ratios = {mode: cells[f"raw|{mode}"]["call_s"] / cells[f"medhub|{mode}"]["call_s"] for mode in GOAL_FIRST_CALL}
    out = {"rounds": rounds, "num_samples": num_samples, "raw_batch": raw_batch, "cells": cells,
           "medhub_over_raw": ratios}
    if "package|memory" in cells:
        package = cells["package|memory"]["call_s"]
        out["package_over_raw"] = cells["raw|memory"]["call_s"] / package
        out["medhub_over_package"] = package / cells["medhub|memory"]["call_s"]
    if f"{WHAT_IF}|memory" in cells:
        out["package_block"] = package_block
        out["package_block_over_raw"] = cells["raw|memory"]["call_s"] / cells[f"{WHAT_IF}|memory"]["call_s"]
    if what_if_env:
        call = {key: cells[f"{key}|memory"]["call_s"] for key in ("raw", "medhub", *WITH_ENV)}
        out["env"] = dict(what_if_env)
        out["env_ratios"] = {"medhub_over_raw": call["raw-env"] / call["medhub-env"],
                             "raw_speedup": call["raw"] / call["raw-env"],
                             "medhub_speedup": call["medhub"] / call["medhub-env"]}
    return out


def native(model: str) -> bool:
    """Whether ``model`` is a ``medhub/1`` package of the bundled catalog (it has its own ``sample``)."""
    from medhub.config import ConfigManager

    return ConfigManager().config_dict[model]["execution"].get("interface") == "medhub/1"


FIRST_CALL = """
    ### First call of `generate` against the raw loop

    {model}, {n:,} samples, the first call in a fresh process (median of {rounds} rounds of one process
    per column, alternated, after a warm-up round): `Generators().generate(..., seed=0, device="cpu")`
    against the raw loop of `benchmarks/generate.py` at batch size {raw_batch}. The call is what
    medhub / raw compares (the raw call's time over medhub's); the phases above the line run before
    it. Phases are exclusive times on the calling thread; *other* is what no phase claims. The
    last rows are the CPU time the call used (on a loaded machine the wall times grow with the load,
    and a call that needs less CPU suffers less from it) and its minor page faults: the new memory a
    fresh process maps in on first touch, a cost of the first call that a warm process does not pay.

    {phases}
    {package}"""

PACKAGE = """
    *Package alone* is the package's own `load` and `sample` in a bare loop, called as medhub calls
    them (the catalog's memory layout and batch size, medhub's per-sample seeds) without medhub's
    set-up, checks and collection. It splits the in-memory gap: package / raw is what the package's
    frozen algorithm costs against the raw network call (fixed blocks, per-sample counter-based noise,
    a padded last block: what keeps each sample the same whatever the batch size or device), medhub /
    package what medhub adds: **{package_over_raw:.2f}** and **{medhub_over_package:.2f}**.
"""

PACKAGE_BLOCK = """
    *What-if* (`--package-block {package_block}`): the package alone with its fixed block set to
    {package_block} samples before it runs. A package's block is part of its frozen algorithm: a
    different block may change its samples on some CPU, so this column only measures what the block
    costs (raw / what-if: **{package_block_over_raw:.2f}**); nothing of medhub runs it.
"""

ENV = """
    *What-if* (`{env}`): raw and medhub in memory, each process started with these
    environment variables (glibc's malloc settings, its top pad and its trim and mmap thresholds, decide
    how much freed memory is handed back to the system, to be faulted in again by the next batch; they
    act on the whole process, so medhub does not set them). With them medhub / raw is
    **{medhub_over_raw:.2f}**; they make the raw loop {raw_speedup:.2f}x and medhub {medhub_speedup:.2f}x as fast.
"""


def first_call_section(res: dict[str, Any], model: str) -> tuple[list[Goal], str]:
    """The goals and the table of :func:`first_call`'s results."""
    cells, order = res["cells"], [(impl, mode) for mode in GOAL_FIRST_CALL for impl in ("raw", "medhub")]
    if "package|memory" in cells:
        order.insert(2, ("package", "memory"))
    if f"{WHAT_IF}|memory" in cells:
        order.insert(3, (WHAT_IF, "memory"))
    at = order.index(("raw", "png"))
    order[at:at] = [(cell, "memory") for cell in WITH_ENV if f"{cell}|memory" in cells]
    rows = []
    for phase in FIRST_CALL_PHASES:
        values = [cells[f"{impl}|{mode}"]["phases"].get(phase) for impl, mode in order]
        if any(v is not None for v in values):
            rows.append([phase, *("" if v is None else ms(v) for v in values)])
        if phase == BEFORE_CALL[-1]:
            rows.append(["**the call**", *(f"**{ms(cells[f'{impl}|{mode}']['call_s'])}**" for impl, mode in order)])
    rows.append(["**medhub / raw**", *(f"**{res['medhub_over_raw'][mode]:.2f}**" if impl == "medhub" else ""
                                       for impl, mode in order)])
    rows.append(["CPU time of the call (every thread, writer processes)",
                 *(ms(cells[f"{impl}|{mode}"]["call_cpu_s"]) for impl, mode in order)])
    if all("call_faults" in cells[f"{impl}|{mode}"] for impl, mode in order):
        rows.append(["page faults of the call (minor: new memory touched)",
                     *(f"{cells[f'{impl}|{mode}']['call_faults']:,.0f}" for impl, mode in order)])
    goals = [Goal("cold start", f"{short(model)}, first call of generate, {res['num_samples']:,} samples "
                  f"{MODE_LABELS[mode]}: medhub / raw loop ({ms(cells[f'medhub|{mode}']['call_s'])} vs "
                  f"{ms(cells[f'raw|{mode}']['call_s'])})", f"{ratio:.2f}", f">= {GOAL_FIRST_CALL[mode]}",
                  ratio >= GOAL_FIRST_CALL[mode]) for mode, ratio in res["medhub_over_raw"].items()]
    package = "\n" + fill(PACKAGE, **{k: res[k] for k in ("package_over_raw", "medhub_over_package")}) if (
        "package_over_raw" in res) else ""
    if "package_block_over_raw" in res:
        package += "\n\n" + fill(PACKAGE_BLOCK, **{k: res[k] for k in ("package_block", "package_block_over_raw")})
    labels = {"raw": "raw", "medhub": "medhub", "package": "package alone",
              WHAT_IF: f"what-if: package alone on blocks of {res.get('package_block')}",
              **{cell: f"what-if: {impl} with --env" for cell, impl in WITH_ENV.items()}}
    if "env_ratios" in res:
        env = " ".join(f"--env {k}={v}" for k, v in res["env"].items())
        package += "\n\n" + fill(ENV, env=env, **res["env_ratios"])
    text = fill(FIRST_CALL, model=model, n=res["num_samples"], rounds=res["rounds"], raw_batch=res["raw_batch"],
                phases=table(["Phase", *(f"{labels[impl]}, {MODE_LABELS[mode]}" for impl, mode in order)], rows,
                             "l" + "r" * len(order)), package=package)
    return goals, text


REPORT = """
    ## Cold start

    `{command}` ({when}): `{cli}` from a fresh process, {rounds} rounds alternated with the same command
    instrumented (the functions it calls wrapped in timers; exclusive times), the same through
    `python -m medhub.cli` and `python -c pass`, after a warm-up round. Interpreter start and exit is
    the instrumented process's wall time less the time measured inside it.

    {commands}

    Goal: no phase but the torch import and the forward pass above {goal}. numpy's import is shown apart
    and exempt with torch's: `import torch` imports numpy itself, so medhub importing it first only moves
    that cost from one line to the other.

    {phases}
"""


def report(run: Run) -> Section:
    """The cold-start section and its goal (the slowest phase that is not exempt)."""
    res = run.result["result"]
    phases = res["phases"]
    checked = [p for p in PHASES if p not in EXEMPT]
    worst = max(checked, key=lambda p: phases[p]["median_s"])
    passed = phases[worst]["median_s"] <= GOAL_S
    goal = Goal("cold start", f"cold start `medhub generate {run.result['settings']['model'][:5]} -n 1`: slowest "
                f"phase other than the torch import and the forward pass ({worst})", ms(phases[worst]["median_s"]),
                f"< {goal_ms(GOAL_S)}", passed)
    wall = res["real_wall_s"]
    commands = table(["Command", "Median", "Min – max"], [
        [f"`{res['command']}`", ms(wall["median"]), f"{ms(wall['min'])} – {ms(wall['max'])}"],
        ["the same, instrumented", ms(res["instrumented_wall_s"]), ""],
        ["the same through `medhub.cli.console_main` (`python -m medhub.cli`: exits without torch's teardown)",
         ms(res["fast_exit_wall_s"]), ""],
        ["`python -c pass`", ms(res["bare_python_s"]), ""]], "lrr")
    rows = [[p, ms(s["median_s"]), f"{ms(s['min_s'])} – {ms(s['max_s'])}",
             "exempt" if p in EXEMPT else f"**{'PASS' if s['median_s'] <= GOAL_S else 'MISSED'}**"]
            for p, s in phases.items()]
    text = fill(REPORT, command=run.command, when=run.when, cli=res["command"], rounds=res["rounds"],
                commands=commands, goal=goal_ms(GOAL_S),
                phases=table(["Phase", "Median", "Min – max", f"< {goal_ms(GOAL_S)}"], rows, "lrrl"))
    if "first_call" not in run.result:  # results of a run before the first-call part existed
        return Section([goal], text)
    first_goals, first_text = first_call_section(run.result["first_call"], run.result["settings"]["model"])
    return Section([goal, *first_goals], text + "\n\n" + first_text)


def main(argv: list[str] | None = None) -> int:
    cli = parser(__doc__, "3 rounds", python=True)
    cli.add_argument("--model", default=MODEL, help=f"shipped model (default {MODEL})")
    cli.add_argument("--profile", action="store_true", help="also print a cProfile listing of one run")
    cli.add_argument("--num-samples", type=int, default=1000, help="samples of the first call (default 1000)")
    cli.add_argument("--raw-batch", type=int, default=64, help="the raw loop's batch size (default 64)")
    cli.add_argument("--rounds", type=int, help="rounds of each part (default 9; 3 quick)")
    cli.add_argument("--package-block", type=int, help="what-if: also the package alone on blocks of this size")
    cli.add_argument("--env", action="append", metavar="NAME=VALUE", default=[],
                     help="what-if: also raw and medhub in memory with this environment variable (repeatable)")
    args = cli.parse_args(argv)
    rounds = args.rounds or (3 if args.quick else 9)
    if any("=" not in item or not item.split("=", 1)[0] for item in args.env):
        cli.error("--env takes NAME=VALUE, e.g. --env MALLOC_TOP_PAD_=67108864")
    what_if_env = dict(item.split("=", 1) for item in args.env)
    info = machine_info(args.python)
    scratch = Path(tempfile.mkdtemp(prefix="medhub-bench-cold-"))
    try:
        env = benchmark_env(scratch / "home")
        first = first_call(args.python, args.model, args.num_samples, args.raw_batch, rounds, env, scratch,
                           args.package_block, what_if_env)
        res = measure(args.python, args.model, rounds, env, scratch, args.profile)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    if args.profile:
        print(res.pop("profile"))
    doc = {"benchmark": "cold_start", "machine": info,
           "settings": {"model": args.model, "rounds": rounds, "quick": args.quick, "num_samples": args.num_samples,
                        "raw_batch": args.raw_batch, "package_block": args.package_block,
                        "env": what_if_env}, "result": res,
           "first_call": first}
    return finish(args, doc, report, argv)


if __name__ == "__main__":
    sys.exit(main())
