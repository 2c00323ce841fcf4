"""What a dataset holds, decided before any file is written: its models and counts, its cases, its split.

A dataset is a sequence of cases: the synthetic cases of each model in the order given (model A's
``N_A`` cases, then model B's...), then the user's real cases. Case ``g`` of model part ``j`` is
sample ``g - offset_j`` of that model's run seeded ``seed``: it depends only on (seed, index), so a
shard of the cases gives the same files as a whole build. The validation cases are drawn once from
the seed (:func:`validation_mask`), so the split is the same on every machine and in every shard.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..errors import InvalidArgumentError
from ..outputs import OutputSpec

_NON_COMMERCIAL = re.compile(r"non[- ]?commercial|\bnc\b|-nc\b|cc[- ]by[- ]nc", re.IGNORECASE)


def parse_models(models: Sequence[str | int], num_samples: int | None) -> list[tuple[str, int]]:
    """``["104:500", "107:20"]`` (or one model and ``num_samples``) -> ``[("104", 500), ("107", 20)]``.

    Example:
        >>> parse_models(["104:5", "00107:2"], None)
        [('104', 5), ('00107', 2)]
        >>> parse_models([104], 3)
        [('104', 3)]
    """
    if not models:
        raise InvalidArgumentError("Give at least one model, e.g. `medhub dataset 104 -n 500` or `104:300 107:20`.")
    parsed = []
    for item in models:
        text = str(item).strip()
        name, _, count = text.partition(":")
        if count:
            if num_samples is not None:
                raise InvalidArgumentError(f"Give counts either as MODEL:N or with -n, not both ({text!r} and -n).")
            if not count.isdigit() or int(count) < 1:
                raise InvalidArgumentError(f"{text!r}: the count after ':' must be a positive integer, e.g. 104:500.")
            parsed.append((name, int(count)))
        elif num_samples is not None and len(models) == 1:
            if isinstance(num_samples, bool) or not isinstance(num_samples, int) or num_samples < 1:
                raise InvalidArgumentError(f"num_samples must be a positive integer, not {num_samples!r}.")
            parsed.append((name, num_samples))
        else:
            raise InvalidArgumentError(f"Model {text!r} has no count: write {text}:N (several models) or give -n N "
                                       "(one model).")
    return parsed


def label_names(outputs: Sequence[Mapping[str, Any]], name: str, values: Sequence[Any] | None) -> list[str]:
    """Names of the classes of output ``name``: its ``labels`` in the catalog, else its values as text,
    else background / foreground (a binary mask).

    Example:
        >>> label_names([{"name": "mask", "values": [0, 1], "labels": ["background", "lung"]}], "mask", (0, 1))
        ['background', 'lung']
        >>> label_names([], "mask", None)
        ['background', 'foreground']
    """
    entry = next((o for o in outputs if o.get("name") == name), {})
    if entry.get("labels"):
        return [str(v) for v in entry["labels"]]
    if values:
        return ["background" if i == 0 and str(v) == "0" else str(v) for i, v in enumerate(values)]
    return ["background", "foreground"]


def to_label_map(arr: np.ndarray, values: Sequence[Any] | None) -> np.ndarray:
    """A mask as consecutive label integers (uint8): value ``values[k]`` -> k; without declared
    values a binary mask (any non-zero value, or 0.5 and above for floats) -> 0/1.

    Example:
        >>> to_label_map(np.array([[0, 255], [255, 0]], np.uint8), None).tolist()
        [[0, 1], [1, 0]]
        >>> to_label_map(np.array([0, 85, 170], np.uint8), [0, 85, 170]).tolist()
        [0, 1, 2]
    """
    if values is None:
        return (arr >= 0.5 if arr.dtype.kind == "f" else arr != 0).astype(np.uint8)
    declared = np.asarray(values)
    order = np.argsort(declared, kind="stable")
    position = np.searchsorted(declared[order], arr)
    return order[np.clip(position, 0, len(order) - 1)].astype(np.uint8)


@dataclass
class Part:
    """One model of the dataset: its executor, count, first case, outputs and catalog facts."""

    model_id: str
    count: int
    offset: int
    executor: Any
    entry: dict[str, Any]
    image: OutputSpec | None = None
    mask: OutputSpec | None = None
    label: OutputSpec | None = None
    balance: list[Any] | None = None  # the conditions drawn in turn (--balance)
    stream: Any = None  # the model's batches, when its first call was needed to learn its outputs

    @property
    def condition_input(self) -> str | None:
        """The name of the model's condition input, for a conditional model (e.g. 00103)."""
        names = set(self.executor.spec.per_sample_inputs) | set(self.executor.spec.custom_args)
        return "condition" if "condition" in names and self.label is not None and self.label.values else None

    @property
    def mask_labels(self) -> list[str]:
        """The names of the mask's labels 0, 1, 2... (from the catalog's outputs spec)."""
        if self.mask is None:
            return []
        outputs = self.executor.execution_config.get("outputs") or []
        return label_names(outputs, self.mask.name, self.mask.values)

    @property
    def classes(self) -> list[str] | None:
        """The class labels of a conditional model (its label output's values), else None."""
        return [str(v) for v in self.label.values] if self.label is not None and self.label.values else None

    def inputs(self, indices: range) -> dict[str, Any]:
        """The model inputs of the samples at ``indices`` (the balanced conditions)."""
        if self.balance is None or self.condition_input is None:
            return {}
        k = len(self.balance)
        return {self.condition_input: np.array([self.balance[i % k] for i in indices], dtype=object)}

    def read_specs(self, specs: Sequence[OutputSpec]) -> None:
        """Pick the image (or volume), mask and class label outputs of the model."""
        self.image = next((s for s in specs if s.kind in ("image", "volume")), None)
        self.mask = next((s for s in specs if s.kind == "mask"), None)
        self.label = next((s for s in specs if s.kind == "label" and s.values), None)

    def facts(self, seed: int) -> dict[str, Any]:
        """What the dataset card says of the model: version, licence, seed, count, intended use, metrics."""
        description = self.entry.get("description", {}) or {}
        selection = self.entry.get("selection", {}) or {}
        return {
            "model_id": self.model_id,
            "title": description.get("title"),
            "version": description.get("version"),
            "license": selection.get("license") or None,
            "seed": seed,
            "count": self.count,
            "intended_use": description.get("intended_use") or description.get("comment"),
            "metrics": {k: v for k, v in (selection.get("performance", {}) or {}).items()
                        if isinstance(v, (int, float)) and not isinstance(v, bool)},
            "modality": (selection.get("modality") or [None])[0],
        }


def licence_warnings(facts: Sequence[Mapping[str, Any]]) -> list[str]:
    """One warning per model that states no licence or a non-commercial one.

    Example:
        >>> licence_warnings([{"model_id": "a", "license": "CC-BY-NC-4.0"}, {"model_id": "b", "license": None}])
        ['a: non-commercial licence (CC-BY-NC-4.0): the dataset may not be used commercially', 'b: no licence stated: \
ask its authors before you share or use the dataset']
    """
    out = []
    for f in facts:
        lic = f.get("license")
        if not lic or str(lic).strip().lower() in ("none", "unknown", "n/a"):
            out.append(f"{f['model_id']}: no licence stated: ask its authors before you share or use the dataset")
        elif _NON_COMMERCIAL.search(str(lic)):
            out.append(f"{f['model_id']}: non-commercial licence ({lic}): the dataset may not be used commercially")
    return out


def validation_mask(total: int, fraction: float, seed: int) -> np.ndarray:
    """Which of ``total`` cases are validation cases: ``round(fraction * total)`` of them, drawn from ``seed``.

    Example:
        >>> int(validation_mask(10, 0.2, 0).sum())
        2
    """
    mask = np.zeros(total, bool)
    n_val = int(round(fraction * total))
    if n_val:
        mask[np.random.default_rng([int(seed), 0x5EED]).permutation(total)[:n_val]] = True
    return mask
