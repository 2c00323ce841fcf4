"""Device selection: ``"auto"``, ``"cpu"``, ``"cuda"``, ``"cuda:N"`` (and ``"mps"``)."""

from __future__ import annotations

import re
import sys

from ..errors import DeviceError

_DEVICE = re.compile(r"^(auto|cpu|mps|cuda(:\d+)?)$")


def resolve_device(device: str | None, uses_torch: bool) -> str:
    """Return a concrete device string. ``"auto"`` means CUDA when available, else CPU.

    For packages that do not use torch (``uses_torch`` False) ``"auto"`` is always ``"cpu"``
    and torch is never imported.
    """
    name = "auto" if device is None else str(device).strip().lower()
    if not _DEVICE.match(name):
        raise DeviceError(f"Unknown device {device!r}; use 'auto', 'cpu', 'cuda', 'cuda:N' or 'mps'.")
    if name == "cpu" or (name == "auto" and not uses_torch):
        return "cpu"  # a package that does not use torch runs on the CPU, also where torch sees a GPU
    if not uses_torch and "torch" not in sys.modules:
        raise DeviceError(f"Device {device!r} needs torch, and this model package does not use it; use 'cpu'.")
    import torch

    if name == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if name == "mps":
        if not (hasattr(torch.backends, "mps") and torch.backends.mps.is_available()):
            raise DeviceError("Device 'mps' is not available on this machine; use 'cpu' or 'auto'.")
        return name
    if not torch.cuda.is_available():
        raise DeviceError(f"Device {device!r} requested but CUDA is not available here; use 'cpu' or 'auto'.")
    index = int(name.split(":")[1]) if ":" in name else 0
    if index >= torch.cuda.device_count():
        raise DeviceError(f"Device {device!r} does not exist; this machine has {torch.cuda.device_count()} CUDA device(s).")
    return name


def device_name(device: str) -> str:
    """A readable name of the hardware behind ``device`` (the GPU's name for CUDA devices, the
    processor otherwise), recorded in provenance."""
    if str(device).startswith("cuda") and "torch" in sys.modules:
        torch = sys.modules["torch"]
        return str(torch.cuda.get_device_name(torch.device(device)))
    import platform

    if sys.platform.startswith("linux"):  # processor() runs `uname -p` in a subprocess, and is the machine or empty
        return platform.machine() or "cpu"
    return platform.processor() or platform.machine() or "cpu"
