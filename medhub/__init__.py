"""medhub: a hub of pretrained generative models for medical image synthesis.

Example:
    >>> from medhub import Generators
    >>> g = Generators()
    >>> images = g.generate(101, num_samples=4, save_images=False, seed=0)
    >>> len(images), images[0].shape
    (4, (64, 64))

Importing medhub is light: torch, matplotlib and the GitHub/Zenodo clients are imported only by
the functions that need them.
"""

from typing import Any

from .errors import MedhubError
from .generators import Generators
from .version import __version__

__all__ = ["Generators", "MedhubError", "__version__", "inspect", "verify"]


def __getattr__(name: str) -> Any:
    """``medhub.inspect`` and ``medhub.verify`` (:mod:`medhub.verification`), imported on first use."""
    if name in ("inspect", "verify"):
        from . import verification

        return getattr(verification, name)
    raise AttributeError(f"module 'medhub' has no attribute {name!r}")
