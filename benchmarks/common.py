"""What every medhub benchmark shares: its command line, the machine it ran on, the alternating
rounds it times its variants in, and its result file.

Not a benchmark itself. A benchmark is ``benchmarks/<name>.py``: its docstring says what it measures
(``--help`` prints it), :func:`parser` gives it the common options, :func:`alternate` runs its
variants, and :func:`finish` writes its JSON and prints its report (``report.py`` renders it).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from importlib import metadata
from pathlib import Path
from typing import Any, TypeVar

from report import Run, Section, goal_table, machine_table

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
T = TypeVar("T")

#: Environment variables that would make medhub read another catalog than the one benchmarked.
MEDHUB_ENV = ("MEDHUB_CONFIG", "MEDHUB_CATALOG_URL", "MEDHUB_HOME", "MEDHUB_OFFLINE")


# --------------------------------------------------------------------------- command line
def parser(doc: str, quick: str, python: bool = False) -> argparse.ArgumentParser:
    """The options every benchmark has: ``--quick`` (described by ``quick``), ``--json``,
    ``--fail-on-miss`` and, where it runs subprocesses, ``--python``. ``--help`` prints ``doc``."""
    parser = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help=f"{quick} (smoke test)")
    parser.add_argument("--json", metavar="PATH", help="write the results to this JSON file")
    parser.add_argument("--fail-on-miss", action="store_true", help="exit with status 1 if a goal is missed")
    if python:
        parser.add_argument("--python", default=sys.executable, help="interpreter to benchmark (default: this one)")
    return parser


def per_model_parser(doc: str, models: str, per: str) -> argparse.ArgumentParser:
    """:func:`parser` with ``--models`` (default described by ``models``) and ``--rounds`` (timed
    passes per ``per``; 5, or 1 with ``--quick``)."""
    out = parser(doc, f"one timed pass per {per}")
    out.add_argument("--models", nargs="+", help=f"model ids (default: {models})")
    out.add_argument("--rounds", type=int, help=f"timed passes per {per} (default 5; 1 quick)")
    return out


# --------------------------------------------------------------------------- the cell loop
def alternate(variants: Mapping[str, Callable[[], T]], rounds: int, warm_up: bool = True,
              offset: int = 0) -> dict[str, list[T]]:
    """Call every variant once per round, each round in a rotated order; ``{name: [results]}``.

    Round ``r`` starts with variant ``(r + offset) % len(variants)``, so slow drift of a shared
    machine hits every variant alike; with ``warm_up`` each variant is called once first, untimed
    and not collected. Wrap a variant in :func:`timed` to collect its seconds.

    Example:
        >>> calls = []
        >>> alternate({"a": lambda: calls.append("a"), "b": lambda: calls.append("b")}, 2, warm_up=False)
        {'a': [None, None], 'b': [None, None]}
        >>> calls
        ['a', 'b', 'b', 'a']
    """
    names = list(variants)
    if warm_up:
        for name in names:
            variants[name]()
    out: dict[str, list[T]] = {name: [] for name in names}
    for r in range(rounds):
        k = (r + offset) % len(names)
        for name in names[k:] + names[:k]:
            out[name].append(variants[name]())
    return out


def timed(fn: Callable[[], Any]) -> Callable[[], float]:
    """``fn`` as a variant of :func:`alternate` whose result is the seconds one call took."""
    def run() -> float:
        start = time.perf_counter()
        fn()
        return time.perf_counter() - start

    return run


def summarize(values: Sequence[float]) -> dict[str, Any]:
    """Median (the number reported), min, max and interquartile range of repeated timings."""
    ordered = sorted(values)
    n = len(ordered)
    if n >= 4:
        q = statistics.quantiles(ordered, n=4)
        iqr = q[2] - q[0]
    else:
        iqr = ordered[-1] - ordered[0] if n else 0.0
    nan = float("nan")
    return {"n": n, "median_s": statistics.median(ordered) if n else nan, "min_s": ordered[0] if n else nan,
            "max_s": ordered[-1] if n else nan, "iqr_s": iqr}


# --------------------------------------------------------------------------- environment
def benchmark_env(medhub_home: str | os.PathLike[str]) -> dict[str, str]:
    """Environment for benchmark subprocesses: the bundled catalog, ``medhub_home``, offline."""
    env = {k: v for k, v in os.environ.items() if k not in MEDHUB_ENV}
    env["MEDHUB_HOME"] = str(medhub_home)
    env["MEDHUB_OFFLINE"] = "1"
    return env


def compile_bytecode(python: str, folders: Sequence[str | os.PathLike[str]]) -> None:
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
    def git(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True, timeout=10, check=False)

    try:
        head, status = git("rev-parse", "--short", "HEAD"), git("status", "--porcelain", "--untracked-files=no")
    except (OSError, subprocess.SubprocessError):
        return None
    if head.returncode != 0:
        return None
    return head.stdout.strip() + ("+dirty" if status.returncode == 0 and status.stdout.strip() else "")


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
        "cpu": _cpu_model(), "cores_logical": os.cpu_count(), "cores_usable": usable, "load_average_1_5_15min": load,
        "os": f"{platform.system()} {platform.release()}",
        "python": f"{platform.python_implementation()} {platform.python_version()}",
        "python_executable": python or sys.executable, "numpy": _version("numpy"), "medhub": _version("medhub"),
        "fastjsonschema": _version("fastjsonschema"), "git_commit": _git_commit(),
        "date": dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"), "bytecode": bytecode,
    }


# --------------------------------------------------------------------------- shipped models
def shipped_models(torch_only: bool = False) -> list[str]:
    """Ids of the ``medhub/1`` packages shipped in ``models/`` (with ``torch_only``, those that need torch)."""
    from packaging.requirements import Requirement

    from medhub.config import ConfigManager

    out = []
    for model_id, entry in ConfigManager().config_dict.items():
        ex = entry["execution"]
        if ex.get("interface") != "medhub/1" or not (ROOT / "models" / ex["package_link"]).is_dir():
            continue
        if not torch_only or any(Requirement(d).name == "torch" for d in ex.get("dependencies", [])):
            out.append(model_id)
    return out


def declared(key: str, default: Any = None) -> dict[str, Any]:
    """What the catalog declares for each model under ``execution.generate_method.<key>``."""
    from medhub.config import ConfigManager

    return {model_id: entry["execution"].get("generate_method", {}).get(key, default)
            for model_id, entry in ConfigManager().config_dict.items()}


def executor(model_id: str, **generate_method: Any) -> Any:
    """A new executor of a catalog model, built by medhub's one factory (``medhub.execution.ref``),
    with the given ``execution.generate_method`` settings in place of the catalog's."""
    from dataclasses import replace

    from medhub.config import ConfigManager
    from medhub.execution.ref import ModelRef

    ref = ModelRef.from_catalog(ConfigManager(), model_id)
    method = {**ref.execution.get("generate_method", {}), **generate_method}
    return replace(ref, execution={**ref.execution, "generate_method": method}).build()


# --------------------------------------------------------------------------- results
def write_json(path: str | os.PathLike[str], doc: dict[str, Any]) -> None:
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(json.dumps(doc, indent=2) + "\n", encoding="utf-8")
    print(f"Results written to {target}")


def finish(args: argparse.Namespace, doc: dict[str, Any], render: Callable[[Run], Section],
           argv: Sequence[str] | None = None) -> int:
    """End a benchmark: write ``doc`` (with the command that made it) to ``--json``, print its
    report (``render``, the benchmark's ``report`` function: the section that ``run_all.py`` puts in
    docs/performance.md) and return the exit status (1 with ``--fail-on-miss`` when a goal was missed)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    doc["command"] = " ".join(["python", f"benchmarks/{doc['benchmark']}.py", *argv])
    if args.json:
        write_json(args.json, doc)
    section = render(Run(doc["command"], doc))
    print("\n" + machine_table(doc["machine"]))
    if section.goals:
        print("\n" + goal_table(section.goals))
    print("\n" + section.text)
    missed = [g for g in section.goals if not g.passed and not g.informational and not g.unmeasurable]
    return 1 if getattr(args, "fail_on_miss", False) and missed else 0
