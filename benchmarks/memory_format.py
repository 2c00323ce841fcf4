"""Benchmark: each shipped torch model with its weights contiguous (NCHW) and channels-last.

Run from the repository root::

    python benchmarks/memory_format.py                  # all shipped medhub/1 torch models
    python benchmarks/memory_format.py --models 00101_DCGAN_BRAIN_MRI_T1 --json out.json

For each model, one process loads the package twice through medhub's executor (``memory_format``
``"contiguous"`` and ``"channels_last"``, the value a catalog entry may declare in
``execution.generate_method.memory_format``) and times ``sample_batch`` on the CPU at the catalog's
batch size, alternating the two, median of ``--rounds`` passes. It also checks what a package
author must check before declaring ``channels_last``: that the outputs are the same bytes in both
layouts (or how many values differ, and by how much), and that in channels-last a sample is still
bit-identical whatever batch it is computed in (samples 3-9 alone against the same samples inside
the full batch). The catalog declares ``channels_last`` only for the packages where it is faster
and both checks pass.
"""

from __future__ import annotations

import statistics
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

SEED = 0


def _executor(model_id: str, memory_format: str) -> Any:
    import copy

    from medhub.config import ConfigManager
    from medhub.execution import ModelExecutor

    cm = ConfigManager()
    entry = copy.deepcopy(cm.config_dict[model_id])
    entry["execution"].setdefault("generate_method", {})["memory_format"] = memory_format
    return ModelExecutor(model_id, entry["execution"], base_dir=cm.base_dir, description=entry.get("description"))


def _same(a: dict[str, np.ndarray], b: dict[str, np.ndarray]) -> tuple[int, float]:
    """(number of values that differ, largest absolute difference) over all outputs."""
    differ, largest = 0, 0.0
    for name in a:
        x, y = np.asarray(a[name]), np.asarray(b[name])
        if x.dtype.kind in "iufb":
            d = np.abs(x.astype(np.float64) - y.astype(np.float64))
            differ += int((d > 0).sum())
            largest = max(largest, float(d.max()) if d.size else 0.0)
        else:
            differ += int((x != y).sum())
    return differ, largest


def measure(model_id: str, rounds: int) -> dict[str, Any]:
    import torch

    from medhub.errors import PackageError

    executors = {fmt: _executor(model_id, fmt) for fmt in ("contiguous", "channels_last")}
    batch = executors["contiguous"].default_batch_size()
    indices = range(batch)
    try:
        executors["channels_last"].load("cpu")
    except PackageError as exc:  # not a torch module (e.g. the 3D atlas model): nothing to measure
        return {"model": model_id, "batch_size": batch, "applicable": False, "reason": str(exc)}
    outputs = {fmt: ex.sample_batch(indices, SEED, "cpu") for fmt, ex in executors.items()}  # warm-up too
    times: dict[str, list[float]] = {fmt: [] for fmt in executors}
    for r in range(rounds):
        order = list(executors) if r % 2 == 0 else list(reversed(executors))
        for fmt in order:
            t0 = time.perf_counter()
            executors[fmt].sample_batch(indices, SEED, "cpu")
            times[fmt].append(time.perf_counter() - t0)
    differ, largest = _same(outputs["contiguous"], outputs["channels_last"])
    part = executors["channels_last"].sample_batch(range(3, min(10, batch)), SEED, "cpu")
    full = {k: v[3:10] for k, v in outputs["channels_last"].items()}
    invariant = _same(part, full)[0] == 0
    rate = {fmt: batch / statistics.median(t) for fmt, t in times.items()}
    return {"model": model_id, "batch_size": batch, "applicable": True, "rounds": rounds, "torch_threads": torch.get_num_threads(),
            "samples_per_s": rate, "speedup": rate["channels_last"] / rate["contiguous"],
            "values_differing": differ, "largest_difference": largest, "batch_invariant_channels_last": invariant}


def shipped_torch_models() -> list[str]:
    """Ids of the bundled (not remote) ``medhub/1`` packages that depend on torch."""
    from medhub.config import ConfigManager
    from medhub.execution.deps import requirement_name
    from medhub.execution.resolve import is_url

    return [model_id for model_id, entry in ConfigManager().config_dict.items()
            if entry["execution"].get("interface") == "medhub/1" and not is_url(entry["execution"]["package_link"])
            and any(requirement_name(d) == "torch" for d in entry["execution"].get("dependencies", []))]


def _declared() -> dict[str, str]:
    """The layout the catalog declares for each model (``contiguous`` when it says nothing)."""
    from medhub.config import ConfigManager

    return {model_id: entry["execution"].get("generate_method", {}).get("memory_format") or "contiguous"
            for model_id, entry in ConfigManager().config_dict.items()}


def main(argv: list[str] | None = None) -> int:
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from _common import machine_info, per_model_args, print_machine, write_per_model_json

    args = per_model_args(__doc__.split("\n", 1)[0], argv, "every shipped medhub/1 torch model", "layout")

    info = machine_info(sys.executable)
    print_machine(info)
    rows = []
    for model_id in args.models or shipped_torch_models():
        row = measure(model_id, args.rounds)
        rows.append(row)
        if not row["applicable"]:
            print(f"{model_id:<34} not applicable: {row['reason']}", flush=True)
            continue
        r = row["samples_per_s"]
        print(f"{model_id:<34} batch {row['batch_size']:>4}  contiguous {r['contiguous']:8.1f}/s  channels-last "
              f"{r['channels_last']:8.1f}/s  speed-up {row['speedup']:.2f}  values differing {row['values_differing']} "
              f"(max {row['largest_difference']:g})  batch-invariant {row['batch_invariant_channels_last']}", flush=True)
    write_per_model_json(args, "memory_format", info, _declared(), rows)
    return 0


if __name__ == "__main__":
    sys.exit(main())
