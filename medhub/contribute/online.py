"""Offline mode for contributions: with ``MEDHUB_OFFLINE`` on, no Zenodo or GitHub request is made.

Every remote step calls :func:`require_online` before it opens a connection, so publishing fails
at once with one line instead of trying the network.
"""

from __future__ import annotations

from .. import settings
from ..errors import ContributionError


class OfflineModeError(ContributionError):
    """A contribution step needs Zenodo or GitHub, but ``MEDHUB_OFFLINE`` is on."""


def require_online(service: str, step: str = "tokens", offline: bool | None = None) -> None:
    """Raise :class:`OfflineModeError` when offline mode is on (``offline``, default ``MEDHUB_OFFLINE``);
    ``service`` names what would be reached.

    Example:
        >>> require_online("Zenodo", offline=False)
        >>> require_online("Zenodo", offline=True)
        Traceback (most recent call last):
        ...
        medhub.contribute.online.OfflineModeError: Offline mode is on (MEDHUB_OFFLINE=1), so medhub makes no request to Zenodo. Unset MEDHUB_OFFLINE to publish, or run with dry_run=True (CLI: --dry-run) to check and package the model offline.
    """
    if settings.is_offline() if offline is None else offline:
        raise OfflineModeError(
            f"Offline mode is on (MEDHUB_OFFLINE=1), so medhub makes no request to {service}. Unset MEDHUB_OFFLINE to "
            "publish, or run with dry_run=True (CLI: --dry-run) to check and package the model offline.", step=step)
