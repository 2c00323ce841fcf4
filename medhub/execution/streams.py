"""Parallel CPU streams: several package calls generating side by side in threads.

A torch network on the CPU parallelises each operation over the cores (intra-op threads), but
small convolutions leave cores idle between and inside operations, and the package's own Python
(seeding, converting) runs on one core. Running *several* package calls at once, each on a share
of the cores, keeps them busy (``benchmarks/cpu_streams.py`` measures it for every shipped
package, and checks that the outputs stay bit-identical).

It is an opt-in (``generate(..., cpu_streams=N)`` or ``MEDHUB_CPU_STREAMS=N``; default 1), because
it changes torch's process-wide intra-op thread count while a run generates (divided among the
streams, restored when the run ends, also on errors). It applies only to ``medhub/1`` packages
whose catalog entry declares ``execution.generate_method.thread_safe: true`` (``sample`` may run
in several threads at once on the same loaded model), on the CPU. Each batch is then cut into
``streams`` calls (see :func:`part_size`) and up to ``streams`` calls run at once, so about one
batch is in flight as before.
"""

from __future__ import annotations

import contextlib
import sys
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from typing import TypeVar

from ..errors import InvalidArgumentError

T = TypeVar("T")
R = TypeVar("R")


def cpu_streams(thread_safe: bool, device: str, requested: int | None = None) -> int:
    """How many package calls to run at once: ``requested`` (or ``MEDHUB_CPU_STREAMS``; default 1)
    for a package declared thread safe on the CPU, else 1. Parallel streams are an opt-in: they
    share torch's intra-op threads among the calls while a run generates.

    Example:
        >>> cpu_streams(True, "cpu", 2), cpu_streams(False, "cpu", 2), cpu_streams(True, "cuda", 2)
        (2, 1, 1)
    """
    if requested is None:
        from ..settings import get

        requested = int(get("MEDHUB_CPU_STREAMS"))
    elif isinstance(requested, bool) or not isinstance(requested, int) or requested < 1:
        raise InvalidArgumentError(f"cpu_streams must be a positive integer (1: one call at a time), not {requested!r}.")
    if not thread_safe or not str(device).startswith("cpu"):
        return 1
    return requested


def part_size(batch_size: int, streams: int, align: int | None = None) -> int:
    """The samples per package call when ``streams`` calls run at once: ``batch_size`` shared out
    among them (so that about one batch is in flight, as without streams), rounded up to a multiple
    of ``align`` (a package's fixed block size) so that no call pads more blocks than it must.

    Example:
        >>> part_size(256, 2, 32)
        128
        >>> part_size(64, 4, 32)
        32
        >>> part_size(100, 2)
        50
    """
    per = -(-max(1, batch_size) // max(1, streams))
    if align and align > 1:
        per = -(-per // align) * align
    return per


class ParallelRunner:
    """Runs package calls on a pool of ``streams`` threads, at most ``streams`` at a time, and hands
    their results back in order."""

    def __init__(self, streams: int) -> None:
        self.streams = streams
        self._pool = ThreadPoolExecutor(streams, thread_name_prefix="medhub-stream") if streams > 1 else None

    def ordered(self, function: Callable[[T], R], items: Iterable[T]) -> Iterator[tuple[T, R]]:
        """``(item, function(item))`` for each item, in order; up to ``streams`` items are computed
        at once while the caller handles the results before them (writes them, copies them). When
        a call raises, or the caller stops early, the calls not started are cancelled and the
        running ones waited for, so no thread is still generating into a run that ended.

        Example:
            >>> runner = ParallelRunner(2)
            >>> [r for _, r in runner.ordered(lambda x: x * x, range(5))]
            [0, 1, 4, 9, 16]
            >>> runner.close()
        """
        if self._pool is None:
            for item in items:
                yield item, function(item)
            return
        pending: deque[tuple[T, Future[R]]] = deque()
        try:
            for item in items:
                pending.append((item, self._pool.submit(function, item)))
                if len(pending) >= self.streams:
                    done, future = pending.popleft()
                    yield done, future.result()
            while pending:
                done, future = pending.popleft()
                yield done, future.result()
        finally:
            for _, future in pending:
                future.cancel()
            for _, future in pending:
                with contextlib.suppress(BaseException):
                    future.result()

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)


@contextlib.contextmanager
def parallel(streams: int) -> Iterator[ParallelRunner]:
    """A :class:`ParallelRunner` of ``streams`` threads; while it is open torch's intra-op threads
    are shared out among the streams (``threads // streams``, at least 1), then restored.

    Example:
        >>> with parallel(2) as runner:
        ...     [list(r) for _, r in runner.ordered(lambda lo: range(lo, lo + 3), [0, 3])]
        [[0, 1, 2], [3, 4, 5]]
    """
    torch = sys.modules.get("torch")
    before = int(torch.get_num_threads()) if torch is not None and streams > 1 else None
    runner = ParallelRunner(streams)
    try:
        if before is not None:
            torch.set_num_threads(max(1, before // streams))
        yield runner
    finally:
        runner.close()
        if before is not None:
            torch.set_num_threads(before)
