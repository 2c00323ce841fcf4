"""Writer processes: encoding and writing a run's files on every core, sized to the machine.

The PNG encoder spends most of its time in Python, so threads of one process write hardly faster
than one core. :class:`WriterPool` hands chunks of files to plain subprocesses
(``python -c`` running :mod:`medhub.outputs.writer_worker`: no multiprocessing, which would
import the user's ``__main__`` again, and no fork of a process holding torch's threads). Each
worker writes its files into the run's staging folder with the same encoder as the threads, so
the files are the same bytes. At most :data:`IN_FLIGHT` chunks wait per worker (the caller blocks
when all are full), so memory stays bounded. Errors come back as the same kind of error (an
``OSError`` keeps its errno: a full disk stays a full disk); a worker that dies is a
:class:`~medhub.errors.WriterError` naming how it ended, and so is one that makes no progress for
``MEDHUB_WRITER_TIMEOUT`` seconds (the watchdog: a stopped or hung process; :func:`writer_timeout`).

How many: ``MEDHUB_WRITERS`` (:func:`configured_processes`); automatically, one per core available
to this process (at most :data:`MAX_PROCESSES`) on machines with more than 2 cores, for runs of
at least :data:`AUTO_MIN_FILES` files, where starting them (about 0.15 s each, in parallel) pays.
"""

from __future__ import annotations

import builtins
import contextlib
import dataclasses
import os
import pickle
import select
import selectors
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from .. import settings
from ..errors import WriterError
from .specs import OutputSpec
from .writer_worker import HEAD, LENGTH, encode_frame

try:
    import fcntl
except ImportError:  # pragma: no cover - not POSIX: no writer processes either
    fcntl = None  # type: ignore[assignment]

MAX_PROCESSES = 32
AUTO_MIN_FILES = 2048
CHUNK_FILES = 64
CHUNK_BYTES = 4 * 2**20
IN_FLIGHT = 3  # chunks per worker: one being written, two waiting in its pipe
MAX_IN_FLIGHT_BYTES = 256 * 2**20  # and at most this much array data in all workers (large volumes)
#: Worker environment: the encoders need no BLAS, whose thread pools would only slow the start.
ONE_THREAD = {"OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
PIPE_BYTES = 2**20
STOP_WAIT_S = 2.0


def available_cores() -> int:
    """Cores this process may run on (its CPU affinity where the platform tells it)."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def processes_supported() -> bool:
    """Whether writer processes can run here: a POSIX system whose ``sys.executable`` is a Python
    interpreter (not an application embedding Python, whose executable would not run ``-c``)."""
    name = Path(sys.executable or "").name.lower()
    return os.name == "posix" and name.startswith(("python", "pypy"))


def auto_processes() -> int:
    """Writer processes a large run gets automatically: one per core, none on 2 cores or fewer."""
    cores = available_cores()
    return min(MAX_PROCESSES, cores) if cores > 2 and processes_supported() else 0


def configured_processes() -> int | None:
    """``MEDHUB_WRITERS`` as a number of processes: None for automatic (0), 0 for threads only (1), else N."""
    value = int(settings.get("MEDHUB_WRITERS"))
    if value == 0:
        return None
    return 0 if value == 1 or not processes_supported() else value


def writer_timeout() -> float:
    """``MEDHUB_WRITER_TIMEOUT``: seconds a writer process may make no progress (answer no chunk it
    holds, take in no byte of the next one) before the run is stopped."""
    return float(settings.get("MEDHUB_WRITER_TIMEOUT"))


@dataclasses.dataclass
class Worker:
    """One writer process, its pipes and the chunks it has not answered yet."""

    proc: subprocess.Popen[bytes]
    pending: dict[int, int] = dataclasses.field(default_factory=dict)  # chunk id -> its bytes
    received: bytearray = dataclasses.field(default_factory=bytearray)
    since: float = dataclasses.field(default_factory=time.monotonic)  # its last progress

    def stalled(self, timeout: float) -> WriterError:
        """The error of a worker that made no progress for ``timeout`` seconds (stopped or hung)."""
        return WriterError(f"A process writing the run's files (pid {self.proc.pid}) made no progress for "
                           f"{timeout:g} s (it may be stopped or hung); the run was stopped and nothing of it was "
                           "kept. Run it again; MEDHUB_WRITER_TIMEOUT sets how long to wait, MEDHUB_WRITERS=1 "
                           "writes with threads of this process.")

    def ended(self) -> WriterError:
        """The error of a worker that stopped answering (its pipe closed): how it ended."""
        try:
            code = self.proc.wait(timeout=STOP_WAIT_S)
        except subprocess.TimeoutExpired:
            code = None
        if code is not None and code < 0:
            name = signal.Signals(-code).name if -code in signal.valid_signals() else str(-code)
            how = f"was killed by signal {name}" + (" (perhaps the system ran out of memory)" if name == "SIGKILL"
                                                     else "")
        elif code:
            how = f"ended with exit status {code} (its error is printed above)"
        else:
            how = "closed its pipe before writing every file"
        return WriterError(f"A process writing the run's files (pid {self.proc.pid}) {how}; the run was stopped "
                           "and nothing of it was kept. Run it again, or set MEDHUB_WRITERS=1 to write with "
                           "threads of this process.")


def raise_error(record: dict[str, Any]) -> None:
    """Raise the error a worker sent back as the same kind of error (an OSError keeps its errno)."""
    if record.get("errno") is not None:
        raise OSError(record["errno"], record.get("strerror") or record["message"], record.get("filename"))
    kind = getattr(builtins, str(record["type"]), None)
    message = f"while writing the run's files: {record['message']}"
    if isinstance(kind, type) and issubclass(kind, Exception) and not issubclass(kind, OSError):
        try:
            error = kind(message)
        except Exception:  # noqa: BLE001 - a type that wants other arguments: reported as a WriterError
            error = None
        if error is not None:
            raise error
    raise WriterError(f"{record['type']} {message}")


class WriterPool:
    """``processes`` writer processes writing files into ``folder`` (started at the first chunk).

    :meth:`add` queues a block of files; :meth:`finish` waits until every file is written and
    stops the processes; :meth:`abort` stops them at once (the caller removes the folder).
    """

    def __init__(self, folder: Path, specs: Sequence[OutputSpec], processes: int) -> None:
        self.folder, self.specs, self.size = Path(folder), list(specs), max(1, int(processes))
        self.timeout = writer_timeout()
        self.workers: list[Worker] = []
        self._selector: selectors.BaseSelector | None = None
        self._pieces: list[tuple[int, list[str], Any, list[Any]]] = []
        self._files = self._bytes = self._next_id = 0

    def add(self, spec: OutputSpec, names: Sequence[str], block: np.ndarray,
            records: Sequence[Any] | None = None) -> None:
        """Queue files ``names[i]`` of output ``spec`` holding ``block[i]``, marked with ``records[i]``
        (sample records, or None for unmarked files); sends each full chunk."""
        index = self.specs.index(spec)
        records = list(records) if records is not None else [None] * len(names)
        block = np.asarray(block)
        per_file = max(1, block[0].nbytes if len(block) else 1)
        start = 0
        while start < len(names):
            room = min(CHUNK_FILES - self._files, max(1, (CHUNK_BYTES - self._bytes) // per_file))
            part = block[start : start + room]
            # a C-contiguous block travels as one buffer; otherwise each sample keeps its own layout
            # (np.save writes a Fortran-ordered array differently)
            values = part if part.flags.c_contiguous else [np.asarray(a) for a in part]
            self._pieces.append((index, list(names[start : start + room]), values, records[start : start + room]))
            self._files += len(part)
            self._bytes += len(part) * per_file
            start += room
            if self._files >= CHUNK_FILES or self._bytes >= CHUNK_BYTES:
                self.flush()

    def flush(self) -> None:
        """Send the queued files as one chunk (waiting while every worker has :data:`IN_FLIGHT` chunks)."""
        if not self._pieces:
            return
        if not self.workers:
            self._start()
        while min(len(w.pending) for w in self.workers) >= IN_FLIGHT or (
                self._bytes + sum(sum(w.pending.values()) for w in self.workers) > MAX_IN_FLIGHT_BYTES
                and any(w.pending for w in self.workers)):
            self._receive()
        worker = min(self.workers, key=lambda w: len(w.pending))
        chunk_id, self._next_id = self._next_id, self._next_id + 1
        frame = encode_frame((chunk_id, self._pieces))
        size, self._pieces, self._files, self._bytes = self._bytes, [], 0, 0
        if not worker.pending:
            worker.since = time.monotonic()  # an idle worker's clock starts with its new chunk
        self._send(worker, frame)
        worker.pending[chunk_id] = size

    def finish(self) -> None:
        """Write every queued file, wait for every answer, then let the processes end."""
        self.flush()
        while any(w.pending for w in self.workers):
            self._receive()
        self._stop(kill_after=self.timeout)  # every file is written: a process that does not end is killed

    def abort(self) -> None:
        """Stop the processes now (each ends after its current file; killed after a short wait)."""
        self._pieces = []
        self._stop(kill_after=STOP_WAIT_S)

    # ------------------------------------------------------------------ the processes
    def _start(self) -> None:
        # SIGINT ignored from the first line (a Ctrl-C reaches the whole process group; the parent
        # decides), and the parent's import path, so that the worker runs this very medhub
        code = ("import signal; signal.signal(signal.SIGINT, signal.SIG_IGN); import sys; sys.path[:] = "
                + repr(list(sys.path)) + "; from medhub.outputs.writer_worker import main; main()")
        self._selector = selectors.DefaultSelector()
        setup = encode_frame({"folder": str(self.folder), "specs": [dataclasses.asdict(s) for s in self.specs]})
        for _ in range(self.size):
            proc = subprocess.Popen([sys.executable, "-c", code], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                    bufsize=0, close_fds=True, env={**os.environ, **ONE_THREAD})
            worker = Worker(proc)
            self.workers.append(worker)
            assert proc.stdin is not None and proc.stdout is not None
            os.set_blocking(proc.stdin.fileno(), False)  # a full pipe: waited for in _send, with a timeout
            if hasattr(fcntl, "F_SETPIPE_SZ"):  # a deeper pipe (Linux): fewer waits while a chunk is sent
                with contextlib.suppress(OSError):
                    fcntl.fcntl(proc.stdin.fileno(), fcntl.F_SETPIPE_SZ, PIPE_BYTES)
            self._selector.register(proc.stdout.fileno(), selectors.EVENT_READ, worker)
            self._send(worker, setup)

    def _send(self, worker: Worker, frame: list[Any]) -> None:
        """Write ``frame`` to the worker's pipe; a worker that takes no byte of it for :attr:`timeout` s
        is stalled."""
        assert worker.proc.stdin is not None
        fd = worker.proc.stdin.fileno()
        for piece in frame:
            view = memoryview(piece).cast("B")
            while view:
                try:
                    view = view[os.write(fd, view):]
                    continue
                except BlockingIOError:  # the pipe is full: wait until the worker reads
                    pass
                except BrokenPipeError:
                    raise worker.ended() from None
                poller = select.poll()
                poller.register(fd, select.POLLOUT)
                if not poller.poll(self.timeout * 1000):
                    raise worker.stalled(self.timeout)

    def _receive(self) -> None:
        """Wait for answers of any worker and take them in; raise a worker's error, death or stall
        (no answer to a chunk it holds for :attr:`timeout` s)."""
        assert self._selector is not None
        busy = [w.since for w in self.workers if w.pending]
        wait = max(0.0, min(busy) + self.timeout - time.monotonic()) if busy else None
        for key, _ in self._selector.select(wait):
            worker: Worker = key.data
            data = os.read(key.fd, 1 << 16)
            if not data:
                raise worker.ended()
            worker.since = time.monotonic()
            worker.received += data
            while len(worker.received) >= HEAD.size:
                size, count = HEAD.unpack_from(worker.received)
                end = HEAD.size + LENGTH.size * count + size
                if count:  # answers hold no buffers: this is not one
                    raise WriterError(f"A process writing the run's files (pid {worker.proc.pid}) sent a garbled "
                                      "answer; the run was stopped and nothing of it was kept.")
                if len(worker.received) < end:
                    break  # an incomplete answer waits for more bytes
                answer = pickle.loads(worker.received[HEAD.size : end])
                del worker.received[:end]
                worker.pending.pop(answer[1], None)
                if answer[0] == "error":
                    raise_error(answer[2])
        now = time.monotonic()
        for worker in self.workers:
            if worker.pending and now - worker.since >= self.timeout:
                raise worker.stalled(self.timeout)

    def _stop(self, kill_after: float | None) -> None:
        """Close every worker's input (it ends) and reap it; kill those still running after ``kill_after`` s."""
        for worker in self.workers:
            assert worker.proc.stdin is not None
            with contextlib.suppress(OSError):
                worker.proc.stdin.close()  # the end of its input: the worker ends
        deadline = None if kill_after is None else time.monotonic() + kill_after
        for worker in self.workers:
            try:  # an idle worker ends at once: a plain wait, without the polling of a timeout
                worker.proc.wait(timeout=None if deadline is None else max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                worker.proc.kill()
                worker.proc.wait()
            if worker.proc.stdout is not None:
                worker.proc.stdout.close()
        if self._selector is not None:
            self._selector.close()
        self.workers, self._selector = [], None
