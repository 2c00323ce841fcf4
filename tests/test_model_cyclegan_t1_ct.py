"""What is specific to the shipped CycleGAN 00105_CYCLEGAN_HEAD_MRI_T1_CT (head MRI T1 <-> CT)."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import REPO
from PIL import Image

from medhub import Generators
from medhub.errors import GenerationError

MODEL_ID = "00105_CYCLEGAN_HEAD_MRI_T1_CT"
EXAMPLES = REPO / "models" / MODEL_ID / "examples"


@pytest.fixture(scope="module")
def g() -> Generators:
    return Generators()


def run(g: Generators, n: int, **kwargs):
    return g.generate(MODEL_ID, num_samples=n, save_images=False, seed=0, device="cpu", **kwargs)


def example(domain: str, k: int = 0) -> np.ndarray:
    return np.asarray(Image.open(sorted((EXAMPLES / domain).glob("*.png"))[k]))


def test_examples_are_shipped():
    for domain in ("t1", "ct"):
        files = sorted((EXAMPLES / domain).glob("*.png"))
        assert len(files) == 8
        img = Image.open(files[0])
        assert img.mode == "L" and img.size == (64, 64)


def test_default_translates_the_t1_examples(g):
    samples = run(g, 10)
    names = sorted(p.name for p in (EXAMPLES / "t1").glob("*.png"))
    assert [s[2] for s in samples] == [names[i % 8] for i in range(10)]
    image, source, _ = samples[0]
    assert image.shape == source.shape == (64, 64) and image.dtype == source.dtype == np.uint8
    assert np.array_equal(source, example("t1", 0))
    assert np.array_equal(samples[8][0], samples[0][0])  # example 8 % 8 == example 0
    assert not np.array_equal(image, source)


def test_deterministic_seed_is_not_used(g):
    a = run(g, 3)
    b = g.generate(MODEL_ID, num_samples=3, save_images=False, seed=123, device="cpu")
    assert all(np.array_equal(x[0], y[0]) for x, y in zip(a, b))


def test_both_directions_case_insensitive(g):
    to_ct = run(g, 2, direction="t1_to_ct")
    assert all(np.array_equal(x[0], y[0]) for x, y in zip(to_ct, run(g, 2)))
    to_t1 = run(g, 2, direction="ct_to_T1")
    assert to_t1[0][2].startswith("invesalius_ct") and np.array_equal(to_t1[0][1], example("ct", 0))
    assert not np.array_equal(to_t1[0][0], to_ct[0][0])


def test_input_path_file_i_at_any_batch_size(g, tmp_path):
    names = ["c.png", "a.png", "b.jpg", "d.npy"]
    imgs = [example("t1", k) for k in range(4)]
    for name, img in zip(names, imgs):
        if name.endswith(".npy"):
            np.save(tmp_path / name, img)
        else:
            Image.fromarray(img).save(tmp_path / name, quality=100)
    (tmp_path / "notes.txt").write_text("ignored")
    one = run(g, 6, input_path=str(tmp_path), batch_size=1)
    three = run(g, 6, input_path=str(tmp_path), batch_size=3)
    ordered = sorted(names)
    assert [s[2] for s in one] == [ordered[i % 4] for i in range(6)]
    for x, y in zip(one, three):
        assert all(np.array_equal(u, v) for u, v in zip(x[:2], y[:2])) and x[2] == y[2]
    by_name = dict(zip(names, imgs))
    assert np.array_equal(one[0][1], by_name["a.png"]) and np.array_equal(one[3][1], by_name["d.npy"])


def test_rgb_and_other_sizes_are_accepted(g, tmp_path):
    gray = example("ct", 3)
    Image.fromarray(np.stack([gray] * 3, -1)).save(tmp_path / "0_rgb.png")
    Image.fromarray(gray).resize((128, 128), Image.BILINEAR).save(tmp_path / "1_big.png")
    Image.fromarray(gray).save(tmp_path / "2_gray.png")
    np.save(tmp_path / "3_float.npy", np.pad(gray.astype(np.float64) * 4.0 - 100.0, ((0, 0), (8, 8))))
    out = run(g, 4, input_path=str(tmp_path), direction="CT_to_T1")
    assert np.array_equal(out[0][1], gray) and np.array_equal(out[0][0], out[2][0])
    assert np.abs(out[1][1].astype(int) - gray).mean() < 8
    assert np.corrcoef(out[1][1].ravel().astype(float), gray.ravel().astype(float))[0, 1] > 0.97
    assert out[3][1].shape == (64, 64) and out[3][0].dtype == np.uint8


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"direction": "MRI_to_PET"}, "T1_to_CT"),
        ({"input_path": "/nonexistent/folder"}, "not a folder"),
    ],
)
def test_bad_inputs_give_clear_errors(g, kwargs, message):
    with pytest.raises(GenerationError, match=message):
        run(g, 1, **kwargs)


def test_empty_or_unreadable_folder(g, tmp_path):
    (tmp_path / "readme.txt").write_text("no images here")
    with pytest.raises(GenerationError, match="no images"):
        run(g, 1, input_path=str(tmp_path))
    (tmp_path / "broken.png").write_bytes(b"not a png")
    with pytest.raises(GenerationError, match="cannot read input image"):
        run(g, 1, input_path=str(tmp_path))


def test_cycle_t1_ct_t1_stays_correlated(g, tmp_path):
    forward = run(g, 8)
    for i, (ct, _, name) in enumerate(forward):
        Image.fromarray(ct).save(tmp_path / f"{i}_{name}")
    back = run(g, 8, input_path=str(tmp_path), direction="CT_to_T1")
    for (_, t1, _), (rec, _, _) in zip(forward, back):
        assert np.corrcoef(t1.ravel().astype(float), rec.ravel().astype(float))[0, 1] > 0.9
