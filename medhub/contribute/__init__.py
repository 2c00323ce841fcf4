"""Model contribution: validate, test, package (reproducibly), publish to Zenodo, open a GitHub issue.

The entry points are :meth:`medhub.Generators.contribute`, :meth:`medhub.Generators.test_model`,
medigan's step-by-step methods of :class:`medhub.Generators` (``add_model_contributor``,
``add_metadata_from_file``, ``push_to_zenodo``, ...), ``medhub contribute`` and ``medhub init-model``;
see ``docs/contributing-models.md``. PyGithub is imported only when an issue is searched or opened
(``pip install 'medhub[contribute]'``).

One module per job: :mod:`~.ids` (model ids), :mod:`~.metadata` (the catalog entry),
:mod:`~.local_paths` (nothing published names a local file), :mod:`~.checks` (package checks),
:mod:`~.model_test` (the test run), :mod:`~.archive` (reproducible zip), :mod:`~.publish` (the
publish steps, over :mod:`~.zenodo` and :mod:`~.github`), :mod:`~.steps` (the step log and its
errors), :mod:`~.online` (offline mode), :mod:`~.contributor` (the workflow),
:mod:`~.stepwise` (what ``Generators`` delegates to), :mod:`~.template` (``init-model``) and
:mod:`~.hub_proposal` (a catalog entry for a model already on the Hugging Face Hub: no archive, no Zenodo).
"""

from .archive import Archive, make_archive
from .contributor import ModelContributor
from .hub_proposal import HubProposal, propose_hub_model
from .ids import next_free_number, validate_model_id
from .metadata import catalog_document
from .model_test import TestReport, run_model_test
from .online import OfflineModeError
from .publish import ContributionResult
from .stepwise import test_model
from .template import init_model

__all__ = [
    "Archive",
    "ContributionResult",
    "HubProposal",
    "ModelContributor",
    "OfflineModeError",
    "TestReport",
    "catalog_document",
    "init_model",
    "make_archive",
    "next_free_number",
    "propose_hub_model",
    "run_model_test",
    "test_model",
    "validate_model_id",
]
