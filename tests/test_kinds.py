"""The package-kind table, the typed model spec, the source table and the runs' entry points (issue 33)."""

from __future__ import annotations

import types

import numpy as np
import pytest

from medhub.config import ConfigManager
from medhub.errors import PackageError, PackageNotAvailableError
from medhub.execution.kinds import KINDS, kind_of
from medhub.execution.ref import executor_for
from medhub.execution.resolve import SOURCES, PackageResolver
from medhub.execution.spec import ModelSpec


def _spec(interface: str, **method) -> ModelSpec:
    return ModelSpec.parse("00001_X", {"interface": interface, "generate_method": {
        "args": {"custom": {"condition": 1}}, "input_latent_vector_size": 4, **method}})


def test_one_kind_per_interface():
    assert list(KINDS) == ["medhub/1", "medigan", "diffusers", "monai-bundle"]
    assert [k for k, kind in KINDS.items() if kind.native] == ["medhub/1", "diffusers", "monai-bundle"]
    assert [k for k, kind in KINDS.items() if kind.adapter] == ["diffusers", "monai-bundle"]
    assert [k for k, kind in KINDS.items() if kind.own_count] == ["medigan"]
    assert KINDS["medigan"].grad == "no_grad" and KINDS["medhub/1"].grad == "inference"


def test_each_kind_answers_which_inputs_its_model_takes():
    def sample(model, seeds, latent=None, indices=None, steps=3):
        return {}

    def generate(model_file, num_samples, output_path, save_images, translate=False):
        return []

    def generate_any(model_file, num_samples, **kwargs):
        return []

    native = types.SimpleNamespace(load=print, sample=sample)
    assert KINDS["medhub/1"].inputs(native, _spec("medhub/1")) == {"condition", "latent", "steps"}
    medigan = types.SimpleNamespace(generate=generate)
    assert KINDS["medigan"].inputs(medigan, _spec("medigan")) == {"condition", "latent", "translate"}
    assert KINDS["medigan"].inputs(types.SimpleNamespace(generate=generate_any), _spec("medigan")) is None
    adapter = types.SimpleNamespace(input_names=lambda: ["prompt"])
    for name in ("diffusers", "monai-bundle"):
        assert KINDS[name].inputs(adapter, _spec(name)) == {"condition", "latent", "prompt"}


def test_the_executor_the_cli_and_visualize_ask_the_same_question():
    executor = executor_for(ConfigManager(), 101)
    assert executor.inputs() == KINDS["medhub/1"].inputs(executor.prepare(), executor.spec) == {"latent"}


def test_only_medigan_runs_path_inputs_in_one_call():
    args = {"input_path": "models/x/in", "n": 1}
    assert KINDS["medigan"].calls_once(args) and not KINDS["medigan"].calls_once({"n": 1})
    assert not any(KINDS[k].calls_once(args) for k in ("medhub/1", "diffusers", "monai-bundle"))


def test_entry_points_follow_the_kind():
    assert KINDS["medhub/1"].entry_points("generate") == ("load", "sample")
    assert KINDS["medigan"].entry_points("make") == ("make",)


@pytest.mark.parametrize("method, field", [
    ({"memory_format": "nhwc"}, "memory_format"),
    ({"batch_size": 0}, "batch_size"),
    ({"batch_size": True}, "batch_size"),
    ({"thread_safe": "yes"}, "thread_safe"),
    ({"inference_mode": 1}, "inference_mode"),
    ({"mixed_precision": "float8"}, "mixed_precision"),
    ({"input_latent_vector_size": -1}, "input_latent_vector_size"),
    ({"args": {"custom": [1]}}, "args.custom"),
])
def test_bad_spec_values_give_one_clear_line(method, field):
    with pytest.raises(PackageError, match=f"execution.generate_method.{field} must be") as info:
        ModelSpec.parse("00001_X", {"interface": "medhub/1", "generate_method": method})
    assert "\n" not in str(info.value)


def test_unknown_interface_is_refused_by_the_table():
    with pytest.raises(PackageError, match="unknown package interface 'onnx'"):
        ModelSpec.parse("00001_X", {"interface": "onnx"})
    assert kind_of("medigan") is KINDS["medigan"]


def test_spec_is_typed_and_frozen():
    spec = _spec("medhub/1", per_sample_inputs=["latent"], batch_size=8, thread_safe=True)
    assert (spec.batch_size, spec.per_sample_inputs, spec.latent_size, spec.thread_safe) == (8, ("latent",), 4, True)
    assert not _spec("medigan", thread_safe=True).thread_safe  # only native kinds run in threads
    with pytest.raises(AttributeError):
        spec.batch_size = 1  # type: ignore[misc]
    rows = spec.per_sample_rows({"latent": np.zeros((3, 4)), "condition": 2}, 3)
    assert list(rows) == ["latent"]


def test_sources_are_a_scheme_table(tmp_path):
    assert set(SOURCES) == {"hf", "http", "https", ""}
    with pytest.raises(PackageNotAvailableError, match="scheme 's3'"):
        PackageResolver(tmp_path).resolve("00001_X", {"package_link": "s3://bucket/pkg.zip"})


def test_each_run_entry_point_returns_one_type(tmp_path):
    from medhub.outputs import GenerationRun
    from medhub.outputs.manifest import MANIFEST, PROVENANCE
    from medhub.runs.single import generate_files, generate_samples

    executor = executor_for(ConfigManager(), 101)
    samples = generate_samples(executor, 2, seed=0, device="cpu", progress=False)
    assert isinstance(samples, list) and samples[0].shape == (64, 64)
    run = generate_files(executor, 2, tmp_path / "run", seed=0, device="cpu", progress=False)
    assert isinstance(run, GenerationRun)
    assert (run.manifest_path.name, run.provenance_path.name) == (MANIFEST, PROVENANCE)
    assert not hasattr(executor, "generate")  # the engine has no run modes
