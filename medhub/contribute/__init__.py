"""Model contribution: validate, test, package (reproducibly), publish to Zenodo, open a GitHub issue.

The entry points are :meth:`medhub.Generators.contribute`, :meth:`medhub.Generators.test_model`,
``medhub contribute`` and ``medhub init-model``; see ``docs/contributing-models.md``. PyGithub is
imported only when an issue is searched or opened (``pip install 'medhub[contribute]'``).
"""

from .archive import Archive, make_archive
from .contributor import (
    ContributionResult,
    ModelContributor,
    TestReport,
    catalog_document,
    run_model_test,
    test_model,
    validate_model_id,
)
from .template import init_model, next_free_number

__all__ = [
    "Archive",
    "ContributionResult",
    "ModelContributor",
    "TestReport",
    "catalog_document",
    "init_model",
    "make_archive",
    "next_free_number",
    "run_model_test",
    "test_model",
    "validate_model_id",
]
