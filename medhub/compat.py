"""Conversion of medigan's catalog format (``global.json`` of medigan 1.0.0) into medhub's schema.

A malformed medigan entry is refused with :class:`~medhub.errors.CatalogError` naming the JSON path
of the bad value in the medigan document (``$.<model_id>.execution.image_size[0]``).
"""

from __future__ import annotations

import copy
import logging
from typing import Any

from .errors import CatalogError

logger = logging.getLogger("medhub.config")

#: medigan dependency names that are not installable distributions (pathlib is in the stdlib).
_NOT_DISTRIBUTIONS = {"path"}


def is_medigan_catalog(doc: Any) -> bool:
    """True for a medigan catalog: a mapping of model ids to entries with an ``execution`` object."""
    return (
        isinstance(doc, dict)
        and "models" not in doc
        and bool(doc)
        and all(isinstance(v, dict) and "execution" in v for v in doc.values())
    )


def _bad(where: str, what: str, value: Any) -> CatalogError:
    shown = repr(value) if len(repr(value)) <= 60 else repr(value)[:57] + "..."
    return CatalogError(f"{where} must be {what}, not {shown} (medigan catalog).")


def _object(value: Any, where: str) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise _bad(where, "an object", value)
    return value


def _dependencies(value: Any, where: str) -> list[str]:
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(d, str) for d in value):
        raise _bad(where, 'a list of requirement strings, e.g. ["numpy", "torch"]', value)
    return [d.strip() for d in value if d.strip() and d.strip().lower() not in _NOT_DISTRIBUTIONS]


def _image_size(value: Any, where: str) -> list[int]:
    if not isinstance(value, list):
        raise _bad(where, "a list of positive integers, e.g. [128, 128]", value)
    out = []
    for i, size in enumerate(value):
        if isinstance(size, bool) or not isinstance(size, (int, str)) or not str(size).strip().isdigit() \
                or int(size) < 1:
            raise _bad(f"{where}[{i}]", "a positive integer", size)
        out.append(int(size))
    return out


def convert_medigan_entry(entry: dict[str, Any], model_id: str = "entry") -> dict[str, Any]:
    """Return a medhub catalog entry for one medigan entry (the input is not modified).

    The package stays a remote medigan-interface package with no pinned sha256 (medigan pins
    none), so medhub runs it only when the user says it trusts it.

    Example:
        >>> convert_medigan_entry({"execution": {"package_link": "https://x/a.zip", "dependencies": "numpy"}}, "00001_A")
        Traceback (most recent call last):
        ...
        medhub.errors.CatalogError: $.00001_A.execution.dependencies must be a list of requirement strings, e.g. ["numpy", "torch"], not 'numpy' (medigan catalog).
    """
    where = f"$.{model_id}"
    entry = copy.deepcopy(_object(entry, where))
    execution = _object(entry.get("execution"), f"{where}.execution")
    link = execution.get("package_link")
    if not isinstance(link, str) or not link.strip():
        if link is None:
            raise CatalogError(f"{where}.execution.package_link is missing: give the URL of the model's package "
                               "archive (medigan catalog).")
        raise _bad(f"{where}.execution.package_link", "the URL of the model's package archive", link)
    out_exec: dict[str, Any] = {
        # an empty package_name (historical medigan entries) means the package sits at the archive's root
        "package_name": execution.get("package_name") or None,
        "package_link": link,
        "sha256": None,
        "size": None,
        "interface": "medigan",
        "model_name": execution.get("model_name"),
        "extension": execution.get("extension"),
        "dependencies": _dependencies(execution.get("dependencies"), f"{where}.execution.dependencies"),
        "generate_method": _object(execution.get("generate_method"), f"{where}.execution.generate_method")
        or {"name": "generate"},
    }
    if execution.get("image_size") is not None:
        out_exec["image_size"] = _image_size(execution["image_size"], f"{where}.execution.image_size")
    out_exec = {k: v for k, v in out_exec.items() if v is not None or k in ("sha256", "size")}
    description = _object(entry.get("description"), f"{where}.description")
    if isinstance(description.get("doi"), str):
        description["doi"] = [description["doi"]]
    if description.get("version") is not None:
        description["version"] = str(description["version"])
    selection = _object(entry.get("selection"), f"{where}.selection")
    return {"execution": out_exec, "selection": selection, "description": description}


def convert_medigan_catalog(doc: dict[str, Any], catalog_version: str = "0.0.0") -> dict[str, Any]:
    """Return a medhub catalog document holding every usable model of a medigan catalog.

    An entry that cannot be converted is reported (a warning with its JSON path and what to fix)
    and left out; the other models stay usable. Only a catalog with no usable entry is refused.
    """
    models, skipped = {}, []
    for model_id, entry in doc.items():
        try:
            models[model_id] = convert_medigan_entry(entry, model_id)
        except CatalogError as exc:
            logger.warning("Skipping model %s of the medigan catalog: %s", model_id, exc)
            skipped.append(str(exc))
    if not models:
        raise CatalogError("No usable model in the medigan catalog: " + "; ".join(skipped[:3]))
    return {"schema_version": 1, "catalog_version": catalog_version, "models": models}
