"""Distributed generation on Ray: same files as one process, bounded work in flight, resume, fsspec.

The tests that need Ray skip when it is not installed (it is the optional ``ray`` extra, not part
of the test extra); they share one local Ray instance (``ray.init(num_cpus=2)``) per module.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from pathlib import Path

import pytest
from conftest import IMG8, LABEL, NUMPY_TOY, RAISES, VOLUME, entry, write_catalog, write_package

from medhub import Generators
from medhub.cli import main as cli_main
from medhub.errors import DependencyError, GenerationError, InvalidArgumentError, OutputPathError
from medhub.execution.ref import ModelRef
from medhub.outputs import read_manifest
from medhub.outputs.manifest import manifest_text
from medhub.outputs.shared import claim_run, load_done
from medhub.outputs.store import MARKERS, FsspecStore, open_store
from medhub.runs.distributed import ChunkWorker, bounded_dispatch, generate_on_ray


@pytest.fixture(autouse=True)
def one_mark_time(monkeypatch):
    """Runs made at different times are compared byte for byte: one ``created`` in their marks."""
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "1796655600")


LOAD_LOG_TOY = NUMPY_TOY + """
import os

_load = load

def load(weights_path, device):
    if os.environ.get("MEDHUB_TEST_LOAD_LOG"):  # set in the Ray workers by the test's cluster
        with open(os.environ["MEDHUB_TEST_LOAD_LOG"], "a") as fh:
            fh.write(f"{os.getpid()}\\n")
    return _load(weights_path, device)
"""

SLOW_TOY = NUMPY_TOY + """
import time

_sample = sample

def sample(model, seeds, **inputs):
    time.sleep(0.1)
    return _sample(model, seeds, **inputs)
"""

VOLUME_SPEC = [
    {"name": "volume", "kind": "volume", "shape": [6, 7, 5], "dtype": "float32", "range": [0, 1], "spacing": [1.5, 1.5, 2.0]},
    {"name": "mask", "kind": "mask", "shape": [6, 7, 5], "dtype": "uint8", "format": "nifti"},
]


@pytest.fixture
def cat(tmp_path) -> Path:
    write_package(tmp_path, "toy", NUMPY_TOY)
    write_package(tmp_path, "loadlog", LOAD_LOG_TOY)
    write_package(tmp_path, "slow", SLOW_TOY)
    write_package(tmp_path, "raises", RAISES)
    write_package(tmp_path, "volume", VOLUME)
    from conftest import MEDIGAN_TOY

    write_package(tmp_path, "medigan_toy", MEDIGAN_TOY, {"toy.bin": b"w"})
    return write_catalog(tmp_path / "c.json", {
        "00001_TOY": entry("toy", [IMG8, LABEL]),
        "00002_LOADLOG": entry("loadlog", [IMG8, LABEL]),
        "00003_SLOW": entry("slow", [IMG8, LABEL]),
        "00004_RAISES": entry("raises", [{"name": "image", "kind": "image", "shape": [4, 4], "dtype": "uint8"}]),
        "00005_VOLUME": entry("volume", VOLUME_SPEC),
        "00006_MEDIGAN": entry("medigan_toy", None, interface="medigan", model_name="toy", extension=".bin"),
    })


def sample_files(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in Path(folder).iterdir() if p.name[:6].isdigit()}


def single_run(cat: Path | None, model: int, n: int, out: Path, seed: int) -> Path:
    g = Generators(config_file=cat) if cat else Generators()
    return Path(g.generate(model, num_samples=n, output_path=out, seed=seed, progress=False).output_path)


# ---------------------------------------------------------------------------- without Ray
def test_bounded_dispatch_bounds_work_in_flight_and_balances():
    """At most 2 chunks per worker are outstanding, the chunk iterator is read lazily, every chunk
    runs once, and the faster worker does more."""
    lock = threading.Lock()
    in_flight = [0, 0]
    peak = [0, 0]
    pulled, finished = [], []

    def chunks():
        for c in range(40):
            with lock:
                # never more than 2 workers x 2 chunks ahead of what has finished
                assert len(pulled) - len(finished) <= 4
            pulled.append(c)
            yield c

    def work(worker: int, chunk: int) -> int:
        time.sleep(0.002 if worker == 0 else 0.012)
        return chunk

    with ThreadPoolExecutor(8) as pool:
        def submit(worker: int, chunk: int) -> Future:
            with lock:
                in_flight[worker] += 1
                peak[worker] = max(peak[worker], in_flight[worker])
            return pool.submit(work, worker, chunk)

        def wait_one(futures: list[Future]) -> list[Future]:
            return list(wait(futures, return_when=FIRST_COMPLETED).done)

        per_worker = [0, 0]
        for worker, chunk, fut in bounded_dispatch(2, chunks(), submit, wait_one, max_in_flight_per_worker=2):
            assert fut.result() == chunk
            with lock:
                in_flight[worker] -= 1
                finished.append(chunk)
            per_worker[worker] += 1
    assert sorted(finished) == list(range(40))
    assert peak == [2, 2]
    assert per_worker[0] > per_worker[1]


def test_bounded_dispatch_edge_cases():
    handles = iter(range(100))
    submitted = []

    def submit(worker, chunk):
        submitted.append((worker, chunk))
        return next(handles)

    assert list(bounded_dispatch(3, [], submit, lambda hs: hs[:1])) == []
    out = list(bounded_dispatch(3, ["a", "b"], submit, lambda hs: hs[:1], max_in_flight_per_worker=1))
    assert [c for _, c, _ in out] == ["a", "b"] and submitted == [(0, "a"), (1, "b")]
    with pytest.raises(InvalidArgumentError):
        list(bounded_dispatch(0, [1], submit, lambda hs: hs))


def test_missing_ray_gives_the_pip_command(cat, tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)  # `import ray` raises ImportError
    with pytest.raises(DependencyError, match=r"pip install 'medhub\[ray\]'"):
        generate_on_ray(1, 4, tmp_path / "out", seed=0, config_file=cat)
    assert not (tmp_path / "out").exists()  # failed before touching the output
    assert cli_main(["--config", str(cat), "generate", "1", "-n", "4", "-o", str(tmp_path / "o"), "--engine", "ray"]) == 1


def test_arguments_are_checked_before_ray_starts(cat, tmp_path, capsys):
    with pytest.raises(InvalidArgumentError, match="medhub/1"):
        generate_on_ray(6, 4, tmp_path / "m", seed=0, config_file=cat)
    with pytest.raises(InvalidArgumentError, match="output_path"):
        generate_on_ray(1, 4, None, seed=0, config_file=cat)  # type: ignore[arg-type]
    for bad in ({"num_workers": 0}, {"chunk_size": -1}, {"max_in_flight_per_worker": 0}, {"num_cpus_per_worker": 0}):
        with pytest.raises(InvalidArgumentError):
            generate_on_ray(1, 4, tmp_path / "x", seed=0, config_file=cat, **bad)
    with pytest.raises(InvalidArgumentError, match="storage_options"):
        open_store(tmp_path / "x", {"anon": True})
    assert not (tmp_path / "x").exists()
    base = ["--config", str(cat), "generate", "1", "-n", "4", "--seed", "0"]
    assert cli_main(base + ["--engine", "ray"]) == 2
    assert "needs -o" in capsys.readouterr().err
    assert cli_main(base + ["-o", str(tmp_path / "c"), "--engine", "ray", "--shard", "0/2"]) == 2
    assert cli_main(base + ["-o", str(tmp_path / "c"), "--workers", "2"]) == 2
    assert "--engine ray only" in capsys.readouterr().err


@pytest.mark.parametrize("scheme", ["memory", "file"])
def test_fsspec_store_writes_the_single_run_bytes(cat, tmp_path, scheme):
    """The worker's writing path through fsspec, in-process (memory:// is private to a process):
    PNG and NIfTI files and the manifest are those of a single-process run; resume verifies sizes."""
    pytest.importorskip("fsspec")
    url = f"memory://medhub-test/{tmp_path.name}" if scheme == "memory" else (tmp_path / "file-out").as_uri()
    g = Generators(config_file=cat)
    for model, n in ((1, 7), (5, 3)):
        target = f"{url}-{model}"
        store = open_store(target)
        assert isinstance(store, FsspecStore)
        executor = g.get_model_executor(model)
        executor.prepare()
        claim_run(store, executor.run_record(4, n, engine="ray"))
        worker = ChunkWorker(worker_config(cat, executor, target, seed=4, batch_size=2))
        rows = worker.run(list(range(n // 2, n))) + worker.run(list(range(n // 2)))
        assert sorted(r["index"] for r in rows) == list(range(n))
        done = load_done(store, n)
        assert sorted(done) == list(range(n))
        store.write_bytes("manifest.csv", manifest_text(executor.specs, (done[i] for i in range(n))).encode())
        single = single_run(cat, model, n, tmp_path / f"single-{model}", seed=4)
        expected = sample_files(single)
        assert len(expected) == n * (1 if model == 1 else 2)
        assert {name: store.read_bytes(name) for name in expected} == expected
        assert store.read_bytes("manifest.csv") == (single / "manifest.csv").read_bytes()
        first = sorted(expected)[0]
        store.write_bytes(first, b"cut")  # a truncated file no longer counts as done
        assert sorted(load_done(store, n)) == list(range(1, n))
        if scheme == "memory":
            store.fs.rm(store.path, recursive=True)


def worker_config(cat: Path, executor, output: str, seed: int, batch_size: int) -> dict:
    from medhub.execution.marking import run_marker

    model = ModelRef(executor.model_id, executor.execution_config, {}, "1", str(cat.parent))
    return {"model": model.__dict__, "install_dependencies": False, "trust_remote_code": False, "device": "cpu",
            "output": output, "storage_options": {}, "seed": seed, "batch_size": batch_size, "kwargs": {},
            "io_threads": 2, "marker": run_marker(executor, seed, "cpu", {})}


def test_workers_and_gpus_follow_the_cluster():
    """One worker per GPU (1 GPU each) when the cluster has GPUs and the model uses torch, else one
    per CPU; device='cpu' forces CPU workers; impossible requests fail instead of waiting."""
    from types import SimpleNamespace

    from medhub.errors import DeviceError
    from medhub.runs.distributed import _plan_resources

    gpu = SimpleNamespace(cluster_resources=lambda: {"CPU": 32.0, "GPU": 4.0})
    cpu = SimpleNamespace(cluster_resources=lambda: {"CPU": 6.0})
    assert _plan_resources(gpu, "auto", True, None, 1, None) == (4, 1.0)
    assert _plan_resources(gpu, "cuda", True, None, 1, 0.5) == (8, 0.5)
    assert _plan_resources(gpu, "auto", False, None, 1, None) == (32, 0.0)  # numpy model: CPU workers
    assert _plan_resources(gpu, "cpu", True, 3, 2, None) == (3, 0.0)
    assert _plan_resources(cpu, "auto", True, None, 2, None) == (3, 0.0)
    with pytest.raises(DeviceError, match="cuda"):
        _plan_resources(cpu, "cuda", True, None, 1, None)
    with pytest.raises(DeviceError, match="own"):
        _plan_resources(gpu, "cuda:1", True, None, 1, None)
    with pytest.raises(InvalidArgumentError, match="5 workers need 5 CPUs and 5 GPUs"):
        _plan_resources(gpu, "auto", True, 5, 1, None)


def test_claiming_an_output(tmp_path):
    run = {"model_id": "m", "seed": 1, "num_samples": 4}
    other = tmp_path / "other"
    other.mkdir()
    (other / "mine.txt").write_text("x")
    with pytest.raises(OutputPathError, match="not empty"):
        claim_run(open_store(other), run)
    assert sorted(p.name for p in other.iterdir()) == ["mine.txt"]  # left as it was
    store = open_store(tmp_path / "run")
    claim_run(store, run)
    claim_run(store, run)  # the same run again: fine (resume)
    assert (tmp_path / "run" / MARKERS).is_dir()
    with pytest.raises(OutputPathError, match="another run"):
        claim_run(store, dict(run, seed=2))


# ---------------------------------------------------------------------------- on a local Ray instance
# Starting and stopping the Ray instance and its workers takes 15-25 s on 2 cores: these tests run with
# ``-m slow``; the tests above (the chunk worker, the store, the dispatch, the argument checks) keep
# the distributed path in the default run.
@pytest.fixture(scope="module")
def ray_cluster(tmp_path_factory):
    ray = pytest.importorskip("ray")
    if ray.is_initialized():  # pragma: no cover - only when something else left Ray running
        ray.shutdown()
    load_log = tmp_path_factory.mktemp("loads") / "loads.txt"
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False,
             runtime_env={"env_vars": {"MEDHUB_TEST_LOAD_LOG": str(load_log)}})
    yield {"ray": ray, "load_log": load_log, "address": ray.get_runtime_context().gcs_address}
    ray.shutdown()


@pytest.mark.slow
def test_two_ray_workers_write_the_single_run_byte_for_byte(ray_cluster, tmp_path):
    """Shipped model 101: 2 workers, 5 chunks of 8; same names, bytes and manifest as one process;
    both workers took part; nothing missing, duplicated or left over."""
    single = single_run(None, 101, 40, tmp_path / "single", seed=3)
    run = Generators().generate_on_ray(101, 40, tmp_path / "ray", seed=3, num_workers=2, chunk_size=8, progress=False)
    out = Path(run.output_path)
    assert sample_files(out) == sample_files(single) and len(sample_files(out)) == 40
    assert (out / "manifest.csv").read_bytes() == (single / "manifest.csv").read_bytes()
    assert run.files == [f"{i:06d}_image.png" for i in range(40)]
    prov = json.loads((out / "provenance.json").read_text())
    info = prov["ray"]
    assert prov["engine"] == "ray" and prov["seed"] == 3 and prov["files"] == 40
    assert info["num_workers"] == 2 and info["chunks"] == 5 and info["max_in_flight_per_worker"] == 2
    assert min(w["samples"] for w in info["workers"]) >= 16 and sum(w["samples"] for w in info["workers"]) == 40
    assert len({w["pid"] for w in info["workers"]}) == 2
    assert not list(out.glob(".*.tmp")) and len(list((out / MARKERS).iterdir())) == 5


@pytest.mark.slow
def test_one_model_load_per_worker_and_fsspec_url(ray_cluster, cat, tmp_path):
    """12 chunks on 2 workers load the model twice (once per worker); a file:// URL goes through
    fsspec in the workers and gives the single run's files."""
    pytest.importorskip("fsspec")
    log: Path = ray_cluster["load_log"]
    log.write_text("")
    url = (tmp_path / "ray").as_uri()
    run = generate_on_ray(2, 24, url, seed=8, num_workers=2, chunk_size=2, config_file=cat, progress=False)
    assert run.output_path == url and str(run.manifest_path) == url + "/manifest.csv"
    loads = log.read_text().split()
    assert len(loads) == 2 and len(set(loads)) == 2
    single = single_run(cat, 2, 24, tmp_path / "single", seed=8)
    assert sample_files(tmp_path / "ray") == sample_files(single)
    assert (tmp_path / "ray" / "manifest.csv").read_bytes() == (single / "manifest.csv").read_bytes()


@pytest.mark.slow
def test_an_interrupted_run_is_completed_by_running_it_again(ray_cluster, cat, tmp_path):
    """Chunks already written (as by a run that died) are kept; a missing and a corrupted file are
    regenerated; the folder then equals a single run."""
    g = Generators(config_file=cat)
    out = tmp_path / "out"
    with pytest.raises(GenerationError, match="boom in batch 2"):
        generate_on_ray(4, 12, tmp_path / "fails", seed=1, num_workers=1, chunk_size=2, batch_size=2,
                        get_executor=g.get_model_executor)
    assert len(sample_files(tmp_path / "fails")) == 2 and not (tmp_path / "fails" / "manifest.csv").exists()

    executor = g.get_model_executor(1)
    executor.prepare()
    claim_run(open_store(out), executor.run_record(6, 20, engine="ray"))  # as a run that died after two chunks
    worker = ChunkWorker(worker_config(cat, executor, str(out), seed=6, batch_size=4))
    worker.run(list(range(0, 8)))
    worker.run(list(range(12, 16)))
    (out / "000003_image.png").write_bytes(b"corrupt")
    (out / "000013_image.png").unlink()
    (out / ".000014_image.png.deadbeef.tmp").write_bytes(b"left by a killed writer")
    run = g.generate_on_ray(1, 20, out, seed=6, num_workers=2, chunk_size=3, progress=False)
    single = single_run(cat, 1, 20, tmp_path / "single", seed=6)
    assert sample_files(out) == sample_files(single)
    assert (out / "manifest.csv").read_bytes() == (single / "manifest.csv").read_bytes()
    prov = json.loads(Path(run.provenance_path).read_text())
    assert prov["ray"]["resumed_samples"] == 10 and sum(w["samples"] for w in prov["ray"]["workers"]) == 10
    assert not list(out.glob(".*.tmp"))
    with pytest.raises(OutputPathError, match="another run"):
        g.generate_on_ray(1, 20, out, seed=7, progress=False)
    again = g.generate_on_ray(1, 20, out, seed=6, progress=False)  # complete: nothing to do
    assert again.manifest_path == out / "manifest.csv"
    assert json.loads(Path(again.provenance_path).read_text())["ray"]["resumed_samples"] == 10


@pytest.mark.slow
def test_more_workers_than_the_cluster_holds_is_refused(ray_cluster, cat, tmp_path):
    with pytest.raises(InvalidArgumentError, match="3 workers need 3 CPUs"):
        generate_on_ray(1, 8, tmp_path / "o", seed=0, num_workers=3, config_file=cat)
    from medhub.errors import DeviceError

    with pytest.raises(DeviceError, match="cuda"):
        generate_on_ray(1, 8, tmp_path / "o2", seed=0, device="cuda", config_file=cat)


@pytest.mark.slow
def test_cli_engine_ray(ray_cluster, cat, tmp_path, capsys):
    out = tmp_path / "cli"
    assert cli_main(["--config", str(cat), "generate", "1", "-n", "9", "-o", str(out), "--seed", "2",
                     "--engine", "ray", "--workers", "2", "--no-progress", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["num_samples"] == 9 and data["manifest"] == str(out / "manifest.csv")
    assert [int(r["index"]) for r in read_manifest(out)] == list(range(9))
    assert sample_files(out) == sample_files(single_run(cat, 1, 9, tmp_path / "single", seed=2))


@pytest.mark.slow
def test_a_killed_driver_is_resumed(ray_cluster, cat, tmp_path):
    """SIGKILL a driver process mid-run (its workers die with it); the same call completes the set."""
    out = tmp_path / "out"
    code = ("import sys; from medhub.distributed import generate_on_ray;"
            "generate_on_ray(3, 60, sys.argv[2], seed=5, num_workers=2, chunk_size=2, batch_size=2,"
            " config_file=sys.argv[1], progress=False, address=sys.argv[3])")
    env = dict(os.environ, RAY_ADDRESS=ray_cluster["address"])
    victim = subprocess.Popen([sys.executable, "-c", code, str(cat), str(out), ray_cluster["address"]], env=env)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and len(sample_files(out) if out.exists() else {}) < 12:
        time.sleep(0.05)
    victim.send_signal(signal.SIGKILL)
    victim.wait()
    before = len(sample_files(out))
    assert 12 <= before < 60 and not (out / "manifest.csv").exists()
    run = generate_on_ray(3, 60, out, seed=5, num_workers=2, chunk_size=4, config_file=cat, progress=False)
    assert sample_files(out) == sample_files(single_run(cat, 3, 60, tmp_path / "single", seed=5))
    assert [int(r["index"]) for r in read_manifest(out)] == list(range(60))
    assert json.loads(Path(run.provenance_path).read_text())["ray"]["resumed_samples"] >= 8
