"""Exception classes of medhub. Every error medhub raises derives from :class:`MedhubError`."""

from __future__ import annotations


class MedhubError(Exception):
    """Base class of every error raised by medhub; its message says what to do next."""


class CatalogError(MedhubError):
    """The model catalog could not be read, or one of its entries is malformed."""


class ModelNotFoundError(MedhubError, KeyError):
    """A model id does not resolve to exactly one catalog entry."""

    def __init__(self, message: str, candidates: list[str] | None = None) -> None:
        super().__init__(message)
        self.candidates = candidates or []

    def __str__(self) -> str:  # KeyError would otherwise quote the message
        return str(self.args[0])


class ConfigKeyError(MedhubError, KeyError):
    """A dotted config key does not exist for a model."""

    def __str__(self) -> str:
        return str(self.args[0])


class SelectionError(MedhubError, ValueError):
    """Bad arguments to a search or ranking (unknown operator, order, empty values...)."""


class PackageError(MedhubError):
    """A model package could not be found, verified or imported."""


class IntegrityError(PackageError):
    """A model package does not match the sha256 pinned in the catalog."""


class PackageNotAvailableError(PackageError):
    """A model package is not present locally and cannot be fetched by this medhub."""


class DependencyError(MedhubError):
    """A model package needs Python distributions that are missing or at the wrong version."""

    def __init__(self, message: str, requirements: list[str] | None = None) -> None:
        super().__init__(message)
        self.requirements = requirements or []


class DeviceError(MedhubError, ValueError):
    """The requested device is malformed or not available."""


class GenerationError(MedhubError):
    """A model package raised an error while generating samples."""


class OutputSpecError(GenerationError):
    """A model package returned outputs that break the outputs spec of its catalog entry."""


class OutputPathError(MedhubError):
    """The output folder cannot be used (not writable, a file, or holds another run)."""


class WriterError(OutputPathError):
    """A process writing a run's files failed or ended unexpectedly; nothing of the run was kept."""


class MarkError(MedhubError, ValueError):
    """A file cannot be read as a medhub output: unreadable, a foreign format, or a damaged mark."""


class InvalidArgumentError(MedhubError, ValueError):
    """An argument has the wrong type or value (e.g. ``num_samples`` <= 0)."""


class SettingError(InvalidArgumentError):
    """An environment variable medhub reads has a bad value (see :mod:`medhub.settings`)."""


class DownloadError(PackageError):
    """A package download failed (HTTP error, timeout, too many retries)."""


class UnsafeArchiveError(PackageError):
    """A package archive holds members that could escape the package folder or exhaust the disk."""


class UntrustedPackageError(PackageError):
    """A package has no pinned sha256 and the user has not said it trusts it, or it changed since."""


class LatentNotSupportedError(MedhubError, ValueError):
    """A model takes no explicit latent vector, so the latent explorer cannot drive it."""


# ---------------------------------------------------------------------------- model contribution
class ContributionError(MedhubError):
    """A step of the model contribution workflow failed.

    ``step`` names the step (``tokens``, ``model-id``, ``package``, ``weights``, ``metadata``,
    ``test``, ``archive``, ``github-check``, ``zenodo-create``, ``zenodo-upload``,
    ``zenodo-metadata``, ``zenodo-publish``, ``github-issue``); ``done`` lists what was already done;
    ``state`` holds what is needed to resume (e.g. ``{"zenodo_deposition_id": 123}``).
    """

    def __init__(self, message: str, step: str = "", done: list[str] | None = None,
                 state: dict | None = None) -> None:
        super().__init__(message)
        self.step = step
        self.done = list(done or [])
        self.state = dict(state or {})


class MissingTokenError(ContributionError):
    """An access token needed to publish (ZENODO_ACCESS_TOKEN, GITHUB_TOKEN) was not given."""


class ModelIdError(ContributionError, ValueError):
    """A model id to contribute is malformed or already taken."""


class MetadataError(ContributionError, ValueError):
    """The metadata of a contributed model is missing fields, invalid, or holds a local path."""


class ModelTestError(ContributionError):
    """A contributed model failed its test (import, dependencies, generation, outputs spec)."""


class ZenodoError(ContributionError):
    """A request to Zenodo's REST API failed (create, upload, metadata, publish)."""


class GitHubError(ContributionError):
    """A request to the GitHub API failed (repository access, issue search, issue creation)."""
