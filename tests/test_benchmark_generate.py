"""The generation benchmark's harness: runs keep their files until the benchmark ends.

Deleting a run's files between timed runs makes every file the next runs create dearer on ext4
without a journal (recently deleted inodes are skipped one by one), so the harness must not do it.
"""

from __future__ import annotations

import importlib
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture()
def bench(monkeypatch):
    """benchmarks/generate.py, imported as ``python benchmarks/generate.py`` would (benchmarks/ on the path)."""
    monkeypatch.syspath_prepend(str(ROOT / "benchmarks"))
    yield importlib.import_module("generate")
    for name, module in list(sys.modules.items()):  # the benchmarks' modules have plain names: forget them
        if str(getattr(module, "__file__", "") or "").startswith(str(ROOT / "benchmarks")):
            del sys.modules[name]


@pytest.fixture()
def worker(bench):
    return importlib.import_module("generate_worker")


def _fake_run(written: list[Path]):
    def run(cmd, env, cwd, timeout):
        out = Path(cmd[cmd.index("--out") + 1])
        out.mkdir(parents=True)
        (out / "000000_image.png").write_bytes(b"png")
        if "medigan" in cmd[cmd.index("--worker") + 1]:
            (Path(cwd) / "output").mkdir(exist_ok=True)
            (Path(cwd) / "output" / "stray.png").write_bytes(b"png")
        written.append(out)
        return {"produced": 1}, 0.5

    return run


def test_runs_keep_their_files_until_the_benchmark_ends(bench, tmp_path, monkeypatch):
    written: list[Path] = []
    monkeypatch.setattr(bench, "run_process", _fake_run(written))
    workdir, scratch = tmp_path / "medigan-work", tmp_path / "scratch"
    workdir.mkdir()
    runner = bench.Runner("python", "medigan-python", workdir, scratch, str(tmp_path / "home"))
    for impl in ("raw", "medhub", "medigan", "medigan"):
        row = runner.run(impl, bench.DCGAN, 10, "png", 32)
        assert row["wall_s"] == 0.5
    assert [p.parent.name for p in written] == ["run1", "run2", "run3", "run4"]
    assert all((p / "000000_image.png").is_file() for p in written)
    # medigan's default output folder is moved aside into the run's folder, not deleted
    assert not (workdir / "output").exists()
    assert (written[2].parent / "medigan-default-output" / "stray.png").is_file()
    assert (written[3].parent / "medigan-default-output" / "stray.png").is_file()


def test_the_file_creation_probe_keeps_its_files(worker, tmp_path):
    result = worker.file_create(tmp_path, 100, n=20)
    assert result["files"] == 20 and result["bytes"] == 100
    for threads in (1, 2):
        assert len(list((tmp_path / f"files-{threads}").iterdir())) == 20
        assert result[f"{threads}_thread"]["wall_us_per_file"] > 0


def _cell(model, n, mode, impl, call_s, wall_s):
    return {"model": model, "num_samples": n, "mode": mode, "impl": impl, "call_s": call_s, "wall_s": wall_s,
            "samples_per_s": n / call_s, "growth_beyond_result_mb": 10.0}


def test_goals_bound_the_speed_up_over_medigan_by_the_floor_and_the_network(bench):
    m = bench.DCGAN
    cells = {}
    for impl, call, wall in (("raw", 4.0, 7.0), ("medhub", 4.0, 7.5), ("medigan", 6.0, 15.0)):
        cells[f"{m}|1000|memory|{impl}"] = _cell(m, 1000, "memory", impl, call, wall)
    checks = bench.goals(cells, [m], [1000], floor_s=3.0, best_rates={m: 250.0})
    raw = next(g for g in checks if g["kind"] == "raw")
    assert raw["value"] == 1.0 and raw["passed"]
    medigan = next(g for g in checks if g["kind"] == "medigan")
    assert medigan["value"] == 15.0 / 7.5 and medigan["passed"]
    assert medigan["bound"] == 15.0 / 3.0
    # floor 3 s plus 1,000 samples at 250/s is 7 s
    assert medigan["network_bound"] == 15.0 / 7.0
    # without a floor, or without a rate for the network, there is no bound to report
    bare = next(g for g in bench.goals(cells, [m], [1000]) if g["kind"] == "medigan")
    assert bare["bound"] is None and bare["network_bound"] is None
    no_rate = next(g for g in bench.goals(cells, [m], [1000], 3.0, {}) if g["kind"] == "medigan")
    assert no_rate["network_bound"] is None


def test_floors_summarised_per_venv_with_the_fastest_for_the_bounds(bench):
    floors = [{"model": "a", "venv": "medhub", "wall_s": w} for w in (2.7, 2.3, 2.6)]
    floors += [{"model": "a", "venv": "medigan", "wall_s": w} for w in (3.4, 2.5)]
    median, fastest = bench.summarize_floors(floors)
    assert median == {"medhub": 2.6, "medigan": (3.4 + 2.5) / 2}
    assert fastest == {"medhub": 2.3, "medigan": 2.5}
    assert bench.summarize_floors([]) == ({}, {})


def test_fastest_time_outside_the_call_and_fastest_rate_come_from_every_run(bench):
    floors = [{"model": "a", "venv": "medhub", "wall_s": 2.7}, {"model": "a", "venv": "medigan", "wall_s": 3.0}]
    runs = [{"model": "a", "impl": "medhub", "mode": "memory", "num_samples": 1000, "call_s": 2.0, "wall_s": 4.3},
            {"model": "a", "impl": "raw", "mode": "png", "num_samples": 1000, "call_s": 4.0, "wall_s": 6.5},
            {"model": "a", "impl": "medigan", "mode": "memory", "num_samples": 1000, "call_s": 0.5, "wall_s": 1.0}]
    median, fastest = bench.summarize_floors(floors, runs)
    assert median == {"medhub": 2.7, "medigan": 3.0}
    # the medhub run spent 2.3 s outside its call, less than the torch-only process; medigan's
    # runs (another venv) do not count
    assert fastest == {"medhub": 2.3, "medigan": 3.0}
    sweeps = {"a": {"samples_per_s": {"32": 400.0, "64": 450.0}}}
    # the in-memory medhub run, 500/s, beats the sweep; the PNG run and medigan's do not count
    assert bench.fastest_rates(sweeps, runs) == {"a": 500.0}
    assert bench.fastest_rates(sweeps) == {"a": 450.0}
    # a faster sweep wins, and each run counts, not the median of its cell
    runs.append({"model": "a", "impl": "raw", "mode": "memory", "num_samples": 2000, "call_s": 4.0, "wall_s": 6.0})
    assert bench.fastest_rates({"a": {"samples_per_s": {"32": 600.0}}}, runs) == {"a": 600.0}
    runs.append({"model": "a", "impl": "raw", "mode": "memory", "num_samples": 2000, "call_s": 1.0, "wall_s": 3.0})
    assert bench.fastest_rates(sweeps, runs) == {"a": 2000.0}


def test_warm_times_the_raw_loop_and_medhub_alternated_after_a_first_call(worker, bench):
    calls = []

    def step(k):
        calls.append(k)
        return {}

    warm = worker.warm(bench.DCGAN, step, batch=4, n=10, rounds=2)
    # one first call and two timed passes of the raw loop, each 10 samples in batches of 4, 4, 2
    assert calls == [4, 4, 2] * 3
    assert warm["samples"] == 10 and warm["rounds"] == 2 and warm["raw_batch_size"] == 4
    assert warm["raw_s"] > 0 and warm["medhub_s"] > 0
    assert warm["medhub_over_raw"] == warm["raw_s"] / warm["medhub_s"]


def test_report_renders_goals_tables_and_the_bounds_over_medigan(bench):
    """The section and its goals from a result with all three implementations (made up numbers)."""
    from report import Run

    m = bench.DCGAN
    runs = []
    for impl, call, wall in (("raw", 4.0, 7.0), ("medhub", 4.0, 7.5), ("medigan", 6.0, 15.0)):
        for mode in bench.MODES:
            runs.append({"impl": impl, "model": m, "num_samples": 1000, "mode": mode, "call_s": call, "wall_s": wall,
                         "peak_rss_kb": 300 * 1024, "rss_before_kb": 230 * 1024, "result_bytes": 0,
                         "library_s": 0.1, "torch_import_s": 1.0, "batch_size": 128 if impl == "raw" else None})
    cells = bench.summarize(runs)
    sweep = {"samples": 1024, "rounds": 3, "samples_per_s": {"32": 400.0, "128": 450.0}, "best_batch_size": 128,
             "warm": {"samples": 1024, "raw_batch_size": 128, "raw_s": 0.7, "medhub_s": 0.66, "medhub_over_raw": 1.06},
             "file_create": {"bytes": 2000, "files": 1000, "1_thread": {"wall_us_per_file": 150, "cpu_us_per_file": 170},
                             "2_thread": {"wall_us_per_file": 116, "cpu_us_per_file": 150}},
             "png_encoders": {"medhub encode_png": {"us_per_image": 110, "mean_bytes": 2006}}}
    floor, fastest = bench.summarize_floors([{"model": m, "venv": "medhub", "wall_s": 3.0}], runs)
    doc = {"benchmark": "generate", "machine": {"date": "2026-12-04 18:00 UTC", "load_average_1_5_15min": [1, 1, 1]},
           "settings": {"models": [m], "sizes": [1000], "repeat": 3, "repeat_large": 2, "output_dir": "/tmp",
                        "torch": "2.13.0", "medigan_and_torch": "1.0.0 2.13.0"},
           "cells": cells, "sweeps": {m: sweep}, "floor_s": floor, "floor_min_s": fastest, "elapsed_s": 600,
           "goals": bench.goals(cells, [m], [1000], fastest["medhub"], bench.fastest_rates({m: sweep}, runs))}
    section = bench.report(Run("python benchmarks/generate.py", doc))
    assert [(g.value, g.passed) for g in section.goals] == [("1.00", True), ("2.00x", True), ("1.00", True),
                                                             ("2.00x", True)]
    assert section.goals[1].measurement == ("00101 DCGAN, 1,000 samples in memory: medhub speed-up over medigan, end "
                                            "to end (7.5 vs 15.0 s)")
    text = section.text
    assert text.startswith("## Generating samples: raw limit, medhub, medigan\n\n`python benchmarks/generate.py` "
                           "(2026-12-04 18:00 UTC, load average [1, 1, 1]; torch 2.13.0;")
    assert "| 00101 DCGAN | 1,000 | in memory | 250 | 250 | 167 | 1.00 | 7.0 s | 7.5 s | 15.0 s | 2.00x | 1.50x |" in text
    # the least time outside the call: the torch-only process, 3.0 s; medigan's 15 s over it is 5.00x
    assert "even one generating in no time: 00101 DCGAN 1,000 in memory 5.00x" in text
    # running the network at its fastest, 450/s (the sweep): 15 s over 3 s + 1,000 / 450 s
    assert "for free would take that least time plus N over that speed" in text
    assert f"00101 DCGAN 1,000 in memory {15 / (3 + 1000 / 450):.2f}x" in text
    assert "| 00101 DCGAN | 400 | **450** |" in text and "{" not in text
