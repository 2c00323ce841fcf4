"""The Hugging Face layout: an ``imagefolder`` with ``metadata.jsonl`` per split and a dataset card.

``train/`` and ``validation/`` hold the images and a ``metadata.jsonl`` each: ``file_name``, the
case id, ``synthetic``, the class ``label`` (conditional models), ``mask_file_name`` (image + mask
models) and the fields of the sample record. ``README.md`` is the dataset card, whose YAML header
carries licence, task, size category and tags (``synthetic`` among them). Load it with
``datasets.load_dataset("imagefolder", data_dir=DIR)``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..errors import InvalidArgumentError
from .base import Layout, Rows, json_line

_SPLITS = ("train", "validation")


class HfLayout(Layout):
    """``datasets`` imagefolder."""

    name = "hf"

    @classmethod
    def check(cls, parts: list[Any], name: str | None) -> None:
        super().check(parts, name)
        for part in parts:
            if part.image is not None and part.image.file_format != "png":
                raise InvalidArgumentError(f"Model {part.model_id} gives 3D volumes; the hf layout (imagefolder) "
                                           "holds 2D images: use --layout nnunet or monai.")

    def image_name(self, case: str, split: str, suffix: str) -> str:
        return f"{split}/{case}{suffix}"

    def mask_name(self, case: str, split: str, suffix: str) -> str:
        return f"{split}/masks/{case}{suffix}"

    def _metadata(self, row: dict[str, Any]) -> dict[str, Any]:
        split = row["split"]
        out: dict[str, Any] = {"file_name": row["image"][len(split) + 1:], "case": row["case"],
                               "synthetic": row["synthetic"]}
        if self.info.segmentation:
            out["mask_file_name"] = row["mask"][len(split) + 1:] if row.get("mask") else None
        if self.info.classes:
            out["label"] = row.get("label")
        record = row.get("record") or {}
        for key in ("mark", "medhub_version", "model_id", "model_version", "package_digest", "commit", "seed",
                    "sample_seed", "index", "output", "inputs_digest", "device", "created"):
            out[key] = record.get(key)
        out["inputs"] = _text(record.get("inputs"))
        return out

    def write_metadata(self, root: Path, rows: Rows) -> None:
        files = {}
        try:
            for split in _SPLITS:
                (root / split).mkdir(exist_ok=True)
                files[split] = open(root / split / "metadata.jsonl", "w", encoding="utf-8")
            for row in rows():
                files[row["split"]].write(json_line(self._metadata(row)))
        finally:
            for fh in files.values():
                fh.close()
        for split in _SPLITS:  # an empty split would stop load_dataset
            if (root / split / "metadata.jsonl").stat().st_size == 0:
                (root / split / "metadata.jsonl").unlink()
                (root / split).rmdir()


def _text(inputs: Any) -> str | None:
    """The inputs as one JSON text (a column of one type, whatever each model takes)."""
    import json

    return json.dumps(inputs, sort_keys=True) if inputs is not None else None
