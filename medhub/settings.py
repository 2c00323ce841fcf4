"""Every environment variable medhub reads, with its default and meaning, in one place.

The rest of medhub reads its settings only through :func:`get` (or the helpers below), never
``os.environ`` directly, so this table is complete; ``docs/settings.md`` is generated from it
(``python -m medhub.settings > docs/settings.md``) and a test checks that the page is current.

A bad value gives one line naming the variable and what it accepts::

    >>> import os
    >>> os.environ["MEDHUB_DOWNLOAD_RETRIES"] = "-1"
    >>> get("MEDHUB_DOWNLOAD_RETRIES")
    Traceback (most recent call last):
    ...
    medhub.errors.SettingError: MEDHUB_DOWNLOAD_RETRIES='-1' is not valid: give an integer >= 0 (default 4).
    >>> del os.environ["MEDHUB_DOWNLOAD_RETRIES"]
    >>> get("MEDHUB_DOWNLOAD_RETRIES")
    4
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

from .errors import SettingError

_ON = ("1", "true", "yes", "on")
_OFF = ("0", "false", "no", "off")


@dataclass(frozen=True)
class Setting:
    """One environment variable: its name, kind, default, meaning and (for numbers) lower bound."""

    name: str
    kind: str  # "flag", "int", "float", "str", "path", "choice"
    default: Any
    meaning: str
    minimum: float | None = None
    choices: tuple[str, ...] = ()

    def parse(self, raw: str) -> Any:
        """The typed value of ``raw`` (the variable's text), or :class:`SettingError`."""
        text = raw.strip()
        if self.kind == "flag":
            if text.lower() in _ON:
                return True
            if text.lower() in _OFF:
                return False
            return self._bad(raw, "give 1/true/yes/on or 0/false/no/off")
        if self.kind in ("int", "float"):
            try:
                value: Any = int(text) if self.kind == "int" else float(text)
            except ValueError:
                value = None
            if value is None or value != value or (self.minimum is not None and value < self.minimum):
                bound = f" >= {self.minimum:g}" if self.minimum is not None else ""
                return self._bad(raw, f"give {'an integer' if self.kind == 'int' else 'a number'}{bound}")
            return value
        if self.kind == "choice":
            if text.lower() not in self.choices:
                return self._bad(raw, f"give one of {', '.join(self.choices)}")
            return text.lower()
        return text

    def _bad(self, raw: str, what: str) -> Any:
        default = "" if self.default is None else f" (default {self._default_text()})"
        raise SettingError(f"{self.name}={raw!r} is not valid: {what}{default}.")

    def _default_text(self) -> str:
        if self.kind == "flag":
            return "on" if self.default else "off"
        return str(self.default)


#: The table: every ``MEDHUB_*`` variable (and the token variables) medhub reads.
SETTINGS: dict[str, Setting] = {s.name: s for s in (
    Setting("MEDHUB_HOME", "path", None,
            "Folder for medhub's state: package cache, trusted-package records, default output folders. "
            "Default: the platform's user cache folder (e.g. ~/.cache/medhub)."),
    Setting("MEDHUB_CONFIG", "path", None,
            "Catalog file to use instead of the bundled config/global.json (a path to a JSON file)."),
    Setting("MEDHUB_CATALOG_URL", "str", None,
            "Where `refresh_catalog` / `medhub refresh` fetch a newer catalog from."),
    Setting("MEDHUB_OFFLINE", "flag", False,
            "Make no network connection of any kind: only cached packages and the bundled or cached catalog "
            "are used; commands that need the network fail with one line saying so."),
    Setting("MEDHUB_TRUST_REMOTE_CODE", "flag", False,
            "Run remote packages that have no pinned sha256 without asking (as trust_remote_code=True)."),
    Setting("MEDHUB_DOWNLOAD_TIMEOUT", "float", None,
            "Seconds to wait for a connection and for the next bytes of a download. Default: 10 s to "
            "connect, 60 s between bytes.", minimum=0.001),
    Setting("MEDHUB_DOWNLOAD_DEADLINE", "float", 3600.0,
            "Seconds a whole package download may take, retries included; a server sending slowly cannot stretch it. "
            "The bytes received are kept, so running again resumes.", minimum=0.001),
    Setting("MEDHUB_DOWNLOAD_RETRIES", "int", 4,
            "How often a failed download is retried (0: try once).", minimum=0),
    Setting("MEDHUB_DOWNLOAD_BACKOFF", "float", 0.5,
            "Seconds before the first retry; doubled for each further one.", minimum=0),
    Setting("MEDHUB_MAX_DOWNLOAD_BYTES", "int", 4 * 2**30,
            "Largest download of a package whose size the catalog does not pin (a pinned package may be "
            "exactly its pinned size); a larger one is stopped and deleted.", minimum=1),
    Setting("MEDHUB_MAX_EXTRACT_BYTES", "int", 8 * 2**30,
            "Largest total size of the files unpacked from one package archive.", minimum=1),
    Setting("MEDHUB_MAX_EXTRACT_MEMBERS", "int", 100_000,
            "Largest number of members in one package archive.", minimum=1),
    Setting("MEDHUB_MAX_EXTRACT_RATIO", "int", 200,
            "Largest ratio of unpacked to packed size of one package archive (zip bombs); archives unpacking to "
            "1 MiB or less are not held to it.", minimum=1),
    Setting("MEDHUB_MEMORY_FORMAT", "choice", "",
            "Set to `contiguous` (or 0/off) to keep every network in the layout its package built, even "
            "where the catalog declares channels_last.", choices=("", "contiguous", "0", "false", "no", "off")),
    Setting("MEDHUB_MIXED_PRECISION", "flag", True,
            "Set to 0 to turn off the mixed precision (autocast on CUDA) that packages may declare."),
    Setting("MEDHUB_CPU_STREAMS", "int", 1,
            "Opt-in: package calls run at once on the CPU for packages declaring thread_safe (1: one call "
            "at a time). The same as generate(..., cpu_streams=N).", minimum=1),
    Setting("MEDHUB_WRITERS", "int", 0,
            "Processes that encode and write a run's files. 0: automatic (one per available core, at most 32, "
            "on machines with more than 2 cores, for runs of 2048 files or more; otherwise threads of the "
            "generating process); 1: only threads of the generating process; N: N processes.", minimum=0),
    Setting("SOURCE_DATE_EPOCH", "int", None,
            "Seconds since 1970 (the reproducible-builds convention): the `created` time in the marks of every "
            "file a run writes and in datasets' records and cards, so that a rerun (or `medhub dataset` with the "
            "same seed) writes the same bytes. Default: the time the run starts.", minimum=0),
    Setting("MEDHUB_SIGN_KEY", "path", None,
            "Signing key (PEM, ES256) for C2PA content credentials on every PNG a run writes, with "
            "MEDHUB_SIGN_CERT; the same as generate(..., sign=(KEY, CERT)). Needs pip install 'medhub[c2pa]'."),
    Setting("MEDHUB_SIGN_CERT", "path", None,
            "Certificate chain (PEM, signer first) of MEDHUB_SIGN_KEY."),
    Setting("MEDHUB_C2PA_TRUST_ANCHORS", "path", None,
            "PEM file of the certificate authorities whose C2PA signatures `medhub inspect` reports as trusted."),
    Setting("MEDHUB_WRITER_TIMEOUT", "float", 300.0,
            "Seconds a writer process may make no progress (finish no chunk of files it holds, take in no byte "
            "of the next one) before the run is stopped with a WriterError and nothing of it is kept: a stopped "
            "or hung process cannot hang a run.", minimum=0.001),
    Setting("MEDHUB_DEBUG", "flag", False,
            "The `medhub` command prints full tracebacks instead of one line per error."),
    Setting("MEDHUB_ZENODO_URL", "str", "https://zenodo.org",
            "Zenodo (or a compatible server) that `medhub contribute --publish` uploads to."),
    Setting("MEDHUB_GITHUB_URL", "str", "https://api.github.com",
            "GitHub API that `medhub contribute` opens the model's issue on."),
    Setting("MEDHUB_GITHUB_REPO", "str", "medhub-org/medhub",
            "Repository (owner/name) whose issues receive contributed models."),
    Setting("ZENODO_ACCESS_TOKEN", "str", None,
            "Zenodo token for `contribute --publish` when none is passed; never logged or stored."),
    Setting("GITHUB_TOKEN", "str", None,
            "GitHub token for `contribute` when none is passed; never logged or stored."),
)}


def get(name: str) -> Any:
    """The value of setting ``name``: parsed from the environment, else its default.

    Unset or empty means the default. Raises :class:`SettingError` for a bad value and
    ``KeyError`` for a name not in :data:`SETTINGS` (a bug in medhub, not in the environment).
    """
    setting = SETTINGS[name]
    raw = os.environ.get(name, "")
    if not raw.strip():
        return setting.default
    return setting.parse(raw)


def is_offline() -> bool:
    """True when ``MEDHUB_OFFLINE`` is on: no network connection of any kind."""
    return bool(get("MEDHUB_OFFLINE"))


def check_all() -> None:
    """Parse every setting now (e.g. at CLI start), so a bad value fails before any work."""
    for name in SETTINGS:
        get(name)


def markdown_table() -> str:
    """The reference page of the settings (``docs/settings.md``)."""
    lines = [
        "# Settings (environment variables)",
        "",
        "<!-- generated by `python -m medhub.settings > docs/settings.md`; do not edit by hand -->",
        "",
        "medhub reads these environment variables, and no others; each is optional. A bad value stops",
        "the call with one line naming the variable and what it accepts. Flags take 1/true/yes/on or",
        "0/false/no/off.",
        "",
        "| variable | kind | default | meaning |",
        "|---|---|---|---|",
    ]
    for s in SETTINGS.values():
        default = "-" if s.default in (None, "") else f"`{s._default_text()}`"
        lines.append(f"| `{s.name}` | {s.kind} | {default} | {s.meaning} |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":  # pragma: no cover - documented generator of docs/settings.md
    print(markdown_table(), end="")
