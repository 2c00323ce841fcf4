"""The nnU-Net v2 layout: ``DatasetNNN_Name/imagesTr/<case>_0000.<ext>``, ``labelsTr/<case>.<ext>``, ``dataset.json``.

2D cases are PNG files (read by nnU-Net's ``NaturalImage2DIO``), 3D cases NIfTI (``.nii.gz``).
Labels are label integers (0 background, 1, 2, ... consecutive), never 0/255 pictures. nnU-Net
makes its own cross-validation folds, so ``--val-fraction`` is refused.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from ..errors import InvalidArgumentError
from .base import Layout, Rows
from .card import description

_NAME = re.compile(r"Dataset(\d{3})_[A-Za-z0-9_-]+")
DEFAULT_NAME = "Dataset500_Synthetic"


def check_name(name: str | None) -> str:
    """The dataset folder name nnU-Net requires: ``DatasetNNN_Name``.

    Example:
        >>> check_name("Dataset501_SynthT1")
        'Dataset501_SynthT1'
    """
    name = name or DEFAULT_NAME
    if not _NAME.fullmatch(name):
        raise InvalidArgumentError(f"nnU-Net dataset names look like Dataset501_SynthT1 (three digits, then a name "
                                   f"of letters, digits, _ or -), not {name!r}; give --name.")
    return name


class NnunetLayout(Layout):
    """nnU-Net v2 raw dataset (``nnUNet_raw/DatasetNNN_Name``)."""

    name = "nnunet"
    needs_mask = True

    @classmethod
    def check(cls, parts: list[Any], name: str | None) -> None:
        super().check(parts, name)
        check_name(name)
        labels = {tuple(p.mask_labels) for p in parts}
        if len(labels) > 1:
            raise InvalidArgumentError("The models' masks have different labels ("
                                       + "; ".join(f"{p.model_id}: {', '.join(p.mask_labels)}" for p in parts)
                                       + "); nnU-Net needs one label set per dataset.")

    def folder(self) -> str:
        return check_name(self.info.name)

    def image_name(self, case: str, split: str, suffix: str) -> str:
        return f"imagesTr/{case}_0000{suffix}"

    def mask_name(self, case: str, split: str, suffix: str) -> str:
        return f"labelsTr/{case}{suffix}"

    def write_metadata(self, root: Path, rows: Rows) -> None:
        info = self.info
        ending = next((_ending(r["image"]) for r in rows()), ".png")
        channels = ({"0": "R", "1": "G", "2": "B"} if info.channels == 3 else {"0": info.modality})
        data: dict[str, Any] = {
            "channel_names": channels,
            "labels": {name: i for i, name in enumerate(info.mask_labels)},
            "numTraining": info.num_cases,
            "file_ending": ending,
        }
        if ending == ".png":
            data["overwrite_image_reader_writer"] = "NaturalImage2DIO"
        data.update(name=info.name, description=description(info), reference="generated with medhub",
                    licence=", ".join(info.licences), release=info.created, medhub=info.provenance())
        (root / "dataset.json").write_text(json.dumps(data, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")

    def next_steps(self, final: Path) -> str:
        number = int(_NAME.fullmatch(self.folder()).group(1))  # type: ignore[union-attr]
        return (f"nnUNet_raw={final} nnUNet_preprocessed={final.parent / 'nnUNet_preprocessed'} "
                f"nnUNet_results={final.parent / 'nnUNet_results'} "
                f"nnUNetv2_plan_and_preprocess -d {number} --verify_dataset_integrity")


def _ending(name: str) -> str:
    return ".nii.gz" if name.endswith(".nii.gz") else Path(name).suffix
