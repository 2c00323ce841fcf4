"""What a package call runs under when torch is loaded: grad mode, mixed precision, weight layout,
and the copy of its outputs to the host.

* Grad mode: ``torch.inference_mode`` for native kinds, ``torch.no_grad`` for medigan packages
  (their kind's ``grad``); ``execution.generate_method.inference_mode: false`` opts a package out
  of both (for samplers that need autograd).
* Mixed precision (:func:`autocast_dtype`): only on CUDA, only when the package allows it.
* Weight layout (:func:`memory_format`): ``channels_last`` only where the catalog declares it.

Nothing here imports torch: a process that never loaded torch gets a no-op context.
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Mapping
from typing import Any

from ..errors import PackageError
from ..settings import get as get_setting

AMP_DTYPES = ("float16", "bfloat16")


def memory_format(declared: str) -> str:
    """The memory layout medhub gives the loaded network's weights: ``"contiguous"`` (as the package
    built it) or the catalog's ``"channels_last"`` (many convolutional generators run much faster in
    that layout; the package author measures it with ``benchmarks/memory_format.py``).
    ``MEDHUB_MEMORY_FORMAT=contiguous`` turns it off everywhere."""
    if get_setting("MEDHUB_MEMORY_FORMAT"):  # "contiguous" or an off value
        return "contiguous"
    return declared


def apply_memory_format(model: Any, layout: str, model_id: str) -> Any:
    """``model`` in ``layout`` (a torch module for ``channels_last``)."""
    if layout != "channels_last":
        return model
    torch = sys.modules.get("torch")
    if torch is None or not isinstance(model, torch.nn.Module):
        raise PackageError(f"Model {model_id}: memory_format 'channels_last' needs load() to return a "
                           f"torch.nn.Module, not {type(model).__name__}.")
    return model.to(memory_format=torch.channels_last)


def autocast_dtype(declared: Any, module: Any, device: str, model_id: str) -> Any:
    """The torch dtype of mixed precision on ``device``, or None for full precision.

    Only on CUDA, and only when the package allows it: the catalog's ``mixed_precision``
    (``declared``: ``true``/``"float16"``, ``"bfloat16"``, ``false``) or, when the catalog says
    nothing, the package's ``SUPPORTS_AMP`` attribute (same values). ``MEDHUB_MIXED_PRECISION=0``
    turns it off everywhere.
    """
    if not str(device).startswith("cuda") or not get_setting("MEDHUB_MIXED_PRECISION"):
        return None
    if declared is None:
        declared = getattr(module, "SUPPORTS_AMP", None)
    if declared in (None, False):
        return None
    name = "float16" if declared is True else str(declared)
    if name not in AMP_DTYPES:
        raise PackageError(f"Model {model_id}: mixed_precision / SUPPORTS_AMP must be true, false or "
                           f"one of {AMP_DTYPES}, not {declared!r}.")
    import torch

    return getattr(torch, name)


def torch_context(grad: str | None, amp: Any) -> contextlib.AbstractContextManager[Any]:
    """The grad mode (``"inference"``, ``"no_grad"`` or None for neither) and, for an ``amp`` dtype,
    ``torch.autocast`` on CUDA; a no-op when torch is not loaded."""
    torch = sys.modules.get("torch")
    if torch is None:
        return contextlib.nullcontext()
    stack = contextlib.ExitStack()
    if grad is not None:
        stack.enter_context(torch.inference_mode() if grad == "inference" else torch.no_grad())
    if amp is not None:
        stack.enter_context(torch.autocast(device_type="cuda", dtype=amp))
    return stack


def to_host(raw: Any) -> Any:
    """Torch tensors in a package's output dict -> numpy arrays.

    CUDA tensors are copied into pinned host buffers with non-blocking copies and the stream is
    synchronised once for the whole batch (instead of one blocking copy per output); CPU tensors
    are shared with numpy without a copy. Anything else is returned unchanged.
    """
    torch = sys.modules.get("torch")
    if torch is None or not isinstance(raw, Mapping):
        return raw
    tensors = {k: v for k, v in raw.items() if isinstance(v, torch.Tensor)}
    if not tensors:
        return raw
    out = dict(raw)
    devices = set()
    for key, tensor in tensors.items():
        tensor = tensor.detach()
        if tensor.device.type == "cuda":
            host = torch.empty(tensor.shape, dtype=tensor.dtype, pin_memory=True)
            host.copy_(tensor, non_blocking=True)
            devices.add(tensor.device)
            out[key] = host
        else:
            out[key] = tensor.cpu()
    for device in devices:
        torch.cuda.current_stream(device).synchronize()
    return {k: (v.numpy() if isinstance(v, torch.Tensor) else v) for k, v in out.items()}
