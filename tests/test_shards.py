"""Sharded runs: disjoint shards add up to a single-process run byte for byte, and resume."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import IMG8, LABEL, NUMPY_TOY, entry, write_catalog, write_package

from medhub import Generators
from medhub.cli import main as cli_main
from medhub.errors import InvalidArgumentError, OutputPathError
from medhub.outputs import read_manifest
from medhub.shards import merge_manifests, parse_shard, shard_range


@pytest.fixture(autouse=True)
def one_mark_time(monkeypatch):
    """Runs made at different times are compared byte for byte: one ``created`` in their marks."""
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "1796655600")


SLOW_TOY = NUMPY_TOY + """
import time

def _slow(seeds):
    time.sleep(0.15)

_sample = sample

def sample(model, seeds, **inputs):
    _slow(seeds)
    return _sample(model, seeds, **inputs)
"""


@pytest.fixture
def cat(tmp_path) -> Path:
    write_package(tmp_path, "toy", NUMPY_TOY)
    write_package(tmp_path, "slow", SLOW_TOY)
    torch_spec = [{"name": "image", "kind": "image", "shape": [10, 10], "dtype": "uint16"},
                  {"name": "mask", "kind": "mask", "shape": [10, 10], "dtype": "uint8"}]
    from conftest import TORCH_TOY

    write_package(tmp_path, "torch_toy", TORCH_TOY)
    from conftest import MEDIGAN_TOY

    write_package(tmp_path, "medigan_toy", MEDIGAN_TOY, {"toy.bin": b"w"})
    return write_catalog(tmp_path / "c.json", {
        "00001_TOY": entry("toy", [IMG8, LABEL]),
        "00002_SLOW": entry("slow", [IMG8, LABEL]),
        "00003_TORCH": entry("torch_toy", torch_spec, deps=["torch", "numpy"]),
        "00004_MEDIGAN": entry("medigan_toy", None, interface="medigan", model_name="toy", extension=".bin"),
    })


def sample_files(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in folder.iterdir() if p.name[:6].isdigit()}


def test_parse_shard(monkeypatch):
    assert parse_shard("1/4") == (1, 4) and parse_shard((0, 1)) == (0, 1) and parse_shard(None) is None
    monkeypatch.setenv("RANK", "2")
    monkeypatch.setenv("WORLD_SIZE", "3")
    assert parse_shard("auto") == (2, 3)
    monkeypatch.delenv("RANK")
    monkeypatch.delenv("WORLD_SIZE")
    monkeypatch.setenv("SLURM_ARRAY_TASK_ID", "5")
    monkeypatch.setenv("SLURM_ARRAY_TASK_MIN", "1")
    monkeypatch.setenv("SLURM_ARRAY_TASK_COUNT", "8")
    assert parse_shard("auto") == (4, 8)
    for bad in ("4/4", "1-4", (0, 0), "x"):
        with pytest.raises(InvalidArgumentError):
            parse_shard(bad)
    assert [i for k in range(3) for i in shard_range(10, k, 3)] == list(range(10))


@pytest.mark.parametrize("model", [1, 3])
def test_two_shards_equal_one_run_byte_for_byte(cat, tmp_path, model):
    g = Generators(config_file=cat)
    single = g.generate(model, num_samples=11, output_path=tmp_path / "single", seed=3, batch_size=4)
    for k in range(2):
        g.generate(model, num_samples=11, output_path=tmp_path / "sharded", seed=3, batch_size=3, shard=f"{k}/2")
    a, b = sample_files(Path(single.output_path)), sample_files(tmp_path / "sharded")
    assert a == b and len(a) == 11 * (1 if model == 1 else 2)
    assert (tmp_path / "single" / "manifest.csv").read_bytes() == (tmp_path / "sharded" / "manifest.csv").read_bytes()


def test_shards_in_separate_processes_and_a_killed_shard_resumes(cat, tmp_path):
    out = tmp_path / "out"
    code = ("import sys; from medhub import Generators;"
            "Generators(config_file=sys.argv[1]).generate(2, num_samples=16, output_path=sys.argv[2], seed=5,"
            " batch_size=2, shard=sys.argv[3], progress=False)")
    first = subprocess.run([sys.executable, "-c", code, str(cat), str(out), "0/2"], capture_output=True, text=True)
    assert first.returncode == 0, first.stderr
    victim = subprocess.Popen([sys.executable, "-c", code, str(cat), str(out), "1/2"])
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and len(sample_files(out)) < 11:
        time.sleep(0.05)
    victim.send_signal(signal.SIGKILL)
    victim.wait()
    done_before = len(sample_files(out))
    assert 8 < done_before < 16 and not (out / "manifest.csv").exists()
    again = subprocess.run([sys.executable, "-c", code, str(cat), str(out), "1/2"], capture_output=True, text=True)
    assert again.returncode == 0, again.stderr
    single = Generators(config_file=cat).generate(2, num_samples=16, output_path=tmp_path / "single", seed=5)
    assert sample_files(out) == sample_files(Path(single.output_path))
    assert [int(r["index"]) for r in read_manifest(out)] == list(range(16))
    assert not list(out.glob(".*.tmp*"))


def test_corrupted_file_is_regenerated_on_rerun(cat, tmp_path):
    g = Generators(config_file=cat)
    g.generate(1, num_samples=4, output_path=tmp_path / "o", seed=1, shard="0/1")
    good = (tmp_path / "o" / "000002_image.png").read_bytes()
    (tmp_path / "o" / "000002_image.png").write_bytes(b"broken")
    g.generate(1, num_samples=4, output_path=tmp_path / "o", seed=1, shard="0/1")
    assert (tmp_path / "o" / "000002_image.png").read_bytes() == good


def test_runs_are_never_mixed(cat, tmp_path):
    g = Generators(config_file=cat)
    g.generate(1, num_samples=4, output_path=tmp_path / "o", seed=1, shard="0/2")
    with pytest.raises(OutputPathError, match="another run"):
        g.generate(1, num_samples=4, output_path=tmp_path / "o", seed=2, shard="1/2")
    other = tmp_path / "other"
    other.mkdir()
    (other / "mine.txt").write_text("x")
    with pytest.raises(OutputPathError, match="not empty"):
        g.generate(1, num_samples=4, output_path=other, seed=1, shard="0/2")
    assert sorted(p.name for p in other.iterdir()) == ["mine.txt"]


def test_shard_arguments(cat, tmp_path):
    g = Generators(config_file=cat)
    with pytest.raises(InvalidArgumentError, match="seed"):
        g.generate(1, num_samples=4, output_path=tmp_path / "o", shard="0/2")
    with pytest.raises(InvalidArgumentError, match="seed"):
        g.generate(1, num_samples=4, save_images=False, seed=0, shard="0/2")
    with pytest.raises(InvalidArgumentError, match="medhub/1"):
        g.generate(4, num_samples=4, output_path=tmp_path / "m", seed=0, shard="0/2")


def test_merge_manifests_cli(cat, tmp_path, capsys):
    out = tmp_path / "o"
    assert cli_main(["--config", str(cat), "generate", "1", "-n", "6", "-o", str(out), "--seed", "2",
                     "--shard", "0/3", "--no-progress"]) == 0
    capsys.readouterr()
    assert cli_main(["merge-manifests", str(out)]) == 1
    assert "Shards [1, 2] of 3" in capsys.readouterr().err
    for k in (1, 2):
        assert cli_main(["--config", str(cat), "generate", "1", "-n", "6", "-o", str(out), "--seed", "2",
                         "--shard", f"{k}/3", "--no-progress"]) == 0
    capsys.readouterr()
    (out / "manifest.csv").unlink()
    assert [int(r["index"]) for r in read_manifest(out)] == list(range(6))  # the first reader merges
    assert cli_main(["merge-manifests", str(out), "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == {"manifest": str(out / "manifest.csv")}
    assert merge_manifests(out) == out / "manifest.csv"
