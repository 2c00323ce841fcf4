"""ModelSelector: keyword search (AND / OR / XOR) and ranking by any metric of the catalog."""

from __future__ import annotations

import logging
import math
import re
from collections.abc import Callable, Iterable, Iterator
from functools import lru_cache, partial
from typing import Any

from .config import ConfigManager, catalog_or_default
from .errors import SelectionError

logger = logging.getLogger("medhub.selection")

OPERATORS = ("AND", "OR", "XOR")
#: Metrics for which a lower value is better; every other metric ranks higher-is-better.
LOWER_IS_BETTER = {"fid", "fid_rr", "fid_radimagenet", "mse", "nsme", "nmse", "mae", "kid", "lpips", "loss", "rmse"}
_SEPARATORS = re.compile(r"[\s_\-/\\,;:()\[\]{}|+]+")


@lru_cache(maxsize=65536)
def _normalize(text: str, case_sensitive: bool) -> str:
    out = _SEPARATORS.sub(" ", text).strip()
    return out if case_sensitive else out.casefold()


def normalize(text: Any, case_sensitive: bool = False) -> str:
    """Normalise a value for matching: separators become single spaces, case folds unless asked."""
    return _normalize(str(text), case_sensitive)


def _walk(node: Any, prefix: str = "") -> Iterator[tuple[str, Any, bool]]:
    """Yield (dotted key, value, is_key) for every key and leaf value below ``node``."""
    if isinstance(node, dict):
        for key, value in node.items():
            path = f"{prefix}.{key}" if prefix else str(key)
            yield path, key, True
            yield from _walk(value, path)
    elif isinstance(node, (list, tuple)):
        for item in node:
            yield from _walk(item, prefix)
    elif node is not None:
        yield prefix, node, False


def metric_direction(metric: str) -> str:
    """``"asc"`` if a lower value of ``metric`` is better (FID, MSE, ...), else ``"desc"``."""
    leaf = metric.rsplit(".", 1)[-1].casefold()
    return "asc" if leaf in LOWER_IS_BETTER else "desc"


def _as_number(value: Any) -> float | None:
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, (int, float)):
        number = float(value)
    elif isinstance(value, str):
        try:
            number = float(value.strip())
        except ValueError:
            return None
    else:
        return None
    return None if math.isnan(number) else number


def _ranked_value(node: Any, descending: bool) -> float | None:
    """The number a metric ranks by: the value itself, or for a list of values its best element
    in the ranking's order (the largest for descending, the smallest for ascending).

    Example:
        >>> _ranked_value([0.56, 0.45], descending=True), _ranked_value([0.56, "0.45"], descending=False)
        (0.56, 0.45)
    """
    if isinstance(node, list):
        numbers = [n for n in (_as_number(v) for v in node) if n is not None]
        if not numbers:
            return None
        return max(numbers) if descending else min(numbers)
    return _as_number(node)


class MatchedEntry:
    """One place in a model's selection config where a search value matched."""

    __slots__ = ("key", "value", "search_value")

    def __init__(self, key: str, value: Any, search_value: str) -> None:
        self.key, self.value, self.search_value = key, value, search_value

    @property
    def matching_element(self) -> str:  # medigan's name
        return self.search_value

    def __repr__(self) -> str:
        return f"MatchedEntry(key={self.key!r}, value={self.value!r}, search_value={self.search_value!r})"


class ModelMatch:
    """A model found by a search; ``model_id`` as in medigan's ``ModelMatchCandidate``.

    ``matched_entries`` (where each value matched) is worked out on first access, so a search
    returning thousands of models stays fast.
    """

    def __init__(self, model_id: str, target_values: list[str], target_values_operator: str,
                 matched_entries: list[MatchedEntry] | Callable[[], list[MatchedEntry]] | None = None,
                 found: set[str] | None = None) -> None:
        self.model_id = model_id
        self._found = found
        self.target_values = target_values
        self.target_values_operator = target_values_operator
        self._entries = matched_entries if matched_entries is not None else []
        self.is_match = True

    @property
    def matched_entries(self) -> list[MatchedEntry]:
        if callable(self._entries):
            self._entries = self._entries()
        return self._entries

    @property
    def matched_values(self) -> list[str]:
        """The search values that matched, in the order they were given."""
        found = self._found if self._found is not None else {m.search_value for m in self.matched_entries}
        return [v for v in self.target_values if v in found]

    def get_all_matching_elements(self) -> list[str]:
        return [m.search_value for m in self.matched_entries]

    def __len__(self) -> int:
        return len(self.matched_entries)

    def __getitem__(self, idx: int) -> MatchedEntry:
        return self.matched_entries[idx]

    def __repr__(self) -> str:
        return f"ModelMatch(model_id={self.model_id!r}, matched_values={self.matched_values!r})"


def _table(headers: list[str], rows: list[list[Any]]) -> str:
    cells = [[str(c) for c in row] for row in rows]
    widths = [max([len(h)] + [len(r[i]) for r in cells]) for i, h in enumerate(headers)]
    line = "  ".join(h.ljust(w) for h, w in zip(headers, widths)).rstrip()
    body = ["  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in cells]
    return "\n".join([line, "  ".join("-" * w for w in widths), *body])


def _html_table(headers: list[str], rows: list[list[Any]]) -> str:
    from html import escape

    head = "".join(f"<th>{escape(h)}</th>" for h in headers)
    body = "".join("<tr>" + "".join(f"<td>{escape(str(c))}</td>" for c in r) + "</tr>" for r in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


class _TableList(list):
    """A list that prints as a table (and renders as an HTML table in Jupyter)."""

    def _table_data(self) -> tuple[list[str], list[list[Any]]]:  # pragma: no cover - overridden
        raise NotImplementedError

    def __str__(self) -> str:
        headers, rows = self._table_data()
        return _table(headers, rows) if rows else "(no models)"

    def _repr_html_(self) -> str:
        return _html_table(*self._table_data())


class SearchResult(_TableList):
    """List of :class:`ModelMatch` returned by a search."""

    def _table_data(self) -> tuple[list[str], list[list[Any]]]:
        return ["model_id", "matched"], [[m.model_id, ", ".join(m.matched_values)] for m in self]

    @property
    def model_ids(self) -> list[str]:
        return [m.model_id for m in self]


class Ranking(_TableList):
    """List of ``{"model_id": ..., <metric>: value}`` dicts, best first."""

    def __init__(self, items: Iterable[dict[str, Any]] = (), metric: str = "FID") -> None:
        super().__init__(items)
        self.metric = metric

    def _table_data(self) -> tuple[list[str], list[list[Any]]]:
        return ["rank", "model_id", self.metric], [[i + 1, r["model_id"], r[self.metric]] for i, r in enumerate(self)]


class ModelSelector:
    """Search and rank the models of a :class:`ConfigManager`'s catalog.

    Example:
        >>> sel = ModelSelector(ConfigManager())
        >>> "00101_DCGAN_BRAIN_MRI_T1" in sel.find_model(["brain", "t1"], "AND").model_ids
        True
    """

    def __init__(self, config_manager: ConfigManager | None = None) -> None:
        self.config_manager = catalog_or_default(config_manager)
        # per case mode: [(model_id, " v1 | v2 | ...", " k1 | k2 | ...")], built on the first search
        self._index: dict[bool, list[tuple[str, str, str]]] = {}

    def _selection(self, model_id: str) -> dict[str, Any]:
        return self.config_manager.config_dict[model_id].get("selection", {})

    def _search_index(self, case_sensitive: bool) -> list[tuple[str, str, str]]:
        """Per model, its normalised leaf values and keys, each padded with spaces and joined by ``|``.

        A search value, padded the same way, is a whole-word match iff it occurs in that text
        (``|`` never survives normalisation, so matches cannot cross two values).
        """
        index = self._index.get(case_sensitive)
        if index is None or len(index) != len(self.config_manager.model_ids):
            index = []
            for model_id in self.config_manager.model_ids:
                values, keys = [], []
                for _, v, is_key in _walk(self._selection(model_id)):
                    (keys if is_key else values).append(f" {_normalize(str(v), case_sensitive)} ")
                index.append((model_id, "|".join(values), "|".join(keys)))
            self._index[case_sensitive] = index
        return index

    # ------------------------------------------------------------------ search
    def find_matching_models_by_values(
        self,
        values: list[str] | str,
        target_values_operator: str = "AND",
        are_keys_also_matched: bool = False,
        is_case_sensitive: bool = False,
    ) -> SearchResult:
        """Models whose selection config contains the search ``values``.

        A value matches a metadata value that equals it or contains it as a whole word after
        normalising case and separators (``"t1"`` matches ``"MRI T1"`` and ``"mri_t1"`` but not
        ``"t10"``). ``AND``: every value matches; ``OR``: at least one; ``XOR``: exactly one.
        """
        if isinstance(values, (str, int, float)):
            values = [values]
        values = [str(v) for v in values if str(v).strip()]
        if not values:
            raise SelectionError("Give at least one non-empty search value, e.g. ['brain', 'mri'].")
        operator = str(target_values_operator).upper()
        if operator not in OPERATORS:
            raise SelectionError(f"Unknown operator {target_values_operator!r}; use one of {', '.join(OPERATORS)}.")
        needles = [(v, f" {normalize(v, is_case_sensitive)} ") for v in values]
        wanted = len(set(values))
        result = SearchResult()
        for model_id, value_text, key_text in self._search_index(is_case_sensitive):
            found = {raw for raw, needle in needles if needle in value_text or (are_keys_also_matched and needle in key_text)}
            n = len(found)
            if (operator == "AND" and n == wanted) or (operator == "OR" and n > 0) or (operator == "XOR" and n == 1):
                details = partial(self._matched_entries, model_id, needles, is_case_sensitive, are_keys_also_matched)
                result.append(ModelMatch(model_id, values, operator, details, found))
        logger.debug("search %s %s -> %d models", operator, values, len(result))
        return result

    def _matched_entries(self, model_id: str, needles: list[tuple[str, str]], case_sensitive: bool,
                         keys_too: bool) -> list[MatchedEntry]:
        """Where in the selection config of ``model_id`` each search value matched."""
        entries = []
        for key, value, is_key in _walk(self._selection(model_id)):
            if is_key and not keys_too:
                continue
            text = f" {_normalize(str(value), case_sensitive)} "
            entries.extend(MatchedEntry(key, value, raw) for raw, needle in needles if needle in text)
        return entries

    def find_model(self, values: list[str] | str, operator: str = "AND") -> SearchResult:
        """Short form of :meth:`find_matching_models_by_values`, as written in the medigan paper."""
        return self.find_matching_models_by_values(values, target_values_operator=operator)

    def get_models_by_key_value_pair(self, key1: str, value1: Any, is_case_sensitive: bool = False) -> list[dict]:
        """Models whose selection value at dotted key ``key1`` equals (or, for lists, holds) ``value1``:
        ``[{"model_id": ..., key1: value1}]``, the matched value as given, as medigan returns it."""
        wanted = normalize(value1, is_case_sensitive)
        out = []
        for model_id in self.config_manager.model_ids:
            node: Any = self._selection(model_id)
            for part in key1.split("."):
                node = node.get(part) if isinstance(node, dict) else None
            items = node if isinstance(node, list) else [node]
            if any(item is not None and normalize(item, is_case_sensitive) == wanted for item in items):
                out.append({"model_id": model_id, key1: value1})
        return out

    # ------------------------------------------------------------------ ranking
    def rank_models_by_performance(
        self, model_ids: list[str] | None = None, metric: str = "FID", order: str | None = None
    ) -> Ranking:
        """Rank models by ``metric`` (a key of ``selection.performance``, dotted for nested ones).

        ``order`` defaults to the metric's direction: ascending for FID, MSE and the like,
        descending for SSIM, PSNR, IS, AUC, f1. Models without a numeric value are left out. A
        list of values (e.g. ``turing_test.AUC: [0.56, 0.45]``, one per reader) ranks by its
        largest number for ``"desc"`` and its smallest for ``"asc"``, as in medigan.

        Example:
            >>> r = ModelSelector(ConfigManager()).rank_models_by_performance(metric="FID")
            >>> r[0]["FID"] <= r[-1]["FID"]
            True
        """
        if order is None:
            order = metric_direction(metric)
        direction = str(order).lower()
        if direction not in {"asc", "ascending", "desc", "descending"}:
            raise SelectionError(f"Unknown order {order!r}; use 'asc' or 'desc' (or leave it out).")
        ids = (
            self.config_manager.model_ids
            if model_ids is None
            else [self.config_manager.resolve_model_id(m) for m in model_ids]
        )
        rows = []
        for model_id in ids:
            node: Any = self._selection(model_id).get("performance", {})
            for part in metric.split("."):
                node = node.get(part) if isinstance(node, dict) else None
            number = _ranked_value(node, direction.startswith("desc"))
            if number is not None:
                rows.append({"model_id": model_id, metric: number})
        rows.sort(key=lambda r: r[metric], reverse=direction.startswith("desc"))
        return Ranking(rows, metric=metric)

    # ------------------------------------------------------------------ criteria
    def get_selection_criteria_by_id(self, model_id: str, is_model_id_removed: bool = True) -> dict:
        """The ``selection`` object of one model (under its id unless ``is_model_id_removed``)."""
        model_id = self.config_manager.resolve_model_id(model_id)
        selection = self._selection(model_id)
        return selection if is_model_id_removed else {model_id: selection}

    def get_selection_criteria_by_ids(
        self, model_ids: list[str] | None = None, are_model_ids_removed: bool = True
    ) -> list[dict]:
        """The ``selection`` objects of several models (all models when ``model_ids`` is None)."""
        ids = self.config_manager.model_ids if model_ids is None else model_ids
        return [self.get_selection_criteria_by_id(m, are_model_ids_removed) for m in ids]

    def get_selection_values_for_key(self, key: str, model_id: str | None = None) -> list:
        """Values at dotted ``key`` of the selection config, for one model or all (flattened, unique)."""
        ids = self.config_manager.model_ids if model_id is None else [self.config_manager.resolve_model_id(model_id)]
        values: list = []
        for mid in ids:
            node: Any = self._selection(mid)
            for part in key.split("."):
                node = node.get(part) if isinstance(node, dict) else None
            for item in node if isinstance(node, list) else [node]:
                if item is not None and item not in values:
                    values.append(item)
        return values

    def get_selection_keys(self, model_id: str | None = None) -> list[str]:
        """First-level keys of the selection config of one model, or of all models."""
        ids = self.config_manager.model_ids if model_id is None else [self.config_manager.resolve_model_id(model_id)]
        keys: list[str] = []
        for mid in ids:
            keys.extend(k for k in self._selection(mid) if k not in keys)
        return keys
