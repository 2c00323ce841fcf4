"""Faults of the run layer: a full disk, signals, killed processes, racing runs and bad arguments
leave no temporary folder behind and give one line that says what to fix (issue 25, points 4, 5, 9)."""

from __future__ import annotations

import errno
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from medhub import Generators
from medhub.errors import InvalidArgumentError, OutputPathError
from medhub.outputs import RunWriter, remove_stale_runs
from medhub.outputs import runs as runs_module

REPO = Path(__file__).resolve().parents[1]


def _leftovers(parent: Path) -> list[str]:
    return sorted(p.name for p in parent.iterdir() if ".partial-" in p.name)


@pytest.fixture(scope="module")
def g() -> Generators:
    return Generators()


def test_full_disk_while_writing_files_removes_the_staging_folder(g, tmp_path, monkeypatch):
    """Every file write fails with ENOSPC, and so does the manifest's close: one medhub error, no folder."""
    real = runs_module.write_file
    calls = []

    def full(path, arr, spec, record=None):
        calls.append(path)
        if len(calls) > 3:
            raise OSError(errno.ENOSPC, "No space left on device")
        real(path, arr, spec, record)

    monkeypatch.setattr(runs_module, "write_file", full)
    with pytest.raises(OutputPathError, match="No space left"):
        g.generate(101, num_samples=40, output_path=tmp_path / "out", seed=0, device="cpu", batch_size=8,
                   progress=False)
    assert _leftovers(tmp_path) == [] and not (tmp_path / "out").exists()


@pytest.mark.slow
def test_full_disk_on_a_real_small_filesystem(g, tmp_path):
    """Generating into a 2 MiB tmpfs (where this machine lets the tests mount one): 10 runs, each a
    medhub error, and no run leaves its temporary folder holding the space."""
    mount = tmp_path / "small"
    mount.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(mount)], capture_output=True).returncode:
        pytest.skip("cannot mount a tmpfs here")
    try:
        for k in range(10):
            with pytest.raises(OutputPathError, match="No space left|Cannot write"):
                g.generate(101, num_samples=1500, output_path=mount / f"run{k}", seed=k, device="cpu",
                           progress=False)
            assert _leftovers(mount) == [] and not (mount / f"run{k}").exists()
        assert list(mount.iterdir()) == []
    finally:
        subprocess.run(["umount", str(mount)], check=False)


SLOW_RUN = """
import signal, sys, time
signal.signal(signal.SIGHUP, signal.SIG_DFL)  # as in a terminal session (nohup would leave SIGHUP ignored)
from medhub import Generators
from medhub.outputs import runs
real = runs.write_file
def slow(path, arr, spec, record=None):
    time.sleep(0.01)
    real(path, arr, spec, record)
runs.write_file = slow
Generators().generate(101, num_samples=100000, output_path=sys.argv[1], seed=0, device="cpu", progress=False)
"""


@pytest.mark.parametrize("signum", [signal.SIGTERM, pytest.param(signal.SIGHUP, marks=pytest.mark.slow)])
def test_sigterm_and_sighup_remove_the_temporary_folder(tmp_path, signum):
    out = tmp_path / "out"
    proc = subprocess.Popen([sys.executable, "-c", SLOW_RUN, str(out)], cwd=tmp_path)
    deadline = time.monotonic() + 120
    while not any(p.is_dir() and any(p.glob("*.png")) for p in tmp_path.glob(".out.partial-*")):
        assert time.monotonic() < deadline and proc.poll() is None, "the run never started writing"
        time.sleep(0.05)
    proc.send_signal(signum)
    assert proc.wait(timeout=60) == 128 + signum
    assert _leftovers(tmp_path) == [] and not out.exists()


def test_leftovers_of_a_killed_run_are_removed_later(tmp_path):
    """SIGKILL leaves the staging folder (nothing can run); remove_stale_runs (``medhub cache prune``)
    removes it, and leaves alone the folder of a run that is still going."""
    out = tmp_path / "out"
    proc = subprocess.Popen([sys.executable, "-c", SLOW_RUN, str(out)], cwd=tmp_path)
    deadline = time.monotonic() + 120
    while not _leftovers(tmp_path):
        assert time.monotonic() < deadline and proc.poll() is None
        time.sleep(0.05)
    assert remove_stale_runs(tmp_path) == []  # still running: kept
    proc.kill()
    proc.wait(timeout=60)
    assert len(_leftovers(tmp_path)) == 1
    removed = remove_stale_runs(tmp_path)
    assert len(removed) == 1 and _leftovers(tmp_path) == []


def test_a_run_racing_another_for_one_folder_fails_cleanly(g, tmp_path):
    """Two runs chose one empty -o folder; the one that publishes second gets one line and keeps nothing."""
    from medhub.outputs import parse_specs

    specs = parse_specs(g.get_config_by_id(101, "execution.outputs"))
    out = tmp_path / "out"
    out.mkdir()
    writer = RunWriter(out, specs)
    (out / "from_the_other_run.png").write_bytes(b"x")
    with pytest.raises(OutputPathError, match="filled by another run"):
        writer.finish({"seed": 0})
    assert _leftovers(tmp_path) == [] and sorted(p.name for p in out.iterdir()) == ["from_the_other_run.png"]


@pytest.mark.parametrize("bad", [5, 3.5, b"bytes", ""])
def test_output_path_must_be_a_path(g, tmp_path, bad):
    with pytest.raises(InvalidArgumentError, match="output_path must be a folder path"):
        g.generate(101, num_samples=2, output_path=bad, seed=0, device="cpu")


def test_an_in_memory_run_that_cannot_fit_is_refused_up_front(g):
    started = time.monotonic()
    with pytest.raises(InvalidArgumentError, match="in memory"):
        g.generate(101, num_samples=10**12, save_images=False, seed=0, device="cpu")
    assert time.monotonic() - started < 5


def test_signal_handlers_are_restored_after_a_run(g, tmp_path):
    before = signal.getsignal(signal.SIGTERM), signal.getsignal(signal.SIGHUP)
    g.generate(101, num_samples=2, output_path=tmp_path / "o", seed=0, device="cpu", progress=False)
    assert (signal.getsignal(signal.SIGTERM), signal.getsignal(signal.SIGHUP)) == before
    assert not any(p.name.startswith(".medhub-run") for p in (tmp_path / "o").iterdir())
    assert os.listdir(tmp_path) == ["o"]


@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_a_non_finite_per_sample_input_is_refused(g, bad):
    """A NaN latent for 00101 gave black images and exit 0; now one line, nothing generated."""
    latent = np.zeros((2, 100), np.float32)
    latent[1, 5] = bad
    with pytest.raises(InvalidArgumentError, match="'latent' of 00101_DCGAN_BRAIN_MRI_T1 holds NaN or infinite"):
        g.generate(101, num_samples=2, save_images=False, seed=0, device="cpu", latent=latent)
