"""The catalog entry of a contributed model: read, built from the template, completed, checked.

An entry is ``{"execution": ..., "selection": ..., "description": ...}`` as in the catalog
(``config/global.json``); functions here take and return plain dicts and never touch the network.
"""

from __future__ import annotations

import copy
import json
import logging
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ..errors import CatalogError, MetadataError
from .local_paths import is_local_path
from .template import template_entry

logger = logging.getLogger("medhub.contribute")

SECTIONS = ("execution", "selection", "description")
#: Fields a published entry must have (dotted keys); prompted for when ``interactive``.
REQUIRED_FIELDS = {
    "description.title": "a one-line title of the model",
    "description.authors": "the authors, comma-separated",
    "selection.modality": "imaging modalities, comma-separated (e.g. MRI, T1)",
    "selection.organ": "organs or body parts, comma-separated (e.g. brain)",
    "selection.license": "the license of code and weights (e.g. MIT, CC-BY-4.0)",
}
#: Fields holding lists; a string given for one is split at commas.
LIST_FIELDS = frozenset({"description.authors", "description.doi", "selection.modality", "selection.organ",
                         "selection.generates", "selection.tags", "selection.dataset", "execution.dependencies"})


def get_field(doc: Mapping[str, Any], dotted: str) -> Any:
    """The value at a dotted key, or None.

    Example:
        >>> get_field({"selection": {"organ": ["brain"]}}, "selection.organ")
        ['brain']
    """
    node: Any = doc
    for part in dotted.split("."):
        if not isinstance(node, Mapping) or part not in node:
            return None
        node = node[part]
    return node


def set_field(doc: dict[str, Any], dotted: str, value: Any) -> None:
    """Set the value at a dotted key, creating the objects on the way.

    Example:
        >>> doc = {}
        >>> set_field(doc, "selection.organ", ["brain"]); doc
        {'selection': {'organ': ['brain']}}
    """
    parts = dotted.split(".")
    node = doc
    for part in parts[:-1]:
        if not isinstance(node.get(part), dict):
            node[part] = {}
        node = node[part]
    node[parts[-1]] = value


def field_value(key: str, value: Any) -> Any:
    """``value`` as stored at ``key``: a string for a list field is split at commas.

    Example:
        >>> field_value("selection.modality", "MRI, T1"), field_value("description.title", "A, B")
        (['MRI', 'T1'], 'A, B')
    """
    if key in LIST_FIELDS and isinstance(value, str):
        return [part.strip() for part in value.split(",") if part.strip()]
    return value


def catalog_document(entry: Mapping[str, Any]) -> dict[str, Any]:
    """A full catalog document around ``{model_id: {...}}`` entries, for :func:`~medhub.config.validate_catalog`.

    Example:
        >>> sorted(catalog_document({})), catalog_document({})["schema_version"]
        (['catalog_version', 'models', 'schema_version'], 1)
    """
    return {"schema_version": 1, "catalog_version": "0.0.0", "models": dict(entry)}


def skeleton_entry(model_id: str) -> dict[str, Any]:
    """The template's entry with everything that describes the template's own model emptied.

    Example:
        >>> skeleton_entry("00150_MY_GAN")["execution"]["package_name"]
        '00150_MY_GAN'
    """
    template = template_entry()
    base = template["execution"]["generate_method"]["args"]["base"]
    return {
        "execution": {"package_name": model_id, "package_link": model_id, "dependencies": [],
                      "generate_method": {"name": "generate", "args": {"base": list(base), "custom": {}}}},
        "selection": {"performance": {k: None for k in template["selection"]["performance"]}, "modality": [],
                      "organ": [], "generates": [], "dataset": [], "tags": [], "license": None},
        "description": {"title": "", "version": "1.0.0", "doi": [], "authors": [],
                        "intended_use": "Research only; not for clinical use.", "comment": ""},
    }


def read_metadata_file(path: str | os.PathLike[str], model_id: str) -> dict[str, Any]:
    """The entry of ``model_id`` from a metadata file (or a folder holding ``metadata.json``).

    The file may hold ``{model_id: entry}``, one entry under another id (re-keyed, e.g. a copied
    template) or the entry itself (``{"execution": ..., "selection": ..., "description": ...}``).
    """
    file = Path(path).expanduser()
    if file.is_dir():
        file = file / "metadata.json"
    if not file.is_file():
        raise MetadataError(f"Metadata file {file} does not exist; pass metadata_file_path=None to build the metadata "
                            "from the template and your arguments.", step="metadata")
    try:
        doc = json.loads(file.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise MetadataError(f"{file} is not valid JSON (line {exc.lineno}, column {exc.colno}: {exc.msg}).",
                            step="metadata") from None
    if isinstance(doc, dict) and "execution" in doc and "description" in doc:
        return doc
    if isinstance(doc, dict) and model_id in doc:
        return doc[model_id]
    if isinstance(doc, dict) and len(doc) == 1 and isinstance(next(iter(doc.values())), dict):
        other = next(iter(doc))
        logger.warning("%s holds the entry of %s; using it for %s", file.name, other, model_id)
        return doc[other]
    raise MetadataError(f"{file} holds no entry for {model_id}: expected {{\"{model_id}\": {{\"execution\": ..., "
                        "\"selection\": ..., \"description\": ...}}}.", step="metadata")


def requirements_txt(folder: Path) -> list[str] | None:
    """The requirement lines of ``folder/requirements.txt`` (comments and blanks dropped), or None."""
    path = folder / "requirements.txt"
    if not path.is_file():
        return None
    lines = (line.split("#", 1)[0].strip() for line in path.read_text(encoding="utf-8").splitlines())
    return [line for line in lines if line]


def check_dependencies(dependencies: Any) -> list[str]:
    """The dependencies, if they are a list of PEP 508 requirement strings.

    Example:
        >>> check_dependencies(["torch>=2.1", "numpy"])
        ['torch>=2.1', 'numpy']
    """
    from packaging.requirements import InvalidRequirement, Requirement

    if not isinstance(dependencies, list) or not all(isinstance(d, str) for d in dependencies):
        raise MetadataError(f"dependencies must be a list of PEP 508 strings, not {dependencies!r}.", step="metadata")
    bad = []
    for text in dependencies:
        try:
            Requirement(text)
        except InvalidRequirement:
            bad.append(text)
    if bad:
        raise MetadataError(f"Not valid PEP 508 requirements: {', '.join(map(repr, bad))} (write e.g. 'torch>=2.1').",
                            step="metadata")
    return list(dependencies)


def template_values(entry: Mapping[str, Any]) -> list[str]:
    """Required fields still holding the template's own value (title, authors, modality, organ)."""
    template = template_entry()
    return [key for key in REQUIRED_FIELDS
            if key != "selection.license" and get_field(entry, key) == get_field(template, key)]


def missing_fields(entry: Mapping[str, Any]) -> list[str]:
    """Required fields that are absent or empty (the template's own values count as absent).

    Example:
        >>> missing_fields(skeleton_entry("00150_MY_GAN"))[:2]
        ['description.title', 'description.authors']
    """
    missing = []
    for key in REQUIRED_FIELDS:
        value = get_field(entry, key)
        values = [value] if isinstance(value, str) else value
        if value is None or (isinstance(value, (str, list)) and not [v for v in values if str(v).strip()]):
            missing.append(key)
    return missing + [key for key in template_values(entry) if key not in missing]


def missing_fields_error(missing: list[str]) -> MetadataError:
    """The error listing the missing required fields and the three ways to give them."""
    hints = ", ".join(f"{k} ({REQUIRED_FIELDS[k]})" for k in missing)
    return MetadataError(
        f"Required metadata is missing: {hints}. Give it in the metadata file, as metadata_fields="
        f"{{'{missing[0]}': ...}} (CLI: --field {missing[0]}=...), or run interactively "
        "(interactive=True, CLI: --interactive).", step="metadata")


def apply_arguments(entry: dict[str, Any], model_id: str, *, model_weights_name: str | None = None,
                    model_weights_extension: str | None = None, generate_method_name: str | None = None,
                    dependencies: list[str] | None = None, creator_name: str | None = None,
                    model_description: str | None = None,
                    metadata_fields: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """Complete ``entry`` (in place) with the contribution's arguments; arguments win over the file.

    Example:
        >>> entry = apply_arguments(skeleton_entry("00150_A"), "00150_A", model_weights_name="w",
        ...                         model_weights_extension="safetensors", metadata_fields={"selection.organ": "brain"})
        >>> entry["execution"]["weights"], entry["selection"]["organ"]
        ('w.safetensors', ['brain'])
    """
    if not all(isinstance(entry.get(k), dict) for k in SECTIONS):
        raise MetadataError("The metadata needs the objects execution, selection and description.", step="metadata")
    execution = entry["execution"]
    execution["package_name"] = model_id
    if model_weights_name:
        extension = model_weights_extension or ""
        if extension and not extension.startswith("."):
            extension = "." + extension
        execution.update(model_name=model_weights_name, extension=extension, weights=model_weights_name + extension)
    if generate_method_name:
        execution.setdefault("generate_method", {})["name"] = generate_method_name
    execution.setdefault("generate_method", {}).setdefault("name", "generate")
    if dependencies is not None:
        execution["dependencies"] = list(dependencies)
    execution["dependencies"] = check_dependencies(execution.get("dependencies", []))
    description = entry["description"]
    no_authors = not [a for a in description.get("authors") or [] if str(a).strip()]
    if creator_name and (no_authors or "description.authors" in template_values(entry)):
        description["authors"] = [creator_name]
    if model_description and not description.get("comment"):
        description["comment"] = model_description
    for key, value in (metadata_fields or {}).items():
        if key.split(".")[0] not in SECTIONS:
            raise MetadataError(f"Metadata field {key!r} must start with execution., selection. or description.",
                                step="metadata")
        set_field(entry, key, field_value(key, value))
    return entry


def pinned_entry(model_id: str, entry: Mapping[str, Any], package_link: str | None = None, sha256: str | None = None,
                 size: int | None = None) -> dict[str, Any]:
    """``{model_id: entry}`` (a copy) with the given link / pin, validated against the catalog schema."""
    from ..config import validate_catalog

    entry = json.loads(json.dumps(entry))
    execution = entry["execution"]
    execution["package_link"] = package_link or model_id
    for key, value in (("sha256", sha256), ("size", size)):
        if value is None:
            execution.pop(key, None)
        else:
            execution[key] = value
    doc = {model_id: entry}
    validate_catalog(catalog_document(doc), source=f"metadata of {model_id}")
    return doc


def relativize_paths(entry: dict[str, Any], folder: Path, model_id: str, interface: str | None) -> list[str]:
    """Replace absolute paths inside the package by relative ones; raise for paths outside it.

    ``execution.package_link`` is left alone (the contributor replaces it). Paths in a medigan
    package's custom arguments become ``models/<model_id>/<rel>``, which medhub maps into the
    package folder. Returns what was changed.
    """
    changed, outside = [], []
    root = folder.resolve()

    def visit(node: Any, where: str) -> Any:
        if isinstance(node, dict):
            return {k: (v if f"{where}.{k}" == "$.execution.package_link" else visit(v, f"{where}.{k}"))
                    for k, v in node.items()}
        if isinstance(node, list):
            return [visit(v, f"{where}[{i}]") for i, v in enumerate(node)]
        if isinstance(node, str) and is_local_path(node):
            try:
                rel = Path(node.removeprefix("file://")).expanduser().resolve().relative_to(root).as_posix()
            except (ValueError, OSError):
                outside.append(where)
                return node
            new = f"models/{model_id}/{rel}" if interface == "medigan" and ".args." in where else rel
            changed.append(f"{where}: {new}")
            return new
        return node

    fixed = visit(entry, "$")
    if outside:
        raise MetadataError(
            f"The metadata holds local paths outside the package at {', '.join(outside)}; a published entry must not "
            "name files on your machine. Use paths relative to the package folder.", step="metadata")
    entry.clear()
    entry.update(fixed)
    return changed


def entry_from_metadata(model_id: str, metadata: Any, is_local_model: bool = True) -> dict[str, Any]:
    """The catalog entry of ``model_id`` in medigan's ``metadata`` (``{model_id: entry}``), checked.

    The entry may be in medhub's format or in medigan's (converted as a medigan catalog is). A
    model that is not local (``is_local_model=False``) needs an http(s) ``package_link``. Raises
    :class:`~medhub.errors.MetadataError` saying what is wrong.

    Example:
        >>> entry = entry_from_metadata("00101_X", {"00101_X": {
        ...     "execution": {"package_link": "https://x.org/a.zip", "package_name": "a", "model_name": "w",
        ...                   "extension": ".pt", "dependencies": [], "generate_method": {"name": "generate"}},
        ...     "selection": {}, "description": {"title": "X"}}}, is_local_model=False)
        >>> entry["execution"]["interface"]
        'medigan'
    """
    from ..compat import convert_medigan_entry
    from ..config import validate_catalog

    if not isinstance(metadata, Mapping) or not isinstance(metadata.get(model_id), Mapping):
        raise MetadataError(f"The metadata holds no entry for {model_id}: expected {{\"{model_id}\": {{\"execution\": "
                            "..., \"selection\": ..., \"description\": ...}}}.", step="metadata")
    entry = copy.deepcopy(dict(metadata[model_id]))
    try:
        validate_catalog(catalog_document({model_id: entry}), source=f"metadata of {model_id}")
    except CatalogError as exc:
        execution = entry.get("execution")
        if not isinstance(execution, Mapping) or "interface" in execution or "package_link" not in execution:
            raise MetadataError(str(exc), step="metadata") from None
        entry = convert_medigan_entry(entry)  # medigan's format: as a medigan catalog is read
        try:
            validate_catalog(catalog_document({model_id: entry}), source=f"metadata of {model_id}")
        except CatalogError as again:
            raise MetadataError(str(again), step="metadata") from None
    link = str(entry["execution"]["package_link"])
    if not is_local_model and not link.startswith(("http://", "https://")):
        raise MetadataError(f"The package_link {link!r} of {model_id} is not an http(s) URL; a published model's "
                            "package_link is the download URL of its archive (or pass is_local_model=True).",
                            step="metadata")
    return entry
