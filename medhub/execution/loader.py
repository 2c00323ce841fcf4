"""Import a model package from its folder, under a unique module name, from its verified source only.

Python's own import machinery reads (and writes) bytecode caches (``__pycache__/*.pyc``) that no
digest covers: a ``.pyc`` whose header matches the source's size and mtime runs *instead of* the
source. medhub therefore imports package code through its own path-entry finder and loader:

* only ``.py`` source is loaded, compiled in memory; no bytecode is read (``__pycache__``,
  sourceless ``.pyc``) or written, and no extension module is loaded from a package folder;
* when the package was verified, each source file's bytes are checked, as they are read, against
  the sha256 recorded for the verified tree (:attr:`ResolvedPackage.files`): a file that is not in
  that tree or differs from it raises :class:`~medhub.errors.IntegrityError` and runs nothing;
* this holds for every module found in the package's folders, however it is imported: the
  package itself, relative imports, ``importlib.import_module``, lazy imports inside functions,
  and absolute imports after the package puts its own folder on ``sys.path``.

The finder is registered once per process (``sys.path_hooks``) and answers only for folders inside
packages imported by :func:`import_package`.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.machinery
import importlib.util
import os
import re
import stat
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

from ..errors import IntegrityError, MedhubError, PackageError


@dataclass(frozen=True)
class PackageRoot:
    """A package folder whose modules medhub's finder loads, and the sha256 of its verified files."""

    folder: str  # absolute, as given
    real: str  # with links resolved
    model_id: str
    files: Mapping[str, str] | None

    def owns(self, directory: str) -> bool:
        for base in (self.folder, self.real):
            if directory == base or directory.startswith(base + os.sep):
                return True
        return False

    def check(self, path: str, data: bytes) -> None:
        """Raise :class:`IntegrityError` unless ``data`` is the verified content of ``path``."""
        if self.files is None:
            return
        absolute = os.path.abspath(path)
        base = self.folder if absolute.startswith(self.folder + os.sep) else self.real
        rel = Path(os.path.relpath(absolute, base)).as_posix()
        expected = self.files.get(rel)
        if expected is None:
            raise IntegrityError(f"Model package {self.model_id}: {rel} is not part of the verified package (it was "
                                 f"added to {self.folder} after verification); refusing to import it.")
        if hashlib.sha256(data).hexdigest() != expected:
            raise IntegrityError(f"Model package {self.model_id}: {rel} changed after the package was verified; "
                                 "refusing to import it. Run `medhub cache verify` and restore the package.")


#: The package folders medhub imports from, by real path (import hooks are process-wide by nature).
_ROOTS: dict[str, PackageRoot] = {}


def _root_of(directory: str) -> PackageRoot | None:
    if not _ROOTS or not directory:
        return None
    absolute = os.path.abspath(directory)
    real = os.path.realpath(absolute)
    for root in _ROOTS.values():
        if root.owns(absolute) or root.owns(real):
            return root
    return None


class VerifiedSourceLoader(importlib.machinery.SourceFileLoader):
    """Loads a module from its ``.py`` source only, checked against the verified tree; never touches bytecode."""

    def __init__(self, fullname: str, path: str, root: PackageRoot) -> None:
        super().__init__(fullname, path)
        self.root = root

    def get_code(self, fullname: str) -> Any:
        path = self.get_filename(fullname)
        data = self.get_data(path)
        self.root.check(path, data)
        return compile(data, path, "exec", dont_inherit=True)


class VerifiedSourceFinder:
    """Path-entry finder for one folder of a package: ``name/__init__.py``, ``name.py`` or a
    namespace folder ``name/``; nothing else (no ``.pyc``, no extension modules)."""

    def __init__(self, directory: str, root: PackageRoot) -> None:
        self.directory = directory
        self.root = root

    def find_spec(self, fullname: str, target: ModuleType | None = None) -> importlib.machinery.ModuleSpec | None:
        tail = fullname.rpartition(".")[2]
        base = os.path.join(self.directory, tail)
        init = os.path.join(base, "__init__.py")
        if os.path.isfile(init):
            return importlib.util.spec_from_file_location(
                fullname, init, loader=VerifiedSourceLoader(fullname, init, self.root), submodule_search_locations=[base])
        module = base + ".py"
        if os.path.isfile(module):
            return importlib.util.spec_from_file_location(
                fullname, module, loader=VerifiedSourceLoader(fullname, module, self.root))
        if os.path.isdir(base):  # a namespace portion, as Python's own finder would answer
            spec = importlib.machinery.ModuleSpec(fullname, None, is_package=True)
            spec.submodule_search_locations = [base]
            return spec
        return None

    def invalidate_caches(self) -> None:
        pass


def _path_hook(directory: str) -> VerifiedSourceFinder:
    root = _root_of(directory)
    if root is None:
        raise ImportError("not a medhub model package folder")  # the next path hook answers
    return VerifiedSourceFinder(directory, root)


def _folder_ids(real: str) -> set[tuple[int, int]]:
    """The (device, inode) of ``real`` and of every folder inside it (links not followed)."""
    ids = set()
    for folder, _, _ in os.walk(real):
        with contextlib.suppress(OSError):
            st = os.stat(folder)
            ids.add((st.st_dev, st.st_ino))
    return ids


def _inside(entry: str, root: PackageRoot, folders: set[tuple[int, int]]) -> bool:
    """Whether the path entry ``entry`` is ``root`` or lies inside it, links resolved: by its path, or
    by its folder's identity (one ``stat``: a process's importer cache holds hundreds of entries, and
    resolving each one's links component by component cost milliseconds of every first import)."""
    if root.owns(os.path.abspath(entry)):
        return True
    try:
        st = os.stat(entry)
    except (OSError, ValueError):
        return False  # gone: no finder can load from it
    if stat.S_ISDIR(st.st_mode):
        return (st.st_dev, st.st_ino) in folders
    return root.owns(os.path.realpath(entry))  # a zip file on the path: its real path says


def _register(root: PackageRoot) -> None:
    if _path_hook not in sys.path_hooks:
        sys.path_hooks.insert(0, _path_hook)
    _ROOTS[root.real] = root
    folders = _folder_ids(root.real)
    for entry in list(sys.path_importer_cache):  # finders made before the hook knew this folder
        if isinstance(entry, str) and _inside(entry, root, folders):
            del sys.path_importer_cache[entry]


def _module_name(folder: Path, model_id: str, files: Mapping[str, str] | None) -> str:
    # the name changes when any of the package's Python files changes, so an edited package is
    # imported afresh instead of served from sys.modules
    if files is not None:
        stamp = f"{folder}|{sorted(files.items())}"
    else:
        sources = sorted((p.relative_to(folder).as_posix(), p.stat().st_mtime_ns, p.stat().st_size)
                         for p in folder.rglob("*.py"))
        stamp = f"{folder}|{sources}"
    digest = hashlib.sha256(stamp.encode()).hexdigest()[:10]
    return f"medhub_pkg_{re.sub(r'[^0-9A-Za-z_]', '_', model_id)}_{digest}"


def import_package(folder: Path, model_id: str, files: Mapping[str, str] | None = None) -> ModuleType:
    """Import ``folder/__init__.py`` as a package named ``medhub_pkg_<id>_<hash>``.

    ``files`` maps the relative path of every file of the verified tree to its sha256 (as
    :attr:`~medhub.execution.resolve.ResolvedPackage.files`); with it, every module of the package
    is checked as it is read. Without it (a package that was not verified) the source is still the
    only thing loaded. The package is never put on ``sys.path`` and the working directory plays no
    part, so two packages with the same inner names cannot shadow each other. Relative imports
    inside the package (``from .net import G``) work.
    """
    folder = Path(os.path.abspath(folder))
    init = folder / "__init__.py"
    if not init.is_file():
        raise PackageError(f"Model package {model_id} at {folder} has no __init__.py; is the package complete?")
    root = PackageRoot(str(folder), os.path.realpath(folder), model_id, dict(files) if files is not None else None)
    _register(root)
    name = _module_name(folder, model_id, root.files)
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, init, loader=VerifiedSourceLoader(name, str(init), root),
                                                  submodule_search_locations=[str(folder)])
    if spec is None or spec.loader is None:  # pragma: no cover - only for exotic file systems
        raise PackageError(f"Cannot import model package {model_id} from {init}.")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except MedhubError:
        del sys.modules[name]
        raise
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


def import_resolved(package: Any, model_id: str) -> ModuleType:
    """Import a :class:`~medhub.execution.resolve.ResolvedPackage`, checking its verified files."""
    return import_package(package.folder, model_id, package.files)
