"""The user's real cases (``--add-real DIR``): found, paired and later copied unchanged (never marked).

``DIR`` holds the images in ``images/`` (or ``imagesTr/``, or ``DIR`` itself) and, for
segmentation datasets, the masks in ``masks/`` (or ``labels/``, ``labelsTr/``) under the same names
(an image ``x_0000.nii.gz`` pairs with the mask ``x.nii.gz``, as in nnU-Net). Masks must already
hold label integers. Real case ids are ``real_<name>``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from ..errors import InvalidArgumentError

_ENDINGS = (".nii.gz", ".nii", ".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp", ".nrrd", ".mha")


@dataclass(frozen=True)
class RealCase:
    """One real case: its id and files (mask None for image-only datasets)."""

    case: str
    image: Path
    mask: Path | None

    @property
    def ending(self) -> str:
        return ending(self.image.name)


def ending(name: str) -> str:
    """The file ending of an image file (``.nii.gz`` counts as one).

    Example:
        >>> ending("a_0000.nii.gz"), ending("b.PNG")
        ('.nii.gz', '.png')
    """
    low = name.lower()
    return next((e for e in _ENDINGS if low.endswith(e)), Path(low).suffix)


def _stem(path: Path) -> str:
    stem = path.name[: len(path.name) - len(ending(path.name))]
    return re.sub(r"_0000$", "", stem)


def _images(folder: Path) -> dict[str, Path]:
    files = sorted(p for p in folder.iterdir() if p.is_file() and not p.name.startswith(".")
                   and ending(p.name) in _ENDINGS)
    out: dict[str, Path] = {}
    for p in files:
        key = _stem(p)
        if key in out:
            raise InvalidArgumentError(f"Real folder {folder}: {out[key].name} and {p.name} give the same case "
                                       f"{key!r}; keep one image per case.")
        out[key] = p
    return out


def scan_real(folder: str | Path, segmentation: bool) -> list[RealCase]:
    """The real cases of ``folder``, paired, in name order; one-line errors for what does not pair up."""
    root = Path(folder).expanduser()
    if not root.is_dir():
        raise InvalidArgumentError(f"--add-real {folder}: no such folder; give a folder of images (and masks/).")
    image_dir = next((root / d for d in ("images", "imagesTr") if (root / d).is_dir()), root)
    mask_dir = next((root / d for d in ("masks", "labels", "labelsTr") if (root / d).is_dir()), None)
    images = _images(image_dir)
    if not images:
        raise InvalidArgumentError(f"--add-real {folder}: no image files in {image_dir} (.png, .nii.gz, ...).")
    if not segmentation:
        return [RealCase(_case_id(k), p, None) for k, p in images.items()]
    if mask_dir is None:
        raise InvalidArgumentError(f"--add-real {folder}: this dataset needs masks, and {root} has no masks/ (or "
                                   "labels/) folder; put each image's label map there under the same name.")
    masks = _images(mask_dir)
    lonely, orphans = sorted(set(images) - set(masks)), sorted(set(masks) - set(images))
    if lonely or orphans:
        parts = ([f"{len(lonely)} image(s) without a mask ({', '.join(lonely[:3])})"] if lonely else []) + \
                ([f"{len(orphans)} mask(s) without an image ({', '.join(orphans[:3])})"] if orphans else [])
        raise InvalidArgumentError(f"--add-real {folder}: images and masks do not pair up: {'; '.join(parts)}; give "
                                   "each image a mask of the same name.")
    return [RealCase(_case_id(k), images[k], masks[k]) for k in images]


def _case_id(stem: str) -> str:
    return "real_" + re.sub(r"[^A-Za-z0-9_-]", "_", stem)
