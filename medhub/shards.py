"""Sharded generation: a run of ``num_samples`` split into N index ranges written by N processes.

Because sample i depends only on (seed, i) for ``medhub/1`` packages, shard K of N generates the
indices ``[K * n // N, (K + 1) * n // N)`` into the shared output folder, with the same file names
and bytes a single-process run would write. Each shard:

* checks (or creates) ``run.json`` in the folder: model, seed, number of samples and shards must
  match, so different runs are never mixed;
* writes each file to a temporary name and renames it, then records it with its sha256 in the
  journal ``.shard-K-of-N.jsonl``; a re-run skips indices whose files are recorded and still
  verify, and generates the rest (resume after a crash);
* finishes with ``manifest.part-K-of-N.csv``; when all N parts exist, ``manifest.csv`` is merged
  (also by ``medhub merge-manifests DIR``).
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import logging
import os
import re
import threading
import uuid
from collections import deque
from collections.abc import Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np

from .errors import InvalidArgumentError, OutputPathError
from .outputs import _WRITERS, GenerationRun, OutputSpec, _item, sample_filename

logger = logging.getLogger("medhub.shards")

_PART = re.compile(r"^manifest\.part-(\d+)-of-(\d+)\.csv$")


def parse_shard(shard: Any) -> tuple[int, int] | None:
    """``"K/N"``, ``(K, N)``, ``"auto"`` (torchrun's RANK / WORLD_SIZE or SLURM's
    SLURM_ARRAY_TASK_ID / SLURM_ARRAY_TASK_COUNT) or None -> (K, N) or None."""
    if shard is None:
        return None
    if shard == "auto":
        env = os.environ
        if "RANK" in env and "WORLD_SIZE" in env:
            shard = (int(env["RANK"]), int(env["WORLD_SIZE"]))
        elif "SLURM_ARRAY_TASK_ID" in env and "SLURM_ARRAY_TASK_COUNT" in env:
            first = int(env.get("SLURM_ARRAY_TASK_MIN", "0"))
            shard = (int(env["SLURM_ARRAY_TASK_ID"]) - first, int(env["SLURM_ARRAY_TASK_COUNT"]))
        else:
            raise InvalidArgumentError("shard='auto' needs RANK and WORLD_SIZE (torchrun) or SLURM_ARRAY_TASK_ID "
                                       "and SLURM_ARRAY_TASK_COUNT (a SLURM array) in the environment.")
    if isinstance(shard, str):
        match = re.fullmatch(r"\s*(\d+)\s*/\s*(\d+)\s*", shard)
        if not match:
            raise InvalidArgumentError(f"shard must look like 'K/N' (e.g. '0/4'), not {shard!r}.")
        shard = (int(match.group(1)), int(match.group(2)))
    k, n = (int(v) for v in shard)
    if n < 1 or not 0 <= k < n:
        raise InvalidArgumentError(f"Shard {k}/{n} is out of range: K must be in 0..N-1 and N >= 1.")
    return k, n


def shard_range(num_samples: int, k: int, n: int) -> range:
    """The indices of shard k of n: contiguous, disjoint, covering 0..num_samples-1."""
    return range(k * num_samples // n, (k + 1) * num_samples // n)


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _file_sha(path: Path) -> str | None:
    try:
        return _sha(path.read_bytes())
    except OSError:
        return None


class ShardWriter:
    """Writes one shard's files into a shared folder, journaling each completed sample."""

    def __init__(self, output_path: str | os.PathLike[str], specs: Sequence[OutputSpec], run: dict[str, Any],
                 shard: tuple[int, int], workers: int | None = None) -> None:
        self.folder = Path(output_path).expanduser().resolve()
        self.specs = list(specs)
        self.k, self.n = shard
        self.run = run
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise OutputPathError(f"Cannot create output folder {self.folder}: {exc.strerror or exc}.") from None
        self._claim_folder()
        self.journal = self.folder / f".shard-{self.k:05d}-of-{self.n:05d}.jsonl"
        self.rows: dict[int, dict[str, Any]] = self._load_journal()
        self.workers = workers or max(1, min(4, os.cpu_count() or 1))
        self._pool = ThreadPoolExecutor(self.workers, thread_name_prefix="medhub-shard")
        self._pending: deque[Future[None]] = deque()
        self._lock = threading.Lock()

    # ------------------------------------------------------------------ set-up
    def _claim_folder(self) -> None:
        run_file = self.folder / "run.json"
        try:
            fd = os.open(run_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL)
        except FileExistsError:
            try:
                existing = json.loads(run_file.read_text())
            except (OSError, ValueError):
                existing = None
            if existing != self.run:
                raise OutputPathError(
                    f"Output folder {self.folder} holds another run ({run_file}: {existing}); shards of one run "
                    "must share model, seed, number of samples and number of shards. Use a new folder."
                ) from None
            return
        others = [p.name for p in self.folder.iterdir() if p.name != "run.json"]
        if others:
            os.close(fd)
            run_file.unlink()
            raise OutputPathError(f"Output folder {self.folder} is not empty ({others[:3]}...); medhub does not mix runs.")
        with os.fdopen(fd, "w") as fh:
            json.dump(self.run, fh)

    def _load_journal(self) -> dict[int, dict[str, Any]]:
        rows: dict[int, dict[str, Any]] = {}
        if not self.journal.exists():
            return rows
        for line in self.journal.read_text().splitlines():
            try:
                entry = json.loads(line)
            except ValueError:
                continue  # a line cut short by a crash
            if all(_file_sha(self.folder / entry["row"][name]) == sha for name, sha in entry["sha256"].items()):
                rows[int(entry["row"]["index"])] = entry["row"]
        return rows

    def todo(self, indices: range) -> list[int]:
        """Indices of this shard not yet complete and verified."""
        return [i for i in indices if i not in self.rows]

    # ------------------------------------------------------------------ writing
    def _encode(self, index: int, row: dict[str, Any], jobs: list[tuple[str, np.ndarray, OutputSpec]]) -> None:
        hashes = {}
        for name, arr, spec in jobs:
            fmt = spec.file_format
            target = self.folder / row[name]
            tmp = target.with_name(f".{target.name}.{uuid.uuid4().hex[:8]}.tmp{_WRITERS[fmt][1]}")
            _WRITERS[fmt][0](tmp, arr, spec)
            hashes[name] = _sha(tmp.read_bytes())
            os.replace(tmp, target)
        with self._lock:
            with open(self.journal, "a", encoding="utf-8") as fh:
                fh.write(json.dumps({"row": row, "sha256": hashes}) + "\n")
            self.rows[index] = row

    def submit(self, indices: Sequence[int], seeds: Sequence[int], batch: Mapping[str, np.ndarray]) -> None:
        for j, (index, seed) in enumerate(zip(indices, seeds)):
            row: dict[str, Any] = {"index": int(index), "seed": int(seed)}
            jobs = []
            for spec in self.specs:
                value = np.asarray(batch[spec.name][j])
                name = sample_filename(int(index), spec)
                if name is None:
                    row[spec.name] = _item(value)
                else:
                    row[spec.name] = name
                    jobs.append((spec.name, value, spec))
            while len(self._pending) >= 4 * self.workers:
                self._pending.popleft().result()
            self._pending.append(self._pool.submit(self._encode, int(index), row, jobs))

    def _drain(self) -> None:
        try:
            while self._pending:
                self._pending.popleft().result()
        finally:
            self._pool.shutdown(wait=True)

    def finish(self, indices: range, provenance: dict[str, Any]) -> GenerationRun:
        self._drain()
        missing = [i for i in indices if i not in self.rows]
        if missing:
            raise OutputPathError(f"Shard {self.k}/{self.n} is missing samples {missing[:5]}; run it again to resume.")
        columns = ["index", "seed"] + [s.name for s in self.specs]
        part = self.folder / f"manifest.part-{self.k:05d}-of-{self.n:05d}.csv"
        buf = io.StringIO()
        writer = csv.DictWriter(buf, fieldnames=columns, lineterminator="\n")
        writer.writeheader()
        writer.writerows(self.rows[i] for i in indices)
        tmp = part.with_name(f".{part.name}.{uuid.uuid4().hex[:8]}.tmp")
        tmp.write_text(buf.getvalue(), encoding="utf-8")
        os.replace(tmp, part)
        prov = dict(provenance, shard=f"{self.k}/{self.n}", indices=[indices.start, indices.stop],
                    outputs=[s.__dict__ for s in self.specs])
        (self.folder / f"provenance.part-{self.k:05d}-of-{self.n:05d}.json").write_text(
            json.dumps(prov, indent=2, default=str) + "\n")
        merged = try_merge(self.folder)
        return GenerationRun(self.folder, len(indices), int(provenance.get("seed", 0)),
                             self.folder / ("manifest.csv" if merged else part.name),
                             self.folder / f"provenance.part-{self.k:05d}-of-{self.n:05d}.json")

    def abort(self) -> None:
        """Stop; completed samples stay journaled, so running the shard again resumes it."""
        for fut in self._pending:
            fut.cancel()
        self._pool.shutdown(wait=True)


def try_merge(folder: str | os.PathLike[str]) -> bool:
    """Merge the manifest parts into ``manifest.csv`` if all parts are there; return whether it did."""
    try:
        merge_manifests(folder)
    except OutputPathError:
        return False
    return True


def merge_manifests(folder: str | os.PathLike[str]) -> Path:
    """Join ``manifest.part-K-of-N.csv`` of all N shards into ``manifest.csv`` (atomically).

    Raises :class:`OutputPathError` naming the missing shards, or indices missing or duplicated.
    """
    folder = Path(folder)
    run = json.loads((folder / "run.json").read_text()) if (folder / "run.json").exists() else {}
    parts = {}
    for p in folder.iterdir():
        m = _PART.match(p.name)
        if m:
            parts[int(m.group(1))] = (p, int(m.group(2)))
    if not parts:
        raise OutputPathError(f"No manifest parts in {folder}.")
    n = {total for _, total in parts.values()}
    if len(n) != 1:
        raise OutputPathError(f"Manifest parts in {folder} come from runs with different shard counts: {sorted(n)}.")
    total = n.pop()
    missing = [k for k in range(total) if k not in parts]
    if missing:
        raise OutputPathError(f"Shards {missing[:10]} of {total} have not finished in {folder}; run them, then merge.")
    rows, header = [], None
    for k in range(total):
        with open(parts[k][0], newline="", encoding="utf-8") as fh:
            reader = csv.DictReader(fh)
            header = header or reader.fieldnames
            rows.extend(reader)
    indices = sorted(int(r["index"]) for r in rows)
    expected = run.get("num_samples", len(rows))
    if indices != list(range(expected)):
        raise OutputPathError(f"The manifest parts in {folder} do not cover indices 0..{expected - 1} exactly once.")
    rows.sort(key=lambda r: int(r["index"]))
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=header or [], lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    target = folder / "manifest.csv"
    tmp = folder / f".manifest.csv.{uuid.uuid4().hex[:8]}.tmp"
    tmp.write_text(buf.getvalue(), encoding="utf-8")
    os.replace(tmp, target)
    return target
