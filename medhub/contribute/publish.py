"""The publish steps of a tested package: tokens and settings, the archive, Zenodo, the GitHub issue.

:func:`publish_target` checks everything a publication needs before any work (offline mode,
tokens, PyGithub, URLs); :func:`package_model` zips the package with its final metadata; a
:class:`Publication` then uploads it to Zenodo (or checks an already published archive) and
opens the issue holding the catalog entry. Each step runs inside the contribution's
:class:`~medhub.contribute.steps.StepLog`, so a failure names the step and how to resume.
"""

from __future__ import annotations

import contextlib
import html
import json
import logging
import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from .. import settings
from ..errors import ContributionError, MissingTokenError, ModelIdError
from .local_paths import check_no_local_paths, files_with_local_paths, forbidden_strings
from .metadata import catalog_document, pinned_entry
from .model_test import TestReport
from .online import require_online
from .steps import StepLog

logger = logging.getLogger("medhub.contribute")

ZENODO_TOKEN_ENV = "ZENODO_ACCESS_TOKEN"
GITHUB_TOKEN_ENV = "GITHUB_TOKEN"


@dataclass
class ContributionResult:
    """What :meth:`ModelContributor.contribute` did.

    ``entry`` is the catalog entry ``{model_id: {...}}`` with the archive's ``sha256`` and
    ``size`` and, once published, the download URL as ``package_link`` (in a dry run, the
    archive's file name stands in for it).
    """

    model_id: str
    entry: dict[str, Any]
    archive_path: Path
    sha256: str
    size: int
    dry_run: bool
    test: TestReport | None = None
    deposition_id: int | None = None
    record_id: int | None = None
    concept_record_id: str | None = None
    doi: str | None = None
    download_url: str | None = None
    record_url: str | None = None
    published: bool = False
    issue_url: str | None = None
    issue_number: int | None = None
    issue_created: bool = False
    done: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        out = {k: v for k, v in self.__dict__.items() if k != "test"}
        out["archive_path"] = str(self.archive_path)
        out["test"] = self.test.as_dict() if self.test else None
        return out

    def __str__(self) -> str:
        if self.dry_run:
            return f"dry run of {self.model_id}: {self.archive_path.name} sha256 {self.sha256} ({self.size} bytes)"
        if self.issue_url and not self.issue_created and not self.published:
            return f"{self.model_id} was already submitted: {self.issue_url}"
        if not self.published:
            return f"{self.model_id}: Zenodo deposition {self.deposition_id} is a draft (not published)"
        return f"{self.model_id}: record {self.record_id}, {self.download_url}, issue {self.issue_url}"


# ---------------------------------------------------------------------------- settings, before any work
def access_tokens(zenodo_access_token: str | None = None, github_access_token: str | None = None) -> tuple[str | None, str | None]:
    """(Zenodo token, GitHub token): the arguments, else ``ZENODO_ACCESS_TOKEN`` / ``GITHUB_TOKEN``."""
    return (zenodo_access_token or settings.get(ZENODO_TOKEN_ENV) or None,
            github_access_token or settings.get(GITHUB_TOKEN_ENV) or None)


@dataclass(frozen=True)
class PublishTarget:
    """Where a publication goes and the tokens it uses (never shown by ``repr``)."""

    zenodo_url: str
    github_url: str
    github_repo: str
    zenodo_token: str | None = field(default=None, repr=False)
    github_token: str | None = field(default=None, repr=False)

    def uploader(self, retries: int | None = None, backoff: float | None = None) -> Any:
        """A :class:`~medhub.contribute.zenodo.ZenodoUploader` for this Zenodo."""
        from .zenodo import ZenodoUploader

        assert self.zenodo_token is not None
        return ZenodoUploader(self.zenodo_token, self.zenodo_url, retries=retries, backoff=backoff)

    def tracker(self) -> Any:
        """An :class:`~medhub.contribute.github.IssueTracker` for this repository."""
        from .github import IssueTracker

        assert self.github_token is not None
        return IssueTracker(self.github_token, self.github_url, self.github_repo)


def publish_target(zenodo_token: str | None, github_token: str | None, *, need_zenodo: bool, need_github: bool,
                   zenodo_url: str | None = None, sandbox: bool = False, github_url: str | None = None,
                   github_repo: str | None = None) -> PublishTarget:
    """Check what a publication needs before any work: online, tokens, PyGithub, valid URLs.

    With ``MEDHUB_OFFLINE`` on this fails at once (:class:`~medhub.contribute.online.OfflineModeError`),
    before any request. The URLs come from the arguments, else ``MEDHUB_ZENODO_URL`` /
    ``MEDHUB_GITHUB_URL`` / ``MEDHUB_GITHUB_REPO`` (so a typo does not cost a test run).
    """
    from .github import github_settings, require_pygithub
    from .zenodo import zenodo_base_url

    require_online(" and ".join(name for name, needed in (("Zenodo", need_zenodo), ("GitHub", need_github)) if needed)
                   or "Zenodo or GitHub")
    missing = []
    if need_zenodo and not zenodo_token:
        missing.append(f"a Zenodo token (zenodo_access_token= or {ZENODO_TOKEN_ENV}; create one at "
                       "https://zenodo.org/account/settings/applications/tokens/new/ with the scopes "
                       "deposit:write and deposit:actions, or on sandbox.zenodo.org for sandbox=True)")
    if need_github and not github_token:
        missing.append(f"a GitHub token (github_access_token= or {GITHUB_TOKEN_ENV}; a token that can open "
                       "issues in the repository)")
    if need_github:
        require_pygithub()
    if missing:
        raise MissingTokenError(f"Missing {' and '.join(missing)}. Or run with dry_run=True to check and "
                                "package the model without publishing.", step="tokens")
    github_base, repo_name = github_settings(github_url, github_repo)
    return PublishTarget(zenodo_base_url(zenodo_url, sandbox), github_base, repo_name, zenodo_token, github_token)


# ---------------------------------------------------------------------------- texts published
def zenodo_metadata(model_id: str, entry: Mapping[str, Any], creator_name: str | None,
                    creator_affiliation: str | None, model_description: str | None, sha256: str) -> dict[str, Any]:
    """The deposition metadata Zenodo shows on the record page."""
    desc, sel = entry["description"], entry["selection"]
    authors = [a for a in ([creator_name] if creator_name else []) + list(desc.get("authors") or []) if a]
    creators = []
    for name in dict.fromkeys(authors):
        creator = {"name": name}
        if creator_affiliation and name == authors[0]:
            creator["affiliation"] = creator_affiliation
        creators.append(creator)
    text = model_description or desc.get("comment") or desc["title"]
    paragraphs = [text, f"Intended use: {desc.get('intended_use') or 'research only; not for clinical use.'}",
                  f"medhub model package {model_id} (interface {entry['execution']['interface']}); sha256 of the "
                  f"archive: {sha256}."]
    keywords = ["medhub", "generative model", "synthetic data", *sel.get("modality", []), *sel.get("organ", []),
                *sel.get("tags", [])]
    meta: dict[str, Any] = {
        "upload_type": "software",
        "title": f"{model_id}: {desc['title']}",
        "description": "".join(f"<p>{html.escape(str(p))}</p>" for p in paragraphs),
        "creators": creators,
        "access_right": "open",
        "license": str(sel.get("license")).lower(),
        "keywords": list(dict.fromkeys(str(k) for k in keywords if str(k).strip())),
        "notes": f"Catalog id {model_id}. Run it with medhub: Generators().generate(\"{model_id}\", num_samples=8).",
    }
    if desc.get("version"):
        meta["version"] = str(desc["version"])
    return meta


def issue_body(model_id: str, entry: Mapping[str, Any], result: ContributionResult, creator_name: str | None,
               creator_affiliation: str | None, model_description: str | None) -> str:
    """The body of the contribution issue: a summary, then the catalog entry as a JSON block."""
    from ..version import __version__

    desc = entry[model_id]["description"]
    test = result.test
    lines = [
        f"### Model contribution: `{model_id}`",
        "",
        f"**Title:** {desc['title']}",
        f"**Creator:** {creator_name or ', '.join(desc.get('authors') or [])}"
        + (f" ({creator_affiliation})" if creator_affiliation else ""),
        f"**Description:** {model_description or desc.get('comment') or ''}",
        f"**Package:** {result.download_url}",
        f"**sha256:** `{result.sha256}`, **size:** {result.size} bytes",
        f"**Zenodo record:** {result.record_id}" + (f" (DOI {result.doi})" if result.doi else ""),
        f"**Interface:** {entry[model_id]['execution']['interface']}",
    ]
    if test is not None:
        lines.append(f"**Tested:** {test.num_samples} samples on {test.device}, outputs spec checked"
                     + (" (inferred)" if test.outputs_inferred else "") + (", reproducible" if test.reproducible else ""))
    lines += ["", "Catalog entry (for `config/global.json`, under `models`):", "", "```json",
              json.dumps(entry, indent=2, ensure_ascii=False), "```", "",
              f"Submitted with `medhub contribute` (medhub {__version__})."]
    return "\n".join(lines)


# ---------------------------------------------------------------------------- the publication
@dataclass(frozen=True)
class Texts:
    """The free texts a publication shows: creator, affiliation, description."""

    creator_name: str | None = None
    creator_affiliation: str | None = None
    model_description: str | None = None


def package_model(log: StepLog, folder: Path, entry: dict[str, Any], report: TestReport | None,
                  output_path: str | os.PathLike[str] | None, texts: Texts, dry_run: bool = False) -> Publication:
    """Check that nothing names a local path, zip the package with its final ``metadata.json``.

    The archive and ``<id>.entry.json`` go to ``output_path`` (default
    ``MEDHUB_HOME/contributions/<id>``). Returns the :class:`Publication` of the archive.
    """
    from .._paths import medhub_home
    from .archive import make_archive

    model_id = log.model_id
    out_dir = Path(output_path).expanduser() if output_path else medhub_home() / "contributions" / model_id
    forbidden = forbidden_strings(folder, out_dir)
    with log.step("metadata"):
        inner = pinned_entry(model_id, entry, package_link=model_id)  # the archive's metadata.json
        check_no_local_paths(json.dumps(inner), forbidden, "The catalog entry")
        for label, text in (("model_description", texts.model_description), ("creator_name", texts.creator_name),
                            ("creator_affiliation", texts.creator_affiliation)):
            check_no_local_paths(text or "", forbidden, label)
    leaky = files_with_local_paths(folder, forbidden, skip=frozenset({"metadata.json"}))
    if leaky:
        log.warn(f"files naming local paths of this machine: {', '.join(leaky)}")
        logger.warning("%s: %s name local paths of this machine; they are published inside the archive. Check "
                       "them.", model_id, ", ".join(leaky))
    filename = f"{model_id}.zip"
    with log.step("archive"):
        inner_bytes = (json.dumps(inner, indent=2, ensure_ascii=False) + "\n").encode()
        archive = make_archive(folder, out_dir / filename, model_id, {"metadata.json": inner_bytes},
                               secrets=log.secrets)
        log.did(f"wrote {filename} (sha256 {archive.sha256}, {archive.size} bytes)")
    result = ContributionResult(model_id, {}, archive.path, archive.sha256, archive.size, dry_run, report,
                                done=log.done, warnings=log.state.setdefault("warnings", []))
    return Publication(log, entry, archive, out_dir, forbidden, texts, result)


@dataclass
class Publication:
    """One archive on its way to Zenodo and the GitHub issue; ``result`` records each step."""

    log: StepLog
    entry: dict[str, Any]
    archive: Any  # an :class:`~medhub.contribute.archive.Archive`
    out_dir: Path
    forbidden: list[str]
    texts: Texts
    result: ContributionResult

    @property
    def model_id(self) -> str:
        return self.log.model_id

    @property
    def filename(self) -> str:
        return self.archive.path.name

    def final_entry(self, package_link: str | None) -> dict[str, Any]:
        """``{model_id: entry}`` pinned to the archive (sha256, size) at ``package_link``."""
        return pinned_entry(self.model_id, self.entry, package_link, self.archive.sha256, self.archive.size)

    def write_entry(self, entry: dict[str, Any]) -> None:
        """Write ``<id>.entry.json``: a catalog document holding the entry, beside the archive."""
        path = self.out_dir / f"{self.model_id}.entry.json"
        path.write_text(json.dumps(catalog_document(entry), indent=2, ensure_ascii=False) + "\n", encoding="utf-8")

    def finish_dry_run(self) -> ContributionResult:
        self.result.entry = self.final_entry(self.filename)
        self.write_entry(self.result.entry)
        self.log.did("dry run: nothing uploaded or published")
        return self.result

    def existing_issue(self, tracker: Any) -> bool:
        """True (and the result points at it) when an open issue already names the model id."""
        same, clashes = tracker.open_issues_for(self.model_id)
        if same is not None:
            self.result.issue_url, self.result.issue_number = same.url, same.number
            logger.warning("%s: open issue #%s already names this model (%s); no new issue. Comment there to update "
                           "the submission.", self.model_id, same.number, same.url)
            self.log.did(f"found open issue #{same.number} for {self.model_id}; opened no other")
            return True
        if clashes:
            listed = ", ".join(f"#{i.number} ({i.title})" for i in clashes)
            raise ModelIdError(f"Open issue {listed} already claims model number {self.model_id[:5]}; choose another "
                               "number.", step="github-check")
        return False

    def check_issues(self, tracker: Any) -> bool:
        """The ``github-check`` step: True when an open issue already names the model (nothing more to do)."""
        with self.log.step("github-check"):
            if self.existing_issue(tracker):
                return True
            self.log.did(f"checked {tracker.repo_name}: no open issue for {self.model_id}")
        return False

    def to_zenodo(self, uploader: Any, deposition_id: int | None, publish: bool | None,
                  confirm: Callable[[str], str] | None = None) -> bool:
        """Create (or resume), upload, describe and publish; True when published.

        ``publish=None`` asks ``confirm`` (when given) and otherwise leaves a draft.
        """
        log, result = self.log, self.result
        metadata = zenodo_metadata(self.model_id, self.entry, self.texts.creator_name, self.texts.creator_affiliation,
                                   self.texts.model_description, self.archive.sha256)
        with log.step("metadata"):
            check_no_local_paths(json.dumps(metadata), self.forbidden, "The Zenodo metadata")
        with log.step("zenodo-create"):
            if deposition_id is not None:
                deposition = uploader.get_deposition(deposition_id)
                log.did(f"resumed Zenodo draft deposition {deposition.id}")
            else:
                deposition = uploader.create_deposition()
                log.did(f"created Zenodo draft deposition {deposition.id} ({deposition.html_url})")
            log.state.update(zenodo_deposition_id=deposition.id, zenodo_deposition_url=deposition.html_url)
            result.deposition_id = deposition.id
        with log.step("zenodo-upload"):
            uploader.upload(deposition, self.archive.path, self.filename, self.archive.md5)
            log.did(f"uploaded {self.filename} to deposition {deposition.id} (md5 checked)")
        with log.step("zenodo-metadata"):
            uploader.set_metadata(deposition, metadata)
            log.did(f"set the metadata of deposition {deposition.id}")
        if publish is None and confirm is not None:
            answer = confirm(f"Publish deposition {deposition.id} ({deposition.html_url}) on {uploader.base_url}? "
                             "A published record cannot be deleted. [y/N] ")
            publish = answer.strip().lower() in ("y", "yes")
        if not publish:
            logger.warning("%s: deposition %s is a draft; review it at %s, then publish with contribute(..., "
                           "publish=True, zenodo_deposition_id=%s)", self.model_id, deposition.id, deposition.html_url,
                           deposition.id)
            log.did(f"left deposition {deposition.id} as a draft (publish=True publishes it)")
            result.entry = self.final_entry(self.filename)
            return False
        with log.step("zenodo-publish"):
            record = uploader.publish(deposition, self.filename)
            result.record_id, result.concept_record_id, result.doi = record.record_id, record.concept_record_id, record.doi
            result.download_url, result.record_url, result.published = record.download_url, record.html_url, True
            log.state["package_link"] = record.download_url
            log.did(f"published Zenodo record {record.record_id}" + (f" (DOI {record.doi})" if record.doi else ""))
        return True

    def use_published(self, package_link: str, retries: int | None = None, backoff: float | None = None) -> None:
        """Take an already published archive: download it and check it is byte for byte this one."""
        from ..errors import DownloadError, IntegrityError
        from ..execution.fetch import download

        log, result = self.log, self.result
        with log.step("zenodo-publish"):
            if not package_link.startswith(("https://", "http://")):
                raise ContributionError(f"package_link must be the download URL of the published archive, not "
                                        f"{package_link!r}.", step="zenodo-publish")
            require_online(urlsplit(package_link).netloc, "zenodo-publish")
            try:
                part, _, _ = download(package_link, self.out_dir / ".verify", self.model_id, sha256=self.archive.sha256,
                                      size=self.archive.size, retries=retries, backoff=backoff, progress=False,
                                      resume=False)
            except IntegrityError as exc:
                raise ContributionError(
                    f"The archive at package_link is not the one rebuilt from the package now ({exc}); the package "
                    "changed since it was published. Contribute it as a new version (without package_link).",
                    step="zenodo-publish") from None
            except DownloadError as exc:
                raise ContributionError(f"Could not download package_link to check it: {exc}",
                                        step="zenodo-publish") from None
            part.unlink(missing_ok=True)
            with contextlib.suppress(OSError):
                part.parent.rmdir()
            log.did("checked that the published archive is the one rebuilt now (sha256)")
            match = re.search(r"/records?/(\d+)/", package_link)
            result.download_url, result.published = package_link, True
            result.record_id = int(match.group(1)) if match else None
            log.state["package_link"] = package_link
            log.did(f"used the published package {package_link}")

    def open_issue(self, tracker: Any) -> None:
        """The ``github-issue`` step: open the issue holding the pinned catalog entry (unless one is open)."""
        log, result = self.log, self.result
        with log.step("github-issue"):
            result.entry = self.final_entry(result.download_url)
            self.write_entry(result.entry)
            body = issue_body(self.model_id, result.entry, result, self.texts.creator_name,
                              self.texts.creator_affiliation, self.texts.model_description)
            check_no_local_paths(body, self.forbidden, "The issue")
            if self.existing_issue(tracker):
                return
            issue = tracker.create_issue(f"Model contribution: {self.model_id}", body)
            result.issue_url, result.issue_number, result.issue_created = issue.url, issue.number, True
            log.did(f"opened issue #{issue.number} ({issue.url})")
