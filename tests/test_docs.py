"""The documentation is true: every code block of README.md, CONTRIBUTING.md and the hand-written
pages of docs/ runs, the quickstart notebook runs, and the site's pages are all in its nav.

How the code blocks are run
---------------------------
* Each page runs in a fresh temporary folder, in a subprocess, with ``MEDHUB_HOME`` inside that
  folder, ``MEDHUB_OFFLINE=1`` (no network at all), ``MPLBACKEND=Agg`` and the ``medhub`` command
  of this Python environment first on ``PATH``. Its blocks run in page order, as a reader would
  run them: the ``python`` blocks of a page share one namespace (a later block may use ``g`` from
  an earlier one) and the ``bash`` blocks run with ``bash -e -o pipefail`` in the same folder.
* Expected output: comment lines right after a line with ``print(`` (Python) or after a command
  (bash) are what it prints: each must equal a line of the block's output, in order; ``...``
  stands for any text (paths, timings).
* A block that cannot run here is marked on the line before it with
  ``<!-- not-run: REASON -->``; it becomes a *skipped* test that names the page, the line and the
  reason, and ``NOT_RUN`` below lists how many each page has, so none is skipped silently.
* A ``python`` block whose first line is a file name comment (``# gen.py``) is a script: it is
  written to that file in the page's folder (a later ``bash`` block runs it), not executed.
* Blocks tagged ``text`` (output, folder layouts, error messages) are not code. Every fence must
  carry a language tag, so no code block goes untested by accident.
* Nothing is scaled down: the examples in the docs are small enough to run as written.

The generated pages (docs/models.md, docs/performance.md) are checked by their own generators.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import textwrap
from dataclasses import dataclass, field
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
DOCS = REPO / "docs"
GENERATED_PAGES = {"models.md", "performance.md"}  # tools/models_page.py, benchmarks/run_all.py
PAGES = ["README.md", "CONTRIBUTING.md"] + sorted(
    f"docs/{p.name}" for p in DOCS.glob("*.md") if p.name not in GENERATED_PAGES)
RUN_LANGUAGES = {"python", "bash"}
TEXT_LANGUAGES = {"text"}
NOT_RUN_REASONS = ("network", "installs", "tokens", "cluster", "scheduler", "gpu", "repo")

# Blocks marked `<!-- not-run: ... -->`, per page. Change this only together with the marks.
NOT_RUN = {
    "README.md": 4,
    "CONTRIBUTING.md": 3,
    "docs/cli.md": 1,
    "docs/contributing-models.md": 4,
    "docs/evaluation.md": 2,
    "docs/installation.md": 4,
    "docs/marks.md": 1,
    "docs/model-package.md": 1,
    "docs/remote-packages.md": 3,
    "docs/scaling.md": 5,
    "docs/training-sets.md": 2,
}
PAGE_TIMEOUT_S = 1200  # generous: with a quarter of a core (a loaded machine) the slowest page, evaluation.md, took 14 min


@dataclass
class Block:
    page: str
    line: int  # 1-based line of the opening fence
    language: str
    code: str
    not_run: str | None = None
    expected: list[str] = field(default_factory=list)

    @property
    def id(self) -> str:
        return f"{self.page}:{self.line}"


_FENCE = re.compile(r"^(\s*)(`{3,})\s*([A-Za-z0-9_+-]*)\s*$")
_NOT_RUN = re.compile(r"^\s*<!--\s*not-run:\s*(.+?)\s*-->\s*$")


def parse_blocks(page: str) -> list[Block]:
    lines = (REPO / page).read_text(encoding="utf-8").splitlines()
    blocks: list[Block] = []
    i, pending = 0, None
    while i < len(lines):
        m = _FENCE.match(lines[i])
        mark = _NOT_RUN.match(lines[i])
        if mark:
            pending = mark.group(1)
        elif m:
            indent, ticks, language = m.groups()
            start, body = i, []
            i += 1
            while i < len(lines) and not re.match(rf"^\s*{ticks}\s*$", lines[i]):
                body.append(lines[i][len(indent):] if lines[i].startswith(indent) else lines[i].lstrip())
                i += 1
            blocks.append(Block(page, start + 1, language, "\n".join(body) + "\n", pending))
            pending = None
        elif lines[i].strip():
            pending = None  # a mark applies to the block right after it
        i += 1
    for block in blocks:
        block.expected = expected_output(block)
    return blocks


def expected_output(block: Block) -> list[str]:
    """The comment lines that follow a print (python) or a command (bash): the expected output."""
    expected, after_output = [], False
    for line in block.code.splitlines():
        stripped = line.strip()
        if stripped.startswith("#") and after_output:
            expected.append(stripped[1:].strip())
            continue
        if block.language == "python":
            after_output = "print(" in stripped
        else:
            after_output = bool(stripped) and not stripped.startswith("#")
    return expected


ALL_BLOCKS = {page: parse_blocks(page) for page in PAGES}


# ---------------------------------------------------------------------------- the runner
# Runs in the page's subprocess: one JSON list of steps on stdin, one JSON result on stdout's last line.
RUNNER = r'''
import contextlib, io, json, os, re, subprocess, sys, traceback

steps = json.load(sys.stdin)
namespace = {"__name__": "__main__"}
real_stdout = sys.stdout


class Tee(io.TextIOBase):
    def __init__(self):
        self.parts = []
    def write(self, text):
        self.parts.append(text)
        real_stdout.write(text)
        return len(text)
    def flush(self):
        real_stdout.flush()


def check(step, output):
    lines = output.splitlines()
    pos = 0
    for want in step["expected"]:
        pattern = re.compile(".*".join(re.escape(part) for part in want.split("...")) + r"\s*$")
        while pos < len(lines) and not pattern.match(lines[pos].rstrip()):
            pos += 1
        if pos == len(lines):
            return f"expected output line {want!r} not printed (in order); output was:\n{output}"
        pos += 1
    return None


for step in steps:
    where = f"{step['page']}:{step['line']}"
    print(f"\n----- {where} ({step['language']})", flush=True)
    try:
        script = re.match(r"#\s*([\w.-]+\.py)\s*\n", step["code"])
        if step["language"] == "python" and script:
            with open(script.group(1), "w", encoding="utf-8") as f:
                f.write(step["code"])
            print(f"(wrote {script.group(1)})")
            continue
        if step["language"] == "python":
            tee = Tee()
            code = compile("\n" * step["line"] + step["code"], step["page"], "exec")
            with contextlib.redirect_stdout(tee):
                exec(code, namespace)
            output = "".join(tee.parts)
        else:
            proc = subprocess.run(["bash", "-e", "-o", "pipefail", "-c", step["code"]], capture_output=True,
                                  text=True)
            output = proc.stdout
            sys.stdout.write(proc.stdout + proc.stderr)
            if proc.returncode != 0:
                raise RuntimeError(f"bash exited {proc.returncode}")
        problem = check(step, output)
        if problem:
            raise AssertionError(problem)
    except BaseException as exc:
        traceback.print_exc(file=sys.stdout)
        print(json.dumps({"failed": where, "error": f"{type(exc).__name__}: {exc}"}))
        sys.exit(1)
print(json.dumps({"failed": None}))
'''


def page_env(tmp: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MEDHUB_")}
    env.update(MEDHUB_HOME=str(tmp / ".medhub-home"), MEDHUB_OFFLINE="1", MPLBACKEND="Agg", COLUMNS="100",
               PATH=f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}", PYTHONUNBUFFERED="1")
    env.pop("DISPLAY", None)
    env.pop("WAYLAND_DISPLAY", None)
    return env


def run_page(page: str, tmp: Path) -> None:
    steps = [dict(page=b.page, line=b.line, language=b.language, code=b.code, expected=b.expected)
             for b in ALL_BLOCKS[page] if b.language in RUN_LANGUAGES and b.not_run is None]
    if not steps:
        pytest.skip(f"{page} has no code block to run")
    proc = subprocess.run([sys.executable, "-c", RUNNER], input=json.dumps(steps), capture_output=True, text=True,
                          cwd=tmp, env=page_env(tmp), timeout=PAGE_TIMEOUT_S)
    last = proc.stdout.strip().splitlines()[-1] if proc.stdout.strip() else ""
    try:
        result = json.loads(last)
    except json.JSONDecodeError:
        result = {"failed": "?", "error": f"runner exited {proc.returncode}"}
    if proc.returncode != 0 or result.get("failed"):
        tail = proc.stdout[-6000:]
        pytest.fail(f"{result.get('failed')}: {result.get('error')}\n--- output (tail)\n{tail}\n--- stderr (tail)\n"
                    f"{proc.stderr[-3000:]}", pytrace=False)


# ---------------------------------------------------------------------------- tests
#: Pages whose blocks take 5 s or more on 2 cores (seconds at 7ec7579; the last five measured at 9cc91d1 on a
#: loaded machine, about a third of it alone): they run with ``-m slow``; the other pages keep "every code block
#: runs" in the default run.
SLOW_PAGES = {"docs/evaluation.md": 100, "docs/scaling.md": 23, "docs/quickstart.md": 20, "README.md": 19,
              "docs/visualization.md": 6, "docs/datasets.md": 5, "docs/training-sets.md": 15, "docs/generation.md": 65,
              "docs/adding-hub-models.md": 62, "docs/cli.md": 37, "docs/contributing-models.md": 22,
              "docs/marks.md": 17}


@pytest.mark.parametrize("page", [pytest.param(p, marks=pytest.mark.slow) if p in SLOW_PAGES else p for p in PAGES
                                  if any(b.language in RUN_LANGUAGES and b.not_run is None for b in ALL_BLOCKS[p])])
def test_code_blocks_run(page, tmp_path):
    run_page(page, tmp_path)


NOT_RUN_BLOCKS = [b for blocks in ALL_BLOCKS.values() for b in blocks if b.not_run is not None]


@pytest.mark.parametrize("block", NOT_RUN_BLOCKS, ids=lambda b: b.id)
def test_not_run_block(block):
    """Listed as a skip, so `pytest -rs` names every block that is not run, with its reason."""
    assert block.language in RUN_LANGUAGES, f"{block.id}: only code blocks need a not-run mark"
    assert block.not_run.split()[0].rstrip(":,") in NOT_RUN_REASONS, (
        f"{block.id}: start the reason with one of {NOT_RUN_REASONS}, not {block.not_run!r}")
    pytest.skip(f"not run: {block.not_run}")


def test_not_run_blocks_are_the_listed_ones():
    counts = {}
    for block in NOT_RUN_BLOCKS:
        counts[block.page] = counts.get(block.page, 0) + 1
    assert counts == NOT_RUN, "update NOT_RUN together with the <!-- not-run --> marks"


def test_every_fence_has_a_language():
    for blocks in ALL_BLOCKS.values():
        for block in blocks:
            assert block.language in RUN_LANGUAGES | TEXT_LANGUAGES, (
                f"{block.id}: tag the block ```python, ```bash or ```text (got {block.language!r})")


def test_pages_have_code():
    ran = sum(1 for blocks in ALL_BLOCKS.values() for b in blocks if b.language in RUN_LANGUAGES and not b.not_run)
    assert ran >= 60, ran  # guard against a parser that silently finds nothing


def test_every_page_is_in_the_nav():
    nav = set(re.findall(r":\s*([\w./-]+\.md)\s*$", (REPO / "mkdocs.yml").read_text(encoding="utf-8"), re.MULTILINE))
    pages = {p.name for p in DOCS.glob("*.md")}
    assert pages == nav, f"pages not in the nav: {sorted(pages - nav)}; nav entries without a page: {sorted(nav - pages)}"


# ---------------------------------------------------------------------------- the notebook
NOTEBOOK = DOCS / "quickstart.ipynb"


def test_notebook_is_committed_without_outputs():
    nb = json.loads(NOTEBOOK.read_text(encoding="utf-8"))
    for cell in nb["cells"]:
        if cell["cell_type"] == "code":
            assert cell.get("outputs") == [] and cell.get("execution_count") is None, (
                "clear the outputs of docs/quickstart.ipynb before committing (jupyter nbconvert --clear-output)")


@pytest.mark.slow  # 34 s on 2 cores; test_notebook_is_committed_without_outputs stays in the default run
def test_notebook_runs(tmp_path, monkeypatch):
    """Executes docs/quickstart.ipynb in a fresh kernel (nbclient; the docs extra, part of the test extra)."""
    import nbclient
    import nbformat

    nb = nbformat.read(NOTEBOOK, as_version=4)
    env = page_env(tmp_path)
    env.pop("MPLBACKEND")  # the kernel's inline backend shows the figures
    for key in list(os.environ):
        if key not in env:
            monkeypatch.delenv(key)
    for key, value in env.items():
        monkeypatch.setenv(key, value)  # the kernel inherits this process's environment
    client = nbclient.NotebookClient(nb, timeout=600, kernel_name="python3",
                                     resources={"metadata": {"path": str(tmp_path)}})
    client.execute()
    outputs = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs]
    assert not [o for o in outputs if o.get("output_type") == "error"]
    assert any("image/png" in o.get("data", {}) for o in outputs), "the notebook shows no figure"
    text = "".join(o.get("text", "") for o in outputs if o.get("output_type") == "stream")
    assert "FID" in text


# keep the helpers importable for a quick look: python -c "import tests.test_docs as t; t.summary()"
def summary() -> None:  # pragma: no cover
    for page, blocks in ALL_BLOCKS.items():
        ran = [b for b in blocks if b.language in RUN_LANGUAGES and not b.not_run]
        skipped = [b for b in blocks if b.not_run]
        print(f"{page}: {len(ran)} run, {len(skipped)} not run, {len(blocks) - len(ran) - len(skipped)} text")
        for b in skipped:
            print(textwrap.indent(f"{b.id}: {b.not_run}", "    "))

