"""Issue 33 point 8: the first call of a process pays only for what it uses (benchmarks/cold_start.py
measures it). No timings here: what is checked is what a first call imports and that the cheaper
paths give the same answers as the ones they replace."""

from __future__ import annotations

import importlib
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from medhub.errors import DependencyError

ROOT = Path(__file__).resolve().parents[1]
#: Imported by a first run to files only, or by requirements with markers or URLs only.
NOT_IN_MEMORY = ("packaging.requirements", "packaging.markers", "medhub.outputs.runs",
                 "medhub.outputs.manifest", "medhub.outputs.workers")


def _first_call_modules(code: str, tmp_path: Path) -> list[str]:
    script = ("import json, sys\nfrom medhub import Generators\ng = Generators()\n" + code
              + f"\nprint(json.dumps([m for m in {NOT_IN_MEMORY!r} if m in sys.modules]))")
    env = {"MEDHUB_HOME": str(tmp_path / "home"), "MEDHUB_OFFLINE": "1", "PATH": "/usr/bin:/bin"}
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, cwd=ROOT, env=env,
                         timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_a_first_generate_in_memory_imports_neither_the_pep508_parser_nor_the_writer_stack(tmp_path):
    """The dependency check and the output checks need neither (they cost tens of ms per process)."""
    loaded = _first_call_modules("g.generate(101, num_samples=2, save_images=False, seed=0, device='cpu', "
                                 "progress=False)", tmp_path)
    assert loaded == []


def test_a_first_generate_to_files_imports_the_writer_stack_when_it_writes(tmp_path):
    out = tmp_path / "run"
    loaded = _first_call_modules(f"g.generate(101, num_samples=2, output_path={str(out)!r}, seed=0, device='cpu', "
                                 "progress=False)", tmp_path)
    assert "medhub.outputs.runs" in loaded and "packaging.requirements" not in loaded
    assert len(list(out.glob("*.png"))) == 2


def test_every_public_name_of_medhub_outputs_still_imports():
    namespace: dict = {}
    exec("from medhub.outputs import *", namespace)  # noqa: S102 - every name of __all__, loaded on first use
    outputs = importlib.import_module("medhub.outputs")
    assert all(namespace[name] is getattr(outputs, name) for name in outputs.__all__)
    assert namespace["RunWriter"] is importlib.import_module("medhub.outputs.runs").RunWriter
    assert namespace["encode"] is importlib.import_module("medhub.outputs.encode").encode  # the function
    assert set(outputs.__all__) <= set(dir(outputs))
    with pytest.raises(AttributeError, match="no attribute 'no_such_name'"):
        outputs.no_such_name  # noqa: B018


PLAIN = ["numpy", "Torch>=2.1,<3", "torch >= 2.1 , < 3", "medhub>=0.2.0.dev0,<1", "monai[nibabel, fire]>=1.3",
         "my.pkg~=1.4", "a_b-c==2.*", "x===weird", "safetensors>=0.4", "numpy!=1.25.0,>=1.24"]
FULL = ['torch>=2.1; python_version >= "3.8"', "torch>=2.1,", "pkg @ https://example.org/p.whl", "torch (>=2.1)"]
BAD = ["numpy>=>1", ">=2", "torch>=1.*", "torch>=1.0+local", "", "to rch"]


@pytest.mark.parametrize("text", PLAIN + FULL)
def test_requirements_parse_as_packaging_parses_them(text):
    from packaging.requirements import Requirement

    from medhub.execution.deps import parse_requirement, requirement_name

    ours, theirs = parse_requirement(text), Requirement(text)
    assert (ours.name, str(ours.specifier), ours.marker is None, ours.url) == (
        theirs.name, str(theirs.specifier), theirs.marker is None, theirs.url)
    assert requirement_name(text) == theirs.name.lower()


@pytest.mark.parametrize("text", BAD)
def test_bad_requirements_are_named_as_before(text):
    from medhub.execution.deps import parse_requirement

    with pytest.raises(DependencyError, match="is not a valid PEP 508 requirement"):
        parse_requirement(text)



ATTACK = """
import os, sys
from medhub import Generators
from medhub.errors import IntegrityError

catalog, weights, tamper = sys.argv[1], sys.argv[2], sys.argv[3] == "tamper"

def run():
    try:
        Generators(config_file=catalog).generate("00990_TOY", num_samples=1, save_images=False, seed=0, progress=False)
        return "ran"
    except IntegrityError:
        return "refused"

first = run()
if tamper:  # same size, mtime put back: only the ctime (and the hash) tell
    st = os.stat(weights)
    with open(weights, "r+b") as fh:
        fh.write(b"X")
    os.utime(weights, ns=(st.st_atime_ns, st.st_mtime_ns))
print(first, run())
"""


def test_weights_rewritten_between_processes_are_hashed_and_refused_again(tmp_path):
    """No record on disk lets a process skip hashing weights (docs/security.md): a package whose
    weights were rewritten (same size, mtime put back) after other processes used it is refused by
    the next process too, as by the process that saw the change."""
    from conftest import IMG8, entry, write_catalog, write_package

    from medhub.execution.resolve import tree_digest

    folder = write_package(tmp_path / "pkgs", "toy", """
        import numpy as np
        def load(weights_path, device):
            return np.load(weights_path)
        def sample(model, seeds, **inputs):
            return {"image": np.stack([np.full((8, 8), model[0], np.uint8) for _ in seeds])}
        """)
    np.save(folder / "weights.npy", np.arange(64, dtype=np.uint8))
    catalog = write_catalog(tmp_path / "catalog.json", {"00990_TOY": entry(
        str(folder), [IMG8], weights="weights.npy", sha256=tree_digest(folder)[0])})
    env = {"MEDHUB_HOME": str(tmp_path / "home"), "MEDHUB_OFFLINE": "1", "PATH": "/usr/bin:/bin",
           "PYTHONPATH": str(ROOT / "tests")}

    def process(tamper: bool) -> str:
        out = subprocess.run([sys.executable, "-c", ATTACK, str(catalog), str(folder / "weights.npy"),
                              "tamper" if tamper else "-"], capture_output=True, text=True, cwd=ROOT, env=env,
                             timeout=300)
        assert out.returncode == 0, out.stderr[-3000:]
        return out.stdout.split()[-2:]

    assert process(tamper=False) == ["ran", "ran"]
    assert process(tamper=True) == ["ran", "refused"]  # the process that used it sees the change
    assert process(tamper=False) == ["refused", "refused"]  # and so does every process after it


def test_a_second_process_does_not_compile_the_schema_of_an_unchanged_catalog(tmp_path):
    code = "import sys\nfrom medhub import Generators\nGenerators()\nprint('fastjsonschema' in sys.modules)"
    env = {"MEDHUB_HOME": str(tmp_path / "home"), "PATH": "/usr/bin:/bin"}

    def compiled() -> str:
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, env=env,
                             timeout=300)
        assert out.returncode == 0, out.stderr[-3000:]
        return out.stdout.split()[-1]

    assert [compiled(), compiled()] == ["True", "False"]
