"""Benchmark: writing a run's PNG files on one core, with threads, and with 1, 2, ... writer processes.

Run from the repository root::

    python benchmarks/writers.py                     # full run (about 25 s on 2 cores; more files on more cores)
    python benchmarks/writers.py --quick             # 2,000 files, one round (smoke test)
    python benchmarks/writers.py --dir /data/scratch # measure the disk of that folder (default: the temp folder)
    python benchmarks/writers.py --json out.json

The files are those of a real shipped model: 256 samples of ``00101_DCGAN_BRAIN_MRI_T1`` (64x64
uint8, its outputs spec), generated once in memory on the CPU and written over and over, N files
per cell (N = max(10,000, 4,000 x cores); 2,000 with ``--quick``). Cells, alternated each round,
median of 3 rounds (no warm-up round: files are what they are the first time too):

* **one core**: ``medhub.outputs.write_file`` in a loop in this process (encode + create + write +
  close, no pool, no manifest): one core's encode+write rate;
* **threads**: ``RunWriter(..., processes=0)``: batches of 256 submitted, manifest streamed, the
  folder published (medhub's writer on a machine with 2 cores or fewer, and before 2,048 files);
* **k processes**: the same with ``processes=k`` for k = 1, 2, 4, ... and the number of cores
  (one per core is the automatic size, at most 32), the processes' start included;
* **disk**: the disk's own file-creation rate: create + write + close of files of the mean encoded
  size, no encoding, by one plain process per core and by 2 x cores threads of one process (the
  faster is the ceiling for any writer on this folder's disk);
* **marks**: every file above is unmarked. Marked against unmarked writing is measured apart, in
  many short alternated rounds (*one core* and *threads*, each unmarked and with every file marked:
  its sample record in an iTXt chunk and the XMP packet, issue 32), 1,000 files per cell and 12
  rounds (200 files, 2 rounds with ``--quick``), in files/s and in CPU time per file of the writing
  process. Goal (issue 32, point 1): marked writing runs at >= 0.95x the unmarked rate, one core and
  threads alike, read off CPU time (on a loaded shared machine wall-clock rates swing far more than
  the marks cost; both are reported).

Also timed: starting the automatic number of writer processes, each writing one file, and
stopping them (what a run pays before processes help; medhub starts them only for runs of 2,048
files or more). Goal (issue 24, point 3): one process per core writes at least 8x one core's rate
on a 16-core machine, unless the disk is the limit (then at least 0.8 of the disk's rate); on fewer
than 16 cores the goal is not measurable and the figures are reported as they are.
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
from common import alternate, finish, machine_info, parser, timed
from report import Goal, Run, Section, fill, table

MODEL = "00101_DCGAN_BRAIN_MRI_T1"
BATCH = 256
GOAL_CORES = 16
GOAL_SPEEDUP = 8.0
GOAL_DISK_SHARE = 0.8
GOAL_MARKED = 0.95

DISK_CHILD = """
import os, sys, time
folder, prefix, n, size = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
data = os.urandom(size)
print("ready", flush=True)
sys.stdin.readline()
start = time.monotonic()
for i in range(n):
    with open(os.path.join(folder, f"{prefix}_{i:06d}.png"), "wb") as fh:
        fh.write(data)
print(start, time.monotonic(), flush=True)
"""

REPORT = """
    ## Writing files on every core

    `{command}` ({when}), files on {where}: {files:,} PNG files of `{model}` ({shape}, {dtype}; mean
    {size:,} bytes encoded) per cell, from 256 real samples generated once, median of {rounds} alternated
    rounds. *One core*: `write_file` in a loop (encode + create + write + close).
    *Threads*: `RunWriter(..., processes=0)` ({threads} threads), batches of {batch} submitted, manifest
    streamed, folder published. *k processes*: the same with `processes=k`, their start included.
    *Disk*: create + write + close of files of the mean size without encoding, by one plain process per
    core or by {disk_threads} threads: the ceiling of any writer on this disk. The last column is the CPU
    time the generating process itself spends per file (all its threads): with processes, 10^6 divided by
    it bounds the files/s whatever the number of processes. On some file systems (ext4) creating files is
    much dearer for minutes after many were deleted; all cells alternate, so they share such a slowdown
    (the disk cells show it), and this benchmark deletes its files only when it ends.

    {table}

    Starting {auto} writer processes, each writing one file, and stopping them: {start}. {goal_text}

    {marks}
"""


def real_samples() -> tuple[np.ndarray, Any, Any]:
    """256 samples of the shipped DCGAN (generated once, in memory, on the CPU), its image spec, and
    the marker of such a run (what ``generate`` marks the files with)."""
    from medhub import Generators
    from medhub.execution.marking import run_marker
    from medhub.outputs import parse_specs

    g = Generators()
    specs = [s for s in parse_specs(g.get_config_by_id(MODEL, "execution.outputs")) if s.file_format == "png"]
    samples = g.generate(MODEL, num_samples=BATCH, save_images=False, seed=0, device="cpu", progress=False)
    marker = run_marker(g.get_model_executor(MODEL), 0, "cpu", {})
    return np.stack([np.asarray(s[0] if isinstance(s, tuple) else s) for s in samples]), specs[0], marker


class Cells:
    """The variants, each writing ``n`` files into a fresh folder under ``scratch`` (kept until the end:
    deleting files makes the next files dearer on some file systems)."""

    def __init__(self, scratch: Path, images: np.ndarray, spec: Any, n: int, marker: Any = None) -> None:
        self.scratch, self.images, self.spec, self.n, self.counter = scratch, images, spec, n, 0
        self.marker = marker
        self.parent_cpu: dict[str, list[float]] = {}  # cell -> CPU seconds of this process per file
        from medhub.outputs import encode

        self.size = int(np.mean([len(encode(a, spec)) for a in images]))
        self.marked_size = int(np.mean([len(encode(a, spec, marker.record(i, i, spec.name)))
                                        for i, a in enumerate(images)])) if marker is not None else 0

    def folder(self, make: bool = True) -> Path:
        self.counter += 1
        out = self.scratch / f"cell{self.counter}"
        if make:
            out.mkdir()
        return out

    def one_core(self, marked: bool = False) -> Callable[[], None]:
        def run() -> None:
            from medhub.outputs import sample_filename, write_file

            out, images, spec, marker = self.folder(), self.images, self.spec, self.marker if marked else None
            cpu = time.process_time()
            for i in range(self.n):  # as sample_rows: each file's record made as it is written
                record = None if marker is None else marker.record(i, i, spec.name)
                write_file(out / str(sample_filename(i, spec)), images[i % BATCH], spec, record)
            self.parent_cpu.setdefault("one core" + (", marked" if marked else ""), []).append(
                (time.process_time() - cpu) / self.n)

        return run

    def run_writer(self, processes: int, marked: bool = False) -> Callable[[], None]:
        def run() -> None:
            from medhub.outputs import RunWriter

            cpu = time.process_time()
            writer = RunWriter(self.folder(make=False), [self.spec], processes=processes,
                               marker=self.marker if marked else None)
            try:
                for lo in range(0, self.n, BATCH):
                    k = min(BATCH, self.n - lo)
                    writer.submit(range(lo, lo + k), range(lo, lo + k), {self.spec.name: self.images[:k]})
                writer.finish({"seed": 0})
            except BaseException:
                writer.abort()
                raise
            name = ("threads" if processes == 0 else label(processes)) + (", marked" if marked else "")
            self.parent_cpu.setdefault(name, []).append((time.process_time() - cpu) / self.n)

        return run

    def disk_processes(self, processes: int) -> float:
        """Files per second of ``processes`` plain processes creating files (timed from a common start)."""
        out = self.folder()
        per = -(-self.n // processes)
        procs = [subprocess.Popen([sys.executable, "-c", DISK_CHILD, str(out), f"p{k:02d}", str(per), str(self.size)],
                                  stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True) for k in range(processes)]
        for p in procs:
            assert p.stdout is not None and p.stdout.readline().strip() == "ready"
        for p in procs:
            assert p.stdin is not None
            p.stdin.write("go\n")
            p.stdin.flush()
        spans = [tuple(map(float, p.communicate()[0].split())) for p in procs]
        return per * processes / (max(e for _, e in spans) - min(s for s, _ in spans))

    def disk_threads(self, threads: int) -> None:
        out, data = self.folder(), np.random.default_rng(0).bytes(self.size)

        def part(k: int) -> None:
            for i in range(k, self.n, threads):
                with open(out / f"{i:06d}.png", "wb") as fh:
                    fh.write(data)

        with ThreadPoolExecutor(threads) as pool:
            list(pool.map(part, range(threads)))

    def start_stop(self, processes: int) -> None:
        """Start ``processes`` writer processes, one file each, and stop them."""
        from medhub.outputs.workers import WriterPool

        out = self.folder()
        pool = WriterPool(out, [self.spec], processes)
        for i in range(processes):
            pool.add(self.spec, [f"{i:06d}.png"], self.images[i : i + 1])
            pool.flush()
        pool.finish()


def label(k: int) -> str:
    return f"{k} process" + ("es" if k > 1 else "")


def counts(cores: int) -> list[int]:
    """Process counts measured: 1, 2, 4, ... below the cores, then the cores (at most 32)."""
    top = min(32, cores)
    out = [1]
    while out[-1] * 2 < top:
        out.append(out[-1] * 2)
    return out + ([top] if top > 1 else [])


def measure_marks(scratch: Path, images: np.ndarray, spec: Any, marker: Any, n: int, rounds: int) -> dict[str, Any]:
    """Marked against unmarked writing (one core, threads): short alternated rounds, in files/s and
    in CPU seconds of the writing process per file."""
    (scratch / "marks").mkdir()
    cells = Cells(scratch / "marks", images, spec, n, marker)
    variants = {"one core": cells.one_core(), "one core, marked": cells.one_core(marked=True),
                "threads": cells.run_writer(0), "threads, marked": cells.run_writer(0, marked=True)}
    times = alternate({k: timed(v) for k, v in variants.items()}, rounds, warm_up=False)
    return {"files": n, "rounds": rounds, "files_per_s": {k: n / statistics.median(t) for k, t in times.items()},
            "cpu_us_per_file": {k: statistics.median(v) * 1e6 for k, v in cells.parent_cpu.items()}}


def measure(scratch: Path, n: int, rounds: int, cores: int, marks_size: tuple[int, int] = (1000, 12)
            ) -> dict[str, Any]:
    images, spec, marker = real_samples()
    cells = Cells(scratch, images, spec, n, marker)
    variants: dict[str, Callable[[], float]] = {}
    variants["one core"] = timed(cells.one_core())
    variants["threads"] = timed(cells.run_writer(0))
    for k in counts(cores):
        variants[label(k)] = timed(cells.run_writer(k))
    disk_threads = max(4, 2 * cores)
    variants["disk: processes"] = lambda: n / cells.disk_processes(cores)  # seconds for n files
    variants[f"disk: {disk_threads} threads"] = timed(lambda: cells.disk_threads(disk_threads))
    times = alternate(variants, rounds, warm_up=False)
    auto = min(32, cores)
    start = alternate({"start": timed(lambda: cells.start_stop(auto))}, rounds, warm_up=False)["start"]
    from medhub.outputs import RunWriter

    probe = RunWriter(scratch / "probe", [spec], processes=0)
    threads = probe.workers
    probe.abort()
    return {"model": MODEL, "shape": list(spec.shape), "dtype": spec.dtype, "files": n, "encoded_bytes": cells.size,
            "marked_bytes": cells.marked_size, "marks": measure_marks(scratch, images, spec, marker, *marks_size),
            "threads": threads, "disk_threads": disk_threads, "process_counts": counts(cores), "auto_processes": auto,
            "files_per_s": {name: n / statistics.median(t) for name, t in times.items()},
            "seconds": times, "start_stop_s": statistics.median(start),
            "parent_cpu_us_per_file": {k: statistics.median(v) * 1e6 for k, v in cells.parent_cpu.items()}}


def report(run: Run) -> Section:
    res = run.result
    cores = res["machine"]["cores_usable"]
    rate = res["files_per_s"]
    one = rate["one core"]
    disk = max(v for k, v in rate.items() if k.startswith("disk"))
    cpu = res["parent_cpu_us_per_file"]
    rows = [[name, f"{v:,.0f}", f"{v / one:.2f}x", f"{v / disk:.2f}", f"{cpu[name]:.1f}" if name in cpu else ""]
            for name, v in rate.items()]
    auto = rate[label(res["auto_processes"])]
    speedup = auto / one
    disk_limited = disk < GOAL_SPEEDUP * one
    measurement = f"PNG files: {res['auto_processes']} writer processes (one per core) / one core's encode+write"
    target = f">= {GOAL_SPEEDUP:g}x on {GOAL_CORES} cores (or >= {GOAL_DISK_SHARE} of the disk's rate where it limits)"
    if cores >= GOAL_CORES:
        passed = speedup >= GOAL_SPEEDUP or (disk_limited and auto >= GOAL_DISK_SHARE * disk)
        goal = Goal("writers", measurement, f"{speedup:.1f}x", target, passed)
        goal_text = (f"Goal: {verdict_text(passed)} ({speedup:.1f}x one core"
                     + (f"; the disk's own rate is {disk / one:.1f}x one core" if disk_limited else "") + ").")
    else:
        goal = Goal("writers", measurement, f"{speedup:.2f}x ({cores} cores)", target, False, unmeasurable=True)
        goal_text = (f"Goal ({GOAL_SPEEDUP:g}x one core on {GOAL_CORES} cores): not measurable here, this machine "
                     f"has {cores} usable cores.")
    goals, marks = [goal], "Marks: not measured in this run (results from before issue 32)."
    if "marks" in res:
        marks_row, marks = marks_goal(res["marks"], res["marked_bytes"])
        goals.append(marks_row)
    text = fill(REPORT, command=run.command, when=run.when, where=res.get("where", "the temp folder"),
                files=res["files"], model=res["model"], shape="x".join(map(str, res["shape"])), dtype=res["dtype"],
                size=res["encoded_bytes"], rounds=res["settings"]["rounds"], threads=res["threads"], batch=BATCH,
                disk_threads=res["disk_threads"],
                table=table(["Writer", "files/s", "vs one core", "of the disk's rate", "generating process's CPU µs/file"],
                            rows, "lrrrr"),
                auto=res["auto_processes"], start=f"{res['start_stop_s'] * 1000:.0f} ms", goal_text=goal_text,
                marks=marks)
    return Section(goals, text)


def marks_goal(marks: dict[str, Any], marked_bytes: int) -> tuple[Goal, str]:
    """The goal row of the marks measurement and its paragraph of the report."""
    mrate, mcpu = marks["files_per_s"], marks["cpu_us_per_file"]
    # the goal is read off CPU time per file (the rate a core writes at when writing is what it does):
    # on a loaded shared machine the wall-clock rates swing far more than the marks cost
    cpu_one = mcpu["one core"] / mcpu["one core, marked"]
    cpu_threads = mcpu["threads"] / mcpu["threads, marked"]
    passed = min(cpu_one, cpu_threads) >= GOAL_MARKED
    text = (f"Marks (every file's sample record and the IPTC `trainedAlgorithmicMedia` XMP packet; {marked_bytes:,} "
            f"bytes per file marked on average), {marks['files']:,} files per cell, median of {marks['rounds']} "
            f"alternated rounds: in wall-clock files/s marked writing ran at "
            f"{mrate['one core, marked'] / mrate['one core']:.2f}x the unmarked rate on one core and "
            f"{mrate['threads, marked'] / mrate['threads']:.2f}x with threads. Per CPU second of the writing process "
            f"(median CPU time per file: one core {mcpu['one core']:.0f} µs unmarked, {mcpu['one core, marked']:.0f} "
            f"µs marked; threads {mcpu['threads']:.0f} and {mcpu['threads, marked']:.0f} µs) marked writing runs at "
            f"{cpu_one:.2f}x (one core) and {cpu_threads:.2f}x (threads) the unmarked rate. Goal (>= {GOAL_MARKED}x, "
            f"read off CPU time): {verdict_text(passed)}.")
    return Goal("writers", "PNG files: marked / unmarked writing rate per CPU second (one core; threads)",
                f"{cpu_one:.2f}x; {cpu_threads:.2f}x", f">= {GOAL_MARKED}x", passed), text


def verdict_text(passed: bool) -> str:
    return "met" if passed else "missed"


def main(argv: list[str] | None = None) -> int:
    p = parser(__doc__, "2,000 files per cell, one round")
    p.add_argument("--dir", help="folder whose disk to write to (default: the temp folder)")
    args = p.parse_args(argv)
    info = machine_info()
    cores = info["cores_usable"]
    n = 2_000 if args.quick else max(10_000, 4_000 * cores)
    rounds = 1 if args.quick else 3
    with tempfile.TemporaryDirectory(prefix="medhub-bench-writers-", dir=args.dir) as tmp:
        print(f"Writing {n:,} files per cell under {tmp} ...", flush=True)
        result = measure(Path(tmp), n, rounds, cores, (200, 2) if args.quick else (1000, 12))
    doc = {"benchmark": "writers", "machine": info, "settings": {"rounds": rounds, "quick": args.quick},
           "where": args.dir or "the temp folder", **result}
    return finish(args, doc, report, argv)


if __name__ == "__main__":
    sys.exit(main())
