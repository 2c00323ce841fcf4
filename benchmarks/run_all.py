"""Run every medhub benchmark and regenerate ``docs/performance.md`` from their results.

Run from the repository root (any interpreter with medhub installed)::

    python benchmarks/run_all.py                      # full run, rewrites docs/performance.md
    python benchmarks/run_all.py --quick              # fewer repetitions (smoke test)
    python benchmarks/run_all.py --json-dir results/  # also keep the raw JSON of each benchmark
    python benchmarks/run_all.py --output /tmp/perf.md

Runs ``import_time.py``, ``catalog_search.py``, ``dataloader.py``, ``download.py`` and
``fid_features.py`` one after the other (each
prints its own report), then writes the page. Numbers in the page come only from the JSON results; do not
edit them by hand, rerun this script.
"""

from __future__ import annotations

import argparse
import json
import shlex
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from _common import ROOT, goal_ms, ms, verdict

HERE = Path(__file__).resolve().parent
BENCHMARKS = ("import_time", "catalog_search", "dataloader", "download", "fid_features")
DEFAULT_OUTPUT = ROOT / "docs" / "performance.md"


def _rel(path: Path) -> str:
    try:
        return str(path.resolve().relative_to(ROOT))
    except ValueError:
        return str(path)


def run_benchmarks(python: str, json_dir: Path, quick: bool, shown_json_dir: str) -> dict[str, Any]:
    """Run each benchmark script with ``--json``; return {name: {"command": ..., "result": ...}}."""
    out: dict[str, Any] = {}
    for name in BENCHMARKS:
        script = HERE / f"{name}.py"
        target = json_dir / f"{name}.json"
        args = ["--json", str(target)] + (["--quick"] if quick else [])
        shown = ["python", _rel(script), "--json", f"{shown_json_dir}/{name}.json"] + (["--quick"] if quick else [])
        shown_cmd = " ".join(shown)  # not shlex-quoted: the <tmp> placeholder reads better bare
        print(f"\n$ {shown_cmd}\n", flush=True)
        proc = subprocess.run([python, str(script), *args], cwd=ROOT, check=False)
        if proc.returncode != 0:
            raise SystemExit(f"{name}.py failed with exit status {proc.returncode}")
        out[name] = {"command": shown_cmd, "result": json.loads(target.read_text(encoding="utf-8"))}
    return out


# --------------------------------------------------------------------------- rendering
def _table(headers: list[str], rows: list[list[Any]], align: str | None = None) -> list[str]:
    align = align or "l" * len(headers)
    sep = ["---:" if a == "r" else "---" for a in align]
    lines = ["| " + " | ".join(headers) + " |", "| " + " | ".join(sep) + " |"]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return lines


def _range(s: dict[str, Any]) -> str:
    return f"{ms(s['min_s'])} – {ms(s['max_s'])}"


def _summary_rows(imp: dict[str, Any], cat: dict[str, Any], dl: dict[str, Any]) -> list[list[str]]:
    rows = []
    cost_goal, torch_goal = imp["goals"]
    rows.append(
        [
            "import",
            "`import medhub` cost (median with import − median bare start)",
            ms(imp["wall"]["import_cost_s"]),
            "< 60 ms",
            f"**{verdict(cost_goal['passed'])}**",
        ]
    )
    rows.append(
        [
            "import",
            "torch imported by `import medhub`",
            torch_goal["value"],
            "not imported",
            f"**{verdict(torch_goal['passed'])}**",
        ]
    )
    for g in cat["goals"]:
        result = verdict(g["passed"]) + (" (info only)" if g.get("informational") else "")
        bold = "" if g.get("informational") else "**"
        rows.append(
            [
                "catalog",
                f"{g['operation']} — {g['catalog']} catalog",
                ms(g["median_s"]),
                f"< {goal_ms(g['goal_s'])}",
                f"{bold}{result}{bold}",
            ]
        )
    synth = next(k for k in cat["catalogs"] if k != "bundled")
    first = cat["catalogs"][synth]["queries"]["search"]["first"]["median_s"]
    rows.append(
        [
            "catalog",
            f"first search (builds the index) — {synth} catalog",
            ms(first),
            "< 50 ms",
            f"{verdict(first < 0.050)} (info only)",
        ]
    )
    modes = dl["throughput"]["modes"]
    for g in dl["goals"]:
        if "mode" in g:
            m = modes[g["mode"]]
            rows.append(["dataloader", f"{m['label']}: throughput / bare loop "
                         f"({m['median_samples_per_s']:.0f} vs {modes['bare']['median_samples_per_s']:.0f} samples/s)",
                         f"{m['ratio_to_bare']:.2f}", f">= {g['target']}", f"**{verdict(g['passed'])}**"])
        else:
            mem = dl["memory"]
            rows.append(["dataloader", f"peak RSS growth, {mem[0]['num_samples']:,} -> {mem[-1]['num_samples']:,} "
                         f"samples ({mem[0]['peak_rss_kb'] / 1024:.0f} -> {mem[-1]['peak_rss_kb'] / 1024:.0f} MB)",
                         f"{dl['rss_growth']:+.1%}", f"<= +{g['target']:.0%}", f"**{verdict(g['passed'])}**"])
    return rows


def _machine_rows(info: dict[str, Any]) -> list[list[str]]:
    return [
        ["CPU", info["cpu"]],
        ["Cores", f"{info['cores_logical']} logical ({info['cores_usable']} usable)"],
        ["Load average at start (1/5/15 min)", " / ".join(str(x) for x in info["load_average_1_5_15min"] or [])],
        ["OS", info["os"]],
        ["Python", info["python"]],
        ["numpy", info["numpy"]],
        ["fastjsonschema", info["fastjsonschema"]],
        ["medhub", f"{info['medhub']} (commit {info['git_commit']})"],
    ]


def _profile_excerpt(text: str, max_rows: int = 12) -> str:
    """The first (cumulative-time) listing of a pstats printout, shortened."""
    lines = text.strip().splitlines()
    out, rows, in_table = [], 0, False
    for line in lines:
        if line.strip().startswith("ncalls"):
            if in_table:
                break
            in_table = True
            out.append(line)
            continue
        if in_table:
            if not line.strip():
                break
            out.append(line)
            rows += 1
            if rows >= max_rows:
                break
        elif line.strip() and "function calls" in line:
            out.append(line.strip())
    return "\n".join(out)


def render(runs: dict[str, Any], quick: bool, run_all_command: str) -> str:
    imp = runs["import_time"]["result"]
    cat = runs["catalog_search"]["result"]
    dl = runs["dataloader"]["result"]
    info = imp["machine"]
    extra_rows: list[list[str]] = []
    extra_goals: list[dict[str, Any]] = []
    if "download" in runs:
        d = runs["download"]["result"]
        verdict = "**PASS**" if d["passed"] else "**MISSED**"
        extra_rows.append(["download", f"verified download / plain file copy ({d['download_verify_mb_s']:.0f} vs "
                           f"{d['copy_mb_s']:.0f} MB/s)", f"{d['ratio']:.2f}", f">= {d['goal']}", verdict])
        extra_goals.append({"goal": "verified download / plain file copy", "value": f"{d['ratio']:.2f}",
                            "passed": d["passed"]})
    lines = [
        "# Performance",
        "",
        "<!-- Generated by benchmarks/run_all.py: do not edit by hand, rerun the script. -->",
        "",
        f"Measured on {info['date']} with `{run_all_command}`"
        + (" (**quick mode: few repetitions, indicative only**)" if quick else "")
        + ".",
        "All numbers are medians of repeated runs; the machine may be shared, so single timings are noisy.",
        "",
        "## Machine",
        "",
        *_table(["", ""], _machine_rows(info)),
        "",
        "## Commands",
        "",
        "```sh",
        run_all_command + "   # runs:",
        *(runs[name]["command"] for name in BENCHMARKS),
        "```",
        "",
        "`<tmp>` is a temporary folder (pass `--json-dir DIR` to `run_all.py` to keep the JSON results).",
        "",
        "## Results",
        "",
        *_table(["Benchmark", "Measurement", "Median", "Goal", "Result"], _summary_rows(imp, cat, dl) + extra_rows,
                "llrll"),
        "",
    ]
    missed = [g for g in imp["goals"] + cat["goals"] + dl["goals"] + extra_goals
              if not g["passed"] and not g.get("informational")]
    if missed:
        lines += [
            "**Goals missed:** "
            + "; ".join(
                f"{g.get('operation', g.get('goal'))}{' on the ' + g['catalog'] + ' catalog' if 'catalog' in g else ''}"
                f" ({g['value'] if 'value' in g else ms(g['median_s'])})"
                for g in missed
            )
            + ". See the sections below.",
            "",
        ]
    else:
        lines += ["All goals met.", ""]

    # ---- import time
    wall = imp["wall"]
    lines += [
        "## `import medhub`",
        "",
        f"{imp['settings']['repeat']} fresh subprocesses of each command, alternated (after one warm-up of each).",
        "",
        *_table(
            ["Command", "Median", "Min – max"],
            [
                [
                    f"`{imp['commands']['import']}`",
                    ms(wall["import_medhub"]["median_s"]),
                    _range(wall["import_medhub"]),
                ],
                [f"`{imp['commands']['bare']}`", ms(wall["bare_python"]["median_s"]), _range(wall["bare_python"])],
                ["import cost (difference of the medians)", ms(wall["import_cost_s"]), ""],
                ["median of the paired differences", ms(wall["paired_difference_median_s"]), ""],
                [
                    "CPU time (user+sys) cost, for comparison",
                    ms(wall["cpu_import_cost_s"]),
                    f"{ms(wall['cpu_import_medhub']['median_s'])} vs {ms(wall['cpu_bare_python']['median_s'])}",
                ],
            ],
            "lrr",
        ),
        "",
        f"Top 10 modules of medhub's import by cumulative time (`{imp['commands']['importtime']}`, median of "
        f"{imp['importtime']['runs']} runs; {imp['importtime']['modules_imported']} modules imported in all; "
        "`-X importtime` itself slows imports down):",
        "",
        *_table(
            ["Module", "Cumulative", "Self"],
            [
                [f"`{r['module']}`", f"{r['cumulative_us'] / 1000:.1f} ms", f"{r['self_us'] / 1000:.1f} ms"]
                for r in imp["importtime"]["top"]
            ],
            "lrr",
        ),
        "",
        "Heavy modules in `sys.modules` after `import medhub` (all are meant to be imported lazily):",
        "",
        *_table(
            ["Module", "Imported"],
            [[f"`{m}`", "**yes**" if loaded else "no"] for m, loaded in imp["modules"]["loaded"].items()],
        ),
        "",
    ]

    # ---- catalog
    synth_info = cat["synthetic_catalog"]
    s = cat["settings"]
    lines += [
        "## Catalog initialisation, search and ranking",
        "",
        f"* Catalogs: the bundled `config/global.json`, and a synthetic catalog of {synth_info['models']:,} models "
        f"({synth_info['size_mb']} MB, seed {synth_info['seed']}) made of varied copies of the bundled entries "
        "(ids `NNNNN_SYNTH_...`, random FID), validated against medhub's schema.",
        f"* Init: `{cat['operations']['init']}` in {s['init_repeat']} fresh subprocesses per catalog "
        "(cold: JSON parsing and schema compilation; `import medhub` excluded). These runs share one MEDHUB_HOME, "
        "where medhub remembers that a catalog of 1,000 or more models validated (keyed on its path, size, "
        "modification time and the schema), so only its first load validates it; the *first load* rows give "
        "that one-time cost, each run with an empty MEDHUB_HOME.",
        f"* Search `{cat['operations']['search']}` and ranking `{cat['operations']['rank']}` in one process: the first "
        f"call on {s['first_repeat']} fresh selectors (the search index is built lazily on the first search) and "
        f"{s['repeat']} repeated calls.",
        "",
    ]
    rows = []
    for name, res in cat["catalogs"].items():
        q, init = res["queries"], res["init"]
        rows.append([name, q["models"], "`Generators()` init (cold)", ms(init["init"]["median_s"]), _range(init["init"])])
        rows.append([name, q["models"], "`Generators()` first load, empty MEDHUB_HOME (full validation)",
                     ms(init["first"]["median_s"]), _range(init["first"])])
        for key, label, extra in (
            ("search", "search", f"{q['search']['matches']} matches"),
            ("rank", "ranking", f"{q['rank']['ranked']} ranked"),
        ):
            rows.append(
                [
                    name,
                    q["models"],
                    f"{label}, first call ({extra})",
                    ms(q[key]["first"]["median_s"]),
                    _range(q[key]["first"]),
                ]
            )
            rows.append(
                [
                    name,
                    q["models"],
                    f"{label}, repeated ({extra})",
                    ms(q[key]["repeated"]["median_s"]),
                    _range(q[key]["repeated"]),
                ]
            )
    lines += [*_table(["Catalog", "Models", "Operation", "Median", "Min – max"], rows, "lrlrr"), ""]

    # ---- dataloader
    tp, st = dl["throughput"], dl["settings"]
    lines += [
        "## Torch DataLoader",
        "",
        f"`{st['model']}` on the CPU, {tp['samples']:,} samples per pass in batches of {tp['batch_size']}, "
        f"{tp['repeat']} rounds with the modes alternated, after one untimed warm-up pass of each. The bare loop calls "
        "`executor.sample_batch(range(i, i + 64), seed)` and keeps the uint8 arrays; the loaders return collated "
        "float32 tensors (64, 1, 64, 64) in [0, 1]; their datasets cache one chunk (`cache_chunks=1`), so no pass is "
        "served from the previous one. With `num_workers=2` each worker runs torch with one thread (the main process "
        f"uses {tp['torch_threads_main']}); the last row, two bare loops in two single-threaded processes, is what two "
        "workers could reach without any loader on this machine (no goal).",
        "",
        *_table(
            ["Mode", "Median samples/s", "Min – max", "Ratio to bare loop (of medians)", "Median of per-round ratios"],
            [[m["label"], f"{m['median_samples_per_s']:.0f}", f"{m['min']:.0f} – {m['max']:.0f}",
              f"{m['ratio_to_bare']:.2f}", f"{m['paired_ratio_median']:.2f}"] for m in tp["modes"].values()],
            "lrrrr",
        ),
        "",
        "Memory while iterating a whole epoch (`get_as_torch_dataloader(101, num_samples=N, batch_size=64)`, "
        "`num_workers=0`, a fresh subprocess per size): the resident set size (VmRSS) after building the loader, "
        "its largest value read after each batch, and the process high-water mark `ru_maxrss` (set by importing "
        "torch). Samples are generated a chunk at a time and a few chunks are cached, so the peak does not depend "
        "on N; generating everything up front (as medigan did) would hold N float32 images (last column). The "
        "samples/s column is informational: these long runs are the most exposed to other jobs on a shared machine.",
        "",
        *_table(
            ["Samples", "RSS after building", "Peak RSS while iterating", "ru_maxrss", "Samples/s",
             "All up front (float32)"],
            [[f"{r['num_samples']:,}", f"{r['rss_after_build_kb'] / 1024:.1f} MB", f"{r['peak_rss_kb'] / 1024:.1f} MB",
              f"{r['ru_maxrss_kb'] / 1024:.1f} MB", f"{r['samples'] / r['seconds']:.0f}",
              f"{r['eager_float32_mb']:,.0f} MB"] for r in dl["memory"]],
            "rrrrrr",
        ),
        "",
        f"RSS at each tenth of the {dl['memory'][-1]['num_samples']:,}-sample epoch: "
        + ", ".join(f"{kb / 1024:.0f}" for kb in dl["memory"][-1]["rss_trajectory_kb"]) + " MB.",
        "",
    ]

    # ---- download and verification
    if "download" in runs:
        d = runs["download"]["result"]
        lines += [
            "## Package download and verification",
            "",
            f"`{runs['download']['command']}`: a random {d['size_mb']:.0f} MB archive served by an HTTP server on "
            f"127.0.0.1 (sendfile), {d['repeat']} alternated rounds after a warm-up, medians. Server, client and "
            "hashing share the machine's cores.",
            "",
            *_table(
                ["Transfer", "MB/s", "medhub / it"],
                [["plain file copy (`shutil.copyfile`, page cache to page cache)", f"{d['copy_mb_s']:.0f}",
                  f"{d['ratio']:.2f}"],
                 ["plain HTTP download (`requests`, no checks)", f"{d['http_mb_s']:.0f}", f"{d['ratio_vs_http']:.2f}"],
                 ["medhub download, sha256 and size verified while streaming", f"{d['download_verify_mb_s']:.0f}", "1.00"]],
                "lrr",
            ),
            "",
            f"Goal: medhub at least {d['goal']} of the plain copy: **{'PASS' if d['passed'] else 'MISSED'}**. "
            "A kernel-side file copy never leaves the page cache, while a download moves every byte through the "
            "socket, user space and sha256 (about 1.6 GB/s on one core here); medhub hashes in a second thread so "
            "hashing overlaps with receiving and writing.",
            "",
        ]
    # ---- FID features
    if "fid_features" in runs:
        f = runs["fid_features"]["result"]
        lines += [
            "## FID feature extraction",
            "",
            f"`{runs['fid_features']['command']}`: 64x64 uint8 images through medhub's preprocessing (to "
            f"3x299x299 in [-1, 1]) and the standard FID Inception (TorchScript, torch {f['torch']}, "
            f"{f['threads']} threads), median of the rounds after a warm-up.",
            "",
            *_table(
                ["Batch", "Preprocessing img/s", "Inception forward img/s", "Together img/s"],
                [[r["batch_size"], f"{r['preprocess_img_s']:.0f}", f"{r['forward_img_s']:.1f}",
                  f"{r['total_img_s']:.1f}"] for r in f["rows"]],
                "rrrr",
            ),
            "",
        ]

    # ---- profiles
    if cat.get("profiles"):
        lines += [
            "## Profiles",
            "",
            "cProfile of the operations of catalogs that missed a goal (or whose first search takes over 50 ms), "
            "top functions by cumulative time. cProfile adds overhead, so its times exceed the medians above. "
            "Full listings: `python benchmarks/catalog_search.py --profile`.",
            "",
        ]
        for name, listings in cat["profiles"].items():
            for op, text in listings.items():
                lines += [
                    f"<details><summary>{name} catalog: {op}</summary>",
                    "",
                    "```text",
                    _profile_excerpt(text),
                    "```",
                    "",
                    "</details>",
                    "",
                ]
    return "\n".join(lines).rstrip() + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--quick", action="store_true", help="fewer repetitions in every benchmark (smoke test)")
    parser.add_argument("--json-dir", metavar="DIR", help="keep each benchmark's JSON results in DIR")
    parser.add_argument("--output", default=str(DEFAULT_OUTPUT), help="page to write (default docs/performance.md)")
    parser.add_argument("--python", default=sys.executable, help="interpreter to run the benchmarks with")
    args = parser.parse_args(argv)

    run_all_command = shlex.join(["python", "benchmarks/run_all.py"] + (["--quick"] if args.quick else []))
    with tempfile.TemporaryDirectory(prefix="medhub-bench-results-") as tmp:
        json_dir = Path(args.json_dir) if args.json_dir else Path(tmp)
        json_dir.mkdir(parents=True, exist_ok=True)
        shown = _rel(json_dir) if args.json_dir else "<tmp>"
        runs = run_benchmarks(args.python, json_dir, args.quick, shown)

    output = Path(args.output)
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(render(runs, args.quick, run_all_command), encoding="utf-8")
    print(f"\nWrote {_rel(output)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
