"""Benchmark: the cost of ``import medhub`` on top of a bare interpreter start.

Run from the repository root (any interpreter with medhub installed)::

    python benchmarks/import_time.py                 # 15 pairs of fresh subprocesses
    python benchmarks/import_time.py --quick         # 5 pairs, for a smoke test
    python benchmarks/import_time.py --json out.json # also write the results as JSON

What it does:

1. Starts ``python -c "import medhub"`` and ``python -c "pass"`` alternately (the order flips
   every pair so slow drift of the machine hits both), N times each, after one discarded warm-up
   of each (which also writes the ``.pyc`` files). Reported: the median wall time of each and the
   difference of the medians, the import cost. The median of the paired differences is shown as
   a cross-check.
2. Runs ``python -X importtime -c "import medhub"`` a few times and lists the 10 modules below
   ``medhub`` with the largest cumulative import time (median over those runs).
3. Checks ``sys.modules`` in a fresh subprocess after ``import medhub`` for torch, numpy,
   matplotlib, github, zenodo_client and requests, which medhub is meant to import lazily.

Goals: import cost under 60 ms; torch not imported.
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from typing import Any

from _common import benchmark_env, goal_ms, machine_info, ms, print_machine, summarize, verdict, write_json

GOAL_IMPORT_COST_S = 0.060
#: Modules medhub must not import at ``import medhub`` (each is imported by the function needing it).
CHECKED_MODULES = ("torch", "numpy", "matplotlib", "github", "zenodo_client", "requests")
IMPORT_STMT = "import medhub"
BARE_STMT = "pass"


def _time_run(python: str, code: str, env: dict[str, str], cpu: list[float] | None = None) -> float:
    """Wall time of one fresh interpreter running ``code``; appends its CPU time (user+sys) to ``cpu``."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    subprocess.run([python, "-c", code], env=env, check=True, stdout=subprocess.DEVNULL)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if cpu is not None:
        cpu.append((after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime))
    return wall


def measure_wall(python: str, repeat: int, env: dict[str, str]) -> dict[str, Any]:
    """Median wall time of ``import medhub`` and of ``pass`` in fresh interpreters, alternated."""
    _time_run(python, IMPORT_STMT, env)  # warm-up: .pyc files, page cache
    _time_run(python, BARE_STMT, env)
    with_import: list[float] = []
    bare: list[float] = []
    cpu_import: list[float] = []
    cpu_bare: list[float] = []
    for i in range(repeat):
        if i % 2 == 0:
            with_import.append(_time_run(python, IMPORT_STMT, env, cpu_import))
            bare.append(_time_run(python, BARE_STMT, env, cpu_bare))
        else:
            bare.append(_time_run(python, BARE_STMT, env, cpu_bare))
            with_import.append(_time_run(python, IMPORT_STMT, env, cpu_import))
    imp, base = summarize(with_import), summarize(bare)
    cpu_imp, cpu_base = summarize(cpu_import), summarize(cpu_bare)
    return {
        "import_medhub": imp,
        "bare_python": base,
        "import_cost_s": imp["median_s"] - base["median_s"],
        "paired_difference_median_s": statistics.median(a - b for a, b in zip(with_import, bare)),
        # CPU time (user+sys) of the child: less sensitive than wall time to other jobs on the machine
        "cpu_import_medhub": cpu_imp,
        "cpu_bare_python": cpu_base,
        "cpu_import_cost_s": cpu_imp["median_s"] - cpu_base["median_s"],
        "samples_import_s": with_import,
        "samples_bare_s": bare,
    }


def _parse_importtime(stderr: str, root: str = "medhub") -> dict[str, tuple[int, int]]:
    """Modules imported while importing ``root``: name -> (self us, cumulative us).

    ``-X importtime`` prints a module after the modules it imported, indented by depth. The
    modules of ``root``'s import are the lines after the previous top-level line up to the
    top-level line of ``root`` itself.
    """
    rows: list[tuple[str, int, int, int]] = []
    for line in stderr.splitlines():
        if not line.startswith("import time:"):
            continue
        parts = line[len("import time:") :].split("|", 2)
        if len(parts) != 3 or not parts[0].strip().isdigit():
            continue  # the header line
        field = parts[2]
        name = field.strip()
        depth = (len(field) - len(field.lstrip(" ")) - 1) // 2
        rows.append((name, depth, int(parts[0]), int(parts[1])))
    end = max((i for i, r in enumerate(rows) if r[0] == root and r[1] == 0), default=None)
    if end is None:
        return {}
    start = end
    while start > 0 and rows[start - 1][1] > 0:
        start -= 1
    return {name: (self_us, cum_us) for name, _depth, self_us, cum_us in rows[start : end + 1]}


def measure_importtime(python: str, runs: int, env: dict[str, str], top: int = 10) -> dict[str, Any]:
    """Top modules by cumulative import time under ``import medhub`` (median over ``runs``)."""
    per_module: dict[str, list[tuple[int, int]]] = {}
    for _ in range(runs):
        out = subprocess.run(
            [python, "-X", "importtime", "-c", IMPORT_STMT], env=env, capture_output=True, text=True, check=True
        )
        for name, times in _parse_importtime(out.stderr).items():
            per_module.setdefault(name, []).append(times)
    table = [
        {
            "module": name,
            "cumulative_us": statistics.median(c for _s, c in times),
            "self_us": statistics.median(s for s, _c in times),
        }
        for name, times in per_module.items()
    ]
    table.sort(key=lambda r: r["cumulative_us"], reverse=True)
    return {"runs": runs, "modules_imported": len(table), "top": table[:top]}


def check_modules(python: str, env: dict[str, str]) -> dict[str, Any]:
    """Which of the checked heavy modules are in ``sys.modules`` after ``import medhub``."""
    code = (
        "import sys\n"
        "before = set(sys.modules)\n"
        "import medhub\n"
        "after = set(sys.modules)\n"
        "import json\n"
        f"print(json.dumps({{'loaded': {{m: m in after for m in {list(CHECKED_MODULES)!r}}},"
        " 'new_modules': len(after - before)}))"
    )
    out = subprocess.run([python, "-c", code], env=env, capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("-n", "--repeat", type=int, default=None, help="subprocess pairs (default 15; 5 with --quick)")
    parser.add_argument("--quick", action="store_true", help="fewer repetitions (smoke test)")
    parser.add_argument("--json", metavar="PATH", help="write the results to this JSON file")
    parser.add_argument("--python", default=sys.executable, help="interpreter to benchmark (default: this one)")
    parser.add_argument("--fail-on-miss", action="store_true", help="exit with status 1 if a goal is missed")
    args = parser.parse_args(argv)
    repeat = args.repeat or (5 if args.quick else 15)
    importtime_runs = 3 if args.quick else 7

    info = machine_info(args.python)
    print("medhub benchmark: import time\n")
    print_machine(info)

    with tempfile.TemporaryDirectory(prefix="medhub-bench-home-") as home:
        env = benchmark_env(home)
        print(f"Timing {repeat} fresh `{IMPORT_STMT}` / `{BARE_STMT}` subprocess pairs ...", flush=True)
        wall = measure_wall(args.python, repeat, env)
        importtime = measure_importtime(args.python, importtime_runs, env)
        modules = check_modules(args.python, env)

    cost = wall["import_cost_s"]
    cost_ok = cost < GOAL_IMPORT_COST_S
    torch_ok = not modules["loaded"]["torch"]
    print()
    print(
        f'  python -c "{IMPORT_STMT}"   median {ms(wall["import_medhub"]["median_s"]):>9}'
        f"   (min {ms(wall['import_medhub']['min_s'])}, max {ms(wall['import_medhub']['max_s'])})"
    )
    print(
        f'  python -c "{BARE_STMT}"            median {ms(wall["bare_python"]["median_s"]):>9}'
        f"   (min {ms(wall['bare_python']['min_s'])}, max {ms(wall['bare_python']['max_s'])})"
    )
    print(
        f"  import cost (difference of medians) {ms(cost):>9}   goal < {goal_ms(GOAL_IMPORT_COST_S)}: {verdict(cost_ok)}"
    )
    print(f"  (median of paired differences:      {ms(wall['paired_difference_median_s']):>9})")
    print(
        f"  (CPU time user+sys, less sensitive to other jobs: {ms(wall['cpu_import_medhub']['median_s'])} vs "
        f"{ms(wall['cpu_bare_python']['median_s'])}, difference {ms(wall['cpu_import_cost_s'])})"
    )
    print()
    print(
        f"Top 10 modules under `import medhub` by cumulative time (python -X importtime, median of "
        f"{importtime['runs']} runs; {importtime['modules_imported']} modules imported for medhub):"
    )
    print(f"  {'cumulative':>10}  {'self':>8}  module")
    for row in importtime["top"]:
        print(f"  {row['cumulative_us'] / 1000:>7.1f} ms  {row['self_us'] / 1000:>5.1f} ms  {row['module']}")
    print()
    print(f"Modules in sys.modules after `import medhub` ({modules['new_modules']} modules added in all):")
    for name in CHECKED_MODULES:
        loaded = modules["loaded"][name]
        note = f"goal: not imported -> {verdict(not loaded)}" if name == "torch" else "expected: not imported"
        print(f"  {name:<14} {'IMPORTED' if loaded else 'not imported':<13} {note}")
    unexpected = [m for m in CHECKED_MODULES if modules["loaded"][m]]
    print()
    goals = [
        {"goal": "import cost < 60 ms", "value": ms(cost), "passed": cost_ok},
        {
            "goal": "torch not imported by `import medhub`",
            "value": "imported" if not torch_ok else "not imported",
            "passed": torch_ok,
        },
    ]
    for g in goals:
        print(f"Goal {g['goal']:<40} {g['value']:>14}  {verdict(g['passed'])}")
    if unexpected:
        print(f"Note: `import medhub` imports {', '.join(unexpected)}, which medhub means to import lazily.")
    if not all(g["passed"] for g in goals):
        print("GOAL MISSED: see above.")

    result = {
        "benchmark": "import_time",
        "machine": info,
        "settings": {"repeat": repeat, "importtime_runs": importtime_runs, "quick": args.quick},
        "commands": {
            "import": f'python -c "{IMPORT_STMT}"',
            "bare": f'python -c "{BARE_STMT}"',
            "importtime": f'python -X importtime -c "{IMPORT_STMT}"',
        },
        "wall": wall,
        "importtime": importtime,
        "modules": modules,
        "unexpected_modules": unexpected,
        "goals": goals,
        "all_goals_passed": all(g["passed"] for g in goals),
    }
    if args.json:
        write_json(args.json, result)
    return 1 if args.fail_on_miss and not result["all_goals_passed"] else 0


if __name__ == "__main__":
    sys.exit(main())
