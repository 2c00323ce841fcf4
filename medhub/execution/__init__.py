"""Model execution: resolve, verify, import and run model packages."""

from .executor import ModelExecutor
from .seeds import sample_seeds

__all__ = ["ModelExecutor", "sample_seeds"]
