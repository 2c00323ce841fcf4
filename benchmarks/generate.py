"""Benchmark: generating N samples with medhub, against the raw-model limit and medigan 1.0.0.

Run from the repository root (medhub's venv; medigan gets a venv of its own, made on first use)::

    python benchmarks/generate.py                    # full run (about 18-20 minutes on 2 cores)
    python benchmarks/generate.py --quick            # 200 and 1,000 samples, one round (smoke test)
    python benchmarks/generate.py --json out.json    # also write the results as JSON
    python benchmarks/generate.py --impls raw medhub --models 00101_DCGAN_BRAIN_MRI_T1 --sizes 100
                                                     # no medigan venv, one model, one size

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
  against Pillow's), no manifest and no provenance.
* **medhub**: ``Generators().generate(model, num_samples=N, output_path=..., seed=0, device="cpu")``
  (or ``save_images=False``), with the catalog's batch size: per-sample seeds, outputs checked
  against the spec, PNGs encoded by a pool of threads while the next batch is generated, manifest
  and provenance written, the folder published atomically; the network's weights in the layout the
  catalog declares (channels-last for the DCGAN, see ``benchmarks/memory_format.py``); one package
  call at a time, as by default (parallel CPU streams are an opt-in, ``benchmarks/cpu_streams.py``).
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

import json
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from functools import partial
from pathlib import Path
from typing import Any

from common import HERE, ROOT, alternate, benchmark_env, compile_bytecode, finish, machine_info, parser
from report import Goal, Run, Section, fill, short, table

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
WORKER = HERE / "generate_worker.py"


# =========================================================================== running
def run_process(cmd: list[str], env: dict[str, str], cwd: Path, timeout: float) -> tuple[dict[str, Any], float]:
    """Run one worker process; returns its ``RESULT`` line (parsed) and its wall time."""
    start = time.perf_counter()
    proc = subprocess.run(cmd, env=env, cwd=cwd, capture_output=True, text=True, timeout=timeout, check=False)
    wall = time.perf_counter() - start
    if proc.returncode != 0:
        raise SystemExit(f"benchmark run failed ({proc.returncode}): {' '.join(cmd)}\n{proc.stderr[-3000:]}")
    line = next(ln for ln in reversed(proc.stdout.splitlines()) if ln.startswith("RESULT "))
    return json.loads(line[len("RESULT "):]), wall


class Runner:
    """Starts the runs (``generate_worker.py``), each in a fresh process; keeps every run's files."""

    def __init__(self, python: str, medigan_python: str, workdir: Path, scratch: Path, home: str) -> None:
        self.python, self.medigan_python, self.workdir, self.scratch = python, medigan_python, workdir, scratch
        self.env = benchmark_env(home)
        self.env.pop("PYTHONPATH", None)
        self.medigan_env = {k: v for k, v in self.env.items() if not k.startswith("MEDHUB_")}
        self.medigan_env["PYTHONPATH"] = str(workdir)
        self.counter = 0

    def run(self, impl: str, model: str, n: int, mode: str, batch: int) -> dict[str, Any]:
        """One timed run; its files stay until the benchmark ends (see the module docstring)."""
        self.counter += 1
        out = self.scratch / f"run{self.counter}" / "out"
        out.parent.mkdir(parents=True)
        base = ["--worker", impl, "--model", model, "--num-samples", str(n), "--mode", mode, "--out", str(out),
                "--batch", str(batch)]
        if impl == "medigan":
            row, wall = run_process([self.medigan_python, str(WORKER), *base], self.medigan_env, self.workdir,
                                    timeout=900)
        else:
            row, wall = run_process([self.python, str(WORKER), *base], self.env, ROOT, timeout=900)
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
        """The raw loop's batch-size sweep, warm comparison, PNG encoders and file creation probe."""
        self.counter += 1
        cmd = [self.python, str(WORKER), "--worker", "sweep", "--model", model, "--sweep-samples", str(samples),
               "--rounds", str(rounds), "--batches", *map(str, SWEEP_BATCHES),
               "--out", str(self.scratch / f"sweep{self.counter}")]
        row, wall = run_process(cmd, self.env, ROOT, timeout=900)  # its files stay too (see the module docstring)
        row["wall_s"] = wall
        return row


def expected_files(model: str, mode: str, n: int) -> int:
    """What a run of ``n`` samples produces: ``n`` samples in memory, a PNG per image output in files."""
    from generate_worker import png_outputs

    return n if mode == "memory" else n * len(png_outputs(model))


def checked_run(runner: Runner, impl: str, model: str, n: int, mode: str, batch: int, label: str) -> dict[str, Any]:
    """One run, checked for the number of samples or files it made, and printed."""
    row = runner.run(impl, model, n, mode, batch)
    if row["produced"] != expected_files(model, mode, n):
        raise SystemExit(f"{impl} produced {row['produced']} ({model}, {n}, {mode})")
    print(f"  {label} {model[:5]} {n:>6,} {mode:<6} {impl:<7} call {row['call_s']:7.2f} s  "
          f"process {row['wall_s']:7.2f} s", flush=True)
    return row


# =========================================================================== results
def summarize(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """Medians per cell (model, num_samples, mode, impl), keyed ``model|n|mode|impl``."""
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


def cell_rows(cells: dict[str, Any], models: list[str], sizes: list[int]) -> Iterator[tuple[str, int, str, dict]]:
    """``(model, n, mode, {impl: cell or None})`` for every row of the tables, in their order."""
    for model in models:
        for n in sizes:
            for mode in MODES:
                yield model, n, mode, {impl: cells.get(f"{model}|{n}|{mode}|{impl}") for impl in IMPLS}


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
    out: list[dict[str, Any]] = []
    best_rates = best_rates or {}
    for model, n, mode, c in cell_rows(cells, models, sizes):
        m, r, g = c["medhub"], c["raw"], c["medigan"]
        label = f"{model} {n:,} {MODE_LABELS[mode]}"
        if m and r:
            target = GOAL_RAW_MEMORY if mode == "memory" else GOAL_RAW_PNG
            ratio = m["samples_per_s"] / r["samples_per_s"]
            out.append({"kind": "raw", "model": model, "num_samples": n, "mode": mode, "target": target,
                        "value": ratio, "passed": ratio >= target, "goal": f"{label}: medhub / raw limit >= {target}"})
        if m and g:
            ratio = g["wall_s"] / m["wall_s"]
            out.append({"kind": "medigan", "model": model, "num_samples": n, "mode": mode, "target": GOAL_MEDIGAN,
                        "value": ratio, "passed": ratio >= GOAL_MEDIGAN,
                        "bound": g["wall_s"] / floor_s if floor_s else None,
                        "network_bound": (g["wall_s"] / (floor_s + n / best_rates[model])
                                          if floor_s and best_rates.get(model) else None),
                        "goal": f"{label}: medhub / medigan end to end >= {GOAL_MEDIGAN}"})
    for model in models:
        for mode in MODES if len(sizes) >= 2 else ():
            lo, hi = sizes[0], sizes[-1]
            a, b = cells.get(f"{model}|{lo}|{mode}|medhub"), cells.get(f"{model}|{hi}|{mode}|medhub")
            if a and b:
                ga, gb = a["growth_beyond_result_mb"], b["growth_beyond_result_mb"]
                limit = max(ga * (1 + GOAL_MEMORY_GROWTH), ga + GOAL_MEMORY_SLACK_MB)
                out.append({"kind": "memory", "model": model, "mode": mode, "target": limit, "value": gb,
                            "low": ga, "sizes": [lo, hi], "passed": gb <= limit,
                            "goal": f"{model} {MODE_LABELS[mode]}: medhub peak growth at {hi:,} (beyond the "
                                    f"returned samples) <= max(1.1 x, +{GOAL_MEMORY_SLACK_MB:g} MB) of {lo:,}"})
    return out


# =========================================================================== report
REPORT = """
    ## Generating samples: raw limit, medhub, medigan

    `{command}` ({when}; torch {torch}; medigan and its torch {medigan}; rounds: {rounds}; total
    {minutes:.1f} min). Every run is a fresh process on the CPU that imports torch, then its library,
    then times one call that makes all N samples:

    * **raw**: the raw limit, a bare torch loop over the package's network (built by its `load`, in the
      memory layout medhub runs it in: channels-last where the catalog declares it) under
      `torch.inference_mode` at the best batch size of the sweep below, inputs drawn in one call per
      batch, then, for files, sequential PNG encoding with medhub's own encoder
      (`medhub.outputs.encode_png`, so that the PNG rows compare pipelines, not encoders; see the encoder
      table below); no per-sample seeds, checks, manifest or provenance.
    * **medhub**: `Generators().generate(model, num_samples=N, output_path=..., seed=0, device="cpu")`
      (or `save_images=False`) at the catalog's batch size: per-sample seeds, every batch checked against
      the outputs spec, PNGs encoded by a thread pool while the next batch is generated, manifest and
      provenance, atomic publication of the folder; the network's weights in the layout the catalog
      declares (see the memory-layout section); one package call at a time, as by default (parallel CPU
      streams are an opt-in, see their section).
    * **medigan**: medigan 1.0.0 in its own venv running the same package (the shipped folder, laid out
      by `benchmarks/build_medigan_package.py` as a medigan package with the shipped weights, called
      through its medigan-style `generate`): `Generators().generate(model, num_samples=N,
      output_path=...)`, medigan's default batch of 32 for files (the package loads its weights on every
      call, builds the network in its default, contiguous layout, and writes PNGs with Pillow's default
      compression), one call for all N in memory.

    *samples/s* is N over the call's time (package import and weight loading included); *end to end* is
    the whole process, interpreter start to exit, as a user running a script waits for it. Peak memory
    is the resident set's high-water mark during the call (`VmHWM`, reset just before it); *growth* is
    that peak less the resident set before the call.

    {speed}
"""

BOUND = """
    A process that only imports torch and exits takes {floor:.2f} s in medhub's venv{medigan_floor} (median,
    one per round): every run above pays it; the least time outside the generation call seen in medhub's
    venv (that process, or a raw or medhub run's process time less its call) is {fastest:.2f} s. Medigan's
    end-to-end time divided by that least time is the largest speed-up over medigan that any
    implementation could reach, even one generating in no time: {bounds}.
"""

NETWORK_BOUND = """
    An implementation that runs the same network at the fastest speed seen for it without files (the
    batch-size sweep's best and every in-memory run of the raw loop and of medhub, at either N) and does
    everything else for free would take that least time plus N over that speed; medigan's end-to-end
    time divided by it is the largest speed-up over medigan reachable at that speed on this machine
    (medigan runs the same package code, which is not slow): {bounds}. Where it is under 2x, the 2x goal
    needs the network itself to run faster than in any run here, which the same samples, bit for bit,
    leave little room for.
"""

DETAILS = """
    Peak resident memory during the call (growth during the call in brackets). In memory, the returned
    samples themselves (last column) are part of every implementation's peak.

    {peak}

    Raw loop (no files), samples/s by batch size (one process per model, median of {sweep_rounds} passes
    of {sweep_samples:,} samples after a warm-up; the best, in bold, is the raw limit's batch size). The
    shipped packages run their networks on fixed blocks of 32 (the last one padded) so that a sample
    never depends on the batch it was generated in; the batch-32 column is what that costs.

    {sweep}

    Warm, in the sweep's process: the raw loop at its best batch size and medhub's `generate` (in memory,
    seed 0) alternated after one call of each, median of the passes. Each run in the tables above is its
    process's first call, so it also pays first-call costs (package import, weight load, oneDNN
    primitives, medhub's executor); where medhub / raw is lower above than here, the difference is those
    costs or the noise between processes, not the per-sample path.

    {warm}

    Creating and writing one file of the models' mean PNG size on the disk the runs write to
    (`{output_dir}`; {files:,} files in a new folder, from one thread and from two; wall and CPU time
    per file). Every PNG row pays this for each file on top of encoding: where it is large (some virtual
    disks), the PNG rows measure the disk more than the pipelines, and threads cannot hide it (file
    creation in one folder is serialised by the kernel). The benchmark deletes no run's files until it
    ends: on ext4 without a journal a deleted file's inode is skipped, one by one, by every file created
    in the next one to six minutes (`recently_deleted` in ext4's inode allocator), so a deleted run
    would make the next runs' files dearer.

    {file_create}

    PNG encoding of the models' images on one thread (median of 3 passes over 256 samples, files written
    to memory). medhub's encoder (numpy *Sub* row filter and zlib level 1, every PNG reader decodes the
    same pixels) replaced Pillow in the writer; Pillow at `compress_level=1` is what medhub used before
    and what the raw loop would pay with it.

    {encoders}
"""


def _goal(g: dict[str, Any], cells: dict[str, Any]) -> Goal:
    """A goal of :func:`goals` as a row of the page's results table."""
    model, mode = short(g["model"]), MODE_LABELS[g["mode"]]
    if g["kind"] == "memory":
        lo, hi = g["sizes"]
        return Goal("generate", f"{model}, {mode}: medhub peak memory growth during the call, {lo:,} -> {hi:,} "
                    "samples (returned samples left out)", f"{g['low']:.0f} -> {g['value']:.0f} MB",
                    f"<= {g['target']:.0f} MB", g["passed"])
    key = f"{g['model']}|{g['num_samples']}|{g['mode']}"
    m, other = cells[f"{key}|medhub"], cells[f"{key}|{g['kind']}"]
    if g["kind"] == "raw":
        return Goal("generate", f"{model}, {g['num_samples']:,} samples {mode}: medhub / raw limit "
                    f"({m['samples_per_s']:.0f} vs {other['samples_per_s']:.0f} samples/s)", f"{g['value']:.2f}",
                    f">= {g['target']}", g["passed"])
    return Goal("generate", f"{model}, {g['num_samples']:,} samples {mode}: medhub speed-up over medigan, end to "
                f"end ({m['wall_s']:.1f} vs {other['wall_s']:.1f} s)", f"{g['value']:.2f}x", f">= {g['target']:g}x",
                g["passed"])


def report(run: Run) -> Section:
    """The generation section and its goals."""
    gen = run.result
    st, cells, sweeps = gen["settings"], gen["cells"], gen["sweeps"]
    speed, peak = [], []
    for model, n, mode, c in cell_rows(cells, st["models"], st["sizes"]):
        m = c["medhub"]
        if not m:
            continue
        speed.append([short(model), f"{n:,}", MODE_LABELS[mode],
                      *(f"{c[i]['samples_per_s']:.0f}" if c[i] else "" for i in IMPLS),
                      f"{m['samples_per_s'] / c['raw']['samples_per_s']:.2f}" if c["raw"] else "",
                      *(f"{c[i]['wall_s']:.1f} s" if c[i] else "" for i in IMPLS),
                      f"{c['medigan']['wall_s'] / m['wall_s']:.2f}x" if c["medigan"] else "",
                      f"{m['samples_per_s'] / c['medigan']['samples_per_s']:.2f}x" if c["medigan"] else ""])
        peak.append([short(model), f"{n:,}", MODE_LABELS[mode],
                     *(f"{c[i]['peak_rss_mb']:.0f} MB (+{c[i]['peak_growth_mb']:.0f})" if c[i] else "" for i in IMPLS),
                     f"{m['result_mb']:.0f} MB"])
    text = fill(REPORT, command=run.command, when=run.when, torch=st["torch"],
                medigan=st["medigan_and_torch"] or "not run", minutes=gen["elapsed_s"] / 60,
                rounds=", ".join(f"{short(model)}: {st['repeat'] if i == 0 else st['repeat_large']}"
                                 for i, model in enumerate(st["models"])),
                speed=table(["Model", "N", "Output", "raw samples/s", "medhub samples/s", "medigan samples/s",
                             "medhub / raw", "raw end to end", "medhub end to end", "medigan end to end",
                             "medhub vs medigan, end to end", "medhub vs medigan, call"], speed, "lrlrrrrrrrrr"))
    floor, fastest = gen["floor_s"], gen["floor_min_s"].get("medhub")
    bounds = [g for g in gen["goals"] if g["kind"] == "medigan" and g.get("bound")]
    if bounds and fastest:
        text += "\n\n" + fill(BOUND, floor=floor["medhub"], fastest=fastest,
                               medigan_floor=f" ({floor['medigan']:.2f} s in medigan's)" if "medigan" in floor else "",
                               bounds=", ".join(f"{short(g['model'])} {g['num_samples']:,} {MODE_LABELS[g['mode']]} "
                                                f"{g['bound']:.2f}x" for g in bounds))
        networked = [g for g in bounds if g.get("network_bound")]
        if networked:
            text += "\n\n" + fill(NETWORK_BOUND, bounds=", ".join(
                f"{short(g['model'])} {g['num_samples']:,} {MODE_LABELS[g['mode']]} {g['network_bound']:.2f}x"
                for g in networked))
    first = next(iter(sweeps.values()))
    batches = list(first["samples_per_s"])
    text += "\n\n" + fill(
        DETAILS, sweep_rounds=first["rounds"], sweep_samples=first["samples"], files=first["file_create"]["files"],
        output_dir=st["output_dir"],
        peak=table(["Model", "N", "Output", "raw", "medhub", "medigan", "returned samples"], peak, "lrlrrrr"),
        sweep=table(["Model", *batches], [[short(model), *(f"**{v:.0f}**" if int(b) == sw["best_batch_size"]
                                                           else f"{v:.0f}" for b, v in sw["samples_per_s"].items())]
                                          for model, sw in sweeps.items()], "l" + "r" * len(batches)),
        warm=table(["Model", "Samples", "Raw batch size", "raw", "medhub", "medhub / raw (throughput)"],
                   [[short(model), f"{w['samples']:,}", w["raw_batch_size"], f"{w['raw_s']:.3f} s",
                     f"{w['medhub_s']:.3f} s", f"{w['medhub_over_raw']:.2f}"]
                    for model, w in ((model, sw["warm"]) for model, sw in sweeps.items())], "lrrrrr"),
        file_create=table(["Model", "File size", "1 thread wall", "1 thread CPU", "2 threads wall", "2 threads CPU"],
                          [[short(model), f"{sw['file_create']['bytes']:,} B",
                            *(f"{sw['file_create'][f'{t}_thread'][k]:.0f} µs" for t in (1, 2)
                              for k in ("wall_us_per_file", "cpu_us_per_file"))]
                           for model, sw in sweeps.items()], "lrrrrr"),
        encoders=table(["Model", "Encoder", "Time per image", "Mean file size"],
                       [[short(model), name, f"{e['us_per_image']:.0f} µs", f"{e['mean_bytes']:,.0f} B"]
                        for model, sw in sweeps.items() for name, e in sw["png_encoders"].items()], "llrr"))
    return Section([_goal(g, cells) for g in gen["goals"]], text)


# =========================================================================== main
def main(argv: list[str] | None = None) -> int:
    cli = parser(__doc__, "200 and 1,000 samples, one round", python=True)
    cli.add_argument("--models", nargs="+", default=[DCGAN, LARGE], help=f"models (default {DCGAN} {LARGE})")
    cli.add_argument("--sizes", type=int, nargs="+", help="num_samples values (default 1000 10000)")
    cli.add_argument("--repeat", type=int, help="rounds for the first model (default 3; 1 quick)")
    cli.add_argument("--repeat-large", type=int, help="rounds for the other models (default 2; 1 quick)")
    cli.add_argument("--impls", nargs="+", default=list(IMPLS), choices=IMPLS)
    cli.add_argument("--medigan-venv", type=Path, help="medigan's venv (default runs/bench/medigan-venv; "
                                                       "created when missing)")
    cli.add_argument("--output-dir", type=Path, help="where the runs write their files (default: the system's "
                                                     "temporary folder); the disk matters for the PNG rows")
    args = cli.parse_args(argv)
    from build_medigan_package import DEFAULT_VENV, build, ensure_venv

    sizes = args.sizes or ([200, 1_000] if args.quick else [1_000, 10_000])
    if "medigan" in args.impls and any(n % MEDIGAN_BATCH == 0 for n in sizes):
        # medigan 1.0.0 then calls the package once more for 0 samples (its loop runs num_samples // 32 + 1 times)
        cli.error(f"medigan 1.0.0 fails when num_samples is a multiple of its batch size {MEDIGAN_BATCH}; "
                  "choose other sizes")
    repeat = args.repeat or (1 if args.quick else 3)
    repeat_large = args.repeat_large or (1 if args.quick else 2)
    info = machine_info(args.python)
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
        (tmp_path / "home").mkdir()
        runner = Runner(args.python, medigan_python, workdir, tmp_path / "scratch", str(tmp_path / "home"))
        sweeps = {}
        for model in args.models:
            # 1,024 samples per pass for every model: fewer make the choice of the best batch size a coin toss
            sweeps[model] = runner.sweep(model, 128 if args.quick else 1024, 1 if args.quick else 3)
            print(f"Raw loop of {model}, best batch size {sweeps[model]['best_batch_size']}", flush=True)
        runs: list[dict[str, Any]] = []
        floors: list[dict[str, Any]] = []
        for mi, model in enumerate(args.models):
            rounds = repeat if mi == 0 else repeat_large
            for r in range(rounds):
                for venv in ("medhub", "medigan") if medigan_python else ("medhub",):
                    floors.append({"model": model, "venv": venv, "wall_s": runner.floor(venv)})
                for n in sizes:
                    for mode in MODES:
                        cell = alternate({impl: partial(checked_run, runner, impl, model, n, mode,
                                                        sweeps[model]["best_batch_size"], f"round {r + 1}/{rounds}")
                                          for impl in args.impls}, 1, warm_up=False,
                                         offset=r + sizes.index(n) + MODES.index(mode))
                        runs += [row for rows in cell.values() for row in rows]
    cells = summarize(runs)
    floor, floor_min = summarize_floors(floors, runs)
    doc = {"benchmark": "generate", "machine": info,
           "settings": {"models": args.models, "sizes": sizes, "repeat": repeat, "repeat_large": repeat_large,
                        "output_dir": str(args.output_dir or tempfile.gettempdir()), "impls": args.impls,
                        "quick": args.quick, "sweep_batches": list(SWEEP_BATCHES), "torch": torch_version,
                        "medigan_and_torch": medigan_version},
           "sweeps": sweeps, "runs": runs, "cells": cells, "floors": floors, "floor_s": floor, "floor_min_s": floor_min,
           "goals": goals(cells, args.models, sizes, floor_min.get("medhub"), fastest_rates(sweeps, runs)),
           "elapsed_s": time.perf_counter() - started}
    return finish(args, doc, report, argv)


if __name__ == "__main__":
    sys.exit(main())
