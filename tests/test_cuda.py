"""On a machine with a CUDA device: every shipped model, the DataLoader and mixed precision on the
GPU (issue 24, point 4). Skipped cleanly elsewhere; the noise helper's CPU == CUDA test is in
tests/test_noise.py."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")

from medhub import Generators  # noqa: E402
from medhub.verification import CROSS_DEVICE_GREY_LEVELS  # noqa: E402  (the bound `medhub verify` allows)

SHIPPED = ["00101_DCGAN_BRAIN_MRI_T1", "00102_WGANGP_HEAD_CT", "00103_CDCGAN_BRAIN_MRI_TISSUE",
           "00104_PIX2PIX_BRAIN_SEG_TO_T1", "00105_CYCLEGAN_HEAD_MRI_T1_CT", "00106_DDPM_FUNDUS_RGB",
           "00107_ATLAS3D_BRAIN_MRI_T1_SEG"]


def _arrays(samples):
    return [np.asarray(a) for s in samples for a in (s if isinstance(s, tuple) else (s,))]


@pytest.mark.parametrize("model_id", SHIPPED)
def test_every_shipped_model_runs_on_cuda_close_to_the_cpu(model_id):
    g = Generators()
    n = 2 if model_id.startswith(("00106", "00107")) else 8
    kwargs = {"num_inference_steps": 5} if model_id.startswith("00106") else {}
    gpu = g.generate(model_id, num_samples=n, save_images=False, seed=3, device="cuda", **kwargs)
    cpu = g.generate(model_id, num_samples=n, save_images=False, seed=3, device="cpu", **kwargs)
    again = g.generate(model_id, num_samples=n, save_images=False, seed=3, device="cuda", **kwargs)
    assert all(np.array_equal(a, b) for a, b in zip(_arrays(gpu), _arrays(again)))  # reproducible on the GPU
    for a, b in zip(_arrays(gpu), _arrays(cpu)):
        assert a.shape == b.shape and a.dtype == b.dtype
        if a.dtype.kind in "iu" and a.dtype != np.bool_:
            assert np.abs(a.astype(np.int64) - b.astype(np.int64)).max() <= max(CROSS_DEVICE_GREY_LEVELS, 1) * (
                257 if a.dtype == np.uint16 else 1)


def test_dataloader_on_cuda_matches_generate_on_cuda():
    g = Generators()
    loader = g.get_as_torch_dataloader(101, num_samples=8, batch_size=4, device="cuda", seed=0)
    got = torch.cat([b["sample"] for b in loader])
    expected = g.generate(101, num_samples=8, save_images=False, seed=0, device="cuda")
    assert torch.equal(got, torch.from_numpy(np.stack(expected)).float().div(255)[:, None])


def test_mixed_precision_on_cuda(monkeypatch):
    g = Generators()
    executor = g.get_model_executor(101)
    executor.execution_config = dict(executor.execution_config,
                                     generate_method={**executor.execution_config["generate_method"],
                                                      "mixed_precision": "float16"})
    executor._amp.clear()
    assert executor.autocast_dtype("cuda") == torch.float16
    images = g.generate(101, num_samples=4, save_images=False, seed=0, device="cuda")
    assert images[0].shape == (64, 64) and images[0].dtype == np.uint8
    monkeypatch.setenv("MEDHUB_MIXED_PRECISION", "0")
    executor._amp.clear()
    assert executor.autocast_dtype("cuda") is None


def test_verify_a_cuda_sample_on_cuda_and_on_the_cpu_within_the_tolerance(tmp_path):
    from medhub import verify

    g = Generators()
    g.generate(101, num_samples=4, output_path=tmp_path / "run", seed=0, device="cuda")
    path = tmp_path / "run" / "000003_image.png"
    assert verify(path, generators=g).status == "identical"  # the recorded kind of device: cuda
    on_cpu = verify(path, device="cpu", generators=g)
    assert on_cpu.ok and "made on cuda, regenerated on cpu" in on_cpu.reason
