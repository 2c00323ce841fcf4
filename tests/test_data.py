"""Torch datasets and data loaders (medhub.data): lazy, deterministic, chunked, worker-safe."""

from __future__ import annotations

import pickle
import warnings
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from conftest import entry, write_catalog, write_package

torch = pytest.importorskip("torch")
from torch.utils.data import ConcatDataset, DataLoader, TensorDataset  # noqa: E402

from medhub import Generators  # noqa: E402
from medhub.data import (  # noqa: E402
    ChunkShuffleSampler,
    SyntheticDataset,
    SyntheticIterableDataset,
    get_as_torch_dataloader,
    get_as_torch_dataset,
)
from medhub.errors import InvalidArgumentError  # noqa: E402
from medhub.execution.seeds import sample_seeds  # noqa: E402

# Logs every load() and every generated seed (with the process id) next to its __init__.py, so
# tests can count model loads per process and prove that no sample is generated twice.
LOGGING_TOY = """
import os
import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))


def _log(name, lines):
    with open(os.path.join(HERE, name), "a") as fh:
        fh.write("".join(lines))


def load(weights_path, device):
    _log("loads.log", [f"{os.getpid()}\\n"])
    return {"scale": 1}


def sample(model, seeds, **inputs):
    _log("gen.log", [f"{os.getpid()} {s}\\n" for s in seeds])
    imgs = np.stack([np.random.default_rng(s).integers(0, 256, (8, 8), dtype=np.uint8) for s in seeds])
    return {"image": imgs, "mask": imgs > 127, "label": np.array([s % 3 for s in seeds], dtype=np.int64)}
"""

LOGGING_OUTPUTS = [
    {"name": "image", "kind": "image", "shape": [8, 8], "dtype": "uint8", "range": [0, 255]},
    {"name": "mask", "kind": "mask", "shape": [8, 8], "dtype": "bool"},
    {"name": "label", "kind": "label", "shape": [], "dtype": "int64", "values": [0, 1, 2]},
]


@pytest.fixture
def catalog(toy_catalog: Path) -> Path:
    """The conftest toy catalog plus 00910, a package that logs loads and generated seeds."""
    import json

    doc = json.loads(toy_catalog.read_text())
    write_package(toy_catalog.parent / "packages", "logging_toy", LOGGING_TOY)
    doc["models"]["00910_LOGGING_TOY"] = entry("packages/logging_toy", LOGGING_OUTPUTS)
    return write_catalog(toy_catalog.parent / "catalog_data.json", doc["models"])


@pytest.fixture
def g(catalog: Path) -> Generators:
    return Generators(config_file=catalog)


def logs(catalog: Path) -> tuple[list[str], list[tuple[str, int]]]:
    folder = catalog.parent / "packages" / "logging_toy"
    loads = (folder / "loads.log").read_text().split() if (folder / "loads.log").exists() else []
    gen = []
    if (folder / "gen.log").exists():
        gen = [(pid, int(seed)) for pid, seed in (line.split() for line in (folder / "gen.log").read_text().splitlines())]
    return loads, gen


def expected_item(seed: int, i: int) -> dict[str, torch.Tensor]:
    s = sample_seeds(seed, [i])[0]
    img = np.random.default_rng(s).integers(0, 256, (8, 8), dtype=np.uint8)
    return {"sample": torch.from_numpy(img).float().div(255)[None], "mask": torch.from_numpy(img > 127).float()[None],
            "label": torch.tensor(s % 3)}


def stack(items: list[dict]) -> dict[str, torch.Tensor]:
    return {k: torch.stack([it[k] for it in items]) for k in items[0]}


def cat(batches: list[dict]) -> dict[str, torch.Tensor]:
    return {k: torch.cat([b[k] for b in batches]) for k in batches[0]}


def same(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


# ---------------------------------------------------------------------------- map-style dataset
def test_items_are_lazy_deterministic_and_chunked(g, catalog):
    ds = g.get_as_torch_dataset(910, num_samples=100_000, seed=3, chunk_size=16)
    assert isinstance(ds, SyntheticDataset) and len(ds) == 100_000
    assert logs(catalog) == ([], [])  # nothing generated (or loaded) up front
    item = ds[99_999]
    assert same(item, expected_item(3, 99_999))
    assert item["sample"].dtype == torch.float32 and item["sample"].shape == (1, 8, 8)
    assert set(item["mask"].unique().tolist()) <= {0.0, 1.0}
    _, gen = logs(catalog)
    assert [s for _, s in gen] == sample_seeds(3, range(99_984, 100_000))  # exactly its aligned chunk
    for i in range(99_984, 100_000):  # the rest of the chunk comes from the cache
        assert same(ds[i], expected_item(3, i))
    assert len(logs(catalog)[1]) == 16
    assert same(ds[-1], ds[99_999])
    # item i depends only on (seed, i) for medhub/1 packages: not on chunk size or access order
    other = g.get_as_torch_dataset(910, num_samples=10, seed=3, chunk_size=3)
    assert all(same(other[i], expected_item(3, i)) for i in (9, 0, 5))
    assert not torch.equal(g.get_as_torch_dataset(910, 10, seed=4)[0]["sample"], ds[0]["sample"])


def test_cache_is_bounded_and_sequential_access_generates_each_chunk_once(g, catalog):
    ds = g.get_as_torch_dataset(910, num_samples=100, seed=0, chunk_size=16, cache_chunks=2)
    items = [ds[i] for i in range(100)]
    _, gen = logs(catalog)
    assert len(gen) == 100 and len({s for _, s in gen}) == 100  # 7 chunks, each generated once
    assert same(stack(items), stack([expected_item(0, i) for i in range(100)]))
    for i in (0, 40, 80, 20, 60):
        ds[i]
        assert len(ds._cache) <= 2


def test_bad_arguments(g):
    with pytest.raises(InvalidArgumentError):
        g.get_as_torch_dataset(910, num_samples=0)
    with pytest.raises(InvalidArgumentError):
        g.get_as_torch_dataset(910, num_samples=10, chunk_size=0)
    with pytest.raises(InvalidArgumentError):
        g.get_as_torch_dataset(910, num_samples=10, seed=None)
    with pytest.raises(InvalidArgumentError):
        g.get_as_torch_dataset(910, num_samples=None)  # a map-style dataset needs a length
    ds = g.get_as_torch_dataset(910, num_samples=10)
    with pytest.raises(IndexError):
        ds[10]
    with pytest.raises(TypeError):
        ds["a"]


def test_transforms_and_raw_arrays(g):
    doubled = g.get_as_torch_dataset(910, 10, transform=lambda x: x * 2)
    assert torch.equal(doubled[3]["sample"], expected_item(0, 3)["sample"] * 2)
    pairs = g.get_as_torch_dataset(910, 10, item_transform=lambda d: (d["sample"], d["label"]))
    x, y = pairs[3]
    assert torch.equal(x, expected_item(0, 3)["sample"]) and int(y) == int(expected_item(0, 3)["label"])
    raw = g.get_as_torch_dataset(910, 10, as_tensor=False)[3]
    assert raw["sample"].dtype == np.uint8 and raw["sample"].shape == (8, 8)
    unscaled = g.get_as_torch_dataset(910, 10, scale=False)[3]["sample"]
    assert torch.equal(unscaled, torch.from_numpy(raw["sample"]).float()[None])


def test_other_dtypes_and_volumes_are_scaled_channel_first(g):
    item = g.get_as_torch_dataset(901, 4)[1]  # uint16 image, uint8 mask with values [0, 255]
    image = g.generate(901, num_samples=4, save_images=False, seed=0, device="cpu")[1][0]
    assert torch.allclose(item["sample"], torch.from_numpy(image.astype(np.float32) / 65535)[None])
    assert set(item["mask"].unique().tolist()) <= {0.0, 1.0}
    vol = g.get_as_torch_dataset(906, 3)[2]
    assert vol["sample"].shape == (1, 6, 7, 5) and vol["mask"].shape == (1, 6, 7, 5)


def test_dataset_pickles_without_its_model(g):
    ds = g.get_as_torch_dataset(910, 50, seed=1)
    first = ds[0]
    clone = pickle.loads(pickle.dumps(ds))
    assert clone._executor is None and not clone._cache
    assert same(clone[0], first) and same(clone[49], expected_item(1, 49))


# ---------------------------------------------------------------------------- DataLoader
def test_workers_match_single_process_without_duplicates_and_load_once(g, catalog):
    loader = g.get_as_torch_dataloader(910, num_samples=100, seed=5, batch_size=16, num_workers=2)
    assert loader.dataset.chunk_size == 16  # one batch is one chunk: each worker generates its own
    batches = list(loader)
    loads, gen = logs(catalog)
    assert len(loads) == 2 and len(set(loads)) == 2  # each worker loaded the model once
    assert Counter(s for _, s in gen) == Counter(sample_seeds(5, range(100)))  # every sample generated exactly once
    assert len({pid for pid, _ in gen}) == 2
    single = cat(list(g.get_as_torch_dataloader(910, num_samples=100, seed=5, batch_size=16)))
    assert same(cat(batches), single)
    assert same(single, stack([expected_item(5, i) for i in range(100)]))


def test_persistent_workers_and_pin_memory(g, catalog):
    loader = g.get_as_torch_dataloader(910, num_samples=64, seed=0, batch_size=16, num_workers=2,
                                       persistent_workers=True, pin_memory=True, prefetch_factor=1)
    assert loader.persistent_workers and loader.pin_memory and loader.prefetch_factor == 1
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "pin_memory ... no accelerator" on CPU-only machines
        epochs = [cat(list(loader)) for _ in range(2)]
    assert same(epochs[0], epochs[1])
    assert same(epochs[0], stack([expected_item(0, i) for i in range(64)]))
    loads, _ = logs(catalog)
    assert len(loads) == 2  # the same two workers served both epochs
    if torch.cuda.is_available():  # pragma: no cover - GPU machines only
        assert next(iter(loader))["sample"].is_pinned()


def test_only_given_dataloader_arguments_are_passed_and_the_rest_are_model_inputs(g):
    loader = g.get_as_torch_dataloader(902, num_samples=10, batch_size=4, drop_last=True, size=6)
    assert [b["sample"].shape[0] for b in loader] == [4, 4]
    plain = g.get_as_torch_dataloader(910, num_samples=3)  # DataLoader defaults: batch_size 1
    assert plain.batch_size == 1 and plain.num_workers == 0 and len(list(plain)) == 3
    ds = g.get_as_torch_dataset(910, 8)
    assert g.get_as_torch_dataloader(ds, batch_size=4).dataset is ds  # medigan: a dataset as first argument
    with pytest.raises(InvalidArgumentError):
        g.get_as_torch_dataloader(dataset=ds, no_such_argument=1)


def test_shuffle_visits_every_item_once_in_chunk_order(g, catalog):
    gen = torch.Generator().manual_seed(0)
    loader = g.get_as_torch_dataloader(910, num_samples=100, batch_size=16, shuffle=True, generator=gen)
    assert isinstance(loader.sampler, ChunkShuffleSampler)
    order = list(loader.sampler)
    assert sorted(order) == list(range(100)) and order != list(range(100))
    chunk = loader.dataset.chunk_size
    assert chunk == 64  # one process: a multiple of batch_size that reaches the default chunk
    assert all(len({i // chunk for i in order[k:k + 16]}) == 1 for k in range(0, 96, 16))  # no batch spans chunks
    assert sorted(order[-36:]) == list(range(64, 100))  # the short chunk comes last
    batches = list(loader)
    assert sum(b["sample"].shape[0] for b in batches) == 100
    _, log = logs(catalog)
    assert len(log) == 100 and len({s for _, s in log}) == 100  # each chunk generated once


def test_concat_with_a_real_dataset(g):
    synth = g.get_as_torch_dataset(910, 20, item_transform=lambda d: (d["sample"], d["label"]))
    real = TensorDataset(torch.rand(30, 1, 8, 8), torch.zeros(30, dtype=torch.int64))
    both = ConcatDataset([synth, real])
    assert len(both) == 50
    assert torch.equal(both[5][0], expected_item(0, 5)["sample"]) and torch.equal(both[25][0], real[5][0])
    xs, ys = zip(*DataLoader(both, batch_size=16, shuffle=True))
    assert sum(x.shape[0] for x in xs) == 50 and all(x.shape[1:] == (1, 8, 8) for x in xs)


def test_medigan_package_is_deterministic_per_chunk(g):
    a = g.get_as_torch_dataset(902, num_samples=40, seed=2, chunk_size=8)
    b = g.get_as_torch_dataset(902, num_samples=40, seed=2, chunk_size=8)
    late_first = [b[i] for i in (37, 3, 20)]  # other access order, fresh process state
    assert all(same(x, a[i]) for x, i in zip(late_first, (37, 3, 20)))
    assert sorted(a[0]) == ["label", "mask", "sample"] and a[0]["sample"].shape == (1, 6, 6)
    single = cat(list(g.get_as_torch_dataloader(902, num_samples=40, seed=2, batch_size=8)))
    workers = cat(list(g.get_as_torch_dataloader(902, num_samples=40, seed=2, batch_size=8, num_workers=2)))
    assert same(single, workers) and same(single, stack([a[i] for i in range(40)]))
    # item i depends on the chunk size for medigan packages (documented)
    assert not torch.equal(g.get_as_torch_dataset(902, 40, seed=2, chunk_size=4)[5]["sample"], a[5]["sample"])


def test_shipped_model_matches_generate():
    g = Generators()
    ds = g.get_as_torch_dataset(101, num_samples=1000, seed=0)
    images = g.generate(101, num_samples=4, save_images=False, seed=0, device="cpu")
    assert all(torch.equal(ds[i]["sample"], torch.from_numpy(images[i]).float().div(255)[None]) for i in range(4))
    z = np.random.default_rng(0).standard_normal((6, 100)).astype(np.float32)
    with_latent = g.get_as_torch_dataset(101, num_samples=6, latent=z, chunk_size=4)  # per-sample input
    expected = g.generate(101, num_samples=6, save_images=False, seed=0, latent=z, device="cpu")
    assert torch.equal(with_latent[5]["sample"][0], torch.from_numpy(expected[5]).float().div(255))


# ---------------------------------------------------------------------------- iterable dataset
def test_iterable_stream_matches_map_items_and_is_endless(g, catalog):
    stream = g.get_as_torch_dataset(910, num_samples=None, seed=7, iterable=True, chunk_size=16)
    assert isinstance(stream, SyntheticIterableDataset)
    with pytest.raises(TypeError):
        len(stream)
    it = iter(stream)
    first = [next(it) for _ in range(1000)]  # well past any fixed length: endless
    assert same(stack(first[990:]), stack([expected_item(7, i) for i in range(990, 1000)]))
    resumed = g.get_as_torch_dataset(910, num_samples=5, seed=7, iterable=True, chunk_size=16, start=990)
    assert len(resumed) == 5 and same(stack(list(resumed)), stack(first[990:995]))


def test_iterable_is_split_across_workers_without_duplicates(g, catalog):
    loader = g.get_as_torch_dataloader(910, num_samples=100, seed=1, iterable=True, batch_size=16, num_workers=2)
    got = cat(list(loader))
    assert same(got, stack([expected_item(1, i) for i in range(100)]))  # batch == chunk: index order
    loads, gen = logs(catalog)
    assert Counter(s for _, s in gen) == Counter(sample_seeds(1, range(100)))
    assert len(set(loads)) == 2 and len({pid for pid, _ in gen}) == 2


def test_endless_stream_in_workers_for_training_by_steps(g, catalog):
    loader = g.get_as_torch_dataloader(910, num_samples=None, seed=0, iterable=True, batch_size=8, num_workers=2)
    seen = []
    for step, batch in enumerate(loader):
        seen.append(batch["sample"])
        if step == 9:
            break
    got = torch.cat(seen)
    assert same({"sample": got}, {"sample": stack([expected_item(0, i) for i in range(80)])["sample"]})
    _, gen = logs(catalog)
    assert len({s for _, s in gen}) == len(gen)  # workers may run ahead, never over the same samples
    with pytest.raises(InvalidArgumentError):
        g.get_as_torch_dataloader(910, num_samples=None, iterable=True, shuffle=True)


def test_spawned_workers_rebuild_the_model_from_the_pickled_dataset(g, catalog):
    loader = g.get_as_torch_dataloader(910, num_samples=64, seed=0, batch_size=16, num_workers=2,
                                       multiprocessing_context="spawn", persistent_workers=True)
    for _ in range(2):
        assert same(cat(list(loader)), stack([expected_item(0, i) for i in range(64)]))
    loads, _ = logs(catalog)
    assert len(loads) == 2 and len(set(loads)) == 2


def test_module_functions_work_without_a_generators_object():
    ds = get_as_torch_dataset(101, num_samples=10)
    loader = get_as_torch_dataloader(101, num_samples=10, batch_size=5)
    assert torch.equal(next(iter(loader))["sample"][3], ds[3]["sample"])
