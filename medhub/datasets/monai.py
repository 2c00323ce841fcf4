"""The MONAI layout: a Medical Segmentation Decathlon style ``dataset.json`` with ``training`` and ``validation``.

Read it with ``monai.data.load_decathlon_datalist(path, data_list_key="training")`` (and
``"validation"``) and load items with ``LoadImaged``. Segmentation cases have ``image`` and
``label`` (a label map file); classification cases have ``image`` and ``label`` (the class index,
load with ``is_segmentation=False``) and ``class_name``. Every item says ``synthetic`` and names its
``case``; the sample records are in ``cases.jsonl``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from .base import Layout, Rows
from .card import description


class MonaiLayout(Layout):
    """Decathlon-style datalist for MONAI."""

    name = "monai"

    def image_name(self, case: str, split: str, suffix: str) -> str:
        return f"imagesTr/{case}{suffix}"

    def mask_name(self, case: str, split: str, suffix: str) -> str:
        return f"labelsTr/{case}{suffix}"

    def _item(self, row: dict[str, Any]) -> dict[str, Any]:
        item: dict[str, Any] = {"image": f"./{row['image']}"}
        if row.get("mask"):
            item["label"] = f"./{row['mask']}"
        elif self.info.classes and row.get("label") is not None:
            item["label"] = self.info.classes.index(str(row["label"]))
            item["class_name"] = str(row["label"])
        item.update(case=row["case"], synthetic=row["synthetic"], model_id=row.get("model_id"))
        return item

    def write_metadata(self, root: Path, rows: Rows) -> None:
        info = self.info
        head = {
            "name": info.name,
            "description": description(info),
            "reference": "generated with medhub",
            "licence": ", ".join(info.licences),
            "release": info.created,
            "tensorImageSize": f"{info.ndim}D",
            "modality": {"0": info.modality},
            "labels": ({str(i): n for i, n in enumerate(info.mask_labels)} if info.segmentation
                       else {str(i): n for i, n in enumerate(info.classes or [])}),
            "numTraining": info.num_cases - info.num_validation,
            "numValidation": info.num_validation,
            "numTest": 0,
            "medhub": info.provenance(),
        }
        with open(root / "dataset.json", "w", encoding="utf-8") as fh:
            fh.write(json.dumps(head, indent=2, ensure_ascii=False)[:-2] + ",\n")
            for key, split in (("training", "train"), ("validation", "validation")):
                fh.write(f'  "{key}": [')
                first = True
                for row in rows():
                    if row["split"] == split:
                        fh.write(("\n    " if first else ",\n    ") + json.dumps(self._item(row), ensure_ascii=False))
                        first = False
                fh.write("\n  ],\n" if not first else "],\n")
            fh.write('  "test": []\n}\n')
