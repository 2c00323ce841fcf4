"""One fresh process of the cold-start benchmark's first-call comparison (``cold_start.py`` starts it).

Not a benchmark of its own: ``python benchmarks/cold_start.py`` runs it as
``python benchmarks/cold_start_worker.py --impl raw|medhub|package --mode memory|png ...``, once per
process, and reads the JSON line ``RESULT {...}`` it prints last.

``--impl package`` (in memory only) is the package alone: its own ``load`` and ``sample`` in a bare
loop, called as medhub calls it (the catalog's memory layout and batch size, medhub's per-sample
seeds), without medhub's set-up, checks or collection. It splits the gap between medhub and the raw
loop into what the package's frozen algorithm costs (fixed blocks, per-sample counter-based noise,
a padded last block) and what medhub adds. ``--block N`` (a what-if) sets the package's ``CHUNK``,
the fixed block its network runs on, to N first.

Both implementations import torch first, as ``generate_worker.py`` does; then medhub imports itself
and reads its catalog (``Generators()``) and the raw loop reads the catalog facts it needs; then the
*call* is timed: ``Generators().generate(...)`` for medhub, the bare loop of ``generate_worker.py``
for raw (the same code ``generate.py`` times). Inside the call each phase is timed on the calling
thread by wrapping the functions that do it; times are exclusive (a phase leaves out the phases
inside it) and what no phase claims is reported as "other".
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

T0 = time.perf_counter()
TOTALS: dict[str, float] = {}
STACK: list[list[Any]] = []


class Timed:
    """Adds the exclusive time of a ``with`` block to ``TOTALS[label]``."""

    def __init__(self, label: str) -> None:
        self.label = label

    def __enter__(self) -> None:
        STACK.append([self.label, time.perf_counter(), 0.0])

    def __exit__(self, *exc: Any) -> None:
        label, start, inner = STACK.pop()
        elapsed = time.perf_counter() - start
        TOTALS[label] = TOTALS.get(label, 0.0) + elapsed - inner
        if STACK:
            STACK[-1][2] += elapsed


def wrap(owner: Any, name: str, label: Any) -> None:
    """Time every call of ``owner.name`` as ``label`` (a callable: the label of call number n)."""
    original = getattr(owner, name)
    calls = [0]

    def wrapper(*args: Any, **kwargs: Any) -> Any:
        calls[0] += 1
        with Timed(label(calls[0]) if callable(label) else label):
            return original(*args, **kwargs)

    setattr(owner, name, wrapper)


def _faults() -> int:
    """Minor page faults of this process so far (new memory the kernel mapped in on first touch)."""
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt


def _cpu_s() -> float:
    """CPU seconds of this process (all its threads) and of its ended children (writer processes)."""
    import resource

    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def batch_label(n: int) -> str:
    return "first batch" if n == 1 else "other batches"


def medhub_call(args: argparse.Namespace) -> Any:
    """``Generators().generate`` with its phases wrapped; returns the call (the modules it imports on
    first use are instrumented as soon as they are imported, by the executor set-up)."""
    with Timed("import medhub"):
        from medhub import Generators
    with Timed("catalog (Generators())"):
        g = Generators()
    original = g.get_model_executor

    def get_model_executor(*a: Any, **kw: Any) -> Any:
        with Timed("executor set-up (imports, executor)"):
            executor = original(*a, **kw)
        if not wrapped:  # the modules the first call imported: their functions timed from now on
            wrapped.append(instrument())
        return executor

    wrapped: list[None] = []
    g.get_model_executor = get_model_executor

    def instrument() -> None:
        import medhub.execution.executor as ex_mod
        import medhub.execution.kinds as kinds_mod
        import medhub.execution.resolve as res_mod

        wrap(ex_mod, "ensure_dependencies", "dependency check")
        wrap(res_mod.PackageResolver, "resolve", "resolve + verification hashing")
        wrap(kinds_mod, "import_resolved", "package import")
        wrap(ex_mod.ModelExecutor, "load", "load()")
        wrap(ex_mod.ModelExecutor, "call_package", batch_label)
        if args.mode == "png":  # in memory the run never imports the writer stack; neither does this
            import medhub.outputs.runs as out_mod

            for name in ("__init__", "submit", "finish"):
                wrap(out_mod.RunWriter, name, "writing")

    def call() -> Any:
        if args.mode == "png":
            return g.generate(args.model, num_samples=args.num_samples, output_path=args.out, seed=0, device="cpu",
                              progress=False)
        return g.generate(args.model, num_samples=args.num_samples, save_images=False, seed=0, device="cpu",
                          progress=False)

    return call


def raw_call(args: argparse.Namespace) -> Any:
    """The raw loop of ``generate_worker.py`` with its phases timed; returns the call."""
    with Timed("catalog facts and encoder (raw)"):
        from generate_worker import load_package, package_entry, png_outputs, raw_step

        from medhub.outputs import encode_png

        entry = package_entry(args.model)
        names = png_outputs(args.model)
    import torch

    def call() -> Any:
        with Timed("build + load"):
            step = raw_step(args.model, load_package(args.model, entry), entry)
        out = Path(args.out)
        if args.mode == "png":
            out.mkdir(parents=True)
        samples: list[Any] = []
        with torch.inference_mode():
            for lo in range(0, args.num_samples, args.batch):
                with Timed(batch_label(1 if lo == 0 else 2)):
                    arrays = step(min(args.batch, args.num_samples - lo))
                if args.mode == "memory":
                    samples.extend(arrays[names[0]])
                    continue
                with Timed("writing"):
                    for j in range(len(arrays[names[0]])):
                        for name in names:
                            with open(out / f"{lo + j:06d}_{name}.png", "wb") as fh:
                                fh.write(encode_png(arrays[name][j]))
        return samples

    return call


def package_call(args: argparse.Namespace) -> Any:
    """The package's own ``load`` and ``sample`` in a bare loop, as medhub calls them; returns the call."""
    if args.mode != "memory":
        raise SystemExit("--impl package runs in memory only")
    with Timed("catalog facts and encoder (raw)"):
        from generate_worker import load_network, load_package, package_entry

        from medhub.config import ConfigManager
        from medhub.execution.seeds import sample_seeds
        from medhub.execution.spec import DEFAULT_BATCH_SIZE

        entry = package_entry(args.model)
        size = ConfigManager().config_dict[args.model]["execution"]["generate_method"].get("batch_size")
        size = size or DEFAULT_BATCH_SIZE

    def call() -> Any:
        with Timed("build + load"):
            module = load_package(args.model, entry)
            if args.block:
                if not isinstance(getattr(module, "CHUNK", None), int):
                    raise SystemExit(f"--block: package {args.model} has no CHUNK to change")
                module.CHUNK = args.block
            model = load_network(module, entry)
        samples: list[Any] = []
        for lo in range(0, args.num_samples, size):
            with Timed(batch_label(1 if lo == 0 else 2)):
                out = module.sample(model, sample_seeds(0, range(lo, min(lo + size, args.num_samples))))
            samples.extend(next(iter(out.values())))
        return samples

    return call


IMPLS = {"raw": raw_call, "medhub": medhub_call, "package": package_call}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--impl", required=True, choices=tuple(IMPLS))
    parser.add_argument("--model", required=True, help="catalog model id")
    parser.add_argument("--num-samples", type=int, required=True)
    parser.add_argument("--mode", required=True, choices=("memory", "png"))
    parser.add_argument("--out", required=True, help="the run's output folder (png)")
    parser.add_argument("--batch", type=int, default=64, help="the raw loop's batch size")
    parser.add_argument("--block", type=int, help="--impl package: run the package on blocks of this many samples")
    args = parser.parse_args(argv)
    with Timed("import torch"):
        import torch  # noqa: F401 - first, in both implementations (as generate_worker.py)
    call = IMPLS[args.impl](args)
    before = dict(TOTALS)
    TOTALS.clear()
    cpu_started, faults_started = _cpu_s(), _faults()
    with Timed("other"):  # the call: what the phases inside it leave is "other"
        started = time.perf_counter()
        result = call()
        call_s = time.perf_counter() - started
    call_cpu_s, call_faults = _cpu_s() - cpu_started, _faults() - faults_started
    produced = len(result) if args.mode == "memory" else sum(1 for _ in Path(args.out).rglob("*.png"))
    print("RESULT " + json.dumps({"impl": args.impl, "mode": args.mode, "call_s": call_s, "call_cpu_s": call_cpu_s, "call_faults": call_faults,
                                  "before_call": before,
                                  "phases": TOTALS, "produced": produced, "inside_s": time.perf_counter() - T0}),
          flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
