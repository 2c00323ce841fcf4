"""What is specific to the shipped pix2pix 00104_PIX2PIX_BRAIN_SEG_TO_T1: label map -> T1 slice pairs."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import REPO, import_file
from PIL import Image

from medhub import Generators
from medhub.errors import GenerationError

MODEL_ID = "00104_PIX2PIX_BRAIN_SEG_TO_T1"
FOLDER = REPO / "models" / MODEL_ID
EXAMPLES = FOLDER / "examples"


@pytest.fixture(scope="module")
def g() -> Generators:
    return Generators()


@pytest.fixture(scope="module")
def pkg():
    return import_file(FOLDER / "__init__.py", "shipped_pix2pix_seg_t1")


def _pairs(samples):
    return np.stack([s[0] for s in samples]), np.stack([s[1] for s in samples])


def test_examples_are_label_maps(pkg):
    files = sorted(EXAMPLES.glob("*.png"))
    assert len(files) == 4
    for f in files:
        arr = np.asarray(Image.open(f))
        assert arr.shape == (64, 64) and arr.dtype == np.uint8
        assert set(np.unique(arr).tolist()) == {0, 1, 2, 3}


def test_input_path_sample_i_translates_file_i(g, pkg):
    files = pkg.list_label_files(EXAMPLES)
    images, masks = _pairs(g.generate(MODEL_ID, num_samples=6, save_images=False, seed=0, input_path=str(EXAMPLES)))
    for i in range(6):
        assert np.array_equal(masks[i], pkg.read_label_map(files[i % 4]))
    assert np.array_equal(images[4], images[0]) and np.array_equal(images[5], images[1])
    assert not np.array_equal(images[0], images[1])
    # the translation does not depend on the seed, the batch size or the position in the run
    images_b, masks_b = _pairs(g.generate(MODEL_ID, num_samples=6, save_images=False, seed=5, batch_size=4,
                                          input_path=str(EXAMPLES)))
    assert np.array_equal(images, images_b) and np.array_equal(masks, masks_b)


def test_masks_written_by_medhub_can_be_fed_back(g, tmp_path):
    run = tmp_path / "run"
    g.generate(MODEL_ID, num_samples=5, output_path=str(run), seed=3)
    mask_png = np.asarray(Image.open(run / "000002_mask.png"))
    assert mask_png.max() <= 3  # medhub writes the uint8 mask as it is
    images, masks = _pairs(g.generate(MODEL_ID, num_samples=5, save_images=False, seed=3))
    images_b, masks_b = _pairs(g.generate(MODEL_ID, num_samples=5, save_images=False, seed=77, input_path=str(run)))
    assert np.array_equal(masks, masks_b) and np.array_equal(images, images_b)


def test_display_levels_npy_and_other_sizes_are_read(g, pkg, tmp_path):
    mask = pkg.read_label_map(EXAMPLES / "0_mni152_z048.png")
    Image.fromarray((mask * 85).astype(np.uint8)).save(tmp_path / "a.png")  # 0/85/170/255
    np.save(tmp_path / "b.npy", np.kron(mask, np.ones((2, 2), np.int64)))  # 128x128 int64
    Image.fromarray(np.kron(mask, np.ones((3, 3), np.uint8))).save(tmp_path / "c.png")  # 192x192
    (tmp_path / "notes.txt").write_text("ignored")
    images, masks = _pairs(g.generate(MODEL_ID, num_samples=3, save_images=False, input_path=str(tmp_path)))
    for i in range(3):
        assert np.array_equal(masks[i], mask)
        assert np.array_equal(images[i], images[0])


def test_bad_input_folders_give_clear_errors(g, tmp_path):
    def fails(folder, match):
        with pytest.raises(GenerationError, match=match) as info:
            g.generate(MODEL_ID, num_samples=1, save_images=False, input_path=str(folder))
        assert "expected a folder of 2D label-map files" in str(info.value)

    fails(tmp_path / "missing", "is not a folder")
    (tmp_path / "empty").mkdir()
    fails(tmp_path / "empty", "holds no .png or .npy file")
    bad = tmp_path / "values"
    bad.mkdir()
    np.save(bad / "x.npy", np.full((64, 64), 7, np.uint8))
    fails(bad, r"holds values \[7\]")
    rgb = tmp_path / "rgb"
    rgb.mkdir()
    Image.fromarray(np.zeros((64, 64, 3), np.uint8)).save(rgb / "x.png")
    fails(rgb, "not 2D")
    vol = tmp_path / "vol"
    vol.mkdir()
    np.save(vol / "x.npy", np.zeros((4, 64, 64), np.uint8))
    fails(vol, "not 2D")
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "x.png").write_bytes(b"not a png")
    fails(broken, "cannot read label map")


def test_image_follows_the_mask(g):
    images, masks = _pairs(g.generate(MODEL_ID, num_samples=16, save_images=False, seed=0))
    background, csf, gm, wm = (images[masks == k].astype(float).mean() for k in range(4))
    assert background < 15, background  # dark where the mask is background
    assert wm > gm > csf > background  # T1 contrast: white matter brightest, CSF darker
    assert len({m.tobytes() for m in masks}) > 8  # seeded masks differ
    assert all(0.1 < (m > 0).mean() < 0.9 for m in masks)  # each one is a plausible brain


def test_seeded_masks_come_from_the_bank(pkg):
    import torch

    model = pkg.load(FOLDER / pkg.WEIGHTS_FILE, "cpu")
    bank = model.mask_bank
    assert bank.dtype == torch.uint8 and tuple(bank.shape) == (85, 64, 64)
    masks = pkg.seeded_masks(bank, [1, 2])
    assert np.array_equal(masks, pkg.seeded_masks(bank, [1, 2]))
    r = range(-pkg.MAX_SHIFT, pkg.MAX_SHIFT + 1)
    for m in masks:  # every mask is a bank map, maybe flipped, shifted by at most MAX_SHIFT pixels
        assert any(np.array_equal(pkg.shift_mask(b, dy, dx).numpy(), m)
                   for b in (*bank, *bank.flip(-1)) for dy in r for dx in r)


def test_seeded_masks_are_the_drawn_map_flipped_and_shifted(pkg):
    """The numpy slicing in seeded_masks gives exactly shift_mask of the seed's (flipped) bank map."""
    from medhub import noise

    bank = pkg.load(FOLDER / pkg.WEIGHTS_FILE, "cpu").mask_bank
    seeds = list(range(200))
    masks = pkg.seeded_masks(bank, seeds)
    shifts = set()
    for seed, mask in zip(seeds, masks):  # each seed's draws alone: streams 0 (map), 1 (flip), 2 (shift)
        k = int(noise.integers([seed], 0, bank.shape[0])[0])
        flip = bool(noise.integers([seed], 0, 2, stream=1)[0])
        dy, dx = noise.integers([seed], -pkg.MAX_SHIFT, pkg.MAX_SHIFT + 1, (2,), stream=2)[0].tolist()
        src = bank[k].flip(-1) if flip else bank[k]
        assert np.array_equal(mask, pkg.shift_mask(src, dy, dx).numpy()), seed
        shifts.add((flip, int(np.sign(dy)), int(np.sign(dx))))
    assert len(shifts) >= 16  # of the 18 (flip, up/none/down, left/none/right) cases


def test_one_hot_matches_torch_one_hot(pkg):
    import torch

    masks = np.random.default_rng(0).integers(0, pkg.NUM_LABELS, (5, 64, 64)).astype(np.uint8)
    x = pkg.one_hot(masks)
    ref = torch.nn.functional.one_hot(torch.as_tensor(masks).long(), pkg.NUM_LABELS).permute(0, 3, 1, 2).float()
    assert x.dtype == torch.float32 and x.shape == (5, pkg.NUM_LABELS, 64, 64) and x.is_contiguous()
    assert torch.equal(x, ref)


def test_sample_alone_equals_sample_in_a_block(pkg):
    model = pkg.load(FOLDER / pkg.WEIGHTS_FILE, "cpu")
    seeds = list(range(100, 133))
    batch = pkg.sample(model, seeds)
    for i in (5, 32):
        alone = pkg.sample(model, [seeds[i]])
        assert np.array_equal(alone["image"][0], batch["image"][i])


def test_medigan_generate_writes_pairs(pkg, tmp_path):
    weights = str(FOLDER / pkg.WEIGHTS_FILE)
    pairs = pkg.generate(weights, num_samples=3, save_images=False, seed=0, input_path=str(EXAMPLES))
    assert len(pairs) == 3 and all(len(p) == 2 for p in pairs)
    pkg.generate(weights, num_samples=2, output_path=str(tmp_path / "m"), save_images=True, seed=0)
    mask = np.asarray(Image.open(tmp_path / "m" / "1" / "mask.png"))
    assert mask.max() <= 3 and (tmp_path / "m" / "1" / "image.png").is_file()
