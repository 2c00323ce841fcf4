"""Propose a catalog entry for a model that is already on the Hugging Face Hub.

A diffusers pipeline or a MONAI bundle published on the Hub needs no package archive and no Zenodo
upload: its catalog entry names the repository (``package_link: "hf://<owner>/<repo>"``) and the
revision (a commit hash pins it). :func:`propose_hub_model` builds and validates that entry and
opens the GitHub issue that asks for it to be added to the catalog (``medhub contribute MODEL_ID
--hub OWNER/REPO --revision COMMIT --interface diffusers``). Nothing is downloaded from the Hub.
Given a local copy of the repository (``folder``, CLI ``--from DIR``), the entry starts from the
draft :func:`~medhub.contribute.hub_draft.draft_hub_entry` makes of it (sampling expression, noise,
scheduler, outputs spec found by a dry run, value range, licence, version).

Example:
    >>> proposal = propose_hub_model("00299_TINY_DDPM", "owner/tiny-ddpm", "a" * 40, "diffusers", dry_run=True,
    ...     metadata_fields={"description.title": "Tiny DDPM", "description.authors": "A. Author",
    ...                      "selection.modality": "X-ray", "selection.organ": "chest", "selection.license": "MIT"})
    >>> proposal.entry["00299_TINY_DDPM"]["execution"]["package_link"], proposal.pinned, proposal.issue_url
    ('hf://owner/tiny-ddpm', True, None)
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ..errors import CatalogError, MetadataError
from ..execution.kinds import KINDS
from .github import require_pygithub
from .hub_draft import HUB_KINDS, draft_hub_entry
from .ids import validate_model_id
from .metadata import apply_arguments, catalog_document, field_value, missing_fields, missing_fields_error, set_field
from .online import require_online
from .publish import access_tokens

_REPO = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*/[A-Za-z0-9][A-Za-z0-9_.-]*$")
_COMMIT = re.compile(r"^[0-9a-f]{40}$")


@dataclass
class HubProposal:
    """What :func:`propose_hub_model` did: the entry, the issue text, and the issue (unless a dry run)."""

    model_id: str
    repo_id: str
    revision: str
    entry: dict[str, Any]
    body: str
    issue_url: str | None = None
    issue_number: int | None = None
    issue_created: bool = False

    @property
    def pinned(self) -> bool:
        return bool(_COMMIT.match(self.revision))


def hub_entry(model_id: str, repo_id: str, revision: str, interface: str,
              metadata: Mapping[str, Any] | None = None, metadata_fields: Mapping[str, Any] | None = None) -> dict:
    """The catalog entry of a Hub model: ``metadata`` (an entry's three objects, optional) completed with
    the repository, revision, interface and ``metadata_fields`` (dotted keys), validated against the schema."""
    if not _REPO.match(repo_id or ""):
        raise MetadataError(f"{repo_id!r} is not a Hugging Face Hub repository id (owner/name).", step="metadata")
    if interface not in HUB_KINDS:
        raise MetadataError(f"interface must be one of {', '.join(HUB_KINDS)} for a model on the Hub, not "
                            f"{interface!r}.", step="metadata")
    revision = (revision or "").strip()
    if not revision:
        raise MetadataError("Give the revision: a 40-hex commit hash pins the model (a branch or tag is accepted but "
                            "unpinned).", step="metadata")
    base = json.loads(json.dumps(dict(metadata or {})))
    entry: dict[str, Any] = {
        "execution": {**base.get("execution", {}), "package_link": f"hf://{repo_id}", "revision": revision,
                      "interface": interface},
        "selection": {"performance": {}, "modality": [], "organ": [], "tags": [], "license": None,
                      **base.get("selection", {})},
        "description": {"title": "", "authors": [], "doi": [], "intended_use": "Research only; not for clinical use.",
                        **base.get("description", {})},
    }
    execution = entry["execution"]
    execution.setdefault("dependencies", list(HUB_KINDS[interface]))
    execution.setdefault("generate_method", {"name": "generate", "args": {"base": [], "custom": {}}})
    for key, value in (metadata_fields or {}).items():
        set_field(entry, key, field_value(key, value))
    apply_arguments(entry, model_id)
    execution.pop("package_name", None)  # a Hub repository is the package itself
    tags = entry["selection"].setdefault("tags", [])
    for tag in ("Hugging Face Hub", KINDS[interface].hub_tag):
        if tag not in tags:
            tags.append(tag)
    missing = missing_fields(entry)
    if missing:
        raise missing_fields_error(missing)
    from ..config import validate_catalog

    try:
        validate_catalog(catalog_document({model_id: entry}), "the proposed entry")
    except CatalogError as exc:
        raise MetadataError(str(exc), step="metadata") from None
    return entry


def _merged(base: Mapping[str, Any], over: Mapping[str, Any]) -> dict[str, Any]:
    """``base`` with ``over``'s values, objects merged key by key (the entry's three objects and below)."""
    out = dict(base)
    for key, value in over.items():
        out[key] = _merged(out[key], value) if isinstance(value, Mapping) and isinstance(out.get(key), Mapping) \
            else value
    return out


def proposal_body(model_id: str, repo_id: str, revision: str, entry: Mapping[str, Any]) -> str:
    """The issue text: the repository, the revision (and whether it pins), then the entry as JSON."""
    from ..version import __version__

    pinned = bool(_COMMIT.match(revision))
    lines = [
        f"### Model contribution: `{model_id}` (already on the Hugging Face Hub)",
        "",
        f"**Title:** {entry['description'].get('title', '')}",
        f"**Repository:** [{repo_id}](https://huggingface.co/{repo_id})",
        f"**Revision:** `{revision}` " + ("(a commit: pinned)" if pinned else
                                         "(a branch or tag: unpinned, users need trust_remote_code)"),
        f"**Kind:** {entry['execution']['interface']}",
        f"**License:** {entry['selection'].get('license')}",
        "",
        "No package archive and no Zenodo record: medhub fetches the repository at this revision from the Hub.",
        "",
        "Catalog entry (for `config/global.json`, under `models`):",
        "",
        "```json",
        json.dumps({model_id: entry}, indent=2, ensure_ascii=False),
        "```",
        "",
        f"Proposed with `medhub contribute --hub` (medhub {__version__}).",
    ]
    return "\n".join(lines)


def propose_hub_model(model_id: str, repo_id: str, revision: str, interface: str, *,
                      metadata: Mapping[str, Any] | None = None, metadata_fields: Mapping[str, Any] | None = None,
                      taken: list[str] | tuple[str, ...] = (), github_access_token: str | None = None,
                      github_url: str | None = None, github_repo: str | None = None,
                      dry_run: bool = False, folder: str | None = None) -> HubProposal:
    """Build the catalog entry of a model on the Hub and open its contribution issue on GitHub.

    ``dry_run`` builds and validates the entry and the issue text only (no request). An open issue
    naming the model id already is reported, not duplicated. The GitHub token comes from
    ``github_access_token`` or ``GITHUB_TOKEN`` and is never logged. ``folder``: a local copy of the
    repository, drafted first (:func:`~medhub.contribute.hub_draft.draft_hub_entry`); ``metadata``
    and ``metadata_fields`` complete and override the draft.
    """
    model_id = validate_model_id(model_id, list(taken))
    if folder is not None:
        drafted = draft_hub_entry(f"hf://{repo_id}@{revision}", folder, model_id).entry
        if drafted["execution"]["interface"] != interface:
            raise MetadataError(f"{folder} holds a {drafted['execution']['interface']} repository, not {interface}; "
                                "fix --interface.", step="metadata")
        metadata = _merged(drafted, metadata or {})
    entry = hub_entry(model_id, repo_id, revision, interface, metadata, metadata_fields)
    body = proposal_body(model_id, repo_id, revision, entry)
    proposal = HubProposal(model_id, repo_id, revision.strip(), {model_id: entry}, body)
    if dry_run:
        return proposal
    require_online("GitHub", "github-check")
    _, token = access_tokens(None, github_access_token)
    if not token:
        from ..errors import MissingTokenError

        raise MissingTokenError("Opening the issue needs a GitHub token (github_access_token= or GITHUB_TOKEN), or "
                                "run with dry_run=True (CLI: --dry-run) to print the entry.", step="tokens")
    require_pygithub()
    from .github import IssueTracker

    tracker = IssueTracker(token, github_url, github_repo)
    same, _ = tracker.open_issues_for(model_id)
    if same is not None:
        proposal.issue_url, proposal.issue_number = same.url, same.number
        return proposal
    issue = tracker.create_issue(f"Model contribution: {model_id} (Hugging Face Hub: {repo_id})", body)
    proposal.issue_url, proposal.issue_number, proposal.issue_created = issue.url, issue.number, True
    return proposal
