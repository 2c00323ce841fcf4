"""The ``diffusers`` package kind: a ``diffusers`` pipeline folder (``model_index.json`` and one
folder per component), run as a ``medhub/1`` package.

* ``load`` builds the pipeline with ``DiffusionPipeline.from_pretrained(folder, use_safetensors=True)``
  from the verified folder only (no network, no pipeline code from the repository: the pipeline
  class named in ``model_index.json`` must be one of diffusers' own), and moves it to the device.
* ``sample`` calls the pipeline once per batch with one CPU ``torch.Generator`` per sample, seeded
  with the sample's seed: diffusers draws each sample's starting noise (and the noise of stochastic
  schedulers) from its own generator, so sample ``i`` depends only on ``(seed, i)``.
  Inputs: ``num_inference_steps``, ``guidance_scale``, ``prompt`` and ``negative_prompt`` (a string
  for all samples, or one per sample when the catalog lists it in ``per_sample_inputs``), and any
  other keyword the pipeline's ``__call__`` takes.
* Images come back as ``uint8`` ``(H, W)`` when the pipeline's images are grey, else ``(H, W, 3)``
  (or as the outputs spec declares).

Example:
    >>> from medhub.execution.kinds import KINDS
    >>> "model_index.json" in KINDS["diffusers"].allow_patterns  # the files of a pipeline medhub fetches
    True
"""

from __future__ import annotations

import inspect
import json
import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ...errors import InvalidArgumentError, PackageError
from ...outputs import parse_specs
from .convert import generators, library_versions, require, to_outputs

logger = logging.getLogger("medhub.execution.adapters.diffusers")

#: What a diffusers pipeline needs from its repository: configs, safetensors weights, tokenizer files.
#: Inputs medhub itself passes (never taken from the user).
_RESERVED = ("generator", "output_type", "return_dict", "batch_size", "num_images_per_prompt")
#: Parameters of pipelines that are not inputs: the starting noise (medhub draws it from each sample's
#: seed) and callbacks (Python functions).
_NOT_INPUTS = ("latents", "callback", "callback_steps", "callback_on_step_end", "callback_on_step_end_tensor_inputs")


def pipeline_inputs(function: Any) -> list[str]:
    """The inputs a pipeline's ``__call__`` takes from the user: its named parameters, less those
    medhub sets (``generator``, ``output_type``...), the starting ``latents`` and callbacks.

    Example:
        >>> def call(self, batch_size=1, generator=None, num_inference_steps=1000, latents=None, **kwargs): ...
        >>> pipeline_inputs(call)
        ['num_inference_steps']
    """
    try:
        params = inspect.signature(function).parameters
    except (TypeError, ValueError):  # pragma: no cover - pipelines are Python classes
        return []
    return sorted(n for n, p in params.items() if n != "self" and n not in _RESERVED and n not in _NOT_INPUTS
                  and p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY))


class DiffusersAdapter:
    """A ``diffusers`` pipeline folder behind the ``medhub/1`` contract (``load`` / ``sample``).

    Example:
        >>> adapter = DiffusersAdapter("00299_X", Path("."), {"interface": "diffusers"})
        >>> callable(adapter.load) and callable(adapter.sample)
        True
    """

    SUPPORTS_AMP = None

    def __init__(self, model_id: str, folder: Path, execution: Mapping[str, Any]) -> None:
        self.model_id = model_id
        self.folder = Path(folder)
        self.execution = execution
        self.settings = dict(execution.get("adapter") or {})
        self.specs = parse_specs(execution.get("outputs"))

    def __repr__(self) -> str:
        return f"DiffusersAdapter({self.model_id!r}, {str(self.folder)!r})"

    def pipeline_class(self) -> str:
        """The pipeline class named in ``model_index.json``."""
        try:
            index = json.loads((self.folder / "model_index.json").read_text())
        except (OSError, ValueError) as exc:
            raise PackageError(f"Model {self.model_id}: {self.folder} has no readable model_index.json ({exc}); is it "
                               "a diffusers pipeline?") from None
        return str(index.get("_class_name", ""))

    def load(self, weights_path: str, device: str) -> Any:
        """The pipeline on ``device`` (``weights_path`` is unused: the adapter is bound to its folder)."""
        diffusers = require("diffusers", self.model_id, "a diffusers pipeline")
        name = self.pipeline_class()
        expected = self.settings.get("pipeline")
        if expected and name != expected:
            raise PackageError(f"Model {self.model_id}: the repository holds a {name or 'unnamed'} pipeline, the catalog "
                               f"expects {expected}; fix execution.adapter.pipeline or the revision.")
        cls = getattr(diffusers, name, None) if name else None
        if not isinstance(cls, type):
            raise PackageError(f"Model {self.model_id}: pipeline class {name!r} is not part of diffusers "
                               f"{diffusers.__version__}; medhub runs no pipeline code from a repository. Upgrade "
                               "diffusers if the class is newer.")
        try:
            pipe = cls.from_pretrained(str(self.folder), use_safetensors=True, local_files_only=True)
        except (OSError, ValueError) as exc:
            raise PackageError(f"Model {self.model_id}: diffusers could not load the {name} in {self.folder}: "
                               f"{' '.join(str(exc).split())[:300]}") from None
        pipe = pipe.to(device)
        if hasattr(pipe, "set_progress_bar_config"):
            pipe.set_progress_bar_config(disable=True)
        return pipe

    def input_names(self) -> list[str]:
        """The inputs the pipeline's ``__call__`` takes (:func:`pipeline_inputs`), without loading it."""
        diffusers = require("diffusers", self.model_id, "a diffusers pipeline")
        cls = getattr(diffusers, self.pipeline_class(), None)
        return pipeline_inputs(cls.__call__) if isinstance(cls, type) else []

    def provenance(self) -> dict[str, Any]:
        """What a run's ``provenance.json`` records of the pipeline: the versions of the libraries that run
        it, and the pipeline's own (its class and the diffusers version it was saved with, from
        ``model_index.json``)."""
        try:
            index = json.loads((self.folder / "model_index.json").read_text())
        except (OSError, ValueError):
            index = {}
        return {"versions": {**library_versions("diffusers", "huggingface_hub", "torch"),
                             "pipeline": index.get("_class_name"), "pipeline_diffusers": index.get("_diffusers_version")}}

    def call_arguments(self, pipe: Any, count: int, inputs: Mapping[str, Any]) -> dict[str, Any]:
        """The keyword arguments of the pipeline call for ``count`` samples (without the generators)."""
        try:
            params = inspect.signature(pipe.__call__).parameters
        except (TypeError, ValueError):  # pragma: no cover - pipelines are Python classes
            params = {}
        takes_any = any(p.kind is p.VAR_KEYWORD for p in params.values())
        takes = pipeline_inputs(pipe.__call__)
        args: dict[str, Any] = {"output_type": "np", "return_dict": True}
        given = {k: v for k, v in inputs.items() if v is not None}
        if "prompt" in params:
            prompt = given.pop("prompt", None)
            if prompt is None:
                raise InvalidArgumentError(f"Model {self.model_id} is text-conditioned: give prompt='...' (one string "
                                           "for every sample, or one per sample).")
            args["prompt"] = _per_sample(prompt, count, "prompt", self.model_id)
            if given.get("negative_prompt") is not None:
                args["negative_prompt"] = _per_sample(given.pop("negative_prompt"), count, "negative_prompt",
                                                      self.model_id)
            if "num_images_per_prompt" in params:
                args["num_images_per_prompt"] = 1
        else:
            args["batch_size"] = count
        for name, value in given.items():
            if name in _RESERVED or name in _NOT_INPUTS:
                raise InvalidArgumentError(f"Model {self.model_id}: {name} is set by medhub; leave it out.")
            if name not in takes and not (takes_any and name not in params):
                raise InvalidArgumentError(f"Model {self.model_id}: its {type(pipe).__name__} takes no input {name!r}; "
                                           f"it takes {', '.join(takes) or 'none'}.")
            args[name] = value.item() if hasattr(value, "item") and getattr(value, "ndim", 1) == 0 else value
        return args

    def sample(self, model: Any, seeds: list[int], **inputs: Any) -> dict[str, Any]:
        """One pipeline call for ``seeds``; sample ``i`` uses only the generator seeded with ``seeds[i]``."""
        args = self.call_arguments(model, len(seeds), inputs)
        images = model(generator=generators(seeds), **args).images
        import numpy as np

        batch = np.asarray(images, dtype=np.float32)
        if batch.ndim == 3:  # (N, H, W): grey without a channel axis
            batch = batch[..., None]
        return to_outputs(batch, self.specs, (0.0, 1.0), channels_last=True)


def _per_sample(value: Any, count: int, name: str, model_id: str) -> list[str]:
    if isinstance(value, str):
        return [value] * count
    values = [str(v) for v in list(value)]
    if len(values) != count:
        raise InvalidArgumentError(f"Model {model_id}: {name} needs one string, or one per sample ({count} here), not "
                                   f"{len(values)}; list it in generate_method.per_sample_inputs to split it in batches.")
    return values
