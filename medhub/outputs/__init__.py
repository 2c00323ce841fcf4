"""The output layer: specs and their checks, encoders, the manifest, and the run folders.

* :mod:`~medhub.outputs.specs`: what one sample holds (:class:`OutputSpec`) and the batch checks;
* :mod:`~medhub.outputs.encode`: one output of one sample -> the bytes of its file;
* :mod:`~medhub.outputs.marks`: the mark every file carries (its sample record; IPTC
  ``trainedAlgorithmicMedia``), read back from any format; :mod:`~medhub.outputs.credentials`:
  optional C2PA content credentials on PNG files;
* :mod:`~medhub.outputs.manifest`: one manifest row builder and one manifest writer;
* :mod:`~medhub.outputs.runs`: a single-process run, written privately and published whole;
* :mod:`~medhub.outputs.store` and :mod:`~medhub.outputs.shared`: shared runs (shards, Ray) with
  one run claim and one resume journal.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

# ``encode`` is both a submodule and a function: importing the submodule (as the writers do) binds the
# package's ``encode`` to the module, so the function is bound here, after it, as before (the encoders are light).
from .encode import encode, encode_png, sample_filename, write_file, write_png

if TYPE_CHECKING:  # the same names for type checkers and the API docs (imported on first use below)
    from .manifest import ManifestWriter, merge_manifests, read_manifest, sample_rows
    from .runs import GenerationRun, RunWriter, output_folder, prepare_output_dir, remove_stale_runs, unique_run_dir
    from .specs import OutputSpec, check_outputs, from_samples, infer_specs, parse_specs, to_samples

#: Where the other public names live. They are imported on first use (PEP 562), so a run that only
#: checks outputs (in memory, a DataLoader) does not import the writer stack (manifest, run folders,
#: writer processes): that was a cost of every process's first in-memory ``generate``.
_HOMES = {
    "ManifestWriter": "manifest", "merge_manifests": "manifest", "read_manifest": "manifest",
    "sample_rows": "manifest",
    "GenerationRun": "runs", "RunWriter": "runs", "output_folder": "runs", "prepare_output_dir": "runs",
    "remove_stale_runs": "runs", "unique_run_dir": "runs",
    "OutputSpec": "specs", "check_outputs": "specs", "from_samples": "specs", "infer_specs": "specs",
    "parse_specs": "specs", "to_samples": "specs",
}


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(import_module(f".{home}", __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_HOMES})


__all__ = [
    "GenerationRun",
    "ManifestWriter",
    "OutputSpec",
    "RunWriter",
    "check_outputs",
    "encode",
    "encode_png",
    "from_samples",
    "infer_specs",
    "merge_manifests",
    "output_folder",
    "parse_specs",
    "prepare_output_dir",
    "read_manifest",
    "remove_stale_runs",
    "sample_filename",
    "sample_rows",
    "to_samples",
    "unique_run_dir",
    "write_file",
    "write_png",
]
