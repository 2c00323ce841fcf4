"""The generation benchmark's harness: runs keep their files until the benchmark ends.

Deleting a run's files between timed runs makes every file the next runs create dearer on ext4
without a journal (recently deleted inodes are skipped one by one), so the harness must not do it.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture()
def bench(monkeypatch):
    monkeypatch.syspath_prepend(str(ROOT / "benchmarks"))
    spec = importlib.util.spec_from_file_location("bench_generate", ROOT / "benchmarks" / "generate.py")
    module = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, "bench_generate", module)
    spec.loader.exec_module(module)
    return module


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
    monkeypatch.setattr(bench, "_run", _fake_run(written))
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


def test_the_file_creation_probe_keeps_its_files(bench, tmp_path):
    result = bench._file_create(tmp_path, 100, n=20)
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


def test_warm_times_the_raw_loop_and_medhub_alternated_after_a_first_call(bench):
    calls = []

    def step(k):
        calls.append(k)
        return {}

    warm = bench._warm(bench.DCGAN, step, batch=4, n=10, rounds=2)
    # one first call and two timed passes of the raw loop, each 10 samples in batches of 4, 4, 2
    assert calls == [4, 4, 2] * 3
    assert warm["samples"] == 10 and warm["rounds"] == 2 and warm["raw_batch_size"] == 4
    assert warm["raw_s"] > 0 and warm["medhub_s"] > 0
    assert warm["medhub_over_raw"] == warm["raw_s"] / warm["medhub_s"]
