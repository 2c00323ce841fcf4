"""The model test: generate a few samples twice with one seed and check them against the outputs spec."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import Any

from ..errors import MedhubError, ModelTestError

logger = logging.getLogger("medhub.contribute")


@dataclass
class TestReport:
    """What :func:`run_model_test` checked."""

    __test__ = False  # not a pytest test class

    model_id: str
    interface: str
    num_samples: int
    seed: int
    device: str
    outputs: list[dict[str, Any]]
    outputs_inferred: bool
    reproducible: bool
    seconds: float

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def spec_to_dict(spec: Any) -> dict[str, Any]:
    """An :class:`~medhub.outputs.OutputSpec` as the catalog writes it.

    Example:
        >>> from medhub.outputs import OutputSpec
        >>> spec_to_dict(OutputSpec("image", "image", (64, 64), "uint8"))
        {'name': 'image', 'kind': 'image', 'shape': [64, 64], 'dtype': 'uint8'}
    """
    out: dict[str, Any] = {"name": spec.name, "kind": spec.kind, "shape": list(spec.shape), "dtype": spec.dtype}
    for key in ("channels", "range", "values", "format", "spacing", "modality"):
        value = getattr(spec, key)
        if value is not None:
            out[key] = list(value) if isinstance(value, tuple) else value
    return out


def run_model_test(executor: Any, num_samples: int = 3, seed: int = 0, device: str = "cpu",
                   install_dependencies: bool = False, trust_remote_code: bool = False) -> TestReport:
    """Generate ``num_samples`` samples twice with ``seed`` and check them.

    Every batch is checked against the outputs spec (inferred from the first batch when the entry
    declares none); ``medhub/1`` packages must give the same samples for the same seeds. Raises
    :class:`~medhub.errors.ModelTestError` with the underlying problem.

    Example:
        >>> from medhub.config import ConfigManager
        >>> from medhub.execution.ref import executor_for
        >>> report = run_model_test(executor_for(ConfigManager(), 101), num_samples=2)
        >>> report.reproducible, report.outputs[0]["shape"]
        (True, [64, 64])
    """
    import numpy as np

    from ..execution.device import resolve_device
    from ..validate import check_num_samples

    started = time.perf_counter()
    try:
        n = check_num_samples(num_samples)
        executor.prepare(install_dependencies, trust_remote_code)
        device = resolve_device(device, executor.uses_torch)
        inferred = not executor.specs
        first = executor.sample_batch(range(n), seed, device)
        second = executor.sample_batch(range(n), seed, device)
    except MedhubError as exc:
        raise ModelTestError(f"{exc}", step="test") from exc
    same = all(np.array_equal(first[k], second[k], equal_nan=first[k].dtype.kind in "fc") for k in first)
    if not same:
        if executor.is_native:
            raise ModelTestError(
                "The same seeds gave different samples: sample() must draw the random numbers of sample i from a "
                "generator seeded with seeds[i] alone (see docs/model-package.md, section 2).", step="test")
        logger.warning("%s: the same seed gave different samples; medigan packages should draw from the global "
                       "random generators, which medhub seeds", executor.model_id)
    if executor.kind.native and not executor.kind.adapter and not callable(getattr(executor.prepare(), "generate", None)):
        logger.warning("%s: no medigan-style generate(); the package will not run under medigan", executor.model_id)
    return TestReport(executor.model_id, executor.interface, n, seed, device,
                      [spec_to_dict(s) for s in executor.specs], inferred, same,
                      round(time.perf_counter() - started, 3))
