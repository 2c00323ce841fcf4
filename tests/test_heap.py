"""medhub.execution.heap: glibc malloc thresholds for generation runs, and when medhub leaves them alone."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import pytest
from conftest import REPO

from medhub import Generators
from medhub.execution import heap

linux_glibc = pytest.mark.skipif(not sys.platform.startswith("linux") or heap._libc() is None,
                                 reason="the heap settings apply to glibc's malloc on Linux")

# Allocates and frees 15 MB in three arrays, 20 times, after a warm-up; prints the minor page faults
# of the timed part. glibc's defaults hand the freed top of the heap back to the kernel each time.
CHURN = textwrap.dedent("""
    import json, resource, sys
    import numpy as np
    from medhub.execution import heap
    {before}
    def churn():
        for _ in range(20):
            a = np.ones(6 << 20, np.uint8); b = np.ones(6 << 20, np.uint8); c = np.ones(3 << 20, np.uint8)
            del a, b, c
    churn()
    f0 = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    churn()
    print(json.dumps({{"faults": resource.getrusage(resource.RUSAGE_SELF).ru_minflt - f0,
                       "tuned": heap.heap_tuning()}}))
""")


def _run(code: str, **env: str) -> dict:
    clean = {k: v for k, v in os.environ.items() if k not in ("MEDHUB_MALLOC_TUNING", "GLIBC_TUNABLES", "LD_PRELOAD")}
    clean.update(env)
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, env=clean, capture_output=True, text=True,
                         check=True, timeout=300)
    return json.loads(out.stdout.strip().splitlines()[-1])


@linux_glibc
def test_tuned_heap_reuses_freed_memory_instead_of_faulting_it_in_again():
    default = _run(CHURN.format(before=""))
    tuned = _run(CHURN.format(before="assert heap.tune_heap()"))
    assert default["tuned"] is None and tuned["tuned"] is True
    # 20 rounds x 15 MB: thousands of pages faulted in again with glibc's defaults, almost none tuned
    assert default["faults"] > 10_000, default
    assert tuned["faults"] < default["faults"] / 10, (tuned, default)


@linux_glibc
def test_generate_tunes_the_heap_unless_switched_off(toy_catalog):
    code = textwrap.dedent(f"""
        import json
        from medhub import Generators
        from medhub.execution import heap
        before = heap.heap_tuning()
        Generators(config_file={str(toy_catalog)!r}).generate("00900_NUMPY_TOY", num_samples=3, save_images=False, seed=1)
        print(json.dumps({{"before": before, "after": heap.heap_tuning()}}))
    """)
    assert _run(code) == {"before": None, "after": True}
    assert _run(code, MEDHUB_MALLOC_TUNING="0") == {"before": None, "after": False}
    assert _run(code, GLIBC_TUNABLES="glibc.malloc.arena_max=2") == {"before": None, "after": False}


@pytest.mark.parametrize(("env", "reason"), [
    ({"MEDHUB_MALLOC_TUNING": "off"}, "MEDHUB_MALLOC_TUNING is off"),
    ({"GLIBC_TUNABLES": "glibc.malloc.trim_threshold=1000"}, "GLIBC_TUNABLES sets glibc.malloc tunables"),
    ({"MALLOC_ARENA_MAX": "2"}, "MALLOC_ARENA_MAX is set"),
    ({"LD_PRELOAD": "/usr/lib/x86_64-linux-gnu/libjemalloc.so.2"}, "jemalloc is preloaded"),
])
def test_user_choices_of_allocator_are_respected(monkeypatch, env, reason):
    monkeypatch.setattr(sys, "platform", "linux")
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    assert heap._skip_reason() == reason


def test_no_reason_to_skip_by_default_on_linux(monkeypatch):
    monkeypatch.setattr(sys, "platform", "linux")
    for name in ("MEDHUB_MALLOC_TUNING", "GLIBC_TUNABLES", "LD_PRELOAD", *heap._USER_MALLOC_ENV):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("GLIBC_TUNABLES", "glibc.rtld.optional_static_tls=512")  # not a malloc tunable
    assert heap._skip_reason() is None


def test_left_alone_off_linux(monkeypatch):
    monkeypatch.setattr(sys, "platform", "darwin")
    monkeypatch.delenv("MEDHUB_MALLOC_TUNING", raising=False)
    assert heap._skip_reason() == "not Linux (darwin)"


def test_every_run_hands_free_memory_back_even_when_it_fails(toy_catalog, tmp_path, monkeypatch):
    from medhub.errors import GenerationError
    from medhub.execution import executor

    calls = []
    monkeypatch.setattr(executor, "release_heap", lambda: calls.append(1))
    g = Generators(config_file=str(toy_catalog))
    g.generate("00900_NUMPY_TOY", num_samples=3, save_images=False, seed=1)
    assert calls == [1]
    g.generate("00900_NUMPY_TOY", num_samples=3, output_path=str(tmp_path / "run"), seed=1)
    assert calls == [1, 1]
    with pytest.raises(GenerationError):
        g.generate("00903_RAISES", num_samples=4, save_images=False, seed=1, batch_size=2)  # fails in batch 2
    assert calls == [1, 1, 1]
    g.generate("00900_NUMPY_TOY", num_samples=4, output_path=str(tmp_path / "shards"), seed=1, shard="1/2")
    assert calls == [1, 1, 1, 1]
