"""The execution paths that speed matters on: grad modes, mixed precision, host copies, pinned loaders.

The logic runs on the CPU (autocast requests are recorded, not executed); the tests marked
``needs_cuda`` run it for real and are skipped where no CUDA GPU is available. Timings belong in
``benchmarks/``, never here.
"""

from __future__ import annotations

import contextlib
import json

import numpy as np
import pytest
from conftest import entry, write_catalog, write_package

from medhub import Generators
from medhub.errors import PackageError

torch = pytest.importorskip("torch")

needs_cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU (torch.cuda.is_available() "
                                                                      "is False here)")

IMG = {"name": "image", "kind": "image", "shape": [4, 4], "dtype": "uint8", "range": [0, 255]}

# records the torch state each call of sample()/generate() ran under; returns torch tensors
RECORDER = """
import numpy as np
import torch
STATES = []
{flag}

def _state():
    return {{"inference": torch.is_inference_mode_enabled(), "grad": torch.is_grad_enabled()}}

def load(weights_path, device):
    torch.manual_seed(0)
    return torch.nn.Linear(4, 16).to(device)

def sample(model, seeds, **inputs):
    STATES.append(_state())
    x = torch.stack([torch.randn(4, generator=torch.Generator().manual_seed(int(s))) for s in seeds])
    x = x.to(next(model.parameters()).device)
    y = torch.sigmoid(model(x)).float().reshape(-1, 4, 4)
    return {{"image": (y * 255).round().to(torch.uint8)}}

def generate(model_file, num_samples, output_path, save_images, **kwargs):
    STATES.append(_state())
    return [np.zeros((4, 4), np.uint8) for _ in range(num_samples)]
"""


def _generators(tmp_path, flag: str = "", interface: str = "medhub/1", **generate_method) -> Generators:
    write_package(tmp_path, "rec", RECORDER.format(flag=flag))
    e = entry("rec", [IMG], interface=interface, deps=["torch", "numpy"], weights="none.bin")
    e["execution"]["generate_method"].update(generate_method)
    return Generators(config_file=write_catalog(tmp_path / "c.json", {"00001_REC": e}))


def _states(g: Generators) -> list[dict]:
    return g.get_model_executor(1).prepare().STATES


def test_native_package_samples_under_inference_mode(tmp_path):
    g = _generators(tmp_path)
    out = g.generate(1, num_samples=3, save_images=False, seed=0, device="cpu")
    assert [o.dtype for o in out] == [np.uint8] * 3  # torch tensors returned by sample() arrive as numpy
    assert _states(g) == [{"inference": True, "grad": False}]
    assert not torch.is_inference_mode_enabled()  # and nothing leaks out


def test_medigan_package_runs_under_no_grad(tmp_path):
    g = _generators(tmp_path, interface="medigan")
    g.generate(1, num_samples=2, save_images=False, seed=0, device="cpu")
    assert _states(g) == [{"inference": False, "grad": False}]


def test_inference_mode_can_be_declined_by_the_catalog(tmp_path):
    g = _generators(tmp_path, inference_mode=False)
    g.generate(1, num_samples=2, save_images=False, seed=0, device="cpu")
    assert _states(g) == [{"inference": False, "grad": True}]


def test_outputs_identical_with_and_without_inference_mode(tmp_path):
    a = _generators(tmp_path / "a").generate(1, num_samples=5, save_images=False, seed=3, device="cpu")
    b = _generators(tmp_path / "b", inference_mode=False).generate(1, num_samples=5, save_images=False, seed=3,
                                                                   device="cpu")
    assert all(np.array_equal(x, y) for x, y in zip(a, b))


@pytest.mark.parametrize(("flag", "declared", "device", "expected"), [
    ("", None, "cuda", None),                      # nothing declared: full precision
    ("SUPPORTS_AMP = True", None, "cuda", "float16"),
    ("SUPPORTS_AMP = 'bfloat16'", None, "cuda:1", "bfloat16"),
    ("", "bfloat16", "cuda", "bfloat16"),           # the catalog's word
    ("", True, "cuda", "float16"),
    ("SUPPORTS_AMP = True", False, "cuda", None),   # the catalog wins over the package
    ("SUPPORTS_AMP = True", None, "cpu", None),     # never on the CPU
    ("SUPPORTS_AMP = True", None, "mps", None),
])
def test_autocast_only_where_allowed(tmp_path, flag, declared, device, expected):
    extra = {} if declared is None else {"mixed_precision": declared}
    ex = _generators(tmp_path, flag, **extra).get_model_executor(1)
    got = ex.autocast_dtype(device)
    assert got == (None if expected is None else getattr(torch, expected))


def test_mixed_precision_switched_off_by_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("MEDHUB_MIXED_PRECISION", "0")
    assert _generators(tmp_path, "SUPPORTS_AMP = True").get_model_executor(1).autocast_dtype("cuda") is None


def test_bad_mixed_precision_value_is_a_package_error(tmp_path):
    ex = _generators(tmp_path, "SUPPORTS_AMP = 'int8'").get_model_executor(1)
    with pytest.raises(PackageError, match="mixed_precision"):
        ex.autocast_dtype("cuda")


def test_bad_mixed_precision_in_the_catalog_is_refused_with_the_catalog(tmp_path):
    from medhub.errors import CatalogError

    with pytest.raises(CatalogError, match="mixed_precision"):
        _generators(tmp_path, mixed_precision="int8")


CONV = """
import numpy as np
import torch
LAYOUTS = []

def load(weights_path, device):
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.ConvTranspose2d(4, 3, 4, 2, 1), torch.nn.Conv2d(3, 1, 3, 1, 1)).to(device)

def sample(model, seeds, **inputs):
    LAYOUTS.append(model[0].weight.is_contiguous(memory_format=torch.channels_last))
    z = torch.stack([torch.randn(4, 2, 2, generator=torch.Generator().manual_seed(int(s))) for s in seeds])
    y = torch.sigmoid(model(z))[:, 0]
    return {"image": (y * 255).round().to(torch.uint8).contiguous()}
"""


def _conv(tmp_path, memory_format=None, source: str = CONV) -> Generators:
    write_package(tmp_path, "conv", source)
    e = entry("conv", [IMG], deps=["torch", "numpy"], weights="none.bin")
    if memory_format is not None:
        e["execution"]["generate_method"]["memory_format"] = memory_format
    return Generators(config_file=write_catalog(tmp_path / "c.json", {"00001_CONV": e}))


@pytest.mark.parametrize(("declared", "expected"), [(None, False), ("contiguous", False), ("channels_last", True)])
def test_weights_are_channels_last_only_where_the_catalog_declares_it(tmp_path, declared, expected):
    g = _conv(tmp_path, declared)
    run = g.generate(1, num_samples=3, output_path=tmp_path / "out", seed=0, device="cpu")
    assert g.get_model_executor(1).prepare().LAYOUTS == [expected]
    provenance = json.loads(run.provenance_path.read_text())
    assert provenance["memory_format"] == ("channels_last" if expected else "contiguous")


def test_channels_last_switched_off_by_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("MEDHUB_MEMORY_FORMAT", "contiguous")
    g = _conv(tmp_path, "channels_last")
    g.generate(1, num_samples=2, save_images=False, seed=0, device="cpu")
    assert g.get_model_executor(1).prepare().LAYOUTS == [False]


def test_channels_last_outputs_are_the_same_at_any_batch_size(tmp_path):
    g = _conv(tmp_path, "channels_last")
    whole = g.generate(1, num_samples=6, save_images=False, seed=4, device="cpu", batch_size=6)
    single = g.generate(1, num_samples=6, save_images=False, seed=4, device="cpu", batch_size=1)
    assert all(np.array_equal(a, b) for a, b in zip(whole, single))


def test_channels_last_needs_a_torch_module(tmp_path):
    numpy_model = CONV.replace("return torch.nn.Sequential(", "return {'not': 'a module'} or (").replace(
        "LAYOUTS.append(model[0].weight.is_contiguous(memory_format=torch.channels_last))", "")
    g = _conv(tmp_path, "channels_last", numpy_model)
    with pytest.raises(PackageError, match="torch.nn.Module"):
        g.generate(1, num_samples=1, save_images=False, seed=0, device="cpu")


def test_unknown_memory_format_is_refused_with_the_catalog(tmp_path):
    from medhub.errors import CatalogError

    with pytest.raises(CatalogError, match="memory_format"):
        _conv(tmp_path, "nhwc")


def test_shipped_dcgan_runs_channels_last():
    ex = Generators().get_model_executor(101)
    assert ex.memory_format() == "channels_last"
    assert ex.load("cpu").net[0].weight.is_contiguous(memory_format=torch.channels_last)


class _Recorder:
    def __init__(self) -> None:
        self.calls: list[tuple[str, object]] = []

    def __call__(self, device_type: str, dtype: object = None, **kwargs: object) -> contextlib.AbstractContextManager:
        self.calls.append((device_type, dtype))
        return contextlib.nullcontext()


@pytest.mark.parametrize(("flag", "device", "calls"), [
    ("SUPPORTS_AMP = True", "cuda", [("cuda", "float16")]),
    ("", "cuda", []),
    ("SUPPORTS_AMP = True", "cpu", []),
])
def test_sample_batch_requests_autocast_only_when_allowed(tmp_path, monkeypatch, flag, device, calls):
    # load() of the recorder package would move a Linear to CUDA: keep it on the CPU for this test
    g = _generators(tmp_path, flag)
    ex = g.get_model_executor(1)
    module = ex.prepare()
    monkeypatch.setattr(module, "load", lambda weights_path, device: torch.nn.Linear(4, 16))
    recorder = _Recorder()
    monkeypatch.setattr(torch, "autocast", recorder)
    import medhub.execution.executor as executor_module

    monkeypatch.setattr(executor_module, "resolve_device", lambda name, uses_torch: name)  # no CUDA needed
    ex.sample_batch([0, 1], seed=0, device=device)
    assert recorder.calls == [(d, getattr(torch, t)) for d, t in calls]


def test_loader_pins_memory_by_default_only_with_cuda(monkeypatch):
    from medhub.data import get_as_torch_dataloader

    assert get_as_torch_dataloader(101, num_samples=8, batch_size=4).pin_memory is torch.cuda.is_available()
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert get_as_torch_dataloader(101, num_samples=8, batch_size=4).pin_memory is True
    assert get_as_torch_dataloader(101, num_samples=8, batch_size=4, pin_memory=False).pin_memory is False


def test_cpu_tensors_are_shared_with_numpy_without_copy():
    from medhub.execution.context import to_host as _to_host

    t = torch.arange(6, dtype=torch.uint8).reshape(2, 3)
    out = _to_host({"image": t, "label": np.array([1, 2])})
    assert isinstance(out["image"], np.ndarray) and np.shares_memory(out["image"], t.numpy())
    assert out["label"].tolist() == [1, 2]


# ------------------------------------------------------------------------------------------- GPU
@needs_cuda
def test_cuda_tensors_come_back_through_pinned_non_blocking_copies():
    from medhub.execution.context import to_host as _to_host

    t = torch.arange(4 * 16, device="cuda", dtype=torch.float32).reshape(4, 16)
    out = _to_host({"image": t, "mask": (t > 10).to(torch.uint8)})
    assert np.array_equal(out["image"], t.cpu().numpy()) and out["mask"].dtype == np.uint8


@needs_cuda
def test_shipped_dcgan_on_cuda_matches_cpu_closely():
    g = Generators()
    gpu = g.generate(101, num_samples=40, save_images=False, seed=0, device="cuda")
    cpu = g.generate(101, num_samples=40, save_images=False, seed=0, device="cpu")
    assert all(a.dtype == np.uint8 and a.shape == (64, 64) for a in gpu)
    diff = np.abs(np.stack(gpu).astype(int) - np.stack(cpu).astype(int))
    assert diff.mean() < 1.0 and diff.max() <= 32  # float differences across devices, not different samples


@needs_cuda
def test_autocast_runs_on_cuda_where_allowed(tmp_path):
    g = _generators(tmp_path, "SUPPORTS_AMP = True")
    ex = g.get_model_executor(1)
    module = ex.prepare()
    seen = []
    original = module.sample

    def sample(model, seeds, **inputs):
        seen.append((torch.is_autocast_enabled("cuda"), torch.get_autocast_dtype("cuda")))
        return original(model, seeds, **inputs)

    module.sample = sample
    out = g.generate(1, num_samples=3, save_images=False, seed=0, device="cuda")
    assert len(out) == 3 and seen == [(True, torch.float16)]


@needs_cuda
def test_cuda_loader_batches_are_pinned():
    from medhub.data import get_as_torch_dataloader

    batch = next(iter(get_as_torch_dataloader(101, num_samples=8, batch_size=4, device="cuda")))
    assert batch["sample"].is_pinned()
    assert batch["sample"].to("cuda", non_blocking=True).shape == (4, 1, 64, 64)


@pytest.mark.parametrize(("shape", "dtype"), [((64, 64), np.uint8), ((17, 9), np.uint16), ((5, 7, 3), np.uint8),
                                              ((5, 7, 4), np.uint8), ((5, 7, 2), np.uint8), ((1, 1), np.uint8),
                                              ((3, 300), np.uint8)])
def test_png_encoder_round_trips_through_pillow(shape, dtype):
    import io

    from PIL import Image

    from medhub.outputs import encode_png

    a = np.random.default_rng(0).integers(0, np.iinfo(dtype).max + 1, shape, dtype=dtype)
    with Image.open(io.BytesIO(encode_png(a))) as img:
        img.load()  # checks every chunk's CRC and the zlib stream
        assert np.array_equal(np.asarray(img).astype(dtype), a)


def test_png_writer_falls_back_to_pillow_for_other_layouts(tmp_path):
    from PIL import Image

    from medhub.outputs import OutputSpec, encode_png, write_png

    with pytest.raises(ValueError, match="uint8"):
        encode_png(np.zeros((4, 4), np.float32))
    with pytest.raises(ValueError, match="uint16"):
        encode_png(np.zeros((4, 4, 3), np.uint16))
    spec = OutputSpec("image", "image", (4, 4), "uint8")
    write_png(tmp_path / "a.png", np.full((4, 4), 7, np.uint8), spec)
    assert np.asarray(Image.open(tmp_path / "a.png")).tolist() == [[7] * 4] * 4
    # 16-bit RGB: the plain encoder declines and Pillow decides, as before (it refuses the type)
    rgb16 = OutputSpec("image", "image", (4, 4, 3), "uint16", channels=3)
    with pytest.raises(TypeError):
        write_png(tmp_path / "b.png", np.zeros((4, 4, 3), np.uint16), rgb16)


def test_console_entry_point_exits_fast_after_generate_and_keeps_output(tmp_path):
    import subprocess
    import sys

    out = tmp_path / "run"
    done = subprocess.run([sys.executable, "-m", "medhub.cli", "generate", "101", "-n", "2", "-o", str(out),
                           "--seed", "0", "--no-progress", "--device", "cpu"], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("wrote 2 samples")  # flushed before the fast exit
    assert sorted(p.name for p in out.iterdir()) == ["000000_image.png", "000001_image.png", "manifest.csv",
                                                     "provenance.json"]
    bad = subprocess.run([sys.executable, "-m", "medhub.cli", "generate", "101", "-n", "0", "-o", str(tmp_path / "x")],
                         capture_output=True, text=True)
    assert bad.returncode == 2 and "num_samples" in bad.stderr
