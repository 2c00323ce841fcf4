"""Run every medhub benchmark and regenerate ``docs/performance.md`` from their results.

Run from the repository root (any interpreter with medhub installed)::

    python benchmarks/run_all.py                      # full run, rewrites docs/performance.md
    python benchmarks/run_all.py --quick              # fewer repetitions (smoke test)
    python benchmarks/run_all.py --json-dir results/  # also keep the raw JSON of each benchmark
    python benchmarks/run_all.py --output /tmp/perf.md
    python benchmarks/run_all.py --json-dir results/ --only generate cold_start
                                                      # rerun two benchmarks, reuse the others' JSON in results/
    python benchmarks/run_all.py --json-dir results/ --render
                                                      # rewrite the page from the JSON in results/, run nothing

Runs each benchmark (``python benchmarks/<name>.py --json ...``, the order is ``BENCHMARKS``;
each prints its own report), then writes the page: the machine, the commands, every goal, and each
benchmark's section, rendered by that benchmark's ``report`` function (``report.py``). Numbers in
the page come only from the JSON results; do not edit them by hand, rerun this script.
``distributed.py`` (it needs Ray) is not part of the page. The results behind the current page are
kept in ``benchmarks/results/`` (the page was made with ``--json-dir benchmarks/results``).
"""

from __future__ import annotations

import argparse
import importlib
import json
import shlex
import subprocess
import sys
import tempfile
from pathlib import Path

import report
from common import HERE, ROOT

BENCHMARKS = ("import_time", "catalog_search", "dataloader", "download", "fid_features", "memory_format", "gpu",
              "cpu_streams", "generate", "cold_start", "writers")
#: Options a benchmark gets from this script only (shown in the page's commands): gpu.py alone runs writers.py
#: after itself, here it runs on its own; cold_start.py adds its allocator what-if (glibc keeps 64 MiB of freed
#: memory at the top of the heap instead of handing it back: the page faults of a fresh process's first call).
ONLY_HERE = {"gpu": ["--no-writers"], "cold_start": ["--env", "MALLOC_TOP_PAD_=67108864"]}
DEFAULT_OUTPUT = ROOT / "docs" / "performance.md"


def _rel(path: Path) -> str:
    try:
        return str(path.resolve().relative_to(ROOT))
    except ValueError:
        return str(path)


def shown_command(name: str, shown_json_dir: str, quick: bool) -> str:
    """The command of a benchmark as the page shows it, with the options it gets from this script
    (``<tmp>`` reads better bare: not quoted)."""
    return " ".join(["python", f"benchmarks/{name}.py", "--json", f"{shown_json_dir}/{name}.json"]
                    + (["--quick"] if quick else []) + ONLY_HERE.get(name, []))


def run_benchmarks(python: str, json_dir: Path, quick: bool, shown_json_dir: str,
                   names: tuple[str, ...] | list[str]) -> list[report.Run]:
    """Run the benchmarks in ``names`` with ``--json``; read the others' earlier results from ``json_dir``."""
    runs = []
    for name in BENCHMARKS:
        target = json_dir / f"{name}.json"
        if name not in names:
            if target.exists():
                doc = json.loads(target.read_text(encoding="utf-8"))
                runs.append(report.Run(doc["command"], doc, reused=True))
                print(f"reusing {_rel(target)} (measured {doc['machine']['date']})")
            continue
        command = shown_command(name, shown_json_dir, quick)
        print(f"\n$ {command}\n", flush=True)
        proc = subprocess.run([python, str(HERE / f"{name}.py"), "--json", str(target), *(["--quick"] if quick else []),
                               *ONLY_HERE.get(name, [])], cwd=ROOT, check=False)
        if proc.returncode != 0:
            raise SystemExit(f"{name}.py failed with exit status {proc.returncode}")
        runs.append(report.Run(command, json.loads(target.read_text(encoding="utf-8"))))
    if not runs:
        raise SystemExit(f"no results in {json_dir}: run the benchmarks first")
    return runs


def render(runs: list[report.Run], command: str, quick: bool) -> str:
    """The page: each run's section comes from its benchmark module's ``report`` function."""
    return report.page([(run, importlib.import_module(run.result["benchmark"]).report(run)) for run in runs],
                       command, quick)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="fewer repetitions in every benchmark (smoke test)")
    parser.add_argument("--json-dir", metavar="DIR", help="keep each benchmark's JSON results in DIR")
    parser.add_argument("--output", default=str(DEFAULT_OUTPUT), help="page to write (default docs/performance.md)")
    parser.add_argument("--python", default=sys.executable, help="interpreter to run the benchmarks with")
    parser.add_argument("--only", nargs="+", choices=BENCHMARKS, metavar="NAME",
                        help=f"run only these ({', '.join(BENCHMARKS)}); the others' results come from --json-dir")
    parser.add_argument("--render", action="store_true", help="run nothing: write the page from --json-dir")
    args = parser.parse_args(argv)
    if (args.only or args.render) and not args.json_dir:
        parser.error("--only and --render need --json-dir (where the benchmarks' results are kept)")

    names = () if args.render else (args.only or BENCHMARKS)
    command = shlex.join(["python", "benchmarks/run_all.py"] + (["--quick"] if args.quick else [])
                         + (["--json-dir", _rel(Path(args.json_dir))] if args.json_dir else [])
                         + (["--only", *args.only] if args.only else []) + (["--render"] if args.render else []))
    with tempfile.TemporaryDirectory(prefix="medhub-bench-results-") as tmp:
        json_dir = Path(args.json_dir) if args.json_dir else Path(tmp)
        json_dir.mkdir(parents=True, exist_ok=True)
        runs = run_benchmarks(args.python, json_dir, args.quick, _rel(json_dir) if args.json_dir else "<tmp>", names)
    output = Path(args.output)
    output.parent.mkdir(parents=True, exist_ok=True)
    quick = any(run.result["settings"]["quick"] for run in runs)  # reused quick results too
    output.write_text(render(runs, command, quick), encoding="utf-8")
    print(f"\nWrote {_rel(output)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
