"""Verified, resumable, lock-protected downloads of package archives.

* streaming with connect and read timeouts, bounded retries with exponential backoff;
* size and sha256 checked while streaming; a mismatch removes the file and raises;
* every download writes to a temporary file with a unique name, renamed into place only when
  complete and verified, so concurrent processes never see or produce a partial archive, even
  where file locks do not work;
* a per-package file lock makes concurrent processes download once; while it holds the lock, a
  process may resume a partial file left by an interrupted run (HTTP ``Range``).
"""

from __future__ import annotations

import hashlib
import logging
import os
import time
import uuid
from pathlib import Path
from typing import Any

from ..errors import DownloadError, IntegrityError

logger = logging.getLogger("medhub.execution.fetch")

#: (connect, read) timeouts in seconds; MEDHUB_DOWNLOAD_TIMEOUT sets both.
DEFAULT_TIMEOUT = (10.0, 60.0)
#: Retries after the first attempt (MEDHUB_DOWNLOAD_RETRIES) and the first backoff delay in
#: seconds, doubled each retry (MEDHUB_DOWNLOAD_BACKOFF).
DEFAULT_RETRIES = 4
DEFAULT_BACKOFF = 0.5
_RETRY_STATUS = {408, 425, 429, 500, 502, 503, 504}
_CHUNK = 1 << 20
#: Small enough that a broken transfer loses little: bytes read before the break are kept.
_STREAM_CHUNK = 1 << 20


def _claim_partial(folder: Path, key: str, target: Path) -> int:
    """Take over the largest partial file of ``key`` (atomic rename); return its size (0 if none)."""
    partials = sorted(folder.glob(f"{key}.*.part"), key=lambda p: p.stat().st_size if p.exists() else 0, reverse=True)
    for partial in partials:
        try:
            os.replace(partial, target)
        except OSError:
            continue  # another process took it
        for stale in folder.glob(f"{key}.*.part"):
            if stale != target:
                stale.unlink(missing_ok=True)
        return target.stat().st_size
    return 0


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
) -> tuple[Path, str, int]:
    """Download ``url`` into ``folder`` and return (file, sha256, size).

    The returned file has a unique ``.part`` name; the caller renames it into place. With
    ``sha256`` / ``size`` given, a mismatch raises :class:`IntegrityError` and deletes the file.
    ``resume`` lets this call continue a partial file of the same ``key`` (only safe while
    holding the package lock).
    """
    import requests
    import urllib3
    from tqdm.auto import tqdm

    env_timeout = os.environ.get("MEDHUB_DOWNLOAD_TIMEOUT")
    timeout = timeout or ((float(env_timeout),) * 2 if env_timeout else DEFAULT_TIMEOUT)
    retries = retries if retries is not None else int(os.environ.get("MEDHUB_DOWNLOAD_RETRIES", DEFAULT_RETRIES))
    backoff = backoff if backoff is not None else float(os.environ.get("MEDHUB_DOWNLOAD_BACKOFF", DEFAULT_BACKOFF))
    folder.mkdir(parents=True, exist_ok=True)
    part = folder / f"{key}.{os.getpid()}-{uuid.uuid4().hex[:8]}.part"
    have = _claim_partial(folder, key, part) if resume else 0
    if have:
        logger.info("Resuming %s at byte %d", url, have)
    hasher = _BackgroundHasher()
    if have:
        _hash_existing(part, hasher)
    session = requests.Session()
    show = os.isatty(2) if progress is None else progress
    last_error = ""
    try:
        for attempt in range(retries + 1):
            if attempt:
                delay = min(backoff * 2 ** (attempt - 1), 30.0)
                logger.warning("Retrying %s in %.1fs (attempt %d of %d): %s", url, delay, attempt + 1, retries + 1,
                               last_error)
                time.sleep(delay)
            headers = {"Range": f"bytes={have}-"} if have else {}
            try:
                with session.get(url, stream=True, timeout=timeout, headers=headers) as response:
                    status = response.status_code
                    if status in _RETRY_STATUS:
                        last_error = f"HTTP {status}"
                        continue
                    if status >= 400:
                        part.unlink(missing_ok=True)  # the resource is not there: nothing worth resuming
                        raise DownloadError(f"Downloading {url} failed: HTTP {status} {response.reason}. "
                                            "Check the package link in the catalog.")
                    if status == 200 and have:  # the server ignored Range: start again
                        hasher.close()
                        have, hasher = 0, _BackgroundHasher()
                        part.write_bytes(b"")
                    elif status == 206 and not response.headers.get("Content-Range", "").startswith(f"bytes {have}-"):
                        hasher.close()
                        have, hasher = 0, _BackgroundHasher()
                        part.write_bytes(b"")
                        last_error = "server answered a different range"
                        continue
                    length = response.headers.get("Content-Length")
                    total = size if size is not None else (have + int(length) if length and length.isdigit() else None)
                    with open(part, "ab") as fh, tqdm(total=total, initial=have, unit="B", unit_scale=True,
                                                      desc=url.rsplit("/", 1)[-1].split("?")[0][:40],
                                                      disable=not show) as bar:
                        for block in response.raw.stream(_STREAM_CHUNK, decode_content=False):
                            fh.write(block)
                            hasher.update(block)
                            have += len(block)
                            bar.update(len(block))
                            if size is not None and have > size:
                                raise IntegrityError(f"{url} is larger than the {size} bytes pinned in the catalog.")
            except (requests.ConnectionError, requests.Timeout, requests.exceptions.ChunkedEncodingError,
                    urllib3.exceptions.HTTPError) as exc:  # raw.stream raises urllib3's own errors
                last_error = f"{type(exc).__name__}: {exc}"
                continue
            if size is not None and have < size:
                last_error = f"transfer ended at {have} of {size} bytes"
                continue
            break
        else:
            raise DownloadError(f"Downloading {url} failed after {retries + 1} attempts: {last_error}. "
                                "Check your connection and try again; completed bytes are kept for resuming.")
        digest = hasher.hexdigest()
        if sha256 is not None and digest != sha256:
            part.unlink(missing_ok=True)
            raise IntegrityError(f"{url} has sha256 {digest}, but the catalog pins {sha256}. The file was deleted "
                                 "and nothing was imported; the package or the catalog entry is wrong.")
        if size is not None and have != size:
            part.unlink(missing_ok=True)
            raise IntegrityError(f"{url} has {have} bytes, but the catalog pins {size}; the file was deleted.")
        return part, digest, have
    except BaseException as exc:
        # keep completed bytes for a later resume unless the data is known bad or empty
        if isinstance(exc, IntegrityError) or not resume or (part.exists() and part.stat().st_size == 0):
            part.unlink(missing_ok=True)
        raise
    finally:
        hasher.close()
        session.close()
