"""Shared runs: several processes (shards, Ray workers) writing one run into one folder, resumably.

One claim and one journal serve sharded runs and Ray runs alike:

* :func:`claim_run` creates ``run.json`` in an empty output, or checks that the one there is this
  run's (same model, seed, number of samples...), so different runs are never mixed;
* :class:`SharedWriter` writes each batch's files (temporary name, then a rename, on a
  :class:`~medhub.outputs.store.LocalStore`; whole objects on an fsspec store) and, once all files
  of a batch are written, a journal marker ``.medhub-chunks/chunk-<first>-<id>.json`` with their
  manifest rows, sha256 and sizes;
* :func:`load_done` reads the markers back and keeps every sample whose files still verify, so
  running the same call again after a crash generates only the rest.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import uuid
from collections import deque
from collections.abc import Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

from ..errors import OutputPathError
from .encode import encode
from .manifest import FileJob, sample_rows
from .marks import Marker
from .specs import OutputSpec
from .store import MARKERS, FsspecStore, LocalStore

logger = logging.getLogger("medhub.outputs")

RUN_FILE = "run.json"
Store = LocalStore | FsspecStore


def claim_run(store: Store, run: dict[str, Any]) -> dict[str, Any]:
    """Create ``run.json`` in an empty output, or check that the one there is this run's; return it.

    ``created`` (the time in the files' marks) is the one thing a later shard or a resumed run takes
    from the record already there instead of comparing it, so that every file of the run carries
    the same time.
    """
    store.makedirs()
    data = (json.dumps(run, sort_keys=True) + "\n").encode()
    if not store.create_exclusive(RUN_FILE, data):
        raw = store.read_bytes(RUN_FILE)
        try:
            existing = json.loads(raw) if raw is not None else None
        except ValueError:
            existing = None
        same = isinstance(existing, dict) and {k: v for k, v in existing.items() if k != "created"} == {
            k: v for k, v in run.items() if k != "created"}
        if not same:
            raise OutputPathError(
                f"Output {store.url} holds another run ({RUN_FILE}: {existing}); resuming needs the same model, "
                "seed and number of samples (and shards, marks and output format). Use a new folder, or pass the "
                "seed recorded there.")
        run = {**run, **existing}
    else:
        others = [n for n in store.names() if n != RUN_FILE]
        if others:
            store.remove(RUN_FILE)
            raise OutputPathError(f"Output {store.url} is not empty ({others[:3]}...); medhub does not mix runs. "
                                  "Choose a new folder or empty it.")
    store.makedirs(MARKERS)
    return run


def load_done(store: Store, num_samples: int, clean: bool = True) -> dict[int, dict[str, Any]]:
    """Manifest rows of the samples already written whose files still verify (from the journal).

    ``clean`` first removes temporary files of killed writers: only while no other writer runs
    (the Ray driver before it starts workers; not a shard, whose siblings may be writing).
    """
    if clean:
        store.clean_temporary()
    verify = store.verifier()
    done: dict[int, dict[str, Any]] = {}
    for name in store.names(MARKERS):
        if not name.startswith("chunk-") or not name.endswith(".json"):
            continue
        raw = store.read_bytes(f"{MARKERS}/{name}")
        try:
            entries = json.loads(raw or b"")["samples"]
        except (ValueError, KeyError, TypeError):
            logger.warning("Ignoring unreadable journal marker %s", store.location(f"{MARKERS}/{name}"))
            continue
        for entry in entries:
            row = entry["row"]
            index = int(row["index"])
            if index in done or not 0 <= index < num_samples:
                continue
            if all(verify(row[col], sha, entry["size"][col]) for col, sha in entry["sha256"].items()):
                done[index] = row
    return done


class SharedWriter:
    """Writes checked batches into a shared run's store with a pool of encoder threads.

    :meth:`submit` queues a batch (at most ``max_pending`` batches in flight); a batch's journal
    marker is written once all its files are, so the journal never names a missing file.
    :meth:`finish` waits for everything and returns the manifest rows written, by index.
    """

    def __init__(self, store: Store, specs: Sequence[OutputSpec], threads: int | None = None,
                 max_pending: int = 4, marker: Marker | None = None) -> None:
        self.store = store
        self.specs = list(specs)
        self.marker = marker
        self.threads = threads or max(1, min(4, os.cpu_count() or 1))
        self.max_pending = max_pending
        self._pool = ThreadPoolExecutor(self.threads, thread_name_prefix="medhub-shared")
        self._pending: deque[tuple[list[Future[dict[str, Any]]], int]] = deque()
        self.rows: dict[int, dict[str, Any]] = {}

    def _write(self, row: dict[str, Any], files: list[FileJob]) -> dict[str, Any]:
        entry: dict[str, Any] = {"row": row, "sha256": {}, "size": {}}
        for name, arr, spec, record in files:
            data = encode(arr, spec, record)
            self.store.write_bytes(name, data)
            entry["sha256"][spec.name] = hashlib.sha256(data).hexdigest()
            entry["size"][spec.name] = len(data)
        return entry

    def submit(self, indices: Sequence[int], seeds: Sequence[int], arrays: Any, inputs: Any = None) -> None:
        """Queue the files of one checked batch (``arrays`` keyed by output name; ``inputs``: its rows
        of the per-sample inputs, recorded in the marks when the writer has a ``marker``)."""
        while len(self._pending) >= self.max_pending:
            self._settle()
        futures = [self._pool.submit(self._write, row, files)
                   for row, files in sample_rows(indices, seeds, arrays, self.specs, self.marker, inputs)]
        self._pending.append((futures, int(indices[0]) if len(indices) else 0))

    def _settle(self) -> None:
        futures, first = self._pending.popleft()
        entries = [f.result() for f in futures]
        if not entries:
            return
        marker = f"{MARKERS}/chunk-{first:09d}-{uuid.uuid4().hex[:12]}.json"
        self.store.write_bytes(marker, json.dumps({"samples": entries}).encode())
        for entry in entries:
            self.rows[int(entry["row"]["index"])] = entry["row"]

    def finish(self) -> dict[int, dict[str, Any]]:
        """Wait for every queued batch; return the rows written, by index."""
        try:
            while self._pending:
                self._settle()
        finally:
            self._pool.shutdown(wait=True)
        return self.rows

    def abort(self) -> None:
        """Stop; batches whose markers were written stay done, so running again resumes."""
        for futures, _ in self._pending:
            for f in futures:
                f.cancel()
        self._pool.shutdown(wait=True)
        self._pending.clear()
