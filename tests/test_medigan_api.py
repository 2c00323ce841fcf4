"""medigan 1.0.0's public ``Generators`` API is all in medhub's: every method, every parameter.

medigan's method names, parameter names (in order) and defaults are data, in
``tests/data/medigan_1_0_0_generators_api.json``: read from ``src/medigan/generators.py`` of
RichardObi/medigan at tag v1.0.0 (commit 7bd778503188cad732da27b91feaaab99469c07d; the PyPI sdist
medigan-1.0.0.tar.gz holds the same file). Dropping a method or a parameter from medhub's
``Generators``, or moving one so that a positional medigan call binds differently, fails here.
The few known differences are listed below with their reason; each list must shrink, not grow:
a difference that is fixed fails :func:`test_known_differences_are_still_there` until its entry is
removed.
"""

from __future__ import annotations

import inspect
import json
from pathlib import Path

import pytest

from medhub import Generators

DATA = json.loads((Path(__file__).parent / "data" / "medigan_1_0_0_generators_api.json").read_text())
MEDIGAN = DATA["methods"]
PUBLIC = sorted(m for m in MEDIGAN if not m.startswith("_"))

#: medigan parameters medhub takes through ``**kwargs`` and passes on with the same meaning.
VIA_KWARGS: dict[str, set[str]] = {}
#: medigan parameters medhub lacks (to be added by the owner of that code).
MISSING: dict[str, set[str]] = {}
#: Methods where a positional medigan call does not bind as in medigan (keyword calls work).
POSITIONAL_GAPS: set[str] = set()
_LOADER_ARGS = ("batch_size", "shuffle", "num_workers", "pin_memory", "drop_last", "timeout", "prefetch_factor",
                "persistent_workers")
#: Defaults medhub changed on purpose (docs/contributing-models.md, docs/search-and-ranking.md).
CHANGED_DEFAULTS = {
    ("rank_models_by_performance", "metric"), ("rank_models_by_performance", "order"),  # FID, best first
    ("find_models_and_rank", "metric"), ("find_models_and_rank", "order"),
    ("find_models_rank_and_generate", "metric"), ("find_models_rank_and_generate", "order"),
    ("contribute", "fill_more_fields_interactively"),  # asks nothing unless told to
    ("contribute", "output_path"),  # MEDHUB_HOME/contributions/<id>, not ./config
    ("contribute", "creator_name"), ("contribute", "creator_affiliation"), ("contribute", "model_description"),
    # None = not given: only the DataLoader arguments given reach torch's DataLoader (medigan 1.0.0 passed
    # prefetch_factor=2 with num_workers=0, which torch 2 refuses; pin_memory defaults to True with CUDA)
    *(("get_as_torch_dataloader", name) for name in _LOADER_ARGS),
}


def parameters(name: str) -> list[inspect.Parameter]:
    return [p for p in inspect.signature(getattr(Generators, name)).parameters.values() if p.name != "self"]


def test_the_data_is_medigan_1_0_0s_thirty_two_public_methods():
    assert DATA["source"]["commit"] == "7bd778503188cad732da27b91feaaab99469c07d"
    assert len(PUBLIC) == 32 and "__init__" in MEDIGAN
    for name in ("add_model_contributor", "get_model_contributor_by_id", "add_metadata_from_file",
                 "add_metadata_from_input", "is_model_metadata_valid", "add_model_to_config", "push_to_zenodo",
                 "push_to_github"):
        assert name in PUBLIC


@pytest.mark.parametrize("name", PUBLIC)
def test_every_medigan_method_is_there(name):
    assert callable(getattr(Generators, name, None)), f"Generators.{name} of medigan 1.0.0 is missing"


@pytest.mark.parametrize("name", [*PUBLIC, "__init__"])
def test_every_medigan_parameter_is_accepted(name):
    params = parameters(name)
    named = {p.name for p in params if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)}
    takes_kwargs = any(p.kind == p.VAR_KEYWORD for p in params)
    for param in MEDIGAN[name]["parameters"]:
        if param in MISSING.get(name, ()):
            continue
        if param in VIA_KWARGS.get(name, ()):
            assert takes_kwargs, f"Generators.{name} no longer takes **kwargs, which carried medigan's {param}"
            continue
        assert param in named, f"Generators.{name} lost medigan's parameter {param!r}"


@pytest.mark.parametrize("name", [*PUBLIC, "__init__"])
def test_positional_medigan_calls_bind_the_same(name):
    if name in POSITIONAL_GAPS:
        pytest.skip("known difference, see POSITIONAL_GAPS")
    positional = [p.name for p in parameters(name) if p.kind == p.POSITIONAL_OR_KEYWORD]
    expected = MEDIGAN[name]["parameters"]
    assert positional[:len(expected)] == expected, f"Generators.{name}: medigan's parameters in medigan's order"


@pytest.mark.parametrize("name", [*PUBLIC, "__init__"])
def test_medigan_defaults_are_kept(name):
    params = {p.name: p for p in parameters(name)}
    for param in MEDIGAN[name]["parameters"]:
        if param not in params or (name, param) in CHANGED_DEFAULTS:
            continue
        default = params[param].default
        if param in MEDIGAN[name]["defaults"]:
            assert default == MEDIGAN[name]["defaults"][param], f"Generators.{name}({param}=) default changed"
        # a parameter medigan requires may get a default in medhub (tokens from the environment)


def test_the_new_methods_have_medigans_exact_signature():
    """The contribution steps and ``install_dependencies`` added for medigan code (issue 23, item 10)."""
    for name in ("add_model_contributor", "get_model_contributor_by_id", "add_metadata_from_file",
                 "add_metadata_from_input", "is_model_metadata_valid", "add_model_to_config", "push_to_zenodo",
                 "push_to_github"):
        params = parameters(name)
        assert [p.name for p in params] == MEDIGAN[name]["parameters"]
        assert {p.name: p.default for p in params if p.default is not p.empty} == MEDIGAN[name]["defaults"]
    for name in ("add_model_executor", "get_model_executor"):
        assert [p.name for p in parameters(name)][:2] == ["model_id", "install_dependencies"]
        assert dict((p.name, p.default) for p in parameters(name))["install_dependencies"] is False


def test_known_differences_are_still_there():
    """Each listed difference is real; remove its entry once it is fixed."""
    for name, params in MISSING.items():
        assert not params & {p.name for p in parameters(name)}, f"{name}: now accepted, remove it from MISSING"
    for name, params in VIA_KWARGS.items():
        assert not params & {p.name for p in parameters(name)}, f"{name}: now named, remove it from VIA_KWARGS"
    for name in POSITIONAL_GAPS:
        positional = [p.name for p in parameters(name) if p.kind == p.POSITIONAL_OR_KEYWORD]
        expected = MEDIGAN[name]["parameters"]
        assert positional[:len(expected)] != expected, f"{name}: now binds as in medigan, remove it from POSITIONAL_GAPS"
    for name, param in CHANGED_DEFAULTS:
        default = {p.name: p.default for p in parameters(name)}[param]
        assert default != MEDIGAN[name]["defaults"][param], f"{name}({param}=): default is medigan's again"


# ---------------------------------------------------------------------------- medigan's last differences (issue 33)
def test_dataloader_positional_call_as_in_medigan():
    """medigan 1.0.0's order starts with ``dataset``: ``(None, "00101", 4)`` is model 00101, 4 samples."""
    pytest.importorskip("torch")
    g = Generators()
    loader = g.get_as_torch_dataloader(None, "00101", 4)
    assert len(loader.dataset) == 4 and len(loader) == 4  # DataLoader's own batch_size 1: nothing else given
    assert len(g.get_as_torch_dataloader(101, num_samples=4, batch_size=2)) == 2  # medhub's model-first call
    assert g.get_as_torch_dataloader(loader.dataset, batch_size=4).dataset is loader.dataset


def test_find_model_and_generate_without_a_match_warns_and_returns_none(caplog, tmp_path):
    with caplog.at_level("WARNING", logger="medhub.generators"):
        assert Generators().find_model_and_generate(["dcgan", "no-such-modality-xyz"], output_path=tmp_path / "o") is None
    assert "No model matches" in caplog.text and not (tmp_path / "o").exists()


def test_add_model_to_config_makes_the_short_id_resolve():
    g = Generators()
    entry = g.get_config_by_id(101)
    assert g.add_model_to_config("00190_COPY_OF_101", {"00190_COPY_OF_101": entry}, is_local_model=True)
    assert g.config_manager.resolve_model_id(190) == "00190_COPY_OF_101"
    assert len(g.generate(190, num_samples=2, save_images=False, seed=0)) == 2


def test_get_models_by_key_value_pair_returns_the_matched_value():
    pairs = Generators().get_models_by_key_value_pair("organ", "BRAIN")
    assert pairs and all(p["organ"] == "BRAIN" for p in pairs)  # medigan: {model_id, key1: value1}
