"""What is specific to the shipped diffusion model 00106_DDPM_FUNDUS_RGB (DDIM steps, RGB output)."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import REPO, import_file

from medhub import Generators
from medhub.errors import GenerationError

MODEL_ID = "00106_DDPM_FUNDUS_RGB"
FOLDER = REPO / "models" / MODEL_ID


@pytest.fixture(scope="module")
def g() -> Generators:
    return Generators()


@pytest.fixture(scope="module")
def pkg():
    return import_file(FOLDER / "__init__.py", f"test_{MODEL_ID}")


def _run(g: Generators, n: int = 4, **kwargs) -> np.ndarray:
    return np.stack(g.generate(MODEL_ID, num_samples=n, save_images=False, seed=0, device="cpu", **kwargs))


def test_num_inference_steps_changes_output_reproducibly(g):
    three = _run(g, num_inference_steps=3)
    assert three.shape == (4, 64, 64, 3) and three.dtype == np.uint8
    assert np.array_equal(three, _run(g, num_inference_steps=3))
    two = _run(g, num_inference_steps=2)
    assert np.abs(three.astype(int) - two.astype(int)).mean() > 1


def test_fewer_steps_run_fewer_unet_calls(pkg):
    model = pkg.load(FOLDER / "weights.safetensors", "cpu")
    calls = []
    model.register_forward_hook(lambda module, args, out: calls.append(args[0].shape[0]))
    for steps in (1, 2, 3):
        calls.clear()
        pkg.sample(model, [1, 2, 3], num_inference_steps=steps)
        assert calls == [pkg.CHUNK] * steps  # one padded block of 32 per DDIM step
    assert pkg.ddim_timesteps(25)[0] == 999 and len(pkg.ddim_timesteps(25)) == 25
    assert pkg.ddim_timesteps(1000) == list(range(999, -1, -1))


@pytest.mark.parametrize("bad", [0, -3, 1001, 2.5, "ten", None, True])
def test_bad_num_inference_steps_is_a_clear_error(g, bad):
    with pytest.raises(GenerationError, match=r"num_inference_steps must be an integer in 1\.\.1000"):
        g.generate(MODEL_ID, num_samples=1, save_images=False, seed=0, num_inference_steps=bad)


def test_output_is_reddish_like_a_fundus(g):
    images = _run(g, n=8, num_inference_steps=3).astype(float)
    red, green, blue = (images[..., c].mean() for c in range(3))
    assert red > green > blue
    assert red - blue > 40
    assert images.std(axis=(1, 2)).mean() > 5, "samples look flat"


def test_medigan_generate_accepts_num_inference_steps(pkg):
    out = pkg.generate(str(FOLDER / "weights.safetensors"), num_samples=2, save_images=False, seed=3,
                       num_inference_steps=2)
    assert len(out) == 2 and out[0].shape == (64, 64, 3) and out[0].dtype == np.uint8
    again = pkg.generate(str(FOLDER / "weights.safetensors"), num_samples=2, save_images=False, seed=3,
                         num_inference_steps=2)
    assert all(np.array_equal(a, b) for a, b in zip(out, again))
    with pytest.raises(ValueError, match="num_inference_steps"):
        pkg.generate(str(FOLDER / "weights.safetensors"), num_samples=1, save_images=False, num_inference_steps=0)
