"""Benchmark: generating N samples with medhub, against the raw-model limit and medigan 1.0.0.

Run from the repository root (medhub's venv; medigan gets a venv of its own, made on first use)::

    python benchmarks/generate.py                    # full run (about 18-20 minutes on 2 cores)
    python benchmarks/generate.py --quick            # 200 and 1,000 samples, one round (smoke test)
    python benchmarks/generate.py --json out.json    # also write the results as JSON

For each model (the shipped DCGAN ``00101_DCGAN_BRAIN_MRI_T1`` and a larger shipped model, by default
the pix2pix U-Net ``00104_PIX2PIX_BRAIN_SEG_TO_T1``), each ``num_samples`` (1,000 and 10,000) and
each output (PNG files on disk, or the samples returned in memory), three implementations run the
same network on the CPU, each in a fresh process:

* **raw**: the raw limit. A bare torch loop over the package's network (built by the package's
  ``load``, in the memory layout medhub runs it in: channels-last where the catalog declares
  ``memory_format: channels_last``) under ``torch.inference_mode`` at the best batch size (measured
  first, see below),
  random inputs drawn in one call per batch (no per-sample seeds, no checks, no fixed blocks), then
  for PNGs sequential encoding with the same encoder as medhub (``medhub.outputs.encode_png``, so
  the comparison is of the pipelines, not of the encoders; the sweep process also times that encoder
  against Pillow's), no manifest and no provenance; glibc's default malloc settings, as a user's
  own loop has them (``benchmarks/heap.py`` measures both loops with and without medhub's).
* **medhub**: ``Generators().generate(model, num_samples=N, output_path=..., seed=0, device="cpu")``
  (or ``save_images=False``), with the catalog's batch size: per-sample seeds, outputs checked
  against the spec, PNGs encoded by a pool of threads while the next batch is generated, manifest
  and provenance written, the folder published atomically; the network's weights in the layout the
  catalog declares (channels-last for the DCGAN, see ``benchmarks/memory_format.py``), glibc's
  malloc thresholds set on the first batch (``medhub.execution.heap``), and, both models being
  declared thread safe, several package calls at once on the CPU, each on a share of torch's
  threads (``medhub.execution.streams``, ``benchmarks/cpu_streams.py``).
* **medigan**: medigan 1.0.0 (``from medigan import Generators``) running the same package, laid
  out as a medigan package by ``benchmarks/build_medigan_package.py`` (the shipped folder with its
  medigan-style ``generate``, and the shipped weights), in its own venv, with medigan's workspace
  as working directory: ``Generators().generate(model, num_samples=N, output_path=...)``; medigan
  runs the package's ``generate``, which builds the network as the package defines it (contiguous)
  (medigan's default batch size of 32 for files; one call for all N in memory, as medigan does).

Every process imports torch first (medigan imports it on ``import medigan`` anyway), then its
library, then times the call. Reported for each run: the call's samples/s (from calling generate
to the last file written or the list returned: package import and weight loading included), the
end-to-end time of the whole process (interpreter start to exit, as a user running a script
sees it), and the peak resident memory during the call (``VmHWM`` after resetting it through
``/proc/self/clear_refs`` just before the call). Rounds alternate the order of the
implementations; the reported numbers are medians over the rounds. Files written by a run are
kept until the whole benchmark ends (about 230,000 files in a full run): ext4 without a journal
does not reuse an inode for one to six minutes after its file was deleted, and every file
created meanwhile scans past those inodes, so deleting a run's files would make the files of
the runs after it dearer, whoever those runs are.

Best batch size of the raw loop: before the runs, one process per model times the bare loop
(without PNGs) at batch sizes 16 to 512 and the fastest is used. The same process then times, warm
(after one call of each), the raw loop at that batch size and medhub's ``generate`` in memory,
alternated: every timed run above is its process's first call, so this shows how much of a gap
between them is first-call cost rather than the per-sample path.

Goals (issue #9): medhub at least 0.9 of the raw limit's throughput in memory and at least the raw
limit with PNGs; at least 2x medigan end to end; medhub's peak memory independent of N (the peak
growth during the call at 10,000 within 10% or 16 MB of that at 1,000, leaving out, in memory,
the returned samples themselves, which the caller holds).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
DCGAN = "00101_DCGAN_BRAIN_MRI_T1"
LARGE = "00104_PIX2PIX_BRAIN_SEG_TO_T1"
IMPLS = ("raw", "medhub", "medigan")
MODES = ("memory", "png")
SWEEP_BATCHES = (16, 32, 64, 128, 256, 512)
GOAL_RAW_MEMORY = 0.9
GOAL_RAW_PNG = 1.0
GOAL_MEDIGAN = 2.0
GOAL_MEMORY_GROWTH = 0.10
GOAL_MEMORY_SLACK_MB = 16.0
MEDIGAN_BATCH = 32  # medigan's default batch_size when saving files
MODE_LABELS = {"memory": "in memory", "png": "PNG files"}



# =========================================================================== worker side
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


def _package_entry(model_id: str) -> dict[str, Any]:
    """The catalog facts the raw loop needs: package folder, weights path, memory layout (read before
    the timed call, as medhub reads its catalog in ``Generators()`` before it)."""
    from medhub.config import ConfigManager

    cm = ConfigManager()
    ex = cm.config_dict[model_id]["execution"]
    folder = (cm.base_dir / ex["package_link"]).resolve()
    return {"folder": folder, "weights": str(folder / ex.get("weights", "weights.safetensors")),
            "memory_format": ex["generate_method"].get("memory_format", "contiguous")}


def _load_package(model_id: str, entry: dict[str, Any]) -> Any:
    """The shipped package module, imported by file path as medhub does."""
    import importlib.util

    folder = entry["folder"]
    spec = importlib.util.spec_from_file_location(f"bench_pkg_{model_id}", folder / "__init__.py",
                                                  submodule_search_locations=[str(folder)])
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def raw_step(model_id: str, module: Any, entry: dict[str, Any]) -> Any:
    """``step(b)`` -> dict of b uint8 samples: the package's network in a bare loop, no per-sample seeds."""
    import torch

    model = module.load(entry["weights"], "cpu")
    if entry["memory_format"] == "channels_last":  # the layout medhub runs it in (benchmarks/memory_format.py)
        model = model.to(memory_format=torch.channels_last)

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


def _png_outputs(model_id: str) -> list[str]:
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

        names = _png_outputs(args.model)
        batch = args.batch

        entry = _package_entry(args.model)

        def call() -> Any:
            step = raw_step(args.model, _load_package(args.model, entry), entry)
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

    entry = _package_entry(args.model)
    step = raw_step(args.model, _load_package(args.model, entry), entry)
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
    warm = _warm(args.model, step, int(best), args.sweep_samples, args.rounds)
    encoders = _encoders(args.model, step)
    size = int(encoders["medhub encode_png"]["mean_bytes"])
    return {"model": args.model, "samples": args.sweep_samples, "rounds": args.rounds, "samples_per_s": rows,
            "best_batch_size": int(best), "torch_threads": torch.get_num_threads(), "png_encoders": encoders,
            "file_create": _file_create(Path(args.out), size), "warm": warm}


def _warm(model_id: str, step: Any, batch: int, n: int, rounds: int) -> dict[str, Any]:
    """Seconds for ``n`` samples in memory, warm (after one call of each, in this one process), of
    the raw loop at ``batch`` and of medhub's ``generate`` (seed 0, its own batch size), alternated,
    median of ``rounds``: the in-memory rows' calls are each a process's first, so they include
    first-call costs (package import, weight load, oneDNN primitives, medhub's executor); this
    separates those from the steady state."""
    import torch

    from medhub import Generators

    g = Generators()

    def raw() -> None:
        with torch.inference_mode():
            for lo in range(0, n, batch):
                step(min(batch, n - lo))

    def medhub() -> None:
        g.generate(model_id, num_samples=n, save_images=False, seed=0, device="cpu", progress=False)

    times: dict[str, list[float]] = {"raw": [], "medhub": []}
    for fn in (raw, medhub):
        fn()
    for r in range(rounds):
        for name, fn in ((("raw", raw), ("medhub", medhub)) if r % 2 == 0 else (("medhub", medhub), ("raw", raw))):
            t0 = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - t0)
    raw_s, medhub_s = statistics.median(times["raw"]), statistics.median(times["medhub"])
    return {"samples": n, "rounds": rounds, "raw_batch_size": batch, "raw_s": raw_s, "medhub_s": medhub_s,
            "medhub_over_raw": raw_s / medhub_s}


def _file_create(scratch: Path, size: int, n: int = 1000) -> dict[str, Any]:
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


def _encoders(model_id: str, step: Any, n: int = 256, rounds: int = 3) -> dict[str, Any]:
    """Per-image time and size of medhub's PNG encoder and of Pillow (``compress_level=1``, as medhub
    used before), on ``n`` of the model's images, one thread, median of ``rounds`` passes."""
    import io

    import torch
    from PIL import Image

    from medhub.outputs import encode_png

    with torch.inference_mode():
        arrays = step(n)
    images = [arrays[name][j] for name in _png_outputs(model_id) for j in range(n)]

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


# =========================================================================== parent side
def _medhub_env(home: str) -> dict[str, str]:
    from _common import benchmark_env

    env = benchmark_env(home)
    env.pop("PYTHONPATH", None)
    return env


def _run(cmd: list[str], env: dict[str, str], cwd: Path, timeout: float) -> tuple[dict[str, Any], float]:
    start = time.perf_counter()
    proc = subprocess.run(cmd, env=env, cwd=cwd, capture_output=True, text=True, timeout=timeout, check=False)
    wall = time.perf_counter() - start
    if proc.returncode != 0:
        raise SystemExit(f"benchmark run failed ({proc.returncode}): {' '.join(cmd)}\n{proc.stderr[-3000:]}")
    line = next(ln for ln in reversed(proc.stdout.splitlines()) if ln.startswith("RESULT "))
    return json.loads(line[len("RESULT "):]), wall


class Runner:
    def __init__(self, python: str, medigan_python: str, workdir: Path, scratch: Path, home: str) -> None:
        self.python, self.medigan_python, self.workdir, self.scratch = python, medigan_python, workdir, scratch
        self.env = _medhub_env(home)
        self.medigan_env = {k: v for k, v in self.env.items() if not k.startswith("MEDHUB_")}
        self.medigan_env["PYTHONPATH"] = str(workdir)
        self.counter = 0

    def run(self, impl: str, model: str, n: int, mode: str, batch: int) -> dict[str, Any]:
        self.counter += 1
        out = self.scratch / f"run{self.counter}" / "out"
        out.parent.mkdir(parents=True)
        base = ["--worker", impl, "--model", model, "--num-samples", str(n), "--mode", mode, "--out", str(out),
                "--batch", str(batch)]
        # the run's files stay until the benchmark ends (see the module docstring)
        if impl == "medigan":
            row, wall = _run([self.medigan_python, str(HERE / "generate.py"), *base], self.medigan_env,
                             self.workdir, timeout=900)
        else:
            row, wall = _run([self.python, str(HERE / "generate.py"), *base], self.env, ROOT, timeout=900)
        default_out = self.workdir / "output"  # medigan's default output folder: moved aside, not deleted
        if default_out.exists():
            default_out.rename(out.parent / "medigan-default-output")
        row["wall_s"] = wall
        return row

    def floor(self, venv: str) -> float:
        """Wall time of a process that imports torch and exits: what every run pays before and after
        generating (the interpreter, the torch import, torch's teardown at exit)."""
        python, env, cwd = ((self.medigan_python, self.medigan_env, self.workdir) if venv == "medigan"
                            else (self.python, self.env, ROOT))
        start = time.perf_counter()
        subprocess.run([python, "-c", "import torch"], env=env, cwd=cwd, check=True, timeout=300)
        return time.perf_counter() - start

    def sweep(self, model: str, samples: int, rounds: int) -> dict[str, Any]:
        self.counter += 1
        scratch = self.scratch / f"sweep{self.counter}"
        cmd = [self.python, str(HERE / "generate.py"), "--worker", "sweep", "--model", model, "--sweep-samples",
               str(samples), "--rounds", str(rounds), "--batches", *map(str, SWEEP_BATCHES), "--out", str(scratch)]
        row, wall = _run(cmd, self.env, ROOT, timeout=900)  # its files stay too (see the module docstring)
        row["wall_s"] = wall
        return row


def _expected(model: str, mode: str, n: int) -> int:
    return n if mode == "memory" else n * len(_png_outputs(model))


def summarize(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """Medians per (model, num_samples, mode, impl); ratios and goals."""
    groups: dict[tuple[str, int, str, str], list[dict[str, Any]]] = {}
    for r in runs:
        groups.setdefault((r["model"], r["num_samples"], r["mode"], r["impl"]), []).append(r)
    cells: dict[str, Any] = {}
    for (model, n, mode, impl), rows in groups.items():
        call = statistics.median(r["call_s"] for r in rows)
        wall = statistics.median(r["wall_s"] for r in rows)
        growth = statistics.median((r["peak_rss_kb"] - r["rss_before_kb"]) / 1024 for r in rows)
        result_mb = statistics.median(r["result_bytes"] for r in rows) / 2**20
        cells[f"{model}|{n}|{mode}|{impl}"] = {
            "model": model, "num_samples": n, "mode": mode, "impl": impl, "rounds": len(rows),
            "call_s": call, "call_s_all": [r["call_s"] for r in rows], "wall_s": wall,
            "wall_s_all": [r["wall_s"] for r in rows], "samples_per_s": n / call, "e2e_samples_per_s": n / wall,
            "peak_rss_mb": statistics.median(r["peak_rss_kb"] for r in rows) / 1024, "peak_growth_mb": growth,
            "result_mb": result_mb, "growth_beyond_result_mb": growth - result_mb,
            "library_s": statistics.median(r["library_s"] for r in rows),
            "torch_import_s": statistics.median(r["torch_import_s"] for r in rows),
            "batch_size": rows[0].get("batch_size")}
    return cells


def summarize_floors(floors: list[dict[str, Any]],
                     runs: list[dict[str, Any]] = ()) -> tuple[dict[str, float], dict[str, float]]:
    """Median and fastest time outside the generation call, per venv.

    The median is that of the torch-only processes (``floors``). The fastest, which the bounds in
    :func:`goals` divide by since they are "at most" figures, is the least of those and of every
    raw and medhub run's process time less its call (``runs``, medhub's venv): the torch import
    varies by half a second from process to process here, so with the median, or with the few
    torch-only processes alone, a run that started fast beat its own bound."""
    venvs = sorted({f["venv"] for f in floors})
    median = {v: statistics.median(f["wall_s"] for f in floors if f["venv"] == v) for v in venvs}
    fastest = {v: min(f["wall_s"] for f in floors if f["venv"] == v) for v in venvs}
    outside = [r["wall_s"] - r["call_s"] for r in runs if r["impl"] in ("raw", "medhub")]
    if "medhub" in fastest and outside:
        fastest["medhub"] = min(fastest["medhub"], *outside)
    return median, fastest


def fastest_rates(sweeps: dict[str, Any], runs: list[dict[str, Any]] = ()) -> dict[str, float]:
    """Per model, the fastest samples/s seen for its network without files: the batch-size
    sweep's best and every in-memory raw or medhub run (each run, not the median of a cell, so that
    no run is faster than the rate its bound assumes)."""
    rates = {m: max(sw["samples_per_s"].values()) for m, sw in sweeps.items()}
    for r in runs:
        if r["mode"] == "memory" and r["impl"] in ("raw", "medhub"):
            rate = r["num_samples"] / r["call_s"]
            rates[r["model"]] = max(rates.get(r["model"], 0.0), rate)
    return rates


def goals(cells: dict[str, Any], models: list[str], sizes: list[int], floor_s: float | None = None,
          best_rates: dict[str, float] | None = None) -> list[dict[str, Any]]:
    """The issue's goals, each with its measured value.

    Two bounds come with each speed-up over medigan end to end: ``bound``, medigan's time over
    ``floor_s`` (the least time outside the generation call, :func:`summarize_floors`), the most
    any implementation could reach even generating in no time; and ``network_bound``, medigan's
    time over ``floor_s + N / best_rates[model]`` (the fastest samples/s seen for the network,
    :func:`fastest_rates`), the most an implementation could reach that runs this network on this
    machine and does everything else (seeds, files, checks) for free."""
    out = []
    best_rates = best_rates or {}

    def cell(model: str, n: int, mode: str, impl: str) -> dict[str, Any] | None:
        return cells.get(f"{model}|{n}|{mode}|{impl}")

    for model in models:
        for n in sizes:
            for mode, target in (("memory", GOAL_RAW_MEMORY), ("png", GOAL_RAW_PNG)):
                m, r = cell(model, n, mode, "medhub"), cell(model, n, mode, "raw")
                if m and r:
                    ratio = m["samples_per_s"] / r["samples_per_s"]
                    out.append({"kind": "raw", "model": model, "num_samples": n, "mode": mode, "target": target,
                                "value": ratio, "passed": ratio >= target,
                                "goal": f"{model} {n:,} {MODE_LABELS[mode]}: medhub / raw limit >= {target}"})
            for mode in MODES:
                m, g = cell(model, n, mode, "medhub"), cell(model, n, mode, "medigan")
                if m and g:
                    ratio = g["wall_s"] / m["wall_s"]
                    out.append({"kind": "medigan", "model": model, "num_samples": n, "mode": mode,
                                "target": GOAL_MEDIGAN, "value": ratio, "passed": ratio >= GOAL_MEDIGAN,
                                "bound": g["wall_s"] / floor_s if floor_s else None,
                                "network_bound": (g["wall_s"] / (floor_s + n / best_rates[model])
                                                  if floor_s and best_rates.get(model) else None),
                                "goal": f"{model} {n:,} {MODE_LABELS[mode]}: medhub / medigan end to end >= "
                                        f"{GOAL_MEDIGAN}"})
        if len(sizes) >= 2:
            lo, hi = sizes[0], sizes[-1]
            for mode in MODES:
                a, b = cell(model, lo, mode, "medhub"), cell(model, hi, mode, "medhub")
                if a and b:
                    ga, gb = a["growth_beyond_result_mb"], b["growth_beyond_result_mb"]
                    limit = max(ga * (1 + GOAL_MEMORY_GROWTH), ga + GOAL_MEMORY_SLACK_MB)
                    out.append({"kind": "memory", "model": model, "mode": mode, "target": limit, "value": gb,
                                "low": ga, "sizes": [lo, hi], "passed": gb <= limit,
                                "goal": f"{model} {MODE_LABELS[mode]}: medhub peak growth at {hi:,} (beyond the "
                                        f"returned samples) <= max(1.1 x, +{GOAL_MEMORY_SLACK_MB:g} MB) of {lo:,}"})
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--quick", action="store_true", help="200 and 1,000 samples, one round (smoke test)")
    parser.add_argument("--models", nargs="+", default=[DCGAN, LARGE], help=f"models (default {DCGAN} {LARGE})")
    parser.add_argument("--sizes", type=int, nargs="+", help="num_samples values (default 1000 10000)")
    parser.add_argument("--repeat", type=int, help="rounds for the first model (default 3; 1 quick)")
    parser.add_argument("--repeat-large", type=int, help="rounds for the other models (default 2; 1 quick)")
    parser.add_argument("--impls", nargs="+", default=list(IMPLS), choices=IMPLS)
    parser.add_argument("--json", metavar="PATH", help="write the results to this JSON file")
    parser.add_argument("--python", default=sys.executable, help="interpreter for the raw and medhub runs")
    parser.add_argument("--medigan-venv", type=Path, help="medigan's venv (default runs/bench/medigan-venv; "
                                                          "created when missing)")
    parser.add_argument("--fail-on-miss", action="store_true", help="exit with status 1 if a goal is missed")
    parser.add_argument("--output-dir", type=Path, help="where the runs write their files (default: the system's "
                                                        "temporary folder); the disk matters for the PNG rows")
    # worker mode (internal)
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--model", help=argparse.SUPPRESS)
    parser.add_argument("--num-samples", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--mode", help=argparse.SUPPRESS)
    parser.add_argument("--out", help=argparse.SUPPRESS)
    parser.add_argument("--batch", type=int, default=32, help=argparse.SUPPRESS)
    parser.add_argument("--sweep-samples", type=int, default=1024, help=argparse.SUPPRESS)
    parser.add_argument("--rounds", type=int, default=3, help=argparse.SUPPRESS)
    parser.add_argument("--batches", type=int, nargs="+", default=list(SWEEP_BATCHES), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker == "sweep":
        print("RESULT " + json.dumps(sweep_worker(args)), flush=True)
        return 0
    if args.worker:
        print("RESULT " + json.dumps(worker(args)), flush=True)
        return 0

    from _common import compile_bytecode, machine_info, print_machine, verdict, write_json
    from build_medigan_package import DEFAULT_VENV, build, ensure_venv

    sizes = args.sizes or ([200, 1_000] if args.quick else [1_000, 10_000])
    if "medigan" in args.impls and any(n % MEDIGAN_BATCH == 0 for n in sizes):
        # medigan 1.0.0 then calls the package once more for 0 samples (its loop runs num_samples // 32 + 1 times)
        parser.error(f"medigan 1.0.0 fails when num_samples is a multiple of its batch size {MEDIGAN_BATCH}; "
                     "choose other sizes")
    repeat = args.repeat or (1 if args.quick else 3)
    repeat_large = args.repeat_large or (1 if args.quick else 2)
    info = machine_info(args.python)
    print_machine(info)
    started = time.perf_counter()
    medigan_python = str(ensure_venv(args.medigan_venv or DEFAULT_VENV)) if "medigan" in args.impls else ""
    medigan_version = ""
    torch_version = subprocess.run([args.python, "-c", "import torch; print(torch.__version__)"], capture_output=True,
                                   text=True, check=True).stdout.strip()
    if args.output_dir:
        args.output_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="medhub-bench-gen-", dir=args.output_dir) as tmp:
        tmp_path = Path(tmp)
        workdir = tmp_path / "medigan-work"
        if medigan_python:
            build(args.models, workdir)
            compile_bytecode(medigan_python, [workdir])  # as medhub's and the raw loop's packages are
            medigan_version = subprocess.run([medigan_python, "-c", "import importlib.metadata as m; "
                                              "print(m.version('medigan'), m.version('torch'))"],
                                             capture_output=True, text=True, check=True).stdout.strip()
        home = tmp_path / "home"
        home.mkdir()
        runner = Runner(args.python, medigan_python, workdir, tmp_path / "scratch", str(home))
        sweeps = {}
        for model in args.models:
            samples = 1024  # per pass, for every model: fewer make the choice of the best batch size a coin toss
            sweeps[model] = runner.sweep(model, samples if not args.quick else 128, 3 if not args.quick else 1)
            rates = sweeps[model]["samples_per_s"]
            print(f"Raw loop of {model}, samples/s by batch size: "
                  + ", ".join(f"{b}: {v:.0f}" for b, v in rates.items())
                  + f"  -> best {sweeps[model]['best_batch_size']}", flush=True)
            fc = sweeps[model]["file_create"]
            print(f"  creating a {fc['bytes']:,}-byte file on the output disk: "
                  + ", ".join(f"{t} thread(s) {fc[f'{t}_thread']['wall_us_per_file']:.0f} µs wall, "
                              f"{fc[f'{t}_thread']['cpu_us_per_file']:.0f} µs CPU" for t in (1, 2)), flush=True)
        runs: list[dict[str, Any]] = []
        floors: list[dict[str, Any]] = []
        for mi, model in enumerate(args.models):
            rounds = repeat if mi == 0 else repeat_large
            best = sweeps[model]["best_batch_size"]
            for r in range(rounds):
                for venv in ("medhub", "medigan") if medigan_python else ("medhub",):
                    floors.append({"model": model, "venv": venv, "wall_s": runner.floor(venv)})
                for n in sizes:
                    for mode in MODES:
                        impls = list(args.impls)
                        k = (r + sizes.index(n) + MODES.index(mode)) % len(impls)  # rotate who goes first
                        for impl in impls[k:] + impls[:k]:
                            row = runner.run(impl, model, n, mode, best)
                            expected = _expected(model, mode, n)
                            if row["produced"] != expected:
                                raise SystemExit(f"{impl} produced {row['produced']} of {expected} ({model}, {n}, "
                                                 f"{mode})")
                            runs.append(row)
                            print(f"  round {r + 1}/{rounds} {model[:5]} {n:>6,} {mode:<6} {impl:<7} "
                                  f"call {row['call_s']:7.2f} s ({n / row['call_s']:6.0f} samples/s)  "
                                  f"process {row['wall_s']:7.2f} s  peak RSS {row['peak_rss_kb'] / 1024:6.0f} MB "
                                  f"(+{(row['peak_rss_kb'] - row['rss_before_kb']) / 1024:.0f})", flush=True)
    cells = summarize(runs)
    floor, floor_min = summarize_floors(floors, runs)
    best_rates = fastest_rates(sweeps, runs)
    checks = goals(cells, args.models, sizes, floor_min.get("medhub"), best_rates)
    print()
    header = (f"{'model':<31} {'N':>6} {'output':<9} {'impl':<7} {'samples/s':>9} {'end-to-end':>10} "
              f"{'peak RSS':>9} {'growth':>8} {'vs raw':>6} {'medigan/it':>10}")
    print(header)
    for c in cells.values():
        raw = cells.get(f"{c['model']}|{c['num_samples']}|{c['mode']}|raw")
        med = cells.get(f"{c['model']}|{c['num_samples']}|{c['mode']}|medigan")
        vs_raw = f"{c['samples_per_s'] / raw['samples_per_s']:.2f}" if raw else ""
        vs_med = f"{med['wall_s'] / c['wall_s']:.2f}" if med else ""
        print(f"{c['model']:<31} {c['num_samples']:>6,} {c['mode']:<9} {c['impl']:<7} {c['samples_per_s']:>9.0f} "
              f"{c['wall_s']:>9.2f}s {c['peak_rss_mb']:>7.0f}MB {c['peak_growth_mb']:>6.0f}MB {vs_raw:>6} "
              f"{vs_med:>10}")
    print()
    for g in checks:
        value = f"{g['value']:.1f} MB (limit {g['target']:.1f})" if g["kind"] == "memory" else f"{g['value']:.2f}"
        reach = (f"  (reachable at most: {g['network_bound']:.2f} running this network, {g['bound']:.2f} "
                 "generating in no time)" if g.get("network_bound") else "")
        print(f"Goal {g['goal']:<100} {value:>24}  {verdict(g['passed'])}{reach}")
    for venv, seconds in sorted(floor.items()):
        print(f"A process that only imports torch ({venv}'s venv): {seconds:.2f} s median, "
              f"{floor_min[venv]:.2f} s fastest")
    elapsed = time.perf_counter() - started
    print(f"\nTotal benchmark time {elapsed:.0f} s")
    result = {
        "benchmark": "generate",
        "machine": info,
        "settings": {"models": args.models, "sizes": sizes, "repeat": repeat, "repeat_large": repeat_large,
                     "output_dir": str(args.output_dir or tempfile.gettempdir()),
                     "impls": args.impls, "quick": args.quick, "sweep_batches": list(SWEEP_BATCHES),
                     "torch": torch_version, "medigan_and_torch": medigan_version},
        "sweeps": sweeps,
        "runs": runs,
        "cells": cells,
        "floors": floors,
        "floor_s": floor,
        "floor_min_s": floor_min,
        "goals": checks,
        "all_goals_passed": all(g["passed"] for g in checks),
        "elapsed_s": elapsed,
    }
    if args.json:
        write_json(args.json, result)
    return 1 if args.fail_on_miss and not result["all_goals_passed"] else 0


if __name__ == "__main__":
    sys.exit(main())
