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


def _parse(text: str) -> Any:
    """``packaging``'s Requirement of ``text`` (imported only for requirements that need parsing)."""
    from packaging.requirements import InvalidRequirement, Requirement

    try:
        return Requirement(text)
    except InvalidRequirement as exc:
        raise DependencyError(f"Dependency {text!r} is not a valid PEP 508 requirement: {exc}") from None


def requirement_name(text: str) -> str:
    """The distribution name of a PEP 508 requirement string, lower-cased."""
    return (text if _BARE_NAME.fullmatch(text) else _parse(text).name).lower()


def missing_requirements(requirements: list[str]) -> list[str]:
    """The requirement strings (PEP 508) not satisfied by the installed distributions."""
    missing = []
    for text in requirements:
        if _BARE_NAME.fullmatch(text):  # the common case, checked without parsing
            name, req = text, None
        else:
            req = _parse(text)
            if req.marker is not None and not req.marker.evaluate():
                continue
            name = req.name
        try:
            installed = metadata.version(name)
        except metadata.PackageNotFoundError:
            missing.append(text)
            continue
        if req is not None and req.specifier and not req.specifier.contains(installed, prereleases=True):
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
