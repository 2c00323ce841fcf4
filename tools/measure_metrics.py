"""KID, precision / recall / density / coverage (with bootstrap intervals), their real-real
baselines and the memorisation check of the shipped models; writes the catalog and model cards.

    python tools/measure_metrics.py [MODEL_ID ...] [--seed 0] [--json results.json]
    python tools/measure_metrics.py --from-json results.json [--downstream downstream.json] --write

The real, synthetic and training sets are exactly those of ``tools/measure_fid.py`` (its plans):
held-out real images of each model's source, as many synthetic images made the way the model is
used, and the training images of the same source. From one Inception feature extraction per set:

* ``FID_ci``: the 95% bootstrap interval of the catalog's ``FID`` (1000 replicates);
* ``KID``, ``precision``, ``recall``, ``density``, ``coverage`` (k = 5), each with ``<name>_ci``
  (95% interval) and ``<name>_rr``: the same figure for the held-out set against as many training
  images (mean over the 5 draws of ``FID_rr``), i.e. what real images of the source score;
* ``metrics_settings``: numbers of images, k, replicates, KID subsets, the script;
* ``memorization``: the share of samples closer to a training image than the held-out images are,
  its baseline, and the share of near copies (pixels and features; ``medhub.evaluate.memorization``).

``--downstream FILE`` adds the results of ``tools/measure_downstream.py --json FILE`` for 00103
(``GAN_train``, ``GAN_test``, ``GAN_real_baseline``) and 00104 (``Dice``, ``Dice_real_trained``).
``--write`` stores all of it in ``selection.performance`` of ``config/global.json`` (only these
keys; the FID keys stay as ``measure_fid.py`` wrote them) and writes the ``## Evaluation beyond
FID`` section of each model card; then re-pin: ``python tools/catalog.py pin``.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tools"))

import measure_fid  # noqa: E402  (the plans: which real, synthetic and training images)

FIGURES = ("KID", "precision", "recall", "density", "coverage")
DRAWS, K, BOOTSTRAP = 5, 5, 1000
SECTION = "## Evaluation beyond FID"
MNI_NOTE = ("The held-out slices lie between training slices of the same volume (every 4th slice, 1 mm apart), so "
            "each held-out slice is closer to a training slice than to any other held-out slice: the baseline is "
            "100% and the bar is high; near copies are what would show copying.")
NOTES = {
    "00101_DCGAN_BRAIN_MRI_T1": MNI_NOTE, "00103_CDCGAN_BRAIN_MRI_TISSUE": MNI_NOTE, "00104_PIX2PIX_BRAIN_SEG_TO_T1": MNI_NOTE,
    "00102_WGANGP_HEAD_CT": MNI_NOTE.replace("1 mm", "1.5 mm"), "00105_CYCLEGAN_HEAD_MRI_T1_CT": MNI_NOTE.replace("1 mm", "1.5 mm"),
    "00106_DDPM_FUNDUS_RGB": ("The held-out patches come from another region of the photograph (its right third), so they "
                              "are farther from the training patches than any image of the training region would be: a "
                              "high 'closer than held-out' share here reflects that split, not copying (near copies: "
                              "see the table)."),
    "00107_ATLAS3D_BRAIN_MRI_T1_SEG": ("The atlas is built from the whole template, so the 'held-out' slices are not held "
                                       "out from it; the memorisation figures are listed for completeness."),
}


def _r(x: float, digits: int = 4) -> float:
    return float(f"{x:.{digits}g}")


def measure(model_id: str, seed: int) -> dict:
    from medhub.evaluate import compute_features, compute_metrics
    from medhub.evaluate.memorization import memorization_from_arrays

    started = time.time()
    real, syn, train, description = measure_fid.PLANS[model_id](seed)
    a, _ = compute_features(list(real), seed=seed)
    b, _ = compute_features(list(syn), seed=seed)
    t, _ = compute_features(list(train), seed=seed)
    figures = compute_metrics(a, b, k=K, bootstrap=BOOTSTRAP, seed=seed)
    draws = [compute_metrics(a, t[np.sort(np.random.default_rng(seed + r).choice(len(t), len(b), replace=False))],
                             metrics="kid,prdc", k=K, bootstrap=0, seed=seed) for r in range(DRAWS)]
    out: dict = {"FID": round(figures["FID"].value, 2), "FID_ci": [round(figures["FID"].low, 2),
                                                                    round(figures["FID"].high, 2)]}
    for name in FIGURES:
        est = figures[name]
        out[name], out[f"{name}_ci"] = _r(est.value), [_r(est.low), _r(est.high)]
        out[f"{name}_rr"] = _r(float(np.mean([d[name].value for d in draws])))
    mem = memorization_from_arrays(list(syn), list(train), list(real), (b, t, a))
    out["memorization"] = {space: {k: _r(v, 3) for k, v in s.items() if k in (
        "closer_than_held_out", "closer_than_held_out_baseline", "near_copies")} for space, s in mem.summary.items()}
    out["metrics_settings"] = {"n_real": len(a), "n_synthetic": len(b), "n_training": len(t), "k": K,
                               "bootstrap": BOOTSTRAP, "confidence": 0.95, "kid_subsets": 100,
                               "kid_subset_size": min(1000, len(a), len(b)), "rr_draws": DRAWS, "seed": seed,
                               "script": "tools/measure_metrics.py"}
    out["real_set"] = description
    out["seconds"] = round(time.time() - started, 1)
    return out


def downstream_keys(model_id: str, res: dict) -> dict:
    """Catalog keys from a ``tools/measure_downstream.py --json`` result of one model."""
    if "gan_train" in res:
        keys = {"GAN_train": "gan_train", "GAN_test": "gan_test", "GAN_real_baseline": "real_baseline"}
        return {**{k: round(res[v], 3) for k, v in keys.items()}, **{f"{k}_std": round(res[f"{v}_std"], 3)
                                                                        for k, v in keys.items()},
                "downstream_repeats": res["repeats"]}
    if "dice_trained_on_synthetic" in res:
        syn, real = res["dice_trained_on_synthetic"], res["dice_trained_on_real"]
        return {"Dice": round(syn["mean"], 3), "Dice_std": round(syn["mean_std"], 3),
                "Dice_real_trained": round(real["mean"], 3), "Dice_real_trained_std": round(real["mean_std"], 3),
                "downstream_repeats": res["repeats"]}
    return {}


def card_section(model_id: str, res: dict, extra: dict) -> str:
    s = res["metrics_settings"]
    rows = [SECTION, "",
            f"`python tools/measure_metrics.py {model_id}` (standard FID Inception features, seed {s['seed']}; the same "
            "numbers are in the catalog's `selection.performance`). The same held-out real set as FID "
            f"({s['n_real']} images) against {s['n_synthetic']} synthetic images; in brackets the 95% bootstrap "
            f"interval ({s['bootstrap']} replicates); *real-real*: the held-out set against as many training images "
            f"(mean of {s['rr_draws']} draws), what real images of the source score.", "",
            "| figure | model | real-real |", "|---|---|---|",
            f"| FID | {res['FID']:.1f} [{res['FID_ci'][0]:.1f}, {res['FID_ci'][1]:.1f}] | see above |"]
    for name in FIGURES:
        lo, hi = res[f"{name}_ci"]
        rows.append(f"| {name}{' (k = 5)' if name != 'KID' else ''} | {res[name]:.3g} [{lo:.3g}, {hi:.3g}] | "
                    f"{res[name + '_rr']:.3g} |")
    mem = res["memorization"]
    rows += ["", "Memorisation check (`medhub.evaluate.memorization_report`): share of samples closer to their "
             "nearest training image than any held-out image is (baseline: the held-out images themselves), and "
             "near copies (pixel distance below every held-out image's):", "",
             "| space | closer than held-out | baseline | near copies |", "|---|---|---|---|"]
    for space, m in mem.items():
        rows.append(f"| {space} | {100 * m['closer_than_held_out']:.0f}% | "
                    f"{100 * m['closer_than_held_out_baseline']:.0f}% | {100 * m['near_copies']:.0f}% |")
    if model_id in NOTES:
        rows += ["", NOTES[model_id]]
    if extra.get("GAN_train") is not None:
        rows += ["", "GAN-train / GAN-test (`python tools/measure_downstream.py`; a small CNN classifies the map type, "
                 f"mean +/- std over {extra['downstream_repeats']} training seeds): trained on synthetic, accuracy on "
                 f"the held-out real slices (GAN-train) {extra['GAN_train']:.3f} +/- {extra['GAN_train_std']:.3f}; "
                 f"trained on the real training slices, accuracy on the synthetic ones (GAN-test) "
                 f"{extra['GAN_test']:.3f} +/- {extra['GAN_test_std']:.3f}; real baseline (trained on real, tested "
                 f"on held-out real) {extra['GAN_real_baseline']:.3f} +/- {extra['GAN_real_baseline_std']:.3f}."]
    if extra.get("Dice") is not None:
        rows += ["", "Downstream segmentation (`python tools/measure_downstream.py`; a small U-Net segments T1 slices "
                 "into background, CSF / other, grey and white matter; mean Dice on the held-out real pairs, +/- std "
                 f"over {extra['downstream_repeats']} training seeds): trained on synthetic pairs "
                 f"{extra['Dice']:.3f} +/- {extra['Dice_std']:.3f}, trained on the real training pairs "
                 f"{extra['Dice_real_trained']:.3f} +/- {extra['Dice_real_trained_std']:.3f}."]
    return "\n".join(rows) + "\n"


def write_card(model_id: str, section: str) -> None:
    """Replace the section, or insert it after ``## Evaluation`` (before the next ``## `` heading)."""
    card = ROOT / "models" / model_id / "README.md"
    text = card.read_text()
    start = text.find("\n" + SECTION)
    if start >= 0:
        end = text.find("\n## ", start + 1)
        text = text[: start + 1] + section + ("\n" + text[end + 1:] if end >= 0 else "")
    else:
        ev = text.find("\n## Evaluation\n")
        end = text.find("\n## ", ev + 1) if ev >= 0 else -1
        if end < 0:
            text = text.rstrip("\n") + "\n\n" + section
        else:
            text = text[: end + 1] + section + "\n" + text[end + 1:]
    card.write_text(text)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("model_ids", nargs="*", help="full ids (default: every shipped model)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--json", type=Path, help="also write the results to this file")
    ap.add_argument("--from-json", type=Path, nargs="+", metavar="FILE", help="take the results of earlier runs")
    ap.add_argument("--downstream", type=Path, help="results of tools/measure_downstream.py --json")
    ap.add_argument("--write", action="store_true", help="store the results in the catalog and the model cards")
    args = ap.parse_args()
    results = measure_fid.run_plans(args.model_ids, args.seed, measure, args.from_json, args.json)
    if args.write:
        down = json.loads(args.downstream.read_text()) if args.downstream else {}
        path = ROOT / "config" / "global.json"
        catalog = json.loads(path.read_text())
        for model_id, res in results.items():
            perf = catalog["models"][model_id]["selection"].setdefault("performance", {})
            if perf.get("FID") is not None and abs(perf["FID"] - res["FID"]) > 0.01:
                raise SystemExit(f"{model_id}: FID {res['FID']} differs from the catalog's {perf['FID']}; "
                                 "rerun tools/measure_fid.py first")
            extra = downstream_keys(model_id, down.get(model_id, {}))
            perf.update({k: v for k, v in res.items() if k not in ("FID", "real_set", "seconds")}, **extra)
            write_card(model_id, card_section(model_id, res, extra))
        tmp = path.with_suffix(".json.tmp")
        tmp.write_text(json.dumps(catalog, indent=2, ensure_ascii=False) + "\n")
        tmp.replace(path)
        print(f"wrote {path} and the model cards of {len(results)} model(s); re-pin: python tools/catalog.py pin")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
