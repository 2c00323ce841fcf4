"""Open the catalog-entry issue of a contributed model on GitHub, with PyGithub (imported lazily).

The API base URL and the repository are settable (``MEDHUB_GITHUB_URL``, ``MEDHUB_GITHUB_REPO``),
so GitHub Enterprise (``https://HOST/api/v3``), a mirror or a test server work as github.com does.
Before opening an issue, the repository's open issues are searched: an open issue whose title
names the model id means the model was already submitted, and no second issue is opened.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from typing import Any

from .. import settings
from ..errors import GitHubError
from .online import require_online
from .zenodo import redact

logger = logging.getLogger("medhub.contribute.github")

DEFAULT_GITHUB_URL = settings.SETTINGS["MEDHUB_GITHUB_URL"].default
#: The repository that reviews contributed models and holds the catalog.
DEFAULT_GITHUB_REPO = settings.SETTINGS["MEDHUB_GITHUB_REPO"].default
DEFAULT_LABELS = ("model contribution",)
#: Seconds PyGithub leaves between requests and between writes, as GitHub asks of API clients
#: (avoids secondary rate limits); PyGithub's own defaults.
REQUEST_SPACING = (0.25, 1.0)
_REPO = re.compile(r"^[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+$")


def github_settings(url: str | None = None, repo: str | None = None) -> tuple[str, str]:
    """(API base URL, ``owner/name``): the arguments, else ``MEDHUB_GITHUB_URL`` / ``MEDHUB_GITHUB_REPO``, else github.com.

    Example:
        >>> github_settings("https://ghe.example.org/api/v3/", "lab/models")
        ('https://ghe.example.org/api/v3', 'lab/models')
    """
    base = (url or settings.get("MEDHUB_GITHUB_URL") or DEFAULT_GITHUB_URL).strip().rstrip("/")
    name = (repo or settings.get("MEDHUB_GITHUB_REPO") or DEFAULT_GITHUB_REPO).strip()
    if not base.startswith(("http://", "https://")):
        raise GitHubError(f"The GitHub API URL {base!r} is not an http(s) URL (MEDHUB_GITHUB_URL).", step="github-check")
    if not _REPO.match(name):
        raise GitHubError(f"The GitHub repository {name!r} is not of the form owner/name (MEDHUB_GITHUB_REPO).",
                          step="github-check")
    return base, name


def require_pygithub() -> None:
    """Raise a GitHubError with the pip command when PyGithub is not installed."""
    import importlib.util

    if importlib.util.find_spec("github") is None:
        raise GitHubError("Opening the GitHub issue needs PyGithub: pip install 'medhub[contribute]' "
                          "(or pip install 'PyGithub>=2.1').", step="tokens")


def ids_in_title(title: str) -> list[str]:
    """Model ids named in an issue title.

    Example:
        >>> ids_in_title("Model contribution: 00150_MY_GAN (v2)")
        ['00150_MY_GAN']
    """
    return re.findall(r"(?<![A-Za-z0-9_])\d{5}_[A-Za-z0-9](?:[A-Za-z0-9_.-]*[A-Za-z0-9_])?", title or "")


@dataclass(frozen=True)
class Issue:
    number: int
    title: str
    url: str  # the page a person opens (html_url)


class IssueTracker:
    """The issues of one repository, through PyGithub with a timeout and bounded retries of reads."""

    def __init__(self, token: str, base_url: str | None = None, repo: str | None = None, timeout: int = 30) -> None:
        if not token:
            raise GitHubError("No GitHub token.", step="tokens")
        self.base_url, self.repo_name = github_settings(base_url, repo)
        self.timeout = int(timeout)
        self._token = token
        self._repo: Any = None

    def __repr__(self) -> str:  # never shows the token
        return f"IssueTracker(base_url={self.base_url!r}, repo={self.repo_name!r})"

    def _fail(self, step: str, what: str, exc: Exception) -> GitHubError:
        status = getattr(exc, "status", None)
        detail = ""
        data = getattr(exc, "data", None)
        if isinstance(data, dict):
            detail = str(data.get("message") or "")
        elif status is None:
            detail = f"{type(exc).__name__}: {exc}"
        hint = {401: " Check GITHUB_TOKEN: it is invalid or expired.",
                403: " The token may lack the permission to read or open issues in this repository (classic token: "
                     "scope public_repo; fine-grained: Issues read and write), or you hit a rate limit.",
                404: f" Check MEDHUB_GITHUB_REPO ({self.repo_name}) and MEDHUB_GITHUB_URL ({self.base_url}); a private "
                     "repository answers 404 to a token that cannot see it.",
                410: " Issues are disabled in this repository."}.get(status or 0, "")
        message = f"{what} in {self.repo_name} at {self.base_url} failed ({'HTTP ' + str(status) if status else 'no answer'}"
        message += f": {detail})." if detail else ")."
        return GitHubError(redact(" ".join((message + hint).split()), [self._token]), step=step,
                           state={"status": status})

    def _repository(self) -> Any:
        require_online("GitHub", "github-check")  # every request goes through here
        if self._repo is None:
            require_pygithub()
            from github import Auth, Github, GithubException
            from requests import RequestException
            from urllib3.util.retry import Retry

            # reads are retried on gateway errors; POST (issue creation) is never retried
            retry = Retry(total=2, backoff_factor=0.5, status_forcelist=(502, 503, 504), allowed_methods={"GET"},
                          raise_on_status=False)
            client = Github(base_url=self.base_url, auth=Auth.Token(self._token), timeout=self.timeout, retry=retry,
                            per_page=100, seconds_between_requests=REQUEST_SPACING[0],
                            seconds_between_writes=REQUEST_SPACING[1])
            try:
                self._repo = client.get_repo(self.repo_name)
            except (GithubException, RequestException) as exc:
                raise self._fail("github-check", "Reading the repository", exc) from None
        return self._repo

    def open_issues_for(self, model_id: str) -> tuple[Issue | None, list[Issue]]:
        """(the open issue whose title names ``model_id``, open issues naming another id with the same number)."""
        from github import GithubException
        from requests import RequestException

        repo = self._repository()
        same, clashes = None, []
        number = model_id[:5]
        try:
            for item in repo.get_issues(state="open"):
                ids = [i.lower() for i in ids_in_title(item.title)]
                issue = Issue(item.number, item.title, item.html_url)
                if model_id.lower() in ids:
                    same = same or issue
                elif any(i[:5] == number for i in ids):
                    clashes.append(issue)
        except (GithubException, RequestException) as exc:
            raise self._fail("github-check", "Listing the open issues", exc) from None
        return same, clashes

    def create_issue(self, title: str, body: str, labels: tuple[str, ...] | list[str] = DEFAULT_LABELS) -> Issue:
        from github import GithubException
        from requests import RequestException

        repo = self._repository()
        try:
            item = repo.create_issue(title=title, body=body, labels=list(labels))
        except (GithubException, RequestException) as exc:
            raise self._fail("github-issue", "Opening the issue", exc) from None
        logger.info("Opened issue #%s in %s: %s", item.number, self.repo_name, item.html_url)
        return Issue(item.number, item.title, item.html_url)
