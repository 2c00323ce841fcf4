"""medhub.package_kit: the code the shipped packages share instead of copying it (issue 33, point 4)."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import REPO, import_file

from medhub import package_kit as kit

torch = pytest.importorskip("torch")


def test_run_in_blocks_pads_the_last_block_and_keeps_the_real_rows():
    calls = []

    def network(z, c):
        calls.append((z.shape[0], z[-1].tolist(), c[-1].item()))
        return z * 2 + c[:, None]

    z, c = torch.arange(10.0).reshape(5, 2), torch.tensor([1, 2, 3, 4, 5])
    out = kit.run_in_blocks(network, z, c, block=4, device="cpu")
    assert torch.equal(out, z * 2 + c[:, None]) and not out.requires_grad
    assert calls == [(4, [6.0, 7.0], 4), (4, [0.0, 0.0], 0)]  # always 4 rows; zeros after the real ones
    calls.clear()
    kit.run_in_blocks(network, z, c, block=4, device="cpu", pad="edge")
    assert calls[-1] == (4, [8.0, 9.0], 5)  # copies of the last real row
    with pytest.raises(ValueError, match="pad"):
        kit.run_in_blocks(network, z, c, block=4, device="cpu", pad="reflect")


def test_to_uint8_gray_and_rgb():
    x = torch.tensor([-2.0, -1.0, 0.0, 0.5, 1.0, 3.0]).reshape(1, 1, 2, 3)
    assert kit.to_uint8(x).tolist() == [[[0, 0, 128], [191, 255, 255]]]
    rgb = kit.to_uint8(torch.zeros(2, 3, 4, 5))
    assert rgb.shape == (2, 4, 5, 3) and rgb.dtype == np.uint8


@pytest.mark.parametrize("latent,message", [
    (np.zeros((2, 3)), r"shape \(2, 4\).*got shape \(2, 3\)"),
    (np.full((2, 4), np.nan), "NaN or infinite"),
    ([["a"] * 4] * 2, "float array"),
])
def test_latent_input_refuses_bad_arrays(latent, message):
    with pytest.raises(ValueError, match=message):
        kit.latent_input(latent, 2, 4)


def test_medigan_generate_returns_items_or_writes_files(tmp_path):
    def load(model_file, device):
        return {"file": model_file, "device": device}

    def sample(model, seeds, shift=0):
        images = np.stack([np.full((2, 2), (s + shift) % 256, np.uint8) for s in seeds])
        return {"image": images, "label": np.array([f"L{s % 2}" for s in seeds])}

    items = kit.medigan_generate(load, sample, "w", 3, None, False, 0, outputs=("image", "label"), shift=1)
    seeds = kit.medigan_seeds(3, 0)
    assert [(img[0, 0], label) for img, label in items] == [((s + 1) % 256, f"L{s % 2}") for s in seeds]
    assert all(type(label) is str for _, label in items)
    np.random.seed(5)
    first = kit.medigan_generate(load, sample, "w", 2, None, False, None)
    np.random.seed(5)
    assert [a.tolist() for a in first] == [a.tolist() for a in kit.medigan_generate(load, sample, "w", 2, None, False,
                                                                                     None)]
    assert kit.medigan_generate(load, sample, "w", 2, tmp_path, True, 0, outputs=("image", "label"),
                                files={"image": "{i}/{label}.png"}) is None
    assert sorted(p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("*.png")) == [
        f"{i}/L{s % 2}.png" for i, s in enumerate(kit.medigan_seeds(2, 0))]


def _package(model_id: str):
    return import_file(REPO / "models" / model_id / "__init__.py", f"kit_{model_id}")


@pytest.mark.parametrize("latent", [np.zeros((2, 99)), np.full((2, 100), np.inf), "not numbers"])
def test_00101_and_00102_validate_the_latent_alike(latent):
    """00101 and 00102 had drifted (one checked ``latent``, the other did not): both use the kit's check."""
    messages = []
    for model_id in ("00101_DCGAN_BRAIN_MRI_T1", "00102_WGANGP_HEAD_CT"):
        pkg = _package(model_id)
        model = pkg.load(REPO / "models" / model_id / pkg.WEIGHTS_FILE)
        with pytest.raises(ValueError) as err:
            pkg.sample(model, [1, 2], latent=latent)
        messages.append(str(err.value))
    assert messages[0] == messages[1] and "latent must be" in messages[0]


def test_shipped_packages_use_the_kit():
    for folder in sorted((REPO / "models").iterdir()):
        source = (folder / "__init__.py").read_text()
        assert "package_kit" in source, folder.name
        assert "def to_uint8" not in source and "np.random.randint" not in source, folder.name
