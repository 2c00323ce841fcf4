"""Moved to :mod:`medhub.runs.shards` (the runs of a model live in :mod:`medhub.runs`); this name
stays for code written against medhub 0.2."""

from .runs.shards import generate_shard, merge_manifests, parse_shard, shard_range

__all__ = ["generate_shard", "merge_manifests", "parse_shard", "shard_range"]
