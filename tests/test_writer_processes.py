"""Writer processes (issue 24, point 3): the same files as the threads, bounded, and no leftovers
(no staging folder, no live worker process) after a full disk, a signal or a worker that dies."""

from __future__ import annotations

import contextlib
import filecmp
import os
import resource
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest

from medhub.errors import OutputPathError, SettingError, WriterError
from medhub.outputs import OutputSpec, RunWriter
from medhub.outputs import runs as runs_module
from medhub.outputs import workers as workers_module
from medhub.outputs.workers import WriterPool, auto_processes, configured_processes

pytestmark = pytest.mark.skipif(not workers_module.processes_supported(), reason="writer processes need POSIX")

IMAGE = OutputSpec("image", "image", (64, 64), "uint8", range=(0, 255))
MASK = OutputSpec("mask", "mask", (64, 64), "uint8", values=(0, 1), scale=255)
ARRAY = OutputSpec("field", "image", (5, 3), "float32", format="npy")
LABEL = OutputSpec("label", "label", (), "int64")
SPECS = [IMAGE, MASK, ARRAY, LABEL]


def _batch(start: int, n: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(start)
    field = rng.standard_normal((n, 3, 5)).astype(np.float32).transpose(0, 2, 1)  # each sample Fortran-ordered
    return {"image": rng.integers(0, 256, (n, 64, 64), dtype=np.uint8),
            "mask": rng.integers(0, 2, (n, 64, 64), dtype=np.uint8), "field": field,
            "label": np.arange(start, start + n) % 3}


def _write(out: Path, processes: int, batches: int = 6, n: int = 50, **kwargs) -> RunWriter:
    writer = RunWriter(out, SPECS, processes=processes, **kwargs)
    for b in range(batches):
        writer.submit(range(b * n, (b + 1) * n), range(1000 + b * n, 1000 + (b + 1) * n), _batch(b * n, n))
    writer.finish({"seed": 0})
    return writer


def _same_folders(a: Path, b: Path) -> None:
    names = sorted(p.name for p in a.iterdir())
    assert names == sorted(p.name for p in b.iterdir())
    compared = [n for n in names if n != "provenance.json"]  # holds timestamps
    match, mismatch, errors = filecmp.cmpfiles(a, b, compared, shallow=False)
    assert (mismatch, errors) == ([], []) and len(match) == len(compared)


def _leftovers(parent: Path) -> list[str]:
    return sorted(p.name for p in parent.iterdir() if ".partial-" in p.name)


def _gone(pids: list[int], wait_s: float = 5.0) -> bool:
    """Whether none of ``pids`` exists any more (not even as a zombie)."""
    deadline = time.monotonic() + wait_s
    while any(Path(f"/proc/{pid}").exists() for pid in pids) and time.monotonic() < deadline:
        time.sleep(0.05)
    return not any(Path(f"/proc/{pid}").exists() for pid in pids)


@pytest.fixture
def started(monkeypatch) -> list[subprocess.Popen]:
    """Every writer process the test starts."""
    procs: list[subprocess.Popen] = []

    class Recorded(subprocess.Popen):
        def __init__(self, args, *rest, **kwargs):
            super().__init__(args, *rest, **kwargs)
            if args[0] == sys.executable:
                procs.append(self)

    monkeypatch.setattr(workers_module.subprocess, "Popen", Recorded)
    return procs


def _no_live_children(procs: list[subprocess.Popen]) -> bool:
    return all(p.returncode is not None for p in procs) and _gone([p.pid for p in procs])


# ---------------------------------------------------------------------------- same bytes
def test_processes_write_the_same_bytes_as_threads(tmp_path, started):
    """PNG (8 bit, a scaled mask), NPY of a Fortran-ordered batch and the manifest: byte for byte."""
    _write(tmp_path / "threads", 0)
    assert started == []
    _write(tmp_path / "procs", 2)
    _write(tmp_path / "one", 1)
    assert len(started) == 3 and _no_live_children(started)
    _same_folders(tmp_path / "threads", tmp_path / "procs")
    _same_folders(tmp_path / "threads", tmp_path / "one")
    assert np.load(tmp_path / "procs" / "000007_field.npy").flags.f_contiguous  # the layout kept, as np.save wrote it


def test_a_generate_run_is_the_same_with_processes_and_threads(tmp_path, monkeypatch):
    from medhub import Generators

    g = Generators()
    runs = {}
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "1796655600")  # one time in the marks of both runs
    for writers in ("1", "2"):
        monkeypatch.setenv("MEDHUB_WRITERS", writers)
        runs[writers] = g.generate(101, num_samples=300, output_path=tmp_path / writers, seed=3, device="cpu",
                                   batch_size=64, progress=False)
    _same_folders(tmp_path / "1", tmp_path / "2")
    assert len(runs["2"].files) == 300


def test_a_large_run_switches_to_processes_automatically(tmp_path, monkeypatch, started):
    monkeypatch.setattr(runs_module, "auto_processes", lambda: 2)
    monkeypatch.setattr(runs_module, "AUTO_MIN_FILES", 200)
    _write(tmp_path / "auto", None)  # 3 files per sample: processes from the second batch on
    assert len(started) == 2 and _no_live_children(started)
    _write(tmp_path / "threads", 0)
    _same_folders(tmp_path / "threads", tmp_path / "auto")


# ---------------------------------------------------------------------------- faults
def test_a_full_disk_with_processes_leaves_nothing(tmp_path, started):
    """A 1 MiB tmpfs (where the tests may mount one): the workers' ENOSPC becomes the usual error."""
    mount = tmp_path / "small"
    mount.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(mount)], capture_output=True).returncode:
        pytest.skip("cannot mount a tmpfs here")
    try:
        writer = RunWriter(mount / "out", [IMAGE], processes=2)
        with pytest.raises(OutputPathError, match="No space left"):
            try:
                for b in range(20):  # 1,000 incompressible 4 KiB images: more than 1 MiB
                    writer.submit(range(b * 50, b * 50 + 50), range(50), {"image": _batch(b, 50)["image"]})
                writer.finish({"seed": 0})
            except BaseException:
                writer.abort()
                raise
        assert list(mount.iterdir()) == []
        assert started and _no_live_children(started)
    finally:
        subprocess.run(["umount", str(mount)], check=False)


def test_a_worker_error_keeps_its_errno(tmp_path, monkeypatch):
    """Every machine: workers may not write files over 1 KiB (RLIMIT_FSIZE), so each write fails
    with EFBIG in the worker; the parent raises the medhub error of an OSError and keeps nothing."""
    limit, started = 1024, []

    class Limited(subprocess.Popen):
        def __init__(self, *args, **kwargs):
            kwargs["preexec_fn"] = lambda: resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))
            super().__init__(*args, **kwargs)
            started.append(self)

    monkeypatch.setattr(workers_module.subprocess, "Popen", Limited)
    writer = RunWriter(tmp_path / "out", [IMAGE], processes=2)
    with pytest.raises(OutputPathError, match="File too large") as info:
        try:
            writer.submit(range(100), range(100), {"image": _batch(0, 100)["image"]})
            writer.finish({"seed": 0})
        except BaseException:
            writer.abort()
            raise
    assert not isinstance(info.value, WriterError) and "errno" not in str(info.value)
    assert _leftovers(tmp_path) == [] and not (tmp_path / "out").exists()
    assert len(started) == 2 and _no_live_children(started)


def test_an_encoder_error_is_the_same_kind_of_error_as_with_threads(tmp_path):
    rgb16 = OutputSpec("image", "image", (4, 4, 3), "uint16", channels=3)  # no PNG writer takes 16-bit RGB
    for processes in (0, 2):
        writer = RunWriter(tmp_path / f"out{processes}", [rgb16], processes=processes)
        with pytest.raises(TypeError, match="Cannot handle this data type"):
            try:
                writer.submit(range(3), range(3), {"image": np.zeros((3, 4, 4, 3), np.uint16)})
                writer.finish({"seed": 0})
            except BaseException:
                writer.abort()
                raise
    assert _leftovers(tmp_path) == []


def test_a_killed_worker_is_a_clear_error_and_leaves_nothing(tmp_path, started):
    writer = RunWriter(tmp_path / "out", [IMAGE], processes=2)
    writer.submit(range(500), range(500), {"image": _batch(0, 500)["image"]})
    os.kill(started[0].pid, signal.SIGKILL)
    with pytest.raises(WriterError, match=rf"pid {started[0].pid}\) was killed by signal SIGKILL"):
        try:
            for b in range(1, 20):
                writer.submit(range(b * 500, b * 500 + 500), range(500), {"image": _batch(b, 500)["image"]})
            writer.finish({"seed": 0})
        except BaseException:
            writer.abort()
            raise
    assert _leftovers(tmp_path) == [] and not (tmp_path / "out").exists()
    assert _no_live_children(started)


SIGNALLED_RUN = """
import json, signal, sys
# Ctrl-C as in a terminal session: a shell that starts a job in the background (`nohup ... &`, as a CI
# runner may) leaves SIGINT ignored in its children, and Python then installs no KeyboardInterrupt handler
signal.signal(signal.SIGINT, signal.default_int_handler)
import numpy as np
from medhub.outputs import OutputSpec, RunWriter
from medhub.outputs.runs import signals_as_exit
spec = OutputSpec("image", "image", (64, 64), "uint8")
images = np.random.default_rng(0).integers(0, 256, (256, 64, 64), dtype=np.uint8)
with signals_as_exit():
    writer = RunWriter(sys.argv[1], [spec], processes=2)
    try:
        for b in range(10**6):
            writer.submit(range(b * 256, b * 256 + 256), range(256), {"image": images})
            if b == 0:
                pids = [w.proc.pid for w in writer._processes.workers]
                open(sys.argv[2], "w").write(json.dumps(pids))
    except BaseException:
        writer.abort()
        raise
"""


@pytest.mark.parametrize("how", ["SIGTERM", "Ctrl-C"])
def test_a_signal_during_a_run_with_processes_leaves_nothing(tmp_path, how):
    """SIGTERM to the run's process, or Ctrl-C (SIGINT to the whole process group, workers included:
    they ignore it and the parent stops them): no staging folder, no worker left running."""
    import json

    out, pid_file = tmp_path / "out", tmp_path / "pids.json"
    proc = subprocess.Popen([sys.executable, "-c", textwrap.dedent(SIGNALLED_RUN), str(out), str(pid_file)],
                            cwd=tmp_path, stderr=subprocess.PIPE, text=True, start_new_session=True)
    deadline = time.monotonic() + 60
    while not (pid_file.exists() and pid_file.read_text() and any(tmp_path.glob(".out.partial-*/*.png"))):
        assert time.monotonic() < deadline and proc.poll() is None, "the run never started writing"
        time.sleep(0.02)
    pids = json.loads(pid_file.read_text())
    if how == "SIGTERM":
        proc.send_signal(signal.SIGTERM)
    else:
        os.killpg(proc.pid, signal.SIGINT)
    code = proc.wait(timeout=60)
    stderr = proc.stderr.read()
    assert code == (128 + signal.SIGTERM if how == "SIGTERM" else -signal.SIGINT), stderr
    if how == "Ctrl-C":
        assert "KeyboardInterrupt" in stderr and "WriterError" not in stderr
    assert _leftovers(tmp_path) == [] and not out.exists()
    assert len(pids) == 2 and _gone(pids)


# ---------------------------------------------------------------------------- sizing and the setting
def test_the_setting(monkeypatch):
    for raw, expected in (("", None), ("0", None), ("1", 0), ("3", 3), (" 16 ", 16)):
        monkeypatch.setenv("MEDHUB_WRITERS", raw)
        assert configured_processes() == expected
    for raw in ("-1", "two", "1.5"):
        monkeypatch.setenv("MEDHUB_WRITERS", raw)
        with pytest.raises(SettingError, match=r"MEDHUB_WRITERS='.*' is not valid: give an integer >= 0 \(default 0\)"):
            configured_processes()


def test_a_bad_setting_fails_before_the_folder_is_made(tmp_path, monkeypatch):
    monkeypatch.setenv("MEDHUB_WRITERS", "many")
    with pytest.raises(SettingError):
        RunWriter(tmp_path / "out", [IMAGE])
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(("cores", "expected"), [(1, 0), (2, 0), (3, 3), (16, 16), (96, 32)])
def test_automatic_size_follows_the_cores(monkeypatch, cores, expected):
    monkeypatch.setattr(workers_module, "available_cores", lambda: cores)
    assert auto_processes() == expected


def test_the_settings_text_matches_the_constants():
    from medhub.settings import SETTINGS

    text = SETTINGS["MEDHUB_WRITERS"].meaning
    assert f"at most {workers_module.MAX_PROCESSES}" in text and f"{workers_module.AUTO_MIN_FILES} files" in text


def test_chunks_in_flight_are_bounded(tmp_path, started):
    """However fast batches come, each worker holds at most IN_FLIGHT chunks of CHUNK_FILES files."""
    folder = tmp_path / "f"
    folder.mkdir()
    pool = WriterPool(folder, [IMAGE], 2)
    peak = 0
    for b in range(20):
        pool.add(IMAGE, [f"{b:03d}_{i:03d}.png" for i in range(100)], _batch(b, 100)["image"])
        peak = max(peak, max(len(w.pending) for w in pool.workers))
    pool.finish()
    assert peak <= workers_module.IN_FLIGHT and len(list(folder.iterdir())) == 2000
    assert _no_live_children(started)


def test_the_worker_imports_no_torch():
    code = "import sys, medhub.outputs.writer_worker; print('torch' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip() \
        == "False"


# ---------------------------------------------------------------------------- the watchdog
def test_a_stopped_worker_is_a_clear_error_and_leaves_nothing(tmp_path, started, monkeypatch):
    """Issue 31, point 11: a SIGSTOPped writer (it answers nothing and reads nothing) stops the run
    after MEDHUB_WRITER_TIMEOUT seconds with a WriterError; no staging folder, no process left."""
    monkeypatch.setenv("MEDHUB_WRITER_TIMEOUT", "3")  # long enough for the healthy worker on a loaded machine
    writer = RunWriter(tmp_path / "out", [IMAGE], processes=2)
    writer.submit(range(10), range(10), {"image": _batch(0, 10)["image"]})
    writer._processes.flush()  # both workers started
    stopped = started[0]
    os.kill(stopped.pid, signal.SIGSTOP)
    began = time.monotonic()
    try:
        with pytest.raises(WriterError, match=rf"pid {stopped.pid}\) made no progress for 3 s"):
            try:
                for b in range(1, 40):
                    writer.submit(range(b * 500, b * 500 + 500), range(500), {"image": _batch(b, 500)["image"]})
                writer.finish({"seed": 0})
            except BaseException:
                writer.abort()
                raise
    finally:
        with contextlib.suppress(ProcessLookupError):  # a stopped process left by a failing test goes on
            os.kill(stopped.pid, signal.SIGCONT)
    assert time.monotonic() - began < 60
    assert _leftovers(tmp_path) == [] and not (tmp_path / "out").exists()
    assert _no_live_children(started)


def test_a_worker_stopped_after_its_last_answer_does_not_hang_the_run(tmp_path, started, monkeypatch):
    """Every file answered, then the worker stops instead of ending: the run is complete; the worker
    is killed after MEDHUB_WRITER_TIMEOUT seconds."""
    monkeypatch.setenv("MEDHUB_WRITER_TIMEOUT", "3")
    folder = tmp_path / "f"
    folder.mkdir()
    pool = WriterPool(folder, [IMAGE], 1)
    pool.add(IMAGE, [f"{i:03d}.png" for i in range(10)], _batch(0, 10)["image"])
    pool.flush()
    while pool.workers[0].pending:
        pool._receive()
    os.kill(started[0].pid, signal.SIGSTOP)
    pool.finish()
    assert len(list(folder.iterdir())) == 10 and _no_live_children(started)


@pytest.mark.slow  # a model run in a new process (about 10 s on 2 cores); the test above is the fast one
def test_a_generate_run_with_a_stopped_writer_fails_cleanly(tmp_path):
    """The same through `medhub generate` in a real process: exit code 1, one line, no output folder."""
    code = textwrap.dedent("""
        import os, signal, sys
        from medhub.outputs import workers
        started = workers.subprocess.Popen
        class Stopped(started):  # each writer process is stopped as soon as it starts
            def __init__(self, args, *rest, **kwargs):
                super().__init__(args, *rest, **kwargs)
                if "writer_worker" in str(args):
                    os.kill(self.pid, signal.SIGSTOP)
        workers.subprocess.Popen = Stopped
        from medhub.cli import main
        sys.exit(main(sys.argv[1:]))
    """)
    out = tmp_path / "out"
    env = dict(os.environ, MEDHUB_WRITERS="2", MEDHUB_WRITER_TIMEOUT="1")
    proc = subprocess.run([sys.executable, "-c", code, "generate", "101", "-n", "70", "-o", str(out), "--seed", "0",
                           "--device", "cpu", "--no-progress"], env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 1, proc.stderr
    assert proc.stderr.startswith("medhub: error: A process writing the run's files") and "made no progress" in \
        proc.stderr and proc.stderr.count("\n") == 1, proc.stderr
    assert not out.exists() and _leftovers(tmp_path) == []
