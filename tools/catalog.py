"""Maintain ``config/global.json``.

    python tools/catalog.py import-medigan ../shared/reference/medigan-global.json
        (re)writes the 23 published medigan models as remote, unpinned medigan-interface entries,
        keeping every other entry as it is.
    python tools/catalog.py pin [MODEL_ID ...]
        for shipped packages (links relative to models/): writes each package's metadata.json
        from its catalog entry, then pins the package's tree digest and size in the catalog.
    python tools/catalog.py golden [MODEL_ID ...] [--args JSON]
        for shipped packages: pins them, generates their golden samples on the CPU (seed 0, 8
        samples, the entry's golden args or --args) and writes ``execution.golden`` (with its
        sha256, see medhub/golden.py), then pins again (metadata.json holds the golden entry).
    python tools/catalog.py check
        validates the catalog and checks every shipped package against its pinned sha256.

Bump ``catalog_version`` with ``--version X.Y.Z`` on import-medigan or pin.
"""

from __future__ import annotations

import argparse
import copy
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from medhub.compat import convert_medigan_entry  # noqa: E402
from medhub.config import validate_catalog  # noqa: E402
from medhub.execution.hub import is_hub_link  # noqa: E402
from medhub.execution.resolve import is_remote_link, tree_digest  # noqa: E402

CATALOG = ROOT / "config" / "global.json"
MODELS = ROOT / "models"


def load() -> dict:
    if CATALOG.exists():
        return json.loads(CATALOG.read_text())
    return {"schema_version": 1, "catalog_version": "0.1.0", "models": {}}


def save(doc: dict) -> None:
    doc["models"] = dict(sorted(doc["models"].items()))
    validate_catalog(doc, str(CATALOG))
    CATALOG.parent.mkdir(parents=True, exist_ok=True)
    CATALOG.write_text(json.dumps(doc, indent=2, ensure_ascii=False) + "\n")


def import_medigan(path: Path, doc: dict) -> None:
    medigan = json.loads(path.read_text())
    for model_id, entry in medigan.items():
        doc["models"][model_id] = convert_medigan_entry(entry)
    print(f"imported {len(medigan)} medigan models")


def _full_ids(doc: dict, ids: list[str]) -> set[str]:
    """Full ids for ids given in full or by number (101, 00101)."""
    out = set()
    for given in ids:
        hits = [m for m in doc["models"] if m == given or (given.isdigit() and m[:5] == given.zfill(5))]
        if len(hits) != 1:
            raise SystemExit(f"unknown model id {given!r}")
        out.add(hits[0])
    return out


def pin(doc: dict, ids: list[str]) -> None:
    wanted = _full_ids(doc, ids)
    for model_id, entry in doc["models"].items():
        link = entry["execution"]["package_link"]
        if is_remote_link(link) or is_hub_link(link) or (wanted and model_id not in wanted):
            continue
        folder = MODELS / link
        meta = copy.deepcopy(entry)
        meta["execution"].pop("sha256", None)
        meta["execution"].pop("size", None)
        (folder / "metadata.json").write_text(json.dumps({model_id: meta}, indent=2, ensure_ascii=False) + "\n")
        digest, size = tree_digest(folder)
        entry["execution"]["sha256"], entry["execution"]["size"] = digest, size
        print(f"{model_id}: sha256 {digest} size {size}")


def golden(doc: dict, ids: list[str], args: dict | None) -> None:
    from functools import partial

    from medhub import Generators
    from medhub.golden import golden_entry

    pin(doc, ids)
    save(doc)
    g = Generators(config_file=CATALOG)
    wanted = _full_ids(doc, ids)
    for model_id, entry in doc["models"].items():
        link = entry["execution"]["package_link"]
        if is_remote_link(link) or is_hub_link(link) or (wanted and model_id not in wanted):
            continue
        given = args if args is not None else (entry["execution"].get("golden") or {}).get("args")
        entry["execution"]["golden"] = golden_entry(partial(g.generate, model_id), given)
        print(f"{model_id}: golden sha256 {entry['execution']['golden']['sha256']}")
    pin(doc, ids)


def check(doc: dict) -> int:
    validate_catalog(doc, str(CATALOG))
    bad = 0
    for model_id, entry in doc["models"].items():
        link = entry["execution"]["package_link"]
        if is_remote_link(link) or is_hub_link(link):
            continue
        pinned = entry["execution"].get("sha256")
        digest, _ = tree_digest(MODELS / link)
        if not pinned:
            print(f"{model_id}: not pinned (run tools/catalog.py pin {model_id})")
            bad += 1
        elif digest != pinned:
            print(f"{model_id}: sha256 mismatch (run tools/catalog.py pin {model_id})")
            bad += 1
    print("catalog ok" if not bad else f"{bad} package(s) out of date")
    return 1 if bad else 0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    imp = sub.add_parser("import-medigan")
    imp.add_argument("path", type=Path)
    imp.add_argument("--version")
    pin_p = sub.add_parser("pin")
    pin_p.add_argument("ids", nargs="*")
    pin_p.add_argument("--version")
    gold = sub.add_parser("golden")
    gold.add_argument("ids", nargs="*")
    gold.add_argument("--args", type=json.loads, help="model inputs of the golden run, as a JSON object")
    gold.add_argument("--version")
    sub.add_parser("check")
    args = ap.parse_args()
    doc = load()
    if args.cmd == "check":
        return check(doc)
    if args.cmd == "import-medigan":
        import_medigan(args.path, doc)
    elif args.cmd == "golden":
        golden(doc, args.ids, args.args)
    else:
        pin(doc, args.ids)
    if args.version:
        doc["catalog_version"] = args.version
    save(doc)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
