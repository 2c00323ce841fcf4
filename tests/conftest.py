"""Shared fixtures: tiny model packages and catalogs that the tests write themselves."""

from __future__ import annotations

import importlib.util
import json
import sys
import textwrap
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[1]


def import_file(path: Path, name: str) -> ModuleType:
    """The Python file ``path`` imported as module ``name`` (a script of tools/ or benchmarks/), or, for
    a package's ``__init__.py``, that package imported from its folder, as medigan imports one."""
    path = Path(path)
    folder = [str(path.parent)] if path.name == "__init__.py" else None
    spec = importlib.util.spec_from_file_location(name, path, submodule_search_locations=folder)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # a package's relative imports find it there
    spec.loader.exec_module(module)
    return module

#: medigan-format test packages: files the tests zip and serve, not modules of the test suite.
collect_ignore = ["medigan_packages"]

NUMPY_TOY = """
import numpy as np
LOADS = []

def load(weights_path, device):
    LOADS.append(device)
    return {"offset": 0}

def sample(model, seeds, **inputs):
    imgs = np.stack([np.random.default_rng(s).integers(0, 256, (8, 8), dtype=np.uint8) for s in seeds])
    labels = np.array([s % 3 for s in seeds], dtype=np.int64)
    return {"image": imgs, "label": labels}
"""

TORCH_TOY = """
import numpy as np
import torch

def load(weights_path, device):
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Linear(16, 64), torch.nn.Tanh(), torch.nn.Linear(64, 100), torch.nn.Sigmoid())
    return net.to(device).eval()

def sample(model, seeds, **inputs):
    z = torch.stack([torch.randn(16, generator=torch.Generator().manual_seed(int(s))) for s in seeds])
    with torch.inference_mode():
        x = model(z.to(next(model.parameters()).device)).cpu()
    img = (x * 65535).round().to(torch.int64).numpy().astype(np.uint16).reshape(-1, 10, 10)
    return {"image": img, "mask": (img > 32767).astype(np.uint8) * 255}
"""

MEDIGAN_TOY = """
import numpy as np

def generate(model_file, num_samples, output_path, save_images, size=6, **kwargs):
    assert model_file.endswith("toy.bin"), model_file
    out = []
    for _ in range(num_samples):
        img = np.random.randint(0, 256, (size, size), dtype=np.uint8)
        out.append((img, (img > 127).astype(np.uint8) * 255, int(img[0, 0] % 2)))
    return out
"""

RAISES = """
import numpy as np
CALLS = []

def load(weights_path, device):
    return None

def sample(model, seeds, **inputs):
    CALLS.append(len(seeds))
    if len(CALLS) >= 2:
        raise RuntimeError("boom in batch 2")
    return {"image": np.zeros((len(seeds), 4, 4), np.uint8)}
"""

BAD_SPEC = """
import numpy as np

def load(weights_path, device):
    return None

def sample(model, seeds, **inputs):
    return {"image": np.zeros((len(seeds), 3, 32, 32), np.uint8)}
"""

VOLUME = """
import numpy as np

def load(weights_path, device):
    return None

def sample(model, seeds, **inputs):
    vols = np.stack([np.random.default_rng(s).random((6, 7, 5), dtype=np.float32) for s in seeds])
    return {"volume": vols, "mask": (vols > 0.5).astype(np.uint8)}
"""


def entry(link: str, outputs: list[dict] | None = None, interface: str = "medhub/1", deps: list[str] | None = None,
          selection: dict | None = None, **execution: Any) -> dict:
    ex: dict[str, Any] = {"package_link": link, "interface": interface, "dependencies": deps or ["numpy"],
                          "generate_method": {"name": "generate"}}
    if outputs is not None:
        ex["outputs"] = outputs
    ex.update(execution)
    return {"execution": ex, "selection": selection or {"modality": ["toy"]}, "description": {"title": link}}


IMG8 = {"name": "image", "kind": "image", "shape": [8, 8], "dtype": "uint8", "range": [0, 255]}
LABEL = {"name": "label", "kind": "label", "shape": [], "dtype": "int64", "values": [0, 1, 2]}


def write_package(root: Path, name: str, source: str, extra: dict[str, bytes] | None = None) -> Path:
    folder = root / name
    folder.mkdir(parents=True)
    (folder / "__init__.py").write_text(textwrap.dedent(source))
    for rel, data in (extra or {}).items():
        (folder / rel).write_bytes(data)
    return folder


def write_catalog(path: Path, models: dict[str, dict], version: str = "1.0.0") -> Path:
    path.write_text(json.dumps({"schema_version": 1, "catalog_version": version, "models": models}))
    return path


@pytest.fixture
def toy_catalog(tmp_path: Path) -> Path:
    """A catalog with one package of each kind the executor must handle."""
    pk = tmp_path / "packages"
    write_package(pk, "numpy_toy", NUMPY_TOY)
    write_package(pk, "torch_toy", TORCH_TOY)
    write_package(pk, "medigan_toy", MEDIGAN_TOY, {"toy.bin": b"weights"})
    write_package(pk, "raises", RAISES)
    write_package(pk, "bad_spec", BAD_SPEC)
    write_package(pk, "volume", VOLUME)
    models = {
        "00900_NUMPY_TOY": entry("packages/numpy_toy", [IMG8, LABEL], selection={"modality": ["toy"], "organ": ["brain"]}),
        "00901_TORCH_TOY": entry("packages/torch_toy", [
            {"name": "image", "kind": "image", "shape": [10, 10], "dtype": "uint16"},
            {"name": "mask", "kind": "mask", "shape": [10, 10], "dtype": "uint8", "values": [0, 255]},
        ], deps=["torch", "numpy"]),
        "00902_MEDIGAN_TOY": entry("packages/medigan_toy", [
            {"name": "image", "kind": "image", "shape": [6, 6], "dtype": "uint8"},
            {"name": "mask", "kind": "mask", "shape": [6, 6], "dtype": "uint8"},
            {"name": "label", "kind": "label", "shape": [], "dtype": "int64"},
        ], interface="medigan", model_name="toy", extension=".bin"),
        "00903_RAISES": entry("packages/raises", [{"name": "image", "kind": "image", "shape": [4, 4], "dtype": "uint8"}]),
        "00904_BAD_SPEC": entry("packages/bad_spec", [{"name": "image", "kind": "image", "shape": [32, 32], "dtype": "uint8"}]),
        "00905_MISSING_DEP": entry("packages/numpy_toy", [IMG8, LABEL], deps=["numpy", "medhub-no-such-dist>=1.0"]),
        "00906_VOLUME": entry("packages/volume", [
            {"name": "volume", "kind": "volume", "shape": [6, 7, 5], "dtype": "float32", "range": [0, 1], "spacing": [1.5, 1.5, 2.0]},
            {"name": "mask", "kind": "mask", "shape": [6, 7, 5], "dtype": "uint8", "format": "nifti"},
        ]),
        "00907_REMOTE": entry("https://example.invalid/00907.zip", [IMG8], interface="medigan"),
    }
    return write_catalog(tmp_path / "catalog.json", models)


@pytest.fixture(autouse=True)
def _isolated_home(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Every test gets its own MEDHUB_HOME and no MEDHUB_CONFIG / MEDHUB_OFFLINE from the caller."""
    home = tmp_path_factory.mktemp("medhub_home")
    monkeypatch.setenv("MEDHUB_HOME", str(home))
    for var in ("MEDHUB_CONFIG", "MEDHUB_OFFLINE", "MEDHUB_CATALOG_URL"):
        monkeypatch.delenv(var, raising=False)
    return home


@pytest.fixture
def server():
    """A loopback HTTP server (:class:`fake_http.Server`), stopped after the test."""
    from fake_http import Server

    srv = Server()
    yield srv
    srv.stop()


@pytest.fixture
def fast_downloads(monkeypatch: pytest.MonkeyPatch) -> None:
    """Downloads retry once, after 50 ms (tests of faults need not wait for the real backoff)."""
    monkeypatch.setenv("MEDHUB_DOWNLOAD_BACKOFF", "0.05")
    monkeypatch.setenv("MEDHUB_DOWNLOAD_RETRIES", "1")
