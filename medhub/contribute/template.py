"""``medhub init-model``: a new model package copied from the bundled template, with its own model id."""

from __future__ import annotations

import json
import os
import re
import shutil
from pathlib import Path
from typing import Any

from ..errors import InvalidArgumentError
from .ids import MODEL_ID_PATTERN, next_free_number, validate_model_id

TEMPLATE_ID = "00999_TEMPLATE_MODEL"


def template_folder() -> Path:
    """The package template shipped with medhub (``templates/medhub_package``, also inside the wheel)."""
    from .._paths import bundled

    return bundled("templates") / "medhub_package"


def template_entry() -> dict[str, Any]:
    """The catalog entry of the template's own model (a fresh copy).

    Example:
        >>> template_entry()["execution"]["interface"]
        'medhub/1'
    """
    return json.loads((template_folder() / "metadata.json").read_text(encoding="utf-8"))[TEMPLATE_ID]


def init_model(name: str, model_id: str | None = None, output_dir: str | os.PathLike[str] = ".",
               taken: list[str] | None = None) -> Path:
    """Copy the package template to ``output_dir/name`` and give it ``model_id``.

    ``model_id`` defaults to ``name`` when ``name`` is a model id (``00150_MY_GAN``). The id is
    written into ``metadata.json`` (key, ``package_name``, ``package_link``) and the model card's
    title and table. The folder must not exist or be empty. ``taken`` (the catalog's ids) makes a
    taken id an error. Returns the new folder.
    """
    model_id = model_id or name
    if not MODEL_ID_PATTERN.match(model_id):
        suggestion = f"{next_free_number(taken or [])}_{re.sub(r'[^A-Za-z0-9_.-]', '_', name).upper().strip('_') or 'MY_MODEL'}"
        raise InvalidArgumentError(
            f"{model_id!r} is not a model id: five digits, an underscore and a name. Pass one with a number that is "
            f"free in the catalog, e.g. --id {suggestion} (Python: model_id=).")
    if taken is not None:
        validate_model_id(model_id, taken)
    if not name or Path(name).name != name or name in (".", ".."):
        raise InvalidArgumentError(f"NAME must be a plain folder name, not {name!r}; use -o for the parent folder.")
    dest = Path(output_dir).expanduser() / name
    if dest.exists() and (not dest.is_dir() or any(dest.iterdir())):
        raise InvalidArgumentError(f"{dest} already exists and is not an empty folder; choose another NAME or -o.")
    source = template_folder()
    shutil.copytree(source, dest, ignore=shutil.ignore_patterns("__pycache__", "*.pyc", "*.pyo", ".DS_Store"),
                    dirs_exist_ok=True)
    meta_path = dest / "metadata.json"
    models = json.loads(meta_path.read_text(encoding="utf-8"))
    entry = models.pop(TEMPLATE_ID)
    entry["execution"]["package_name"] = model_id
    entry["execution"]["package_link"] = model_id
    meta_path.write_text(json.dumps({model_id: entry}, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    readme = dest / "README.md"
    readme.write_text(readme.read_text(encoding="utf-8").replace(TEMPLATE_ID, model_id), encoding="utf-8")
    return dest
