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

from .encode import encode, encode_png, sample_filename, write_file, write_png
from .manifest import ManifestWriter, merge_manifests, read_manifest, sample_rows
from .runs import GenerationRun, RunWriter, output_folder, prepare_output_dir, remove_stale_runs, unique_run_dir
from .specs import OutputSpec, check_outputs, from_samples, infer_specs, parse_specs, to_samples

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
