"""Building a dataset: plan, write the cases privately, write the metadata, publish whole (or shard, then merge).

A whole build writes into a staging folder beside ``-o`` (as every medhub run, see
:mod:`medhub.outputs.runs`) and renames it into place at the end; on any failure nothing is left.
A shard ``K/N`` builds its share of the synthetic cases into
``.<name>.medhub-parts/part-K-of-N`` beside ``-o`` (published whole as well); the shard that
finds all N parts done links their files into a new staging folder, adds the real cases and the
metadata exactly as a whole build does, and publishes ``-o``: the same bytes as one build.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import shutil
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import InvalidArgumentError
from ..execution.marking import run_marker
from ..outputs import OutputSpec, output_folder, prepare_output_dir, write_file
from ..outputs.marks import Marker, creation_time
from ..outputs.runs import publish, signals_as_exit
from ..outputs.shared import claim_run
from ..outputs.store import LocalStore
from .base import CASES, DatasetInfo, Layout, json_line, read_rows
from .card import card
from .folder import FolderLayout
from .hf import HfLayout
from .monai import MonaiLayout
from .nnunet import DEFAULT_NAME, NnunetLayout
from .plan import Part, licence_warnings, parse_models, to_label_map, validation_mask
from .real import RealCase, ending, scan_real

logger = logging.getLogger("medhub.datasets")

#: The layouts, by their ``--layout`` name.
LAYOUTS: dict[str, type[Layout]] = {c.name: c for c in (NnunetLayout, MonaiLayout, HfLayout, FolderLayout)}


@dataclass
class DatasetBuild:
    """What :func:`export_dataset` wrote. ``os.fspath(build)`` is the output folder."""

    output_path: Path
    dataset_path: Path
    layout: str
    num_cases: int
    complete: bool
    next_steps: str | None
    warnings: list[str]

    def __fspath__(self) -> str:
        return str(self.output_path)

    def __str__(self) -> str:
        if not self.complete:
            return f"shard done; {self.output_path} appears when every shard is done"
        return f"{self.num_cases} cases ({self.layout} layout) in {self.dataset_path}"


class _FileQueue:
    """Encodes files on threads, a bounded number of tasks in flight (memory stays flat)."""

    def __init__(self) -> None:
        self.workers = max(1, min(4, os.cpu_count() or 1))
        self._pool = ThreadPoolExecutor(self.workers, thread_name_prefix="medhub-dataset")
        self._pending: deque[Future[None]] = deque()

    @staticmethod
    def _write(jobs: list[tuple[Path, np.ndarray, OutputSpec, dict[str, Any]]]) -> None:
        for path, arr, spec, record in jobs:
            write_file(path, arr, spec, record)

    def submit(self, jobs: list[Any]) -> None:
        chunk = max(1, -(-len(jobs) // self.workers))
        for k in range(0, len(jobs), chunk):
            while len(self._pending) >= 4 * self.workers:
                self._pending.popleft().result()
            self._pending.append(self._pool.submit(self._write, jobs[k : k + chunk]))

    def close(self, wait: bool = True) -> None:
        try:
            while wait and self._pending:
                self._pending.popleft().result()
        finally:
            for fut in self._pending:
                fut.cancel()
            self._pool.shutdown(wait=True)


def _label_spec(spec: OutputSpec) -> OutputSpec:
    """The spec of a mask written as label integers (no 0/255 scaling), in the mask's file format."""
    return dataclasses.replace(spec, dtype="uint8", values=None, scale=None, range=None, format=spec.file_format)


def _plan(get_executor: Callable[[str], Any], get_entry: Callable[[str], dict[str, Any]],
          counts: list[tuple[str, int]], seed: int, device: str, batch_size: int | None, balance: bool,
          trust_remote_code: bool, native_only: bool) -> list[Part]:
    parts: list[Part] = []
    offset = 0
    for model, count in counts:
        ex = get_executor(model)
        if any(p.model_id == ex.model_id for p in parts):
            raise InvalidArgumentError(f"Model {ex.model_id} is given twice; give each model once with its count.")
        ex.prepare(trust_remote_code=trust_remote_code)
        if native_only and not ex.is_native:
            raise InvalidArgumentError(f"Sharded datasets need medhub/1 packages (sample i depends only on (seed, i)); "
                                       f"{ex.model_id} uses the {ex.interface} interface.")
        part = Part(ex.model_id, count, offset, ex, get_entry(ex.model_id))
        if ex.specs:
            part.read_specs(ex.specs)
        else:  # a package without an outputs spec: its first call tells (and is kept for the build)
            part.stream = ex.batches(range(count), seed, device, batch_size)
            part.read_specs(part.stream.specs)
        parts.append(part)
        offset += count
    if balance:
        conditional = [p for p in parts if p.condition_input]
        if not conditional:
            raise InvalidArgumentError("--balance needs a conditional model (one with a condition input and class "
                                       "labels, e.g. 00103).")
        for p in conditional:
            k = len(p.classes or [])
            if p.count % k:
                raise InvalidArgumentError(f"--balance: the count of {p.model_id} ({p.count}) is not a multiple of its "
                                           f"{k} classes ({', '.join(p.classes or [])}); give e.g. {p.count // k * k or k}.")
            p.balance = list(p.label.values) if p.label is not None and p.label.values else None
    return parts


def _info(parts: list[Part], layout: str, name: str | None, seed: int, real: list[RealCase], val: np.ndarray,
          val_fraction: float, balance: bool) -> DatasetInfo:
    first = parts[0]
    assert first.image is not None
    classes: list[str] = []
    for p in parts:
        classes += [c for c in p.classes or [] if c not in classes]
    facts = [p.facts(seed) for p in parts]
    return DatasetInfo(
        name=name or (DEFAULT_NAME if layout == "nnunet" else "medhub synthetic dataset"), layout=layout, seed=seed,
        created=creation_time(), segmentation=first.mask is not None,
        ndim=3 if first.image.file_format == "nifti" else 2, channels=int(first.image.channels or 1),
        mask_labels=first.mask_labels, classes=classes or None, models=facts, num_cases=len(val),
        num_real=len(real), num_validation=int(val.sum()), val_fraction=val_fraction, balance=balance,
        warnings=licence_warnings(facts))


def _write_synthetic(root: Path, lay: Layout, parts: list[Part], cases: range, seed: int, device: str,
                     batch_size: int | None, val: np.ndarray, bar: Any) -> None:
    """Write the synthetic cases at dataset positions ``cases`` and their rows (``cases.jsonl``) into ``root``."""
    from ..execution.device import resolve_device

    sub = root / lay.folder()
    sub.mkdir(parents=True, exist_ok=True)
    made: set[Path] = set()
    queue = _FileQueue()
    try:
        with open(sub / CASES, "w", encoding="utf-8") as rows:
            for part in parts:
                lo, hi = max(cases.start, part.offset), min(cases.stop, part.offset + part.count)
                if lo >= hi:
                    continue
                local = range(lo - part.offset, hi - part.offset)
                inputs = part.inputs(local)
                stream = part.stream if part.stream is not None and local == range(part.count) else \
                    part.executor.batches(local, seed, device, batch_size, **inputs)
                maker = run_marker(part.executor, seed, resolve_device(device, part.executor.uses_torch), {},
                                   created=lay.info.created)
                for batch in stream:
                    jobs = []
                    for j, (i, sample_seed) in enumerate(zip(batch.indices, batch.seeds)):
                        jobs += _case(sub, lay, part, maker, batch.arrays, j, int(i), sample_seed,
                                      {k: v[int(i) - local.start] for k, v in inputs.items()}, val, rows, made)
                    queue.submit(jobs)
                    bar.update(len(batch))
        queue.close()
    except BaseException:
        queue.close(wait=False)
        raise


def _case(sub: Path, lay: Layout, part: Part, maker: Marker, arrays: dict[str, np.ndarray], j: int, i: int,
          sample_seed: int, inputs: dict[str, Any], val: np.ndarray, rows: Any, made: set[Path]) -> list[Any]:
    """Queue the files of one synthetic case and write its row; returns the file jobs."""
    assert part.image is not None
    g = part.offset + i
    case, split = f"syn_{g:06d}", "validation" if val[g] else "train"
    image = lay.image_name(case, split, lay.suffix(part.image))
    own = {k: np.asarray(v) for k, v in inputs.items()}
    record = maker.record(i, sample_seed, part.image.name, own)
    jobs = [(sub / image, arrays[part.image.name][j], part.image, record)]
    mask = None
    if part.mask is not None:
        mask = lay.mask_name(case, split, lay.suffix(part.mask))
        jobs.append((sub / mask, to_label_map(arrays[part.mask.name][j], part.mask.values), _label_spec(part.mask),
                     maker.record(i, sample_seed, part.mask.name, own)))
    for path, *_ in jobs:
        if path.parent not in made:
            path.parent.mkdir(parents=True, exist_ok=True)
            made.add(path.parent)
    label = str(arrays[part.label.name][j]) if part.label is not None else None
    rows.write(json_line({"case": case, "split": split, "synthetic": True, "image": image, "mask": mask,
                          "label": label, "model_id": part.model_id, "record": record}))
    return jobs


def _complete(root: Path, lay: Layout, parts_cases: Sequence[Path], real: list[RealCase], val: np.ndarray) -> None:
    """Add the rows of shard parts (if any) and the real cases, then the layout's metadata and the card."""
    sub = root / lay.folder()
    sub.mkdir(parents=True, exist_ok=True)
    if parts_cases:
        with open(sub / CASES, "wb") as out:
            for path in parts_cases:
                with open(path, "rb") as fh:
                    shutil.copyfileobj(fh, out)
    first_real = len(val) - len(real)
    with open(sub / CASES, "a", encoding="utf-8") as rows:
        for r, rc in enumerate(real):
            split = "validation" if val[first_real + r] else "train"
            image = lay.image_name(rc.case, split, rc.ending)
            mask = lay.mask_name(rc.case, split, ending(rc.mask.name)) if rc.mask is not None else None
            for src, rel in ((rc.image, image), (rc.mask, mask)):
                if src is not None and rel is not None:
                    (sub / rel).parent.mkdir(parents=True, exist_ok=True)
                    shutil.copyfile(src, sub / rel)  # unchanged: real files carry no mark
            rows.write(json_line({"case": rc.case, "split": split, "synthetic": False, "image": image, "mask": mask,
                                  "label": None, "model_id": None, "record": None}))
    lay.write_metadata(sub, lambda: read_rows(sub / CASES))
    (sub / "README.md").write_text(card(lay.info), encoding="utf-8")


def _link_tree(src: Path, dst: Path) -> None:
    """Hard-link (or copy) every file of a shard part into the merged staging folder, except its rows."""
    for folder, dirs, files in os.walk(src):
        dirs.sort()
        rel = Path(folder).relative_to(src)
        (dst / rel).mkdir(parents=True, exist_ok=True)
        for name in sorted(files):
            if name in (CASES, ".medhub-run.json"):
                continue
            try:
                os.link(Path(folder) / name, dst / rel / name)
            except OSError:
                shutil.copyfile(Path(folder) / name, dst / rel / name)


def export_dataset(get_executor: Callable[[str], Any], get_entry: Callable[[str], dict[str, Any]],
                   models: Sequence[str | int], layout: str, output_path: str | os.PathLike[str], seed: int | None = None,
                   num_samples: int | None = None, name: str | None = None, val_fraction: float = 0.0,
                   balance: bool = False, add_real: str | os.PathLike[str] | None = None, shard: Any = None,
                   device: str = "auto", batch_size: int | None = None, progress: bool | None = None,
                   trust_remote_code: bool = False) -> DatasetBuild:
    """Build a training set; see :meth:`medhub.Generators.export_dataset` (the facade documents the arguments)."""
    from ..execution.seeds import check_seed, new_seed
    from ..progress import progress_bar
    from ..runs.shards import parse_shard, shard_range
    from ..validate import check_batch_size

    if layout not in LAYOUTS:
        raise InvalidArgumentError(f"Unknown layout {layout!r}: choose one of {', '.join(LAYOUTS)}.")
    counts = parse_models(list(models), num_samples)
    seed, batch_size, shard_kn = check_seed(seed), check_batch_size(batch_size), parse_shard(shard)
    if shard_kn is not None and seed is None:
        raise InvalidArgumentError("A sharded dataset needs --seed (the same for every shard).")
    seed = new_seed() if seed is None else seed
    if isinstance(val_fraction, bool) or not isinstance(val_fraction, (int, float)) or not 0 <= val_fraction < 1:
        raise InvalidArgumentError(f"val_fraction must be a number in [0, 1), not {val_fraction!r}.")
    if layout == "nnunet" and val_fraction:
        raise InvalidArgumentError("nnU-Net makes its own cross-validation folds; drop --val-fraction for the "
                                   "nnunet layout.")
    final = output_folder(output_path)
    parts = _plan(get_executor, get_entry, counts, seed, device, batch_size, balance, trust_remote_code,
                  native_only=shard_kn is not None)
    LAYOUTS[layout].check(parts, name)
    real = scan_real(add_real, parts[0].mask is not None) if add_real is not None else []
    if layout == "nnunet" and real:
        wanted = NnunetLayout.suffix(parts[0].image)
        odd = [rc.image.name for rc in real if rc.ending != wanted]
        if odd:
            raise InvalidArgumentError(f"--add-real: nnU-Net needs one file ending; the synthetic cases are {wanted}, "
                                       f"the real {', '.join(odd[:3])} are not.")
    total_syn = sum(p.count for p in parts)
    val = validation_mask(total_syn + len(real), float(val_fraction), seed)
    lay = LAYOUTS[layout](_info(parts, layout, name, seed, real, val, float(val_fraction), balance))
    for warning in lay.info.warnings:
        logger.warning("%s", warning)
    cases = range(total_syn) if shard_kn is None else shard_range(total_syn, *shard_kn)
    result = DatasetBuild(final, final / lay.folder(), layout, len(val), True, lay.next_steps(final),
                          lay.info.warnings)
    bar = progress_bar(len(cases), "dataset" if shard_kn is None else f"dataset {shard_kn[0]}/{shard_kn[1]}",
                       progress)
    try:
        with signals_as_exit():
            if shard_kn is None:
                _, staging = prepare_output_dir(final)
                try:
                    _write_synthetic(staging, lay, parts, cases, seed, device, batch_size, val, bar)
                    _complete(staging, lay, [], real, val)
                except BaseException:
                    shutil.rmtree(staging, ignore_errors=True)
                    raise
                publish(staging, final)
                return result
            run = {"dataset": layout, "name": lay.info.name, "seed": seed, "val_fraction": float(val_fraction),
                   "balance": balance, "add_real": str(add_real) if add_real is not None else None, "shards": shard_kn[1],
                   "models": [[p.model_id, p.count, p.executor.package_sha256] for p in parts]}
            done = _build_shard(final, run, shard_kn, lambda root: _write_synthetic(
                root, lay, parts, cases, seed, device, batch_size, val, bar))
            if done is not None:
                _merge(final, done, lay, real, val)
                return result
            return dataclasses.replace(result, complete=False)
    finally:
        bar.close()


def _build_shard(final: Path, run: dict[str, Any], shard: tuple[int, int],
                 write: Callable[[Path], None]) -> list[Path] | None:
    """Build shard part K of N (unless done before); the parts' folders when this shard is the one to merge."""
    k, n = shard
    store = LocalStore(final.parent / f".{final.name}.medhub-parts")
    claim_run(store, run)
    part = store.root / f"part-{k}-of-{n}"
    if not part.is_dir():
        _, staging = prepare_output_dir(part)
        try:
            write(staging)
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise
        publish(staging, part)
    parts = [store.root / f"part-{j}-of-{n}" for j in range(n)]
    if not all(p.is_dir() for p in parts) or not store.create_exclusive("merge.lock", b""):
        return None
    return parts


def _merge(final: Path, parts: list[Path], lay: Layout, real: list[RealCase], val: np.ndarray) -> None:
    """Join the shard parts into ``final`` as a whole build would have written it; then drop the parts."""
    _, staging = prepare_output_dir(final)
    try:
        for part in parts:
            _link_tree(part, staging)
        _complete(staging, lay, [p / lay.folder() / CASES for p in parts], real, val)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        (parts[0].parent / "merge.lock").unlink(missing_ok=True)
        raise
    publish(staging, final)
    shutil.rmtree(parts[0].parent, ignore_errors=True)
