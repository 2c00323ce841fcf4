"""The step log of a contribution: what was done, and one error naming the failed step when one fails.

Every failure inside :meth:`StepLog.step` becomes a :class:`~medhub.errors.ContributionError`
(subclass) whose message names the step, lists what was already done and says how to go on, with
the tokens of the run redacted.

Example:
    >>> log = StepLog("00150_MY_GAN")
    >>> with log.step("archive"):
    ...     log.did("wrote 00150_MY_GAN.zip")
    >>> with log.step("zenodo-create"):
    ...     raise ValueError("no answer")
    Traceback (most recent call last):
    ...
    medhub.errors.ContributionError: Contributing 00150_MY_GAN failed at step 'zenodo-create': ValueError: no answer. Already done: wrote 00150_MY_GAN.zip. Fix the problem and run contribute again; nothing was uploaded or published.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator
from typing import Any

from ..errors import CatalogError, ContributionError, MedhubError, MetadataError, ModelTestError
from .zenodo import redact

logger = logging.getLogger("medhub.contribute")


class StepLog:
    """What a contribution did so far (``done``), what is needed to resume (``state``), and the
    tokens never to show (``secrets``). ``action`` is the first word of error messages."""

    def __init__(self, model_id: str, action: str = "Contributing") -> None:
        self.model_id = model_id
        self.action = action
        self.done: list[str] = []
        self.state: dict[str, Any] = {}
        self.secrets: list[str] = []

    def did(self, what: str) -> None:
        """Record (and log) a finished piece of work."""
        self.done.append(what)
        logger.info("%s: %s", self.model_id, what)

    def warn(self, what: str) -> None:
        """Record a warning for the result, once (the caller logs it with its own detail)."""
        warnings = self.state.setdefault("warnings", [])
        if what not in warnings:
            warnings.append(what)

    def next_step_hint(self) -> str:
        """How to go on after a failure, given what was published or drafted."""
        if self.state.get("package_link"):
            return (f"The package is published; run contribute again with package_link=\"{self.state['package_link']}\" "
                    "to open the issue only (the archive is rebuilt byte for byte and checked).")
        if self.state.get("zenodo_deposition_id"):
            dep = self.state["zenodo_deposition_id"]
            return (f"Resume with zenodo_deposition_id={dep} (CLI: --zenodo-deposition-id {dep}); the archive is rebuilt "
                    f"byte for byte, so the same file goes into the same draft. Or delete the draft at "
                    f"{self.state.get('zenodo_deposition_url', 'Zenodo')}.")
        return "Fix the problem and run contribute again; nothing was uploaded or published."

    @contextlib.contextmanager
    def step(self, step: str) -> Iterator[None]:
        """Run one step; any failure becomes a ContributionError naming the step and what was done."""
        try:
            yield
        except ContributionError as exc:
            if getattr(exc, "contextualised", False):  # already says what was done (nested step)
                raise
            cls: type[ContributionError] = type(exc)
            reason, failed, state, original = str(exc), exc.step or step, exc.state, exc
        except CatalogError as exc:
            cls, reason, failed, state, original = MetadataError, str(exc), step, {}, exc
        except MedhubError as exc:
            cls = ModelTestError if step in ("import", "test") else ContributionError
            reason, failed, state, original = str(exc), step, {}, exc
        except Exception as exc:  # an unexpected failure still says what was already done
            cls, failed, state, original = ContributionError, step, {}, exc
            reason = f"{type(exc).__name__}: {exc}"
        else:
            return
        done = "; ".join(self.done) if self.done else "nothing"
        message = (f"{self.action} {self.model_id} failed at step '{failed}': {reason.rstrip('.')}. "
                   f"Already done: {done}. {self.next_step_hint()}")
        error = cls(redact(message, self.secrets), step=failed, done=self.done,
                    state={**state, **{k: v for k, v in self.state.items() if k != "zenodo_deposition_url"}})
        error.contextualised = True  # type: ignore[attr-defined]
        raise error from original
