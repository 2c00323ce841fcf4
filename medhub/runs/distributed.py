"""Distributed generation on Ray: one model load per worker, bounded work in flight, shared output.

:func:`generate_on_ray` (also ``Generators.generate_on_ray`` and ``medhub generate --engine ray``)
writes the same files, with the same names and bytes, as a single-process ``generate`` with the
same seed: sample i depends only on (seed, i) for ``medhub/1`` packages, whichever worker makes it.

Design (why it looks like this):

* **Ray actors, not Ray Data.** Each worker is an actor (:class:`ChunkWorker`) that resolves,
  verifies and loads the model once, on its own GPU (``num_gpus=1`` when the cluster has GPUs and
  the model uses torch) or on CPUs. Ray Data would add a dependency (``ray[data]``), pyarrow
  conversions of every array and a less direct control of where files are written; the actor pool
  is a few dozen lines with the same guarantees.
* **Chunks pulled by the driver, bounded in flight.** The driver splits the indices still to do
  into chunks and hands them out with :func:`bounded_dispatch`: at most
  ``max_in_flight_per_worker`` (default 2) chunks per worker are outstanding, and a worker that
  finishes one gets the next. Slow or fast workers balance themselves, and memory stays bounded:
  the chunk iterator is consumed lazily, a worker holds one chunk's arrays at a time, and what comes
  back to the driver is the manifest rows only, never the images.
* **Workers write, the driver records.** A worker encodes each sample exactly as the single-process
  writers do (:func:`medhub.outputs.encode`) and writes it into the shared output: a local folder
  (temporary name, then an atomic rename) or any fsspec URL (``s3://``, ``gs://``, ``file://``...,
  with the filesystem package installed; objects appear whole when closed). After the files of a
  chunk are written it writes a small marker ``.medhub-chunks/chunk-<first>-<id>.json`` with their
  rows and sha256. At the end the driver writes ``manifest.csv`` (byte for byte the single run's)
  and ``provenance.json``.
* **Resume.** ``run.json`` pins model, seed and number of samples, so runs are never mixed. Running
  the same call again after a crash (of a worker, the driver or the whole cluster) reads the
  markers, keeps every sample whose files still verify (sha256 for local folders, size for URLs)
  and generates only the rest, whatever the chunk size or number of workers. A worker process that
  dies is restarted by Ray and its chunk retried (chunks are idempotent).

Unlike a single-process run, files are written into ``output_path`` as they are made (there is no
private staging folder on shared storage): a failed run leaves a partial folder, which the next
run with the same arguments completes. Ray and fsspec are optional; both are imported only here,
when used. For sharded runs without Ray (torchrun, SLURM arrays) see :mod:`medhub.runs.shards`.

Example (not run as a doctest; needs ``pip install 'medhub[ray]'``)::

    from medhub.runs.distributed import generate_on_ray
    run = generate_on_ray(101, num_samples=100_000, output_path="s3://bucket/mri", seed=0,
                          address="auto", batch_size=256)
"""

from __future__ import annotations

import logging
import math
import os
import socket
import sys
import time
from collections.abc import Callable, Hashable, Iterable, Iterator, Mapping, Sequence
from dataclasses import asdict
from datetime import datetime, timezone
from typing import Any, NoReturn, TypeVar

import numpy as np

from ..errors import (
    DependencyError,
    DeviceError,
    GenerationError,
    InvalidArgumentError,
    MedhubError,
    OutputPathError,
)
from ..execution import ModelExecutor
from ..execution.ref import ModelRef
from ..outputs import GenerationRun, sample_filename
from ..outputs.manifest import MANIFEST, PROVENANCE
from ..outputs.shared import SharedWriter, claim_run, load_done
from ..outputs.store import FsspecStore, LocalStore, open_store
from ..validate import check_positive
from .common import check_model, check_options, finish, run_provenance, run_result

logger = logging.getLogger("medhub.distributed")

RAY_REQUIREMENT = "ray>=2.9"

C = TypeVar("C")
H = TypeVar("H", bound=Hashable)


# ---------------------------------------------------------------------------- optional imports
def import_ray() -> Any:
    """``import ray``, or a :class:`DependencyError` with the pip command."""
    try:
        import ray
    except ImportError as exc:
        raise DependencyError(
            "The Ray engine needs Ray, which is not installed: pip install 'medhub[ray]' "
            f"(or pip install '{RAY_REQUIREMENT}').", [RAY_REQUIREMENT]) from exc
    return ray


# ---------------------------------------------------------------------------- the worker
class ChunkWorker:
    """Generates chunks of sample indices and writes their files; one per Ray actor.

    Built from the model's :class:`~medhub.execution.ref.ModelRef` (the catalog entry, not a
    catalog path, which may not exist on other nodes); the package is resolved, verified and its
    weights loaded once, on the first call. Usable without Ray too (the tests drive one in-process).
    """

    def __init__(self, config: dict[str, Any]) -> None:
        self.config = config
        self.executor: ModelExecutor | None = None
        self.store: LocalStore | FsspecStore | None = None
        self.device = "cpu"
        self.samples = 0
        self.chunks = 0

    def _setup(self) -> ModelExecutor:
        if self.executor is None:
            from ..execution.device import resolve_device

            c = self.config
            executor = ModelRef(**c["model"]).build()
            executor.prepare(c["install_dependencies"], c["trust_remote_code"])
            self.device = resolve_device(c["device"], executor.uses_torch)
            executor.load(self.device)
            self.store = open_store(c["output"], c["storage_options"])
            self.executor = executor
        return self.executor

    def ready(self) -> dict[str, Any]:
        """Load the model now; return where this worker runs."""
        self._setup()
        return {"host": socket.gethostname(), "pid": os.getpid(), "device": self.device}

    def stats(self) -> dict[str, Any]:
        torch = sys.modules.get("torch")
        return {"host": socket.gethostname(), "pid": os.getpid(), "device": self.device, "samples": self.samples,
                "chunks": self.chunks, "torch_threads": torch.get_num_threads() if torch else None}

    def run(self, indices: Sequence[int], inputs: Mapping[str, Any] | None = None) -> list[dict[str, Any]]:
        """Generate and write the samples at ``indices``; return their manifest rows."""
        executor = self._setup()
        c, store = self.config, self.store
        assert store is not None
        indices = [int(i) for i in indices]
        if not indices:
            return []
        stream = executor.batches(indices, c["seed"], self.device, c["batch_size"], 1, **c["kwargs"], **(inputs or {}))
        writer = SharedWriter(store, executor.output_specs(c.get("output_format")), threads=c["io_threads"],
                              marker=c.get("marker"))
        try:
            for batch in stream:
                writer.submit(batch.indices, batch.seeds, batch.arrays, batch.inputs)
            rows = writer.finish()
        except BaseException:
            writer.abort()
            raise
        self.samples += len(indices)
        self.chunks += 1
        return [rows[i] for i in indices]


# ---------------------------------------------------------------------------- scheduling
def bounded_dispatch(num_workers: int, chunks: Iterable[C], submit: Callable[[int, C], H],
                     wait: Callable[[list[H]], Sequence[H]], max_in_flight_per_worker: int = 2
                     ) -> Iterator[tuple[int, C, H]]:
    """Hand ``chunks`` to workers ``0..num_workers-1`` with at most ``max_in_flight_per_worker``
    outstanding each; yield ``(worker, chunk, handle)`` as chunks complete.

    ``submit(worker, chunk)`` starts a chunk and returns a handle; ``wait(handles)`` blocks until
    at least one is done and returns the done ones. A worker's next chunk is submitted only after
    the caller has taken the result of one of its chunks, and ``chunks`` is consumed lazily: never
    more than ``num_workers * max_in_flight_per_worker`` chunks ahead of the results taken. A worker that
    completes a chunk is given the next one, so faster workers do more.
    """
    if num_workers < 1 or max_in_flight_per_worker < 1:
        raise InvalidArgumentError("bounded_dispatch needs at least one worker and one chunk in flight per worker.")
    it = iter(chunks)
    inflight: dict[H, tuple[int, C]] = {}
    exhausted = False

    def give(worker: int) -> None:
        nonlocal exhausted
        if exhausted:
            return
        try:
            chunk = next(it)
        except StopIteration:
            exhausted = True
            return
        inflight[submit(worker, chunk)] = (worker, chunk)

    for _ in range(max_in_flight_per_worker):
        for worker in range(num_workers):
            give(worker)
    while inflight:
        done = wait(list(inflight))
        if not done:
            raise RuntimeError("wait() returned no finished handle")
        for handle in done:
            worker, chunk = inflight.pop(handle)
            yield worker, chunk, handle
            give(worker)  # after the caller took the result: outstanding = submitted - taken


def _chunks(todo: Sequence[int], size: int) -> Iterator[list[int]]:
    for lo in range(0, len(todo), size):
        yield list(todo[lo : lo + size])


def _plan_resources(ray: Any, device: str, uses_torch: bool, num_workers: int | None, num_cpus: float,
                    num_gpus: float | None) -> tuple[int, float]:
    """(number of workers, GPUs per worker) for this cluster and device."""
    name = str(device or "auto").strip().lower()
    if name not in ("auto", "cpu", "cuda"):
        raise DeviceError(f"With the Ray engine, device is 'auto', 'cpu' or 'cuda' (Ray gives each worker its own "
                          f"GPU), not {device!r}.")
    total = ray.cluster_resources()
    cpus, gpus = float(total.get("CPU", 0)), float(total.get("GPU", 0))
    if num_gpus is None:
        num_gpus = 1.0 if name != "cpu" and gpus > 0 and uses_torch else 0.0
    if name == "cuda" and (gpus == 0 or num_gpus == 0):
        raise DeviceError(f"device='cuda' but the Ray cluster has {gpus:g} GPUs (or num_gpus_per_worker=0); "
                          "use 'auto' or 'cpu'.")
    if name == "cpu":
        num_gpus = 0.0
    if num_workers is None:
        num_workers = int(gpus // num_gpus) if num_gpus else int(cpus // num_cpus)
        num_workers = max(1, num_workers)
    need_cpu, need_gpu = num_workers * num_cpus, num_workers * num_gpus
    if need_cpu > cpus + 1e-9 or need_gpu > gpus + 1e-9:
        raise InvalidArgumentError(
            f"{num_workers} workers need {need_cpu:g} CPUs and {need_gpu:g} GPUs, but the Ray cluster has "
            f"{cpus:g} CPUs and {gpus:g} GPUs; use fewer workers (--workers) or fewer CPUs per worker.")
    return num_workers, num_gpus


def _raise_worker_error(ray: Any, exc: BaseException) -> NoReturn:
    if isinstance(exc, ray.exceptions.RayTaskError):
        cause = getattr(exc, "cause", None)
        if isinstance(cause, MedhubError):
            raise cause from None
        raise GenerationError(f"A Ray worker failed: {cause or exc}") from exc
    if isinstance(exc, ray.exceptions.RayError):
        raise GenerationError(f"A Ray worker was lost ({type(exc).__name__}: {exc}). Completed chunks are kept; "
                              "run the same call again to resume.") from exc
    raise exc


# ---------------------------------------------------------------------------- the driver
def generate_on_ray(
    model_id: str | int,
    num_samples: int,
    output_path: str | os.PathLike[str],
    seed: int | None = None,
    *,
    num_workers: int | None = None,
    address: str | None = None,
    batch_size: int | None = None,
    chunk_size: int | None = None,
    device: str = "auto",
    max_in_flight_per_worker: int = 2,
    num_cpus_per_worker: float = 1,
    num_gpus_per_worker: float | None = None,
    io_threads: int = 4,
    storage_options: Mapping[str, Any] | None = None,
    install_dependencies: bool = False,
    trust_remote_code: bool = False,
    progress: bool | None = None,
    package_path: str | os.PathLike[str] | None = None,
    get_executor: Callable[..., ModelExecutor] | None = None,
    config_file: str | os.PathLike[str] | None = None,
    ray_init_kwargs: Mapping[str, Any] | None = None,
    mark: bool = True,
    sign: tuple[str, str] | None = None,
    output_format: str | None = None,
    **kwargs: Any,
) -> GenerationRun:
    """Generate ``num_samples`` samples of a ``medhub/1`` model on a Ray cluster into ``output_path``.

    The files, their names and bytes, and ``manifest.csv`` are those of
    ``Generators().generate(model_id, num_samples, output_path=..., seed=seed)`` on the same device
    type. Calling it again with the same arguments after a failure resumes the run.

    Args:
        model_id: catalog id or its number (``101``).
        num_samples: how many samples.
        output_path: a folder every worker can reach (local path on one machine or a shared file
            system), or an fsspec URL (``s3://bucket/run``; needs fsspec and e.g. s3fs on every
            node). It must be new or empty, or hold an unfinished run with the same arguments.
        seed: run seed (default: a random one, recorded in ``run.json`` and ``provenance.json``;
            pass it again to resume).
        num_workers: Ray workers (actors), each loading the model once. Default: one per GPU of
            the cluster when it has GPUs and the model uses torch, else one per CPU.
        address: Ray cluster to connect to (``"auto"``, ``"ray://head:10001"``...). Default: the
            running Ray instance, else ``RAY_ADDRESS``, else a new local one (shut down at the end).
        batch_size: samples per call into the model (default: the catalog's).
        chunk_size: samples per task handed to a worker (default: about a quarter of each worker's
            share, at most 4 batches).
        device: ``"auto"`` (a GPU per worker when the cluster has GPUs), ``"cpu"`` or ``"cuda"``.
        max_in_flight_per_worker: chunks queued per worker (back-pressure; default 2).
        num_cpus_per_worker: CPUs of each worker (also its torch threads).
        num_gpus_per_worker: GPUs of each worker (default 1 when GPUs are used; fractions pack
            several workers on one GPU).
        io_threads: threads per worker encoding and writing files.
        storage_options: passed to fsspec for URLs (credentials, endpoint...).
        install_dependencies: as for :meth:`medhub.Generators.generate`.
        trust_remote_code: as for :meth:`medhub.Generators.generate`.
        package_path: as for :meth:`medhub.Generators.generate`.
        progress: show a progress bar (default: when stderr is a terminal).
        get_executor: ``get_executor(model_id, package_path=...)`` gives the model's executor
            (``Generators.generate_on_ray`` passes its own, so the catalog and loaded weights are
            shared); default: :func:`~medhub.execution.ref.executor_for` on the catalog
            ``config_file`` (or the default catalog).
        ray_init_kwargs: extra arguments of ``ray.init`` when this call starts or joins Ray.
        mark: mark every file with its sample record (:mod:`medhub.outputs.marks`); the driver
            takes the records' time once (or ``SOURCE_DATE_EPOCH``) and every worker uses it.
        sign: (key, certificate chain) signing PNG files with C2PA content credentials (default:
            ``MEDHUB_SIGN_KEY`` / ``MEDHUB_SIGN_CERT``); the files must be readable on every node.
        **kwargs: model inputs, as for ``generate`` (per-sample inputs are sent with each chunk).

    Returns:
        A :class:`~medhub.outputs.GenerationRun`; for URLs its paths are URL strings.
    """
    from ..execution.marking import run_marker, run_signing
    from ..execution.seeds import new_seed
    from ..outputs.marks import creation_time

    num_samples, seed, batch_size = check_options(num_samples, seed, batch_size, output_format)
    chunk_size = check_positive("chunk_size", chunk_size)
    num_workers = check_positive("num_workers", num_workers)
    check_positive("max_in_flight_per_worker", max_in_flight_per_worker, allow_none=False)
    check_positive("io_threads", io_threads, allow_none=False)
    check_positive("num_cpus_per_worker", num_cpus_per_worker, allow_none=False, number=float)
    if num_gpus_per_worker is not None and (isinstance(num_gpus_per_worker, bool) or num_gpus_per_worker < 0):
        raise InvalidArgumentError(f"num_gpus_per_worker must be >= 0 or None, not {num_gpus_per_worker!r}.")
    if output_path is None:
        raise InvalidArgumentError("generate_on_ray needs output_path: a folder every Ray worker can reach, or an "
                                   "fsspec URL such as s3://bucket/folder.")
    started = datetime.now(timezone.utc)

    if get_executor is None:
        from ..config import ConfigManager
        from ..execution.ref import executor_for

        catalog = ConfigManager(config_file)

        def get_executor(model_id: Any, package_path: Any = None) -> ModelExecutor:
            return executor_for(catalog, model_id, package_path)

    executor = get_executor(model_id, package_path=package_path)
    check_model(executor, kwargs, install_dependencies, trust_remote_code, shared="The Ray engine needs")
    run_seed = new_seed() if seed is None else int(seed)
    batch_size = batch_size or executor.default_batch_size()
    per_sample = executor.per_sample_inputs(kwargs, num_samples)
    common = {k: v for k, v in kwargs.items() if k not in per_sample}

    signing = run_signing(sign) if mark else None  # a bad key fails before anything is written
    ray = import_ray()  # before anything is written
    store = open_store(output_path, storage_options)
    specs = executor.output_specs(output_format)
    run = executor.run_record(run_seed, num_samples, mark, engine="ray", created=creation_time(),
                              **({"output_format": output_format} if output_format else {}))
    owns_ray = not ray.is_initialized()
    if owns_ray:
        ray.init(address=address, **dict(ray_init_kwargs or {}))
    elif address is not None:
        logger.warning("Ray is already initialised in this process; ignoring address=%r.", address)
    try:
        workers, gpus = _plan_resources(ray, device, executor.uses_torch, num_workers, num_cpus_per_worker,
                                        num_gpus_per_worker)
        run = claim_run(store, run)  # a resumed run keeps the time of its first start
        marker = (run_marker(executor, run_seed, "cuda" if gpus else "cpu", kwargs, run.get("created"), signing)
                  if mark else None)
        done = load_done(store, num_samples)
        todo = [i for i in range(num_samples) if i not in done]
        if done:
            logger.info("%s: %d of %d samples already done; resuming", store.url, len(done), num_samples)
        names = store.names()
        if not todo and MANIFEST in names and PROVENANCE in names:
            logger.info("%s: the run is complete already", store.url)
            return run_result(store, num_samples, run_seed)
        ray_info: dict[str, Any] = {"workers": [], "chunks": 0, "resumed_samples": len(done)}
        if todo:
            workers = min(workers, len(todo))
            size = chunk_size or max(1, min(4 * batch_size, math.ceil(len(todo) / (4 * workers))))
            workers = min(workers, math.ceil(len(todo) / size))
            config = _worker_config(executor, store, run_seed, batch_size, gpus, common, io_threads,
                                    storage_options, install_dependencies, trust_remote_code)
            config.update(marker=marker, output_format=output_format)
            ray_info.update(_run_pool(ray, config, workers, num_cpus_per_worker, gpus, todo, size, per_sample,
                                      max_in_flight_per_worker, done, progress))
    finally:
        if owns_ray:
            ray.shutdown()
    missing = [i for i in range(num_samples) if i not in done]
    if missing:  # pragma: no cover - every chunk either returned its rows or raised
        raise OutputPathError(f"Samples {missing[:5]} are missing in {store.url}; run the same call again to resume.")

    devices = sorted({w["device"] for w in ray_info["workers"]}) or ["cpu"]
    files = sum(1 for s in specs if sample_filename(0, s) is not None) * num_samples
    provenance = run_provenance(executor, run_seed, num_samples, batch_size, ",".join(devices), kwargs, started, 1,
                                marker, engine="ray", files=files, outputs=[asdict(s) for s in specs], ray=ray_info)
    return finish(store, specs, (done[i] for i in range(num_samples)), provenance, num_samples, run_seed)


def _worker_config(executor: ModelExecutor, store: LocalStore | FsspecStore, seed: int, batch_size: int,
                   gpus: float, common: dict[str, Any], io_threads: int, storage_options: Mapping[str, Any] | None,
                   install_dependencies: bool, trust_remote_code: bool) -> dict[str, Any]:
    """What a :class:`ChunkWorker` needs: the model's reference (its catalog entry itself; relative
    package links fall back to the worker's bundled models) and the run's settings."""
    return {
        "model": ModelRef.of(executor).__dict__, "install_dependencies": install_dependencies,
        "trust_remote_code": trust_remote_code, "device": "cuda" if gpus else "cpu", "output": store.url,
        "storage_options": dict(storage_options or {}), "seed": seed, "batch_size": batch_size, "kwargs": common,
        "io_threads": io_threads,
    }


def _run_pool(ray: Any, config: dict[str, Any], workers: int, num_cpus: float, gpus: float, todo: list[int],
              size: int, per_sample: dict[str, np.ndarray], per_worker: int, done: dict[int, dict[str, Any]],
              progress: bool | None) -> dict[str, Any]:
    """Run the chunks of ``todo`` on a pool of actors (killed at the end), filling ``done``."""
    remote = ray.remote(ChunkWorker).options(num_cpus=num_cpus, num_gpus=gpus, max_restarts=1, max_task_retries=1)
    actors = [remote.remote(config) for _ in range(workers)]
    try:
        t0 = time.perf_counter()
        try:
            placed = ray.get([a.ready.remote() for a in actors])
        except ray.exceptions.RayError as exc:
            _raise_worker_error(ray, exc)
        startup = time.perf_counter() - t0
        logger.info("%d Ray workers ready in %.1fs: %s", workers, startup, placed)

        def submit(worker: int, chunk: list[int]) -> Any:
            inputs = {k: v[np.asarray(chunk)] for k, v in per_sample.items()}
            return actors[worker].run.remote(chunk, inputs)

        def wait(refs: list[Any]) -> list[Any]:
            return ray.wait(refs, num_returns=1)[0]

        from ..progress import progress_bar

        chunks, resumed = 0, len(done)
        t1 = time.perf_counter()
        with progress_bar(len(done) + len(todo), f"{config['model']['model_id']} (ray x{workers})", progress,
                          initial=len(done)) as bar:
            for _, _, ref in bounded_dispatch(workers, _chunks(todo, size), submit, wait, per_worker):
                try:
                    rows = ray.get(ref)
                except ray.exceptions.RayError as exc:
                    _raise_worker_error(ray, exc)
                for row in rows:
                    done[int(row["index"])] = row
                chunks += 1
                bar.update(len(rows))
        elapsed = time.perf_counter() - t1
        stats = ray.get([a.stats.remote() for a in actors])
        return {"workers": stats, "num_workers": workers, "chunk_size": size, "chunks": chunks,
                "max_in_flight_per_worker": per_worker, "num_cpus_per_worker": num_cpus, "num_gpus_per_worker": gpus,
                "startup_s": round(startup, 3), "generate_s": round(elapsed, 3), "resumed_samples": resumed}
    finally:
        for actor in actors:
            try:
                ray.kill(actor)
            except Exception:  # pragma: no cover - best effort
                pass
