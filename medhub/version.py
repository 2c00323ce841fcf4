"""medhub's version (read by the build from this file)."""

__version__ = "0.2.0.dev0"
