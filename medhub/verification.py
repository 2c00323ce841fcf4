"""``medhub inspect`` and ``medhub verify``: read a file's mark, and check it by making the sample again.

A file medhub wrote carries its sample record (:mod:`medhub.outputs.marks`). Sample i of a
``medhub/1`` model is a pure function of (model version, seed, i, inputs), so :func:`verify`
regenerates it from the record alone (the file may have been moved anywhere) and compares:

* **identical**: the regenerated sample's pixels are the file's;
* **within tolerance**: regenerated on another kind of device than the one recorded (asked for
  with ``device=``), and no pixel differs by more than :data:`CROSS_DEVICE_GREY_LEVELS` grey
  levels (the bound measured in docs/reproducibility.md);
* **differs**: how many pixels changed and by how much at most;
* **cannot verify**: why (the model version is not in the catalog, the inputs are not at hand,
  the recorded device is not here...).

Every format goes through one comparison: the regenerated sample is encoded exactly as medhub
writes that format (with the file's own record) and both are decoded by
:func:`medhub.outputs.marks.read_pixels`.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from .errors import MarkError, MedhubError, ModelNotFoundError
from .outputs.marks import file_format, from_plain, inputs_digest, read_bytes, read_mark, read_pixels, record_of

if TYPE_CHECKING:  # pragma: no cover
    from .execution import ModelExecutor
    from .generators import Generators

#: Largest difference, in grey levels of 8 bits (x257 for 16-bit files), allowed when a sample is
#: regenerated on another kind of device than the one that made it (measured on an NVIDIA H200 against
#: the CPU at a8c1c5a: 2 for 00101, 1 for the other image models; docs/reproducibility.md;
#: tests/test_cuda.py holds every shipped model to it).
CROSS_DEVICE_GREY_LEVELS = 2
IDENTICAL, WITHIN_TOLERANCE, DIFFERS, CANNOT_VERIFY, NO_MARK = (
    "identical", "within tolerance", "differs", "cannot verify", "no medhub mark")
_NEEDED = ("model_id", "model_version", "seed", "sample_seed", "index", "output", "inputs", "device")


class Unverifiable(Exception):
    """Why a file cannot be verified (becomes a ``cannot verify`` verdict)."""


@dataclasses.dataclass
class Verdict:
    """The result of :func:`verify` for one file."""

    path: str
    status: str
    reason: str = ""
    record: dict[str, Any] | None = None
    pixels_changed: int | None = None
    pixels: int | None = None
    largest_difference: float | None = None
    device: str | None = None

    @property
    def ok(self) -> bool:
        """True when the file is the model's sample (identical, or within the cross-device tolerance)."""
        return self.status in (IDENTICAL, WITHIN_TOLERANCE)

    def as_dict(self) -> dict[str, Any]:
        return {**dataclasses.asdict(self), "ok": self.ok}

    def __str__(self) -> str:
        text = f"{self.path}: {self.status}"
        if self.status in (IDENTICAL, WITHIN_TOLERANCE, DIFFERS) and self.record is not None:
            r = self.record
            text += (f" ({r['model_id']} {r.get('model_version') or ''}, seed {r['seed']}, index {r['index']}, "
                     f"{r['output']}; regenerated on {self.device})").replace(" ,", ",")
        return text + (f": {self.reason}" if self.reason else "")


def inspect(path: str | os.PathLike[str]) -> dict[str, Any] | None:
    """The sample record of a file medhub wrote (PNG, NIfTI, DICOM), or None when it has no medhub mark.

    Raises :class:`~medhub.errors.MarkError` (one line) for an unreadable file or a foreign format.

    Example:
        >>> import tempfile
        >>> from medhub import Generators
        >>> run = Generators().generate(101, num_samples=1, output_path=tempfile.mkdtemp(), seed=0)
        >>> record = inspect(run.output_path / "000000_image.png")
        >>> record["model_id"], record["seed"], record["index"], record["synthetic"]
        ('00101_DCGAN_BRAIN_MRI_T1', 0, 0, True)
    """
    return read_mark(path)


def credentials(path: str | os.PathLike[str]) -> dict[str, Any] | None:
    """The C2PA content credentials of a PNG file in brief, and whether they validate (against
    ``MEDHUB_C2PA_TRUST_ANCHORS`` when set); None without them or without c2pa-python."""
    from . import settings
    from .outputs.credentials import read_credentials

    data = read_bytes(path)
    return read_credentials(data, settings.get("MEDHUB_C2PA_TRUST_ANCHORS")) if file_format(data) == "png" else None


def describe(path: str | os.PathLike[str], record: Mapping[str, Any] | None,
             c2pa: Mapping[str, Any] | None = None) -> str:
    """What ``medhub inspect`` prints for one file."""
    if record is None:
        return f"{path}: no medhub mark"
    r = record
    lines = [f"{path}: synthetic ({r.get('mark')})",
             f"  model:   {r.get('model_id')} version {r.get('model_version')} ({r.get('package_digest')}"
             + (f", commit {r['commit']}" if r.get("commit") else "") + ")",
             f"  sample:  index {r.get('index')}, output {r.get('output')!r}, run seed {r.get('seed')} "
             f"(sample seed {r.get('sample_seed')})",
             f"  inputs:  {r.get('inputs')}" + (f" ({r['inputs_digest']})" if r.get("inputs_digest") else ""),
             f"  made:    {r.get('created')} on {r.get('device')} with medhub {r.get('medhub_version')}"]
    if c2pa is not None:
        codes = f" ({', '.join(c2pa['status'])})" if c2pa["status"] else ""
        lines.append(f"  c2pa:    {c2pa['validation_state']}{codes}; source type {c2pa['digital_source_type']}"
                     + ("; holds the record" if c2pa["record"] else ""))
    return "\n".join(lines)


def verify(path: str | os.PathLike[str], inputs: str | os.PathLike[str] | None = None, device: str | None = None,
           generators: Generators | None = None) -> Verdict:
    """Regenerate the sample a file's mark names and compare it with the file.

    Args:
        path: a PNG, NIfTI or DICOM file medhub wrote (anywhere: the run folder is not needed).
        inputs: for image-to-image models, the folder (or file) of inputs the run was given; its
            digest must be the recorded one. Default: the recorded path, else the package's examples.
        device: where to regenerate. Default: the kind of device recorded (cpu, cuda, mps). Another
            kind compares within :data:`CROSS_DEVICE_GREY_LEVELS` grey levels, and says so.
        generators: the :class:`~medhub.Generators` whose catalog and cache to use (default: a new one).

    Returns:
        A :class:`Verdict`; ``verdict.ok`` is True for an unmodified output of the named model.
        Raises :class:`~medhub.errors.MarkError` for an unreadable file or a foreign format.

    Example:
        >>> import tempfile
        >>> from medhub import Generators
        >>> run = Generators().generate(101, num_samples=1, output_path=tempfile.mkdtemp(), seed=0)
        >>> verify(run.output_path / "000000_image.png").status
        'identical'
    """
    data = read_bytes(path)
    record = record_of(data, path)
    if record is None:
        return Verdict(str(path), NO_MARK)
    try:
        return _compare(str(path), data, record, inputs, device, generators)
    except Unverifiable as exc:
        return Verdict(str(path), CANNOT_VERIFY, str(exc), record)


def _compare(path: str, data: bytes, record: dict[str, Any], inputs: Any, device: str | None,
             generators: Generators | None) -> Verdict:
    from .execution.device import resolve_device
    from .execution.seeds import sample_seeds
    from .outputs.encode import encode
    from .outputs.marks import device_class

    missing = [k for k in _NEEDED if k not in record]
    if missing:
        raise Unverifiable(f"its mark lacks {', '.join(missing)}")
    executor = _executor(record, generators)
    if int(sample_seeds(int(record["seed"]), [int(record["index"])])[0]) != int(record["sample_seed"]):
        raise Unverifiable("its mark is inconsistent: the sample seed is not that of (seed, index)")
    recorded = str(record["device"])
    try:
        where = resolve_device(device or recorded, executor.uses_torch)
    except MedhubError as exc:
        hint = "" if device else (f"; pass device='cpu' (--device cpu) to compare within the cross-device tolerance "
                                  f"of {CROSS_DEVICE_GREY_LEVELS} grey levels")
        raise Unverifiable(f"it was made on {recorded}, which is not available here ({exc}){hint}") from None
    kwargs = _inputs(executor, record, inputs)
    fmt = file_format(data)  # a DICOM file's spec as a DICOM run has it (modality, series, the image a mask segments)
    specs = {s.name: s for s in executor.output_specs("dicom" if fmt == "dicom" else None)}
    if record["output"] not in specs:
        raise Unverifiable(f"model {executor.model_id} has no output {record['output']!r}")
    try:
        arrays = executor.sample_batch([int(record["index"])], int(record["seed"]), where, **kwargs)
    except MedhubError as exc:
        raise Unverifiable(f"regenerating the sample failed: {exc}") from None
    spec = dataclasses.replace(specs[record["output"]], format=fmt)
    expected = encode(np.asarray(arrays[record["output"]][0]), spec, record)
    same_bytes = expected == data
    got = read_pixels(data, path)
    want = got if same_bytes else read_pixels(expected)
    verdict = Verdict(path, IDENTICAL, record=record, device=where)
    if got.shape != want.shape:
        return dataclasses.replace(verdict, status=DIFFERS, reason=f"its shape is {got.shape}, the model's "
                                                                   f"sample's {want.shape}")
    diff = None if same_bytes else np.abs(got.astype(np.float64) - want.astype(np.float64))
    verdict = _counted(verdict, got, diff, spec.format)
    cross = device_class(where) != device_class(recorded)
    notes = []
    if not verdict.pixels_changed:
        if not same_bytes:
            notes.append("the pixels are the model's; the file's other bytes differ (re-saved or edited metadata)")
    elif not cross:
        verdict.status = DIFFERS
    elif got.dtype.kind not in "iu":
        verdict.status = CANNOT_VERIFY
        notes.append(f"its {got.dtype} values differ, and no tolerance across device kinds is documented for them")
    else:
        bound = CROSS_DEVICE_GREY_LEVELS * (257 if got.dtype.itemsize > 1 else 1)
        verdict.status = WITHIN_TOLERANCE if verdict.largest_difference <= bound else DIFFERS
    if cross:
        notes.append(f"made on {device_class(recorded)}, regenerated on {device_class(where)}: differences up to "
                     f"{CROSS_DEVICE_GREY_LEVELS} grey levels are allowed across device kinds "
                     "(docs/reproducibility.md)")
    if verdict.status == DIFFERS:
        notes.insert(0, f"{verdict.pixels_changed} of {verdict.pixels} pixels changed, largest difference "
                        f"{verdict.largest_difference:g}")
    verdict.reason = "; ".join(notes)
    return verdict


def _counted(verdict: Verdict, pixels: np.ndarray, diff: np.ndarray | None, fmt: str | None) -> Verdict:
    """``verdict`` with the number of pixels, of changed pixels and the largest difference (the
    channels of a colour PNG pixel count as one pixel)."""
    colour = pixels.ndim == 3 and pixels.shape[-1] in (2, 3, 4) and fmt == "png"
    count = int(np.prod(pixels.shape[:-1] if colour else pixels.shape))
    changed = 0 if diff is None else int(np.count_nonzero(diff.max(axis=-1) if colour else diff))
    largest = 0.0 if diff is None else float(diff.max(initial=0))
    return dataclasses.replace(verdict, pixels=count, pixels_changed=changed, largest_difference=largest)


def _executor(record: Mapping[str, Any], generators: Generators | None) -> ModelExecutor:
    """The executor of the recorded model version, prepared (fetched and verified as usual)."""
    if generators is None:
        from .generators import Generators

        generators = Generators()
    catalog = generators.config_manager
    try:
        model_id = catalog.resolve_model_id(str(record["model_id"]))
    except ModelNotFoundError:
        raise Unverifiable(f"its mark names model {record['model_id']!r}, which is not in this catalog") from None
    version = catalog.config_dict[model_id].get("description", {}).get("version")
    if record.get("model_version") != version:
        raise Unverifiable(f"it was made by version {record.get('model_version')} of {model_id}, which this catalog "
                           f"no longer holds (it has version {version}); use a catalog with that version "
                           "(--config FILE)")
    executor = generators.get_model_executor(model_id)
    try:
        executor.prepare()
    except MedhubError as exc:
        raise Unverifiable(f"model {model_id} cannot be loaded: {exc}") from None
    digest = record.get("package_digest")
    if digest and digest != f"sha256:{executor.package_sha256}":
        raise Unverifiable(f"it was made by a package of {model_id} with {digest}; this catalog's package is "
                           f"sha256:{executor.package_sha256}")
    if not executor.is_native:
        raise Unverifiable(f"{model_id} is a medigan package, whose samples depend on the batch they were made in")
    return executor


def _inputs(executor: ModelExecutor, record: Mapping[str, Any], given: Any) -> dict[str, Any]:
    """The model inputs of the recorded sample, checked against the recorded inputs digest."""
    from .execution.marking import input_sources, run_arguments

    try:
        kwargs = from_plain(record["inputs"])
    except MarkError as exc:
        raise Unverifiable(f"inputs unavailable: {exc}") from None
    per_sample = executor.spec.per_sample_inputs
    rows = {k: kwargs[k] for k in per_sample if isinstance(kwargs.get(k), np.ndarray)}  # this sample's rows
    paths = [k for k, v in kwargs.items() if "path" in k.lower() and isinstance(v, str) and v]
    want = record.get("inputs_digest")
    for candidate in _candidates(executor, kwargs, paths, given):
        trial = {**kwargs, **candidate}
        if inputs_digest(rows, input_sources(run_arguments(executor, trial))) == want:
            return {**trial, **{k: v[None] for k, v in rows.items()}}
    if paths:
        where = f" ({given})" if given is not None else ""
        raise Unverifiable(f"inputs unavailable: the sample was made from {paths[0]}={kwargs[paths[0]]!r} ({want}); "
                           f"no folder at hand{where} has those files; pass the same inputs (--inputs DIR)")
    raise Unverifiable("its mark's inputs do not match its inputs digest")


def _candidates(executor: ModelExecutor, kwargs: Mapping[str, Any], paths: list[str], given: Any) -> list[dict]:
    """Input folders to try, in order: ``given``, the recorded one, the package's example folders."""
    if not paths:
        return [{}]
    name = paths[0]
    if given is not None:
        return [{name: os.fspath(given)}]
    out = [{name: kwargs[name]}]
    package = executor.package
    if package is not None and (package.folder / "examples").is_dir():
        examples = package.folder / "examples"
        out += [{name: str(p)} for p in [examples, *sorted(p for p in examples.rglob("*") if p.is_dir())]]
    return out


def verify_paths(paths: list[str], inputs: Any = None, device: str | None = None,
                 generators: Generators | None = None) -> list[Verdict | MarkError]:
    """:func:`verify` each file; a file that cannot be read gives its :class:`MarkError` instead."""
    out: list[Verdict | MarkError] = []
    for p in paths:
        try:
            out.append(verify(Path(p), inputs, device, generators))
        except MarkError as exc:
            out.append(exc)
    return out


# ---------------------------------------------------------------------------- the commands
def command(args: Any, generators: Generators, emit: Any) -> int:
    """Run ``medhub inspect`` or ``medhub verify``: 0 when every file is marked (and verifies), 1 when
    one is not (or differs, or cannot be verified), 2 when one cannot be read at all."""
    import sys

    results: list[Any] = []
    if args.command == "inspect":
        for p in args.files:
            try:
                record = inspect(p)
                results.append((p, record, credentials(p) if record is not None else None))
            except MarkError as exc:
                results.append(exc)
        good = [r for r in results if not isinstance(r, MarkError)]
        emit(args, [{"file": p, "record": r, "c2pa": c} for p, r, c in good],
             "\n".join(describe(p, r, c) for p, r, c in good))
        failed = any(r is None for _, r, _ in good)
    else:
        results = verify_paths(args.files, args.inputs, args.device, generators)
        good = [r for r in results if not isinstance(r, MarkError)]
        emit(args, [v.as_dict() for v in good], "\n".join(str(v) for v in good))
        failed = any(not v.ok for v in good)
    for exc in results:
        if isinstance(exc, MarkError):
            print(f"medhub: error: {exc}", file=sys.stderr)
    return 2 if len(good) < len(results) else 1 if failed else 0
