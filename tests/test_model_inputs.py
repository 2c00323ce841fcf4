"""Issue 31, point 4: a misspelt model input is refused the same way everywhere, before any work
(medhub.execution.inputs); medigan packages that take ``**kwargs`` take any name, as under medigan."""

from __future__ import annotations

import pytest
from conftest import IMG8, entry, write_catalog, write_package

from medhub import Generators
from medhub.cli import main
from medhub.errors import InvalidArgumentError

TYPO = r"Model 00101_DCGAN_BRAIN_MRI_T1 takes no input 'laten' \(did you mean 'latent'\?\); its inputs: latent\."


def test_the_api_refuses_a_misspelt_input_before_any_work(tmp_path):
    g = Generators()
    with pytest.raises(InvalidArgumentError, match=TYPO):
        g.generate(101, num_samples=2, output_path=tmp_path / "out", seed=0, laten=1)
    assert not (tmp_path / "out").exists()
    with pytest.raises(InvalidArgumentError, match=TYPO):
        g.generate(101, num_samples=2, save_images=False, laten=1)
    with pytest.raises(InvalidArgumentError, match=TYPO):
        g.get_generate_function(101, laten=1)
    with pytest.raises(InvalidArgumentError, match=TYPO):
        g.get_as_torch_dataset(101, num_samples=4, laten=1)
    with pytest.raises(InvalidArgumentError, match=TYPO):
        g.get_as_torch_dataloader(101, num_samples=4, batch_size=2, laten=1)
    assert g.generate(101, num_samples=1, save_images=False, seed=0, latent=None)[0].shape == (64, 64)


def test_report_refuses_a_misspelt_input_before_reading_any_image(tmp_path, capsys):
    real = tmp_path / "real"
    real.mkdir()
    (real / "broken.png").write_bytes(b"")  # read first, it would be the error
    (real / "other.png").write_bytes(b"")
    assert main(["report", "101", "--real", str(real), "--arg", "laten=1", "-o", str(tmp_path / "r.html")]) == 2
    err = capsys.readouterr().err
    assert err == ("medhub: error: --arg laten: model 00101_DCGAN_BRAIN_MRI_T1 takes no input 'laten' (did you mean "
                   "'latent'?); its inputs: latent.\n")
    from medhub import evaluate

    with pytest.raises(InvalidArgumentError, match=TYPO):
        evaluate.model_report(101, real, output=tmp_path / "r.html", model_args={"laten": 1})
    assert not (tmp_path / "r.html").exists()


STRICT_MEDIGAN = """
import numpy as np

def generate(model_file, num_samples, output_path, save_images, size=6):
    return [np.zeros((size, size), np.uint8) for _ in range(num_samples)]
"""


def test_medigan_packages_take_any_name_only_with_kwargs(toy_catalog, tmp_path):
    g = Generators(config_file=toy_catalog)
    assert len(g.generate(902, num_samples=2, save_images=False, seed=0, anything=1)) == 2  # generate(..., **kwargs)
    write_package(tmp_path, "strict", STRICT_MEDIGAN, {"w.bin": b"w"})
    image6 = dict(IMG8, shape=[6, 6])
    cat = write_catalog(tmp_path / "strict.json", {"00910_STRICT": entry("strict", [image6], interface="medigan",
                                                                         model_name="w", extension=".bin")})
    g = Generators(config_file=cat)
    with pytest.raises(InvalidArgumentError, match=r"takes no input 'sise' \(did you mean 'size'\?\)"):
        g.generate(910, num_samples=1, save_images=False, sise=6)
    assert g.generate(910, num_samples=1, save_images=False, size=6)[0].shape == (6, 6)


def test_the_cli_generate_message_is_unchanged(tmp_path, capsys):
    assert main(["generate", "101", "-n", "1", "-o", str(tmp_path / "o"), "--arg", "laten=1"]) == 2
    assert "--arg laten: model 00101_DCGAN_BRAIN_MRI_T1 takes no input 'laten'" in capsys.readouterr().err
    assert not (tmp_path / "o").exists()
