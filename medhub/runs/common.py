"""What every run shares: the one validation of its model and options, its provenance record, and
the one finish of a shared run (manifest, provenance, :class:`~medhub.outputs.GenerationRun`).

File names come from :data:`~medhub.outputs.manifest.MANIFEST` and
:data:`~medhub.outputs.manifest.PROVENANCE` (and their shard parts,
:func:`~medhub.outputs.manifest.part_name`).
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import TYPE_CHECKING, Any

from ..errors import InvalidArgumentError
from ..execution import ModelExecutor
from ..execution.inputs import check_inputs
from ..execution.marking import mark_provenance
from ..execution.seeds import check_seed
from ..outputs.specs import OutputSpec, check_format
from ..validate import check_batch_size, check_num_samples

if TYPE_CHECKING:  # the writer stack loads with the first run to files (an in-memory run never needs it)
    from ..outputs.manifest import MANIFEST, PROVENANCE
    from ..outputs.marks import Marker
    from ..outputs.runs import GenerationRun
    from ..outputs.store import FsspecStore, LocalStore

    Store = LocalStore | FsspecStore


def check_options(num_samples: Any, seed: Any, batch_size: Any, output_format: str | None,
                  output_path: str | os.PathLike[str] | None = None) -> tuple[int, int | None, int | None]:
    """The run options every run checks first: ``(num_samples, seed, batch_size)``, checked; and a
    bad ``output_path`` (when given) fails before any work."""
    num_samples = check_num_samples(num_samples)
    check_format(output_format)
    seed = check_seed(seed)
    batch_size = check_batch_size(batch_size)
    if output_path is not None:
        from ..outputs.runs import output_folder

        output_folder(output_path)
    return num_samples, seed, batch_size


def check_model(executor: ModelExecutor, inputs: Mapping[str, Any], install_dependencies: bool = False,
                trust_remote_code: bool = False, shared: str | None = None) -> None:
    """The one validation of a run's model: prepared (fetched, verified, imported), its inputs
    named right, and for a run shared by processes (``shared``: who needs it, e.g. ``"Sharded runs
    need"``) a native kind (sample i depends only on (seed, i)) with an outputs spec in the catalog."""
    executor.prepare(install_dependencies, trust_remote_code)
    check_inputs(executor, inputs)
    if shared is None:
        return
    if not executor.is_native:
        raise InvalidArgumentError(f"{shared} a medhub/1 package (sample i depends only on (seed, i)); "
                                   f"{executor.model_id} uses the {executor.interface} interface. Use generate() "
                                   "in one process.")
    if not executor.specs:
        raise InvalidArgumentError(f"{shared} the outputs spec of {executor.model_id} in the catalog.")


def run_provenance(executor: ModelExecutor, seed: int, num_samples: int, batch_size: int, device: str,
                   inputs: Mapping[str, Any], started: datetime, streams: int, marker: Marker | None,
                   **extra: Any) -> dict[str, Any]:
    """The ``provenance.json`` record of a run: the model's (:meth:`ModelExecutor.provenance`), the
    run's ``extra`` items, then its marks."""
    return dict(executor.provenance(seed, num_samples, batch_size, device, inputs, started, streams), **extra,
                **mark_provenance(marker))


def run_result(store: Store, num_samples: int, seed: int, manifest: str | None = None,
               provenance: str | None = None) -> GenerationRun:
    """The :class:`GenerationRun` of a shared run's folder (URLs as strings for fsspec stores; by
    default its :data:`~medhub.outputs.manifest.MANIFEST` and :data:`~medhub.outputs.manifest.PROVENANCE`)."""
    from ..outputs.manifest import MANIFEST, PROVENANCE
    from ..outputs.runs import GenerationRun
    from ..outputs.store import LocalStore

    manifest, provenance = manifest or MANIFEST, provenance or PROVENANCE
    if isinstance(store, LocalStore):
        return GenerationRun(store.root, num_samples, seed, store.root / manifest, store.root / provenance)
    return GenerationRun(store.url, num_samples, seed, store.location(manifest),  # type: ignore[arg-type]
                         store.location(provenance))  # type: ignore[arg-type]


def finish(store: Store, specs: list[OutputSpec], rows: Iterable[dict[str, Any]], provenance: dict[str, Any],
           num_samples: int, seed: int, part: tuple[int, int] | None = None) -> GenerationRun:
    """The finish of a shared run: its manifest and provenance (shard K of N: their parts, then
    the whole manifest once every part is there), each written whole."""
    from ..outputs.manifest import MANIFEST, PROVENANCE, manifest_text, part_name, try_merge
    from ..outputs.store import LocalStore

    manifest, record = (MANIFEST, PROVENANCE) if part is None else (part_name(*part), part_name(*part, "provenance",
                                                                                                ".json"))
    store.write_bytes(manifest, manifest_text(specs, rows).encode())
    store.write_bytes(record, (json.dumps(provenance, indent=2, default=str) + "\n").encode())
    if part is not None and isinstance(store, LocalStore) and try_merge(store.root):
        manifest = MANIFEST
    return run_result(store, num_samples, seed, manifest, record)
