"""Griffe extension of the docs build (named in mkdocs.yml): ``Example:`` starts an examples section.

medhub's Google-style docstrings title their doctests ``Example:``; griffe only knows the plural
``Examples:`` and would render the doctest as Markdown text. This renames the title before the
docstring is parsed, so the doctests show as code, exactly as pytest's ``--doctest-modules`` runs them.
"""

from __future__ import annotations

import re
from typing import Any

import griffe

_TITLE = re.compile(r"^(\s*)Example:\s*$", re.MULTILINE)


class ExampleSections(griffe.Extension):
    def on_instance(self, *, obj: griffe.Object, **kwargs: Any) -> None:
        if obj.docstring is not None:
            obj.docstring.value = _TITLE.sub(r"\1Examples:", obj.docstring.value)
