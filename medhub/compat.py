"""Conversion of medigan's catalog format (``global.json`` of medigan 1.0.0) into medhub's schema."""

from __future__ import annotations

import copy
from typing import Any

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


def convert_medigan_entry(entry: dict[str, Any]) -> dict[str, Any]:
    """Return a medhub catalog entry for one medigan entry (the input is not modified).

    The package stays a remote medigan-interface package with no pinned sha256 (medigan pins
    none), so medhub runs it only when the user says it trusts it.
    """
    entry = copy.deepcopy(entry)
    execution = entry.get("execution", {})
    deps = [d.strip() for d in execution.get("dependencies", []) if d.strip().lower() not in _NOT_DISTRIBUTIONS]
    out_exec: dict[str, Any] = {
        "package_name": execution.get("package_name"),
        "package_link": execution["package_link"],
        "sha256": None,
        "size": None,
        "interface": "medigan",
        "model_name": execution.get("model_name"),
        "extension": execution.get("extension"),
        "dependencies": deps,
        "generate_method": execution.get("generate_method", {"name": "generate"}),
    }
    if execution.get("image_size") is not None:
        out_exec["image_size"] = [int(s) for s in execution["image_size"]]
    out_exec = {k: v for k, v in out_exec.items() if v is not None or k in ("sha256", "size")}
    description = entry.get("description", {})
    if isinstance(description.get("doi"), str):
        description["doi"] = [description["doi"]]
    if description.get("version") is not None:
        description["version"] = str(description["version"])
    return {"execution": out_exec, "selection": entry.get("selection", {}), "description": description}


def convert_medigan_catalog(doc: dict[str, Any], catalog_version: str = "0.0.0") -> dict[str, Any]:
    """Return a medhub catalog document holding every model of a medigan catalog."""
    return {
        "schema_version": 1,
        "catalog_version": catalog_version,
        "models": {model_id: convert_medigan_entry(entry) for model_id, entry in doc.items()},
    }
