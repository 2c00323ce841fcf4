"""medigan's step-by-step contribution methods of :class:`~medhub.Generators` (a mixin).

medigan 1.0.0's ``add_model_contributor``, ``add_metadata_from_file``, ``push_to_zenodo``, ... with its
parameters and their meaning, as thin wrappers over :mod:`medhub.contribute.stepwise` (imported on
first call). ``Generators`` inherits them; they use its ``config_manager`` and ``model_executors``.
"""

from __future__ import annotations

import os
from typing import Any


class StepwiseContribution:
    """The step-by-step contribution methods; see :class:`medhub.Generators`."""

    config_manager: Any
    model_executors: list[Any]

    @property
    def model_contributors(self) -> list[Any]:
        """The :class:`~medhub.contribute.ModelContributor` objects added so far (medigan's attribute)."""
        return self.__dict__.setdefault("_model_contributors", [])

    @model_contributors.setter
    def model_contributors(self, contributors: list[Any] | None) -> None:
        self.__dict__["_model_contributors"] = list(contributors or [])

    def add_model_contributor(self, model_id: str, init_py_path: str | os.PathLike[str] | None = None) -> Any:
        """Add a contributor for a local model package (id format and folder checked now; whether the
        id is free, when publishing), or return the one added before for ``model_id``.

        Example:
            >>> from medhub.contribute.template import template_folder
            >>> from medhub import Generators
            >>> Generators().add_model_contributor("00150_MY_GAN", template_folder() / "__init__.py").model_id
            '00150_MY_GAN'
        """
        from .contribute.stepwise import add_contributor

        return add_contributor(self.model_contributors, model_id, init_py_path, self.config_manager)

    def get_model_contributor_by_id(self, model_id: str) -> Any:
        """The contributor added for ``model_id`` (its id or number), or None."""
        from .contribute.stepwise import find_contributor

        return find_contributor(self.model_contributors, model_id)

    def add_metadata_from_file(self, model_id: str, metadata_file_path: str | os.PathLike[str]) -> dict:
        """Read the contributed model's catalog entry from a JSON file (or a folder holding
        ``metadata.json``) and check its weights file. Returns ``{model_id: entry}``."""
        from .contribute.stepwise import require_contributor

        return require_contributor(self.model_contributors, model_id).add_metadata_from_file(metadata_file_path)

    def add_metadata_from_input(self, model_id: str, model_weights_name: str | None,
                                model_weights_extension: str | None, generate_method_name: str | None,
                                dependencies: list[str] | None, fill_more_fields_interactively: bool = True,
                                output_path: str | os.PathLike[str] = "config") -> dict:
        """Build the contributed model's catalog entry from the template and these arguments, asking for
        the required fields still missing when ``fill_more_fields_interactively``; write it to
        ``output_path/<model_id>.json``. Returns ``{model_id: entry}``."""
        from .contribute.stepwise import require_contributor

        return require_contributor(self.model_contributors, model_id).add_metadata_from_input(
            model_weights_name, model_weights_extension, generate_method_name, dependencies,
            fill_more_fields_interactively, output_path)

    def is_model_metadata_valid(self, model_id: str, metadata: dict, is_local_model: bool = True) -> bool:
        """Whether ``metadata`` (``{model_id: entry}``, medhub's or medigan's format) is a valid catalog
        entry; a published model (``is_local_model=False``) needs a download URL. The reason is logged.

        Example:
            >>> from medhub import Generators
            >>> g = Generators()
            >>> g.is_model_metadata_valid("00101_DCGAN_BRAIN_MRI_T1", {"00101_DCGAN_BRAIN_MRI_T1": g.get_config_by_id(101)})
            True
        """
        from .contribute.stepwise import is_model_metadata_valid

        return is_model_metadata_valid(model_id, metadata, is_local_model)

    def add_model_to_config(self, model_id: str, metadata: dict, is_local_model: bool | None = None,
                            overwrite_existing_metadata: bool = False, store_new_config: bool = True) -> bool:
        """Add ``model_id``'s entry to this object's catalog (in memory: medhub never writes its catalog
        files, whatever ``store_new_config``); True when added. See
        :func:`medhub.contribute.stepwise.add_model_to_config`."""
        from .contribute.stepwise import add_model_to_config

        added = add_model_to_config(self.config_manager, self.model_contributors, model_id, metadata, is_local_model,
                                    overwrite_existing_metadata, store_new_config)
        if added:  # an executor built from the entry it replaces is stale
            self.model_executors = [e for e in self.model_executors if e.model_id != model_id]
        return added

    def push_to_zenodo(self, model_id: str, zenodo_access_token: str | None, creator_name: str = "unknown name",
                       creator_affiliation: str = "unknown affiliation", model_description: str = "") -> str | None:
        """Check, test and zip the contributed package, upload it to Zenodo (``MEDHUB_ZENODO_URL``) and
        publish it; returns the record's page URL. The token defaults to ``ZENODO_ACCESS_TOKEN``;
        medigan's placeholder texts (``"unknown name"``) count as not given."""
        from .contribute.stepwise import require_contributor

        return require_contributor(self.model_contributors, model_id).push_to_zenodo(
            zenodo_access_token, creator_name, creator_affiliation, model_description)

    def push_to_github(self, model_id: str, github_access_token: str | None, package_link: str | None = None,
                       creator_name: str = "", creator_affiliation: str = "", model_description: str = "") -> str | None:
        """Open the GitHub issue holding the catalog entry (or find the open one); returns its URL.

        ``package_link``: by default (or the URL :meth:`push_to_zenodo` returned) the archive just
        published; another download URL is fetched and checked against the archive rebuilt now."""
        from .contribute.stepwise import require_contributor

        return require_contributor(self.model_contributors, model_id).push_to_github(
            github_access_token, package_link, creator_name, creator_affiliation, model_description)
