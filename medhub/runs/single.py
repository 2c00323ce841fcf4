"""A run in one process: the samples in memory (:func:`generate_samples`, a list as medigan returns
it) or written to a new folder (:func:`generate_files`, a :class:`~medhub.outputs.GenerationRun`).

Example:
    >>> from medhub.config import ConfigManager
    >>> from medhub.execution.ref import executor_for
    >>> images = generate_samples(executor_for(ConfigManager(), 101), 2, seed=0, progress=False)
    >>> images[0].shape
    (64, 64)
"""

from __future__ import annotations

import os
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

from ..execution import ModelExecutor
from ..execution.device import resolve_device
from ..execution.pipeline import collect
from ..execution.seeds import new_seed
from ..outputs.specs import to_samples
from ..progress import progress_bar
from ..validate import check_in_memory
from .common import check_model, check_options, run_provenance

if TYPE_CHECKING:  # the writer stack loads with the first run to files
    from ..outputs.runs import GenerationRun


def generate_samples(executor: ModelExecutor, num_samples: int, seed: int | None = None, device: str = "auto",
                     batch_size: int | None = None, progress: bool | None = None, cpu_streams: int | None = None,
                     install_dependencies: bool = False, trust_remote_code: bool = False,
                     **inputs: Any) -> list[Any]:
    """``num_samples`` samples in memory: arrays, or tuples ``(image, mask, ..., label)``."""
    num_samples, seed, batch_size = check_options(num_samples, seed, batch_size, None)
    check_model(executor, inputs, install_dependencies, trust_remote_code)
    device = resolve_device(device, executor.uses_torch)
    stream = executor.batches(range(num_samples), new_seed() if seed is None else seed, device,
                              batch_size or executor.default_batch_size(), cpu_streams, **inputs)
    bar = progress_bar(num_samples, executor.model_id, progress)
    try:
        check_in_memory(executor.model_id, num_samples, sum(spec.nbytes for spec in stream.specs))
        return to_samples(collect(stream, bar), executor.specs)
    finally:
        bar.close()


def generate_files(executor: ModelExecutor, num_samples: int, output_path: str | os.PathLike[str] | None = None,
                   seed: int | None = None, device: str = "auto", batch_size: int | None = None,
                   progress: bool | None = None, cpu_streams: int | None = None, output_format: str | None = None,
                   mark: bool = True, sign: tuple[str, str] | None = None, install_dependencies: bool = False,
                   trust_remote_code: bool = False, **inputs: Any) -> GenerationRun:
    """``num_samples`` samples written to ``output_path`` (default: a new folder under
    ``MEDHUB_HOME/outputs/<model_id>/``) with ``manifest.csv`` and ``provenance.json``."""
    from ..outputs.runs import RunWriter, signals_as_exit, unique_run_dir

    num_samples, seed, batch_size = check_options(num_samples, seed, batch_size, output_format, output_path)
    check_model(executor, inputs, install_dependencies, trust_remote_code)
    device = resolve_device(device, executor.uses_torch)
    batch_size = batch_size or executor.default_batch_size()
    started = datetime.now(timezone.utc)
    run_seed = new_seed() if seed is None else seed
    stream = executor.batches(range(num_samples), run_seed, device, batch_size, cpu_streams, **inputs)
    bar = progress_bar(num_samples, executor.model_id, progress)
    try:
        if output_path is None:
            from .._paths import medhub_home

            output_path = unique_run_dir(medhub_home() / "outputs", executor.model_id)
        from ..execution.marking import run_marker

        marker = run_marker(executor, run_seed, device, inputs, sign=sign) if mark else None
        with signals_as_exit():
            writer = RunWriter(output_path, executor.output_specs(output_format, stream.specs), marker=marker)
            try:
                for batch in stream:
                    writer.submit(batch.indices, batch.seeds, batch.arrays, batch.inputs)
                    bar.update(len(batch))
                return writer.finish(run_provenance(executor, run_seed, writer.num_samples, batch_size, device,
                                                    inputs, started, stream.streams, marker,
                                                    requested_samples=num_samples))
            except BaseException:
                writer.abort()
                raise
    finally:
        bar.close()
