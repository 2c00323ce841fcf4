"""Sharded generation: a run of ``num_samples`` split into N index ranges written by N processes.

Because sample i depends only on (seed, i) for ``medhub/1`` packages, shard K of N generates the
indices ``[K * n // N, (K + 1) * n // N)`` into the shared output folder, with the same file names
and bytes a single-process run would write. Each shard uses the shared-run layer of
:mod:`medhub.outputs.shared`, as Ray workers do:

* it checks (or creates) ``run.json`` in the folder: model, seed, number of samples and shards must
  match, so different runs are never mixed; the first shard's ``created`` time (or
  ``SOURCE_DATE_EPOCH``) is the one in every file's mark;
* it writes each file to a temporary name and renames it, and after each batch a journal marker
  ``.medhub-chunks/chunk-<first>-<id>.json`` with the batch's rows and sha256; a re-run skips
  indices whose files are recorded and still verify, and generates the rest (resume after a crash);
* it finishes with ``manifest.part-K-of-N.csv``; when all N parts exist, ``manifest.csv`` is merged
  (also by ``medhub merge-manifests DIR``).
"""

from __future__ import annotations

import logging
import os
import re
from dataclasses import asdict
from datetime import datetime, timezone
from typing import Any

from ..errors import InvalidArgumentError, OutputPathError
from ..execution import ModelExecutor
from ..execution.device import resolve_device
from ..outputs import GenerationRun
from ..outputs.manifest import merge_manifests
from ..outputs.shared import SharedWriter, claim_run, load_done
from ..outputs.store import LocalStore
from .common import check_model, check_options, finish, run_provenance

logger = logging.getLogger("medhub.shards")

__all__ = ["generate_shard", "merge_manifests", "parse_shard", "shard_range"]


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


def generate_shard(executor: ModelExecutor, shard: Any, num_samples: int, output_path: Any, seed: int | None,
                   device: str = "auto", batch_size: int | None = None, progress: bool | None = None,
                   cpu_streams: int | None = None, output_format: str | None = None, mark: bool = True,
                   sign: tuple[str, str] | None = None, install_dependencies: bool = False,
                   trust_remote_code: bool = False, save_images: bool = True, **inputs: Any) -> GenerationRun:
    """Generate shard ``shard`` (``"K/N"``, ``(K, N)`` or ``"auto"``, see :func:`parse_shard`) of a
    run into a shared folder; running it again resumes it."""
    from ..execution.marking import run_marker, run_signing
    from ..progress import progress_bar
    from ..outputs.marks import creation_time

    num_samples, seed, batch_size = check_options(num_samples, seed, batch_size, output_format)
    check_model(executor, inputs, install_dependencies, trust_remote_code, shared="Sharded runs need")
    parsed = parse_shard(shard)
    assert parsed is not None, "generate_shard needs a shard"
    k, n = parsed
    if seed is None or output_path is None or not save_images:
        raise InvalidArgumentError("A sharded run needs seed=, output_path= and save_images=True, the same for "
                                   "every shard, so the shards add up to one run.")
    device = resolve_device(device, executor.uses_torch)
    batch_size = batch_size or executor.default_batch_size()
    started = datetime.now(timezone.utc)
    signing = run_signing(sign) if mark else None  # a bad key fails before the folder is claimed
    store = LocalStore(output_path)
    specs = executor.output_specs(output_format)
    run = claim_run(store, executor.run_record(seed, num_samples, mark, shards=n, created=creation_time(),
                                               **({"output_format": output_format} if output_format else {})))
    indices = shard_range(num_samples, k, n)
    done = {i: row for i, row in load_done(store, num_samples, clean=False).items() if i in indices}
    todo = [i for i in indices if i not in done]
    if done:
        logger.info("Shard %d/%d: %d of %d samples already done; resuming", k, n, len(done), len(indices))
    per_sample = executor.per_sample_inputs(inputs, num_samples)
    shard_inputs = {**inputs, **{name: v[todo] for name, v in per_sample.items()}}
    stream = executor.batches(todo, seed, device, batch_size, cpu_streams, **shard_inputs)
    marker = run_marker(executor, seed, device, inputs, run.get("created"), signing) if mark else None
    writer = SharedWriter(store, specs, marker=marker)
    bar = progress_bar(len(indices), f"{executor.model_id} {k}/{n}", progress, initial=len(done))
    try:
        for batch in stream:
            writer.submit(batch.indices, batch.seeds, batch.arrays, batch.inputs)
            bar.update(len(batch))
        done.update(writer.finish())
    except BaseException:
        writer.abort()
        raise
    finally:
        bar.close()
    missing = [i for i in indices if i not in done]
    if missing:  # pragma: no cover - every batch either wrote its rows or raised
        raise OutputPathError(f"Shard {k}/{n} is missing samples {missing[:5]}; run it again to resume.")
    provenance = run_provenance(executor, seed, num_samples, batch_size, device, inputs, started, stream.streams,
                                marker, shard=f"{k}/{n}", indices=[indices.start, indices.stop],
                                outputs=[asdict(s) for s in specs])
    return finish(store, specs, (done[i] for i in indices), provenance, len(indices), int(seed), (k, n))
