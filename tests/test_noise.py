"""medhub.noise: seeded noise drawn for a whole batch at once (issue 24, point 1)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from medhub.noise import integers, normal, philox4x32, random_bits, uniform

CUDA = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")


@pytest.mark.parametrize("counter,key,expected", [
    ((0, 0, 0, 0), (0, 0), (0x6627E8D5, 0xE169C58D, 0xBC57AC4C, 0x9B00DBD8)),
    ((0xFFFFFFFF,) * 4, (0xFFFFFFFF,) * 2, (0x408F276D, 0x41C83B0E, 0xA20BC7C6, 0x6D5451FD)),
    ((0x243F6A88, 0x85A308D3, 0x13198A2E, 0x03707344), (0xA4093822, 0x299F31D0),
     (0xD16CFE09, 0x94FDCCEB, 0x5001E420, 0x24126EA1)),
])
def test_philox_known_answers(counter, key, expected):
    """Random123's known-answer tests of Philox4x32-10."""
    words = philox4x32(tuple(torch.tensor(c) for c in counter), tuple(torch.tensor(k) for k in key))
    assert tuple(int(w) for w in words) == expected


def test_sample_noise_depends_only_on_its_seed():
    seeds = [5, 2**63 - 1, 0, 123456789012345]
    batch = normal(seeds, (3, 7))
    for i, seed in enumerate(seeds):
        assert torch.equal(normal([seed], (3, 7))[0], batch[i])
        assert torch.equal(normal([seed] * 3, (3, 7))[2], batch[i])  # position in the batch does not matter
    assert not torch.equal(batch[0], batch[2])
    assert torch.equal(uniform(seeds[::-1], 5)[0], uniform(seeds, 5)[3])
    assert torch.equal(integers(seeds, 0, 10, (4,))[1], integers([seeds[1]], 0, 10, (4,))[0])


def test_longer_noise_extends_shorter_noise():
    """Word j of a seed does not depend on how many words are drawn."""
    assert torch.equal(random_bits([9], 10)[:, :6], random_bits([9], 6))


def test_distributions():
    seeds = list(range(2000))
    z = normal(seeds, 50).flatten().double()
    assert abs(z.mean()) < 0.01 and abs(z.std() - 1) < 0.01
    assert abs(((z.abs() < 1.96).double().mean()) - 0.95) < 0.005
    u = uniform(seeds, 50)
    assert u.min() >= 0 and u.max() < 1 and abs(u.double().mean() - 0.5) < 0.005
    k = integers(seeds, -3, 4, 50)
    counts = np.bincount((k + 3).flatten().numpy(), minlength=7) / k.numel()
    assert k.min() == -3 and k.max() == 3 and np.allclose(counts, 1 / 7, atol=0.005)
    bits = random_bits(seeds, 8)
    assert 0 <= int(bits.min()) and int(bits.max()) < 2**32


def test_streams_are_independent_draws_of_one_seed():
    seeds = [3, 4, 5]
    assert torch.equal(normal(seeds, 8, stream=0), normal(seeds, 8))
    a, b = random_bits(seeds, 64, stream=1), random_bits(seeds, 64, stream=2)
    assert not torch.equal(a, b) and not torch.equal(a, random_bits(seeds, 64))
    assert torch.equal(integers([4], 0, 3, (5,), stream=7)[0], integers(seeds, 0, 3, (5,), stream=7)[1])
    # correlation between streams of the same seeds is what independent draws give
    x, y = normal(list(range(500)), 40, stream=0).flatten(), normal(list(range(500)), 40, stream=1).flatten()
    assert abs(float(torch.corrcoef(torch.stack([x, y]))[0, 1])) < 0.02
    for bad in (-1, 2**32, 1.5, True, "1"):
        with pytest.raises(ValueError, match="stream must be an integer"):
            uniform([1], 2, stream=bad)


def test_shapes_and_dtypes():
    assert normal([1, 2], ()).shape == (2,)
    assert normal([1], (2, 3, 4), dtype=torch.float16).dtype == torch.float16
    assert normal([1], 5).shape == (1, 5) and uniform([1], (2, 2)).dtype == torch.float32
    with pytest.raises(ValueError, match="low < high"):
        integers([1], 3, 3)


@CUDA
def test_bits_and_uniforms_equal_on_cpu_and_cuda():
    seeds = list(range(0, 10**6, 997))
    assert torch.equal(random_bits(seeds, 33, "cuda").cpu(), random_bits(seeds, 33, "cpu"))
    assert torch.equal(uniform(seeds, (4, 5), "cuda").cpu(), uniform(seeds, (4, 5), "cpu"))
    assert torch.equal(integers(seeds, 0, 7, 9, "cuda").cpu(), integers(seeds, 0, 7, 9, "cpu"))
    gpu, cpu = normal(seeds, 100, "cuda").cpu(), normal(seeds, 100, "cpu")
    assert torch.allclose(gpu, cpu, rtol=0, atol=1e-5)
    assert torch.equal(random_bits(seeds, 9, "cuda", stream=3).cpu(), random_bits(seeds, 9, "cpu", stream=3))


def test_numpy_and_tensor_implementations_give_the_same_bits():
    """The CPU computes the bits with exact uint64 numpy arithmetic, other devices with int64 tensor
    operations (whose one wide product wraps modulo 2**64): the tensor path, run here on the CPU,
    agrees bit for bit, for extreme seeds and streams."""
    from medhub import noise

    rng = np.random.default_rng(0)
    seeds = [0, 1, 2**64 - 1, 2**63, 2**63 - 1, 2**32 - 1, 2**32, *rng.integers(0, 2**63, 20).tolist()]
    for stream in (0, 5, 2**31, 2**32 - 1):
        exact = noise._bits_numpy(seeds, 10, stream)
        tensor = noise._bits_tensor(seeds, 10, stream, "cpu")
        assert torch.equal(tensor, torch.from_numpy(exact.astype(np.int64))), stream
        assert torch.equal(noise.random_bits(seeds, 37, "cpu", stream), tensor.reshape(len(seeds), 40)[:, :37])


def test_tensor_path_launches_few_kernels():
    """The tensor path (what runs on a GPU) is about a dozen elementwise operations per round, not
    thirty: each is a kernel launch there, and the launches are what a batch of noise costs."""
    from torch.utils._python_dispatch import TorchDispatchMode

    from medhub import noise

    VIEWS = {"slice", "select", "expand", "view", "alias", "unsqueeze", "as_strided"}

    class Count(TorchDispatchMode):
        calls = 0

        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            if func.overloadpacket.__name__ not in VIEWS:  # views launch no kernel
                Count.calls += 1
            return func(*args, **(kwargs or {}))

    with Count():
        noise._bits_tensor(list(range(64)), 25, 0, "cpu")
    assert Count.calls <= 12 * noise.ROUNDS + 20, Count.calls


# Known answers: medhub.noise is frozen (docs/model-package.md; issue 33, point 5). These numbers were
# drawn once and must never change; a different algorithm gets a new name instead.
KAT_SEEDS = [0, 1, 2**63 - 1]


def test_known_answers_uniform_integers_and_bits():
    """Exact functions of the Philox bits: equal to the last bit on every device and release."""
    assert (uniform(KAT_SEEDS, 3).double() * 2**24).long().tolist() == [
        [6694888, 14772677, 12343212], [14936070, 15010318, 9826850], [3336015, 9694188, 16313459]]
    assert (uniform([42], 4, stream=1).double() * 2**24).long().tolist() == [[4382904, 8240989, 3139385, 6991619]]
    assert integers(KAT_SEEDS, 0, 1000, (3,)).tolist() == [[399, 880, 735], [890, 894, 585], [198, 577, 972]]
    assert integers([42, 43], -5, 6, (4,), stream=3).tolist() == [[2, 3, 1, 0], [1, 5, -4, 1]]
    assert random_bits([42], 4).tolist() == [[2632642643, 2012563771, 314527917, 1463989207]]


def test_known_answers_normal():
    """Box-Muller of the same bits; the CPU's log/cos/sin may round differently on another machine, so the
    comparison allows a few units in the last place (1e-6), far below any change of algorithm."""
    expected = torch.tensor([
        [0.9911377429962158, -0.9246624112129211, -0.6176090240478516, -0.48206838965415955],
        [0.38040071725845337, -0.29627782106399536, -0.24923312664031982, -1.0038373470306396],
        [-1.586754560470581, -0.8442149758338928, 0.22378860414028168, 0.077337846159935]])
    torch.testing.assert_close(normal(KAT_SEEDS, 4, device="cpu"), expected, rtol=0, atol=1e-6)
    torch.testing.assert_close(normal([7], 3, device="cpu", stream=2),
                               torch.tensor([[1.4328105449676514, 0.4529358446598053, -0.055029451847076416]]),
                               rtol=0, atol=1e-6)
