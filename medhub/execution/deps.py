"""Check a package's dependencies against installed distributions; install them only when asked."""

from __future__ import annotations

import logging
import re
import shlex
import subprocess
import sys
from importlib import metadata
from typing import Any

from ..errors import DependencyError

logger = logging.getLogger("medhub.execution.deps")

#: A requirement that is only a distribution name (``"torch"``): no version, extras or markers.
_BARE_NAME = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9._-]*[A-Za-z0-9])?")
_CLAUSE = r"\s*(>=|<=|==|!=|>|<)\s*(\d+(?:\.\d+)*)\s*"
#: ``name``, optional extras (not checked, as with ``packaging``), then optional comparisons with
#: plain release numbers (``"torch>=2.1"``, ``"numpy>=1.24,<3"``, ``"monai[skimage]"``): the forms
#: of every catalog entry, checked without ``packaging``.
_SIMPLE = re.compile(rf"({_BARE_NAME.pattern})\s*(?:\[[A-Za-z0-9._,\s-]*\])?\s*((?:{_CLAUSE}(?:,{_CLAUSE})*)?)")
_CLAUSES = re.compile(_CLAUSE)
#: An installed version that is a final release, with an optional local label (``"2.13.0+cpu"``).
_FINAL_RELEASE = re.compile(r"(\d+(?:\.\d+)*)(?:\+[A-Za-z0-9.]+)?")
_COMPARE = {">=": lambda a, b: a >= b, "<=": lambda a, b: a <= b, "==": lambda a, b: a == b,
            "!=": lambda a, b: a != b, ">": lambda a, b: a > b, "<": lambda a, b: a < b}


def _release(text: str) -> tuple[int, ...]:
    parts = [int(p) for p in text.split(".")]
    while len(parts) > 1 and parts[-1] == 0:  # PEP 440: 2.1 == 2.1.0
        parts.pop()
    return tuple(parts)


def _simple_satisfied(clauses: str, installed: str) -> bool | None:
    """Whether ``installed`` meets comparisons with plain releases (PEP 440 rules), or None when
    the installed version is not a final release (pre-, post-, dev-releases go to ``packaging``).

    For a final release these rules reduce to comparing release numbers: a local label
    (``+cpu``) is ignored by every operator when the specifier has none.
    """
    if not clauses:
        return True
    match = _FINAL_RELEASE.fullmatch(installed)
    if match is None:
        return None
    have = _release(match.group(1))
    return all(_COMPARE[op](have, _release(version)) for op, version in _CLAUSES.findall(clauses))


def _parse(text: str) -> Any:
    """``packaging``'s Requirement of ``text`` (imported only for requirements that need parsing)."""
    from packaging.requirements import InvalidRequirement, Requirement

    try:
        return Requirement(text)
    except InvalidRequirement as exc:
        raise DependencyError(f"Dependency {text!r} is not a valid PEP 508 requirement: {exc}") from None


def requirement_name(text: str) -> str:
    """The distribution name of a PEP 508 requirement string, lower-cased.

    The catalog's forms (``"torch"``, ``"torch>=2.1"``, ``"monai[skimage]"``) are read without
    importing ``packaging`` (tens of milliseconds inside a model's first ``generate`` call).

    Example:
        >>> requirement_name("Torch>=2.1,<3")
        'torch'
    """
    simple = _SIMPLE.fullmatch(text)
    return (simple.group(1) if simple is not None else _parse(text).name).lower()


def missing_requirements(requirements: list[str]) -> list[str]:
    """The requirement strings (PEP 508) not satisfied by the installed distributions."""
    missing = []
    for text in requirements:
        simple = _SIMPLE.fullmatch(text)  # the catalog's forms, checked without importing packaging
        if simple is not None:
            name, clauses, req = simple.group(1), simple.group(2), None
        else:
            req = _parse(text)
            if req.marker is not None and not req.marker.evaluate():
                continue
            name, clauses = req.name, None
        try:
            installed = metadata.version(name)
        except metadata.PackageNotFoundError:
            missing.append(text)
            continue
        satisfied = _simple_satisfied(clauses, installed) if clauses is not None else None
        if satisfied is None:  # a full requirement, or an installed pre-, post- or dev-release
            specifier = (req or _parse(text)).specifier
            satisfied = not specifier or specifier.contains(installed, prereleases=True)
        if not satisfied:
            missing.append(text)
    return missing


def pip_command(requirements: list[str]) -> list[str]:
    return [sys.executable, "-m", "pip", "install", *requirements]


def ensure_dependencies(model_id: str, requirements: list[str], install: bool = False) -> None:
    """Raise :class:`DependencyError` with the exact pip command if anything is missing,
    or run that command when ``install`` is True."""
    missing = missing_requirements(requirements)
    if not missing:
        return
    command = pip_command(missing)
    shown = shlex.join(["pip", "install", *missing])
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
