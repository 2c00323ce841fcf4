"""The runs of the generation benchmark, each in a fresh process (``generate.py`` starts them).

Not a benchmark of its own: ``python benchmarks/generate.py`` runs it as
``python benchmarks/generate_worker.py --worker raw|medhub|medigan|sweep ...``, once per run, and
reads the JSON line ``RESULT {...}`` it prints last. ``--worker medigan`` runs in medigan's venv,
so this module imports nothing of the other benchmark modules at the top.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path
from typing import Any


def _status_kb(field: str) -> int:
    with open("/proc/self/status") as fh:
        return next(int(line.split()[1]) for line in fh if line.startswith(field + ":"))


def _reset_peak() -> bool:
    """Reset the process's peak RSS (VmHWM) to the current RSS (Linux >= 4.0)."""
    try:
        with open("/proc/self/clear_refs", "w") as fh:
            fh.write("5")
        return True
    except OSError:
        return False


def package_entry(model_id: str) -> dict[str, Any]:
    """The catalog facts the raw loop needs: package folder, weights path, memory layout (read before
    the timed call, as medhub reads its catalog in ``Generators()`` before it)."""
    from medhub.config import ConfigManager

    cm = ConfigManager()
    ex = cm.config_dict[model_id]["execution"]
    folder = (cm.base_dir / ex["package_link"]).resolve()
    return {"folder": folder, "weights": str(folder / ex.get("weights", "weights.safetensors")),
            "memory_format": ex["generate_method"].get("memory_format", "contiguous")}


def load_package(model_id: str, entry: dict[str, Any]) -> Any:
    """The shipped package module, imported by file path as medhub does."""
    import importlib.util

    folder = entry["folder"]
    spec = importlib.util.spec_from_file_location(f"bench_pkg_{model_id}", folder / "__init__.py",
                                                  submodule_search_locations=[str(folder)])
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def load_network(module: Any, entry: dict[str, Any]) -> Any:
    """The package's network on the CPU (its ``load``), in the memory layout medhub runs it in
    (channels-last where the catalog declares it; benchmarks/memory_format.py)."""
    import torch

    model = module.load(entry["weights"], "cpu")
    if entry["memory_format"] == "channels_last":
        model = model.to(memory_format=torch.channels_last)
    return model


def raw_step(model_id: str, module: Any, entry: dict[str, Any]) -> Any:
    """``step(b)`` -> dict of b uint8 samples: the package's network in a bare loop, no per-sample seeds."""
    import torch

    model = load_network(module, entry)

    def to_u8(x: Any) -> Any:
        return ((x.clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8)

    if model_id.startswith("00101") or model_id.startswith("00102"):
        dim = module.LATENT_DIM

        def step(b: int) -> dict[str, Any]:
            return {"image": to_u8(model(torch.randn(b, dim)))[:, 0].numpy()}

        return step
    if model_id.startswith("00104"):
        bank, gen = model.mask_bank, model.generator
        state = {"next": 0}

        def step(b: int) -> dict[str, Any]:
            idx = torch.arange(state["next"], state["next"] + b) % bank.shape[0]
            state["next"] += b
            masks = bank[idx]
            x = gen(module.one_hot(masks))  # the package's one-hot (NCHW, faster than F.one_hot permuted)
            return {"image": to_u8(x)[:, 0].numpy(), "mask": masks.numpy()}

        return step
    if model_id.startswith("00106"):
        alpha_bar = module.cosine_alpha_bar()
        ts = module.ddim_timesteps(module.DEFAULT_STEPS)

        def step(b: int) -> dict[str, Any]:
            x = torch.randn(b, module.CHANNELS, module.IMAGE_SIZE, module.IMAGE_SIZE)
            for i, t in enumerate(ts):
                a_t = alpha_bar[t]
                a_prev = alpha_bar[ts[i + 1]] if i + 1 < len(ts) else torch.ones((), dtype=alpha_bar.dtype)
                eps = model(x, torch.tensor([t])).double()
                x0 = ((x.double() - (1 - a_t).sqrt() * eps) / a_t.sqrt()).clamp(-1, 1)
                eps = (x.double() - a_t.sqrt() * x0) / (1 - a_t).sqrt()
                x = (a_prev.sqrt() * x0 + (1 - a_prev).sqrt() * eps).float()
            return {"image": to_u8(x).permute(0, 2, 3, 1).numpy()}

        return step
    raise SystemExit(f"no raw loop written for {model_id}")


def png_outputs(model_id: str) -> list[str]:
    from medhub.config import ConfigManager
    from medhub.outputs import parse_specs

    specs = parse_specs(ConfigManager().config_dict[model_id]["execution"]["outputs"])
    return [s.name for s in specs if s.file_format == "png"]


def _count_files(folder: Path, suffix: str = ".png") -> int:
    return sum(1 for _root, _dirs, names in os.walk(folder) for name in names if name.endswith(suffix))


def worker(args: argparse.Namespace) -> dict[str, Any]:
    """One timed run in this (fresh) process; returns its measurements."""
    started = time.perf_counter()
    import torch

    torch_s = time.perf_counter() - started
    n, mode, out = args.num_samples, args.mode, Path(args.out) if args.out else None
    lib_start = time.perf_counter()
    if args.worker == "medhub":
        from medhub import Generators

        g = Generators()

        def call() -> Any:
            if mode == "png":
                return g.generate(args.model, num_samples=n, output_path=str(out), seed=0, device="cpu", progress=False)
            return g.generate(args.model, num_samples=n, save_images=False, seed=0, device="cpu", progress=False)
    elif args.worker == "medigan":
        import logging
        import warnings

        warnings.simplefilter("ignore")
        logging.disable(logging.WARNING)  # medigan logs through the root logger
        from medigan import Generators

        g = Generators()

        def call() -> Any:
            if mode == "png":
                return g.generate(args.model, num_samples=n, output_path=str(out) + "/", save_images=True)
            return g.generate(args.model, num_samples=n, save_images=False)
    elif args.worker == "raw":
        import numpy as np  # noqa: F401 - imported by medhub and medigan too

        from medhub.outputs import encode_png

        names = png_outputs(args.model)
        batch = args.batch

        entry = package_entry(args.model)

        def call() -> Any:
            step = raw_step(args.model, load_package(args.model, entry), entry)
            if mode == "png":
                out.mkdir(parents=True)
            samples: list[Any] = []
            with torch.inference_mode():
                for lo in range(0, n, batch):
                    arrays = step(min(batch, n - lo))
                    if mode == "memory":
                        keys = list(arrays)
                        if len(keys) == 1:
                            samples.extend(arrays[keys[0]])
                        else:
                            samples.extend(zip(*(arrays[k] for k in keys)))
                        continue
                    for j in range(len(arrays[names[0]])):
                        for name in names:
                            with open(out / f"{lo + j:06d}_{name}.png", "wb") as fh:
                                fh.write(encode_png(arrays[name][j]))
            return samples
    else:
        raise SystemExit(f"unknown worker {args.worker}")
    lib_s = time.perf_counter() - lib_start
    import resource

    rss_before = _status_kb("VmRSS")
    exact_peak = _reset_peak()
    usage0 = resource.getrusage(resource.RUSAGE_SELF)
    t0 = time.perf_counter()
    result = call()
    call_s = time.perf_counter() - t0
    usage1 = resource.getrusage(resource.RUSAGE_SELF)
    if exact_peak:
        peak = _status_kb("VmHWM")
    else:  # the process's high-water mark: an upper bound of the call's peak
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    if mode == "memory":
        produced = len(result)
        first = result[0] if not isinstance(result[0], tuple) else result[0][0]
        result_bytes = sum(sum(a.nbytes for a in (s if isinstance(s, tuple) else (s,))) for s in result)
        shape = list(first.shape)
    else:
        produced, result_bytes, shape = _count_files(out), 0, None
    return {"impl": args.worker, "model": args.model, "num_samples": n, "mode": mode, "torch_import_s": torch_s,
            "library_s": lib_s, "call_s": call_s, "rss_before_kb": rss_before, "peak_rss_kb": peak,
            "peak_exact": exact_peak, "call_user_s": usage1.ru_utime - usage0.ru_utime,
            "call_sys_s": usage1.ru_stime - usage0.ru_stime, "call_minor_faults": usage1.ru_minflt - usage0.ru_minflt,
            "produced": produced, "result_bytes": result_bytes, "sample_shape": shape,
            "torch_threads": torch.get_num_threads(), "batch_size": args.batch if args.worker == "raw" else None}


def sweep_worker(args: argparse.Namespace) -> dict[str, Any]:
    """Samples/s of the bare loop (no PNGs) at each batch size, median of ``--rounds`` passes."""
    import torch

    entry = package_entry(args.model)
    step = raw_step(args.model, load_package(args.model, entry), entry)
    rows = {}
    with torch.inference_mode():
        for b in args.batches:
            step(b)  # warm-up: allocator, oneDNN primitives for this shape
            rates = []
            for _ in range(args.rounds):
                t0 = time.perf_counter()
                done = 0
                while done < args.sweep_samples:
                    step(min(b, args.sweep_samples - done))
                    done += b
                rates.append(args.sweep_samples / (time.perf_counter() - t0))
            rows[str(b)] = statistics.median(rates)
    best = max(rows, key=rows.get)
    warm_pass = warm(args.model, step, int(best), args.sweep_samples, args.rounds)
    png = encoders(args.model, step)
    size = int(png["medhub encode_png"]["mean_bytes"])
    return {"model": args.model, "samples": args.sweep_samples, "rounds": args.rounds, "samples_per_s": rows,
            "best_batch_size": int(best), "torch_threads": torch.get_num_threads(), "png_encoders": png,
            "file_create": file_create(Path(args.out), size), "warm": warm_pass}


def warm(model_id: str, step: Any, batch: int, n: int, rounds: int) -> dict[str, Any]:
    """Seconds for ``n`` samples in memory, warm (after one call of each, in this one process), of
    the raw loop at ``batch`` and of medhub's ``generate`` (seed 0, its own batch size), alternated,
    median of ``rounds``: the in-memory rows' calls are each a process's first, so they include
    first-call costs (package import, weight load, oneDNN primitives, medhub's executor); this
    separates those from the steady state."""
    import torch
    from common import alternate, timed

    from medhub import Generators

    g = Generators()

    def raw() -> None:
        with torch.inference_mode():
            for lo in range(0, n, batch):
                step(min(batch, n - lo))

    def medhub() -> None:
        g.generate(model_id, num_samples=n, save_images=False, seed=0, device="cpu", progress=False)

    times = alternate({"raw": timed(raw), "medhub": timed(medhub)}, rounds)
    raw_s, medhub_s = statistics.median(times["raw"]), statistics.median(times["medhub"])
    return {"samples": n, "rounds": rounds, "raw_batch_size": batch, "raw_s": raw_s, "medhub_s": medhub_s,
            "medhub_over_raw": raw_s / medhub_s}


def file_create(scratch: Path, size: int, n: int = 1000) -> dict[str, Any]:
    """Wall and CPU time per file of creating and writing ``n`` files of ``size`` bytes in one new
    folder on the disk the runs write to, from 1 thread and from 2 threads (what the PNG rows pay
    besides encoding; some virtual disks make this the largest cost)."""
    from concurrent.futures import ThreadPoolExecutor

    data = b"\0" * size
    out: dict[str, Any] = {"bytes": size, "files": n}
    for threads in (1, 2):
        folder = scratch / f"files-{threads}"
        folder.mkdir(parents=True)

        def write(i: int, folder: Path = folder) -> None:
            with open(folder / f"{i:06d}_image.png", "wb") as fh:
                fh.write(data)

        c0, t0 = os.times(), time.perf_counter()
        with ThreadPoolExecutor(threads) as pool:
            list(pool.map(write, range(n)))
        wall, c1 = time.perf_counter() - t0, os.times()
        out[f"{threads}_thread"] = {"wall_us_per_file": wall / n * 1e6,
                                    "cpu_us_per_file": ((c1.user - c0.user) + (c1.system - c0.system)) / n * 1e6}
    return out  # the files stay until the benchmark ends (see the module docstring)


def encoders(model_id: str, step: Any, n: int = 256, rounds: int = 3) -> dict[str, Any]:
    """Per-image time and size of medhub's PNG encoder and of Pillow (``compress_level=1``, as medhub
    used before), on ``n`` of the model's images, one thread, median of ``rounds`` passes."""
    import io

    import torch
    from PIL import Image

    from medhub.outputs import encode_png

    with torch.inference_mode():
        arrays = step(n)
    images = [arrays[name][j] for name in png_outputs(model_id) for j in range(n)]

    def pillow(a: Any) -> bytes:
        buf = io.BytesIO()
        Image.fromarray(a).save(buf, format="PNG", compress_level=1)
        return buf.getvalue()

    out = {}
    for name, fn in (("medhub encode_png", encode_png), ("Pillow, compress_level=1", pillow)):
        fn(images[0])
        times = []
        for _ in range(rounds):
            t0 = time.perf_counter()
            sizes = [len(fn(a)) for a in images]
            times.append((time.perf_counter() - t0) / len(images))
        out[name] = {"us_per_image": statistics.median(times) * 1e6, "mean_bytes": sum(sizes) / len(sizes)}
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--worker", required=True, choices=("raw", "medhub", "medigan", "sweep"))
    parser.add_argument("--model", required=True, help="catalog model id")
    parser.add_argument("--num-samples", type=int, help="samples of the run")
    parser.add_argument("--mode", choices=("memory", "png"), help="samples returned in memory or written as PNGs")
    parser.add_argument("--out", help="the run's output folder (the sweep's scratch folder)")
    parser.add_argument("--batch", type=int, default=32, help="the raw loop's batch size")
    parser.add_argument("--sweep-samples", type=int, default=1024, help="samples per pass of the sweep")
    parser.add_argument("--rounds", type=int, default=3, help="passes per batch size of the sweep")
    parser.add_argument("--batches", type=int, nargs="+", default=[16, 32, 64, 128, 256, 512],
                        help="batch sizes of the sweep")
    args = parser.parse_args(argv)
    result = sweep_worker(args) if args.worker == "sweep" else worker(args)
    print("RESULT " + json.dumps(result), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
