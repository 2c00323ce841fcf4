"""Code that model packages share: import it instead of copying it into each package.

* :func:`run_in_blocks`: run a network on fixed blocks of inputs, so that a sample's arithmetic
  never depends on how many samples were asked for at once;
* :func:`to_uint8`: network output in [-1, 1] to uint8 images;
* :func:`latent_input`: check a user-given latent array, one clear error for every bad one;
* :func:`medigan_seeds` and :func:`medigan_generate`: the medigan ``generate()`` of a ``medhub/1``
  package, built from its ``load`` and ``sample``.

Like :mod:`medhub.noise`, these functions are **frozen**: what they compute never changes within
medhub's major version (packages require ``medhub>=0.2,<1``), and a different behaviour gets a
new name. The golden samples of the shipped models (``execution.golden`` in the catalog,
:mod:`medhub.golden`) check it. torch is imported inside the functions that use it.

Example:
    >>> import torch
    >>> double = lambda x: x * 2
    >>> run_in_blocks(double, torch.arange(5.0)[:, None], block=4, device="cpu").flatten().tolist()
    [0.0, 2.0, 4.0, 6.0, 8.0]
    >>> to_uint8(torch.tensor([[[[-1.0, 0.0, 1.0]]]])).tolist()
    [[[0, 128, 255]]]
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["latent_input", "medigan_generate", "medigan_seeds", "run_in_blocks", "save_png", "to_uint8"]


def run_in_blocks(network: Callable[..., Any], *inputs: Any, block: int, device: Any, pad: str = "zeros") -> Any:
    """``network(*inputs)`` computed on blocks of exactly ``block`` rows, moved to ``device``.

    The last block is padded to ``block`` rows (``pad="zeros"``, or ``"edge"``: copies of its last
    row), and only the real rows of each output are kept, so sample i's arithmetic is the same
    whatever the number of samples. Runs under ``torch.inference_mode()``; the result stays on
    ``device``.

    Args:
        network: called with one block of each input.
        *inputs: tensors with the same first dimension (e.g. latents and class indices).
        block: rows per call.
        device: where the blocks are moved before the call.
        pad: ``"zeros"`` or ``"edge"``.

    Example:
        >>> import torch
        >>> run_in_blocks(lambda z, c: z + c, torch.ones(3, 2), torch.ones(3, 1), block=2, device="cpu").shape
        torch.Size([3, 2])
    """
    import torch

    if pad not in ("zeros", "edge"):
        raise ValueError(f"pad must be 'zeros' or 'edge', not {pad!r}")
    outs = []
    with torch.inference_mode():
        for start in range(0, inputs[0].shape[0], block):
            parts = [x[start : start + block] for x in inputs]
            n = parts[0].shape[0]
            if n < block:
                parts = [_pad(p, block - n, pad) for p in parts]
            outs.append(network(*(p.to(device) for p in parts))[:n])
    return torch.cat(outs)


def _pad(part: Any, rows: int, pad: str) -> Any:
    import torch

    extra = part[-1:].expand(rows, *part.shape[1:]) if pad == "edge" else part.new_zeros(rows, *part.shape[1:])
    return torch.cat([part, extra])


def to_uint8(x: Any) -> np.ndarray:
    """Network output in [-1, 1] to uint8 images: (N, 1, H, W) -> (N, H, W), (N, C, H, W) -> (N, H, W, C).

    ``round((clamp(x, -1, 1) + 1) * 127.5)``, computed in float32.
    """
    import torch

    # one float copy, then in place: the same arithmetic, without three more temporaries of the
    # whole batch (on a fresh process each is new memory the kernel must fault in)
    x = x.float().clamp(-1, 1).add_(1).mul_(127.5).round_().to(torch.uint8)
    x = x[:, 0] if x.shape[1] == 1 else x.permute(0, 2, 3, 1)
    return x.cpu().numpy()


def latent_input(latent: Any, n: int, dim: int) -> Any:
    """A user-given latent array as a float32 tensor (n, dim), or ValueError saying what to pass.

    Example:
        >>> latent_input([[0.5, 1.0]], 1, 2).tolist()
        [[0.5, 1.0]]
    """
    import torch

    expected = f"a float array of shape ({n}, {dim}) (one row of standard-normal values per sample)"
    try:
        z = np.asarray(latent, dtype=np.float32)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"latent must be {expected}: {exc}") from None
    if z.size != n * dim:
        raise ValueError(f"latent must be {expected}, got shape {z.shape}")
    if not np.isfinite(z).all():
        raise ValueError(f"latent must be {expected}; it holds NaN or infinite values")
    return torch.from_numpy(np.ascontiguousarray(z.reshape(n, dim)))


def medigan_seeds(num_samples: int, seed: int | None = None) -> list[int]:
    """One seed per sample for a medigan-style call: from ``numpy.random.default_rng(seed)``, or,
    without ``seed``, from numpy's global generator (so ``np.random.seed``, as medigan users
    write it, makes the call reproducible).

    Example:
        >>> medigan_seeds(2, seed=0) == medigan_seeds(2, seed=0)
        True
    """
    if seed is None:
        drawn = np.random.randint(0, 2**63 - 1, size=num_samples, dtype=np.int64)
    else:
        drawn = np.random.default_rng(seed).integers(0, 2**63 - 1, size=num_samples, dtype=np.int64)
    return [int(s) for s in drawn]


def save_png(path: Path, array: np.ndarray) -> None:
    """Write a uint8 array as a PNG file (PIL)."""
    from PIL import Image

    Image.fromarray(array).save(path)


def medigan_generate(
    load: Callable[[Any, str], Any],
    sample: Callable[..., Mapping[str, np.ndarray]],
    model_file: str | Path,
    num_samples: int,
    output_path: str | Path | None,
    save_images: bool,
    seed: int | None,
    *,
    outputs: Sequence[str] = ("image",),
    files: Mapping[str, str] | None = None,
    save: Callable[[Path, np.ndarray], None] = save_png,
    seeds: Sequence[int] | None = None,
    **inputs: Any,
) -> list[Any] | None:
    """The medigan ``generate()`` of a ``medhub/1`` package, from its ``load`` and ``sample``.

    Loads the model on the CPU and samples ``num_samples`` seeds (:func:`medigan_seeds`, unless
    ``seeds`` is given) with ``inputs``. With ``save_images=False`` returns one item per sample:
    the array of ``outputs[0]`` alone, or a tuple of the ``outputs`` in order (a str output as
    ``str``). Otherwise writes ``files`` (output name -> file name under ``output_path``, formatted
    with ``i`` and the sample's outputs; default ``{outputs[0]: "{i}.png"}``) with ``save`` and
    returns None.

    Example:
        >>> import numpy as np
        >>> fake_sample = lambda model, seeds: {"image": np.zeros((len(seeds), 2, 2), np.uint8)}
        >>> items = medigan_generate(lambda f, d: None, fake_sample, "w", 3, None, False, seed=0)
        >>> len(items), items[0].shape
        (3, (2, 2))
    """
    drawn = medigan_seeds(num_samples, seed) if seeds is None else list(seeds)
    batch = sample(load(model_file, "cpu"), drawn, **inputs)
    rows = [{name: _item(batch[name][i]) for name in outputs} for i in range(num_samples)]
    items = [row[outputs[0]] if len(outputs) == 1 else tuple(row.values()) for row in rows]
    if not save_images:
        return items
    root = Path(output_path or ".")
    for i, row in enumerate(rows):
        for name, pattern in (files or {outputs[0]: "{i}.png"}).items():
            path = root / pattern.format(i=i, **row)
            path.parent.mkdir(parents=True, exist_ok=True)
            save(path, row[name])
    return None


def _item(value: Any) -> Any:
    return str(value) if isinstance(value, np.str_) else value
