"""The benchmarks' shared harness (benchmarks/common.py) and report renderer (benchmarks/report.py)."""

from __future__ import annotations

import importlib
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
BENCHMARKS = ROOT / "benchmarks"
#: Every benchmark, runnable as ``python benchmarks/<name>.py`` (with ``--help``).
NAMES = sorted(p.stem for p in BENCHMARKS.glob("*.py")
               if p.stem not in ("common", "report", "run_all", "generate_worker", "cold_start_worker",
                                 "build_medigan_package"))


@pytest.fixture()
def bench(monkeypatch):
    """Imports a benchmark module as ``python benchmarks/<name>.py`` would (benchmarks/ first on the path)."""
    monkeypatch.syspath_prepend(str(BENCHMARKS))
    yield importlib.import_module
    for name, module in list(sys.modules.items()):  # the benchmarks' modules have plain names: forget them
        if str(getattr(module, "__file__", "") or "").startswith(str(BENCHMARKS)):
            del sys.modules[name]


def test_compile_bytecode_writes_caches_even_when_python_would_not(bench, monkeypatch, tmp_path):
    """With PYTHONDONTWRITEBYTECODE=1 an import writes no cache; compile_bytecode still does."""
    common = bench("common")
    pkg = tmp_path / "pkg"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("VALUE = 1\n")
    env = dict(os.environ, PYTHONDONTWRITEBYTECODE="1", PYTHONPATH=str(tmp_path))
    subprocess.run([sys.executable, "-c", "import pkg"], env=env, check=True)
    assert not (pkg / "__pycache__").exists()
    monkeypatch.setenv("PYTHONDONTWRITEBYTECODE", "1")
    common.compile_bytecode(sys.executable, [pkg])
    assert len(list((pkg / "__pycache__").glob("__init__.*.pyc"))) == 1


def test_machine_info_compiles_medhub_and_the_shipped_packages(bench, monkeypatch):
    common = bench("common")
    compiled: list[list[str]] = []
    monkeypatch.setattr(common, "compile_bytecode", lambda python, folders: compiled.append(list(map(str, folders))))
    monkeypatch.setenv("PYTHONDONTWRITEBYTECODE", "1")
    info = common.machine_info(sys.executable)
    import medhub

    assert compiled == [[str(Path(medhub.__file__).parent), str(ROOT / "models")]]
    assert info["bytecode"] == {"PYTHONDONTWRITEBYTECODE": "1", "compiled": compiled[0]}


def test_alternate_warms_up_then_rotates_the_order_every_round(bench):
    common = bench("common")
    calls: list[str] = []

    def variant(name: str):
        return lambda: calls.append(name) or len(calls)

    out = common.alternate({name: variant(name) for name in "abc"}, 3)
    assert calls == list("abc") + list("abc") + list("bca") + list("cab")
    assert out == {"a": [4, 9, 11], "b": [5, 7, 12], "c": [6, 8, 10]}  # warm-up calls are not collected
    calls.clear()
    common.alternate({name: variant(name) for name in "ab"}, 2, warm_up=False, offset=1)
    assert calls == list("ba") + list("ab")
    assert all(t >= 0 for t in common.alternate({"x": common.timed(lambda: None)}, 2)["x"])


def test_the_executor_override_leaves_the_catalog_alone(bench):
    common = bench("common")
    from medhub.config import ConfigManager

    ex = common.executor("00101_DCGAN_BRAIN_MRI_T1", thread_safe=False, memory_format="contiguous")
    assert not ex.thread_safe and ex.memory_format() == "contiguous"
    method = ConfigManager().config_dict["00101_DCGAN_BRAIN_MRI_T1"]["execution"]["generate_method"]
    assert method["thread_safe"] is True and method["memory_format"] == "channels_last"
    assert "00101_DCGAN_BRAIN_MRI_T1" in common.shipped_models(torch_only=True)
    assert common.declared("memory_format")["00101_DCGAN_BRAIN_MRI_T1"] == "channels_last"


def test_report_fills_templates_and_tables(bench):
    report = bench("report")
    text = report.fill("""
        ## Title

        `{command}`: {n:,} samples.

        {table}
    """, command="python x.py", n=1000, table=report.table(["A", "B"], [[1, 2]], "lr"))
    assert text == "## Title\n\n`python x.py`: 1,000 samples.\n\n| A | B |\n| --- | ---: |\n| 1 | 2 |"
    goal = report.Goal("import", "cost", "62.7 ms", "< 60 ms", False)
    assert goal.row() == ["import", "cost", "62.7 ms", "< 60 ms", "**MISSED**"]
    assert report.Goal("x", "y", "1", "2", True, informational=True).row()[-1] == "PASS (info only)"
    assert report.short("00104_PIX2PIX_BRAIN_SEG_TO_T1") == "00104 PIX2PIX"


def _machine() -> dict:
    return {"cpu": "test CPU", "cores_logical": 2, "cores_usable": 2, "load_average_1_5_15min": [0.5, 0.4, 0.3],
            "os": "Linux", "python": "CPython 3.11", "numpy": "2", "medhub": "0.1.0", "fastjsonschema": "2",
            "git_commit": "abc1234", "date": "2026-12-04 18:00 UTC",
            "bytecode": {"PYTHONDONTWRITEBYTECODE": "", "compiled": []}}


def test_run_all_shows_the_options_it_adds_to_a_benchmark_in_its_command(bench):
    """The page's command of a benchmark is the one run_all runs: with the options only run_all adds."""
    run_all = bench("run_all")
    assert run_all.shown_command("gpu", "<tmp>", False) == "python benchmarks/gpu.py --json <tmp>/gpu.json --no-writers"
    assert run_all.shown_command("cold_start", "res", True) == (
        "python benchmarks/cold_start.py --json res/cold_start.json --quick --env MALLOC_TOP_PAD_=67108864")
    assert run_all.shown_command("download", "<tmp>", False) == "python benchmarks/download.py --json <tmp>/download.json"


def test_run_all_renders_the_page_from_the_results_of_the_benchmarks(bench):
    """Results of two benchmarks become the page: machine, commands, goals (missed ones listed), sections."""
    run_all, report = bench("run_all"), bench("report")
    download = {"benchmark": "download", "machine": _machine(), "settings": {"quick": True},
                "result": {"size_mb": 33.6, "repeat": 2, "copy_mb_s": 2500.0, "http_mb_s": 1500.0,
                           "download_verify_mb_s": 1000.0, "sha256_mb_s": 1700.0, "ratio": 0.4, "ratio_vs_http": 0.667,
                           "goal": 0.8}}
    fid = {"benchmark": "fid_features", "machine": _machine(), "settings": {"quick": True}, "torch": "2.13.0",
           "threads": 2, "rows": [{"batch_size": 8, "images": 16, "preprocess_img_s": 500.0, "forward_img_s": 6.5,
                                   "total_img_s": 6.4}]}
    runs = [report.Run(run_all.shown_command("download", "<tmp>", True), download),
            report.Run(run_all.shown_command("fid_features", "<tmp>", True), fid, reused=True)]
    page = run_all.render(runs, "python benchmarks/run_all.py --quick", True)
    assert page.startswith("# Performance\n\n<!-- Generated by benchmarks/run_all.py")
    assert "(**quick mode: few repetitions, indicative only**)" in page
    assert "| CPU | test CPU |" in page
    commands = page.split("```sh\n")[1].split("```")[0].splitlines()
    assert commands[0] == "python benchmarks/run_all.py --quick   # runs:"
    assert commands[1].startswith("python benchmarks/download.py --json <tmp>/download.json --quick ")
    assert commands[1].endswith("   # 2026-12-04 18:00 UTC, load 0.5")
    assert commands[2].endswith("   # 2026-12-04 18:00 UTC, load 0.5 (reused)")
    assert ("| download | verified download / plain file copy (1000 vs 2500 MB/s) | 0.40 | >= 0.8 | **MISSED** |"
            in page)
    assert "**Goals missed:** verified download / plain file copy (1000 vs 2500 MB/s) (0.40)." in page
    assert page.index("## Package download and verification") < page.index("## FID feature extraction")
    assert "| 8 | 500 | 6.5 | 6.4 |" in page
    assert "{" not in page  # every placeholder filled


@pytest.mark.parametrize("name", NAMES)
def test_every_benchmark_is_one_command_with_help(name):
    """``python benchmarks/<name>.py --help`` prints the benchmark's docstring and its options."""
    out = subprocess.run([sys.executable, str(BENCHMARKS / f"{name}.py"), "--help"], capture_output=True, text=True,
                         cwd=ROOT, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith("usage: ") and "Benchmark:" in out.stdout and "--quick" in out.stdout
    assert "--json" in out.stdout


def test_every_benchmark_renders_its_own_section(bench):
    """Every benchmark that run_all runs has a ``report`` function (the page is built from them)."""
    run_all = bench("run_all")
    assert set(run_all.BENCHMARKS) <= set(NAMES) and "heap" not in NAMES
    for name in run_all.BENCHMARKS:
        assert callable(bench(name).report), name


def test_the_examples_in_the_docstrings_hold(bench):
    import doctest

    for name in ("common", "report"):
        assert doctest.testmod(bench(name)).failed == 0, name


def test_the_cold_start_page_shows_each_phase_of_both_first_calls_and_the_goals(bench):
    """Issue 33 point 8: the first call of medhub and of the raw loop, phase by phase, and medhub / raw."""
    cold_start, Run = bench("cold_start"), bench("report").Run

    cli_phases = {p: {"median_s": 0.01, "min_s": 0.01, "max_s": 0.02} for p in cold_start.PHASES}
    cli = {"command": "medhub generate 00101 -n 1", "rounds": 1, "phases": cli_phases, "instrumented_wall_s": 2.0,
           "fast_exit_wall_s": 1.9, "bare_python_s": 0.02, "real_wall_s": {"median": 2.0, "min": 1.9, "max": 2.1}}

    def cell(call: float, **phases: float) -> dict:
        return {"call_s": call, "call_s_all": [call], "call_cpu_s": 2 * call, "call_faults": 100_000 * call,
                "phases": phases}

    first = {"rounds": 1, "num_samples": 1000, "raw_batch": 64, "medhub_over_raw": {"memory": 0.5 / 0.52, "png": 1.1},
             "cells": {"raw|memory": cell(0.5, **{"import torch": 1.2, "build + load": 0.03, "first batch": 0.05}),
                       "medhub|memory": cell(0.52, **{"import medhub": 0.01, "load()": 0.02, "writing": 0.0}),
                       "raw|png": cell(0.66, writing=0.2), "medhub|png": cell(0.6, writing=0.1)}}
    doc = {"settings": {"model": "00101_DCGAN_BRAIN_MRI_T1"}, "result": cli, "first_call": first,
           "machine": {"date": "2026-12-07 19:00 UTC", "load_average_1_5_15min": [1.0, 1.0, 1.0]}}
    section = cold_start.report(Run("python benchmarks/cold_start.py", doc))
    goals = {g.measurement.split(": ")[0]: (g.value, g.passed) for g in section.goals}
    assert goals["00101 DCGAN, first call of generate, 1,000 samples in memory"] == ("0.96", True)
    assert goals["00101 DCGAN, first call of generate, 1,000 samples PNG files"] == ("1.10", True)
    text = section.text
    assert text.index("## Cold start") < text.index("### First call of `generate` against the raw loop")
    assert "| **the call** | **500 ms** | **520 ms** | **660 ms** | **600 ms** |" in text
    assert "| build + load | 30.0 ms |  |  |  |" in text and "| **medhub / raw** |  | **0.96** |  | **1.10** |" in text
    assert "| page faults of the call (minor: new memory touched) | 50,000 | 52,000 | 66,000 | 60,000 |" in text
    # the package alone (in memory) splits the gap: a fifth column and the two ratios
    first["cells"]["package|memory"] = cell(0.51, **{"build + load": 0.02, "first batch": 0.04})
    first.update(package_over_raw=0.5 / 0.51, medhub_over_package=0.51 / 0.52)
    text = cold_start.report(Run("python benchmarks/cold_start.py", doc)).text
    assert "| **the call** | **500 ms** | **520 ms** | **510 ms** | **660 ms** | **600 ms** |" in text
    assert "package alone, in memory" in text and "**0.98** and **0.98**" in text
    assert "what-if" not in text
    # --package-block 64: one more column, the package alone on blocks of 64, and what it costs
    first["cells"]["package-block|memory"] = cell(0.48, **{"build + load": 0.02, "first batch": 0.03})
    first.update(package_block=64, package_block_over_raw=0.5 / 0.48)
    text = cold_start.report(Run("python benchmarks/cold_start.py", doc)).text
    assert "| **the call** | **500 ms** | **520 ms** | **510 ms** | **480 ms** | **660 ms** | **600 ms** |" in text
    assert "what-if: package alone on blocks of 64, in memory" in text and "(raw / what-if: **1.04**)" in text
    # --env NAME=VALUE: raw and medhub in memory with it, before the PNG columns
    first["cells"].update({"raw-env|memory": cell(0.4), "medhub-env|memory": cell(0.42)})
    first.update(env={"MALLOC_TRIM_THRESHOLD_": "268435456"},
                 env_ratios={"medhub_over_raw": 0.4 / 0.42, "raw_speedup": 0.5 / 0.4, "medhub_speedup": 0.52 / 0.42})
    text = cold_start.report(Run("python benchmarks/cold_start.py", doc)).text
    assert ("| **the call** | **500 ms** | **520 ms** | **510 ms** | **480 ms** | **400 ms** | **420 ms** | **660 ms** "
            "| **600 ms** |") in text
    assert "what-if: raw with --env, in memory" in text and "`--env MALLOC_TRIM_THRESHOLD_=268435456`" in text
    assert "medhub / raw is\n**0.95**; they make the raw loop 1.25x and medhub 1.24x as fast." in text
    old = dict(doc)
    del old["first_call"]  # results written before the first-call part existed still render
    assert "### First call" not in cold_start.report(Run("python benchmarks/cold_start.py", old)).text
