"""The shipped models' KID, precision/recall/density/coverage, intervals, memorisation and downstream
figures in the catalog (tools/measure_metrics.py): consistent, rankable, and shown by the model cards."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import import_file

from medhub import Generators

ROOT = Path(__file__).resolve().parents[1]
CATALOG = json.loads((ROOT / "config" / "global.json").read_text())
SHIPPED = [m for m in CATALOG["models"] if m.startswith("001")]
FIGURES = ("KID", "precision", "recall", "density", "coverage")


def _perf(model_id: str) -> dict:
    return CATALOG["models"][model_id]["selection"]["performance"]


@pytest.mark.parametrize("model_id", SHIPPED)
def test_catalog_figures_with_intervals_and_sizes(model_id):
    perf = _perf(model_id)
    lo, hi = perf["FID_ci"]
    assert lo <= perf["FID"] <= hi
    for name in FIGURES:
        lo, hi = perf[f"{name}_ci"]
        assert lo <= perf[name] <= hi and isinstance(perf[f"{name}_rr"], float)
        if name not in ("KID", "density"):
            assert 0 <= lo <= hi <= 1
    s = perf["metrics_settings"]
    assert s["n_real"] == perf["FID_no_images"] and s["n_synthetic"] >= 2 and s["script"] == "tools/measure_metrics.py"
    assert set(perf["memorization"]) == {"features", "pixels"}


def test_downstream_figures_of_00103_and_00104():
    gan = _perf("00103_CDCGAN_BRAIN_MRI_TISSUE")
    assert all(0 <= gan[k] <= 1 for k in ("GAN_train", "GAN_test", "GAN_real_baseline"))
    seg = _perf("00104_PIX2PIX_BRAIN_SEG_TO_T1")
    assert 0 < seg["Dice"] <= 1 and 0 < seg["Dice_real_trained"] <= 1


@pytest.mark.parametrize("metric,ascending", [("KID", True), ("coverage", False), ("precision", False)])
def test_ranking_by_the_new_figures(metric, ascending):
    ranking = Generators().rank_models_by_performance(metric=metric)
    ranked = [r["model_id"] for r in ranking]
    assert set(SHIPPED) <= set(ranked)
    values = [r[metric] for r in ranking]
    assert values == sorted(values, reverse=not ascending)


def _measure_metrics():
    return import_file(ROOT / "tools" / "measure_metrics.py", "measure_metrics")


@pytest.mark.parametrize("model_id", SHIPPED)
def test_model_cards_show_the_catalog_figures(model_id):
    mm = _measure_metrics()
    perf = _perf(model_id)
    extra = {k: v for k, v in perf.items() if k.startswith(("GAN_", "Dice", "downstream_"))}
    section = mm.card_section(model_id, perf, extra)
    card = (ROOT / "models" / model_id / "README.md").read_text()
    assert section in card  # the card's section is exactly what the catalog's numbers give
    assert f"| KID | {perf['KID']:.3g} " in section
