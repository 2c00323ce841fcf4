"""`import medhub` stays light: no torch, matplotlib, GitHub or Zenodo clients, no requests."""

from __future__ import annotations

import json
import subprocess
import sys

HEAVY = ["torch", "matplotlib", "github", "zenodo_client", "requests", "numpy", "PIL", "nibabel", "tqdm"]


def test_import_medhub_is_light():
    code = f"import sys, json, medhub; print(json.dumps([m for m in {HEAVY!r} if m in sys.modules]))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert json.loads(out.stdout) == []


def test_generators_and_search_stay_light():
    code = (
        "import sys, json; from medhub import Generators; g = Generators();"
        "g.find_model(['brain', 'mri']); g.rank_models_by_performance(metric='FID');"
        f"print(json.dumps([m for m in {HEAVY!r} if m in sys.modules]))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert json.loads(out.stdout) == []


def test_public_names():
    import medhub

    assert medhub.__version__
    assert issubclass(medhub.MedhubError, Exception)
    assert callable(medhub.Generators)
