"""Check a package's dependencies against installed distributions; install them only when asked.

Requirements are PEP 508 strings, parsed by ``packaging``; installed versions come from
``importlib.metadata``. Pre-releases that are installed count (a ``torch`` nightly satisfies
``torch>=2.1``), environment markers are evaluated, and extras are not checked.
"""

from __future__ import annotations

import logging
import shlex
import subprocess
import sys
from importlib import metadata
from typing import Any

from ..errors import DependencyError

logger = logging.getLogger("medhub.execution.deps")


def parse_requirement(text: str) -> Any:
    """``packaging``'s Requirement of ``text``, or :class:`DependencyError` naming it.

    Example:
        >>> str(parse_requirement("numpy>=1.24,<3").specifier)
        '<3,>=1.24'
    """
    from packaging.requirements import InvalidRequirement, Requirement

    if not isinstance(text, str):
        raise DependencyError(f"Dependency {text!r} is not a PEP 508 requirement string (e.g. 'numpy>=1.24').")
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
    return str(parse_requirement(text).name).lower()


def missing_requirements(requirements: list[str]) -> list[str]:
    """The requirement strings (PEP 508) not satisfied by the installed distributions.

    Example:
        >>> missing_requirements(["numpy", "medhub-no-such-dist>=1"])
        ['medhub-no-such-dist>=1']
    """
    missing = []
    for text in requirements:
        req = parse_requirement(text)
        if req.marker is not None and not req.marker.evaluate():
            continue
        try:
            installed = metadata.version(req.name)
        except metadata.PackageNotFoundError:
            missing.append(text)
            continue
        if req.specifier and not req.specifier.contains(installed, prereleases=True):
            missing.append(text)
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
