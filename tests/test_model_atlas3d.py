"""The shipped 3D atlas-deformation model 00107: NIfTI output, aligned masks, latent and inputs."""

from __future__ import annotations

import numpy as np
import pytest

from medhub import Generators
from medhub.errors import GenerationError

ID = "00107_ATLAS3D_BRAIN_MRI_T1_SEG"


@pytest.fixture(scope="module")
def g() -> Generators:
    return Generators()


@pytest.fixture(scope="module")
def pair(g):
    return g.generate(ID, num_samples=1, save_images=False, seed=3)[0]


def test_mask_is_aligned_with_the_volume(pair):
    vol, mask = pair
    assert set(np.unique(mask)) == {0, 1, 2, 3}
    means = [vol[mask == k].mean() for k in range(4)]
    # T1 contrast: background < CSF < grey matter < white matter, measured through the mask
    assert means[0] < means[1] < means[2] < means[3]
    # the brain is a compact blob near the centre, not spread to the borders
    assert mask[:4].max() == 0 and mask[-4:].max() == 0


def test_writes_nifti_with_spacing(g, tmp_path):
    import nibabel as nib

    run = g.generate(ID, num_samples=2, output_path=tmp_path / "out", seed=0)
    names = sorted(p.name for p in (tmp_path / "out").glob("*.nii.gz"))
    assert names == ["000000_mask.nii.gz", "000000_volume.nii.gz", "000001_mask.nii.gz", "000001_volume.nii.gz"]
    img = nib.load(str(tmp_path / "out" / "000001_volume.nii.gz"))
    assert img.shape == (64, 64, 64)
    assert np.allclose(np.diag(img.affine)[:3], 233 / 64, atol=1e-3)
    again = g.generate(ID, num_samples=2, save_images=False, seed=0)
    assert np.array_equal(np.asarray(img.dataobj), again[1][0])
    assert run.manifest_path.exists()


def test_latent_controls_the_shape_not_the_appearance(g):
    z = np.zeros((2, 192), np.float32)
    z[1, :64] = 2.0  # a strong displacement along one axis for the second sample
    flat = dict(rotation_deg=0.0, scale=0.0)
    a = g.generate(ID, num_samples=2, save_images=False, seed=5, latent=z, **flat)
    assert not np.array_equal(a[0][1], a[1][1]), "a different latent must change the mask"
    b = g.generate(ID, num_samples=2, save_images=False, seed=5, latent=np.zeros((2, 192), np.float32), **flat)
    assert np.array_equal(a[0][1], b[0][1]), "the same latent (and no affine) gives the same mask"


def test_no_deformation_gives_the_atlas_mask(g):
    flat = dict(deformation_mm=0.0, rotation_deg=0.0, scale=0.0)
    one, two = g.generate(ID, num_samples=2, save_images=False, seed=1, **flat)
    assert np.array_equal(one[1], two[1]), "without deformation every mask is the atlas"
    assert not np.array_equal(one[0], two[0]), "the appearance still varies with the seed"


@pytest.mark.parametrize("bad", [{"deformation_mm": -1.0}, {"noise": float("nan")}, {"scale": 0.7}])
def test_bad_parameters_say_what_is_accepted(g, bad):
    with pytest.raises(GenerationError, match="must be"):
        g.generate(ID, num_samples=1, save_images=False, seed=0, **bad)


def test_plot_samples_shows_mid_slices(g):
    pytest.importorskip("matplotlib")
    import matplotlib

    matplotlib.use("Agg")
    fig = g.plot_samples(ID, n=2, seed=0)
    assert fig.axes
