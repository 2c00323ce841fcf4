"""One catalog object is passed down (issue 33): the catalog of a ``Generators(config_file=...)``,
or of the CLI's ``--config``, resolves model ids in evaluate's model sets (``(model_id, n)``,
``model:ID:N``), in visualize and in the torch datasets. The tests use a catalog holding model
101 under a new id that the default catalog does not have, so each path fails (one line, exit
code 3 on the command line) where the catalog does not reach it.
"""

from __future__ import annotations

import copy
import json

import numpy as np
import pytest
from conftest import write_catalog
from test_evaluate import tiny_weights  # noqa: F401  (fixture)

from medhub import Generators
from medhub.cli import EXIT_NOT_FOUND, EXIT_OK, main
from medhub.config import ConfigManager
from medhub.errors import ModelNotFoundError

NEW_ID = "00199_COPY_OF_101"


@pytest.fixture
def catalog(tmp_path):
    """A catalog with model 101's entry under NEW_ID (its relative package link falls back to the
    shipped models folder)."""
    entry = copy.deepcopy(ConfigManager().get_config_by_id(101))
    return write_catalog(tmp_path / "catalog.json", {NEW_ID: entry})


@pytest.fixture
def generators(catalog):
    return Generators(config_file=catalog)


@pytest.fixture
def real_folder(tmp_path):
    from PIL import Image

    folder = tmp_path / "real"
    folder.mkdir()
    for i in range(4):
        Image.fromarray((np.random.default_rng(i).random((64, 64)) * 255).astype(np.uint8)).save(folder / f"{i}.png")
    return folder


def _one_line_not_found(capsys, code: int) -> None:
    err = capsys.readouterr().err.strip()
    assert code == EXIT_NOT_FOUND and err.count("\n") == 0 and "No model with id '199'" in err, err


# ---------------------------------------------------------------------------- evaluate
def test_model_image_sets_resolve_in_the_given_catalog(generators):
    from medhub.evaluate.features import iter_images
    from medhub.evaluate.memorization import load_images

    images, count, what = iter_images(("199", 3), catalog=generators.config_manager)
    assert count == 3 and NEW_ID in what and [np.asarray(x).shape for x in images] == [(64, 64)] * 3
    assert len(load_images(("199", 2), catalog=generators.config_manager)[0]) == 2
    with pytest.raises(ModelNotFoundError, match="199"):
        iter_images(("199", 3))  # the default catalog


def test_fid_functions_take_the_catalog(generators, real_folder, tiny_weights):  # noqa: F811
    from medhub import evaluate

    opts = dict(weights=tiny_weights, progress=False)
    value = evaluate.fid(real_folder, ("199", 4), catalog=generators.config_manager, **opts)
    assert value == pytest.approx(evaluate.fid(real_folder, (101, 4), **opts))  # the same model, the same seed
    with pytest.raises(ModelNotFoundError):
        evaluate.fid(real_folder, ("199", 4), **opts)


@pytest.mark.parametrize("command", [["fid", "--lower-bound", "--json"], ["evaluate", "--metrics", "fid", "--bootstrap", "0", "--json"]])
def test_fid_and_evaluate_commands_honour_config(command, catalog, real_folder, tiny_weights, capsys):  # noqa: F811
    name, *options = command
    argv = [name, str(real_folder), "model:199:4", "--weights", str(tiny_weights), *options]
    assert main(["--config", str(catalog), *argv]) == EXIT_OK
    assert NEW_ID in json.dumps(json.loads(capsys.readouterr().out))  # the set's description names the model
    _one_line_not_found(capsys, main(argv))


# ---------------------------------------------------------------------------- torch datasets
def test_dataloader_and_dataset_use_the_generators_catalog(generators, catalog):
    pytest.importorskip("torch")
    from medhub.data import get_as_torch_dataloader, get_as_torch_dataset

    loader = generators.get_as_torch_dataloader(None, NEW_ID, 4, batch_size=2)
    assert [tuple(b["sample"].shape) for b in loader] == [(2, 1, 64, 64)] * 2
    assert len(generators.get_as_torch_dataset(199, num_samples=3)) == 3
    # the module functions take the catalog itself
    assert len(get_as_torch_dataloader(199, 4, batch_size=2, catalog=generators.config_manager)) == 2
    assert get_as_torch_dataset(199, 3, catalog=ConfigManager(catalog)).model_id == NEW_ID
    with pytest.raises(ModelNotFoundError):
        get_as_torch_dataloader(199, 4, batch_size=2)
    with pytest.raises(ModelNotFoundError):
        get_as_torch_dataset(199, 3)


# ---------------------------------------------------------------------------- visualize
def test_visualize_and_grids_use_the_generators_catalog(generators, catalog, tmp_path, capsys):
    pytest.importorskip("matplotlib")
    import matplotlib

    matplotlib.use("Agg")
    from medhub.visualize import plot_samples, visualize

    explorer = generators.visualize(199, auto_close=True, seed=0)
    assert explorer.model_id == NEW_ID
    assert generators.plot_samples(199, n=2, pyplot=False).axes
    with pytest.raises(ModelNotFoundError):
        visualize(199, auto_close=True, seed=0)
    with pytest.raises(ModelNotFoundError):
        plot_samples(199, n=2, pyplot=False)
    out = tmp_path / "grid.png"
    assert main(["--config", str(catalog), "grid", "199", "-n", "2", "-o", str(out)]) == EXIT_OK and out.is_file()
    capsys.readouterr()
    _one_line_not_found(capsys, main(["grid", "199", "-n", "2", "-o", str(tmp_path / "no.png")]))
