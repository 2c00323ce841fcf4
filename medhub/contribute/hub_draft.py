"""Draft the catalog entry of a model on the Hugging Face Hub from its own files (``medhub hub draft``).

From a MONAI bundle's ``configs/metadata.json`` and inference config, or a diffusers pipeline's
``model_index.json`` and component configs, :func:`draft_hub_entry` finds:

* the kind (``monai-bundle`` or ``diffusers``) and, for a pipeline, its class;
* the sampling expression: the bundle's ``sample`` item, else candidates made from the bundle's
  other items (a file-writing ``run`` such as ``@inferer.run(@noise, ..., path)`` gives
  ``@inferer.sampling_fn(@noise, ...)``); the first that returns ``(1, C, ...)`` is kept;
* the noise item and its distribution, the scheduler, the default number of steps, the latent shape;
* the output shape, found by **one dry run** of the networks at random initialisation on the CPU with
  two steps (no weights are read: items that load checkpoints are set to ``None``);
* the value range, from the right section of the metadata (``autoencoder_data_format`` for latent
  diffusion, where ``network_data_format`` describes the UNet's latent), and ``[0, 1]`` for pipelines;
* the licence (the model card's ``license:``, else the ``LICENSE`` file) and the version (the
  bundle's metadata ``version``);
* what to review: the other candidates, the bundle items medhub will not apply, the packages the
  sampling did not import (``ignore_packages``), the values seen in the dry run.

The dry run runs the repository's configs (and a bundle's ``scripts``): drafting from the Hub
(without ``folder``) therefore needs ``trust_remote_code=True``, as running an unpinned model does.

Example:
    >>> parse_hub_link("hf://MONAI/brats_mri_axial_slices_generative_diffusion@0123abc")
    ('MONAI/brats_mri_axial_slices_generative_diffusion', '0123abc')
    >>> license_name("                                 Apache License\\n                           Version 2.0, ...")
    'Apache-2.0'
"""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import CatalogError, InvalidArgumentError, MetadataError, PackageError, UntrustedPackageError
from ..execution.kinds import KINDS

#: The package kinds the Hub can serve, and the dependencies their entries start with.
HUB_KINDS = {kind.name: list(kind.hub_dependencies) for kind in KINDS.values() if kind.adapter}
#: What a draft reads from a repository: configs, model cards, licences and a bundle's scripts (no weights).
DRAFT_PATTERNS = ("model_index.json", "*.json", "configs/*", "scripts/*.py", "scripts/**/*.py", "LICENSE*",
                  "README.md", "docs/README.md")
_LINK = re.compile(r"^(?:hf://)?([A-Za-z0-9][A-Za-z0-9_.-]*/[A-Za-z0-9][A-Za-z0-9_.-]*)(?:@([^\s@]+))?$")
_CALL = re.compile(r"@([\w:#]+)\.(\w+)\(")
_LOADS = ("load_state_dict(", "load_old_state_dict(", "torch.load(", "load_from_checkpoint(")
_STEPS = re.compile(r"num_inference_steps\s*=\s*(\d+)")
DRY_RUN_STEPS = 2


@dataclass
class HubDraft:
    """A drafted catalog entry (``entry``) and what its author should review (``review``)."""

    model_id: str
    repo_id: str
    revision: str
    entry: dict[str, Any]
    review: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        """The JSON ``medhub hub draft`` prints: ``{"entry": {model_id: entry}, "review": {...}}``."""
        return {"entry": {self.model_id: self.entry}, "review": self.review}

    def check(self) -> None:
        """Validate the entry against the catalog schema (raises :class:`MetadataError` with the JSON path)."""
        from ..config import validate_catalog
        from .metadata import catalog_document

        try:
            validate_catalog(catalog_document({self.model_id: self.entry}), "the drafted entry")
        except CatalogError as exc:
            raise MetadataError(str(exc), step="metadata") from None


def parse_hub_link(text: str) -> tuple[str, str]:
    """``hf://owner/repo[@revision]`` (or ``owner/repo[@revision]``) as ``(repo_id, revision)``; the
    revision defaults to ``main``."""
    match = _LINK.match(str(text).strip())
    if not match:
        raise InvalidArgumentError(f"{text!r} is not a Hub model: write hf://owner/repo or hf://owner/repo@COMMIT.")
    return match.group(1), match.group(2) or "main"


def license_name(text: str) -> str | None:
    """The SPDX name of a licence text or model card front matter (``license: mit``), when recognisable."""
    front = re.search(r"^license:\s*([\w.+-]+)\s*$", text, re.MULTILINE)
    if front:
        name = front.group(1)
        return {"mit": "MIT", "apache-2.0": "Apache-2.0", "bsd-3-clause": "BSD-3-Clause"}.get(name.lower(), name)
    if re.fullmatch(r"[A-Za-z][A-Za-z0-9.+-]{1,39}", text.strip()):  # a file holding only an SPDX id
        return text.strip()
    if "Apache License" in text and "Version 2.0" in text:
        return "Apache-2.0"
    if re.search(r"\bMIT License\b", text):
        return "MIT"
    return None


def _licence(folder: Path) -> str | None:
    for name in ("README.md", "LICENSE", "LICENSE.md", "LICENSE.txt", "docs/README.md"):
        path = folder / name
        if path.is_file():
            found = license_name(path.read_text(errors="replace")[:20000])
            if found:
                return found
    return None


def fetch_draft_files(repo_id: str, revision: str, trust_remote_code: bool) -> Path:
    """The configs, cards and scripts of a Hub repository (no weights), in Hugging Face's cache."""
    if not trust_remote_code:
        raise UntrustedPackageError(f"Drafting {repo_id} runs its configs (and a bundle's scripts) on this machine. "
                                    "If you trust it, pass --trust-remote-code; or draft from a local copy with --from "
                                    "DIR.")
    from ..execution.hub import HubSource

    if HubSource.offline():
        raise PackageError(f"Drafting {repo_id} needs the Hub, and offline mode is on; use --from DIR.")
    try:
        import huggingface_hub
    except ImportError:
        raise PackageError("Drafting from the Hub needs huggingface_hub: pip install 'medhub[hf]'") from None
    try:
        folder = huggingface_hub.snapshot_download(repo_id, revision=revision, allow_patterns=list(DRAFT_PATTERNS))
    except Exception as exc:
        raise PackageError(f"Fetching the configs of {repo_id}@{revision} from the Hub failed ({type(exc).__name__}: "
                           f"{' '.join(str(exc).split())[:200]}); check the repository and revision, or use --from DIR."
                           ) from None
    return Path(folder)


def draft_hub_entry(link: str, folder: str | Path | None = None, model_id: str = "00299_DRAFT",
                    trust_remote_code: bool = False) -> HubDraft:
    """Draft the catalog entry of the Hub model ``link`` (``hf://owner/repo[@rev]``) from its files:
    ``folder`` (a local copy, nothing downloaded) or the repository's configs fetched from the Hub.

    Example:
        >>> draft_hub_entry("hf://owner/none", folder=".")  # doctest: +IGNORE_EXCEPTION_DETAIL
        Traceback (most recent call last):
        medhub.errors.PackageError: . holds neither model_index.json (diffusers) nor configs/metadata.json ...
    """
    repo_id, revision = parse_hub_link(link)
    path = Path(folder) if folder is not None else fetch_draft_files(repo_id, revision, trust_remote_code)
    if not path.is_dir():
        raise InvalidArgumentError(f"--from {folder}: no such folder.")
    if (path / "model_index.json").is_file():
        entry, review = _draft_pipeline(model_id, path)
        kind = "diffusers"
    elif (path / "configs" / "metadata.json").is_file():
        entry, review = _draft_bundle(model_id, path)
        kind = "monai-bundle"
    else:
        raise PackageError(f"{path} holds neither model_index.json (diffusers) nor configs/metadata.json (a MONAI "
                           "bundle); is it the repository of a pipeline or a bundle?")
    execution = entry["execution"]
    execution.update({"package_link": f"hf://{repo_id}", "revision": revision, "interface": kind})
    execution.setdefault("dependencies", list(HUB_KINDS[kind]))
    entry["execution"] = {k: execution[k] for k in ("package_link", "revision", "interface", "dependencies",
                                                     "generate_method", "adapter", "image_size", "outputs")
                          if execution.get(k) not in (None, {}, [])}
    entry["description"].setdefault("source", f"https://huggingface.co/{repo_id}")
    if not re.fullmatch(r"[0-9a-f]{40}", revision):
        review.setdefault("notes", []).append(f"revision {revision!r} is not a commit: pin one seen on the "
                                              "repository's pages, or the entry runs only with trust_remote_code.")
    return HubDraft(model_id, repo_id, revision, entry, review)


def _spec(shape: tuple[int, ...], value_range: tuple[float, float]) -> dict[str, Any]:
    """The outputs spec of a ``(1, C, *spatial)`` result: uint8 images in 2D, float32 volumes in 3D."""
    channels, spatial = shape[1], list(shape[2:])
    if len(spatial) == 2:
        out = {"name": "image", "kind": "image", "shape": spatial + ([channels] if channels in (3, 4) else []),
               "dtype": "uint8", "range": [0, 255]}
    else:
        out = {"name": "volume", "kind": "volume", "shape": spatial, "dtype": "float32", "range": list(value_range)}
    if channels not in (1, 3, 4) or len(spatial) not in (2, 3):
        raise PackageError(f"the dry run returned shape {tuple(shape)}; medhub writes (1, C, H, W) or (1, C, H, W, D) "
                           "with C in 1, 3, 4: return that from the sampling expression.")
    return out


def _entry(title: str, value_range: tuple[float, float], spec: dict | None, custom: dict, adapter: dict,
           licence: str | None, version: Any, description: Mapping[str, Any]) -> dict[str, Any]:
    execution: dict[str, Any] = {"generate_method": {"name": "generate", "args": {"base": [], "custom": custom},
                                                     "batch_size": 1},
                                 "adapter": {**adapter, "value_range": list(value_range)}}
    if spec is not None:
        execution["image_size"] = spec["shape"][:3] if spec["kind"] == "volume" else spec["shape"][:2]
        execution["outputs"] = [spec]
    return {"execution": execution,
            "selection": {"performance": {}, "modality": [], "organ": [], "tags": ["Hugging Face Hub"],
                          "license": licence},
            "description": {"title": title, "version": None if version is None else str(version), **description}}


# ---------------------------------------------------------------------------------------------- bundles
def _bundle_config(folder: Path) -> tuple[list[Path], dict[str, Any]]:
    from monai.bundle import ConfigParser

    from ..execution.adapters.monai_bundle import MonaiBundleAdapter

    files = MonaiBundleAdapter("draft", folder, {"interface": "monai-bundle"}, check=False).config_files()
    return files, ConfigParser.load_config_files([str(p) for p in files])


def _noise_item(config: Mapping[str, Any]) -> str:
    if "noise" in config:
        return "noise"
    for key, value in config.items():
        if isinstance(value, str) and re.search(r"torch\.randn?\(", value):
            return key
    raise PackageError("the bundle has no noise item (`noise`, or an item drawing torch.randn); draft it by hand.")


def _scheduler_item(config: Mapping[str, Any]) -> str | None:
    for key in ("scheduler", "noise_scheduler"):
        if key in config:
            return key
    return next((k for k, v in config.items() if isinstance(v, dict) and str(v.get("_target_", "")).endswith(
        "Scheduler")), None)


def _calls(expression: str) -> list[tuple[str, str, str]]:
    """``(item, method, arguments)`` of each ``@item.method(arguments)`` call in an expression."""
    out = []
    for match in _CALL.finditer(expression):
        depth, end = 1, match.end()
        while end < len(expression) and depth:
            depth += {"(": 1, ")": -1}.get(expression[end], 0)
            end += 1
        if depth == 0:
            out.append((match.group(1), match.group(2), expression[match.end():end - 1]))
    return out


def _split_args(text: str) -> list[str]:
    out, depth, current = [], 0, ""
    for char in text:
        if char == "," and depth == 0:
            out.append(current.strip())
            current = ""
            continue
        depth += char in "([{"
        depth -= char in ")]}"
        current += char
    return [a for a in out + [current.strip()] if a]


def sampling_candidates(config: Mapping[str, Any], noise_id: str) -> list[str]:
    """Sampling expressions for a bundle, best first: its ``sample`` item; expressions of other items that
    call ``sampling_fn``/``sample`` with the noise; and, from calls that write files (``@inferer.run(@noise,
    ..., path)``), the same object's ``sampling_fn`` and ``sample`` with the reference arguments only.

    Example:
        >>> sampling_candidates({"run": ["$@inferer.run(@noise, @net, os.path.join(@out, 'x.png'))"]}, "noise")
        ['$@inferer.sampling_fn(@noise, @net)', '$@inferer.sample(@noise, @net)']
    """
    from ..execution.adapters.bundle_config import is_expression, refs

    out: list[str] = []
    own = config.get("sample")
    if is_expression(own):
        out.append(own)
    expressions = [v for k, v in config.items() if k != "sample" and is_expression(v)]
    expressions += [v for k, v in config.items() if isinstance(v, list) for v in v if is_expression(v)]
    for value in expressions:
        for target, method, args in _calls(value):
            if noise_id not in refs("$" + args):
                continue
            if method in ("sampling_fn", "sample"):
                out.append(f"$@{target}.{method}({', '.join(_split_args(args))})")
            else:
                kept = [a for a in _split_args(args) if re.fullmatch(r"(\w+\s*=\s*)?@[\w:#]+", a)]
                out += [f"$@{target}.{name}({', '.join(kept)})" for name in ("sampling_fn", "sample")]
    return list(dict.fromkeys(out))


def _default_steps(config: Mapping[str, Any], scheduler: Any) -> int | None:
    for value in config.values():
        if isinstance(value, str) and ".set_timesteps(" in value and (found := _STEPS.search(value)):
            return int(found.group(1))
    return getattr(scheduler, "num_inference_steps", None) or getattr(scheduler, "num_train_timesteps", None)


def _dry_run_bundle(folder: Path, config: Mapping[str, Any], metadata: Mapping[str, Any], settings: dict[str, Any],
                    candidates: list[str]) -> tuple[str, Any, Any, dict[str, str]]:
    """Build the bundle at random initialisation on the CPU and try the candidates with two steps; returns
    the first that gives ``(1, C, ...)``, its result, the built model, and why the others failed."""
    import torch

    from ..execution.adapters.monai_bundle import MonaiBundleAdapter

    random_init = {k: "$None" for k, v in config.items() if isinstance(v, str) and v.startswith("$")
                   and any(call in v for call in _LOADS)}
    failed: dict[str, str] = {}
    model = None
    for candidate in candidates:
        adapter = MonaiBundleAdapter("00299_DRAFT", folder, {"interface": "monai-bundle", "adapter": {
            **settings, "sample": candidate, "overrides": random_init, "not_applied": list(config)}}, check=False)
        adapter.metadata = dict(metadata)
        try:
            if model is None:
                model = adapter.load("", "cpu")
                if model.scheduler is not None:
                    model.scheduler.set_timesteps(num_inference_steps=DRY_RUN_STEPS)
            model.expression = candidate
            noise = torch.randn(model.noise_shape, generator=torch.Generator().manual_seed(0))[None]
            with torch.inference_mode():
                result = adapter.evaluate(model, {model.noise_id: noise})
            if isinstance(result, (tuple, list)):
                result = result[0]
            if not isinstance(result, torch.Tensor) or result.ndim < 4 or result.shape[0] != 1:
                raise PackageError(f"it returned {type(result).__name__} {tuple(getattr(result, 'shape', ()))}, not "
                                   "a tensor (1, C, ...)")
            return candidate, result.float(), model, failed
        except Exception as exc:  # a candidate that does not run is reported, not raised
            failed[candidate] = " ".join(f"{type(exc).__name__}: {exc}".split())[:300]
    tried = "; ".join(f"{k} -> {v}" for k, v in failed.items()) or "no candidates"
    raise PackageError(f"no sampling expression ran in the dry run ({tried}); give one with execution.adapter.sample.")


def _draft_bundle(model_id: str, folder: Path) -> tuple[dict[str, Any], dict[str, Any]]:
    from ..execution.adapters.bundle_config import metadata_value_range, unapplied_items

    metadata = json.loads((folder / "configs" / "metadata.json").read_text())
    files, config = _bundle_config(folder)
    noise_id = _noise_item(config)
    scheduler_id = _scheduler_item(config)
    candidates = sampling_candidates(config, noise_id)
    settings: dict[str, Any] = {"noise": noise_id, **({"scheduler": scheduler_id} if scheduler_id else {})}
    if isinstance(config.get(noise_id), str) and re.search(r"torch\.rand\(", config[noise_id]):
        settings["noise_distribution"] = "uniform"
    before = set(sys.modules)
    expression, result, model, failed = _dry_run_bundle(folder, config, metadata, settings, candidates)
    section = "autoencoder_data_format" if "autoencoder_data_format" in metadata else "network_data_format"
    value_range = metadata_value_range(metadata) or (0.0, 1.0)
    adapter: dict[str, Any] = dict(settings)
    if expression != config.get("sample"):
        adapter["sample"] = expression
    config_names = [p.relative_to(folder).as_posix() for p in files]
    if config_names != ["configs/inference.json"]:
        adapter["config"] = config_names if len(config_names) > 1 else config_names[0]
    required = metadata.get("required_packages_version") or {}
    unused = sorted(n for n in required if n.replace("-", "_") not in before | set(sys.modules))
    if unused:
        adapter["ignore_packages"] = unused
    steps = _default_steps(config, model.scheduler)
    spec = _spec(tuple(result.shape), value_range)
    authors = metadata.get("authors")
    description = {"authors": [authors] if isinstance(authors, str) else list(authors or []),
                   "intended_use": metadata.get("intended_use") or "Research only; not for clinical use.",
                   "publication": "; ".join(str(r) for r in metadata.get("references") or []) or None,
                   "comment": " ".join(filter(None, [str(metadata.get("description") or "").rstrip(".") + ".",
                                                     f"Latent shape {list(model.noise_shape)}; MONAI "
                                                     f"{metadata.get('monai_version')}."]))}
    entry = _entry(str(metadata.get("name") or folder.name), value_range, spec,
                   {"num_inference_steps": steps} if steps else {}, adapter, _licence(folder), metadata.get("version"),
                   description)
    review = {"sampling_expression": expression, "candidates": candidates, "failed_candidates": failed,
              "noise": noise_id, "scheduler": scheduler_id, "latent_shape": list(model.noise_shape),
              "dry_run": {"shape": list(result.shape), "min": float(result.min()), "max": float(result.max()),
                          "steps": DRY_RUN_STEPS, "weights": "random initialisation"},
              "value_range_from": f"configs/metadata.json {section}" if metadata_value_range(metadata) else "default",
              "not_applied": unapplied_items(config, expression, noise_id),
              "notes": ["check the orientation against the bundle's own post-processing (not_applied) and put it "
                        "into execution.adapter.sample; then list those items in execution.adapter.not_applied.",
                        "fill in selection (modality, organ, dataset, performance) and description from the "
                        "model card."]}
    if spec["kind"] == "volume":
        review["notes"].append("add the voxel spacing (outputs[0].spacing) from the model card.")
    return entry, review


# ---------------------------------------------------------------------------------------------- pipelines
def _draft_pipeline(model_id: str, folder: Path) -> tuple[dict[str, Any], dict[str, Any]]:
    import inspect

    import diffusers

    from ..execution.adapters.diffusers_kind import pipeline_inputs

    index = json.loads((folder / "model_index.json").read_text())
    name = str(index.get("_class_name", ""))
    cls = getattr(diffusers, name, None)
    if not isinstance(cls, type):
        raise PackageError(f"pipeline class {name!r} is not part of diffusers {diffusers.__version__}; medhub runs "
                           "diffusers' own pipelines only.")
    components = {k: v for k, v in index.items() if not k.startswith("_") and isinstance(v, list) and len(v) == 2}
    params = inspect.signature(cls.__call__).parameters
    steps = params["num_inference_steps"].default if "num_inference_steps" in params else None
    review: dict[str, Any] = {"pipeline": name, "inputs": pipeline_inputs(cls.__call__),
                              "noise": "drawn by the pipeline from each sample's torch.Generator",
                              "notes": ["fill in selection (modality, organ, dataset, performance) and description "
                                        "from the model card."]}
    built, latent = {}, None
    for part, (library, class_name) in components.items():
        part_cls = getattr(diffusers, str(class_name), None) if library == "diffusers" else None
        if part_cls is None:
            review["notes"].append(f"no dry run: component {part} is {library}.{class_name} (not diffusers'); "
                                   "give the outputs spec by hand.")
            built = None
            break
        settings = part_cls.load_config(str(folder / part)) if hasattr(part_cls, "load_config") else {}
        built[part] = part_cls.from_config(settings)
        if "Scheduler" in str(class_name):
            review["scheduler"] = str(class_name)
        elif "unet" in part and latent is None:
            size = settings.get("sample_size")
            sizes = list(size) if isinstance(size, (list, tuple)) else [size, size]
            latent = [settings.get("in_channels"), *sizes]
    review["latent_shape"] = latent
    spec = None
    if built is not None:
        import numpy as np
        import torch

        from ..execution.adapters.convert import generators

        pipe = cls(**built)
        if hasattr(pipe, "set_progress_bar_config"):
            pipe.set_progress_bar_config(disable=True)
        with torch.inference_mode():
            images = np.asarray(pipe(generator=generators([0]), batch_size=1, num_inference_steps=DRY_RUN_STEPS,
                                     output_type="np").images, dtype=np.float32)
        batch = images[..., None] if images.ndim == 3 else images
        shape = (1, batch.shape[-1], *batch.shape[1:-1])
        spec = _spec(shape, (0.0, 1.0))
        review["dry_run"] = {"shape": list(shape), "min": float(batch.min()), "max": float(batch.max()),
                             "steps": DRY_RUN_STEPS, "weights": "random initialisation"}
        if shape[1] == 3:
            review["notes"].append("three channels: if the images are grey stored as RGB, make the spec's shape "
                                   "[H, W] (medhub averages the channels).")
    entry = _entry(f"{name} from the Hugging Face Hub", (0.0, 1.0), spec,
                   {"num_inference_steps": steps} if isinstance(steps, int) else {}, {"pipeline": name},
                   _licence(folder), None, {"authors": [], "intended_use": "Research only; not for clinical use.",
                                            "comment": f"diffusers {name}, saved with diffusers "
                                                       f"{index.get('_diffusers_version')}."})
    entry["execution"]["adapter"].pop("value_range")  # a pipeline's images are in [0, 1]
    return entry, review
