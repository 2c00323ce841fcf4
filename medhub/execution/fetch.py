"""Verified, resumable, bounded downloads of package archives.

* streaming with connect and read timeouts, bounded retries with exponential backoff, and a
  total deadline (``MEDHUB_DOWNLOAD_DEADLINE``) that a server trickling bytes cannot stretch;
* a size cap: the catalog's pinned size, else ``MEDHUB_MAX_DOWNLOAD_BYTES``;
* size and sha256 checked while streaming; a mismatch removes the file and raises;
* every download writes to a temporary file with a unique name, renamed into place by the caller
  only when complete and verified, so concurrent processes never see or produce a partial archive;
* a resumed download is validated: ``Range`` goes with ``If-Range`` and the ETag or Last-Modified
  the server gave for the first bytes (kept beside the partial file), so a file that changed on the
  server is downloaded again from the start, also where a server ignores ``If-Range`` and answers
  ``206`` with another ETag (or Last-Modified) than the first attempt's. Without either validator
  only a pinned download resumes (the pinned sha256 is the check; a mismatch after resuming restarts from byte 0 once);
  an unpinned one starts again.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import DownloadError, IntegrityError

logger = logging.getLogger("medhub.execution.fetch")

#: (connect, read) timeouts in seconds when MEDHUB_DOWNLOAD_TIMEOUT is unset (it sets both).
DEFAULT_TIMEOUT = (10.0, 60.0)
_RETRY_STATUS = {408, 425, 429, 500, 502, 503, 504}
_CHUNK = 1 << 20
#: Suffix of the file beside a partial download holding the server's validators (ETag, Last-Modified).
VALIDATORS_SUFFIX = ".json"


@dataclass(frozen=True)
class Budget:
    """How long and how large one download may be, and how it retries (from :mod:`medhub.settings`)."""

    timeout: tuple[float, float]
    retries: int
    backoff: float
    deadline_s: float
    max_bytes: int

    @classmethod
    def from_settings(cls, timeout: tuple[float, float] | None = None, retries: int | None = None,
                      backoff: float | None = None, deadline_s: float | None = None,
                      max_bytes: int | None = None) -> Budget:
        from .. import settings

        env_timeout = settings.get("MEDHUB_DOWNLOAD_TIMEOUT")
        return cls(
            timeout=timeout or ((env_timeout, env_timeout) if env_timeout is not None else DEFAULT_TIMEOUT),
            retries=retries if retries is not None else settings.get("MEDHUB_DOWNLOAD_RETRIES"),
            backoff=backoff if backoff is not None else settings.get("MEDHUB_DOWNLOAD_BACKOFF"),
            deadline_s=deadline_s if deadline_s is not None else settings.get("MEDHUB_DOWNLOAD_DEADLINE"),
            max_bytes=max_bytes if max_bytes is not None else settings.get("MEDHUB_MAX_DOWNLOAD_BYTES"),
        )


def validators_of(part: Path) -> Path:
    """The file beside partial download ``part`` that keeps the server's validators."""
    return part.with_name(part.name + VALIDATORS_SUFFIX)


def _claim_partial(folder: Path, key: str, target: Path) -> tuple[int, dict[str, str]]:
    """Take over the largest partial file of ``key`` (atomic rename) and its validators.

    Returns its size (0 if none) and the validators recorded for it (empty if none).
    """
    def size(p: Path) -> int:
        try:
            return p.stat().st_size
        except OSError:
            return 0

    partials = sorted(folder.glob(f"{key}.*.part"), key=size, reverse=True)
    for partial in partials:
        try:
            os.replace(partial, target)
        except OSError:
            continue  # another process took it
        found: dict[str, str] = {}
        try:
            found = json.loads(validators_of(partial).read_text())
            os.replace(validators_of(partial), validators_of(target))
        except (OSError, ValueError):
            found = {}
        for stale in folder.glob(f"{key}.*.part"):
            if stale != target:
                stale.unlink(missing_ok=True)
                validators_of(stale).unlink(missing_ok=True)
        return target.stat().st_size, found if isinstance(found, dict) else {}
    return 0, {}


class _BackgroundHasher:
    """sha256 computed in a helper thread (hashlib releases the GIL), so hashing overlaps with
    reading the socket and writing the file. ``update`` queues a chunk; ``hexdigest`` waits."""

    def __init__(self) -> None:
        import queue
        import threading

        self._sha = hashlib.sha256()
        self._queue: queue.Queue[bytes | None] = queue.Queue(maxsize=16)
        self._thread = threading.Thread(target=self._run, name="medhub-sha256", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while (block := self._queue.get()) is not None:
            self._sha.update(block)

    def update(self, block: bytes) -> None:
        self._queue.put(block)

    def close(self) -> None:
        if self._thread.is_alive():
            self._queue.put(None)
            self._thread.join()

    def hexdigest(self) -> str:
        self.close()
        return self._sha.hexdigest()


def _hash_existing(path: Path, hasher: Any) -> None:
    with open(path, "rb") as fh:
        while block := fh.read(_CHUNK):
            hasher.update(block)


def _validators(headers: Any) -> dict[str, str]:
    """The strong ETag and Last-Modified of a response (a weak ETag cannot go in If-Range)."""
    out = {}
    etag = headers.get("ETag", "")
    if etag and not etag.startswith("W/"):
        out["etag"] = etag
    if headers.get("Last-Modified"):
        out["last_modified"] = headers["Last-Modified"]
    return out


def _changed(first: dict[str, str], now: dict[str, str]) -> str:
    """What says that a resumed response is of another file than the first attempt's (its ETag, else its
    Last-Modified, differing from those kept), or ``""``.

    Example:
        >>> _changed({"etag": '"a"'}, {"etag": '"b"'}), _changed({"etag": '"a"'}, {"etag": '"a"'})
        ('ETag "a", now "b"', '')
    """
    for key, name in (("etag", "ETag"), ("last_modified", "Last-Modified")):
        if first.get(key) and now.get(key):
            return f"{name} {first[key]}, now {now[key]}" if first[key] != now[key] else ""
    return ""


def _blocks(raw: Any) -> Any:
    """The body in blocks as they arrive (``read1``), so a deadline is checked between network
    reads; urllib3 versions without ``read1`` fall back to reads of at most 64 KiB."""
    if hasattr(raw, "read1"):
        while block := raw.read1(_CHUNK, decode_content=False):
            yield block
    else:  # pragma: no cover - urllib3 < 2.3
        yield from raw.stream(1 << 16, decode_content=False)


class _Transfer:
    """State of one download: the partial file, its hash and validators, the bytes so far."""

    def __init__(self, url: str, part: Path, have: int, validators: dict[str, str]) -> None:
        self.url, self.part, self.have, self.validators = url, part, have, validators
        self.hasher = _BackgroundHasher()
        self.resumed = bool(have)
        self.discard = False  # set when the bytes so far are worth nothing (too large)
        if have:
            _hash_existing(part, self.hasher)

    def restart(self) -> None:
        self.hasher.close()
        self.have, self.hasher, self.resumed, self.validators = 0, _BackgroundHasher(), False, {}
        self.part.write_bytes(b"")
        validators_of(self.part).unlink(missing_ok=True)

    def keep_validators(self, found: dict[str, str]) -> None:
        self.validators = found
        if found:
            validators_of(self.part).write_text(json.dumps({"url": self.url, **found}))

    def headers(self, pinned: bool) -> dict[str, str]:
        if not self.have:
            return {}
        condition = self.validators.get("etag") or self.validators.get("last_modified")
        if condition:
            return {"Range": f"bytes={self.have}-", "If-Range": condition}
        if pinned:  # the pinned sha256 checks the joined file
            return {"Range": f"bytes={self.have}-"}
        logger.info("No ETag or Last-Modified kept for the partial download of %s; starting again", self.url)
        self.restart()
        return {}

    def close(self) -> None:
        self.hasher.close()


def download(
    url: str,
    folder: Path,
    key: str,
    sha256: str | None = None,
    size: int | None = None,
    timeout: tuple[float, float] | None = None,
    retries: int | None = None,
    backoff: float | None = None,
    progress: bool | None = None,
    resume: bool = True,
    deadline_s: float | None = None,
    max_bytes: int | None = None,
) -> tuple[Path, str, int]:
    """Download ``url`` into ``folder`` and return (file, sha256, size).

    The returned file has a unique ``.part`` name; the caller renames it into place. With
    ``sha256`` / ``size`` given, a mismatch raises :class:`IntegrityError` and deletes the file.
    A download larger than ``size`` (when pinned) or ``max_bytes`` (default
    ``MEDHUB_MAX_DOWNLOAD_BYTES``), or longer than ``deadline_s`` (``MEDHUB_DOWNLOAD_DEADLINE``),
    raises :class:`DownloadError`. ``resume`` lets this call continue a partial file of the same
    ``key`` (only safe while holding the package lock).
    """
    budget = Budget.from_settings(timeout, retries, backoff, deadline_s, max_bytes)
    import requests

    folder.mkdir(parents=True, exist_ok=True)
    part = folder / f"{key}.{os.getpid()}-{uuid.uuid4().hex[:8]}.part"
    have, found = _claim_partial(folder, key, part) if resume else (0, {})
    if found.get("url") != url:  # validators of another server say nothing about this one
        found = {}
    if have:
        logger.info("Resuming %s at byte %d", url, have)
    transfer = _Transfer(url, part, have, found)
    session = requests.Session()
    ends = time.monotonic() + budget.deadline_s
    try:
        _run(session, transfer, budget, ends, sha256, size, progress)
        digest = transfer.hasher.hexdigest()
        if sha256 is not None and digest != sha256 and transfer.resumed:
            logger.warning("%s did not match its pin after resuming; downloading it again from the start", url)
            transfer.restart()
            _run(session, transfer, budget, ends, sha256, size, progress)
            digest = transfer.hasher.hexdigest()
        if sha256 is not None and digest != sha256:
            raise IntegrityError(f"{url} has sha256 {digest}, but the catalog pins {sha256}. The file was deleted "
                                 "and nothing was imported; the package or the catalog entry is wrong.")
        if size is not None and transfer.have != size:
            raise IntegrityError(f"{url} has {transfer.have} bytes, but the catalog pins {size}; the file was deleted.")
        validators_of(part).unlink(missing_ok=True)
        return part, digest, transfer.have
    except BaseException as exc:
        # keep completed bytes for a later resume unless the data is known bad, empty or too much
        known_bad = isinstance(exc, IntegrityError) or transfer.discard
        if known_bad or not resume or (part.exists() and part.stat().st_size == 0):
            part.unlink(missing_ok=True)
            validators_of(part).unlink(missing_ok=True)
        raise
    finally:
        transfer.close()
        session.close()


def _too_large(transfer: _Transfer, limit: int, pinned: bool) -> DownloadError | IntegrityError:
    transfer.discard = True
    if pinned:
        return IntegrityError(f"{transfer.url} is larger than the {limit} bytes pinned in the catalog; the file was "
                              "deleted.")
    return DownloadError(f"{transfer.url} is larger than {limit} bytes, the most medhub downloads for a package whose "
                         "size the catalog does not pin; the file was deleted. Raise MEDHUB_MAX_DOWNLOAD_BYTES if "
                         "you expect it.")


def _run(session: Any, transfer: _Transfer, budget: Budget, ends: float, sha256: str | None, size: int | None,
         progress: bool | None) -> None:
    """The attempts of one download, until it is complete, or the retries run out, or ``ends``
    (a ``time.monotonic()`` value) passes."""
    import requests
    import urllib3

    from ..progress import progress_bar

    url, part = transfer.url, transfer.part
    limit = size if size is not None else budget.max_bytes
    last_error = ""

    def overdue() -> DownloadError:
        return DownloadError(f"Downloading {url} took longer than {budget.deadline_s:g} s (MEDHUB_DOWNLOAD_DEADLINE) "
                             f"and was stopped at {transfer.have} bytes; completed bytes are kept for resuming.")

    for attempt in range(budget.retries + 1):
        if attempt:
            delay = min(budget.backoff * 2 ** (attempt - 1), 30.0)
            if time.monotonic() + delay > ends:
                raise overdue()
            logger.warning("Retrying %s in %.1fs (attempt %d of %d): %s", url, delay, attempt + 1,
                           budget.retries + 1, last_error)
            time.sleep(delay)
        headers = transfer.headers(pinned=sha256 is not None)
        try:
            with session.get(url, stream=True, timeout=budget.timeout, headers=headers) as response:
                status = response.status_code
                if status in _RETRY_STATUS:
                    last_error = f"HTTP {status}"
                    continue
                if status >= 400:
                    part.unlink(missing_ok=True)  # the resource is not there: nothing worth resuming
                    raise DownloadError(f"Downloading {url} failed: HTTP {status} {response.reason}. "
                                        "Check the package link in the catalog.")
                if status == 200 and transfer.have:  # the server ignored Range, or the file changed (If-Range)
                    transfer.restart()
                elif status == 206 and not response.headers.get("Content-Range", "").startswith(
                        f"bytes {transfer.have}-"):
                    transfer.restart()
                    last_error = "server answered a different range"
                    continue
                elif status == 206 and _changed(transfer.validators, _validators(response.headers)):
                    logger.warning("%s changed on the server since its first bytes were downloaded (%s); downloading "
                                   "it again from the start", url, _changed(transfer.validators,
                                                                            _validators(response.headers)))
                    transfer.restart()
                    last_error = "the file changed on the server while it was downloaded"
                    continue
                if status == 200:
                    transfer.keep_validators(_validators(response.headers))
                length = response.headers.get("Content-Length", "")
                if length.isdigit() and transfer.have + int(length) > limit:
                    raise _too_large(transfer, limit, size is not None)
                total = size if size is not None else (transfer.have + int(length) if length.isdigit() else None)
                with open(part, "ab") as fh, progress_bar(total, url.rsplit("/", 1)[-1].split("?")[0][:40], progress,
                                                          initial=transfer.have, unit="B", unit_scale=True) as bar:
                    for block in _blocks(response.raw):
                        if transfer.have + len(block) > limit:
                            raise _too_large(transfer, limit, size is not None)
                        fh.write(block)
                        transfer.hasher.update(block)
                        transfer.have += len(block)
                        bar.update(len(block))
                        if time.monotonic() > ends:
                            raise overdue()
        except (requests.ConnectionError, requests.Timeout, requests.exceptions.ChunkedEncodingError,
                urllib3.exceptions.HTTPError) as exc:  # raw reads raise urllib3's own errors
            last_error = f"{type(exc).__name__}: {exc}"
            if time.monotonic() > ends:
                raise overdue() from None
            continue
        if size is not None and transfer.have < size:
            last_error = f"transfer ended at {transfer.have} of {size} bytes"
            continue
        return
    raise DownloadError(f"Downloading {url} failed after {budget.retries + 1} attempts: {last_error}. "
                        "Check your connection and try again; completed bytes are kept for resuming.")
