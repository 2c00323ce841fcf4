"""ConfigManager: load, validate, version and refresh the model catalog (``global.json``)."""

from __future__ import annotations

import json
import logging
import os
import re
from collections.abc import Callable
from functools import lru_cache
from pathlib import Path
from typing import Any

from . import _paths, settings
from .atomic import write_json_atomically
from .compat import convert_medigan_catalog, is_medigan_catalog
from .errors import CatalogError, ConfigKeyError, ModelNotFoundError

logger = logging.getLogger("medhub.config")

#: Major version of the catalog format this medhub understands.
SCHEMA_VERSION = 1
#: Where :meth:`ConfigManager.refresh` looks for a newer catalog unless told otherwise.
DEFAULT_CATALOG_URL = "https://raw.githubusercontent.com/medhub-org/medhub/main/config/global.json"
_ID_PREFIX = re.compile(r"^(\d{1,5})$")
#: Largest catalog :meth:`ConfigManager.refresh` downloads, and its total deadline in units of its timeout.
MAX_CATALOG_BYTES = 256 * 2**20
REFRESH_DEADLINE_FACTOR = 6
#: Deepest nesting of objects and lists a catalog may have (a real one needs about 10 levels).
MAX_DEPTH = 64


@lru_cache(maxsize=1)
def _validator() -> Callable[[Any], Any]:
    import fastjsonschema

    schema = json.loads(_paths.schema_path().read_text(encoding="utf-8"))
    return fastjsonschema.compile(schema)


def validate_catalog(doc: Any, source: str = "catalog") -> None:
    """Validate a catalog document against medhub's JSON Schema.

    Raises :class:`CatalogError` naming the JSON path of the first bad value and the rule it
    breaks, e.g. ``$.models.00101_X.execution.sha256 must match pattern ^[0-9a-f]{64}$``.
    """
    import fastjsonschema

    if isinstance(doc, dict) and doc.get("schema_version") not in (None, SCHEMA_VERSION):
        raise CatalogError(
            f"{source}: schema_version {doc.get('schema_version')!r} is not supported by this medhub "
            f"(it reads schema_version {SCHEMA_VERSION}); upgrade medhub or use a matching catalog."
        )
    try:
        _validator()(doc)
    except fastjsonschema.JsonSchemaValueException as exc:
        if exc.rule == "propertyNames" and exc.name == "data.models":
            raise CatalogError(_bad_model_id(doc["models"], source)) from None
        path = "$" + exc.name[len("data") :] if exc.name.startswith("data") else exc.name
        message = exc.message.replace(exc.name, path, 1)
        raise CatalogError(f"{source}: invalid catalog: {message} (rule: {exc.rule})") from None


def _bad_model_id(models: dict[str, Any], source: str) -> str:
    """The message for a key of ``models`` that is no model id: which key, and what an id looks like."""
    schema = json.loads(_paths.schema_path().read_text(encoding="utf-8"))
    pattern = re.compile(schema["properties"]["models"]["propertyNames"]["pattern"])
    bad = next((key for key in models if not pattern.match(key)), None)
    return (f"{source}: invalid catalog: the key {bad!r} of $.models is not a model id; a model id is five digits, "
            "an underscore and a name of letters, digits, '_', '.' or '-', starting with a letter or digit "
            "(e.g. 00150_MY_GAN).")


def _validation_key(path: Path) -> str | None:
    """What identifies one version of a catalog file and of the rules it was checked by: its path,
    device, inode, size, mtime and ctime (an edit with the mtime put back still changes the ctime),
    medhub's version and the schema. A catalog file that passed validation is remembered by it
    (``<MEDHUB_HOME>/catalog/validated.json``), so an unchanged catalog is validated once, not in
    every process: compiling the schema was most of ``Generators()``'s time. The record only saves
    work on input that already passed; what runs stays pinned by the catalog's sha256s."""
    import hashlib

    from .version import __version__

    try:
        st = path.stat()
        schema = _paths.schema_path().read_bytes()
    except OSError:
        return None
    raw = (f"{path.resolve()}|{st.st_dev}|{st.st_ino}|{st.st_size}|{st.st_mtime_ns}|{st.st_ctime_ns}|"
           f"{__version__}|").encode() + schema
    return hashlib.sha256(raw).hexdigest()


def _validation_store() -> Path:
    return _paths.medhub_home() / "catalog" / "validated.json"


def _validation_cached(key: str) -> bool:
    try:
        return key in json.loads(_validation_store().read_text())
    except (OSError, ValueError):
        return False


def _remember_validation(key: str) -> None:
    store = _validation_store()
    try:
        keys = json.loads(store.read_text()) if store.exists() else []
        write_json_atomically(store, ([k for k in keys if k != key] + [key])[-32:], parents=True)
    except (OSError, ValueError) as exc:  # a read-only home only costs speed
        logger.debug("Cannot remember catalog validation in %s: %s", store, exc)


def _read_json(path: Path) -> Any:
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise CatalogError(f"Catalog file {path} does not exist; check MEDHUB_CONFIG or the path you passed.") from None
    except IsADirectoryError:
        raise CatalogError(f"Catalog path {path} is a folder; give the catalog's JSON file (check MEDHUB_CONFIG or "
                           "the path you passed).") from None
    except OSError as exc:
        raise CatalogError(f"Catalog file {path} cannot be read: {exc.strerror or exc}.") from None
    try:
        return _parse_json(path, raw)
    except RecursionError:
        raise CatalogError(f"{path}: objects or lists nested deeper than {MAX_DEPTH} levels; this is not a "
                           "catalog.") from None


def _parse_json(path: Path, raw: bytes) -> Any:
    try:
        import orjson  # about twice as fast as json on large catalogs

        return orjson.loads(raw)
    except ImportError:
        pass
    except json.JSONDecodeError:
        pass  # re-parse with json below for its error message
    try:
        return json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        where = f"line {exc.lineno}, column {exc.colno}: {exc.msg}" if isinstance(exc, json.JSONDecodeError) else str(exc)
        raise CatalogError(f"{path}: not valid JSON ({where}).") from None


def check_depth(doc: Any, source: str, limit: int = MAX_DEPTH) -> None:
    """Raise :class:`CatalogError` naming the JSON path where ``doc`` nests deeper than ``limit``.

    Example:
        >>> check_depth({"a": [[[1]]]}, "c.json", limit=3)
        Traceback (most recent call last):
        ...
        medhub.errors.CatalogError: c.json: $.a[0][0] nests deeper than 3 levels of objects and lists; this is not a catalog.
    """
    if not _nests_deeper(doc, limit):  # the common case, without building a path per node
        return
    stack: list[tuple[Any, str, int]] = [(doc, "$", 0)]
    while stack:
        value, where, depth = stack.pop()
        children: Any = value.items() if isinstance(value, dict) else enumerate(value) if isinstance(value, list) else ()
        for key, child in children:
            if not isinstance(child, (dict, list)):
                continue
            path = f"{where}[{key}]" if isinstance(value, list) else f"{where}.{key}"
            if depth + 1 >= limit:
                raise CatalogError(f"{source}: {path} nests deeper than {limit} levels of objects and lists; this is "
                                   "not a catalog.")
            stack.append((child, path, depth + 1))


def _nests_deeper(doc: Any, limit: int) -> bool:
    """Whether a container inside ``doc`` sits ``limit`` or more levels down (cheap: no paths)."""
    stack: list[tuple[Any, int]] = [(doc, 0)]
    while stack:
        value, depth = stack.pop()
        children = value.values() if isinstance(value, dict) else value if isinstance(value, list) else ()
        for child in children:
            if isinstance(child, (dict, list)):
                if depth + 1 >= limit:
                    return True
                stack.append((child, depth + 1))
    return False


def _version_key(version: str) -> tuple[int, ...]:
    return tuple(int(p) for p in version.split("."))


class RefreshResult:
    """What :meth:`ConfigManager.refresh` did: ``status`` is one of ``updated``, ``not-modified``,
    ``not-newer``, ``offline`` or ``failed``; ``reason`` explains failures."""

    __slots__ = ("status", "catalog_version", "reason")

    def __init__(self, status: str, catalog_version: str, reason: str = "") -> None:
        self.status, self.catalog_version, self.reason = status, catalog_version, reason

    def as_dict(self) -> dict[str, str]:
        return {"status": self.status, "catalog_version": self.catalog_version, "reason": self.reason}

    def __repr__(self) -> str:
        return f"RefreshResult(status={self.status!r}, catalog_version={self.catalog_version!r}, reason={self.reason!r})"

    @property
    def updated(self) -> bool:
        return self.status == "updated"


class ConfigManager:
    """Holds the model catalog and answers questions about its entries.

    The catalog comes from, in this order: ``config_file`` if given; the file named by the
    ``MEDHUB_CONFIG`` environment variable; a newer catalog that :meth:`refresh` stored in
    ``MEDHUB_HOME``; the copy bundled with medhub. A medigan-format catalog is converted.

    Example:
        >>> cm = ConfigManager()
        >>> cm.resolve_model_id(101)
        '00101_DCGAN_BRAIN_MRI_T1'
        >>> cm.get_config_by_id("101", "execution.interface")
        'medhub/1'
    """

    def __init__(self, config_file: str | os.PathLike[str] | None = None, catalog_url: str | None = None) -> None:
        self.catalog_url = catalog_url or settings.get("MEDHUB_CATALOG_URL") or DEFAULT_CATALOG_URL
        explicit = config_file or settings.get("MEDHUB_CONFIG")
        if explicit:
            self.source = Path(explicit).expanduser().resolve()
            doc = self._load(self.source)
        else:
            bundled = _paths.bundled("config/global.json")
            self.source, doc = bundled, self._load(bundled)
            cached = self._cached_catalog_path()
            if cached.exists():
                try:
                    cached_doc = self._load(cached)
                    if _version_key(cached_doc["catalog_version"]) > _version_key(doc["catalog_version"]):
                        self.source, doc = cached, cached_doc
                except CatalogError as exc:
                    logger.warning("Ignoring the refreshed catalog in %s: %s", cached, exc)
        self._set(doc)

    # ------------------------------------------------------------------ loading
    @staticmethod
    def _load(path: Path) -> dict[str, Any]:
        import gc

        # Parsing a large catalog creates millions of objects; the cyclic GC only slows that down.
        gc_was_enabled = gc.isenabled()
        gc.disable()
        try:
            doc = _read_json(path)
            key = _validation_key(path)
            known = key is not None and _validation_cached(key)  # this very file passed the checks before
            if not known:
                check_depth(doc, str(path))
            if is_medigan_catalog(doc):
                logger.info("%s is a medigan catalog; converting it to the medhub schema", path)
                try:
                    doc = convert_medigan_catalog(doc)
                except CatalogError as exc:
                    raise CatalogError(f"{path}: {exc}") from None
            if not known:
                validate_catalog(doc, source=str(path))
                if key is not None:
                    _remember_validation(key)
        finally:
            if gc_was_enabled:
                gc.enable()
        return doc

    def _set(self, doc: dict[str, Any]) -> None:
        self.config: dict[str, Any] = doc
        self.config_dict: dict[str, Any] = doc["models"]  # medigan's attribute name
        self.model_ids: list[str] = list(doc["models"])
        self.schema_version: int = doc["schema_version"]
        self.catalog_version: str = doc["catalog_version"]
        self._prefix_index: dict[str, list[str]] = {}
        for model_id in self.model_ids:
            self._prefix_index.setdefault(model_id.split("_", 1)[0], []).append(model_id)

    def _cached_catalog_path(self) -> Path:
        return _paths.medhub_home() / "catalog" / "global.json"

    @property
    def base_dir(self) -> Path:
        """Folder against which relative package links of this catalog resolve."""
        if self.source == _paths.bundled("config/global.json"):
            return _paths.bundled("models")
        return self.source.parent

    # ------------------------------------------------------------------ lookups
    def resolve_model_id(self, model_id: str | int) -> str:
        """Return the full id for ``model_id``: a full id, or its number as in medigan
        (``5``, ``"5"``, ``"00005"`` -> ``"00005_DCGAN_MMG_MASS_ROI"``).

        Raises :class:`ModelNotFoundError` naming the closest ids when nothing matches.
        """
        if isinstance(model_id, bool) or not isinstance(model_id, (str, int)):
            raise ModelNotFoundError(f"A model id must be a string or an integer, not {type(model_id).__name__}.")
        key = str(model_id).strip()
        if key in self.config_dict:
            return key
        match = _ID_PREFIX.match(key)
        if match:
            hits = self._prefix_index.get(match.group(1).zfill(5), [])
            if len(hits) == 1:
                return hits[0]
        else:
            lowered = {m.lower(): m for m in self.model_ids}
            if key.lower() in lowered:
                return lowered[key.lower()]
        if match:
            number = int(match.group(1))
            close = sorted(self.model_ids, key=lambda m: abs(int(m[:5]) - number))[:3]
        else:
            close = self._closest(key)
        hint = f" Closest ids: {', '.join(close)}." if close else ""
        raise ModelNotFoundError(
            f"No model with id {model_id!r} in catalog {self.catalog_version} ({len(self.model_ids)} models).{hint} "
            "List them with `medhub list`.",
            candidates=close,
        )

    def add_entry(self, model_id: str, entry: dict[str, Any]) -> None:
        """Add (or replace) ``model_id``'s entry in this in-memory catalog, so that its number
        resolves too (``generate(190)`` finds ``00190_...``); the catalog files are never written.

        Example:
            >>> cm = ConfigManager()
            >>> cm.add_entry("00190_MY_GAN", dict(cm.get_config_by_id(101)))
            >>> cm.resolve_model_id(190)
            '00190_MY_GAN'
        """
        if model_id not in self.config_dict:
            self.model_ids.append(model_id)
            self._prefix_index.setdefault(model_id.split("_", 1)[0], []).append(model_id)
        self.config_dict[model_id] = entry

    def _closest(self, key: str, n: int = 3) -> list[str]:
        """The ``n`` ids most similar to ``key`` (substring hits first, then by similarity)."""
        import difflib

        needle = key.lower()

        def score(model_id: str) -> float:
            full = model_id.lower()
            name = full.split("_", 1)[-1]
            ratio = max(difflib.SequenceMatcher(None, needle, full).ratio(),
                        difflib.SequenceMatcher(None, needle, name).ratio())
            return ratio + (1.0 if needle in full else 0.0)

        return sorted(self.model_ids, key=score, reverse=True)[:n]

    def is_model_in_config(self, model_id: str | int) -> bool:
        """True if ``model_id`` resolves to a catalog entry."""
        try:
            self.resolve_model_id(model_id)
        except ModelNotFoundError:
            return False
        return True

    def get_config_by_id(self, model_id: str | int, config_key: str | None = None) -> Any:
        """Return the entry of ``model_id``, or the part below a dotted ``config_key``.

        Example:
            >>> ConfigManager().get_config_by_id(101, "execution.generate_method.name")
            'generate'
        """
        entry: Any = self.config_dict[self.resolve_model_id(model_id)]
        if not config_key:
            return entry
        walked = []
        for part in config_key.split("."):
            walked.append(part)
            if isinstance(entry, dict) and part in entry:
                entry = entry[part]
            elif isinstance(entry, list) and part.isdigit() and int(part) < len(entry):
                entry = entry[int(part)]
            else:
                options = ", ".join(sorted(entry)) if isinstance(entry, dict) else "none (not an object)"
                raise ConfigKeyError(
                    f"Model {self.resolve_model_id(model_id)} has no config key {'.'.join(walked)!r}; "
                    f"keys available there: {options}."
                )
        return entry

    # ------------------------------------------------------------------ refresh
    def refresh(self, url: str | None = None, timeout: float = 10.0) -> RefreshResult:
        """Fetch a newer catalog from ``url`` (default: ``MEDHUB_CATALOG_URL`` or the project URL).

        The download uses a timeout, the ETag of the last download, a total deadline of
        ``REFRESH_DEADLINE_FACTOR * timeout`` and a size cap (:data:`MAX_CATALOG_BYTES`). The fetched catalog is
        accepted only if it validates, has the same ``schema_version`` and a newer
        ``catalog_version``; it is then stored atomically in ``MEDHUB_HOME/catalog`` and used.
        On any failure the current catalog stays in use. With ``MEDHUB_OFFLINE=1`` no network
        call is made.
        """
        url = url or self.catalog_url
        if settings.is_offline():
            return RefreshResult("offline", self.catalog_version, "MEDHUB_OFFLINE is set")
        import requests

        cache = self._cached_catalog_path()
        etag_file = cache.with_suffix(".etag.json")
        headers = {"Accept": "application/json"}
        try:
            etag_info = json.loads(etag_file.read_text())
            if etag_info.get("url") == url and cache.exists():
                headers["If-None-Match"] = etag_info["etag"]
        except (OSError, ValueError, KeyError):
            pass
        try:
            with requests.get(url, headers=headers, timeout=(min(timeout, 5.0), timeout), stream=True) as response:
                body = _bounded_body(response, url, deadline_s=REFRESH_DEADLINE_FACTOR * timeout)
        except (requests.RequestException, CatalogError) as exc:
            logger.warning("Catalog refresh from %s failed: %s; keeping catalog %s", url, exc, self.catalog_version)
            return RefreshResult("failed", self.catalog_version, f"request failed: {exc}")
        if response.status_code == 304:
            return RefreshResult("not-modified", self.catalog_version)
        if response.status_code != 200:
            reason = f"HTTP {response.status_code} from {url}"
            logger.warning("Catalog refresh failed: %s; keeping catalog %s", reason, self.catalog_version)
            return RefreshResult("failed", self.catalog_version, reason)
        try:
            doc = json.loads(body)
            check_depth(doc, url)
            if is_medigan_catalog(doc):
                raise CatalogError("the remote catalog is in medigan format, which has no catalog_version")
            validate_catalog(doc, source=url)
        except (ValueError, CatalogError, RecursionError) as exc:
            logger.warning("Rejected the catalog from %s: %s", url, exc)
            return RefreshResult("failed", self.catalog_version, f"invalid catalog: {exc}")
        if _version_key(doc["catalog_version"]) <= _version_key(self.catalog_version):
            return RefreshResult(
                "not-newer", self.catalog_version, f"remote catalog_version {doc['catalog_version']} is not newer"
            )
        write_json_atomically(cache, doc, parents=True)
        if response.headers.get("ETag"):
            write_json_atomically(etag_file, {"url": url, "etag": response.headers["ETag"]})
        self.source = cache
        self._set(doc)
        logger.info("Catalog updated to version %s from %s", self.catalog_version, url)
        return RefreshResult("updated", self.catalog_version)

    def __repr__(self) -> str:
        return f"ConfigManager(source={str(self.source)!r}, catalog_version={self.catalog_version!r}, models={len(self.model_ids)})"


def catalog_or_default(catalog: ConfigManager | None = None) -> ConfigManager:
    """``catalog``, or, when None, the default catalog (``MEDHUB_CONFIG``, else the bundled one).

    What a function called without a catalog uses: a ``Generators`` passes its own
    ``config_manager`` down (its ``config_file``, the CLI's ``--config``), so that every part of a
    run resolves model ids in the same catalog.

    Example:
        >>> mine = ConfigManager()
        >>> catalog_or_default(mine) is mine, catalog_or_default().catalog_version == mine.catalog_version
        (True, True)
    """
    return catalog if catalog is not None else ConfigManager()


def _bounded_body(response: Any, url: str, deadline_s: float) -> bytes:
    """The body of a streamed response, at most :data:`MAX_CATALOG_BYTES` and ``deadline_s`` seconds."""
    import time

    ends, chunks, size = time.monotonic() + deadline_s, [], 0
    raw = response.raw
    while block := (raw.read1(1 << 16, decode_content=True) if hasattr(raw, "read1") else raw.read(1 << 16)):
        size += len(block)
        if size > MAX_CATALOG_BYTES:
            raise CatalogError(f"the catalog at {url} is larger than {MAX_CATALOG_BYTES} bytes")
        if time.monotonic() > ends:
            raise CatalogError(f"the catalog at {url} took longer than {deadline_s:g} s to download")
        chunks.append(block)
    return b"".join(chunks)
