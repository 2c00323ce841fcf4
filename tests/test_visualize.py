"""Latent explorer, sample grids and the FID overview (medhub.visualize), headless (Agg)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from conftest import entry, write_catalog, write_package

matplotlib = pytest.importorskip("matplotlib")
matplotlib.use("Agg")  # tests only; medhub itself never switches the global backend

from matplotlib.figure import Figure  # noqa: E402

from medhub import Generators, MedhubError  # noqa: E402
from medhub.cli import EXIT_OK, main  # noqa: E402
from medhub.errors import InvalidArgumentError, LatentNotSupportedError  # noqa: E402
from medhub.visualize import LatentExplorer, fid_overview_data, plot_fid_overview, plot_samples  # noqa: E402

PNG = b"\x89PNG\r\n\x1a\n"

# A conditional toy whose image shows its inputs: row 0 holds the 12 latent values (one pixel
# each), row 1 the condition; so a test can see exactly which latent dimensions reached the model.
LATENT_TOY = """
import numpy as np

SIZE = 12


def load(weights_path, device):
    return None


def sample(model, seeds, latent=None, condition=0, **_):
    n = len(seeds)
    if latent is None:
        latent = np.stack([np.random.default_rng(s).standard_normal(SIZE) for s in seeds])
    z = np.asarray(latent, dtype=np.float64).reshape(n, SIZE)
    img = np.zeros((n, 4, SIZE), np.uint8)
    img[:, 0, :] = np.clip(np.round((z + 6) * 20), 0, 255)
    img[:, 1, :] = 100 * int(condition)
    return {"image": img, "mask": img > 128, "label": np.full(n, int(condition), np.int64)}
"""

LATENT_TOY_OUTPUTS = [
    {"name": "image", "kind": "image", "shape": [4, 12], "dtype": "uint8", "range": [0, 255]},
    {"name": "mask", "kind": "mask", "shape": [4, 12], "dtype": "bool"},
    {"name": "label", "kind": "label", "shape": [], "dtype": "int64", "values": [0, 1]},
]


@pytest.fixture
def catalog(toy_catalog: Path) -> Path:
    doc = json.loads(toy_catalog.read_text())
    models = doc["models"]
    write_package(toy_catalog.parent / "packages", "latent_toy", LATENT_TOY)
    models["00920_LATENT_TOY"] = entry(
        "packages/latent_toy", LATENT_TOY_OUTPUTS,
        selection={"modality": ["toy"], "performance": {"FID": 30.0, "FID_rr": 10.0}},
        generate_method={"name": "generate", "args": {"custom": {"condition": 0}}, "input_latent_vector_size": 12,
                         "per_sample_inputs": ["latent"]})
    # a latent size, but a sample() that takes no latent: the explorer must refuse it
    models["00921_NO_LATENT_INPUT"] = entry("packages/numpy_toy", models["00900_NUMPY_TOY"]["execution"]["outputs"],
                                            generate_method={"name": "generate", "input_latent_vector_size": 4})
    return write_catalog(toy_catalog.parent / "catalog_viz.json", models)


@pytest.fixture
def g(catalog: Path) -> Generators:
    return Generators(config_file=catalog)


def click(button) -> None:
    button._observers.process("clicked", None)


# ---------------------------------------------------------------------------- latent explorer
def test_each_slider_moves_exactly_its_own_latent_group(g):
    ex = g.visualize(920, slider_grouper=5, auto_close=True, seed=1)
    assert isinstance(ex, LatentExplorer) and isinstance(ex.fig, Figure)
    assert [list(r) for r in ex.groups] == [[0, 1, 2, 3, 4], [5, 6, 7, 8, 9], [10, 11]]
    assert [s.label.get_text() for s in ex.sliders] == ["z[0:5]", "z[5:10]", "z[10:12]"]
    assert np.array_equal(ex.latent, np.random.default_rng(1).standard_normal(12, dtype=np.float32))
    for group, slider in zip(ex.groups, ex.sliders):
        z_before, image_before = ex.latent.copy(), ex.image.copy()
        slider.set_val(1.5)
        moved = np.nonzero(ex.latent != z_before)[0].tolist()
        assert moved == list(group)
        assert np.allclose(ex.latent[moved], z_before[moved] + 1.5)
        changed_pixels = np.nonzero((ex.image != image_before).any(axis=0))[0].tolist()
        assert changed_pixels == list(group)  # the model got exactly these latent values
        assert np.array_equal(ex._image_artist.get_array(), ex.image)  # and the figure shows it
        slider.set_val(0.0)
        assert np.array_equal(ex.image, image_before)


def test_offset_condition_reset_and_seed(g):
    ex = g.visualize(920, slider_grouper=4, auto_close=True, seed=3)
    initial, z0 = ex.image.copy(), ex.latent.copy()
    ex.offset_slider.set_val(-1.0)
    assert np.allclose(ex.latent, z0 - 1.0) and not np.array_equal(ex.image, initial)
    assert ex.conditional and ex.condition_slider is not None
    ex.condition_slider.set_val(1)
    assert (ex.image[1] == 100).all() and int(ex.label) == 1 and "label: 1" in ex.image_ax.get_title()
    ex.sliders[1].set_val(2.0)
    calls = ex.calls
    click(ex.reset_button)
    assert ex.calls == calls + 1  # one model call for the whole reset
    assert all(s.val == 0 for s in ex.sliders) and ex.offset_slider.val == 0 and ex.condition_slider.val == 0
    assert np.array_equal(ex.image, initial) and np.array_equal(ex.latent, z0)
    ex.sliders[0].set_val(1.0)
    click(ex.seed_button)
    assert ex.seed == 4 and all(s.val == 0 for s in ex.sliders)
    assert np.array_equal(ex.latent, np.random.default_rng(4).standard_normal(12, dtype=np.float32))
    assert not np.array_equal(ex.image, initial) and "seed 4" in ex.fig._suptitle.get_text()


def test_image_and_mask_side_by_side_and_png(g, tmp_path):
    path = tmp_path / "explorer.png"
    ex = g.visualize(920, auto_close=True, seed=0, save_path=path)
    assert path.read_bytes()[:8] == PNG
    assert ex.mask_ax is not None and ex.mask_ax.get_position().x0 > ex.image_ax.get_position().x1
    assert np.array_equal(ex._mask_artist.get_array(), ex.mask.astype(np.uint8))
    assert len(ex.sliders) == 2  # 12 dims in groups of 10


def test_shipped_model_explorer(tmp_path):
    g = Generators()
    ex = g.visualize(101, auto_close=True, seed=0)
    other = g.visualize("00101", auto_close=True, seed=0)
    assert np.array_equal(ex.image, other.image) and ex.image.shape == (64, 64)
    assert len(ex.sliders) == 10 and ex.condition_slider is None and ex.mask_ax is None
    for k in (0, 9):
        z, image = ex.latent.copy(), ex.image.copy()
        ex.sliders[k].set_val(2.5)
        assert np.nonzero(ex.latent != z)[0].tolist() == list(range(10 * k, 10 * k + 10))
        assert (ex.image != image).sum() > 50
    # the explorer drives the model through its `latent` input: same image as generate(latent=...)
    expected = g.generate(101, num_samples=1, save_images=False, seed=0, latent=ex.latent[None])[0]
    assert np.array_equal(ex.image, expected)


def test_models_without_latent_input_are_refused(g):
    with pytest.raises(LatentNotSupportedError, match="input_latent_vector_size"):
        g.visualize(900, auto_close=True)
    with pytest.raises(LatentNotSupportedError, match="latent") as info:
        g.visualize(921, auto_close=True)
    assert isinstance(info.value, MedhubError) and isinstance(info.value, ValueError)
    with pytest.raises(InvalidArgumentError):
        g.visualize(920, slider_grouper=0, auto_close=True)


def test_headless_without_pyplot_never_touches_the_global_backend(tmp_path):
    code = (
        "import sys, matplotlib; from medhub import Generators;"
        "ex = Generators().visualize(101, seed=0, save_path=sys.argv[1]);"  # auto_close=False: nothing blocks
        "ex.sliders[0].set_val(1.0);"
        "print(type(ex.fig.canvas).__name__, 'matplotlib.pyplot' in sys.modules)"
    )
    env = {k: v for k, v in __import__("os").environ.items() if k not in ("DISPLAY", "WAYLAND_DISPLAY", "MPLBACKEND")}
    out = subprocess.run([sys.executable, "-c", code, str(tmp_path / "e.png")], capture_output=True, text=True,
                         check=True, env=env, timeout=120)
    assert out.stdout.split() == ["FigureCanvasAgg", "False"]
    assert (tmp_path / "e.png").read_bytes()[:8] == PNG


def test_pyplot_figures_where_pyplot_is_in_use(g, monkeypatch):
    import matplotlib.pyplot as plt

    ex = g.visualize(920, seed=0)  # pyplot imported (as in notebooks): a pyplot figure; Agg shows nothing
    assert plt.fignum_exists(ex.fig.number)
    ex.close()
    assert not plt.fignum_exists(ex.fig.number)
    ex.sliders[0].set_val(1.0)  # still usable after closing


# ---------------------------------------------------------------------------- sample grids
def test_plot_samples_grid(g, tmp_path):
    fig = g.plot_samples(900, n=6, seed=0, save_path=tmp_path / "grid.png")
    assert isinstance(fig, Figure) and len(fig.axes) == 6
    assert fig.axes[0].get_title().startswith("label: ")
    shown = fig.axes[2].images[0].get_array()
    assert np.array_equal(shown, g.generate(900, num_samples=6, save_images=False, seed=0)[2][0])
    assert (tmp_path / "grid.png").read_bytes()[:8] == PNG


def test_plot_samples_volumes_show_mid_slices_and_masks_as_contours(g):
    fig = plot_samples(906, n=2, seed=1, get_executor=g.get_model_executor)
    volume = g.generate(906, num_samples=2, save_images=False, seed=1)[1][0]
    assert np.array_equal(fig.axes[1].images[0].get_array(), volume[3])
    assert "mid slices" in fig._suptitle.get_text()
    assert fig.axes[0].collections  # the mask contour


def test_plot_samples_shipped_model():
    fig = Generators().plot_samples(101, n=16, seed=0)
    assert len(fig.axes) == 16 and fig.axes[0].images[0].get_array().shape == (64, 64)


# ---------------------------------------------------------------------------- FID overview
def test_fid_overview_data_derives_the_bound_from_the_ratio():
    rows, skipped = fid_overview_data()
    by_number = {r["number"]: r for r in rows}
    assert by_number[1]["FID_rr"] == pytest.approx(0.497 * 67.6) and by_number[1]["derived"]
    assert by_number[9]["modality"] == "endoscopy"
    assert "00022_WGAN_CARDIAC_AGING" in skipped  # no FID
    assert "00023_PIX2PIXHD_BREAST_DCEMRI" in skipped  # an FID, but neither FID_rr nor FID_ratio
    assert len(rows) + len(skipped) == len(Generators().list_models())


def test_plot_fid_overview(g, tmp_path):
    fig = plot_fid_overview(save_path=tmp_path / "fid.png")
    ax = fig.axes[0]
    rows, _ = fid_overview_data()
    labels = sorted(int(t.get_text()) for t in ax.texts)
    assert labels == sorted(r["number"] for r in rows)
    legend = [t.get_text() for t in ax.get_legend().get_texts()]
    assert legend[:-1] == list(dict.fromkeys(r["modality"] for r in rows)) and legend[-1] == "FID = FID_rr"
    assert (tmp_path / "fid.png").read_bytes()[:8] == PNG
    toy = g.plot_fid_overview()  # a catalog that gives FID_rr itself
    (point,) = toy.axes[0].collections[0].get_offsets()
    assert tuple(point) == (10.0, 30.0)


# ---------------------------------------------------------------------------- command line
def test_cli_grid_and_plot(tmp_path, catalog, capsys):
    assert main(["grid", "101", "-o", str(tmp_path / "grid.png"), "-n", "4", "--seed", "1"]) == EXIT_OK
    assert capsys.readouterr().out.strip() == f"wrote {tmp_path / 'grid.png'}"
    assert (tmp_path / "grid.png").read_bytes()[:8] == PNG
    assert main(["grid", "900", "-o", str(tmp_path / "toy.png"), "--config", str(catalog), "--json"]) == EXIT_OK
    assert json.loads(capsys.readouterr().out) == {"output": str(tmp_path / "toy.png"), "axes": 16}
    assert main(["plot", "fid", "-o", str(tmp_path / "fid.png")]) == EXIT_OK
    assert (tmp_path / "fid.png").read_bytes()[:8] == PNG
    assert main(["grid", "101", "-o", str(tmp_path / "bad.png"), "-n", "0"]) != EXIT_OK


def test_fid_overview_works_on_the_new_metrics_with_intervals():
    """KID (and the other metrics with a real-real figure) plot against their real-real figure, with
    the catalog's bootstrap interval as an error bar (issue 27, point 5)."""
    rows, skipped = fid_overview_data(metric="KID")
    shipped = [r for r in rows if str(r["model_id"]).startswith("001")]
    assert len(shipped) == 7 and all(r["ci"] is not None for r in shipped)
    fig = plot_fid_overview(pyplot=False, metric="KID")
    ax = fig.axes[0]
    assert ax.get_ylabel().startswith("KID") and "lower is better" in ax.get_title()
    assert len(ax.containers) == 7  # one error bar per shipped model
    assert "bootstrap interval" in fig.texts[0].get_text()
    coverage = plot_fid_overview(pyplot=False, metric="coverage")
    assert "higher is better" in coverage.axes[0].get_title()
