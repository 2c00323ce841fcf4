"""The ``medhub`` command: every subcommand, --json, exit codes, one-line errors."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from medhub.cli import EXIT_ERROR, EXIT_NOT_FOUND, EXIT_OK, EXIT_USAGE, main


def run(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_list_and_json(capsys):
    code, out, _ = run(capsys, "list")
    assert code == EXIT_OK and "00101_DCGAN_BRAIN_MRI_T1" in out and "models (catalog" in out
    code, out, _ = run(capsys, "list", "--json")
    rows = json.loads(out)
    assert code == EXIT_OK and {"model_id", "type", "title"} <= set(rows[0])


def test_search(capsys):
    code, out, _ = run(capsys, "search", "brain", "mri", "--json")
    assert code == EXIT_OK and "00101_DCGAN_BRAIN_MRI_T1" in [r["model_id"] for r in json.loads(out)]
    code, out, _ = run(capsys, "search", "brain", "mammography", "-O", "or")
    assert code == EXIT_OK and "00001_DCGAN_MMG_CALC_ROI" in out
    code, _, _ = run(capsys, "search", "no-such-thing-anywhere")
    assert code == EXIT_NOT_FOUND


def test_rank(capsys):
    code, out, _ = run(capsys, "rank", "--metric", "FID", "--json")
    ranking = json.loads(out)
    assert code == EXIT_OK and ranking == sorted(ranking, key=lambda r: r["FID"])
    code, out, _ = run(capsys, "rank", "-m", "FID", "--order", "desc", "--models", "1", "2")
    assert code == EXIT_OK and out.index("00002") < out.index("00001")


def test_info(capsys):
    code, out, _ = run(capsys, "info", "101", "--key", "execution.interface", "--json")
    assert code == EXIT_OK and json.loads(out) == "medhub/1"
    code, _, err = run(capsys, "info", "00999")
    assert code == EXIT_NOT_FOUND and err.count("\n") == 1 and "Closest ids" in err and "Traceback" not in err
    code, _, err = run(capsys, "info", "101", "--key", "execution.nope")
    assert code == EXIT_USAGE and err.startswith("medhub: error:") and err.count("\n") == 1


def test_generate_with_toy_catalog(capsys, toy_catalog, tmp_path):
    out_dir = tmp_path / "out"
    code, out, _ = run(capsys, "--config", str(toy_catalog), "generate", "900", "-n", "5", "-o", str(out_dir),
                       "--seed", "3", "--batch-size", "2", "--device", "cpu", "--json", "--no-progress")
    data = json.loads(out)
    assert code == EXIT_OK and data["num_samples"] == 5 and data["seed"] == 3
    assert len(list(out_dir.glob("*_image.png"))) == 5
    # the same call again refuses to mix runs
    code, _, err = run(capsys, "--config", str(toy_catalog), "generate", "900", "-n", "5", "-o", str(out_dir))
    assert code == EXIT_ERROR and "not empty" in err and err.count("\n") == 1


def test_generate_long_options_and_args(capsys, toy_catalog, tmp_path):
    code, _, _ = run(capsys, "generate", "902", "--num-samples", "2", "--output", str(tmp_path / "o"), "--seed", "1",
                     "--arg", "size=6", "--config", str(toy_catalog), "--no-progress")
    assert code == EXIT_OK
    code, _, err = run(capsys, "generate", "902", "-n", "1", "-o", str(tmp_path / "p"), "--arg", "6",
                       "--config", str(toy_catalog))
    assert code == EXIT_USAGE and "KEY=VALUE" in err


def test_generate_bad_input_exit_codes(capsys, toy_catalog, tmp_path):
    code, _, err = run(capsys, "generate", "900", "-n", "0", "-o", str(tmp_path / "o"), "--config", str(toy_catalog))
    assert code == EXIT_USAGE and "num_samples" in err
    code, _, err = run(capsys, "generate", "905", "-n", "1", "-o", str(tmp_path / "o"), "--config", str(toy_catalog))
    assert code == EXIT_ERROR and "pip install" in err and err.count("\n") == 1
    code, _, _ = run(capsys, "generate", "900", "-n", "notanumber")
    assert code == EXIT_USAGE


def test_debug_shows_traceback(capsys, toy_catalog, tmp_path):
    code, _, err = run(capsys, "generate", "903", "-n", "40", "-o", str(tmp_path / "o"), "--debug",
                       "--config", str(toy_catalog))
    assert code == EXIT_ERROR and "Traceback" in err and "boom" in err


def test_version(capsys):
    code, out, _ = run(capsys, "version", "--json")
    data = json.loads(out)
    assert code == EXIT_OK and data["medhub"] and data["catalog_version"]


def test_refresh_offline(capsys, monkeypatch):
    monkeypatch.setenv("MEDHUB_OFFLINE", "1")
    code, out, _ = run(capsys, "refresh")
    assert code == EXIT_OK and out.startswith("offline")


def test_bad_catalog_is_one_line(capsys, tmp_path):
    bad = tmp_path / "c.json"
    bad.write_text(json.dumps({"schema_version": 1, "catalog_version": "1", "models": {"00001_X": {}}}))
    code, _, err = run(capsys, "--config", str(bad), "list")
    assert code == EXIT_ERROR and "$.models.00001_X" in err and err.count("\n") == 1


def test_console_script_installed():
    exe = shutil.which("medhub") or str(Path(sys.executable).parent / "medhub")
    if not Path(exe).exists():
        pytest.skip("medhub console script not on PATH (package not installed)")
    done = subprocess.run([exe, "search", "brain", "t1", "--json"], capture_output=True, text=True)
    assert done.returncode == 0 and "00101_DCGAN_BRAIN_MRI_T1" in done.stdout
    done = subprocess.run([exe, "info", "nope"], capture_output=True, text=True)
    assert done.returncode == EXIT_NOT_FOUND and done.stderr.startswith("medhub: error:")


def test_console_script_is_the_fast_exit_entry_point():
    from importlib.metadata import entry_points

    (script,) = entry_points(group="console_scripts", name="medhub")
    assert script.value == "medhub.cli:console_main"
