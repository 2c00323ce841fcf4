"""Helpers shared by the medhub benchmarks (machine description, statistics, JSON output).

Not a benchmark itself; imported by ``import_time.py``, ``catalog_search.py`` and ``run_all.py``.
"""

from __future__ import annotations

import datetime as _dt
import json
import os
import platform
import statistics
import subprocess
import sys
from importlib import metadata
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]

#: Environment variables that would make medhub read another catalog than the one benchmarked.
_MEDHUB_ENV = ("MEDHUB_CONFIG", "MEDHUB_CATALOG_URL", "MEDHUB_HOME", "MEDHUB_OFFLINE")


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as fh:
            for line in fh:
                key, _, value = line.partition(":")
                if key.strip() in ("model name", "Model", "Processor", "cpu model") and value.strip():
                    return value.strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown"


def _version(dist: str) -> str:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return "not installed"


def _git_commit() -> str | None:
    try:
        out = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True, timeout=10, check=False
        )
    except (OSError, subprocess.SubprocessError):
        return None
    if out.returncode != 0:
        return None
    commit = out.stdout.strip()
    dirty = subprocess.run(
        ["git", "status", "--porcelain", "--untracked-files=no"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=10,
        check=False,
    )
    return commit + ("+dirty" if dirty.returncode == 0 and dirty.stdout.strip() else "")


def compile_bytecode(python: str, folders: list[str | os.PathLike[str]]) -> None:
    """Write the ``__pycache__`` bytecode of every module under ``folders`` with ``python``."""
    subprocess.run([python, "-m", "compileall", "-q", *map(str, folders)], check=True, stdout=subprocess.DEVNULL)


def prepare_bytecode(python: str | None = None) -> dict[str, Any]:
    """Compile medhub's modules (where ``python`` imports them from) and the shipped model packages.

    A user's imports read cached bytecode (pip writes it at install, Python at first import). With
    ``PYTHONDONTWRITEBYTECODE`` set, as on some CI machines, nothing writes it and every fresh
    process would compile medhub from source, a cost no user pays; compiling once up front (the
    variable only stops writing, not reading) makes the timings independent of it.
    """
    python = python or sys.executable
    found = subprocess.run([python, "-c", "import medhub, os; print(os.path.dirname(medhub.__file__))"],
                           capture_output=True, text=True, check=True).stdout.strip()
    folders = [found, str(ROOT / "models")]
    compile_bytecode(python, folders)
    return {"PYTHONDONTWRITEBYTECODE": os.environ.get("PYTHONDONTWRITEBYTECODE", ""), "compiled": folders}


def machine_info(python: str | None = None) -> dict[str, Any]:
    """Describe the machine and the interpreter the benchmark runs (CPU, cores, versions, load).

    Every benchmark calls it first; it also compiles medhub's bytecode (:func:`prepare_bytecode`)
    so that no timing includes compiling medhub's sources.
    """
    bytecode = prepare_bytecode(python)
    try:
        usable = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        usable = os.cpu_count() or 0
    try:
        load = [round(x, 2) for x in os.getloadavg()]
    except (AttributeError, OSError):
        load = None
    return {
        "cpu": _cpu_model(),
        "cores_logical": os.cpu_count(),
        "cores_usable": usable,
        "load_average_1_5_15min": load,
        "os": f"{platform.system()} {platform.release()}",
        "python": f"{platform.python_implementation()} {platform.python_version()}",
        "python_executable": python or sys.executable,
        "numpy": _version("numpy"),
        "medhub": _version("medhub"),
        "fastjsonschema": _version("fastjsonschema"),
        "git_commit": _git_commit(),
        "date": _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "bytecode": bytecode,
    }


def print_machine(info: dict[str, Any]) -> None:
    print("Machine")
    print(f"  CPU              {info['cpu']}")
    print(f"  cores            {info['cores_logical']} logical, {info['cores_usable']} usable by this process")
    print(f"  load average     {info['load_average_1_5_15min']} (1/5/15 min; other jobs make timings noisier)")
    print(f"  OS               {info['os']}")
    print(f"  python           {info['python']} ({info['python_executable']})")
    print(f"  numpy            {info['numpy']}")
    print(f"  medhub           {info['medhub']} (commit {info['git_commit']})")
    print(f"  date             {info['date']}")
    if "bytecode" in info:
        env = info["bytecode"]["PYTHONDONTWRITEBYTECODE"]
        print(f"  bytecode         compiled before timing ({len(info['bytecode']['compiled'])} folders; "
              f"PYTHONDONTWRITEBYTECODE={env or 'unset'})")
    print()


def summarize(values: list[float]) -> dict[str, Any]:
    """Median (the number reported), min, max and spread of repeated timings, in seconds."""
    ordered = sorted(values)
    n = len(ordered)
    if n >= 4:
        q = statistics.quantiles(ordered, n=4)
        iqr = q[2] - q[0]
    else:
        iqr = ordered[-1] - ordered[0] if n else 0.0
    return {
        "n": n,
        "median_s": statistics.median(ordered) if n else float("nan"),
        "min_s": ordered[0] if n else float("nan"),
        "max_s": ordered[-1] if n else float("nan"),
        "iqr_s": iqr,
    }


def ms(seconds: float) -> str:
    """Seconds as a millisecond string with sensible precision."""
    value = seconds * 1000.0
    if abs(value) >= 100:
        return f"{value:.0f} ms"
    if abs(value) >= 10:
        return f"{value:.1f} ms"
    return f"{value:.2f} ms"


def goal_ms(seconds: float) -> str:
    """A goal in milliseconds without spurious decimals (``0.05`` -> ``50 ms``)."""
    return f"{seconds * 1000:g} ms"


def verdict(passed: bool) -> str:
    return "PASS" if passed else "MISSED"


def benchmark_env(medhub_home: str | os.PathLike[str]) -> dict[str, str]:
    """Environment for benchmark subprocesses: no MEDHUB_CONFIG / refreshed catalog, no network."""
    env = {k: v for k, v in os.environ.items() if k not in _MEDHUB_ENV}
    env["MEDHUB_HOME"] = str(medhub_home)
    env["MEDHUB_OFFLINE"] = "1"
    return env


def write_json(path: str | os.PathLike[str], doc: dict[str, Any]) -> None:
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(json.dumps(doc, indent=2) + "\n", encoding="utf-8")
    print(f"Results written to {target}")


def per_model_args(description: str, argv: list[str] | None, models_help: str, per: str) -> Any:
    """Parse the options of a per-model benchmark (``--models``, ``--rounds``, ``--json``,
    ``--quick``; ``--quick`` means one round). ``per`` names what each round times once."""
    import argparse

    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--models", nargs="+", help=f"model ids (default: {models_help})")
    parser.add_argument("--rounds", type=int, default=5, help=f"timed passes per {per} (default 5)")
    parser.add_argument("--json", metavar="PATH", help="write the results to this JSON file")
    parser.add_argument("--quick", action="store_true", help=f"one timed pass per {per} (smoke test)")
    args = parser.parse_args(argv)
    if args.quick:
        args.rounds = 1
    return args


def write_per_model_json(args: Any, benchmark: str, info: dict[str, Any], declared: dict[str, Any],
                         rows: list[dict[str, Any]]) -> None:
    """Write a per-model benchmark's results to ``args.json`` (when given), with what the catalog
    declares for each model."""
    if args.json:
        write_json(args.json, {"benchmark": benchmark, "machine": info,
                               "settings": {"rounds": args.rounds, "quick": args.quick},
                               "declared": declared, "results": rows})
