"""What :class:`medhub.Generators` delegates its contribution methods to: medigan's step-by-step API
(contributors kept per model id, metadata checks, adding a model to the in-memory catalog) and
``test_model``.

medigan 1.0.0 users call, in order::

    g.add_model_contributor(model_id, init_py_path)
    g.add_metadata_from_file(model_id, metadata_file_path)     # or add_metadata_from_input(...)
    g.test_model(model_id)
    record_url = g.push_to_zenodo(model_id, zenodo_access_token)
    issue_url = g.push_to_github(model_id, github_access_token, package_link=record_url)

Each step runs medhub's own checks (:mod:`medhub.contribute.contributor`).
"""

from __future__ import annotations

import logging
import os
from typing import Any

from ..errors import ContributionError, InvalidArgumentError, MetadataError
from .contributor import ModelContributor
from .ids import validate_model_id
from .metadata import entry_from_metadata
from .model_test import TestReport, run_model_test

logger = logging.getLogger("medhub.contribute")


def find_contributor(contributors: list[ModelContributor], model_id: str | int) -> ModelContributor | None:
    """The contributor of ``model_id`` (its full id, or its number as in medigan: ``150``), or None.

    Example:
        >>> find_contributor([ModelContributor("00150_MY_GAN", "my_gan")], 150).model_id
        '00150_MY_GAN'
    """
    key = str(model_id).strip()
    for contributor in contributors:
        if contributor.model_id == key or (key.isdigit() and contributor.model_id[:5] == key.zfill(5)):
            return contributor
    return None


def require_contributor(contributors: list[ModelContributor], model_id: str | int) -> ModelContributor:
    """The contributor of ``model_id``, or an error saying to add one first."""
    found = find_contributor(contributors, model_id)
    if found is None:
        raise ContributionError(f"No model contributor for {model_id}; call add_model_contributor({str(model_id)!r}, "
                                "init_py_path) first.", step="package")
    return found


def add_contributor(contributors: list[ModelContributor], model_id: str, init_py_path: str | os.PathLike[str] | None,
                    config_manager: Any = None) -> ModelContributor:
    """The contributor of ``model_id``: the one in ``contributors``, else a new one (appended).

    A new one checks the id's format and finds the package folder at once, as medigan did.
    """
    found = find_contributor(contributors, model_id)
    if found is not None:
        logger.warning("%s: a model contributor exists already; using it (init_py_path %s)", found.model_id,
                       found.init_py_path)
        return found
    if init_py_path is None:
        raise InvalidArgumentError(f"add_model_contributor({model_id!r}) needs init_py_path: the path of your model "
                                   "package's __init__.py.")
    contributor = ModelContributor(str(model_id), init_py_path, config_manager)
    with contributor.log.step("model-id"):
        validate_model_id(contributor.model_id, [])
    contributor.locate()
    contributors.append(contributor)
    return contributor


def is_model_metadata_valid(model_id: str, metadata: Any, is_local_model: bool = True) -> bool:
    """Whether ``metadata`` (``{model_id: entry}``, medhub's or medigan's format) is a valid entry; the
    reason is logged when not. See :func:`~medhub.contribute.metadata.entry_from_metadata`.

    Example:
        >>> is_model_metadata_valid("00150_MY_GAN", {"00150_MY_GAN": {"execution": {}}})
        False
    """
    try:
        entry_from_metadata(model_id, metadata, is_local_model)
    except MetadataError as exc:
        logger.warning("Metadata of %s is not valid: %s", model_id, exc)
        return False
    return True


def add_model_to_config(config_manager: Any, contributors: list[ModelContributor], model_id: str, metadata: Any,
                        is_local_model: bool | None = None, overwrite_existing_metadata: bool = False,
                        store_new_config: bool = True) -> bool:
    """Add (or replace) ``model_id``'s entry in ``config_manager``'s in-memory catalog; True when added.

    ``is_local_model`` (default: whether a contributor exists for the id) runs the model from the
    contributor's package folder. An id already in the catalog is replaced only with
    ``overwrite_existing_metadata`` (which also lets the contributor publish a new version of it).
    medhub never writes its catalog files: ``store_new_config`` is accepted, and the entry stays in
    this process (the published entry travels in the GitHub issue).
    """
    contributor = find_contributor(contributors, model_id)
    local = contributor is not None if is_local_model is None else bool(is_local_model)
    try:
        entry = entry_from_metadata(model_id, metadata, local)
    except MetadataError as exc:
        logger.warning("%s: metadata was not added to the catalog: %s", model_id, exc)
        return False
    if model_id in config_manager.config_dict and not overwrite_existing_metadata:
        logger.warning("%s: already in catalog %s; metadata was not added (pass overwrite_existing_metadata=True to "
                       "replace it).", model_id, config_manager.catalog_version)
        return False
    if local and contributor is not None:
        folder = contributor.folder or contributor.locate()
        entry["execution"]["package_link"] = str(folder)  # in this process only; never published
        contributor.allow_existing = contributor.allow_existing or overwrite_existing_metadata
        contributor.added_to_config = contributor.added_to_config or model_id not in config_manager.config_dict
    config_manager.add_entry(model_id, entry)
    if store_new_config:
        logger.info("%s: added to the catalog of this process; medhub does not write its catalog files (the "
                    "published entry goes into the GitHub issue)", model_id)
    return True


def test_model(generators: Any, model_id: str | int, num_samples: int = 3, install_dependencies: bool = False,
               init_py_path: str | os.PathLike[str] | None = None,
               metadata_file_path: str | os.PathLike[str] | None = None, seed: int = 0, device: str = "cpu",
               trust_remote_code: bool = False) -> TestReport:
    """Test a local package (``init_py_path``, or the package of ``model_id``'s contributor) or a
    catalog model; see :meth:`medhub.Generators.test_model`."""
    from ..execution.ref import executor_for

    contributor = find_contributor(getattr(generators, "model_contributors", None) or [], model_id)
    if init_py_path is not None or contributor is not None:
        if contributor is None or init_py_path is not None:
            contributor = ModelContributor(str(model_id), init_py_path, generators.config_manager)  # type: ignore[arg-type]
        contributor.action = "Testing"
        rebuild = contributor.entry is None or metadata_file_path is not None
        try:
            return contributor.prepare(metadata_file_path, check_id=False, require_fields=False,
                                       install_dependencies=install_dependencies, num_samples=num_samples, seed=seed,
                                       device=device, rebuild_metadata=rebuild)
        finally:
            contributor.action = "Contributing"
    if not generators.config_manager.is_model_in_config(model_id):
        raise InvalidArgumentError(f"{model_id} is not in the catalog; to test a local package pass init_py_path= "
                                   "(the path of its __init__.py).")
    return run_model_test(executor_for(generators.config_manager, model_id), num_samples, seed, device,
                          install_dependencies, trust_remote_code)


test_model.__test__ = False  # type: ignore[attr-defined]  # not a pytest test
