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
