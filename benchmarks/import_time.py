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

import json
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from typing import Any

from common import alternate, benchmark_env, finish, machine_info, parser, summarize
from report import Goal, Run, Section, fill, goal_ms, ms, span, table

GOAL_IMPORT_COST_S = 0.060
#: Modules medhub must not import at ``import medhub`` (each is imported by the function needing it).
CHECKED_MODULES = ("torch", "numpy", "matplotlib", "github", "zenodo_client", "requests")
IMPORT_STMT = "import medhub"
BARE_STMT = "pass"

REPORT = """
    ## `import medhub`

    `{command}` ({when}): {repeat} fresh subprocesses of each command, alternated (after one warm-up
    of each).

    {wall}

    Top 10 modules of medhub's import by cumulative time (`{importtime}`, median of {runs} runs;
    {modules} modules imported in all; `-X importtime` itself slows imports down):

    {top}

    Heavy modules in `sys.modules` after `import medhub` (all are meant to be imported lazily):

    {heavy}
"""


def _time_run(python: str, code: str, env: dict[str, str]) -> tuple[float, float]:
    """(wall, CPU user+sys) seconds of one fresh interpreter running ``code``."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    subprocess.run([python, "-c", code], env=env, check=True, stdout=subprocess.DEVNULL)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def measure_wall(python: str, repeat: int, env: dict[str, str]) -> dict[str, Any]:
    """Wall and CPU time of ``import medhub`` and of ``pass`` in fresh interpreters, alternated."""
    runs = alternate({"import": lambda: _time_run(python, IMPORT_STMT, env),
                      "bare": lambda: _time_run(python, BARE_STMT, env)}, repeat)
    with_import, bare = [w for w, _ in runs["import"]], [w for w, _ in runs["bare"]]
    imp, base = summarize(with_import), summarize(bare)
    cpu_imp, cpu_base = summarize([c for _, c in runs["import"]]), summarize([c for _, c in runs["bare"]])
    return {
        "import_medhub": imp, "bare_python": base, "import_cost_s": imp["median_s"] - base["median_s"],
        "paired_difference_median_s": statistics.median(a - b for a, b in zip(with_import, bare)),
        # CPU time (user+sys) of the child: less sensitive than wall time to other jobs on the machine
        "cpu_import_medhub": cpu_imp, "cpu_bare_python": cpu_base,
        "cpu_import_cost_s": cpu_imp["median_s"] - cpu_base["median_s"],
        "samples_import_s": with_import, "samples_bare_s": bare,
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


def report(run: Run) -> Section:
    """The ``import medhub`` section and its two goals."""
    res = run.result
    wall, top, loaded = res["wall"], res["importtime"], res["modules"]["loaded"]
    cost = wall["import_cost_s"]
    goals = [Goal("import", "`import medhub` cost (median with import − median bare start)", ms(cost),
                  f"< {goal_ms(GOAL_IMPORT_COST_S)}", cost < GOAL_IMPORT_COST_S),
             Goal("import", "torch imported by `import medhub`", "imported" if loaded["torch"] else "not imported",
                  "not imported", not loaded["torch"])]
    imp, bare = wall["import_medhub"], wall["bare_python"]
    text = fill(REPORT, command=run.command, when=run.when, repeat=res["settings"]["repeat"],
                importtime=f'python -X importtime -c "{IMPORT_STMT}"', runs=top["runs"],
                modules=top["modules_imported"],
                wall=table(["Command", "Median", "Min – max"], [
                    [f'`python -c "{IMPORT_STMT}"`', ms(imp["median_s"]), span(imp)],
                    [f'`python -c "{BARE_STMT}"`', ms(bare["median_s"]), span(bare)],
                    ["import cost (difference of the medians)", ms(cost), ""],
                    ["median of the paired differences", ms(wall["paired_difference_median_s"]), ""],
                    ["CPU time (user+sys) cost, for comparison", ms(wall["cpu_import_cost_s"]),
                     f"{ms(wall['cpu_import_medhub']['median_s'])} vs {ms(wall['cpu_bare_python']['median_s'])}"],
                ], "lrr"),
                top=table(["Module", "Cumulative", "Self"],
                          [[f"`{r['module']}`", f"{r['cumulative_us'] / 1000:.1f} ms", f"{r['self_us'] / 1000:.1f} ms"]
                           for r in top["top"]], "lrr"),
                heavy=table(["Module", "Imported"], [[f"`{m}`", "**yes**" if v else "no"] for m, v in loaded.items()]))
    return Section(goals, text)


def main(argv: list[str] | None = None) -> int:
    args = parser(__doc__, "5 pairs of subprocesses, 3 importtime runs", python=True).parse_args(argv)
    repeat = 5 if args.quick else 15
    importtime_runs = 3 if args.quick else 7
    info = machine_info(args.python)
    with tempfile.TemporaryDirectory(prefix="medhub-bench-home-") as home:
        env = benchmark_env(home)
        print(f"Timing {repeat} fresh `{IMPORT_STMT}` / `{BARE_STMT}` subprocess pairs ...", flush=True)
        wall = measure_wall(args.python, repeat, env)
        importtime = measure_importtime(args.python, importtime_runs, env)
        modules = check_modules(args.python, env)
    doc = {"benchmark": "import_time", "machine": info,
           "settings": {"repeat": repeat, "importtime_runs": importtime_runs, "quick": args.quick},
           "wall": wall, "importtime": importtime, "modules": modules}
    return finish(args, doc, report, argv)


if __name__ == "__main__":
    sys.exit(main())
