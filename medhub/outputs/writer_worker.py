"""A writer process: encodes and writes files of a run into its staging folder (its :func:`main`).

Started by :class:`medhub.outputs.workers.WriterPool` as a plain subprocess (not multiprocessing,
which would import the user's ``__main__`` again). It reads frames from stdin: first the staging
folder and the outputs spec, then chunks of files ``(chunk id, [(spec index, file names, block of
arrays, sample records), ...])``; it writes each file with :func:`medhub.outputs.encode.write_file` (the same bytes
as a thread of the parent would write) and answers one frame per chunk on stdout: ``("ok", id)`` or
``("error", id, what)``. It imports no torch, ignores SIGINT (the parent decides what a Ctrl-C
stops) and ends at the end of stdin, dropping chunks it has not started: the parent closes stdin
only after every chunk was answered, or to abort the run.

A frame is ``struct <QI`` (pickle length, number of out-of-band buffers), one ``<Q`` length per
buffer, the pickle (protocol 5), then the buffers: arrays travel without a copy into the pickle.
"""

from __future__ import annotations

import os
import pickle
import queue
import signal
import struct
import sys
import threading
import traceback
from pathlib import Path
from typing import Any, BinaryIO

from .encode import write_file
from .specs import OutputSpec

HEAD = struct.Struct("<QI")
LENGTH = struct.Struct("<Q")
MAX_MESSAGE = 2000  # characters of an error message sent back


def encode_frame(obj: Any) -> list[memoryview | bytes]:
    """The pieces of one frame holding ``obj`` (write them in order)."""
    buffers: list[pickle.PickleBuffer] = []
    data = pickle.dumps(obj, protocol=5, buffer_callback=buffers.append)
    raws = [b.raw() for b in buffers]
    head = HEAD.pack(len(data), len(raws)) + b"".join(LENGTH.pack(r.nbytes) for r in raws)
    return [head, data, *raws]


def write_all(fd: int, pieces: list[memoryview | bytes]) -> None:
    """Write every byte of ``pieces`` to file descriptor ``fd`` (a pipe may take a large write in parts)."""
    for piece in pieces:
        view = memoryview(piece).cast("B")
        while view:
            view = view[os.write(fd, view):]


def read_exact(fh: BinaryIO, n: int) -> bytearray | None:
    """``n`` bytes from ``fh``, or None at the end of the stream (also inside the ``n`` bytes)."""
    buf = bytearray(n)
    view, got = memoryview(buf), 0
    while got < n:
        k = fh.readinto(view[got:])
        if not k:
            return None
        got += k
    return buf


def read_frame(fh: BinaryIO) -> Any:
    """The next object of ``fh``; raises EOFError at the end of the stream."""
    head = read_exact(fh, HEAD.size)
    if head is None:
        raise EOFError
    size, count = HEAD.unpack(head)
    lengths = read_exact(fh, LENGTH.size * count) if count else bytearray()
    data = read_exact(fh, size)
    if lengths is None or data is None:
        raise EOFError
    buffers = []
    for (n,) in LENGTH.iter_unpack(lengths):
        buf = read_exact(fh, n)
        if buf is None:
            raise EOFError
        buffers.append(buf)
    return pickle.loads(data, buffers=buffers)


def error_record(exc: BaseException) -> dict[str, Any]:
    """What the parent needs to raise the same kind of error: type name, message, errno and file name."""
    record: dict[str, Any] = {"type": type(exc).__name__, "message": str(exc)[:MAX_MESSAGE]}
    if isinstance(exc, OSError):
        record.update(errno=exc.errno, strerror=exc.strerror, filename=str(exc.filename) if exc.filename else None)
    return record


def serve(inp: BinaryIO, out: int) -> None:
    """Answer chunks from ``inp`` on file descriptor ``out`` until ``inp`` ends (see the module docstring)."""
    setup = read_frame(inp)
    folder = Path(setup["folder"])
    specs = [OutputSpec(**d) for d in setup["specs"]]
    chunks: queue.SimpleQueue[Any] = queue.SimpleQueue()
    ended = threading.Event()

    def reader() -> None:  # keeps stdin drained, so the parent's writes never wait for an encode
        try:
            while True:
                chunks.put(read_frame(inp))
        except (EOFError, OSError):
            pass
        except BaseException:  # a frame that cannot be read: say why and end, the parent reports it
            traceback.print_exc()
            os._exit(70)
        ended.set()
        chunks.put(None)

    threading.Thread(target=reader, name="medhub-writer-reader", daemon=True).start()
    while (chunk := chunks.get()) is not None:
        chunk_id, pieces = chunk
        try:
            for spec_index, names, block, records in pieces:
                spec = specs[spec_index]
                for name, arr, record in zip(names, block, records):
                    if ended.is_set():  # the parent aborted the run: stop now
                        return
                    write_file(folder / name, arr, spec, record)
            answer: tuple[Any, ...] = ("ok", chunk_id)
        except Exception as exc:  # noqa: BLE001 - every failure goes back to the parent, which raises it
            answer = ("error", chunk_id, error_record(exc))
        write_all(out, encode_frame(answer))


def main() -> None:
    """Entry point of ``python -m medhub.outputs.writer_worker``."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    out = os.dup(1)
    os.dup2(2, 1)  # a stray print of a library goes to stderr, not into the answers
    inp = os.fdopen(os.dup(0), "rb", buffering=0)
    try:
        serve(inp, out)
    except (EOFError, BrokenPipeError):
        pass
    sys.stdout.flush()


if __name__ == "__main__":
    main()
