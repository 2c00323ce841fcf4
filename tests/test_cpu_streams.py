"""Parallel CPU streams (medhub.execution.streams): several package calls at once for packages the
catalog declares thread safe, with the same samples as one call at a time. Timings belong in
``benchmarks/cpu_streams.py``, never here."""

from __future__ import annotations

import json
import threading

import numpy as np
import pytest
from conftest import entry, write_catalog, write_package

from medhub import Generators
from medhub.errors import CatalogError, GenerationError, InvalidArgumentError
from medhub.execution.streams import ParallelRunner, cpu_streams, parallel, part_size

IMG = {"name": "image", "kind": "image", "shape": [4, 4], "dtype": "uint8", "range": [0, 255]}

@pytest.fixture(autouse=True)
def one_mark_time(monkeypatch):
    """Runs made at different times are compared byte for byte: one ``created`` in their marks."""
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "1796655600")


# records how many calls of sample() overlap, which samples each call got, and its inputs
RECORDER = """
import threading
import time
import numpy as np
LOCK = threading.Lock()
STATE = {"active": 0, "peak": 0, "calls": [], "threads": set()}
FAIL_AT = []
CHUNK = 4

def load(weights_path, device):
    return {"offset": 3}

def sample(model, seeds, indices, cond=None, **inputs):
    with LOCK:
        STATE["active"] += 1
        STATE["peak"] = max(STATE["peak"], STATE["active"])
        STATE["calls"].append(list(indices))
        STATE["threads"].add(threading.get_ident())
    try:
        time.sleep(0.03)
        if any(i in FAIL_AT for i in indices):
            raise RuntimeError("boom at %s" % indices[0])
        imgs = np.stack([np.random.default_rng(s).integers(0, 256, (4, 4), dtype=np.uint8) for s in seeds])
        if cond is not None:
            imgs[:, 0, 0] = np.asarray(cond) % 256
        return {"image": imgs}
    finally:
        with LOCK:
            STATE["active"] -= 1
"""


def _generators(tmp_path, thread_safe: bool | None = True, **generate_method) -> Generators:
    write_package(tmp_path, "rec", RECORDER)
    e = entry("rec", [IMG], weights="none.bin")
    gm = e["execution"]["generate_method"]
    gm.update({"per_sample_inputs": ["cond"], **generate_method})
    if thread_safe is not None:
        gm["thread_safe"] = thread_safe
    return Generators(config_file=write_catalog(tmp_path / "c.json", {"00001_REC": e}))


def _state(g: Generators) -> dict:
    return g.get_model_executor(1).prepare().STATE


def test_part_size_shares_a_batch_at_the_block_size():
    assert part_size(256, 2, 32) == 128
    assert part_size(64, 2, 32) == 32
    assert part_size(64, 4, 32) == 32  # never below one block
    assert part_size(100, 2, 32) == 64
    assert part_size(100, 2) == 50
    assert part_size(1, 4) == 1


def test_streams_are_an_opt_in_only_for_thread_safe_packages_on_the_cpu(monkeypatch):
    monkeypatch.delenv("MEDHUB_CPU_STREAMS", raising=False)
    assert cpu_streams(True, "cpu") == 1  # nothing asked: one call at a time, torch's threads untouched
    assert cpu_streams(False, "cpu", 2) == 1
    assert cpu_streams(True, "cuda", 2) == 1 and cpu_streams(True, "cuda:0", 2) == 1
    assert cpu_streams(True, "cpu", 2) == 2
    monkeypatch.setenv("MEDHUB_CPU_STREAMS", "3")
    assert cpu_streams(True, "cpu") == 3 and cpu_streams(False, "cpu") == 1
    monkeypatch.setenv("MEDHUB_CPU_STREAMS", "")
    assert cpu_streams(True, "cpu") == 1
    with pytest.raises(InvalidArgumentError, match="cpu_streams"):
        cpu_streams(True, "cpu", 0)


def test_default_generate_leaves_torch_threads_alone_and_opt_in_restores_them(tmp_path, monkeypatch):
    """A default run never changes torch's thread count; cpu_streams=2 divides it during the run
    and restores it afterwards (also when the run fails)."""
    import torch

    monkeypatch.delenv("MEDHUB_CPU_STREAMS", raising=False)
    g = _generators(tmp_path)
    before = torch.get_num_threads()
    seen = []
    real = torch.set_num_threads
    monkeypatch.setattr(torch, "set_num_threads", lambda n: (seen.append(n), real(n)))
    g.generate(1, num_samples=8, save_images=False, seed=0, device="cpu", batch_size=4)
    assert seen == []
    run = g.generate(1, num_samples=8, output_path=tmp_path / "two", seed=0, device="cpu", batch_size=4,
                     cpu_streams=2)
    assert json.loads(run.provenance_path.read_text())["cpu_streams"] == 2
    assert torch.get_num_threads() == before and (before < 2 or seen[0] == before // 2)


@pytest.mark.parametrize("bad", ["0", "-2", "two", "1.5"])
def test_bad_stream_count_is_refused_before_anything_is_written(tmp_path, monkeypatch, bad):
    monkeypatch.setenv("MEDHUB_CPU_STREAMS", bad)
    g = _generators(tmp_path)
    with pytest.raises(InvalidArgumentError, match="MEDHUB_CPU_STREAMS"):
        g.generate(1, num_samples=4, output_path=tmp_path / "out", seed=0, device="cpu")
    assert not (tmp_path / "out").exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".out")]


def test_thread_safe_must_be_a_boolean_in_the_catalog(tmp_path):
    with pytest.raises(CatalogError, match="thread_safe"):
        _generators(tmp_path, thread_safe="yes")


@pytest.mark.parametrize("streams", ["1", "2", "3"])
def test_streams_give_the_same_samples_in_order(tmp_path, monkeypatch, streams):
    monkeypatch.setenv("MEDHUB_CPU_STREAMS", "1")
    reference = _generators(tmp_path / "a").generate(1, num_samples=23, save_images=False, seed=7, device="cpu",
                                                     batch_size=8, cond=np.arange(23))
    monkeypatch.setenv("MEDHUB_CPU_STREAMS", streams)
    g = _generators(tmp_path / "b")
    got = g.generate(1, num_samples=23, save_images=False, seed=7, device="cpu", batch_size=8, cond=np.arange(23))
    assert len(got) == 23 and all(np.array_equal(a, b) for a, b in zip(reference, got))
    assert [int(img[0, 0]) for img in got] == list(range(23))  # per-sample inputs cut with the calls
    state = _state(g)
    assert sorted(i for call in state["calls"] for i in call) == list(range(23))
    if streams == "1":
        assert state["peak"] == 1
        assert max(len(c) for c in state["calls"]) == 8
    else:
        assert 2 <= state["peak"] <= int(streams)
        # a batch of 8 shared among the streams, at the package's block size (CHUNK = 4)
        assert max(len(c) for c in state["calls"]) == 4


def test_packages_not_declared_thread_safe_get_one_call_at_a_time(tmp_path, monkeypatch):
    monkeypatch.setenv("MEDHUB_CPU_STREAMS", "4")
    for declared in (None, False):
        g = _generators(tmp_path / str(declared), thread_safe=declared)
        g.generate(1, num_samples=24, save_images=False, seed=0, device="cpu", batch_size=4)
        state = _state(g)
        assert state["peak"] == 1 and len(state["threads"]) == 1
        assert all(len(c) == 4 for c in state["calls"])


def test_files_and_provenance_with_streams(tmp_path, monkeypatch):
    monkeypatch.setenv("MEDHUB_CPU_STREAMS", "1")
    one = _generators(tmp_path / "a").generate(1, num_samples=20, output_path=tmp_path / "one", seed=2,
                                               device="cpu", batch_size=8)
    monkeypatch.setenv("MEDHUB_CPU_STREAMS", "2")
    two = _generators(tmp_path / "b").generate(1, num_samples=20, output_path=tmp_path / "two", seed=2,
                                               device="cpu", batch_size=8)
    assert [(tmp_path / "one" / f).read_bytes() for f in one.files] == [(tmp_path / "two" / f).read_bytes()
                                                                         for f in two.files]
    assert (tmp_path / "one" / "manifest.csv").read_bytes() == (tmp_path / "two" / "manifest.csv").read_bytes()
    assert json.loads(one.provenance_path.read_text())["cpu_streams"] == 1
    provenance = json.loads(two.provenance_path.read_text())
    assert provenance["cpu_streams"] == 2 and provenance["batch_size"] == 8


def test_a_failing_call_stops_the_run_and_leaves_no_folder_or_thread(tmp_path, monkeypatch):
    monkeypatch.setenv("MEDHUB_CPU_STREAMS", "2")
    g = _generators(tmp_path)
    g.get_model_executor(1).prepare().FAIL_AT.append(13)
    with pytest.raises(GenerationError, match="boom at 12"):
        g.generate(1, num_samples=40, output_path=tmp_path / "out", seed=0, device="cpu", batch_size=8)
    assert not (tmp_path / "out").exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".out")]
    assert not [t for t in threading.enumerate() if t.name.startswith("medhub-stream")]
    state = _state(g)
    assert state["active"] == 0  # every call had finished when generate raised
    assert max(i for call in state["calls"] for i in call) < 24  # calls after the failure were not started


def test_sharded_run_with_streams_equals_one_run(tmp_path, monkeypatch):
    monkeypatch.setenv("MEDHUB_CPU_STREAMS", "1")
    single = _generators(tmp_path / "a").generate(1, num_samples=15, output_path=tmp_path / "single", seed=4,
                                                  device="cpu", batch_size=8)
    monkeypatch.setenv("MEDHUB_CPU_STREAMS", "2")
    g = _generators(tmp_path / "b")
    for k in range(2):
        g.generate(1, num_samples=15, output_path=tmp_path / "sharded", seed=4, batch_size=8, shard=f"{k}/2",
                   device="cpu")
    assert _state(g)["peak"] == 2
    assert (tmp_path / "single" / "manifest.csv").read_bytes() == (tmp_path / "sharded" / "manifest.csv").read_bytes()
    assert [(tmp_path / "single" / f).read_bytes() for f in single.files] == [
        (tmp_path / "sharded" / f).read_bytes() for f in single.files]


def test_ordered_runner_cancels_what_is_left_when_the_caller_stops():
    started = []
    runner = ParallelRunner(2)
    results = runner.ordered(lambda i: started.append(i) or i, range(100))
    assert next(results) == (0, 0)
    results.close()
    runner.close()
    assert len(started) <= 3


def test_torch_threads_are_shared_out_and_restored():
    torch = pytest.importorskip("torch")
    before = torch.get_num_threads()
    torch.set_num_threads(4)
    try:
        seen = []
        with parallel(2) as runner:
            list(runner.ordered(lambda i: seen.append(torch.get_num_threads()), range(4)))
        assert seen == [2, 2, 2, 2] and torch.get_num_threads() == 4
        with pytest.raises(ZeroDivisionError), parallel(4) as runner:
            list(runner.ordered(lambda i: 1 / 0, range(4)))
        assert torch.get_num_threads() == 4
    finally:
        torch.set_num_threads(before)


SHIPPED_THREAD_SAFE = ["00101_DCGAN_BRAIN_MRI_T1", "00103_CDCGAN_BRAIN_MRI_TISSUE", "00104_PIX2PIX_BRAIN_SEG_TO_T1"]


@pytest.mark.parametrize("model_id", SHIPPED_THREAD_SAFE)
def test_shipped_packages_give_the_same_samples_on_any_number_of_streams(model_id, monkeypatch):
    pytest.importorskip("torch")
    g = Generators()
    assert g.get_model_executor(model_id).thread_safe
    kwargs = {"condition": np.array(["T1", "GM", "WM"] * 14)[:40]} if model_id.startswith("00103") else {}
    runs = []
    for streams in ("1", "2", "3"):
        monkeypatch.setenv("MEDHUB_CPU_STREAMS", streams)
        runs.append(g.generate(model_id, num_samples=40, save_images=False, seed=11, device="cpu", batch_size=32,
                               progress=False, **kwargs))

    def flat(samples):
        return [np.asarray(a) for s in samples for a in (s if isinstance(s, tuple) else (s,))]

    assert all(len(flat(r)) == len(flat(runs[0])) for r in runs)
    assert all(np.array_equal(a, b) for r in runs[1:] for a, b in zip(flat(runs[0]), flat(r)))
