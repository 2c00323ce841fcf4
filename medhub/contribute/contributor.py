"""ModelContributor: validate, test, package, publish to Zenodo and open a GitHub issue, in one call.

The steps, in order (each failure raises a :class:`~medhub.errors.ContributionError` subclass whose
``step`` names the step and whose message says what was already done and how to go on):

``tokens``        offline mode is off, and the Zenodo and GitHub tokens needed by the run are there
                  (arguments or ``ZENODO_ACCESS_TOKEN`` / ``GITHUB_TOKEN``);
``model-id``      the id has the catalog's format and is not taken (:mod:`~medhub.contribute.ids`);
``package``       the package folder exists and has ``__init__.py``;
``metadata``      the catalog entry is read from a file (or the package's ``metadata.json``) or built
                  from the template plus arguments; required fields are there (prompted for only
                  when ``interactive``); no local path is left in it; it validates against the schema
                  (:mod:`~medhub.contribute.metadata`);
``weights``       the weights file is inside the package, not empty, and not a pickle;
``import``        the dependencies are installed, the package imports by file path, its interface
                  (``medhub/1`` when it has ``load`` and ``sample``, else ``medigan``) is detected
                  (:mod:`~medhub.contribute.checks`);
``test``          samples are generated on the CPU and checked against the outputs spec (inferred
                  when the metadata declares none), twice with the same seed
                  (:mod:`~medhub.contribute.model_test`);
``archive``       the package is zipped reproducibly (same files, same sha256);
``github-check``  the repository is readable with the token, and no open issue names the model yet;
``zenodo-*``      a deposition is created, the archive uploaded and checked (md5), the metadata set,
                  and the deposition published when ``publish=True`` or confirmed;
``github-issue``  an issue holding the catalog entry (sha256, size, download URL) is opened
                  (these last four: :mod:`~medhub.contribute.publish`).

Nothing published ever holds a local path, and tokens only travel in ``Authorization`` headers.
medigan's step-by-step methods (``add_metadata_from_file``, ``add_metadata_from_input``,
``push_to_zenodo``, ``push_to_github``) run the same steps.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from ..errors import ContributionError
from ..golden import golden_entry
from .checks import check_weights, import_and_detect, locate_package
from .ids import validate_model_id
from .metadata import (
    REQUIRED_FIELDS,
    apply_arguments,
    field_value,
    missing_fields,
    missing_fields_error,
    pinned_entry,
    read_metadata_file,
    relativize_paths,
    requirements_txt,
    set_field,
    skeleton_entry,
)
from .model_test import TestReport, run_model_test
from .publish import ContributionResult, Publication, Texts, access_tokens, package_model, publish_target
from .steps import StepLog

logger = logging.getLogger("medhub.contribute")

#: medigan's default creator texts, which mean "not given".
MEDIGAN_PLACEHOLDERS = frozenset({"", "unknown name", "unknown affiliation"})


def publication_texts(creator_name: str | None = None, creator_affiliation: str | None = None,
                      model_description: str | None = None) -> Texts:
    """The texts of a publication, medigan's placeholders (``"unknown name"``...) read as not given.

    Example:
        >>> publication_texts("unknown name", "Lab", "")
        Texts(creator_name=None, creator_affiliation='Lab', model_description=None)
    """
    given = [None if t is None or t.strip() in MEDIGAN_PLACEHOLDERS else t
             for t in (creator_name, creator_affiliation, model_description)]
    return Texts(*given)


class ModelContributor:
    """Contributes one model package: see the module docstring for the steps.

    Args:
        model_id: the new model's id, e.g. ``00150_MY_GAN``.
        init_py_path: the package's ``__init__.py`` (or its folder).
        config_manager: the catalog whose ids are taken (default: medhub's catalog).
        interactive: prompt for missing metadata and for the publication (never otherwise).
        prompt: the function that asks (default :func:`input`).

    Example:
        >>> from medhub.contribute.template import template_folder
        >>> contributor = ModelContributor("00150_MY_GAN", template_folder())
        >>> contributor.add_metadata_from_file(template_folder())["00150_MY_GAN"]["execution"]["package_name"]
        '00150_MY_GAN'
    """

    def __init__(self, model_id: str, init_py_path: str | os.PathLike[str], config_manager: Any = None,
                 interactive: bool = False, prompt: Callable[[str], str] | None = None) -> None:
        self.model_id = model_id
        self.init_py_path = init_py_path
        self._config_manager = config_manager
        self.interactive = interactive
        self.prompt = prompt or input
        self.folder: Path | None = None
        self.entry: dict[str, Any] | None = None
        self.report: TestReport | None = None
        self.publication: Publication | None = None
        #: accept the id of a catalog model (a new version of it), as ``overwrite_existing_metadata``
        self.allow_existing = False
        #: the model was added to the in-memory catalog (medigan's ``add_model_to_config``): its own
        #: entry there does not make the id taken
        self.added_to_config = False
        self.log = StepLog(model_id)

    @property
    def config_manager(self) -> Any:
        if self._config_manager is None:
            from ..config import catalog_or_default

            self._config_manager = catalog_or_default()
        return self._config_manager

    @property
    def done(self) -> list[str]:
        """What was done so far, in order."""
        return self.log.done

    @property
    def state(self) -> dict[str, Any]:
        """What is needed to resume (deposition id, published link) and the warnings."""
        return self.log.state

    @property
    def action(self) -> str:
        """The first word of error messages (``Contributing``, ``Testing``)."""
        return self.log.action

    @action.setter
    def action(self, value: str) -> None:
        self.log.action = value

    @property
    def metadata(self) -> dict[str, Any] | None:
        """``{model_id: entry}`` (medigan's attribute), or None before the metadata is added."""
        return None if self.entry is None else {self.model_id: self.entry}

    def __repr__(self) -> str:
        return f"ModelContributor(model_id={self.model_id!r}, init_py_path={str(self.init_py_path)!r})"

    # ------------------------------------------------------------------ local steps
    def locate(self) -> Path:
        """The ``package`` step: the package folder, with a warning for a missing README.md or LICENSE."""
        with self.log.step("package"):
            self.folder = locate_package(self.init_py_path)
            for name in ("README.md", "LICENSE"):
                if not (self.folder / name).is_file():
                    self.log.warn(f"the package has no {name}")
                    logger.warning("%s: the package has no %s (see docs/model-package.md)", self.model_id, name)
        return self.folder

    def build_metadata(self, metadata_file_path: str | os.PathLike[str] | None = None, *, from_template: bool = False,
                       **metadata_args: Any) -> dict[str, Any]:
        """The entry of the model (without package link, sha256 and size): from a metadata file, the
        package's own ``metadata.json``, or the template plus arguments (``from_template`` skips the
        package's file); arguments win. See :func:`~medhub.contribute.metadata.apply_arguments`."""
        assert self.folder is not None
        if metadata_file_path is not None:
            entry = read_metadata_file(metadata_file_path, self.model_id)
            self.log.did(f"read the metadata from {Path(metadata_file_path).name}")
        elif not from_template and (self.folder / "metadata.json").is_file():
            entry = read_metadata_file(self.folder, self.model_id)
            self.log.did("read the metadata from the package's metadata.json")
        else:
            entry = skeleton_entry(self.model_id)
            entry["execution"]["dependencies"] = requirements_txt(self.folder) or []
            self.log.did("built the metadata from the template")
        self.entry = apply_arguments(entry, self.model_id, **metadata_args)
        return self.entry

    def ask_missing(self) -> list[str]:
        """Prompt for each required field still missing; returns those still missing after."""
        assert self.entry is not None
        for key in missing_fields(self.entry):
            set_field(self.entry, key, field_value(key, self.prompt(f"{key} ({REQUIRED_FIELDS[key]}): ").strip()))
        return missing_fields(self.entry)

    def require_fields(self) -> None:
        """Raise MetadataError listing the required fields still missing (asked for first when interactive)."""
        assert self.entry is not None
        missing = self.ask_missing() if self.interactive else missing_fields(self.entry)
        if missing:
            raise missing_fields_error(missing)

    def validate_entry(self, package_link: str | None = None, sha256: str | None = None,
                       size: int | None = None) -> dict[str, Any]:
        """``{model_id: entry}`` with the given link / pin, validated against the catalog schema."""
        assert self.entry is not None
        return pinned_entry(self.model_id, self.entry, package_link, sha256, size)

    def test(self, num_samples: int = 3, seed: int = 0, device: str = "cpu", install_dependencies: bool = False,
             trust_remote_code: bool = False) -> TestReport:
        """Run the package through medhub's executor, as users will, and check its samples."""
        from ..execution.ref import ModelRef

        assert self.folder is not None and self.entry is not None
        execution = {**self.entry["execution"], "package_link": str(self.folder)}
        executor = ModelRef(self.model_id, execution, self.entry["description"], base_dir=str(self.folder.parent),
                            package_path=str(self.folder)).build()
        report = run_model_test(executor, num_samples, seed, device, install_dependencies, trust_remote_code)
        if report.outputs_inferred:
            self.entry["execution"]["outputs"] = report.outputs
            logger.warning("%s: no outputs spec in the metadata; inferred %s from the samples. Check it, and add "
                           "range / values.", self.model_id, [o["name"] for o in report.outputs])
        if report.reproducible:
            from ..runs.single import generate_samples

            golden = self.entry["execution"]["golden"] = golden_entry(  # save_images=False: samples in memory
                lambda save_images=False, **options: generate_samples(executor, **options))
            logger.info("%s: golden samples (seed 0, 8, CPU) have sha256 %s", self.model_id, golden["sha256"])
        selection = self.entry["selection"]
        if not selection.get("generates"):
            selection["generates"] = [o["name"] for o in report.outputs]
        return report

    def prepare(self, metadata_file_path: str | os.PathLike[str] | None = None, *, check_id: bool = True,
                allow_existing: bool = False, install_dependencies: bool = False, num_samples: int = 3,
                seed: int = 0, device: str = "cpu", require_fields: bool = True, rebuild_metadata: bool = True,
                **metadata_args: Any) -> TestReport:
        """The local steps: id, package, metadata, weights, import, schema, test. Returns the test report.

        ``check_id=False`` and ``require_fields=False`` test a package without the checks a
        publication needs (what :meth:`medhub.Generators.test_model` does); ``rebuild_metadata=False``
        keeps metadata added before (medigan's ``add_metadata_from_*``), completed by ``metadata_args``."""
        log = self.log
        with log.step("model-id"):
            if check_id:
                taken = [m for m in self.config_manager.model_ids if m != self.model_id or not self.added_to_config]
                validate_model_id(self.model_id, taken, allow_existing or self.allow_existing)
                log.did(f"checked that {self.model_id} is free in catalog {self.config_manager.catalog_version}")
            else:
                validate_model_id(self.model_id, [])
        folder = self.locate()
        with log.step("metadata"):
            if rebuild_metadata or self.entry is None:
                self.build_metadata(metadata_file_path, **metadata_args)
            else:  # metadata added before; the arguments still win
                apply_arguments(self.entry, self.model_id, **metadata_args)
            assert self.entry is not None
            if require_fields:
                self.require_fields()
            elif not str(self.entry["description"].get("title") or "").strip():
                self.entry["description"]["title"] = self.model_id
        with log.step("weights"):
            check_weights(folder, self.entry["execution"])
            log.did("checked the weights file")
        with log.step("import"):
            interface = import_and_detect(self.model_id, folder, self.entry["execution"], install_dependencies)
            log.did(f"imported the package (interface {interface})")
        with log.step("metadata"):
            for change in relativize_paths(self.entry, folder, self.model_id, interface):
                logger.info("%s: made a local path relative: %s", self.model_id, change)
            self.validate_entry()
        with log.step("test"):
            self.report = self.test(num_samples=num_samples, seed=seed, device=device,
                                    install_dependencies=install_dependencies)
            self.validate_entry()
            log.did(f"tested {self.report.num_samples} samples against the outputs spec")
        return self.report

    # ------------------------------------------------------------------ the whole workflow
    def contribute(
        self,
        metadata_file_path: str | os.PathLike[str] | None = None,
        *,
        zenodo_access_token: str | None = None,
        github_access_token: str | None = None,
        model_weights_name: str | None = None,
        model_weights_extension: str | None = None,
        generate_method_name: str | None = None,
        dependencies: list[str] | None = None,
        creator_name: str | None = None,
        creator_affiliation: str | None = None,
        model_description: str | None = None,
        metadata_fields: Mapping[str, Any] | None = None,
        install_dependencies: bool = False,
        allow_existing: bool = False,
        output_path: str | os.PathLike[str] | None = None,
        dry_run: bool = False,
        publish: bool | None = None,
        sandbox: bool = False,
        zenodo_url: str | None = None,
        github_url: str | None = None,
        github_repo: str | None = None,
        zenodo_deposition_id: int | None = None,
        package_link: str | None = None,
        num_samples: int = 3,
        device: str = "cpu",
        retries: int | None = None,
        backoff: float | None = None,
    ) -> ContributionResult:
        """Validate, test, package, publish and open the issue; see :meth:`medhub.Generators.contribute`."""
        zenodo_token, github_token = access_tokens(zenodo_access_token, github_access_token)
        self.log.secrets = [t for t in (zenodo_token, github_token) if t]
        may_publish = publish is True or (publish is None and self.interactive) or package_link is not None
        target = None
        if not dry_run:  # settings are checked before any work, so a typo does not cost a test run
            with self.log.step("tokens"):
                target = publish_target(zenodo_token, github_token, need_zenodo=package_link is None,
                                        need_github=may_publish, zenodo_url=zenodo_url, sandbox=sandbox,
                                        github_url=github_url, github_repo=github_repo)
        report = self.prepare(metadata_file_path, allow_existing=allow_existing,
                              install_dependencies=install_dependencies, num_samples=num_samples, device=device,
                              model_weights_name=model_weights_name, model_weights_extension=model_weights_extension,
                              generate_method_name=generate_method_name, dependencies=dependencies,
                              creator_name=creator_name, model_description=model_description,
                              metadata_fields=metadata_fields)
        assert self.folder is not None and self.entry is not None
        pub = package_model(self.log, self.folder, self.entry, report, output_path,
                            Texts(creator_name, creator_affiliation, model_description), dry_run)
        self.publication = pub
        if target is None:
            return pub.finish_dry_run()
        tracker = target.tracker() if may_publish and github_token else None
        if tracker is not None and pub.check_issues(tracker):
            return pub.result
        if package_link is None:
            confirm = self.prompt if self.interactive else None
            if not pub.to_zenodo(target.uploader(retries, backoff), zenodo_deposition_id, publish, confirm):
                return pub.result
        else:
            pub.use_published(package_link, retries, backoff)
        assert tracker is not None
        pub.open_issue(tracker)
        return pub.result

    # ------------------------------------------------------------------ medigan's step-by-step API
    def add_metadata_from_file(self, metadata_file_path: str | os.PathLike[str]) -> dict[str, Any]:
        """medigan's step: read the entry from a metadata file (or a folder holding ``metadata.json``)
        and check the weights file it names. Returns ``{model_id: entry}``."""
        self._add_metadata(metadata_file_path)
        return self.metadata  # type: ignore[return-value]

    def add_metadata_from_input(self, model_weights_name: str | None = None, model_weights_extension: str | None = None,
                                generate_method_name: str | None = None, dependencies: list[str] | None = None,
                                fill_more_fields_interactively: bool = True,
                                output_path: str | os.PathLike[str] = "config") -> dict[str, Any]:
        """medigan's step: build the entry from the template and these arguments, ask for the required
        fields still missing (when ``fill_more_fields_interactively``), check the weights file and
        write the entry to ``output_path/<model_id>.json``. Returns ``{model_id: entry}``."""
        self._add_metadata(None, ask=fill_more_fields_interactively, model_weights_name=model_weights_name,
                           model_weights_extension=model_weights_extension, generate_method_name=generate_method_name,
                           dependencies=dependencies)
        path = Path(output_path).expanduser() / f"{self.model_id}.json"
        with self.log.step("metadata"):
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(json.dumps(self.metadata, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
            self.log.did(f"wrote the metadata to {path.name}")
        return self.metadata  # type: ignore[return-value]

    def _add_metadata(self, metadata_file_path: str | os.PathLike[str] | None, ask: bool = False,
                      **metadata_args: Any) -> None:
        folder = self.folder or self.locate()
        with self.log.step("metadata"):
            self.build_metadata(metadata_file_path, from_template=metadata_file_path is None, **metadata_args)
            if ask:
                self.ask_missing()
        with self.log.step("weights"):
            check_weights(folder, self.entry["execution"])  # type: ignore[index]
            self.log.did("checked the weights file")

    def push_to_zenodo(self, access_token: str | None = None, creator_name: str | None = None,
                       creator_affiliation: str | None = None, model_description: str | None = None, *,
                       output_path: str | os.PathLike[str] | None = None) -> str | None:
        """medigan's step: run the local steps, zip, upload to Zenodo and publish. Returns the record's page URL.

        The token defaults to ``ZENODO_ACCESS_TOKEN``; the Zenodo is ``MEDHUB_ZENODO_URL``."""
        zenodo_token, _ = access_tokens(access_token, None)
        self.log.secrets = [t for t in (zenodo_token, *self.log.secrets) if t]
        with self.log.step("tokens"):
            target = publish_target(zenodo_token, None, need_zenodo=True, need_github=False)
        given = publication_texts(creator_name, creator_affiliation, model_description)
        self.prepare(rebuild_metadata=self.entry is None, creator_name=given.creator_name,
                     model_description=given.model_description)
        assert self.folder is not None and self.entry is not None
        pub = package_model(self.log, self.folder, self.entry, self.report, output_path, given)
        pub.to_zenodo(target.uploader(), None, publish=True)
        self.publication = pub
        return pub.result.record_url

    def push_to_github(self, access_token: str | None = None, package_link: str | None = None,
                       creator_name: str | None = None, creator_affiliation: str | None = None,
                       model_description: str | None = None) -> str | None:
        """medigan's step: open the issue holding the catalog entry. Returns the issue's URL.

        ``package_link`` is the published archive: by default (or given as the record page or
        download URL that :meth:`push_to_zenodo` returned) the one this contributor published;
        another URL is downloaded and checked against the archive rebuilt now. An open issue
        naming the model is returned instead of opening a second one."""
        _, github_token = access_tokens(None, access_token)
        self.log.secrets = [t for t in (github_token, *self.log.secrets) if t]
        with self.log.step("tokens"):
            target = publish_target(None, github_token, need_zenodo=False, need_github=True)
        pub = self.publication
        own = (pub is not None and pub.result.published
               and package_link in (None, pub.result.record_url, pub.result.download_url))
        if not own:
            with self.log.step("github-issue"):
                if package_link is None:
                    raise ContributionError(f"{self.model_id} has no published archive yet: run push_to_zenodo first, "
                                            "or pass package_link= (the download URL of the published archive).")
            self.prepare(rebuild_metadata=self.entry is None)
            assert self.folder is not None and self.entry is not None
            pub = package_model(self.log, self.folder, self.entry, self.report, None, Texts())
        assert pub is not None
        given, before = publication_texts(creator_name, creator_affiliation, model_description), pub.texts
        pub.texts = Texts(given.creator_name or before.creator_name,
                          given.creator_affiliation or before.creator_affiliation,
                          given.model_description or before.model_description)
        tracker = target.tracker()
        if not pub.check_issues(tracker):
            if not own:
                pub.use_published(str(package_link))
            pub.open_issue(tracker)
        self.publication = pub
        return pub.result.issue_url
