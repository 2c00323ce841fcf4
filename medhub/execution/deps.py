"""Check a package's dependencies against installed distributions; install them only when asked.

Requirements are PEP 508 strings, parsed by ``packaging``; installed versions come from
``importlib.metadata``. Pre-releases that are installed count (a ``torch`` nightly satisfies
``torch>=2.1``), environment markers are evaluated, and extras are not checked.

The plain form every shipped package uses (a name, optional extras and version specifiers, as
``torch>=2.1,<3``) is split here and only its specifiers go to ``packaging.specifiers``: the full
PEP 508 parser (``packaging.requirements`` with its tokenizer and markers) takes tens of
milliseconds to import, a cost every first ``generate`` of a process paid. Anything else (markers,
URLs, odd spacing) and anything the split form gets wrong goes through the full parser, whose
error names the requirement.

Whether an installed version satisfies a plain requirement never changes, so the answers are
remembered in ``MEDHUB_HOME/requirements.json`` (keyed by the requirement, the installed version
and ``packaging``'s version): a process whose packages were checked before looks the installed
versions up, as always, but does not import ``packaging.specifiers`` (several milliseconds of every
process's first ``generate``). A home that cannot be written only costs that time.
"""

from __future__ import annotations

import json
import logging
import re
import shlex
import subprocess
import sys
from importlib import metadata
from typing import Any

from ..errors import DependencyError

logger = logging.getLogger("medhub.execution.deps")


_NAME = r"[A-Za-z0-9](?:[A-Za-z0-9._-]*[A-Za-z0-9])?"
_SPEC = r"(?:~=|===|==|!=|<=|>=|<|>)\s*[A-Za-z0-9.*+!_-]+"
#: ``name[extra,...]spec,spec`` without markers or URLs (the form :func:`parse_requirement` takes apart itself).
_PLAIN = re.compile(rf"\s*(?P<name>{_NAME})\s*(?:\[\s*{_NAME}(?:\s*,\s*{_NAME})*\s*\])?"
                    rf"\s*(?P<spec>{_SPEC}(?:\s*,\s*{_SPEC})*)?\s*")


class PlainRequirement:
    """A requirement without markers or URL: its ``name`` and ``specifier`` (a ``SpecifierSet``), as
    ``packaging``'s Requirement has them (``marker`` and ``url`` None)."""

    marker = None
    url = None

    def __init__(self, name: str, specifier: Any) -> None:
        self.name = name
        self.specifier = specifier


def parse_requirement(text: str) -> Any:
    """``packaging``'s Requirement of ``text`` (a :class:`PlainRequirement` for the plain form), or
    :class:`DependencyError` naming it.

    Example:
        >>> str(parse_requirement("numpy>=1.24,<3").specifier)
        '<3,>=1.24'
    """
    if not isinstance(text, str):
        raise DependencyError(f"Dependency {text!r} is not a PEP 508 requirement string (e.g. 'numpy>=1.24').")
    plain = _PLAIN.fullmatch(text)
    if plain:
        from packaging.specifiers import InvalidSpecifier, SpecifierSet

        try:
            return PlainRequirement(plain["name"], SpecifierSet(plain["spec"] or ""))
        except InvalidSpecifier:
            pass  # the full parser says what is wrong
    from packaging.requirements import InvalidRequirement, Requirement

    try:
        return Requirement(text)
    except InvalidRequirement as exc:
        raise DependencyError(f"Dependency {text!r} is not a valid PEP 508 requirement: {exc}") from None


def requirement_name(text: str) -> str:
    """The distribution name of a PEP 508 requirement string, lower-cased.

    Example:
        >>> requirement_name("Torch>=2.1,<3")
        'torch'
    """
    plain = _PLAIN.fullmatch(text) if isinstance(text, str) else None
    if plain:  # the name alone: no specifier parser (the dependency check still validates the specifiers)
        return plain["name"].lower()
    return str(parse_requirement(text).name).lower()


#: Remembered answers (requirement, installed version) -> satisfied, loaded once per process.
_ANSWERS: dict[str, bool] | None = None
_ANSWERS_LIMIT = 512


def _answers_store() -> Any:
    from .._paths import medhub_home

    return medhub_home() / "requirements.json"


def _answers_scope() -> str:
    """What the answers depend on besides the requirement and the version: ``packaging``'s version
    (its ``__init__`` alone is imported) and the format of the store."""
    import packaging

    return f"1|{getattr(packaging, '__version__', '')}"


def _answers() -> dict[str, bool]:
    global _ANSWERS
    if _ANSWERS is None:
        try:
            doc = json.loads(_answers_store().read_text())
            ok = isinstance(doc, dict) and doc.get("scope") == _answers_scope() and isinstance(doc.get("answers"), dict)
            _ANSWERS = {k: v for k, v in doc["answers"].items() if isinstance(v, bool)} if ok else {}
        except (OSError, ValueError):
            _ANSWERS = {}
    return _ANSWERS


def _remember(new: dict[str, bool]) -> None:
    global _ANSWERS
    from ..atomic import write_json_atomically

    _ANSWERS = dict(list({**_answers(), **new}.items())[-_ANSWERS_LIMIT:])  # the newest answers
    store = _answers_store()
    try:
        write_json_atomically(store, {"scope": _answers_scope(), "answers": _ANSWERS}, parents=True)
    except OSError as exc:  # a read-only home only costs speed
        logger.debug("Cannot remember requirement checks in %s: %s", store, exc)


def _satisfies(req: Any, installed: str) -> bool:
    return not req.specifier or bool(req.specifier.contains(installed, prereleases=True))


def missing_requirements(requirements: list[str]) -> list[str]:
    """The requirement strings (PEP 508) not satisfied by the installed distributions.

    Example:
        >>> missing_requirements(["numpy", "medhub-no-such-dist>=1"])
        ['medhub-no-such-dist>=1']
    """
    missing, new = [], {}
    for text in requirements:
        plain = _PLAIN.fullmatch(text) if isinstance(text, str) else None
        req = None if plain else parse_requirement(text)  # markers, URLs: the full parser, every time
        if req is not None and req.marker is not None and not req.marker.evaluate():
            continue
        try:
            installed = metadata.version(plain["name"] if plain else req.name)
        except metadata.PackageNotFoundError:
            missing.append(text)
            continue
        if req is not None:
            ok = _satisfies(req, installed)
        elif not plain["spec"]:
            ok = True  # any version
        else:
            key = f"{text}\x00{installed}"
            ok = _answers().get(key)
            if ok is None:
                ok = new[key] = _satisfies(parse_requirement(text), installed)
        if not ok:
            missing.append(text)
    if new:
        _remember(new)
    return missing


def pip_command(requirements: list[str]) -> list[str]:
    return [sys.executable, "-m", "pip", "install", *requirements]


def ensure_dependencies(model_id: str, requirements: list[str], install: bool = False) -> None:
    """Raise :class:`DependencyError` with the exact pip command if anything is missing,
    or run that command when ``install`` is True (refused with ``MEDHUB_OFFLINE`` set)."""
    from .. import settings

    missing = missing_requirements(requirements)
    if not missing:
        return
    command = pip_command(missing)
    shown = shlex.join(["pip", "install", *missing])
    if install and settings.is_offline():
        raise DependencyError(
            f"Model {model_id} needs {', '.join(missing)}, and MEDHUB_OFFLINE is set, so medhub will not run pip; "
            f"install it yourself (`{shown}`, from a local wheel or index) or unset MEDHUB_OFFLINE.",
            requirements=missing,
        )
    if not install:
        raise DependencyError(
            f"Model {model_id} needs {', '.join(missing)}, which is not installed. Install it with:\n    {shown}\n"
            "or pass install_dependencies=True (CLI: --install-dependencies).",
            requirements=missing,
        )
    logger.warning("Installing dependencies of %s: %s", model_id, shlex.join(command))
    done = subprocess.run(command, capture_output=True, text=True)
    if done.returncode != 0:
        raise DependencyError(
            f"Installing the dependencies of {model_id} failed (exit {done.returncode}):\n{done.stderr[-2000:]}",
            requirements=missing,
        )
    still = missing_requirements(missing)
    if still:
        raise DependencyError(f"After installing, {', '.join(still)} is still not satisfied.", requirements=still)
