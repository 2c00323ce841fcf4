"""Issue 31, points 5-7: every image a folder may hold, every bad file, feature cache, batch size and
report path, met through ``medhub evaluate`` / ``medhub report`` (one line, exit code 2, before any work)."""

from __future__ import annotations

import json
import os
import subprocess

import numpy as np
import pytest
from PIL import Image
from test_evaluate import _blobs, tiny_weights  # noqa: F401  (fixture)
from test_evaluate_report import copycat  # noqa: F401  (fixture)

from medhub import evaluate
from medhub.cli import main
from medhub.evaluate.features import read_image

FAST = ("--bootstrap", "5", "--kid-subsets", "5", "--k", "2")


def _run(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def _grey_folder(path, n: int = 4, seed: int = 0):
    path.mkdir()
    for i, img in enumerate(_blobs(n, 0.0, seed)):
        Image.fromarray(img).save(path / f"{i}.png")
    return path


# ---------------------------------------------------------------------------- 5: images of every mode and size
def test_grey_alpha_pngs_are_evaluated_as_grey(tmp_path, capsys, tiny_weights):  # noqa: F811
    grey = _blobs(6, 0.0, 0)
    la = tmp_path / "la"
    la.mkdir()
    for i, img in enumerate(grey):
        Image.fromarray(np.stack([img, np.full_like(img, 255 - 40 * i)], -1), "LA").save(la / f"{i}.png")
    assert read_image(la / "0.png").shape == (32, 32)
    other = _grey_folder(tmp_path / "other", 6, 1)
    code, out, err = _run(capsys, "evaluate", str(la), str(other), "--weights", str(tiny_weights), "--json", *FAST)
    assert code == 0, err
    opts = {"weights": tiny_weights, "progress": False, "bootstrap": 5, "kid_subsets": 5, "k": 2}
    same = evaluate.metrics_report(list(grey), other, **opts).to_dict()  # the alpha channel plays no part
    assert json.loads(out)["metrics"]["FID"]["value"] == pytest.approx(same["metrics"]["FID"]["value"])


def test_a_folder_mixing_sizes_channels_and_modes(tmp_path, capsys, tiny_weights):  # noqa: F811
    rng = np.random.default_rng(0)
    mixed = tmp_path / "mixed"
    mixed.mkdir()
    Image.fromarray(rng.integers(0, 256, (32, 32), dtype=np.uint8)).save(mixed / "grey.png")
    Image.fromarray(rng.integers(0, 256, (48, 40, 3), dtype=np.uint8)).save(mixed / "rgb.png")
    Image.fromarray(rng.integers(0, 256, (20, 20, 2), dtype=np.uint8), "LA").save(mixed / "la.png")
    Image.fromarray(rng.integers(0, 256, (30, 30, 4), dtype=np.uint8), "RGBA").save(mixed / "rgba.png")
    Image.fromarray(rng.integers(0, 256, (30, 30), dtype=np.uint8)).convert("P").save(mixed / "palette.png")
    Image.fromarray(rng.integers(0, 256, (30, 30, 3), dtype=np.uint8)).convert("CMYK").save(mixed / "cmyk.jpg")
    Image.fromarray(rng.integers(0, 65535, (30, 30), dtype=np.uint16)).save(mixed / "grey16.png")
    Image.fromarray(rng.integers(0, 1000, (30, 30)).astype(np.int32), "I").save(mixed / "int32.tif")
    Image.fromarray(rng.random((30, 30), dtype=np.float32), "F").save(mixed / "float.tif")
    Image.fromarray(rng.integers(0, 2, (30, 30), dtype=np.uint8) * 255).convert("1").save(mixed / "bits.png")
    real = _grey_folder(tmp_path / "real", 6)
    code, out, err = _run(capsys, "evaluate", str(real), str(mixed), "--train", str(mixed), "--weights",
                          str(tiny_weights), "--json", *FAST)
    assert code == 0, err
    data = json.loads(out)
    assert data["n_synthetic"] == 10 and data["memorization"]["n_train"] == 10


# ---------------------------------------------------------------------------- 6: files that cannot be used
def _bad_files(folder):
    """name -> how to make it, for every kind of file that cannot be evaluated."""
    good = folder / "0.png"
    return {
        "zero.png": lambda p: p.write_bytes(b""),
        "text.png": lambda p: p.write_text("not an image"),
        "truncated.png": lambda p: p.write_bytes(good.read_bytes()[:200]),
        "dangling.png": lambda p: os.symlink(folder / "no-such-file.png", p),
        "int32.tif": lambda p: Image.fromarray(np.full((8, 8), 10**6, np.int32), "I").save(p),
        "float.tif": lambda p: Image.fromarray(np.full((8, 8), 7.5, np.float32), "F").save(p),
    }


@pytest.mark.parametrize("name", ["zero.png", "text.png", "truncated.png", "dangling.png", "int32.tif", "float.tif"])
def test_a_file_that_cannot_be_used_is_one_line_naming_it(tmp_path, capsys, tiny_weights, name):  # noqa: F811
    real = _grey_folder(tmp_path / "real")
    synthetic = _grey_folder(tmp_path / "synthetic", seed=1)
    _bad_files(synthetic)[name](synthetic / name)
    code, _, err = _run(capsys, "evaluate", str(real), str(synthetic), "--weights", str(tiny_weights), *FAST)
    assert code == 2 and err.count("\n") == 1 and err.startswith(f"medhub: error: {synthetic / name}: "), err
    assert "the run was refused" in err and "Traceback" not in err
    code, _, err = _run(capsys, "report", "101", "--real", str(synthetic), "-o", str(tmp_path / "r.html"))  # the same
    assert code == 2 and err.startswith(f"medhub: error: {synthetic / name}: ") and not (tmp_path / "r.html").exists()


def test_an_image_over_the_decompression_bomb_limit(tmp_path, capsys, tiny_weights, monkeypatch):  # noqa: F811
    real = _grey_folder(tmp_path / "real")
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 400)  # 32x32 = 1024 pixels: over twice the limit
    code, _, err = _run(capsys, "evaluate", str(real), str(real), "--weights", str(tiny_weights), *FAST)
    assert code == 2 and err.count("\n") == 1 and "decompression-bomb limit" in err and str(real / "0.png") in err


def test_a_real_cache_that_is_not_a_feature_file(tmp_path, capsys, tiny_weights):  # noqa: F811
    real = _grey_folder(tmp_path / "real")
    np.save(tmp_path / "array.npy", np.zeros(3))
    np.savez(tmp_path / "other.npz", x=np.zeros(3))
    (tmp_path / "text.npz").write_text("hello")
    for cache in ("array.npy", "other.npz", "text.npz", "real/0.png"):
        before = (tmp_path / cache).read_bytes()
        for command in (["evaluate", str(real), str(real), *FAST], ["fid", str(real), str(real)]):
            code, _, err = _run(capsys, *command, "--weights", str(tiny_weights), "--real-cache", str(tmp_path / cache))
            assert code == 2 and err.count("\n") == 1 and "is not a medhub feature cache" in err, (cache, err)
        assert (tmp_path / cache).read_bytes() == before  # left as it was
    code, _, err = _run(capsys, "fid", str(real), str(real), "--weights", str(tiny_weights), "--real-cache", str(real))
    assert code == 2 and "is a folder" in err
    code, out, err = _run(capsys, "fid", str(real), str(real), "--weights", str(tiny_weights), "--real-cache",
                          str(tmp_path / "good.npz"))
    assert code == 0 and (tmp_path / "good.npz").is_file(), err


@pytest.mark.parametrize("size", ["0", "-2"])
def test_a_batch_size_that_is_not_positive(tmp_path, capsys, size):
    real = _grey_folder(tmp_path / "real")
    for command in (["evaluate", str(real), str(real)], ["fid", str(real), str(real)], ["report", "101", "--real",
                                                                                       str(real)]):
        code, _, err = _run(capsys, *command, "--batch-size", size)
        assert code == 2 and err.count("\n") == 1 and "--batch-size: give a positive integer" in err, err
    with pytest.raises(ValueError, match="batch_size"):
        evaluate.fid(real, real, batch_size=int(size))


# ---------------------------------------------------------------------------- 7: where report writes
def test_report_output_folder_and_suffix(tmp_path, capsys, copycat, tiny_weights):  # noqa: F811
    real, _ = copycat
    folder = tmp_path / "reports"
    folder.mkdir()
    options = ("--weights", str(tiny_weights), "-n", "4", *FAST)
    code, _, err = _run(capsys, "report", "950", "--real", str(real), "-o", str(folder), *options)
    assert code == 0, err
    assert sorted(p.name for p in folder.iterdir()) == ["00950_COPYCAT.html", "00950_COPYCAT.json"]
    code, _, err = _run(capsys, "report", "950", "--real", str(real), "-o", str(folder / "mine"), *options)
    assert code == 0 and (folder / "mine.html").is_file() and (folder / "mine.json").is_file(), err


def _no_sample_may_be_generated(monkeypatch):
    from medhub.execution.executor import ModelExecutor

    def refuse(*args, **kwargs):
        raise AssertionError("a sample was generated")

    monkeypatch.setattr(ModelExecutor, "batches", refuse)


def test_report_refuses_a_missing_folder_before_any_work(tmp_path, capsys, copycat, monkeypatch):  # noqa: F811
    real, _ = copycat
    _no_sample_may_be_generated(monkeypatch)
    for target in (tmp_path / "missing" / "r.html", real / "00.png" / "r.html"):
        code, _, err = _run(capsys, "report", "950", "--real", str(real), "-o", str(target))
        assert code == 2 and err.count("\n") == 1 and f"Cannot write the report {target}" in err, err
    assert not (tmp_path / "missing").exists()


def test_report_refuses_a_read_only_place_before_any_work(tmp_path, capsys, copycat, monkeypatch):  # noqa: F811
    real, _ = copycat
    place = tmp_path / "ro"
    place.mkdir()
    if os.geteuid() != 0:
        place.chmod(0o555)
    elif subprocess.run(["mount", "-t", "tmpfs", "-o", "ro,size=64k", "tmpfs", str(place)],
                        capture_output=True).returncode:
        pytest.skip("root ignores permissions and cannot mount a read-only file system here")
    _no_sample_may_be_generated(monkeypatch)
    try:
        code, _, err = _run(capsys, "report", "950", "--real", str(real), "-o", str(place / "r.html"))
    finally:
        if os.geteuid() == 0:
            subprocess.run(["umount", str(place)], check=False)
        place.chmod(0o755)
    assert code == 2 and err.count("\n") == 1 and "is not writable" in err, err
    assert list(place.iterdir()) == []
