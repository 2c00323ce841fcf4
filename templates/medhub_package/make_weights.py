"""Write random-initialised weights for the template network, reproducibly.

    python make_weights.py [OUTPUT]      (default: weights.safetensors next to this script)

A real package ships the weights its training script produced; the template ships these so that
it runs end to end. The seed is fixed, so the same torch version writes the same file, byte for byte.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import torch
from safetensors.torch import save_file

HERE = Path(__file__).resolve().parent
SEED = 0


def _package():
    """Import this folder's __init__.py by file path (the folder name need not be a Python name)."""
    spec = importlib.util.spec_from_file_location("_template_package", HERE / "__init__.py",
                                                  submodule_search_locations=[str(HERE)])
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def make_weights(output: Path) -> Path:
    package = _package()
    torch.manual_seed(SEED)
    model = package.Generator()
    state = {name: t.detach().contiguous().clone() for name, t in model.state_dict().items()}
    # one metadata key only: safetensors writes a metadata dict in hash order, which would make
    # the file's bytes (and so the package's sha256) differ from run to run
    save_file(state, str(output), metadata={"format": "pt"})
    return output


if __name__ == "__main__":
    target = Path(sys.argv[1]) if len(sys.argv) > 1 else HERE / "weights.safetensors"
    path = make_weights(target)
    print(f"wrote {path} ({path.stat().st_size} bytes)")
