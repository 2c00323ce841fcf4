"""Benchmark: each shipped medhub/1 model generating on one CPU stream and on parallel streams.

Run from the repository root::

    python benchmarks/cpu_streams.py                  # every shipped medhub/1 model
    python benchmarks/cpu_streams.py --models 00101_DCGAN_BRAIN_MRI_T1 --json out.json

For each model, one process runs ``ModelExecutor.generate`` in memory on the CPU (seed 0, two
catalog batches) with ``MEDHUB_CPU_STREAMS=1`` (one package call at a time on all of torch's
threads, as for a package that is not declared thread safe) and with medhub's default number of
streams (``min(4, torch.get_num_threads())`` calls at once, each on a share of the threads; see
``medhub.execution.streams``), alternating the two, median of ``--rounds`` passes after a warm-up.
The package is treated as declared thread safe for the measurement, whatever the catalog says.
It also checks what a package author must check before declaring
``execution.generate_method.thread_safe: true``: that the samples are the same bytes on one stream,
on the default streams and on 3 streams (an odd split). The catalog declares it only where it is
faster and the samples stay the same.
"""

from __future__ import annotations

import copy
import os
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

SEED = 0
ENV = "MEDHUB_CPU_STREAMS"


def _executor(model_id: str) -> Any:
    from medhub.config import ConfigManager
    from medhub.execution import ModelExecutor

    cm = ConfigManager()
    entry = copy.deepcopy(cm.config_dict[model_id])
    entry["execution"].setdefault("generate_method", {})["thread_safe"] = True
    return ModelExecutor(model_id, entry["execution"], base_dir=cm.base_dir, description=entry.get("description"))


def _arrays(samples: list[Any]) -> list[np.ndarray]:
    """Every array of every sample, flattened in order (a sample is an array or a tuple of them)."""
    out: list[np.ndarray] = []
    for s in samples:
        out.extend(np.asarray(a) for a in (s if isinstance(s, tuple) else (s,)))
    return out


def _generate(ex: Any, n: int, streams: str | None) -> tuple[float, list[np.ndarray]]:
    if streams is None:
        os.environ.pop(ENV, None)
    else:
        os.environ[ENV] = streams
    try:
        t0 = time.perf_counter()
        samples = ex.generate(num_samples=n, save_images=False, seed=SEED, device="cpu", progress=False)
        return time.perf_counter() - t0, _arrays(samples)
    finally:
        os.environ.pop(ENV, None)


def measure(model_id: str, rounds: int) -> dict[str, Any]:
    ex = _executor(model_id)
    import torch

    ex.prepare()
    threads = torch.get_num_threads()
    batch = ex.default_batch_size()
    n = 2 * batch
    default = ex.cpu_streams("cpu")
    _, one = _generate(ex, n, "1")  # warm-up of both, and their outputs
    _, many = _generate(ex, n, None)
    _, three = _generate(ex, n, "3")
    same = len(one) == len(many) == len(three) and all(
        np.array_equal(a, b) and np.array_equal(a, c) for a, b, c in zip(one, many, three))
    times: dict[str, list[float]] = {"1": [], "default": []}
    for r in range(rounds):
        order = ["1", "default"] if r % 2 == 0 else ["default", "1"]
        for name in order:
            times[name].append(_generate(ex, n, "1" if name == "1" else None)[0])
    rate = {name: n / statistics.median(t) for name, t in times.items()}
    return {"model": model_id, "batch_size": batch, "num_samples": n, "rounds": rounds, "torch_threads": threads,
            "default_streams": default, "samples_per_s": rate, "speedup": rate["default"] / rate["1"],
            "identical": bool(same)}


def shipped_models() -> list[str]:
    """Ids of the bundled (not remote) ``medhub/1`` packages."""
    from medhub.config import ConfigManager
    from medhub.execution.resolve import is_url

    return [model_id for model_id, entry in ConfigManager().config_dict.items()
            if entry["execution"].get("interface") == "medhub/1" and not is_url(entry["execution"]["package_link"])]


def _declared() -> dict[str, bool]:
    """Whether the catalog declares each model thread safe."""
    from medhub.config import ConfigManager

    return {model_id: entry["execution"].get("generate_method", {}).get("thread_safe") is True
            for model_id, entry in ConfigManager().config_dict.items()}


def main(argv: list[str] | None = None) -> int:
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from _common import machine_info, per_model_args, print_machine, write_per_model_json

    args = per_model_args(__doc__.split("\n", 1)[0], argv, "every shipped medhub/1 model", "setting")
    if os.environ.get(ENV):
        raise SystemExit(f"unset {ENV}: this benchmark sets it itself")
    import torch  # noqa: F401  (every row runs with torch imported, as a user's process has it)

    info = machine_info(sys.executable)
    print_machine(info)
    rows = []
    for model_id in args.models or shipped_models():
        row = measure(model_id, args.rounds)
        rows.append(row)
        r = row["samples_per_s"]
        print(f"{model_id:<34} {row['num_samples']:>4} samples  1 stream {r['1']:8.1f}/s  "
              f"{row['default_streams']} streams {r['default']:8.1f}/s  speed-up {row['speedup']:.2f}  "
              f"identical {row['identical']}", flush=True)
    write_per_model_json(args, "cpu_streams", info, _declared(), rows)
    return 0


if __name__ == "__main__":
    sys.exit(main())
