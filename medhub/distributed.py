"""Moved to :mod:`medhub.runs.distributed` (the runs of a model live in :mod:`medhub.runs`); this
name stays for code written against medhub 0.2 (``from medhub.distributed import generate_on_ray``)."""

from .runs.distributed import ChunkWorker, bounded_dispatch, generate_on_ray, import_ray

__all__ = ["ChunkWorker", "bounded_dispatch", "generate_on_ray", "import_ray"]
