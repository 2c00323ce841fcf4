"""What medhub reads from a MONAI bundle's configs and metadata without running them.

* :func:`refs`: the items a config value refers to (``@name``);
* :func:`sample_inputs`: the inputs a sampling expression takes, exactly: the plain values it uses
  (not only through the noise item) that medhub can replace, because every item using them on the
  way is an expression it can evaluate again;
* :func:`unapplied_items`: the bundle's own post-processing and file writing (``run``,
  ``postprocessing``, ``saver``, items computed from its ``sample``) that the sampling expression
  does not use, so medhub does not apply them;
* :func:`metadata_value_range`: the value range of the generated image, from the right section of
  ``configs/metadata.json`` (``autoencoder_data_format`` for latent diffusion: the decoded image;
  ``network_data_format`` describes the UNet, whose output is the latent);
* the rewrites medhub applies before parsing: :func:`rename_scripts` (the bundle's ``scripts``
  package under a private name) and :func:`route_weight_loads` (``torch.load`` in expressions goes
  through :func:`weights_loader`: ``map_location`` the target device, ``weights_only=True``).

Example:
    >>> config = {"contrast": 1.0, "latent_shape": [1, 8, 8], "noise": "$torch.randn([1] + @latent_shape)",
    ...           "net": {"_target_": "X", "channels": 4}, "sample": "$@net(@noise) * @contrast",
    ...           "png": "$save(@sample)", "run": ["$@png"]}
    >>> sample_inputs(config.__getitem__, config["sample"], "noise")
    ['contrast']
    >>> unapplied_items(config, config["sample"], "noise")
    ['png', 'run']
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from typing import Any

#: The name under which a bundle's expressions call medhub's weights loader.
LOAD_NAME = "medhub_torch_load"
#: Items of a bundle that post-process or write its result (MONAI's usual names).
POSTPROCESSING = ("run", "postprocessing", "postprocess", "saver", "writer", "finalize")
#: Items medhub sets itself: never inputs.
RESERVED = ("bundle_root", "device")
_SCRIPTS = re.compile(r"(?<![\w.])scripts(?=\.)")
_TORCH_LOAD = re.compile(r"(?<![\w.])torch\.load\(")
_SEPARATORS = ("#", "::")


def refs(config: Any) -> list[str]:
    """The items a config value refers to (``@name``, also inside dicts and lists), in order.

    Example:
        >>> refs({"_target_": "X", "a": "@net", "b": ["$@scheduler.f(@net)"]})
        ['net', 'scheduler']
    """
    from monai.bundle import ReferenceResolver

    out: list[str] = []
    todo = [config]
    while todo:
        value = todo.pop(0)
        if isinstance(value, dict):
            todo.extend(value.values())
        elif isinstance(value, list):
            todo.extend(value)
        elif isinstance(value, str):
            out += [ref for ref in ReferenceResolver.match_refs_pattern(value) if ref not in out]
    return out


def is_expression(value: Any) -> bool:
    """Whether a config value is a MONAI expression (``"$..."``)."""
    return isinstance(value, str) and value.startswith("$")


def is_plain(value: Any) -> bool:
    """Whether a config value is data (a number, string, list...), not an expression, reference,
    macro or component (``_target_``).

    Example:
        >>> is_plain([1, 64, 64]), is_plain("@latent_channels"), is_plain({"_target_": "X"})
        (True, False, False)
    """
    if isinstance(value, str):
        return not value.startswith(("$", "@", "%"))
    if isinstance(value, list):
        return all(is_plain(v) for v in value)
    if isinstance(value, dict):
        return "_target_" not in value and all(is_plain(v) for v in value.values())
    return True


def _graph(get: Callable[[str], Any], expression: str, noise_id: str) -> tuple[dict[str, Any], dict[str, set[str]]]:
    """The items an expression uses (not through ``noise_id``), with their raw values, and who uses each."""
    values: dict[str, Any] = {}
    users: dict[str, set[str]] = {}
    todo = [("", ref) for ref in refs(expression)]
    while todo:
        user, item = todo.pop()
        if item == noise_id:
            continue
        users.setdefault(item, set()).add(user)
        if item in values:
            continue
        try:
            values[item] = get(item)
        except (KeyError, IndexError, ValueError):
            values[item] = None
            continue
        todo += [(item, ref) for ref in refs(values[item])]
    return values, users


def sample_inputs(get: Callable[[str], Any], expression: str, noise_id: str) -> list[str]:
    """The bundle items a sampling expression takes as inputs (see the module's docstring).

    ``get`` returns the raw config value of an item id (``ConfigParser.get``, or a dict's ``__getitem__``).
    """
    values, users = _graph(get, expression, noise_id)
    out = []
    for item, value in values.items():
        if item in RESERVED or any(sep in item for sep in _SEPARATORS) or not is_plain(value):
            continue
        above, todo = set(), list(users.get(item, ()))
        while todo:
            user = todo.pop()
            if user and user not in above:
                above.add(user)
                todo += list(users.get(user, ()))
        if all(is_expression(values.get(user)) for user in above):
            out.append(item)
    return sorted(out)


def getter(config: Mapping[str, Any]) -> Callable[[str], Any]:
    """The raw value of an item id of ``config``, nested ids (``a::b``, ``a#b``, list indices) included.

    Example:
        >>> getter({"net": {"channels": [8, 16]}})("net::channels::1")
        16
    """

    def get(item: str) -> Any:
        value: Any = config
        for part in re.split("::|#", item):
            value = value[int(part)] if isinstance(value, list) else value[part]
        return value

    return get


def used_items(get: Callable[[str], Any], expression: str, noise_id: str) -> set[str]:
    """Every item the sampling expression uses, directly or through others (not through the noise)."""
    return set(_graph(get, expression, noise_id)[0])


def unapplied_items(config: Mapping[str, Any], expression: str, noise_id: str, sample_item: str = "sample") -> list[str]:
    """The bundle's post-processing and writing items that the sampling expression does not use:
    those named as MONAI bundles name them (:data:`POSTPROCESSING`), and every item computed from the
    bundle's own ``sample`` item when the expression is not that item's."""
    get = getter(config)
    used = used_items(get, expression, noise_id) | {noise_id}
    own_sample = config.get(sample_item) == expression
    out = set()
    for key, value in config.items():
        if key in used or key.startswith("_") or key == sample_item:
            continue
        if key in POSTPROCESSING and value not in (None, [], ""):
            out.add(key)
        elif own_sample and sample_item in used_items(get, f"$@{key}", noise_id):
            out.add(key)
    return sorted(out)


def metadata_value_range(metadata: Mapping[str, Any]) -> tuple[float, float] | None:
    """The value range of the generated image in a bundle's ``configs/metadata.json``: the outputs
    of ``autoencoder_data_format`` (latent diffusion: the decoded image) when there is one, else of
    ``network_data_format``; None when neither gives one.

    Example:
        >>> metadata_value_range({"network_data_format": {"outputs": {"pred": {"value_range": [0, 1]}}},
        ...                       "autoencoder_data_format": {"outputs": {"pred": {"value_range": [-1, 1]}}}})
        (-1.0, 1.0)
    """
    for section in ("autoencoder_data_format", "network_data_format"):
        outputs = (metadata.get(section) or {}).get("outputs") or {}
        for output in outputs.values() if isinstance(outputs, dict) else ():
            window = output.get("value_range") if isinstance(output, dict) else None
            if isinstance(window, list) and len(window) == 2 and all(isinstance(v, (int, float)) for v in window):
                return float(window[0]), float(window[1])
    return None


def rename_scripts(config: Any, module: str) -> Any:
    """``scripts`` references of a bundle config pointed at the privately imported scripts package.

    Example:
        >>> rename_scripts({"a": "$import scripts", "b": {"_target_": "scripts.s.S"}}, "m_scripts")
        {'a': '$import m_scripts as scripts', 'b': {'_target_': 'm_scripts.s.S'}}
    """
    if isinstance(config, dict):
        return {k: rename_scripts(v, module) for k, v in config.items()}
    if isinstance(config, list):
        return [rename_scripts(v, module) for v in config]
    if isinstance(config, str):
        if config.strip() == "$import scripts":
            return f"$import {module} as scripts"
        if config.startswith("$") or config.startswith("scripts."):
            return _SCRIPTS.sub(module, config)
    return config


def route_weight_loads(config: Any) -> Any:
    """``torch.load(`` in a bundle's expressions replaced by medhub's loader (:func:`weights_loader`).

    Example:
        >>> route_weight_loads({"load": "$@net.load_state_dict(torch.load(@path))"})
        {'load': '$@net.load_state_dict(medhub_torch_load(@path))'}
    """
    if isinstance(config, dict):
        return {k: route_weight_loads(v) for k, v in config.items()}
    if isinstance(config, list):
        return [route_weight_loads(v) for v in config]
    if is_expression(config):
        return _TORCH_LOAD.sub(f"{LOAD_NAME}(", config)
    return config


def weights_loader(device: str, model_id: str) -> Callable[..., Any]:
    """``torch.load`` for a bundle's checkpoints: tensors mapped to ``device`` (a checkpoint saved on a
    GPU loads on a CPU-only machine), and ``weights_only=True`` whatever the bundle asks (medhub never
    unpickles arbitrary objects)."""

    def medhub_torch_load(f: Any, map_location: Any = None, weights_only: Any = True, **kwargs: Any) -> Any:
        import pickle

        import torch

        from ...errors import PackageError

        try:
            return torch.load(f, map_location=torch.device(device), weights_only=True, **kwargs)
        except pickle.UnpicklingError as exc:
            raise PackageError(f"Model {model_id}: a checkpoint of the bundle holds Python objects besides tensors, "
                               f"which medhub does not unpickle ({' '.join(str(exc).split())[:200]}).") from None

    return medhub_torch_load


def first_cause(exc: BaseException, kinds: Iterable[type[BaseException]]) -> BaseException | None:
    """The first exception of ``kinds`` in ``exc``'s chain of causes (MONAI wraps errors of expressions)."""
    kinds = tuple(kinds)
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, kinds):
            return seen
        seen = seen.__cause__ or seen.__context__
    return None
