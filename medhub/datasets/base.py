"""What every layout shares: the dataset's facts (:class:`DatasetInfo`), the case rows and the layout interface.

A build writes each case's files where its layout says (:meth:`Layout.image_name`,
:meth:`Layout.mask_name`) and one row per case to ``cases.jsonl`` (case id, split, synthetic or
real, files, class label, the sample record); when all cases are written, the layout writes its
metadata files from those rows (:meth:`Layout.write_metadata`), streaming, so memory does not grow
with the number of cases.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import InvalidArgumentError

#: The per-case rows of every dataset, one JSON object per line, in case order.
CASES = "cases.jsonl"

Rows = Callable[[], Iterator[dict[str, Any]]]


@dataclass
class DatasetInfo:
    """The facts of a dataset that its metadata files and card state."""

    name: str
    layout: str
    seed: int
    created: str
    segmentation: bool
    ndim: int
    channels: int
    mask_labels: list[str]
    classes: list[str] | None
    models: list[dict[str, Any]]
    num_cases: int
    num_real: int
    num_validation: int
    val_fraction: float
    balance: bool
    warnings: list[str] = field(default_factory=list)

    @property
    def licences(self) -> list[str]:
        """The set of the models' licences (the dataset's licence statement), sorted; "none stated" for a
        model without one."""
        return sorted({str(m.get("license") or "none stated") for m in self.models})

    @property
    def modality(self) -> str:
        return str(self.models[0].get("modality") or "image") if self.models else "image"

    def provenance(self) -> dict[str, Any]:
        """The dataset-level record stored in the metadata files."""
        return {"synthetic": True, "name": self.name, "layout": self.layout, "seed": self.seed,
                "created": self.created, "num_cases": self.num_cases, "num_real": self.num_real,
                "num_validation": self.num_validation, "val_fraction": self.val_fraction, "balance": self.balance,
                "licences": self.licences, "warnings": self.warnings, "models": self.models}


def read_rows(path: Path) -> Iterator[dict[str, Any]]:
    """The rows of a ``cases.jsonl`` file, one at a time."""
    with open(path, encoding="utf-8") as fh:
        for line in fh:
            if line.strip():
                yield json.loads(line)


def json_line(obj: Any) -> str:
    """One line of a JSON-lines file (keys in the order given: the same bytes on every run)."""
    return json.dumps(obj, ensure_ascii=False, separators=(", ", ": ")) + "\n"


class Layout:
    """A folder layout of a training framework. Subclasses set the names and write the metadata."""

    #: The ``--layout`` name.
    name = ""
    #: True when every case needs a mask (nnU-Net).
    needs_mask = False

    def __init__(self, info: DatasetInfo) -> None:
        self.info = info

    @classmethod
    def check(cls, parts: list[Any], name: str | None) -> None:
        """Refuse models whose outputs this layout cannot hold (one line naming the model)."""
        for part in parts:
            if part.image is None:
                raise InvalidArgumentError(f"Model {part.model_id} gives no image output; the {cls.name} layout "
                                           "needs images.")
            if cls.needs_mask and part.mask is None:
                raise InvalidArgumentError(f"Model {part.model_id} gives no mask; the {cls.name} layout needs "
                                           "image + mask models (e.g. 00104, 00107).")
        kinds = {(part.mask is not None) for part in parts}
        if len(kinds) > 1:
            raise InvalidArgumentError("Mix either image + mask models or image-only models in one dataset, not both: "
                                       + ", ".join(f"{p.model_id} ({'mask' if p.mask else 'no mask'})" for p in parts))
        dims = {len(part.image.shape) - (1 if part.image.channels and len(part.image.shape) == 3
                                         and part.image.kind == "image" else 0) for part in parts}
        if len(dims) > 1:
            raise InvalidArgumentError("The models give images of different dimensions (2D and 3D); build one "
                                       "dataset per dimension.")

    def folder(self) -> str:
        """The dataset's folder inside the output folder ('' for the output folder itself)."""
        return ""

    @staticmethod
    def suffix(spec: Any) -> str:
        """The file ending of an output: its usual format's (``.png``, ``.nii.gz``)."""
        return ".png" if spec.file_format == "png" else ".nii.gz"

    def image_name(self, case: str, split: str, suffix: str) -> str:
        return f"images/{case}{suffix}"

    def mask_name(self, case: str, split: str, suffix: str) -> str:
        return f"masks/{case}{suffix}"

    def write_metadata(self, root: Path, rows: Rows) -> None:
        """Write the layout's metadata files into ``root`` from the case rows."""
        raise NotImplementedError

    def next_steps(self, final: Path) -> str | None:
        """What to run next (printed by the command), or None."""
        return None
