"""Checks of a model package before it is tested: its folder, its weights file, its import and interface."""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ..errors import ContributionError
from .local_paths import is_local_path

logger = logging.getLogger("medhub.contribute")

#: Weights files that run code when loaded; refused.
PICKLE_SUFFIXES = frozenset({".pkl", ".pickle", ".joblib", ".dill"})


def locate_package(init_py_path: str | os.PathLike[str]) -> Path:
    """The package folder of ``init_py_path`` (the ``__init__.py`` file or its folder).

    Example:
        >>> from medhub.contribute.template import template_folder
        >>> locate_package(template_folder() / "__init__.py").name
        'medhub_package'
    """
    path = Path(init_py_path).expanduser().resolve()
    if path.is_dir():
        path = path / "__init__.py"
    if path.name != "__init__.py" or not path.is_file():
        raise ContributionError(
            f"{init_py_path} is not a package's __init__.py (nor a folder holding one). Give the path of the "
            "__init__.py of your model package; `medhub init-model NAME --id ID` starts one from the template.",
            step="package")
    return path.parent


def check_weights(folder: Path, execution: Mapping[str, Any]) -> Path:
    """The weights file: inside the package, present, not empty, not a pickle; safetensors headers are parsed.

    Example:
        >>> from medhub.contribute.template import template_folder
        >>> check_weights(template_folder(), {"weights": "weights.safetensors"}).name
        'weights.safetensors'
    """
    from ..execution.resolve import weights_path

    named = execution.get("weights") or (f"{execution['model_name']}{execution.get('extension') or ''}"
                                         if execution.get("model_name") else "")
    if is_local_path(named):  # an absolute path: made relative later if it lies inside the package
        path = Path(named.removeprefix("file://")).expanduser().resolve()
    else:
        path = weights_path(folder, dict(execution))
    rel = os.path.relpath(path, folder)
    if Path(rel).is_absolute() or rel.startswith(".."):
        raise ContributionError(f"The weights file {rel} is outside the package folder; copy it into the package and "
                                "name it relative to the folder (model_weights_name / execution.weights).",
                                step="weights")
    if not path.is_file():
        present = sorted(p.name for p in folder.iterdir()
                         if p.is_file() and p.suffix not in (".py", ".md", ".txt", ".json"))
        raise ContributionError(
            f"The weights file {Path(rel).as_posix()} is not in the package (files there: {', '.join(present) or 'none'}). "
            "Set model_weights_name and model_weights_extension, or execution.weights in the metadata.", step="weights")
    size = path.stat().st_size
    if size == 0:
        raise ContributionError(f"The weights file {Path(rel).as_posix()} is empty.", step="weights")
    if path.suffix.lower() in PICKLE_SUFFIXES:
        raise ContributionError(f"The weights file {path.name} is a pickle, and unpickling runs code; save the weights "
                                "as safetensors (see docs/model-package.md, section 7).", step="weights")
    if path.suffix == ".safetensors":
        with open(path, "rb") as fh:
            head = fh.read(8)
            length = int.from_bytes(head, "little") if len(head) == 8 else -1
            try:
                if not 0 < length <= size - 8:
                    raise ValueError
                json.loads(fh.read(length))
            except ValueError:
                raise ContributionError(f"The weights file {path.name} is not a valid safetensors file (bad header); "
                                        "is it a Git LFS pointer or a truncated copy?", step="weights") from None
    return path


def detect_interface(module: Any, generate_method_name: str) -> str:
    """``medhub/1`` when the package has callable ``load`` and ``sample``, else ``medigan``.

    Example:
        >>> import types
        >>> detect_interface(types.SimpleNamespace(generate=print), "generate")
        'medigan'
    """
    from ..execution.kinds import KINDS

    for kind in (KINDS["medhub/1"], KINDS["medigan"]):  # the Python package kinds, native first
        if all(callable(getattr(module, name, None)) for name in kind.entry_points(generate_method_name)):
            return kind.name
    raise ContributionError(
        f"The package defines neither load() and sample() (interface medhub/1) nor {generate_method_name}() (interface "
        "medigan); see docs/model-package.md. Set generate_method_name if your generate function has another name.",
        step="import")


def import_and_detect(model_id: str, folder: Path, execution: dict[str, Any], install_dependencies: bool = False) -> str:
    """Check the dependencies, import the package by file path, detect its interface and record it in ``execution``."""
    from ..execution.deps import ensure_dependencies
    from ..execution.loader import import_package
    from ..execution.spec import ModelSpec

    ensure_dependencies(model_id, execution["dependencies"], install=install_dependencies)
    module = import_package(folder, model_id)
    interface = detect_interface(module, ModelSpec.parse(model_id, execution).method_name)
    declared = execution.get("interface")
    if declared == "medhub/1" and interface != "medhub/1":
        raise ContributionError("The metadata declares interface medhub/1, but the package has no load() and "
                                "sample(); implement them or declare interface medigan.", step="import")
    if declared and declared != interface:
        logger.info("%s: the package has load() and sample(); its interface is medhub/1, not %s", model_id, declared)
    execution["interface"] = interface
    return interface
