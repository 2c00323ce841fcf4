"""`medhub dataset` / Generators.export_dataset: layouts, provenance, reproducibility, shards, real cases, errors.

The layouts are checked with the frameworks' own readers where they are installed: MONAI's
``load_decathlon_datalist`` + ``LoadImaged`` (in the test extra), ``datasets.load_dataset`` and
nnU-Net's ``verify_dataset_integrity`` (slow; both installed by .ci/run, skipped without them).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from medhub import Generators
from medhub.cli import main
from medhub.datasets import export_dataset
from medhub.datasets.base import DatasetInfo
from medhub.datasets.card import card, description
from medhub.datasets.plan import licence_warnings
from medhub.errors import InvalidArgumentError, OutputPathError

RECORD_KEYS = {"mark", "synthetic", "medhub_version", "model_id", "model_version", "package_digest", "commit", "seed",
               "sample_seed", "index", "output", "inputs", "inputs_digest", "device", "created"}


@pytest.fixture(autouse=True)
def _fixed_time(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "1700000000")


@pytest.fixture(scope="module")
def g() -> Generators:
    return Generators()


def build(g: Generators, models, layout: str, out: Path, **kw):
    kw.setdefault("seed", 0)
    return g.export_dataset(models, layout, out, progress=False, device="cpu", **kw)


def tree(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def rows(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_nnunet_layout_2d(g: Generators, tmp_path: Path) -> None:
    b = build(g, 104, "nnunet", tmp_path / "raw", num_samples=3, name="Dataset501_SynthT1")
    root = tmp_path / "raw" / "Dataset501_SynthT1"
    assert b.dataset_path == root and b.complete and b.num_cases == 3
    assert "nnUNetv2_plan_and_preprocess -d 501 --verify_dataset_integrity" in b.next_steps
    assert sorted(p.name for p in (root / "imagesTr").iterdir()) == [f"syn_00000{i}_0000.png" for i in range(3)]
    meta = json.loads((root / "dataset.json").read_text())
    assert meta["channel_names"] == {"0": "MRI"} and meta["numTraining"] == 3 and meta["file_ending"] == ".png"
    assert meta["labels"] == {"background": 0, "CSF and other tissue": 1, "grey matter": 2, "white matter": 3}
    assert "SYNTHETIC" in meta["description"] and meta["licence"] == "MIT"
    labels = np.asarray(Image.open(root / "labelsTr" / "syn_000000.png"))
    assert labels.dtype == np.uint8 and set(np.unique(labels)) <= {0, 1, 2, 3} and labels.max() > 0  # not 0/255
    case = rows(root / "cases.jsonl")[0]
    assert case["case"] == "syn_000000" and case["synthetic"] is True
    assert set(case["record"]) == RECORD_KEYS and case["record"]["created"] == "2023-11-14T22:13:20Z"
    assert case["record"]["model_id"] == "00104_PIX2PIX_BRAIN_SEG_TO_T1" and case["record"]["index"] == 0
    assert "synthetic" in (root / "README.md").read_text()


def test_same_seed_gives_byte_identical_dataset(g: Generators, tmp_path: Path) -> None:
    build(g, ["103:3", "101:1"], "hf", tmp_path / "a", val_fraction=0.5, balance=True)
    build(g, ["103:3", "101:1"], "hf", tmp_path / "b", val_fraction=0.5, balance=True)
    assert tree(tmp_path / "a") == tree(tmp_path / "b")
    build(g, ["103:3", "101:1"], "hf", tmp_path / "c", seed=1, val_fraction=0.5, balance=True)
    assert tree(tmp_path / "a") != tree(tmp_path / "c")


@pytest.mark.parametrize("layout", ["nnunet", "monai"])
def test_shards_combine_into_the_whole_dataset(g: Generators, tmp_path: Path, layout: str) -> None:
    extra = {"name": "Dataset502_Shards"} if layout == "nnunet" else {"val_fraction": 0.4}
    whole = build(g, ["104:3"], layout, tmp_path / "whole", **extra)
    first = build(g, ["104:3"], layout, tmp_path / "sharded", shard="1/2", **extra)
    assert not first.complete and not (tmp_path / "sharded").exists()
    last = build(g, ["104:3"], layout, tmp_path / "sharded", shard="0/2", **extra)
    assert last.complete and whole.complete
    assert tree(tmp_path / "whole") == tree(tmp_path / "sharded")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["sharded", "whole"]  # the parts are gone


def test_monai_layout(g: Generators, tmp_path: Path) -> None:
    build(g, ["104:2"], "monai", tmp_path / "seg", val_fraction=0.5)
    meta = json.loads((tmp_path / "seg" / "dataset.json").read_text())
    assert meta["training"][0]["image"].startswith("./imagesTr/syn_") and meta["numTraining"] == 1
    assert meta["validation"][0]["label"].startswith("./labelsTr/syn_") and meta["tensorImageSize"] == "2D"
    assert meta["labels"]["0"] == "background" and "SYNTHETIC" in meta["description"]
    build(g, ["103:6"], "monai", tmp_path / "cls", val_fraction=0.5, balance=True)
    meta = json.loads((tmp_path / "cls" / "dataset.json").read_text())
    items = meta["training"] + meta["validation"]
    assert sorted(i["class_name"] for i in items) == ["GM", "GM", "T1", "T1", "WM", "WM"]
    assert all(i["label"] == ["T1", "GM", "WM"].index(i["class_name"]) for i in items)
    assert meta["labels"] == {"0": "T1", "1": "GM", "2": "WM"} and meta["numValidation"] == 3


@pytest.mark.slow
def test_monai_layout_loads_with_monai(g: Generators, tmp_path: Path) -> None:
    monai_data = pytest.importorskip("monai.data")
    from monai.transforms import LoadImaged

    build(g, ["107:2"], "monai", tmp_path / "seg", val_fraction=0.5)
    for key in ("training", "validation"):
        items = monai_data.load_decathlon_datalist(str(tmp_path / "seg" / "dataset.json"), data_list_key=key)
        assert len(items) == 1
        loaded = LoadImaged(keys=["image", "label"])(items[0])
        assert tuple(loaded["image"].shape) == (64, 64, 64) and set(np.unique(loaded["label"])) <= {0, 1, 2, 3}
    build(g, ["103:6"], "monai", tmp_path / "cls", val_fraction=0.5, balance=True)
    path = str(tmp_path / "cls" / "dataset.json")
    items = [i for k in ("training", "validation")
             for i in monai_data.load_decathlon_datalist(path, is_segmentation=False, data_list_key=k)]
    assert sorted(i["label"] for i in items) == [0, 0, 1, 1, 2, 2]
    assert all(tuple(LoadImaged(keys=["image"])(i)["image"].shape) == (64, 64) for i in items)


def test_hf_layout(g: Generators, tmp_path: Path) -> None:
    build(g, ["103:3"], "hf", tmp_path / "hf_set", val_fraction=0.34, balance=True)
    header = (tmp_path / "hf_set" / "README.md").read_text().split("---")[1]
    for needed in ("license:", "- mit", "task_categories:", "- image-classification", "size_categories:",
                   "- n<1K", "tags:", "- synthetic"):
        assert needed in header
    train = rows(tmp_path / "hf_set" / "train" / "metadata.jsonl")
    assert len(train) == 2 and len(rows(tmp_path / "hf_set" / "validation" / "metadata.jsonl")) == 1
    assert train[0]["file_name"] == "syn_000000.png" and train[0]["label"] == "T1" and train[0]["synthetic"] is True
    assert RECORD_KEYS - {"synthetic"} <= set(train[0])


def framework_python(module: str) -> str:
    """A Python that imports ``module``: ``FRAMEWORKS_PYTHON`` (.ci/run's venv of nnunetv2 and datasets, kept apart:
    nnunetv2 pulls torchvision, which breaks diffusers beside the CPU torch), else this one; skip if neither does."""
    for python in (os.environ.get("FRAMEWORKS_PYTHON"), sys.executable):
        if python and subprocess.run([python, "-c", f"import {module}"], capture_output=True).returncode == 0:
            return python
    pytest.skip(f"{module} is not installed (set FRAMEWORKS_PYTHON to a Python that has it, as .ci/run does)")


HF_LOAD = """
import json, sys
import numpy as np
from datasets import load_dataset
ds = load_dataset("imagefolder", data_dir=sys.argv[1])
row = ds["train"][0]
print(json.dumps({"rows": {k: v.num_rows for k, v in ds.items()}, "label": row.get("label"), "synthetic": row["synthetic"],
                  "mark": row["mark"], "size": list(row["image"].size),
                  "mask": sorted(int(v) for v in np.unique(np.asarray(row["mask"]))) if "mask" in row else None}))
"""


@pytest.mark.slow
def test_hf_layout_loads_with_datasets(g: Generators, tmp_path: Path) -> None:
    python = framework_python("datasets")
    env = dict(os.environ, HF_DATASETS_OFFLINE="1", HF_HOME=str(tmp_path / "hf"))

    def load(folder: Path) -> dict:
        done = subprocess.run([python, "-c", HF_LOAD, str(folder)], capture_output=True, text=True, env=env)
        assert done.returncode == 0, done.stderr[-3000:]
        return json.loads(done.stdout.splitlines()[-1])

    build(g, ["103:6"], "hf", tmp_path / "hf_set", val_fraction=0.34, balance=True)
    got = load(tmp_path / "hf_set")
    assert got["rows"] == {"train": 4, "validation": 2} and got["label"] in ("T1", "GM", "WM")
    assert got["synthetic"] is True and got["mark"] == "medhub-sample/1" and got["size"] == [64, 64]
    build(g, ["104:3"], "hf", tmp_path / "hf_seg", val_fraction=0.34)
    got = load(tmp_path / "hf_seg")
    assert got["rows"] == {"train": 2, "validation": 1}  # the masks are a column, not extra rows
    assert set(got["mask"]) <= {0, 1, 2, 3}


def test_folder_layout_with_real_cases(g: Generators, tmp_path: Path) -> None:
    real = tmp_path / "real"
    (real / "images").mkdir(parents=True)
    (real / "masks").mkdir()
    for name in ("a", "b"):
        Image.fromarray(np.full((64, 64), 7, np.uint8)).save(real / "images" / f"{name}.png")
        Image.fromarray(np.eye(64, dtype=np.uint8)).save(real / "masks" / f"{name}.png")
    b = build(g, ["104:2"], "folder", tmp_path / "out", add_real=real)
    assert b.num_cases == 4
    csv_lines = (tmp_path / "out" / "cases.csv").read_text().splitlines()
    assert csv_lines[0].startswith("case,split,synthetic,image,mask,label")
    assert [line.split(",")[:3] for line in csv_lines[1:]] == [
        ["syn_000000", "train", "1"], ["syn_000001", "train", "1"], ["real_a", "train", "0"], ["real_b", "train", "0"]]
    assert (tmp_path / "out" / "images" / "real_a.png").read_bytes() == (real / "images" / "a.png").read_bytes()
    assert (tmp_path / "out" / "masks" / "real_b.png").read_bytes() == (real / "masks" / "b.png").read_bytes()
    assert rows(tmp_path / "out" / "cases.jsonl")[2]["record"] is None
    assert "2 real cases" in (tmp_path / "out" / "README.md").read_text()


def test_synthetic_files_carry_the_mark_and_real_files_none(g: Generators, tmp_path: Path) -> None:
    from medhub import inspect

    real = tmp_path / "real"
    (real / "images").mkdir(parents=True)
    (real / "masks").mkdir()
    Image.fromarray(np.full((64, 64), 7, np.uint8)).save(real / "images" / "a.png")
    Image.fromarray(np.eye(64, dtype=np.uint8)).save(real / "masks" / "a.png")
    build(g, ["104:2"], "folder", tmp_path / "out", add_real=real)
    image = inspect(tmp_path / "out" / "images" / "syn_000001.png")
    mask = inspect(tmp_path / "out" / "masks" / "syn_000001.png")
    assert image["model_id"].startswith("00104") and image["index"] == 1 and image["output"] == "image"
    assert mask["output"] == "mask" and mask["sample_seed"] == image["sample_seed"]
    assert image == rows(tmp_path / "out" / "cases.jsonl")[1]["record"]
    assert inspect(tmp_path / "out" / "images" / "real_a.png") is None


def test_shards_with_real_cases_combine_into_the_whole_dataset(g: Generators, tmp_path: Path) -> None:
    real = tmp_path / "real"
    (real / "images").mkdir(parents=True)
    Image.fromarray(np.full((64, 64), 7, np.uint8)).save(real / "images" / "a.png")
    build(g, ["101:3"], "hf", tmp_path / "whole", add_real=real, val_fraction=0.5)
    for k in (1, 0):
        build(g, ["101:3"], "hf", tmp_path / "sharded", add_real=real, val_fraction=0.5, shard=f"{k}/2")
    assert tree(tmp_path / "whole") == tree(tmp_path / "sharded")
    with pytest.raises(OutputPathError, match="not empty"):  # a finished dataset is never rebuilt into
        build(g, ["101:3"], "hf", tmp_path / "sharded", add_real=real, val_fraction=0.5, shard="0/2")


def test_unpaired_real_folder_is_one_line_and_leaves_nothing(g: Generators, tmp_path: Path) -> None:
    real = tmp_path / "real"
    (real / "images").mkdir(parents=True)
    (real / "masks").mkdir()
    Image.fromarray(np.zeros((8, 8), np.uint8)).save(real / "images" / "a.png")
    Image.fromarray(np.zeros((8, 8), np.uint8)).save(real / "masks" / "b.png")
    with pytest.raises(InvalidArgumentError, match="do not pair up: 1 image.s. without a mask .a.; 1 mask.s. without"):
        build(g, ["104:2"], "nnunet", tmp_path / "out", add_real=real)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["real"]


def test_balance_gives_equal_counts_per_condition(g: Generators, tmp_path: Path) -> None:
    build(g, ["103:9"], "folder", tmp_path / "bal", balance=True)
    labels = [r["label"] for r in rows(tmp_path / "bal" / "cases.jsonl")]
    assert sorted(labels) == sorted(["T1", "GM", "WM"] * 3)
    assert rows(tmp_path / "bal" / "cases.jsonl")[1]["record"]["inputs"] == {"condition": "GM"}
    with pytest.raises(InvalidArgumentError, match="not a multiple of its 3 classes"):
        build(g, ["103:4"], "folder", tmp_path / "odd", balance=True)
    with pytest.raises(InvalidArgumentError, match="--balance needs a conditional model"):
        build(g, ["101:3"], "folder", tmp_path / "none", balance=True)


def test_validation_split_is_reproducible_and_exact(g: Generators, tmp_path: Path) -> None:
    build(g, ["101:10"], "folder", tmp_path / "a", val_fraction=0.3)
    build(g, ["101:10"], "folder", tmp_path / "b", val_fraction=0.3)
    split_a = [r["split"] for r in rows(tmp_path / "a" / "cases.jsonl")]
    assert split_a.count("validation") == 3
    assert split_a == [r["split"] for r in rows(tmp_path / "b" / "cases.jsonl")]


@pytest.mark.parametrize(("models", "layout", "kw", "message"), [
    (["104:2"], "coco", {}, "Unknown layout 'coco': choose one of nnunet, monai, hf, folder"),
    (["101:2"], "nnunet", {}, "gives no mask; the nnunet layout needs image \\+ mask models"),
    (["104:2"], "nnunet", {"val_fraction": 0.2}, "nnU-Net makes its own cross-validation folds"),
    (["104:2"], "nnunet", {"name": "SynthT1"}, "nnU-Net dataset names look like Dataset501_SynthT1"),
    (["107:1"], "hf", {}, "gives 3D volumes; the hf layout"),
    (["104:2", "101:2"], "folder", {}, "Mix either image \\+ mask models or image-only models"),
    (["104"], "folder", {}, "has no count"),
    (["104:2", "104:3"], "folder", {}, "is given twice"),
])
def test_bad_input_is_one_line_and_leaves_nothing(g: Generators, tmp_path: Path, models, layout, kw, message) -> None:
    with pytest.raises(InvalidArgumentError, match=message) as info:
        build(g, models, layout, tmp_path / "out", **kw)
    assert "\n" not in str(info.value)
    assert not (tmp_path / "out").exists() and list(tmp_path.iterdir()) == []


def test_non_empty_output_is_refused(g: Generators, tmp_path: Path) -> None:
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "x.txt").write_text("mine")
    with pytest.raises(OutputPathError, match="not empty"):
        build(g, ["101:2"], "folder", tmp_path / "out")
    assert [p.name for p in (tmp_path / "out").iterdir()] == ["x.txt"]


@pytest.mark.parametrize("error", [OSError(28, "No space left on device"), KeyboardInterrupt()])
def test_failed_or_interrupted_build_leaves_nothing(g: Generators, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                    error: BaseException) -> None:
    from medhub.datasets import build as build_module

    calls = []

    def failing(path, arr, spec, record=None):
        calls.append(path)
        if len(calls) > 3:
            raise error
        Path(path).write_bytes(b"x")

    monkeypatch.setattr(build_module, "write_file", failing)
    with pytest.raises(type(error)):
        build(g, ["101:40"], "folder", tmp_path / "out", batch_size=4)
    assert list(tmp_path.iterdir()) == []


def test_medigan_mask_model_gives_label_integers(toy_catalog: Path, tmp_path: Path) -> None:
    g = Generators(config_file=toy_catalog)
    build(g, ["902:3"], "nnunet", tmp_path / "raw", name="Dataset900_Toy")
    root = tmp_path / "raw" / "Dataset900_Toy"
    meta = json.loads((root / "dataset.json").read_text())
    assert meta["labels"] == {"background": 0, "foreground": 1} and meta["channel_names"] == {"0": "toy"}
    for p in (root / "labelsTr").iterdir():
        assert set(np.unique(np.asarray(Image.open(p)))) <= {0, 1}
    warnings = json.loads((root / "dataset.json").read_text())["medhub"]["warnings"]
    assert warnings == ["00902_MEDIGAN_TOY: no licence stated: ask its authors before you share or use the dataset"]
    assert "WARNING" in (root / "README.md").read_text() and "WARNING" in meta["description"]


def test_licences_propagate_and_warn() -> None:
    models = [{"model_id": "a", "version": "1", "license": "MIT", "count": 2, "seed": 0},
              {"model_id": "b", "version": "2", "license": "CC-BY-NC-4.0", "count": 1, "seed": 0}]
    info = DatasetInfo("d", "hf", 0, "t", False, 2, 1, [], None, models, 3, 0, 0, 0.0, False,
                       licence_warnings(models))
    assert info.licences == ["CC-BY-NC-4.0", "MIT"]
    assert "non-commercial licence (CC-BY-NC-4.0)" in description(info)
    text = card(info)
    assert "- cc-by-nc-4.0" in text and "- mit" in text and "**WARNING:** b: non-commercial" in text


def test_cli_dataset(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "raw"
    code = main(["dataset", "104", "-n", "2", "--seed", "0", "--layout", "nnunet", "--name", "Dataset501_SynthT1",
                 "-o", str(out), "--no-progress", "--device", "cpu"])
    text = capsys.readouterr().out
    assert code == 0 and "2 cases (nnunet layout)" in text
    assert text.strip().splitlines()[-1].endswith("nnUNetv2_plan_and_preprocess -d 501 --verify_dataset_integrity")
    assert main(["dataset", "104", "-n", "2", "--layout", "voc", "-o", str(tmp_path / "x")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Unknown layout 'voc'" in err


def test_export_dataset_is_importable_without_the_facade(tmp_path: Path) -> None:
    g = Generators()
    b = export_dataset(g.get_model_executor, g.get_config_by_id, ["101:1"], "folder", tmp_path / "f", seed=0,
                       progress=False, device="cpu")
    assert os.fspath(b) == str(tmp_path / "f") and (tmp_path / "f" / "images" / "syn_000000.png").exists()


def _nnunet_verify(python: str, folder: Path) -> None:
    code = ("import sys; from nnunetv2.experiment_planning.verify_dataset_integrity import verify_dataset_integrity; "
            "verify_dataset_integrity(sys.argv[1], num_processes=1)")
    env = dict(os.environ, nnUNet_raw=str(folder.parent), nnUNet_preprocessed=str(folder.parent / "pre"),
               nnUNet_results=str(folder.parent / "res"))
    done = subprocess.run([python, "-c", code, str(folder)], capture_output=True, text=True, env=env)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]


@pytest.mark.slow
@pytest.mark.parametrize(("model", "name"), [("104:6", "Dataset501_Synth2D"), ("107:3", "Dataset502_Synth3D")])
def test_nnunet_verify_dataset_integrity(g: Generators, tmp_path: Path, model: str, name: str) -> None:
    python = framework_python("nnunetv2")
    real = None
    if model.startswith("104"):  # with real cases too: the layout nnU-Net reads, real_ and syn_ side by side
        real = tmp_path / "real"
        (real / "imagesTr").mkdir(parents=True)
        (real / "labelsTr").mkdir()
        Image.fromarray(np.full((64, 64), 90, np.uint8)).save(real / "imagesTr" / "r1_0000.png")
        Image.fromarray((np.arange(64 * 64).reshape(64, 64) % 4).astype(np.uint8)).save(real / "labelsTr" / "r1.png")
    b = build(g, [model], "nnunet", tmp_path / "raw", name=name, add_real=real)
    _nnunet_verify(python, b.dataset_path)
