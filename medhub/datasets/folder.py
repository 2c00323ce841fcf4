"""The plain layout: ``images/<case>.<ext>``, ``masks/<case>.<ext>`` (label integers) and ``cases.csv``.

``cases.csv`` has one row per case: case id, split, synthetic (1/0), image, mask, class label,
model, seed, sample seed and index (the full sample records are in ``cases.jsonl``).
"""

from __future__ import annotations

import csv
from pathlib import Path

from .base import Layout, Rows

COLUMNS = ("case", "split", "synthetic", "image", "mask", "label", "model_id", "model_version", "seed", "sample_seed",
           "index")


class FolderLayout(Layout):
    """Images and masks in folders, with a CSV."""

    name = "folder"

    def write_metadata(self, root: Path, rows: Rows) -> None:
        with open(root / "cases.csv", "w", newline="", encoding="utf-8") as fh:
            writer = csv.writer(fh, lineterminator="\n")
            writer.writerow(COLUMNS)
            for row in rows():
                record = row.get("record") or {}
                writer.writerow([row["case"], row["split"], int(row["synthetic"]), row["image"], row.get("mask") or "",
                                 "" if row.get("label") is None else row["label"],
                                 *("" if record.get(k) is None else record[k]
                                   for k in ("model_id", "model_version", "seed", "sample_seed", "index"))])
