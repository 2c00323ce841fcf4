"""Benchmark: medhub's cost outside the network, on a GPU and on the CPU.

Run from the repository root::

    python benchmarks/gpu.py                 # on the CUDA device if there is one, else the CPU measurement
    python benchmarks/gpu.py --quick         # fewer samples (smoke test)
    python benchmarks/gpu.py --json out.json

**With CUDA** it compares, in memory, ``Generators().generate(model, N, save_images=False,
device="cuda", batch_size=B)`` with a bare loop over the same network: the module the package's
``load`` returns, latents from one ``torch.randn`` per batch on the GPU, ``torch.inference_mode``,
uint8 copied to the host (00101 and 00102 at N = 100,000, B = 4096; goal: medhub at least 0.9 of the
bare loop; two cells between them show where the time goes: the package's ``forward`` in its
fixed blocks, and its whole ``sample``), and 00104, 00106 and 00107 against the package's own ``sample`` called batch by batch
(no goal; medhub's cost around a heavier network). **On every machine** it measures medhub's own per-sample cost around a package whose
network is trivial (``sample`` returns zeros of the model's shape; the time inside ``sample`` is
subtracted), in memory, goal at most 1.5 µs per sample, and the cost of drawing 100 normal numbers
per sample three ways: a ``torch.Generator`` per sample, ``medhub.noise.normal`` for the batch, and one
unseeded ``torch.randn`` (the floor).
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from common import alternate, finish, machine_info, parser, timed
from report import Goal, Run, Section, fill, table

LATENT = 100
NULL_PACKAGE = '''
import time
import torch
CALLS = []
def load(weights_path, device):
    return device
def sample(model, seeds, **inputs):
    t = time.perf_counter()
    out = {"image": torch.zeros((len(seeds), 64, 64), dtype=torch.uint8, device=model)}
    CALLS.append(time.perf_counter() - t)
    return out
'''

REPORT = """
    ## Cost outside the network (GPU readiness)

    `{command}` ({when}), device: {device}. *medhub's path*: `generate(..., save_images=False)` of
    {null_n:,} samples at batch {batch} with a package whose `sample` only allocates zeros of a 64x64
    uint8 image; the time inside `sample` is subtracted, the rest is medhub's per-sample cost (seeds,
    checks, copying into the result, the list of arrays). *Noise*: 100 normal numbers per sample for a
    batch of {batch}, median of {rounds} alternated passes.

    {table}

    {gpu}
"""


def _null_generators(folder: Path) -> Any:
    from medhub import Generators
    from medhub.config import ConfigManager

    package = folder / "00990_NULL"
    package.mkdir()
    (package / "__init__.py").write_text(NULL_PACKAGE)
    (package / "weights.safetensors").write_bytes(b"")
    import json

    catalog = {"schema_version": 1, "catalog_version": "0", "models": {"00990_NULL": {
        "execution": {"package_link": "00990_NULL", "interface": "medhub/1", "dependencies": ["torch"],
                      "generate_method": {"name": "generate"},
                      "outputs": [{"name": "image", "kind": "image", "shape": [64, 64], "dtype": "uint8",
                                   "range": [0, 255]}]},
        "selection": {"modality": ["none"]}, "description": {"title": "null network"}}}}
    (folder / "catalog.json").write_text(json.dumps(catalog))
    return Generators(ConfigManager(folder / "catalog.json"))


def medhub_path(n: int, batch: int, device: str) -> dict[str, Any]:
    """Per-sample seconds of medhub's path around a trivial network (the package's own time subtracted)."""
    with tempfile.TemporaryDirectory() as tmp:
        g = _null_generators(Path(tmp))
        g.generate(990, num_samples=batch, save_images=False, seed=0, batch_size=batch, device=device)
        calls = g.get_model_executor(990).prepare().CALLS
        totals, insides = [], []
        for _ in range(3):
            calls.clear()
            t = time.perf_counter()
            g.generate(990, num_samples=n, save_images=False, seed=0, batch_size=batch, device=device)
            totals.append(time.perf_counter() - t)
            insides.append(sum(calls))
    k = min(range(3), key=lambda i: totals[i] - insides[i])
    return {"samples": n, "batch": batch, "total_s": totals[k], "inside_sample_s": insides[k],
            "per_sample_us": (totals[k] - insides[k]) / n * 1e6}


def noise(batch: int, rounds: int, device: str) -> dict[str, float]:
    """Microseconds per sample to draw 100 normals: per-sample generators, medhub.noise, torch.randn."""
    import torch

    from medhub.execution.seeds import sample_seeds
    from medhub.noise import normal

    seeds = sample_seeds(0, range(batch))

    def per_sample() -> None:
        z = torch.empty(batch, LATENT)
        for i, s in enumerate(seeds):
            z[i] = torch.randn(LATENT, generator=torch.Generator().manual_seed(s))
        z.to(device)

    def sync() -> None:
        if device.startswith("cuda"):
            torch.cuda.synchronize()

    times = alternate({
        "torch.Generator per sample": timed(lambda: (per_sample(), sync())),
        "medhub.noise.normal": timed(lambda: (normal(seeds, LATENT, device), sync())),
        "torch.randn (unseeded)": timed(lambda: (torch.randn(batch, LATENT, device=device), sync())),
    }, rounds)
    return {name: sorted(t)[len(t) // 2] / batch * 1e6 for name, t in times.items()}


def gpu_models(n: int, batch: int, rounds: int, device: str = "cuda") -> list[dict[str, Any]]:
    """medhub against the bare loop on CUDA, in memory, for 00101 and 00102."""
    import numpy as np
    import torch

    from medhub import Generators
    from medhub.execution.seeds import sample_seeds

    g = Generators()
    rows = []
    for model_id in ("00101_DCGAN_BRAIN_MRI_T1", "00102_WGANGP_HEAD_CT"):
        ex = g.get_model_executor(model_id)
        net = ex.load(device)

        def bare(net: Any = net) -> None:
            out = np.empty((n, 64, 64), np.uint8)
            with torch.inference_mode():
                for lo in range(0, n, batch):
                    k = min(batch, n - lo)
                    x = net(torch.randn(k, LATENT, device=device).to(memory_format=torch.contiguous_format))
                    out[lo : lo + k] = ((x.clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8)[:, 0].cpu().numpy()

        module = ex.prepare()
        seeds = [int(s) for s in sample_seeds(0, range(n))]

        def blocks(net: Any = net, module: Any = module) -> None:  # the package's fixed blocks, torch.randn latents
            out = np.empty((n, 64, 64), np.uint8)
            for lo in range(0, n, batch):
                k = min(batch, n - lo)
                out[lo : lo + k] = module.to_uint8(module.forward(net, torch.randn(k, LATENT, device=device)))

        def big_blocks(net: Any = net, module: Any = module) -> None:  # the same with blocks of BIG_BLOCK
            chunk, module.CHUNK = module.CHUNK, BIG_BLOCK
            try:
                blocks(net, module)
            finally:
                module.CHUNK = chunk

        def package(net: Any = net, module: Any = module, seeds: list[int] = seeds) -> None:  # its own sample()
            with torch.inference_mode():
                for lo in range(0, n, batch):
                    module.sample(net, seeds[lo : lo + batch])

        def medhub(model_id: str = model_id) -> None:
            g.generate(model_id, num_samples=n, save_images=False, seed=0, batch_size=batch, device=device)

        times = alternate({"bare": timed(bare), "blocks": timed(blocks), f"blocks of {BIG_BLOCK}": timed(big_blocks),
                           "package": timed(package), "medhub": timed(medhub)}, rounds)
        rate = {k: n / sorted(v)[len(v) // 2] for k, v in times.items()}
        rows.append({"model": model_id, "samples": n, "batch": batch, "samples_per_s": rate,
                     "ratio": rate["medhub"] / rate["bare"], "device_name": torch.cuda.get_device_name() if device.startswith("cuda") else device})
    return rows


#: Models measured on CUDA against the package's own ``sample`` (model id, samples, quick samples, batch,
#: inputs): their work per sample is larger, so this shows medhub's cost around a heavier network.
PACKAGE_MODELS = (("00104_PIX2PIX_BRAIN_SEG_TO_T1", 20_000, 2_000, 256, {}),
                  ("00106_DDPM_FUNDUS_RGB", 2_000, 256, 256, {}),
                  ("00107_ATLAS3D_BRAIN_MRI_T1_SEG", 200, 20, 16, {}))


def package_models(quick: bool, rounds: int, device: str = "cuda") -> list[dict[str, Any]]:
    """medhub against the package's own ``sample`` called batch by batch (same seeds, same CUDA model,
    ``torch.inference_mode``), in memory, for 00104, 00106 and 00107."""
    import torch

    from medhub import Generators
    from medhub.execution.seeds import sample_seeds

    g = Generators()
    rows = []
    for model_id, full, small, batch, inputs in PACKAGE_MODELS:
        n = small if quick else full
        ex = g.get_model_executor(model_id)
        module, model = ex.prepare(), ex.load(device)
        seeds = [int(s) for s in sample_seeds(0, range(n))]

        def direct(module: Any = module, model: Any = model, seeds: list[int] = seeds, batch: int = batch,
                   inputs: dict = inputs) -> None:
            with torch.inference_mode():
                for lo in range(0, len(seeds), batch):
                    module.sample(model, seeds[lo : lo + batch], **inputs)

        def medhub(model_id: str = model_id, n: int = n, batch: int = batch, inputs: dict = inputs) -> None:
            g.generate(model_id, num_samples=n, save_images=False, seed=0, batch_size=batch, device=device, **inputs)

        medhub()  # warm: cuDNN autotuning and the first allocations are not timed
        times = alternate({"package": timed(direct), "medhub": timed(medhub)}, rounds)
        rate = {k: n / sorted(v)[len(v) // 2] for k, v in times.items()}
        rows.append({"model": model_id, "samples": n, "batch": batch, "samples_per_s": rate,
                     "ratio": rate["medhub"] / rate["package"]})
    return rows


#: A larger fixed block, measured as a what-if: the shipped DCGANs run blocks of 32 (``CHUNK``) so that a
#: sample is bit-identical at any batch size; a larger fixed block keeps that on one device, with fewer
#: network calls per batch on a GPU and more padding for small batches.
BIG_BLOCK = 1024
CELLS = ("bare", "blocks", f"blocks of {BIG_BLOCK}", "package", "medhub")


def report(run: Run) -> Section:
    res = run.result
    path = res["medhub_path"]
    goals = [Goal("gpu", f"medhub's per-sample cost outside the network ({res['device']}, in memory)",
                  f"{path['per_sample_us']:.2f} µs", "<= 1.5 µs", path["per_sample_us"] <= 1.5)]
    rows = [["medhub's path (trivial network)", f"{path['per_sample_us']:.2f}"]]
    rows += [[f"noise: {name}", f"{us:.2f}"] for name, us in res["noise_us_per_sample"].items()]
    gpu = "No CUDA device on this machine: the GPU comparison was not run."
    if res.get("gpu"):
        gpu_rows = [[r["model"], f"{r['samples']:,}", r["batch"], *(f"{r['samples_per_s'][k]:,.0f}" for k in CELLS),
                     f"{r['ratio']:.2f}"] for r in res["gpu"]]
        gpu = (f"On {res['gpu'][0]['device_name']}, in memory, samples/s. *bare*: the network on the whole batch, "
               "`torch.randn` latents; *blocks*: the package's `forward` (its fixed blocks) on the same latents; "
               f"*blocks of {BIG_BLOCK}*: the same with the package's block size set to {BIG_BLOCK} (what-if); "
               "*package*: its own `sample` (its noise, blocks and conversion), batch by batch; *medhub*: "
               "`generate`.\n\n" + table(["Model", "Samples", "Batch", *CELLS, "medhub / bare"], gpu_rows, "lrrrrrrrr"))
        goals += [Goal("gpu", f"{r['model']} medhub / bare loop on CUDA", f"{r['ratio']:.2f}", ">= 0.9",
                       r["ratio"] >= 0.9) for r in res["gpu"]]
    if res.get("gpu_packages"):
        pkg_rows = [[r["model"], f"{r['samples']:,}", r["batch"], f"{r['samples_per_s']['package']:,.0f}",
                     f"{r['samples_per_s']['medhub']:,.0f}", f"{r['ratio']:.2f}"] for r in res["gpu_packages"]]
        gpu += ("\n\nHeavier models on the same device, against the package's own `sample` called batch by batch "
                "(same seeds, same model, `torch.inference_mode`), in memory:\n\n" + table(
                    ["Model", "Samples", "Batch", "package samples/s", "medhub samples/s", "medhub / package"],
                    pkg_rows, "lrrrrr"))
    text = fill(REPORT, command=run.command, when=run.when, device=res["device"], null_n=path["samples"],
                batch=path["batch"], rounds=res["settings"]["rounds"],
                table=table(["What", "µs per sample"], rows, "lr"), gpu=gpu)
    return Section(goals, text)


def main(argv: list[str] | None = None) -> int:
    args = parser(__doc__, "20,000 samples for medhub's path, 10,000 on the GPU, 1 round").parse_args(argv)
    import torch

    cuda = torch.cuda.is_available()
    device = "cuda" if cuda else "cpu"
    rounds = 1 if args.quick else 5
    batch = 4096 if cuda else 256
    n = 20_000 if args.quick else 100_000
    doc = {"benchmark": "gpu", "machine": machine_info(), "device": device,
           "settings": {"rounds": rounds, "quick": args.quick},
           "medhub_path": medhub_path(n, batch, device), "noise_us_per_sample": noise(batch, rounds, device),
           "gpu": gpu_models(10_000 if args.quick else 100_000, 4096, rounds) if cuda else None,
           "gpu_packages": package_models(args.quick, min(rounds, 3)) if cuda else None}
    return finish(args, doc, report, argv)


# --------------------------------------------------------------------------- with the writer benchmark
def main_with_writers(argv: list[str] | None = None) -> int:
    """This benchmark, then ``writers.py`` (writing files on every core, issue 24 point 3) with the same
    ``--quick`` and ``--fail-on-miss``, so that one command on a GPU machine measures both; with
    ``--json DIR/X.json`` the writer results go to ``DIR/writers.json``. ``--no-writers`` (as
    ``run_all.py`` passes: it runs ``writers.py`` itself) runs this benchmark alone."""
    argv = list(sys.argv[1:] if argv is None else argv)
    chain = "--no-writers" not in argv
    argv = [a for a in argv if a != "--no-writers"]
    status = main(argv)
    if not chain:
        return status
    import writers

    known = parser(__doc__, "").parse_known_args(argv)[0]
    writer_argv = [a for a in ("--quick", "--fail-on-miss") if a in argv]
    if known.json:
        writer_argv += ["--json", str(Path(known.json).with_name("writers.json"))]
    print("\n$ python benchmarks/writers.py " + " ".join(writer_argv) + "\n", flush=True)
    return max(status, writers.main(writer_argv))


if __name__ == "__main__":
    sys.exit(main_with_writers())
