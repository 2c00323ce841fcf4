"""Import a model package from its folder by file path, under a unique module name."""

from __future__ import annotations

import hashlib
import importlib.util
import re
import sys
from pathlib import Path
from types import ModuleType

from ..errors import PackageError


def import_package(folder: Path, model_id: str) -> ModuleType:
    """Import ``folder/__init__.py`` as a package named ``medhub_pkg_<id>_<hash>``.

    The package is never put on ``sys.path`` and the working directory plays no part, so two
    packages with the same inner names cannot shadow each other. Relative imports inside the
    package (``from .net import G``) work.
    """
    init = folder / "__init__.py"
    if not init.is_file():
        raise PackageError(f"Model package {model_id} at {folder} has no __init__.py; is the package complete?")
    # the name changes when any of the package's Python files changes, so an edited package is
    # imported afresh instead of served from sys.modules
    sources = sorted((p.relative_to(folder).as_posix(), p.stat().st_mtime_ns, p.stat().st_size)
                     for p in folder.rglob("*.py"))
    stamp = f"{folder.resolve()}|{sources}"
    digest = hashlib.sha256(stamp.encode()).hexdigest()[:10]
    name = f"medhub_pkg_{re.sub(r'[^0-9A-Za-z_]', '_', model_id)}_{digest}"
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, init, submodule_search_locations=[str(folder)])
    if spec is None or spec.loader is None:  # pragma: no cover - only for exotic file systems
        raise PackageError(f"Cannot import model package {model_id} from {init}.")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except ImportError as exc:
        del sys.modules[name]
        raise PackageError(
            f"Importing model package {model_id} failed: {exc}. Check its requirements.txt "
            f"(or run generate with install_dependencies=True)."
        ) from exc
    except Exception as exc:
        del sys.modules[name]
        raise PackageError(f"Importing model package {model_id} from {init} raised {type(exc).__name__}: {exc}") from exc
    return module
