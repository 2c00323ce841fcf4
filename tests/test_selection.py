"""ModelSelector: keyword search with AND / OR / XOR, ranking, selection accessors."""

from __future__ import annotations

import pytest
from conftest import IMG8, entry, write_catalog

from medhub import Generators
from medhub.errors import SelectionError
from medhub.selection import ModelSelector, Ranking, SearchResult, metric_direction, normalize


@pytest.fixture
def g(tmp_path) -> Generators:
    models = {
        "00001_A": entry("a", [IMG8], selection={
            "modality": ["MRI", "T1-weighted"], "organ": ["Brain"], "tags": ["full_field"],
            "performance": {"FID": 30.5, "SSIM": 0.8, "CLF": {"trained_on_real_and_fake": {"f1": 0.9}}}}),
        "00002_B": entry("b", [IMG8], selection={
            "modality": ["CT"], "organ": ["brain", "head"], "tags": ["T10"],
            "performance": {"FID": "12.0", "SSIM": 0.95, "CLF": {"trained_on_real_and_fake": {"f1": "0.7"}}}}),
        "00003_C": entry("c", [IMG8], selection={
            "modality": ["Mammography"], "organ": ["breast"], "tags": ["full field digital"],
            "performance": {"FID": None, "SSIM": "n/a", "CLF": {"trained_on_real_and_fake": {}}}}),
        "00004_D": entry("d", [IMG8], selection={
            "modality": ["MRI"], "organ": ["knee"], "tags": [],
            "performance": {"FID": 50, "SSIM": True, "CLF": {"trained_on_real_and_fake": {"f1": [1, 2]}}}}),
    }
    return Generators(config_file=write_catalog(tmp_path / "c.json", models))


def ids(result) -> list[str]:
    return sorted(m.model_id for m in result)


def test_and_or_xor(g):
    assert ids(g.find_model(["brain", "mri"], "AND")) == ["00001_A"]
    assert ids(g.find_model(["brain", "mri"], "OR")) == ["00001_A", "00002_B", "00004_D"]
    # XOR: exactly one of the values matches
    assert ids(g.find_model(["brain", "mri"], "XOR")) == ["00002_B", "00004_D"]
    assert ids(g.find_model(["brain", "mri"], "or")) == ids(g.find_model(["brain", "mri"], "OR"))


def test_whole_word_after_normalising_separators(g):
    assert ids(g.find_model("t1")) == ["00001_A"]  # "T1-weighted" -> "t1 weighted"; "T10" does not match
    assert ids(g.find_model("t10")) == ["00002_B"]
    assert ids(g.find_model("full field")) == ["00001_A", "00003_C"]  # "full_field" and "full field digital"
    assert ids(g.find_model("full-field")) == ["00001_A", "00003_C"]
    assert ids(g.find_model("mamm")) == []  # no partial words


def test_case_sensitivity(g):
    assert ids(g.find_matching_models_by_values(["brain"], is_case_sensitive=True)) == ["00002_B"]
    assert ids(g.find_matching_models_by_values(["Brain"], is_case_sensitive=True)) == ["00001_A"]
    assert ids(g.find_matching_models_by_values(["BRAIN"])) == ["00001_A", "00002_B"]


def test_keys_are_matched_only_when_asked(g):
    assert ids(g.find_matching_models_by_values(["organ"])) == []
    assert len(g.find_matching_models_by_values(["organ"], are_keys_also_matched=True)) == 4


def test_numbers_match_as_text(tmp_path):
    models = {"00001_A": entry("a", [IMG8], selection={"height": 128, "year": "2021"})}
    g = Generators(config_file=write_catalog(tmp_path / "c.json", models))
    assert ids(g.find_model([128, "2021"])) == ["00001_A"]


def test_match_objects_expose_model_id_and_matched_values(g):
    result = g.find_matching_models_by_values(["mri", "brain"], "AND")
    assert isinstance(result, SearchResult) and isinstance(result, list)
    match = result[0]
    assert match.model_id == "00001_A"
    assert match.matched_values == ["mri", "brain"]
    assert {m.key for m in match.matched_entries} == {"modality", "organ"}
    assert "00001_A" in str(result) and "<table>" in result._repr_html_()


@pytest.mark.parametrize("values, op", [([], "AND"), ([""], "AND"), (["brain"], "NAND")])
def test_bad_search_arguments(g, values, op):
    with pytest.raises(SelectionError):
        g.find_model(values, op)


def test_rank_default_direction_follows_metric(g):
    fid = g.rank_models_by_performance(metric="FID")
    assert [r["model_id"] for r in fid] == ["00002_B", "00001_A", "00004_D"]  # lower is better, "12.0" parsed
    assert fid[0] == {"model_id": "00002_B", "FID": 12.0}
    ssim = g.rank_models_by_performance(metric="SSIM")  # higher is better; "n/a" and True left out
    assert [r["model_id"] for r in ssim] == ["00002_B", "00001_A"]
    assert metric_direction("FID_RADIMAGENET") == "asc" and metric_direction("CLF.x.f1") == "desc"


def test_rank_explicit_order_and_subset(g):
    assert [r["model_id"] for r in g.rank_models_by_performance(metric="FID", order="desc")][0] == "00004_D"
    sub = g.rank_models_by_performance(model_ids=["00001_A", 4], metric="FID")
    assert [r["model_id"] for r in sub] == ["00001_A", "00004_D"]
    with pytest.raises(SelectionError, match="order"):
        g.rank_models_by_performance(metric="FID", order="up")


def test_rank_dotted_metric_mixed_types(g):
    ranking = g.rank_models_by_performance(metric="CLF.trained_on_real_and_fake.f1")
    assert isinstance(ranking, Ranking)
    # a list ranks by its best element in the ranking's order (as in medigan): [1, 2] -> 2 for desc
    assert [(r["model_id"], r["CLF.trained_on_real_and_fake.f1"]) for r in ranking] == [
        ("00004_D", 2.0), ("00001_A", 0.9), ("00002_B", 0.7)]
    ascending = g.rank_models_by_performance(metric="CLF.trained_on_real_and_fake.f1", order="asc")
    assert [(r["model_id"], r["CLF.trained_on_real_and_fake.f1"]) for r in ascending] == [
        ("00002_B", 0.7), ("00001_A", 0.9), ("00004_D", 1.0)]
    assert "rank" in str(ranking) and "<table>" in ranking._repr_html_()
    assert g.rank_models_by_performance(metric="NOPE") == []


def test_find_models_and_rank(g):
    ranked = g.find_models_and_rank(["mri"], metric="FID")
    assert [r["model_id"] for r in ranked] == ["00001_A", "00004_D"]
    assert g.find_models_and_rank(["nothing-like-this"]) == []


def test_selection_accessors(g):
    assert g.get_selection_criteria_by_id("00001_A")["organ"] == ["Brain"]
    assert list(g.get_selection_criteria_by_id(1, is_model_id_removed=False)) == ["00001_A"]
    assert len(g.get_selection_criteria_by_ids()) == 4
    assert g.get_selection_values_for_key("modality") == ["MRI", "T1-weighted", "CT", "Mammography"]
    assert g.get_selection_values_for_key("performance.FID", model_id="00002_B") == ["12.0"]
    assert g.get_selection_keys("00001_A") == ["modality", "organ", "tags", "performance"]
    assert g.list_models() == ["00001_A", "00002_B", "00003_C", "00004_D"]
    pairs = g.get_models_by_key_value_pair("organ", "BRAIN")
    assert [p["model_id"] for p in pairs] == ["00001_A", "00002_B"]
    assert g.get_models_by_key_value_pair("organ", "BRAIN", is_case_sensitive=True) == []


def test_bundled_catalog_search_finds_shipped_and_medigan_models():
    g = Generators()
    brain_mri = g.find_model(["brain", "mri"]).model_ids
    assert {"00101_DCGAN_BRAIN_MRI_T1", "00007_INPAINT_BRAIN_MRI", "00021_CYCLEGAN_BRAIN_MRI_T1_T2"} <= set(brain_mri)
    assert "00001_DCGAN_MMG_CALC_ROI" in g.find_model(["mammography", "calcification"]).model_ids
    ranked = g.rank_models_by_performance(metric="FID")
    assert ranked[0]["FID"] <= ranked[-1]["FID"]
    assert "00022_WGAN_CARDIAC_AGING" not in [r["model_id"] for r in ranked]  # its FID is null
    by_ratio = g.rank_models_by_performance(metric="FID_ratio")
    assert "00101_DCGAN_BRAIN_MRI_T1" in [r["model_id"] for r in by_ratio]
    assert by_ratio[0]["FID_ratio"] >= by_ratio[-1]["FID_ratio"]  # higher is better


def test_normalize():
    assert normalize("Full-Field_MMG  (digital)") == "full field mmg digital"
    assert normalize("T1", case_sensitive=True) == "T1"


def test_selector_is_usable_alone(g):
    sel = ModelSelector(g.config_manager)
    assert sel.find_model("knee").model_ids == ["00004_D"]
