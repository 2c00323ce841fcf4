"""The ``monai-bundle`` package kind: a MONAI bundle folder (``configs/metadata.json``, an inference
config, ``models/``, optional ``scripts/``), run as a ``medhub/1`` package.

* The bundle's ``configs/metadata.json`` is read first: ``monai_version`` and
  ``required_packages_version`` are checked against what is installed (a missing package gives the
  exact ``pip install``; ``install_dependencies=True`` installs it).
* ``load`` parses the inference config with ``monai.bundle.ConfigParser`` (``bundle_root`` set to
  the verified folder, ``device`` to medhub's device, catalog ``overrides`` applied) and builds the
  networks, scheduler and sampler the bundle defines (every item the sampling expression refers to,
  except the noise). A bundle's ``scripts`` package is imported through medhub's verifying loader
  under a private name (never put on ``sys.path``). Its ``torch.load`` calls go through medhub's
  loader: ``map_location`` the target device and ``weights_only=True``; checkpoints with the old
  MONAI GenerativeAI key names load as the bundle says (``load_old_state_dict``); every other
  ``torch.load`` while the bundle is built or sampled loads weights only too, whatever the config says.
* The bundle's own post-processing and writing (``run``, ``postprocessing``, ``saver``, items
  computed from its ``sample``) is not applied: a warning names the items (unless the catalog lists
  them in ``not_applied``) and every run's provenance records them.
* ``sample`` runs the bundle's sampling expression (its ``sample`` item, or the catalog's
  ``execution.adapter.sample``) once per sample, with the noise item replaced by noise drawn from a
  CPU generator seeded with the sample's seed and torch's global generator seeded with it too (for
  samplers that draw more noise, e.g. DDPM steps): sample ``i`` depends only on ``(seed, i)``.
  Inputs are the plain items the sampling expression uses (``age=0.5`` replaces the bundle's ``age``,
  and every expression using it is evaluated again), plus ``num_inference_steps`` (the scheduler's
  ``set_timesteps``); anything else is refused with the list of what the bundle takes.
* The result, ``(1, C, *spatial)``, becomes the outputs spec's dtype: integers scaled from the
  bundle's value range (``execution.adapter.value_range``, else the metadata's
  ``autoencoder_data_format`` for latent diffusion, else its ``network_data_format``), floats
  clipped to it; 3D volumes are written as NIfTI with the spec's ``spacing``.

``execution.adapter`` settings (all optional): ``config`` (a file or a list, merged in order; default
``configs/inference.json`` / ``.yaml``), ``sample`` (a MONAI expression using ``@noise``), ``noise``
(the noise item, default ``noise``), ``noise_distribution`` (``normal`` or ``uniform``),
``scheduler`` (default ``scheduler`` or ``noise_scheduler``; null: the sampler sets its own steps), ``load`` (items to evaluate once at
load, e.g. a ``load_state``), ``overrides`` (``{item: value}``), ``value_range``,
``ignore_packages`` (required packages the sampling does not use, e.g. training-only ones),
``not_applied`` (the bundle items medhub does not run, checked by the entry's author: no warning).

Example:
    >>> from medhub.execution.kinds import KINDS
    >>> "configs/*" in KINDS["monai-bundle"].allow_patterns  # the files of a bundle medhub fetches
    True
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from importlib import metadata as importlib_metadata
from pathlib import Path
from typing import Any

from ...errors import DependencyError, IntegrityError, InvalidArgumentError, MedhubError, PackageError
from ...outputs import parse_specs
from ..deps import ensure_dependencies
from ..loader import import_package
from ..tree import check_relative
from .bundle_config import (
    LOAD_NAME,
    first_cause,
    metadata_value_range,
    refs,
    rename_scripts,
    route_weight_loads,
    sample_inputs,
    unapplied_items,
    weights_loader,
)
from .convert import library_versions, require, to_outputs

logger = logging.getLogger("medhub.execution.adapters.monai_bundle")

_CONFIG_NAMES = ("configs/inference.json", "configs/inference.yaml", "configs/inference.yml")


@dataclass
class BundleModel:
    """A loaded bundle: its parser (holding the built networks), device and sampling settings."""

    parser: Any
    device: str
    expression: str
    noise_id: str
    noise_shape: tuple[int, ...]
    scheduler: Any = None
    default_steps: int | None = None
    value_range: tuple[float, float] = (0.0, 1.0)
    refs: dict[str, set[str]] = field(default_factory=dict)
    inputs: tuple[str, ...] = ()


class MonaiBundleAdapter:
    """A MONAI bundle folder behind the ``medhub/1`` contract (``load`` / ``sample``).

    Example:
        >>> adapter = MonaiBundleAdapter("00299_X", Path("."), {"interface": "monai-bundle"}, check=False)
        >>> adapter.settings
        {}
    """

    SUPPORTS_AMP = None

    def __init__(self, model_id: str, folder: Path, execution: Mapping[str, Any],
                 files: Mapping[str, str] | None = None, install: bool = False, check: bool = True,
                 defaults: Mapping[str, Any] | None = None) -> None:
        self.model_id = model_id
        self.defaults = dict(defaults or {})  # the catalog's default inputs (ModelSpec.custom_args)
        self.folder = Path(folder)
        self.execution = execution
        self.files = files
        self.settings = dict(execution.get("adapter") or {})
        self.specs = parse_specs(execution.get("outputs"))
        self.metadata: dict[str, Any] = {}
        self.not_applied: list[str] = []
        if check:
            self.metadata = self.read_metadata()
            self.check_requirements(install)

    def __repr__(self) -> str:
        return f"MonaiBundleAdapter({self.model_id!r}, {str(self.folder)!r})"

    # ------------------------------------------------------------------ metadata
    def read_metadata(self) -> dict[str, Any]:
        path = self.folder / "configs" / "metadata.json"
        try:
            doc = json.loads(path.read_text())
        except (OSError, ValueError) as exc:
            raise PackageError(f"Model {self.model_id}: the bundle has no readable configs/metadata.json ({exc}).") \
                from None
        if not isinstance(doc, dict):
            raise PackageError(f"Model {self.model_id}: configs/metadata.json of the bundle is not a JSON object.")
        return doc

    def check_requirements(self, install: bool = False) -> None:
        """The bundle's ``monai_version`` and ``required_packages_version`` against what is installed."""
        from packaging.version import InvalidVersion, Version

        wanted = str(self.metadata.get("monai_version") or "")
        try:
            have = importlib_metadata.version("monai")
        except importlib_metadata.PackageNotFoundError:
            raise DependencyError(f"Model {self.model_id} is a MONAI bundle and needs MONAI. Install it with:\n"
                                  f"    pip install 'medhub[monai]'", requirements=["monai"]) from None
        with contextlib.suppress(InvalidVersion):
            if wanted and Version(have).release[:2] < Version(wanted).release[:2]:
                raise DependencyError(f"Model {self.model_id} is a bundle for MONAI {wanted}; MONAI {have} is installed. "
                                      f"Install a newer one with:\n    pip install 'monai>={wanted}'",
                                      requirements=[f"monai>={wanted}"])
        ignored = {str(n).lower() for n in self.settings.get("ignore_packages", [])}
        needed = []
        for name, version in (self.metadata.get("required_packages_version") or {}).items():
            if str(name).lower() in ignored:
                continue
            try:
                importlib_metadata.version(str(name))
            except importlib_metadata.PackageNotFoundError:
                needed.append(f"{name}=={version}" if version else str(name))
        if needed:
            ensure_dependencies(self.model_id, needed, install=install)

    def source_range(self) -> tuple[float, float]:
        """The value range of the bundle's output: the catalog's, else the metadata's (``autoencoder_data_format``
        for latent diffusion, else ``network_data_format``; see :func:`.bundle_config.metadata_value_range`),
        else [0, 1]."""
        given = self.settings.get("value_range")
        if given:
            return float(given[0]), float(given[1])
        return metadata_value_range(self.metadata) or (0.0, 1.0)

    # ------------------------------------------------------------------ config
    def config_files(self) -> list[Path]:
        given = self.settings.get("config")
        names = [given] if isinstance(given, str) else list(given or [])
        if not names:
            names = [next((n for n in _CONFIG_NAMES if (self.folder / n).is_file()), _CONFIG_NAMES[0])]
        paths = [self.folder.joinpath(*check_relative(self.model_id, "adapter.config", str(n)).parts) for n in names]
        for name, path in zip(names, paths):
            if not path.is_file():
                raise PackageError(f"Model {self.model_id}: the bundle has no {name} (set execution.adapter.config to "
                                   "its inference config).")
        return paths

    def read_configs(self) -> dict[str, Any]:
        """The inference configs merged in order (as ``ConfigParser.load_config_files``), each checked, as
        it is read, against the sha256 of the verified snapshot: a config is code (``$`` expressions)."""
        bundle = require("monai.bundle", self.model_id, "a MONAI bundle")
        merged = bundle.ConfigParser(config={})
        for path in self.config_files():
            data = path.read_bytes()
            rel = path.relative_to(self.folder).as_posix()
            if self.files is not None and self.files.get(rel) != hashlib.sha256(data).hexdigest():
                raise IntegrityError(f"Model {self.model_id}: {rel} is not the file medhub verified in {self.folder}; "
                                     f"refusing to run it. Run `medhub prefetch {self.model_id} --force`.")
            yaml = require("yaml", self.model_id, "a MONAI bundle with YAML configs") if path.suffix != ".json" else None
            try:
                doc = json.loads(data) if yaml is None else yaml.safe_load(data)
            except (ValueError, getattr(yaml, "YAMLError", ValueError)) as exc:
                raise PackageError(f"Model {self.model_id}: {rel} of the bundle cannot be read "
                                   f"({' '.join(str(exc).split())[:200]}).") from None
            if not isinstance(doc, dict):
                raise PackageError(f"Model {self.model_id}: {rel} of the bundle is not a mapping of items.")
            for key, value in doc.items():
                merged[key] = value
        return merged.get()

    def input_names(self) -> list[str]:
        """The inputs the bundle takes, without building it: the items its sampling expression uses
        and medhub can replace (:func:`.bundle_config.sample_inputs`), and ``num_inference_steps``
        when it has a scheduler. Items used only to make the starting noise (``latent_shape``) are
        not inputs: medhub draws the noise."""
        bundle = require("monai.bundle", self.model_id, "a MONAI bundle")
        parser = bundle.ConfigParser(self.read_configs())
        for key, value in (self.settings.get("overrides") or {}).items():
            parser[str(key)] = route_weight_loads(value)
        return self.inputs_of(parser)

    def inputs_of(self, parser: Any) -> list[str]:
        """The inputs of the bundle read by ``parser`` (built or not); see :meth:`input_names`."""
        expression = self.settings.get("sample") or parser.get("sample")
        if not isinstance(expression, str):
            return []
        names = set(sample_inputs(parser.get, expression, str(self.settings.get("noise", "noise"))))
        if self.scheduler_name(parser):
            names.add("num_inference_steps")
        return sorted(names)

    def scheduler_name(self, parser: Any) -> str | None:
        """The scheduler item whose ``set_timesteps`` medhub calls: the catalog's ``adapter.scheduler``,
        else ``scheduler`` or ``noise_scheduler`` when the bundle has one; None (no ``num_inference_steps``
        input) when the catalog sets it to null, for samplers that set their own steps (MAISI)."""
        if "scheduler" in self.settings:
            return None if self.settings["scheduler"] is None else str(self.settings["scheduler"])
        return next((n for n in ("scheduler", "noise_scheduler") if n in parser), None)

    def provenance(self) -> dict[str, Any]:
        """What a run's ``provenance.json`` records of the bundle: the versions of the libraries that run it
        and the bundle's own (``version`` of its metadata), and the bundle items medhub did not apply."""
        return {"versions": {**library_versions("monai", "huggingface_hub", "torch"),
                             "bundle": self.metadata.get("version")},
                "bundle_not_applied": list(self.not_applied)}

    def catalog_inputs(self) -> set[str]:
        """The inputs the catalog entry gives defaults for (``defaults``)."""
        return set(self.defaults) - {"num_inference_steps"}

    def scripts_module(self) -> str | None:
        """The private module name of the bundle's ``scripts`` package, imported from its verified source."""
        folder = self.folder / "scripts"
        if not (folder / "__init__.py").is_file():
            return None
        files = None
        if self.files is not None:
            files = {rel[len("scripts/"):]: sha for rel, sha in self.files.items() if rel.startswith("scripts/")}
        return import_package(folder, f"{self.model_id}_scripts", files).__name__

    def parser(self, device: str) -> Any:
        bundle = require("monai.bundle", self.model_id, "a MONAI bundle")
        config = self.read_configs()
        scripts = self.scripts_module()
        globals_: dict[str, Any] = {LOAD_NAME: weights_loader(str(device), self.model_id)}
        config = route_weight_loads(config)
        if scripts is not None:
            import sys

            config = rename_scripts(config, scripts)
            globals_.update({"scripts": sys.modules[scripts], scripts: sys.modules[scripts]})
        parser = bundle.ConfigParser(globals=globals_)
        parser.read_meta(self.metadata)
        parser.read_config(config)
        parser["bundle_root"] = str(self.folder)
        parser["device"] = f"$torch.device({str(device)!r})"
        for key, value in (self.settings.get("overrides") or {}).items():
            parser[str(key)] = route_weight_loads(value)
        return parser

    # ------------------------------------------------------------------ the medhub/1 contract
    def load(self, weights_path: str, device: str) -> BundleModel:
        """Build the bundle's networks and sampler on ``device`` (``weights_path`` is unused)."""
        require("torch", self.model_id, "a MONAI bundle")
        return self._load(device)

    def _load(self, device: str) -> BundleModel:
        parser = self.parser(device)
        expression = self.settings.get("sample") or parser.get("sample")
        if not isinstance(expression, str) or not expression.startswith("$"):
            raise PackageError(f"Model {self.model_id}: the bundle has no sampling expression (an item `sample` "
                               "starting with $); set execution.adapter.sample, e.g. "
                               "\"$@inferer.sample(input_noise=@noise, diffusion_model=@network, scheduler=@scheduler)\".")
        noise_id = str(self.settings.get("noise", "noise"))
        if noise_id not in parser:
            raise PackageError(f"Model {self.model_id}: the bundle has no noise item {noise_id!r}; set "
                               "execution.adapter.noise to the item holding the starting noise.")
        model = BundleModel(parser, str(device), expression, noise_id, (), value_range=self.source_range())
        try:
            template = parser.get_parsed_content(noise_id)
            model.noise_shape = tuple(int(n) for n in template.shape[1:])
            for ref in refs(expression):
                if noise_id not in self._closure(model, ref):
                    parser.get_parsed_content(ref)
            for ref in self.settings.get("load", []):
                parser.get_parsed_content(str(ref))
        except (KeyError, ValueError, RuntimeError, ModuleNotFoundError, AttributeError) as exc:
            ours = first_cause(exc, [MedhubError])
            if ours is not None:
                raise ours from None
            raise PackageError(f"Model {self.model_id}: building the bundle failed: "
                               f"{' '.join(str(exc).split())[:300]}") from exc
        name = self.scheduler_name(parser)
        if name:
            model.scheduler = parser.get_parsed_content(str(name))
            model.default_steps = getattr(model.scheduler, "num_inference_steps", None)
        model.inputs = tuple(self.inputs_of(parser))
        self.report_unapplied(parser, expression, noise_id)
        return model

    def report_unapplied(self, parser: Any, expression: str, noise_id: str) -> None:
        """Say which of the bundle's own post-processing and writing items medhub does not run (a
        warning, unless the catalog lists them in ``execution.adapter.not_applied``); they go into
        the provenance of every run."""
        self.not_applied = unapplied_items(parser.get(), expression, noise_id)
        unexpected = [n for n in self.not_applied if n not in set(self.settings.get("not_applied", []))]
        if unexpected:
            logger.warning("Model %s: medhub does not apply the bundle's own post-processing and writing (%s); only "
                           "what the sampling expression returns is kept. Put orientation or scaling the bundle does "
                           "there into execution.adapter.sample, and list the items in execution.adapter.not_applied.",
                           self.model_id, ", ".join(unexpected))

    def sample(self, model: BundleModel, seeds: list[int], **inputs: Any) -> dict[str, Any]:
        """The bundle's sample for each seed (one sampler run per sample)."""
        import numpy as np
        import torch

        steps = inputs.pop("num_inference_steps", None) if model.scheduler is not None else None
        values = {}
        takes = set(model.inputs) | self.catalog_inputs()
        for name, value in inputs.items():
            if name not in takes or name not in model.parser or name == model.noise_id:
                raise InvalidArgumentError(f"Model {self.model_id} takes no input {name!r}; it takes "
                                           f"{', '.join(sorted(takes)) or 'none'}.")
            values[name] = value.item() if hasattr(value, "item") and getattr(value, "ndim", 1) == 0 else value
        if model.scheduler is not None and (steps is not None or model.default_steps):
            model.scheduler.set_timesteps(num_inference_steps=int(steps or model.default_steps))
        devices = [torch.device(model.device).index or 0] if str(model.device).startswith("cuda") else []
        out = []
        for seed in seeds:
            generator = torch.Generator(device="cpu").manual_seed(int(seed) % 2**64)
            if self.settings.get("noise_distribution", "normal") == "uniform":
                noise = torch.rand(model.noise_shape, generator=generator)
            else:
                noise = torch.randn(model.noise_shape, generator=generator)
            with torch.random.fork_rng(devices=devices):
                torch.manual_seed(int(seed) % 2**63)
                result = self.evaluate(model, {**values, model.noise_id: noise[None].to(model.device)})
            if isinstance(result, (tuple, list)):
                result = result[0]
            out.append(result.detach().float().cpu().numpy()[0])
        return to_outputs(np.stack(out), self.specs, model.value_range)

    # ------------------------------------------------------------------ evaluation with replaced items
    def _closure(self, model: BundleModel, item: str) -> set[str]:
        """Every item ``item`` refers to, directly or through others (memoised)."""
        if item not in model.refs:
            model.refs[item] = set()
            seen: set[str] = set()
            todo = [item]
            while todo:
                current = todo.pop()
                for ref in refs(model.parser.get(current)):
                    if ref not in seen:
                        seen.add(ref)
                        todo.append(ref)
            model.refs[item] = seen
        return model.refs[item]

    def evaluate(self, model: BundleModel, replaced: Mapping[str, Any]) -> Any:
        """The sampling expression with the items in ``replaced`` taking the given values; items that
        depend on none of them come from the parser's cache (built once at load)."""
        memo: dict[str, Any] = dict(replaced)
        return self._expression(model, model.expression, "medhub_sample", replaced, memo)

    def _value(self, model: BundleModel, item: str, replaced: Mapping[str, Any], memo: dict[str, Any]) -> Any:
        if item in memo:
            return memo[item]
        if not (self._closure(model, item) & replaced.keys()):
            value = model.parser.get_parsed_content(item)
        else:
            raw = model.parser.get(item)
            if not (isinstance(raw, str) and raw.startswith("$")):
                raise InvalidArgumentError(f"Model {self.model_id}: the bundle item {item!r} is not an expression but "
                                           f"depends on {', '.join(sorted(self._closure(model, item) & replaced.keys()))}"
                                           "; medhub can replace inputs used by expressions only.")
            value = self._expression(model, raw, item, replaced, memo)
        memo[item] = value
        return value

    def _expression(self, model: BundleModel, raw: str, item: str, replaced: Mapping[str, Any],
                    memo: dict[str, Any]) -> Any:
        from monai.bundle import ConfigExpression, ReferenceResolver

        values = {ref: self._value(model, ref, replaced, memo) for ref in refs(raw)}
        code = ReferenceResolver.update_refs_pattern(raw, values)
        expression = ConfigExpression(config=code, id=item, globals=model.parser.globals)
        return expression.evaluate(globals={getattr(ReferenceResolver, "_vars", "__local_refs"): values})

