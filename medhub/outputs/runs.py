"""A single-process run's output folder: written privately, published whole, or not at all.

:class:`RunWriter` writes a run into a private staging folder beside the output folder
(``.<name>.partial-<random>``), with encoder threads or writer processes and the manifest streamed to disk,
then renames it into place; on any failure (an error, a full disk, Ctrl-C, SIGTERM or SIGHUP) the
staging folder is removed and the output path is left as it was. A process killed with SIGKILL
cannot clean up: :func:`remove_stale_runs` (``medhub cache prune``) removes such leftovers, which
it recognises by the owner record ``.medhub-run.json`` (host and process id) inside them.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import shutil
import signal
import socket
import tempfile
import threading
import uuid
from collections import deque
from collections.abc import Iterator, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import InvalidArgumentError, OutputPathError
from .encode import write_file
from .manifest import MANIFEST, PROVENANCE, FileJob, ManifestWriter, read_manifest, sample_rows
from .marks import Marker
from .specs import OutputSpec
from .workers import AUTO_MIN_FILES, WriterPool, auto_processes, configured_processes, writer_timeout

OWNER_FILE = ".medhub-run.json"
PARTIAL = ".partial-"


def output_folder(output_path: Any) -> Path:
    """Check ``output_path`` before any work: a path (str or os.PathLike) of a new or empty folder.

    Returns it resolved. Raises :class:`InvalidArgumentError` for a value that is not a path and
    :class:`OutputPathError` for a file or a folder that holds files.
    """
    if not isinstance(output_path, (str, os.PathLike)) or not os.fspath(output_path):
        raise InvalidArgumentError(f"output_path must be a folder path (str or os.PathLike), not {output_path!r}.")
    final = Path(output_path).expanduser().resolve()
    if final.exists():
        if not final.is_dir():
            raise OutputPathError(f"Output path {final} is a file; give a folder path.")
        if any(final.iterdir()):
            raise OutputPathError(
                f"Output folder {final} is not empty; medhub does not mix runs. Choose a new folder or empty it.")
    return final


def prepare_output_dir(output_path: str | os.PathLike[str]) -> tuple[Path, Path]:
    """Check ``output_path`` and create a private staging folder beside it.

    Returns (final folder, staging folder). The final folder must not exist, or be an empty
    folder: medhub never mixes a new run with files that are already there.
    """
    final = output_folder(output_path)
    try:
        final.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=f".{final.name}{PARTIAL}", dir=final.parent))
    except OSError as exc:
        raise OutputPathError(f"Cannot write to output folder {final}: {exc.strerror or exc}.") from None
    try:
        (staging / OWNER_FILE).write_text(json.dumps({"host": socket.gethostname(), "pid": os.getpid()}))
    except OSError as exc:
        shutil.rmtree(staging, ignore_errors=True)
        raise _write_error(final, exc) from None
    return final, staging


def _write_error(final: Path, exc: OSError) -> OutputPathError:
    if exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return OutputPathError(f"No space left on the device of {final.parent} while writing the run; nothing was "
                               "kept. Free some space or choose another output folder.")
    return OutputPathError(f"Cannot write the run to {final}: {exc.strerror or exc}.")


@dataclass
class GenerationRun:
    """What a saving ``generate`` call wrote. ``os.fspath(run)`` is the output folder."""

    output_path: Path
    num_samples: int
    seed: int
    manifest_path: Path
    provenance_path: Path

    @property
    def files(self) -> list[str]:
        """Names of the sample files, read from the manifest (label columns are not files)."""
        provenance = json.loads(self.provenance_path.read_text())
        file_columns = [o["name"] for o in provenance.get("outputs", []) if OutputSpec(**o).file_format != "manifest"]
        return [row[c] for row in read_manifest(self.output_path) for c in file_columns]

    def __fspath__(self) -> str:
        return str(self.output_path)

    def __str__(self) -> str:
        return f"{self.num_samples} samples (seed {self.seed}) in {self.output_path}"


class RunWriter:
    """Writes batches to a staging folder with encoder threads or processes, then publishes it.

    Files are encoded by writer processes (:mod:`medhub.outputs.workers`) when ``processes`` (or
    ``MEDHUB_WRITERS``) asks for them, or automatically once a run reaches
    :data:`~medhub.outputs.workers.AUTO_MIN_FILES` files on a machine with more than 2 cores;
    otherwise by ``workers`` threads. ``processes``: None for ``MEDHUB_WRITERS`` (automatic by
    default), 0 for threads only, N for N processes. With a ``marker``
    (:class:`~medhub.outputs.marks.Marker`) every file carries its sample record. At most ``max_pending`` thread tasks (or a few
    chunks per process) are in flight and manifest rows are streamed to ``manifest.csv``, so memory
    stays bounded for any run length. :meth:`finish` writes ``provenance.json`` and renames the
    staging folder into place; :meth:`abort` removes it, leaving the output path as it was.
    """

    def __init__(self, output_path: str | os.PathLike[str], specs: Sequence[OutputSpec], workers: int | None = None,
                 max_pending: int | None = None, processes: int | None = None, marker: Marker | None = None) -> None:
        self.specs = list(specs)
        self.marker = marker
        if processes is None:
            processes = configured_processes()  # a bad MEDHUB_WRITERS fails before the folder is made
        writer_timeout()  # and so does a bad MEDHUB_WRITER_TIMEOUT
        self.final, self.staging = prepare_output_dir(output_path)
        self.workers = workers or max(1, min(4, os.cpu_count() or 1))
        self.max_pending = max_pending or 4 * self.workers
        self._pool = ThreadPoolExecutor(self.workers, thread_name_prefix="medhub-writer")
        self._pending: deque[Future[None]] = deque()
        self._auto = auto_processes() if processes is None else 0
        self._file_specs = [s for s in self.specs if s.file_format != "manifest"]
        self._processes = WriterPool(self.staging, self._file_specs, processes) if processes else None
        self.num_samples = 0
        self.num_files = 0
        try:
            self._manifest = open(self.staging / MANIFEST, "w", newline="", encoding="utf-8")
            self._rows = ManifestWriter(self._manifest, self.specs)
        except OSError as exc:
            self.abort()
            raise _write_error(self.final, exc) from None

    def _encode(self, jobs: list[FileJob]) -> None:
        for name, arr, spec, record in jobs:
            write_file(self.staging / name, arr, spec, record)

    def submit(self, indices: Sequence[int], seeds: Sequence[int], arrays: Mapping[str, np.ndarray],
               inputs: Mapping[str, np.ndarray] | None = None) -> None:
        """Queue one checked batch: its manifest rows now, its files on the encoder threads or processes.

        ``inputs``: the batch's rows of the per-sample inputs (recorded in the marks)."""
        samples = sample_rows(indices, seeds, arrays, self.specs, self.marker, inputs)
        jobs = [job for _, files in samples for job in files]
        try:
            self._rows.write(row for row, _ in samples)
            self.num_samples += len(samples)
            self.num_files += len(jobs)
            if self._processes is None and self._auto and self.num_files >= AUTO_MIN_FILES:
                self._processes = WriterPool(self.staging, self._file_specs, self._auto)  # a large run: worth it
            if self._processes is not None:
                for k, spec in enumerate(self._file_specs):
                    self._processes.add(spec, [files[k][0] for _, files in samples], np.asarray(arrays[spec.name]),
                                        [files[k][3] for _, files in samples])
                return
            chunk = max(1, -(-len(jobs) // self.workers))
            for k in range(0, len(jobs), chunk):
                while len(self._pending) >= self.max_pending:
                    self._pending.popleft().result()
                self._pending.append(self._pool.submit(self._encode, jobs[k : k + chunk]))
        except OSError as exc:
            raise _write_error(self.final, exc) from None

    def finish(self, provenance: dict[str, Any]) -> GenerationRun:
        """Wait for the files, write ``provenance.json`` and publish the folder (or raise, keeping nothing)."""
        try:
            while self._pending:
                self._pending.popleft().result()
            self._pool.shutdown(wait=True)
            if self._processes is not None:
                self._processes.finish()
            self._manifest.close()
            provenance = dict(provenance, files=self.num_files, outputs=[asdict(s) for s in self.specs])
            (self.staging / PROVENANCE).write_text(json.dumps(provenance, indent=2, default=str) + "\n")
            (self.staging / OWNER_FILE).unlink()
        except OSError as exc:
            self.abort()
            raise _write_error(self.final, exc) from None
        except BaseException:
            self.abort()
            raise
        self._publish()
        return GenerationRun(self.final, self.num_samples, int(provenance.get("seed", 0)), self.final / MANIFEST,
                             self.final / PROVENANCE)

    def _publish(self) -> None:
        try:
            publish(self.staging, self.final)
        except OutputPathError:
            self.abort()
            raise

    def abort(self) -> None:
        """Stop the encoders and remove the staging folder, whatever fails on the way (a full disk)."""
        for fut in self._pending:
            fut.cancel()
        self._pending.clear()
        processes = getattr(self, "_processes", None)
        if processes is not None:
            processes.abort()  # before the folder goes: no process writes into it afterwards
        self._pool.shutdown(wait=True)
        manifest = getattr(self, "_manifest", None)
        if manifest is not None:
            with contextlib.suppress(OSError):
                manifest.close()  # on a full disk the flush fails again; the folder goes anyway
        shutil.rmtree(self.staging, ignore_errors=True)


def publish(staging: Path, final: Path) -> None:
    """Rename a finished staging folder (of :func:`prepare_output_dir`) into place as ``final``.

    ``final`` must not exist or be empty; on failure the staging folder is removed and
    :class:`OutputPathError` says why, leaving ``final`` as it was.
    """
    try:
        (staging / OWNER_FILE).unlink(missing_ok=True)
        if final.exists():
            final.rmdir()  # checked empty in prepare_output_dir; fails if another run filled it since
        os.replace(staging, final)
    except OSError as exc:
        shutil.rmtree(staging, ignore_errors=True)
        if exc.errno in (errno.ENOTEMPTY, errno.EEXIST):
            raise OutputPathError(f"Output folder {final} was filled by another run while this one "
                                  "generated; nothing of this run was kept. Choose a new folder.") from None
        raise _write_error(final, exc) from None


def unique_run_dir(root: Path, model_id: str) -> Path:
    """A fresh folder name under ``root/<model_id>/`` for runs without an explicit output path."""
    from datetime import datetime, timezone

    stamp = datetime.now(timezone.utc).strftime("%Y%m%d-%H%M%S")
    return root / model_id / f"{stamp}-{uuid.uuid4().hex[:6]}"


@contextlib.contextmanager
def signals_as_exit() -> Iterator[None]:
    """While a run writes, SIGTERM and SIGHUP raise ``SystemExit(128 + signal)`` in the main thread
    (as Ctrl-C raises KeyboardInterrupt), so the run's clean-up runs before the process ends.

    Only signals whose handler is the default (which would kill the process without clean-up) are
    changed, only in the main thread, and the previous handlers are restored on exit.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    changed = {}

    def exit_on(signum: int, _frame: Any) -> None:
        raise SystemExit(128 + signum)

    for name in ("SIGTERM", "SIGHUP"):
        signum = getattr(signal, name, None)
        if signum is not None and signal.getsignal(signum) == signal.SIG_DFL:
            changed[signum] = signal.signal(signum, exit_on)
    try:
        yield
    finally:
        for signum, previous in changed.items():
            signal.signal(signum, previous)


def remove_stale_runs(folder: str | os.PathLike[str]) -> list[Path]:
    """Remove staging folders of killed runs under ``folder`` (searched recursively); return them.

    A staging folder is stale when its owner record names this host and a process that no longer
    exists. Folders of running processes, of other hosts, and without a record are left alone.
    """
    removed = []
    host = socket.gethostname()
    for owner in Path(folder).expanduser().glob(f"**/.*{PARTIAL}*/{OWNER_FILE}"):
        try:
            record = json.loads(owner.read_text())
        except (OSError, ValueError):
            continue
        if record.get("host") != host or _alive(int(record.get("pid", 0))):
            continue
        shutil.rmtree(owner.parent, ignore_errors=True)
        removed.append(owner.parent)
    return removed


def _alive(pid: int) -> bool:
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
