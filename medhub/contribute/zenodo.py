"""Upload a package archive to Zenodo through its REST API (``requests``, no Zenodo client).

The four calls of a publication, each checked for the status code Zenodo answers with:

1. ``POST {base}/api/deposit/depositions`` with ``{}``: 201, the deposition ``id`` and ``links.bucket``;
2. ``PUT {bucket}/{filename}`` with the bytes: 201 (200 accepted), the stored ``checksum`` ``md5:...``,
   compared with the archive's md5;
3. ``PUT {base}/api/deposit/depositions/{id}`` with ``{"metadata": {...}}``: 200;
4. ``POST {base}/api/deposit/depositions/{id}/actions/publish``: 202, the ``record_id`` and ``doi``.

The download URL of the published file is the API content form
``{base}/api/records/{record_id}/files/{filename}/content`` (never a record page). The token goes
only into the ``Authorization: Bearer`` header: never into a URL, a log line or an error message.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit

from .. import settings
from ..errors import ZenodoError
from .online import require_online

logger = logging.getLogger("medhub.contribute.zenodo")

DEFAULT_ZENODO_URL = settings.SETTINGS["MEDHUB_ZENODO_URL"].default
SANDBOX_ZENODO_URL = "https://sandbox.zenodo.org"
#: (connect, read) timeouts in seconds; the read timeout covers Zenodo's checksum of a large upload.
DEFAULT_TIMEOUT = (10.0, 300.0)
#: Retries of idempotent calls (upload, metadata, reading a deposition) after the first attempt,
#: and the first backoff delay in seconds (doubled each retry). Creating and publishing are never
#: retried: a retry could create a second deposition or hide a publication that went through.
DEFAULT_RETRIES = 2
DEFAULT_BACKOFF = 1.0
_RETRY_STATUS = {408, 429, 500, 502, 503, 504}


def zenodo_base_url(url: str | None = None, sandbox: bool = False) -> str:
    """The Zenodo to talk to: ``url``, else the sandbox if asked, else ``MEDHUB_ZENODO_URL``, else zenodo.org.

    A trailing ``/`` or ``/api`` is dropped (``https://zenodo.org/api`` works too).

    Example:
        >>> zenodo_base_url("https://sandbox.zenodo.org/api/")
        'https://sandbox.zenodo.org'
    """
    base = url or (SANDBOX_ZENODO_URL if sandbox else None) or settings.get("MEDHUB_ZENODO_URL") or DEFAULT_ZENODO_URL
    base = base.strip().rstrip("/")
    if base.endswith("/api"):
        base = base[: -len("/api")]
    if urlsplit(base).scheme not in ("http", "https") or not urlsplit(base).netloc:
        raise ZenodoError(f"The Zenodo URL {base!r} is not an http(s) URL; set MEDHUB_ZENODO_URL to e.g. "
                          "https://zenodo.org or https://sandbox.zenodo.org.", step="zenodo-create")
    return base


def redact(text: str, secrets: list[str]) -> str:
    """``text`` with every secret replaced by ``***``."""
    for secret in secrets:
        if secret:
            text = text.replace(secret, "***")
    return text


@dataclass
class Deposition:
    """A Zenodo deposition (a draft until published)."""

    id: int
    bucket: str
    html_url: str
    files: dict[str, str] = field(default_factory=dict)  # filename -> md5 hex of the files already in it


@dataclass(frozen=True)
class PublishedRecord:
    """A published Zenodo record holding the package archive."""

    record_id: int
    concept_record_id: str | None
    doi: str | None
    download_url: str
    html_url: str | None


class ZenodoUploader:
    """Creates, fills and publishes one Zenodo deposition.

    Every method raises :class:`~medhub.errors.ZenodoError` with ``step`` set to the failed call
    and ``state["status"]`` to the HTTP status (None when no answer came).
    """

    def __init__(self, token: str, base_url: str | None = None, sandbox: bool = False,
                 timeout: tuple[float, float] = DEFAULT_TIMEOUT, retries: int | None = None,
                 backoff: float | None = None) -> None:
        import requests

        if not token:
            raise ZenodoError("No Zenodo access token.", step="tokens")
        self.base_url = zenodo_base_url(base_url, sandbox)
        self.timeout = timeout
        self.retries = DEFAULT_RETRIES if retries is None else retries
        self.backoff = DEFAULT_BACKOFF if backoff is None else backoff
        self._token = token
        self._session = requests.Session()
        self._session.headers["Authorization"] = f"Bearer {token}"
        self._session.headers["Accept"] = "application/json"

    def __repr__(self) -> str:  # never shows the token
        return f"ZenodoUploader(base_url={self.base_url!r})"

    # ------------------------------------------------------------------ plumbing
    def _same_origin(self, url: str) -> bool:
        a, b = urlsplit(url), urlsplit(self.base_url)
        return (a.scheme, a.netloc) == (b.scheme, b.netloc)

    def _request(self, step: str, method: str, url: str, expected: tuple[int, ...], retry: bool = False,
                 body_path: Path | None = None, **kwargs: Any) -> Any:
        """One call; retried (idempotent calls only) on connection errors and 408/429/5xx."""
        import requests

        require_online("Zenodo", step)
        if not self._same_origin(url):  # the token must not travel to another host
            raise ZenodoError(f"Zenodo answered with a URL on another host ({urlsplit(url).netloc}); refusing to send "
                              "the token there.", step=step, state={"status": None})
        attempts = 1 + (self.retries if retry else 0)
        for attempt in range(attempts):
            last = attempt == attempts - 1
            try:
                if body_path is not None:
                    with open(body_path, "rb") as fh:
                        response = self._session.request(method, url, data=fh, timeout=self.timeout, **kwargs)
                else:
                    response = self._session.request(method, url, timeout=self.timeout, **kwargs)
            except requests.RequestException as exc:
                reason = redact(f"{type(exc).__name__}: {exc}", [self._token])
                if last:
                    raise ZenodoError(f"{method} {url} got no answer ({reason}).", step=step,
                                      state={"status": None}) from None
                logger.warning("Zenodo %s: %s; retrying", step, reason)
            else:
                if response.status_code in expected:
                    try:
                        return response.json()
                    except ValueError:
                        raise ZenodoError(f"{method} {url} answered {response.status_code} without JSON.", step=step,
                                          state={"status": response.status_code}) from None
                if last or response.status_code not in _RETRY_STATUS:
                    raise ZenodoError(
                        f"{method} {url} answered HTTP {response.status_code}{self._explain(response)}", step=step,
                        state={"status": response.status_code})
                logger.warning("Zenodo %s: HTTP %s; retrying", step, response.status_code)
            time.sleep(self.backoff * 2**attempt)
        raise AssertionError("unreachable")  # pragma: no cover

    def _explain(self, response: Any) -> str:
        """Zenodo's own message (and field errors), plus what to do for the usual statuses."""
        detail = ""
        try:
            doc = response.json()
            detail = str(doc.get("message") or "")
            errors = doc.get("errors") or []
            if errors:
                detail += " " + "; ".join(f"{e.get('field', '?')}: {e.get('message') or e.get('messages')}"
                                          for e in errors if isinstance(e, Mapping))
        except (ValueError, AttributeError):
            detail = response.text[:200]
        detail = redact(" ".join(detail.split()), [self._token]).rstrip(".")
        hint = {401: " Check the token (ZENODO_ACCESS_TOKEN): it must be valid for this Zenodo"
                     " (a sandbox token does not work on zenodo.org, nor the reverse).",
                403: " The token needs the deposit:write and deposit:actions scopes.",
                429: " Zenodo is rate limiting; wait a minute and resume."}.get(response.status_code, "")
        return (f": {detail}." if detail else ".") + hint

    def deposition_html(self, deposition_id: int) -> str:
        return f"{self.base_url}/deposit/{deposition_id}"

    @staticmethod
    def _deposition(doc: Mapping[str, Any], fallback_html: str) -> Deposition:
        files = {f.get("filename") or f.get("key"): str(f.get("checksum", "")).removeprefix("md5:")
                 for f in doc.get("files") or [] if isinstance(f, Mapping)}
        links = doc.get("links") or {}
        return Deposition(int(doc["id"]), links["bucket"], links.get("html") or fallback_html, files)

    # ------------------------------------------------------------------ the four calls
    def create_deposition(self) -> Deposition:
        """``POST /api/deposit/depositions`` (201): a new, empty draft."""
        step = "zenodo-create"
        doc = self._request(step, "POST", f"{self.base_url}/api/deposit/depositions", (201,), json={})
        try:
            deposition = self._deposition(doc, self.deposition_html(doc.get("id")))
        except (KeyError, TypeError, ValueError):
            raise ZenodoError("Zenodo created a deposition but its answer has no id or links.bucket.", step=step,
                              state={"status": 201}) from None
        logger.info("Created Zenodo deposition %s", deposition.id)
        return deposition

    def get_deposition(self, deposition_id: int) -> Deposition:
        """``GET /api/deposit/depositions/{id}`` (200): an existing draft, to resume it."""
        step = "zenodo-create"
        doc = self._request(step, "GET", f"{self.base_url}/api/deposit/depositions/{int(deposition_id)}", (200,),
                            retry=True)
        if doc.get("submitted"):
            raise ZenodoError(f"Zenodo deposition {deposition_id} is already published; contribute with its download "
                              "URL as package_link to open the issue only.", step=step, state={"status": 200})
        try:
            return self._deposition(doc, self.deposition_html(deposition_id))
        except (KeyError, TypeError, ValueError):
            raise ZenodoError(f"Zenodo's answer for deposition {deposition_id} has no links.bucket.", step=step,
                              state={"status": 200}) from None

    def upload(self, deposition: Deposition, path: Path, filename: str, md5: str) -> None:
        """``PUT {bucket}/{filename}`` (201): stream the archive, then compare Zenodo's md5 with ours."""
        step = "zenodo-upload"
        if deposition.files.get(filename) == md5:
            logger.info("%s is already in deposition %s with the same md5; not uploading it again", filename,
                        deposition.id)
            return
        url = f"{deposition.bucket.rstrip('/')}/{quote(filename)}"
        doc = self._request(step, "PUT", url, (200, 201), retry=True, body_path=path,
                            headers={"Content-Type": "application/octet-stream"})
        checksum = str(doc.get("checksum", ""))
        if checksum.removeprefix("md5:") != md5:
            raise ZenodoError(f"Zenodo stored {filename} with checksum {checksum or 'none'}, but the archive's md5 is "
                              f"{md5}: the upload was corrupted. Resume to upload it again.", step=step,
                              state={"status": 201})
        deposition.files[filename] = md5

    def set_metadata(self, deposition: Deposition, metadata: Mapping[str, Any]) -> None:
        """``PUT /api/deposit/depositions/{id}`` with ``{"metadata": ...}`` (200)."""
        self._request("zenodo-metadata", "PUT", f"{self.base_url}/api/deposit/depositions/{deposition.id}", (200,),
                      retry=True, json={"metadata": dict(metadata)})

    def publish(self, deposition: Deposition, filename: str) -> PublishedRecord:
        """``POST /api/deposit/depositions/{id}/actions/publish`` (202): the versioned record and its download URL."""
        step = "zenodo-publish"
        doc = self._request(step, "POST", f"{self.base_url}/api/deposit/depositions/{deposition.id}/actions/publish",
                            (202,))
        try:
            record_id = int(doc.get("record_id") or doc["id"])
        except (KeyError, TypeError, ValueError):
            raise ZenodoError(f"Zenodo published deposition {deposition.id} but its answer has no record id; look it "
                              f"up at {deposition.html_url}.", step=step, state={"status": 202}) from None
        links = doc.get("links") or {}
        concept = doc.get("conceptrecid")
        return PublishedRecord(record_id, str(concept) if concept is not None else None, doc.get("doi") or None,
                               self.download_url(record_id, filename),
                               links.get("record_html") or links.get("html") or f"{self.base_url}/records/{record_id}")

    def download_url(self, record_id: int, filename: str) -> str:
        """The direct download URL of a published file (the API content form, not a record page)."""
        return f"{self.base_url}/api/records/{int(record_id)}/files/{quote(filename)}/content"
