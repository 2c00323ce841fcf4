"""Runs of a model, above the engine (:class:`medhub.execution.ModelExecutor`, the loaded model).

One home for every way of running a model, sharing one validation and one finish
(:mod:`medhub.runs.common`):

* :mod:`medhub.runs.single`: one process, samples in memory (a list) or files in a new folder;
* :mod:`medhub.runs.shards`: shard K of N of a run into a shared folder (torchrun, SLURM arrays);
* :mod:`medhub.runs.distributed`: a run on a Ray cluster.

Each entry point returns one type. medigan's flags (``save_images``, ``is_gen_function_returned``)
are mapped onto them by :meth:`medhub.Generators.generate`. Nothing is imported here.
"""
