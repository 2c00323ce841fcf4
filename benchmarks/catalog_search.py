"""Benchmark: ``Generators()`` initialisation, one search and one ranking, on two catalogs.

Run from the repository root (any interpreter with medhub installed)::

    python benchmarks/catalog_search.py                  # full run (a few minutes on 2 cores)
    python benchmarks/catalog_search.py --quick          # fewer repetitions (smoke test)
    python benchmarks/catalog_search.py --json out.json  # also write the results as JSON
    python benchmarks/catalog_search.py --profile        # add cProfile listings of every operation
    python benchmarks/catalog_search.py --models 2000    # another size of synthetic catalog

Catalogs:

(a) the bundled catalog (``config/global.json``);
(b) a synthetic catalog of 10,000 models written to a temporary folder: varied copies of the
    real entries (ids ``NNNNN_SYNTH_<original name>``, random FID and other varied metadata,
    written with ``indent=2`` like the bundled file), validated against medhub's schema and
    loaded with ``Generators(config_file=...)``.

Operations and how they are timed:

* ``Generators()`` initialisation: in fresh subprocesses (cold: JSON parsing included; the schema
  compilation and validation only in the *first load* runs, see :func:`measure_init`), N times,
  median. ``import medhub`` is timed apart and not included.
* ``find_model(["brain", "mri"], "AND")``: in this process. The search index is built lazily on
  a selector's first search, so the first call is timed apart on fresh selectors (the catalog
  already loaded), and the repeated (warm) call on one selector. Medians.
* ``rank_models_by_performance(metric="FID")``: in this process, repeated, median (first call on
  a fresh selector shown apart too).

Goals: initialisation under 0.5 s; search (and ranking) under 50 ms on 10,000 models. A missed
goal is printed as MISSED together with a cProfile listing of the operation.
"""

from __future__ import annotations

import copy
import cProfile
import io
import json
import os
import pstats
import random
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from common import ROOT, benchmark_env, finish, machine_info, parser, summarize
from report import Goal, Run, Section, fill, goal_ms, ms, span, table

GOAL_INIT_S = 0.5
GOAL_QUERY_S = 0.050
SEARCH_VALUES = ["brain", "mri"]
SEARCH_OPERATOR = "AND"
RANK_METRIC = "FID"
SEARCH_CALL = f"find_model({SEARCH_VALUES!r}, {SEARCH_OPERATOR!r})".replace("'", '"')
RANK_CALL = f'rank_models_by_performance(metric="{RANK_METRIC}")'

#: Run in a fresh interpreter: times ``import medhub`` and ``Generators(...)`` apart.
_INIT_CODE = """\
import json, sys, time
t0 = time.perf_counter()
from medhub import Generators
t1 = time.perf_counter()
g = Generators(config_file=sys.argv[1] or None)
t2 = time.perf_counter()
print(json.dumps({"import_s": t1 - t0, "init_s": t2 - t1, "models": len(g.list_models())}))
"""

#: Run in a fresh interpreter: cProfile of a cold ``Generators(...)``.
_INIT_PROFILE_CODE = """\
import cProfile, pstats, sys
from medhub import Generators
profiler = cProfile.Profile()
profiler.enable()
Generators(config_file=sys.argv[1] or None)
profiler.disable()
stats = pstats.Stats(profiler, stream=sys.stdout).strip_dirs()
stats.sort_stats("cumulative").print_stats(int(sys.argv[2]))
stats.sort_stats("tottime").print_stats(int(sys.argv[2]))
"""


# --------------------------------------------------------------------------- synthetic catalog
_EXTRA_DATASETS = [
    "in-house cohort A",
    "in-house cohort B",
    "TCIA collection",
    "public challenge data",
    "multi-centre registry",
    "retrospective hospital archive",
]
_EXTRA_TAGS = [
    "synthetic-benchmark",
    "variant",
    "retrained",
    "fine-tuned",
    "low-resolution",
    "high-resolution",
    "experimental",
    "community",
]
_SIZES = [64, 128, 256, 512]


def _vary_entry(entry: dict[str, Any], index: int, rng: random.Random) -> dict[str, Any]:
    """A plausible variant of a real catalog entry: new metrics, sizes, tags, datasets, year."""
    entry = copy.deepcopy(entry)
    selection = entry.setdefault("selection", {})
    performance = selection.setdefault("performance", {})
    performance["FID"] = round(rng.uniform(5.0, 250.0), 2)
    if "FID_RADIMAGENET" in performance:
        performance["FID_RADIMAGENET"] = round(rng.uniform(0.1, 5.0), 3)
    if rng.random() < 0.3:
        performance["SSIM"] = round(rng.uniform(0.3, 0.95), 3)
    if rng.random() < 0.2:
        performance["IS"] = round(rng.uniform(1.0, 6.0), 2)
    for key in ("organ", "modality", "generates", "function", "augmentations", "use_cases"):
        values = selection.get(key)
        if isinstance(values, list) and len(values) > 1:
            rng.shuffle(values)
    if isinstance(selection.get("dataset"), list) and rng.random() < 0.5:
        selection["dataset"].append(rng.choice(_EXTRA_DATASETS))
    selection["tags"] = list(selection.get("tags") or []) + rng.sample(_EXTRA_TAGS, k=2)
    selection["year"] = str(rng.randint(2018, 2026))
    if isinstance(selection.get("height"), int) and selection.get("height") == selection.get("width"):
        size = rng.choice(_SIZES)
        selection["height"] = selection["width"] = size
    description = entry.setdefault("description", {})
    description["title"] = f"{description.get('title', 'Model')} (synthetic variant {index})"
    description["version"] = f"1.{rng.randint(0, 9)}.{rng.randint(0, 20)}"
    return entry


def build_synthetic_catalog(base_doc: dict[str, Any], n_models: int, seed: int = 0) -> dict[str, Any]:
    """``n_models`` varied copies of ``base_doc``'s entries, ids ``NNNNN_SYNTH_<name>`` (1..n)."""
    if not 1 <= n_models <= 99_999:
        raise ValueError("model ids have 5 digits: choose 1 to 99,999 synthetic models")
    rng = random.Random(seed)
    base = list(base_doc["models"].items())
    models = {}
    for i in range(1, n_models + 1):
        base_id, entry = base[(i - 1) % len(base)]
        name = base_id.split("_", 1)[1] if "_" in base_id else base_id
        models[f"{i:05d}_SYNTH_{name}"] = _vary_entry(entry, i, rng)
    return {
        "schema_version": base_doc["schema_version"],
        "catalog_version": base_doc["catalog_version"],
        "description": f"Synthetic benchmark catalog: {n_models} varied copies of the bundled entries (seed {seed}).",
        "models": models,
    }


def write_synthetic_catalog(folder: Path, n_models: int, seed: int) -> tuple[Path, dict[str, Any]]:
    """Write the synthetic catalog to ``folder/global.json`` after validating it; return its path."""
    from medhub.config import validate_catalog

    bundled = json.loads((ROOT / "config" / "global.json").read_text(encoding="utf-8"))
    doc = build_synthetic_catalog(bundled, n_models, seed)
    validate_catalog(doc, source="synthetic catalog")
    path = folder / "global.json"
    path.write_text(json.dumps(doc, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    return path, {"models": n_models, "seed": seed, "size_mb": round(path.stat().st_size / 1e6, 1)}


# --------------------------------------------------------------------------- measurements
def measure_init(python: str, config_file: Path | None, repeat: int, env: dict[str, str]) -> dict[str, Any]:
    """Cold ``Generators()`` in fresh subprocesses (after one discarded warm-up).

    ``init`` runs share one MEDHUB_HOME, so a catalog's validation is remembered there after its
    first load (medhub does this for every catalog file). ``first`` runs each get an empty
    MEDHUB_HOME: the first load ever, with full schema validation.
    """
    cmd = [python, "-c", _INIT_CODE, str(config_file) if config_file else ""]
    samples: list[dict[str, Any]] = []
    for i in range(repeat + 1):
        out = subprocess.run(cmd, env=env, capture_output=True, text=True, check=True)
        if i:  # the first run only warms the page cache and .pyc files
            samples.append(json.loads(out.stdout.strip().splitlines()[-1]))
    first: list[float] = []
    for _ in range(max(3, repeat // 3)):
        with tempfile.TemporaryDirectory(prefix="medhub-bench-home-") as home:
            out = subprocess.run(cmd, env=dict(env, MEDHUB_HOME=home), capture_output=True, text=True, check=True)
            first.append(json.loads(out.stdout.strip().splitlines()[-1])["init_s"])
    return {
        "init": summarize([s["init_s"] for s in samples]),
        "first": summarize(first),
        "import": summarize([s["import_s"] for s in samples]),
        "models": samples[0]["models"],
        "samples_init_s": [s["init_s"] for s in samples],
    }


def _timed(fn: Callable[[], Any]) -> tuple[float, Any]:
    start = time.perf_counter()
    result = fn()
    return time.perf_counter() - start, result


def measure_queries(config_file: Path | None, first_repeat: int, repeat: int) -> dict[str, Any]:
    """In-process timings of the search and the ranking (first call and repeated calls)."""
    from medhub import Generators

    loaded = Generators(config_file=config_file)
    manager = loaded.config_manager
    fresh = lambda: Generators(config_manager=manager)  # noqa: E731 - new selector, empty search index

    search_first, rank_first = [], []
    for _ in range(first_repeat):
        g = fresh()
        search_first.append(_timed(lambda g=g: g.find_model(SEARCH_VALUES, SEARCH_OPERATOR))[0])
        g = fresh()
        rank_first.append(_timed(lambda g=g: g.rank_models_by_performance(metric=RANK_METRIC))[0])

    g = fresh()
    g.find_model(SEARCH_VALUES, SEARCH_OPERATOR)  # builds the index
    search_warm, rank_warm = [], []
    matches = ranking = None
    for _ in range(repeat):
        elapsed, matches = _timed(lambda: g.find_model(SEARCH_VALUES, SEARCH_OPERATOR))
        search_warm.append(elapsed)
        elapsed, ranking = _timed(lambda: g.rank_models_by_performance(metric=RANK_METRIC))
        rank_warm.append(elapsed)
    return {
        "models": len(manager.model_ids),
        "search": {
            "first": summarize(search_first),
            "repeated": summarize(search_warm),
            "matches": len(matches) if matches is not None else None,
        },
        "rank": {
            "first": summarize(rank_first),
            "repeated": summarize(rank_warm),
            "ranked": len(ranking) if ranking is not None else None,
            "best": dict(ranking[0]) if ranking else None,
        },
    }


# --------------------------------------------------------------------------- profiling
def _format_stats(profiler: cProfile.Profile, top: int) -> str:
    buf = io.StringIO()
    stats = pstats.Stats(profiler, stream=buf).strip_dirs()
    stats.sort_stats("cumulative").print_stats(top)
    stats.sort_stats("tottime").print_stats(top)
    return buf.getvalue()


def profile_init(python: str, config_file: Path | None, env: dict[str, str], top: int = 15) -> str:
    out = subprocess.run(
        [python, "-c", _INIT_PROFILE_CODE, str(config_file) if config_file else "", str(top)],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    return out.stdout


def profile_queries(config_file: Path | None, top: int = 15) -> dict[str, str]:
    from medhub import Generators

    manager = Generators(config_file=config_file).config_manager
    listings = {}
    g = Generators(config_manager=manager)
    profiler = cProfile.Profile()
    profiler.runcall(g.find_model, SEARCH_VALUES, SEARCH_OPERATOR)
    listings["search (first call)"] = _format_stats(profiler, top)
    profiler = cProfile.Profile()
    for _ in range(5):
        profiler.runcall(g.find_model, SEARCH_VALUES, SEARCH_OPERATOR)
    listings["search (repeated, 5 calls)"] = _format_stats(profiler, top)
    profiler = cProfile.Profile()
    for _ in range(5):
        profiler.runcall(g.rank_models_by_performance, metric=RANK_METRIC)
    listings["ranking (5 calls)"] = _format_stats(profiler, top)
    return listings


# --------------------------------------------------------------------------- report
REPORT = """
    ## Catalog initialisation, search and ranking

    `{command}` ({when}):

    * Catalogs: the bundled `config/global.json`, and a synthetic catalog of {models:,} models
      ({size_mb} MB, seed {seed}) made of varied copies of the bundled entries (ids `NNNNN_SYNTH_...`,
      random FID), validated against medhub's schema.
    * Init: `Generators()` / `Generators(config_file=...)` in {init_repeat} fresh subprocesses per catalog
      (cold: JSON parsing; `import medhub` excluded). These runs share one MEDHUB_HOME, where medhub
      remembers that a catalog file validated (keyed on its path, inode, size, modification and change
      times, medhub's version and the schema), so only its first load compiles the schema and validates
      it; the *first load* rows give that one-time cost, each run with an empty MEDHUB_HOME.
    * Search `{search}` and ranking `{rank}` in one process: the first call on {first_repeat} fresh
      selectors (the search index is built lazily on the first search) and {repeat} repeated calls.

    {table}
"""

PROFILES = """
    ### Profiles

    cProfile of the operations of catalogs that missed a goal (or whose first search takes over 50 ms),
    top functions by cumulative time. cProfile adds overhead, so its times exceed the medians above.
    Full listings: `python benchmarks/catalog_search.py --profile`.
"""

PROFILE = """
    <details><summary>{name} catalog: {operation}</summary>

    ```text
    {listing}
    ```

    </details>
"""


def goals(catalogs: dict[str, Any]) -> list[Goal]:
    """Init under 0.5 s on every catalog; search and ranking under 50 ms on the synthetic one (on
    the bundled one for information); the synthetic catalog's first search, for information."""
    out, info = [], []
    for name, res in catalogs.items():
        median = res["init"]["init"]["median_s"]
        out.append(Goal("catalog", f"Generators() init (cold) — {name} catalog", ms(median),
                        f"< {goal_ms(GOAL_INIT_S)}", median < GOAL_INIT_S))
        for key, call in (("search", SEARCH_CALL), ("rank", RANK_CALL)):
            median = res["queries"][key]["repeated"]["median_s"]
            goal = Goal("catalog", f"{call} (repeated) — {name} catalog", ms(median), f"< {goal_ms(GOAL_QUERY_S)}",
                        median < GOAL_QUERY_S, informational=name == "bundled")
            (info if name == "bundled" else out).append(goal)
    for name, res in catalogs.items():
        if name != "bundled":
            first = res["queries"]["search"]["first"]["median_s"]
            info.append(Goal("catalog", f"first search (builds the index) — {name} catalog", ms(first),
                             f"< {goal_ms(GOAL_QUERY_S)}", first < GOAL_QUERY_S, informational=True))
    return out + info


def profile_excerpt(text: str, max_rows: int = 12) -> str:
    """The first (cumulative-time) listing of a pstats printout, shortened to ``max_rows`` rows."""
    out, rows, in_table = [], 0, False
    for line in text.strip().splitlines():
        if line.strip().startswith("ncalls"):
            if in_table:
                break
            in_table = True
            out.append(line)
        elif in_table:
            if not line.strip() or rows >= max_rows:
                break
            out.append(line)
            rows += 1
        elif "function calls" in line:
            out.append(line.strip())
    return "\n".join(out)


def report(run: Run) -> Section:
    """The catalog section (with the profiles of what missed a goal) and its goals."""
    res, st = run.result, run.result["settings"]
    rows = []
    for name, cat in res["catalogs"].items():
        q, init = cat["queries"], cat["init"]
        n = q["models"]
        rows += [[name, n, "`Generators()` init (cold)", ms(init["init"]["median_s"]), span(init["init"])],
                 [name, n, "`Generators()` first load, empty MEDHUB_HOME (full validation)",
                  ms(init["first"]["median_s"]), span(init["first"])]]
        for key, label, extra in (("search", "search", f"{q['search']['matches']} matches"),
                                  ("rank", "ranking", f"{q['rank']['ranked']} ranked")):
            for when in ("first", "repeated"):
                rows.append([name, n, f"{label}, {'first call' if when == 'first' else 'repeated'} ({extra})",
                             ms(q[key][when]["median_s"]), span(q[key][when])])
    synth = res["synthetic_catalog"]
    text = fill(REPORT, command=run.command, when=run.when, models=synth["models"], size_mb=synth["size_mb"],
                seed=synth["seed"], init_repeat=st["init_repeat"], search=SEARCH_CALL, rank=RANK_CALL,
                first_repeat=st["first_repeat"], repeat=st["repeat"],
                table=table(["Catalog", "Models", "Operation", "Median", "Min – max"], rows, "lrlrr"))
    if res.get("profiles"):
        text += "\n\n" + fill(PROFILES) + "".join(
            "\n\n" + fill(PROFILE, name=name, operation=op, listing=profile_excerpt(listing))
            for name, listings in res["profiles"].items() for op, listing in listings.items())
    return Section(goals(res["catalogs"]), text)


def main(argv: list[str] | None = None) -> int:
    cli = parser(__doc__, "3 cold inits, 3 first calls and 7 repeated calls per catalog", python=True)
    cli.add_argument("--models", type=int, default=10_000, help="models in the synthetic catalog (default 10000)")
    cli.add_argument("--seed", type=int, default=0, help="random seed of the synthetic catalog (default 0)")
    cli.add_argument("--keep-catalog", metavar="DIR", help="write the synthetic catalog to DIR and keep it")
    cli.add_argument("--profile", action="store_true", help="profile every operation of every catalog")
    cli.add_argument("--no-auto-profile", action="store_true", help="do not profile operations that miss a goal")
    args = cli.parse_args(argv)
    init_repeat, first_repeat, repeat = (3, 3, 7) if args.quick else (11, 7, 31)
    info = machine_info(args.python)
    results: dict[str, Any] = {}
    profiles: dict[str, dict[str, str]] = {}
    with tempfile.TemporaryDirectory(prefix="medhub-bench-") as tmp:
        tmp_path = Path(tmp)
        env = benchmark_env(tmp_path / "home")
        (tmp_path / "home").mkdir()
        os.environ.clear()  # the in-process measurements see the same environment as the subprocesses
        os.environ.update(env)
        catalog_dir = Path(args.keep_catalog) if args.keep_catalog else tmp_path / "synthetic"
        catalog_dir.mkdir(parents=True, exist_ok=True)
        print(f"Writing a synthetic catalog of {args.models} models to {catalog_dir} ...", flush=True)
        start = time.perf_counter()
        synth_path, synth_info = write_synthetic_catalog(catalog_dir, args.models, args.seed)
        synth_info["write_s"] = round(time.perf_counter() - start, 2)
        catalogs = {"bundled": None, f"synthetic {args.models}": synth_path}
        for name, path in catalogs.items():
            print(f"Measuring the {name} catalog ...", flush=True)
            results[name] = {"config_file": str(path) if path else None,
                             "init": measure_init(args.python, path, init_repeat, env),
                             "queries": measure_queries(path, first_repeat, repeat)}
        to_profile = set(catalogs) if args.profile else set()
        if not args.no_auto_profile:
            to_profile |= {name for name in catalogs if not all(g.passed for g in goals({name: results[name]}))}
        for name in (n for n in catalogs if n in to_profile):
            profiles[name] = {"init (cold subprocess)": profile_init(args.python, catalogs[name], env),
                              **profile_queries(catalogs[name])}
    doc = {"benchmark": "catalog_search", "machine": info,
           "settings": {"init_repeat": init_repeat, "first_repeat": first_repeat, "repeat": repeat,
                        "quick": args.quick, "models": args.models, "seed": args.seed},
           "synthetic_catalog": synth_info, "catalogs": results, "profiles": profiles}
    return finish(args, doc, report, argv)


if __name__ == "__main__":
    sys.exit(main())
