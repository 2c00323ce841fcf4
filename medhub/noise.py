"""Seeded noise for model packages: a whole batch drawn in a few tensor operations on the device.

Sample i of a run gets the seed ``seeds[i]`` (:func:`medhub.execution.seeds.sample_seeds`); its
noise must depend on that seed alone, not on the batch, its position in it, or the worker. A
``torch.Generator`` per sample in a Python loop does that, at several µs per sample on the CPU
and with the noise copied to the device afterwards (``benchmarks/gpu.py`` measures both). These
functions draw the noise of all samples at once on the target device instead:

* the random bits come from **Philox4x32-10** (Salmon et al., 2011), a counter-based generator:
  the key is the sample's 64-bit seed, the counter the position in its noise and a ``stream``
  number, so sample i's bits depend only on its seed (and the stream). It is computed in int64
  tensor arithmetic, twelve elementwise operations a round: the one product that exceeds int64
  (32 x 32 bits) is taken modulo 2**64, as int64 multiplication is on every torch device, and only
  its two 32-bit halves are used; the bits are **identical on every device** (CPU, CUDA, MPS;
  ``tests/test_noise.py`` checks the tensor path against exact uint64 arithmetic, and CUDA against
  the CPU where CUDA is present);
* :func:`uniform` (24-bit floats in [0, 1)) and :func:`integers` are exact functions of the bits,
  also identical on every device;
* :func:`normal` transforms pairs of uniforms with Box-Muller, using the device's ``log``,
  ``sqrt``, ``cos`` and ``sin``: CPU and CUDA libraries may round those differently, so normals
  agree across devices only to within a few units in the last place (``tests/test_noise.py``
  checks |difference| < 1e-5 where CUDA is present), while the bits behind them are the same.

**Frozen output.** What these functions return never changes: the same seeds, shape, stream and
device give the same numbers in every medhub release (``tests/test_noise.py`` holds known answers
at fixed seeds and streams). A package's digest plus a bounded requirement (``medhub>=0.2.0.dev0,<1``,
as the shipped packages declare) therefore pins what it draws. A different algorithm would be
added under a new name, never swapped in behind these.

A package that needs several independent draws per sample (a latent vector and a class, say)
takes each from its own ``stream`` (0, 1, 2, ...): streams of one seed are independent, and adding
a draw in a new stream leaves the others as they were.

Example:
    >>> import torch
    >>> z = normal([11, 12, 13], (4,), device="cpu")
    >>> z.shape, z.dtype
    (torch.Size([3, 4]), torch.float32)
    >>> torch.equal(normal([12], (4,))[0], z[1])   # sample 12's noise, alone or in a batch
    True
    >>> uniform([7], (3,)).tolist() == uniform([7, 8], (3,))[:1].tolist()
    True
    >>> label = integers([11, 12, 13], 0, 3, stream=1)   # independent of z
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

_MASK32 = 0xFFFFFFFF
_M0, _M1 = 0xD2511F53, 0xCD9E8D57  # Philox4x32 multipliers
_W0, _W1 = 0x9E3779B9, 0xBB67AE85  # Weyl key increments
ROUNDS = 10

__all__ = ["integers", "normal", "philox4x32", "random_bits", "uniform"]


def _torch() -> Any:
    import torch

    return torch


def _mulhilo(a: int, b: Any) -> tuple[Any, Any]:
    """(high, low) 32-bit halves of ``a * b`` for a 32-bit constant ``a`` and an int64 tensor ``b``
    of 32-bit values: the 64-bit product is taken modulo 2**64 (int64 multiplication wraps on every
    torch device), then split; three tensor operations and a multiplication, as few kernels as
    possible on a GPU."""
    product = b * a
    return (product >> 32) & _MASK32, product & _MASK32


def _key_schedule(seeds: Sequence[int]) -> np.ndarray:
    """The Philox key of every round for every seed (its two 32-bit halves plus the round's Weyl
    increments), on the host: uint64 array ``(n, ROUNDS, 2)``."""
    words = np.asarray([int(s) & 0xFFFFFFFFFFFFFFFF for s in seeds], dtype=np.uint64)[:, None]
    steps = np.arange(ROUNDS, dtype=np.uint64)[None, :]
    mask = np.uint64(_MASK32)
    return np.stack(((words & mask) + steps * np.uint64(_W0), (words >> np.uint64(32)) + steps * np.uint64(_W1)),
                    axis=2) & mask


def _stream(stream: int) -> int:
    if isinstance(stream, bool) or not isinstance(stream, (int, np.integer)) or not 0 <= int(stream) <= _MASK32:
        raise ValueError(f"stream must be an integer in [0, 2**32), not {stream!r}")
    return int(stream)


def random_bits(seeds: Sequence[int], count: int, device: Any = "cpu", stream: int = 0) -> Any:
    """``count`` random 32-bit words per seed: an int64 tensor of shape ``(len(seeds), count)``
    holding values in ``[0, 2**32)``, the same bits on every device.

    Word j of a seed is word ``j % 4`` of the Philox4x32-10 block at counter ``(j // 4, stream,
    0, 0)`` keyed by the seed. On the CPU the words are computed with numpy's uint64 arithmetic
    (fewer, cheaper operations); elsewhere with int64 tensor operations on the device; both give
    the same bits.

    Example:
        >>> random_bits([0], 4).tolist()
        [[1713891541, 3781805453, 3159862348, 2600524760]]
    """
    torch = _torch()
    n, blocks, stream = len(seeds), -(-int(count) // 4), _stream(stream)
    if str(device) == "cpu":
        bits = _bits_numpy(seeds, blocks, stream).astype(np.int64)
        return torch.from_numpy(bits).reshape(n, blocks * 4)[:, :count]
    return _bits_tensor(seeds, blocks, stream, device).reshape(n, blocks * 4)[:, :count]


def _bits_tensor(seeds: Sequence[int], blocks: int, stream: int, device: Any) -> Any:
    """Philox4x32-10 blocks ``0..blocks-1`` of each seed with int64 tensor operations on ``device``:
    tensor ``(n, blocks, 4)``."""
    torch = _torch()
    n = len(seeds)
    keys = torch.from_numpy(_key_schedule(seeds).astype(np.int64)).to(device)  # one copy, no key kernels
    c0 = torch.arange(blocks, dtype=torch.int64, device=device).expand(n, blocks)
    c1 = torch.full((n, blocks), stream, dtype=torch.int64, device=device)
    zeros = torch.zeros((n, blocks), dtype=torch.int64, device=device)
    out = _rounds((c0, c1, zeros, zeros), [(keys[:, r, 0:1], keys[:, r, 1:2]) for r in range(ROUNDS)])
    return torch.stack(out, dim=2)


def _bits_numpy(seeds: Sequence[int], blocks: int, stream: int = 0) -> np.ndarray:
    """Philox4x32-10 blocks ``0..blocks-1`` of each seed with numpy: uint64 array ``(n, blocks, 4)``."""
    keys = _key_schedule(seeds)
    n, mask = len(keys), np.uint64(_MASK32)
    c0 = np.broadcast_to(np.arange(blocks, dtype=np.uint64), (n, blocks))
    c1 = np.full((n, blocks), stream, np.uint64)
    c2 = c3 = np.zeros((n, blocks), np.uint64)
    m0, m1, s32 = np.uint64(_M0), np.uint64(_M1), np.uint64(32)
    for r in range(ROUNDS):
        p0, p1 = c0 * m0, c2 * m1  # < 2**64: exact
        c0, c1, c2, c3 = (p1 >> s32) ^ c1 ^ keys[:, r, 0:1], p1 & mask, (p0 >> s32) ^ c3 ^ keys[:, r, 1:2], p0 & mask
    return np.stack((c0, c1, c2, c3), axis=2)


def philox4x32(counter: tuple[Any, Any, Any, Any], key: tuple[Any, Any], rounds: int = ROUNDS) -> tuple[Any, ...]:
    """The Philox4x32 bijection: four 32-bit counter words and two key words (int64 tensors or
    ints holding 32-bit values, broadcast together) -> four 32-bit words.

    Example (a known-answer test of Random123, the reference implementation):
        >>> import torch
        >>> words = philox4x32(tuple(torch.tensor(0) for _ in range(4)), (torch.tensor(0), torch.tensor(0)))
        >>> [f"{int(w):08x}" for w in words]
        ['6627e8d5', 'e169c58d', 'bc57ac4c', '9b00dbd8']
    """
    k0, k1 = key
    round_keys = [((k0 + r * _W0) & _MASK32, (k1 + r * _W1) & _MASK32) for r in range(rounds)]
    return _rounds(counter, round_keys)


def _rounds(counter: tuple[Any, Any, Any, Any], round_keys: Sequence[tuple[Any, Any]]) -> tuple[Any, ...]:
    """The Philox4x32 rounds with the key schedule given (one (k0, k1) pair per round): twelve
    elementwise operations a round."""
    c0, c1, c2, c3 = counter
    for k0, k1 in round_keys:
        hi0, lo0 = _mulhilo(_M0, c0)
        hi1, lo1 = _mulhilo(_M1, c2)
        c0, c1, c2, c3 = hi1 ^ c1 ^ k0, lo1, hi0 ^ c3 ^ k1, lo0
    return c0, c1, c2, c3


def _per_sample(shape: Sequence[int] | int) -> tuple[int, ...]:
    return (int(shape),) if isinstance(shape, (int, np.integer)) else tuple(int(s) for s in shape)


def uniform(seeds: Sequence[int], shape: Sequence[int] | int, device: Any = "cpu", stream: int = 0) -> Any:
    """Uniform floats in [0, 1) with 24 random bits each: float32 tensor ``(len(seeds), *shape)``,
    exactly the same on every device."""
    torch = _torch()
    shape = _per_sample(shape)
    size = int(np.prod(shape)) if shape else 1
    bits = random_bits(seeds, size, device, stream)
    return ((bits >> 8).to(torch.float32) * (1.0 / 2**24)).reshape(len(seeds), *shape)


def integers(seeds: Sequence[int], low: int, high: int, shape: Sequence[int] | int = (), device: Any = "cpu",
             stream: int = 0) -> Any:
    """Integers in ``[low, high)``: int64 tensor ``(len(seeds), *shape)``, the same on every device
    (Lemire's multiply-shift on 32 random bits; the bias is below ``(high - low) / 2**32``)."""
    if high <= low or high - low > 2**31:
        raise ValueError(f"integers needs low < high and high - low <= 2**31, not [{low}, {high}).")
    shape = _per_sample(shape)
    size = int(np.prod(shape)) if shape else 1
    bits = random_bits(seeds, size, device, stream)
    return (low + ((bits * (high - low)) >> 32)).reshape(len(seeds), *shape)


def normal(seeds: Sequence[int], shape: Sequence[int] | int, device: Any = "cpu", dtype: Any = None,
           stream: int = 0) -> Any:
    """Standard normal noise: tensor ``(len(seeds), *shape)`` (float32 unless ``dtype``), drawn with
    Box-Muller from pairs of 24-bit uniforms (the first in (0, 1], so the logarithm is finite)."""
    torch = _torch()
    shape = _per_sample(shape)
    size = int(np.prod(shape)) if shape else 1
    pairs = -(-size // 2)
    bits = random_bits(seeds, 2 * pairs, device, stream)
    u1 = ((bits[:, 0::2] >> 8) + 1).to(torch.float32) * (1.0 / 2**24)  # (0, 1]
    u2 = (bits[:, 1::2] >> 8).to(torch.float32) * (2 * np.pi / 2**24)  # [0, 2 pi)
    radius = torch.sqrt(-2.0 * torch.log(u1))
    z = torch.stack((radius * torch.cos(u2), radius * torch.sin(u2)), dim=2).reshape(len(seeds), 2 * pairs)
    z = z[:, :size].reshape(len(seeds), *shape)
    return z if dtype is None else z.to(dtype)
