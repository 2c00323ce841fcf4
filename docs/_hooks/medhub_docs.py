"""MkDocs hooks of the medhub documentation site (named in mkdocs.yml; not part of the site).

* ``<!-- include: ../CONTRIBUTING.md -->`` on a line of its own is replaced by that file (a path
  relative to the page), so the repository's CONTRIBUTING.md and CHANGELOG.md are pages of the
  site without being copied. Links of the included file are rewritten for the page.
* ``<!-- cli-reference -->`` is replaced by the ``--help`` of ``medhub`` and of every subcommand,
  taken from ``medhub.cli.build_parser()``: the CLI reference can never drift from the code.
* Relative links that leave ``docs/`` (model cards under ``models/``, ``templates/``, ``tools/``,
  ``CONTRIBUTING.md`` ...) are pointed at the repository on GitHub (``repo_url``), so the pages
  keep working both on GitHub and in the built site, and ``mkdocs build --strict`` still reports
  every link that points nowhere.
"""

from __future__ import annotations

import argparse
import os
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs"
BRANCH = "main"

_FENCE = re.compile(r"^(\s*)(```|~~~)")
_LINK = re.compile(r"(!?\[[^\]]*\]\()([^)\s]+)(\))")
_INCLUDE = re.compile(r"^<!-- include: (\S+) -->\s*$", re.MULTILINE)
_CLI = "<!-- cli-reference -->"


def _outside_link(target: str, source_dir: Path, repo_url: str) -> str | None:
    """The GitHub URL of a relative link that leaves docs/, else None (the link is left alone)."""
    if re.match(r"^[a-z][a-z0-9+.-]*:", target) or target.startswith(("#", "/")):
        return None
    path, _, anchor = target.partition("#")
    resolved = (source_dir / path).resolve()
    try:
        resolved.relative_to(DOCS)
        return None  # inside docs/: MkDocs checks it
    except ValueError:
        pass
    try:
        rel = resolved.relative_to(ROOT).as_posix()
    except ValueError:
        return None
    kind = "tree" if resolved.is_dir() else "blob"
    return f"{repo_url.rstrip('/')}/{kind}/{BRANCH}/{rel}" + (f"#{anchor}" if anchor else "")


def rewrite_links(markdown: str, source_dir: Path, page_dir: Path, repo_url: str) -> str:
    """Rewrite the relative links of ``markdown`` (written in ``source_dir``) for a page in ``page_dir``."""
    out, in_fence = [], False
    for line in markdown.splitlines(keepends=True):
        if _FENCE.match(line):
            in_fence = not in_fence
        if not in_fence:
            def fix(m: re.Match[str]) -> str:
                target = m.group(2)
                url = _outside_link(target, source_dir, repo_url)
                if url is None and source_dir != page_dir and not re.match(r"^[a-z][a-z0-9+.-]*:|^#", target):
                    path, _, anchor = target.partition("#")
                    new = os.path.relpath((source_dir / path).resolve(), page_dir)
                    url = Path(new).as_posix() + (f"#{anchor}" if anchor else "")
                return m.group(1) + (url or target) + m.group(3)

            line = _LINK.sub(fix, line)
        out.append(line)
    return "".join(out)


def cli_reference() -> str:
    """Markdown with the help of ``medhub`` and of every subcommand (nested ones too)."""
    os.environ["COLUMNS"] = "100"  # argparse wraps help to the terminal width
    os.environ["NO_COLOR"] = "1"
    from medhub.cli import build_parser

    parts: list[str] = []

    def walk(parser: argparse.ArgumentParser, name: str, level: int) -> None:
        parts.append(f"{'#' * level} `{name}`\n\n```text\n{parser.format_help().rstrip()}\n```\n")
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction):
                for sub_name, sub in action.choices.items():  # commands at level 3, their actions at 4
                    walk(sub, f"{name} {sub_name}", level if name == "medhub" else min(level + 1, 4))

    walk(build_parser(), "medhub", 3)
    return "\n".join(parts)


def on_page_markdown(markdown: str, page, config, files) -> str:  # noqa: ANN001 (MkDocs hook signature)
    repo_url = config.get("repo_url") or ""
    page_dir = (DOCS / page.file.src_uri).parent

    def include(m: re.Match[str]) -> str:
        path = (page_dir / m.group(1)).resolve()
        return rewrite_links(path.read_text(encoding="utf-8"), path.parent, page_dir, repo_url)

    markdown = _INCLUDE.sub(include, markdown)
    if _CLI in markdown:
        markdown = markdown.replace(_CLI, cli_reference())
    return rewrite_links(markdown, page_dir, page_dir, repo_url)
