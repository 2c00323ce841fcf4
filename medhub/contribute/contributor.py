"""ModelContributor: validate, test, package, publish to Zenodo and open a GitHub issue, in one call.

The steps, in order (each failure raises a :class:`~medhub.errors.ContributionError` subclass whose
``step`` names the step and whose message says what was already done and how to go on):

``tokens``        the Zenodo and GitHub tokens needed by the run are there (arguments or
                  ``ZENODO_ACCESS_TOKEN`` / ``GITHUB_TOKEN``);
``model-id``      the id has the catalog's format and is not taken;
``package``       the package folder exists and has ``__init__.py``;
``metadata``      the catalog entry is read from a file (or the package's ``metadata.json``) or built
                  from the template plus arguments; required fields are there (prompted for only
                  when ``interactive``); no local path is left in it; it validates against the schema;
``weights``       the weights file is inside the package, not empty, and not a pickle;
``import``        the dependencies are installed, the package imports by file path, its interface
                  (``medhub/1`` when it has ``load`` and ``sample``, else ``medigan``) is detected;
``test``          samples are generated on the CPU and checked against the outputs spec (inferred
                  when the metadata declares none), twice with the same seed;
``archive``       the package is zipped reproducibly (same files, same sha256);
``github-check``  the repository is readable with the token, and no open issue names the model yet;
``zenodo-*``      a deposition is created, the archive uploaded and checked (md5), the metadata set,
                  and the deposition published when ``publish=True`` or confirmed;
``github-issue``  an issue holding the catalog entry (sha256, size, download URL) is opened.

Nothing published ever holds a local path, and tokens only travel in ``Authorization`` headers.
"""

from __future__ import annotations

import contextlib
import html
import json
import logging
import os
import re
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import (
    CatalogError,
    ContributionError,
    MedhubError,
    MetadataError,
    MissingTokenError,
    ModelIdError,
    ModelTestError,
)
from .template import MODEL_ID_PATTERN, TEMPLATE_ID, template_folder

logger = logging.getLogger("medhub.contribute")

ZENODO_TOKEN_ENV = "ZENODO_ACCESS_TOKEN"
GITHUB_TOKEN_ENV = "GITHUB_TOKEN"
#: Fields a published entry must have (dotted keys); prompted for when ``interactive``.
REQUIRED_FIELDS = {
    "description.title": "a one-line title of the model",
    "description.authors": "the authors, comma-separated",
    "selection.modality": "imaging modalities, comma-separated (e.g. MRI, T1)",
    "selection.organ": "organs or body parts, comma-separated (e.g. brain)",
    "selection.license": "the license of code and weights (e.g. MIT, CC-BY-4.0)",
}
_LIST_FIELDS = {"description.authors", "description.doi", "selection.modality", "selection.organ",
                "selection.generates", "selection.tags", "selection.dataset", "execution.dependencies"}
_WINDOWS_PATH = re.compile(r"^[A-Za-z]:[\\/]")
_PICKLE_SUFFIXES = {".pkl", ".pickle", ".joblib", ".dill"}
_TEXT_SUFFIXES = {".py", ".md", ".txt", ".json", ".yaml", ".yml", ".cfg", ".toml", ".ini", ".sh", ".ipynb"}


# ---------------------------------------------------------------------------- results
@dataclass
class TestReport:
    """What :func:`run_model_test` checked."""

    __test__ = False  # not a pytest test class

    model_id: str
    interface: str
    num_samples: int
    seed: int
    device: str
    outputs: list[dict[str, Any]]
    outputs_inferred: bool
    reproducible: bool
    seconds: float

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


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


def catalog_document(entry: Mapping[str, Any]) -> dict[str, Any]:
    """A full catalog document around ``{model_id: {...}}`` entries, for :func:`~medhub.config.validate_catalog`."""
    return {"schema_version": 1, "catalog_version": "0.0.0", "models": dict(entry)}


# ---------------------------------------------------------------------------- step functions
def validate_model_id(model_id: Any, taken: list[str], allow_existing: bool = False) -> str:
    """The id, if it has the catalog's format and neither it nor its number is taken.

    ``allow_existing`` accepts the exact id of a catalog model (a new version of it).
    """
    if not isinstance(model_id, str) or not MODEL_ID_PATTERN.match(model_id):
        raise ModelIdError(
            f"{model_id!r} is not a model id: five digits, an underscore and a name of letters, digits, '_', '.', '-' "
            "(e.g. 00150_MY_GAN).", step="model-id")
    if model_id in taken and allow_existing:
        return model_id
    clash = [m for m in taken if m[:5] == model_id[:5]]
    if clash:
        from .template import next_free_number

        same = model_id in clash
        raise ModelIdError(
            f"{'The id' if same else 'The number ' + model_id[:5] + ' of'} {model_id} is already taken in the catalog "
            f"by {', '.join(clash)}. Choose a free number, e.g. {next_free_number(taken)}_{model_id[6:]}"
            + ("; to publish a new version of that model pass overwrite_existing_metadata=True." if same else "."),
            step="model-id")
    return model_id


def locate_package(init_py_path: str | os.PathLike[str]) -> Path:
    """The package folder of ``init_py_path`` (the ``__init__.py`` file or its folder)."""
    path = Path(init_py_path).expanduser().resolve()
    if path.is_dir():
        path = path / "__init__.py"
    if path.name != "__init__.py" or not path.is_file():
        raise ContributionError(
            f"{init_py_path} is not a package's __init__.py (nor a folder holding one). Give the path of the "
            "__init__.py of your model package; `medhub init-model NAME --id ID` starts one from the template.",
            step="package")
    return path.parent


def _get(doc: Mapping[str, Any], dotted: str) -> Any:
    node: Any = doc
    for part in dotted.split("."):
        if not isinstance(node, Mapping) or part not in node:
            return None
        node = node[part]
    return node


def _set(doc: dict[str, Any], dotted: str, value: Any) -> None:
    parts = dotted.split(".")
    node = doc
    for part in parts[:-1]:
        if not isinstance(node.get(part), dict):
            node[part] = {}
        node = node[part]
    node[parts[-1]] = value


def _template_entry() -> dict[str, Any]:
    return json.loads((template_folder() / "metadata.json").read_text(encoding="utf-8"))[TEMPLATE_ID]


def skeleton_entry(model_id: str) -> dict[str, Any]:
    """The template's entry with everything that describes the template's own model emptied."""
    template = _template_entry()
    base = template["execution"]["generate_method"]["args"]["base"]
    return {
        "execution": {"package_name": model_id, "package_link": model_id, "dependencies": [],
                      "generate_method": {"name": "generate", "args": {"base": list(base), "custom": {}}}},
        "selection": {"performance": {k: None for k in template["selection"]["performance"]}, "modality": [],
                      "organ": [], "generates": [], "dataset": [], "tags": [], "license": None},
        "description": {"title": "", "version": "1.0.0", "doi": [], "authors": [],
                        "intended_use": "Research only; not for clinical use.", "comment": ""},
    }


def read_metadata_file(path: str | os.PathLike[str], model_id: str) -> dict[str, Any]:
    """The entry of ``model_id`` from a metadata file (or a folder holding ``metadata.json``).

    The file may hold ``{model_id: entry}``, one entry under another id (re-keyed, e.g. a copied
    template) or the entry itself (``{"execution": ..., "selection": ..., "description": ...}``).
    """
    file = Path(path).expanduser()
    if file.is_dir():
        file = file / "metadata.json"
    if not file.is_file():
        raise MetadataError(f"Metadata file {file} does not exist; pass metadata_file_path=None to build the metadata "
                            "from the template and your arguments.", step="metadata")
    try:
        doc = json.loads(file.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise MetadataError(f"{file} is not valid JSON (line {exc.lineno}, column {exc.colno}: {exc.msg}).",
                            step="metadata") from None
    if isinstance(doc, dict) and "execution" in doc and "description" in doc:
        return doc
    if isinstance(doc, dict) and model_id in doc:
        return doc[model_id]
    if isinstance(doc, dict) and len(doc) == 1 and isinstance(next(iter(doc.values())), dict):
        other = next(iter(doc))
        logger.warning("%s holds the entry of %s; using it for %s", file.name, other, model_id)
        return doc[other]
    raise MetadataError(f"{file} holds no entry for {model_id}: expected {{\"{model_id}\": {{\"execution\": ..., "
                        "\"selection\": ..., \"description\": ...}}}.", step="metadata")


def requirements_txt(folder: Path) -> list[str] | None:
    """The requirement lines of ``folder/requirements.txt`` (comments and blanks dropped), or None."""
    path = folder / "requirements.txt"
    if not path.is_file():
        return None
    lines = (line.split("#", 1)[0].strip() for line in path.read_text(encoding="utf-8").splitlines())
    return [line for line in lines if line]


def check_dependencies(dependencies: Any) -> list[str]:
    from packaging.requirements import InvalidRequirement, Requirement

    if not isinstance(dependencies, list) or not all(isinstance(d, str) for d in dependencies):
        raise MetadataError(f"dependencies must be a list of PEP 508 strings, not {dependencies!r}.", step="metadata")
    bad = []
    for text in dependencies:
        try:
            Requirement(text)
        except InvalidRequirement:
            bad.append(text)
    if bad:
        raise MetadataError(f"Not valid PEP 508 requirements: {', '.join(map(repr, bad))} (write e.g. 'torch>=2.1').",
                            step="metadata")
    return list(dependencies)


def _template_values(entry: Mapping[str, Any]) -> list[str]:
    """Required fields still holding the template's own value (title, authors, modality, organ)."""
    template = _template_entry()
    return [key for key in REQUIRED_FIELDS if key != "selection.license" and _get(entry, key) == _get(template, key)]


def missing_fields(entry: Mapping[str, Any]) -> list[str]:
    """Required fields that are absent or empty (the template's own values count as absent)."""
    missing = []
    for key in REQUIRED_FIELDS:
        value = _get(entry, key)
        if value is None or (isinstance(value, (str, list)) and not [v for v in ([value] if isinstance(value, str)
                                                                              else value) if str(v).strip()]):
            missing.append(key)
    return missing + [key for key in _template_values(entry) if key not in missing]


def _is_local_path(text: str) -> bool:
    """Whether a metadata string is an absolute path on this machine (``/...``, ``~/...``, ``C:\\...``, ``file://``)."""
    if "\n" in text:
        return False
    return text.startswith(("/", "~/", "\\\\", "file://")) or bool(_WINDOWS_PATH.match(text))


def relativize_paths(entry: dict[str, Any], folder: Path, model_id: str, interface: str | None) -> list[str]:
    """Replace absolute paths inside the package by relative ones; raise for paths outside it.

    ``execution.package_link`` is left alone (the contributor replaces it). Paths in a medigan
    package's custom arguments become ``models/<model_id>/<rel>``, which medhub maps into the
    package folder. Returns what was changed.
    """
    changed, outside = [], []
    root = folder.resolve()

    def visit(node: Any, where: str) -> Any:
        if isinstance(node, dict):
            return {k: (v if f"{where}.{k}" == "$.execution.package_link" else visit(v, f"{where}.{k}"))
                    for k, v in node.items()}
        if isinstance(node, list):
            return [visit(v, f"{where}[{i}]") for i, v in enumerate(node)]
        if isinstance(node, str) and _is_local_path(node):
            try:
                rel = Path(node.removeprefix("file://")).expanduser().resolve().relative_to(root).as_posix()
            except (ValueError, OSError):
                outside.append(where)
                return node
            new = f"models/{model_id}/{rel}" if interface == "medigan" and ".args." in where else rel
            changed.append(f"{where}: {new}")
            return new
        return node

    fixed = visit(entry, "$")
    if outside:
        raise MetadataError(
            f"The metadata holds local paths outside the package at {', '.join(outside)}; a published entry must not "
            "name files on your machine. Use paths relative to the package folder.", step="metadata")
    entry.clear()
    entry.update(fixed)
    return changed


def forbidden_strings(*paths: Path) -> list[str]:
    """Local path strings that must never appear in anything published: the given folders, their
    parents, and the home folder."""
    out = set()
    for path in paths:
        for p in (path, path.resolve(), path.parent, path.resolve().parent):
            text = str(p)
            if len(text) > 4 and text not in (os.sep, "/"):
                out.add(text)
    home = str(Path.home())
    if len(home) > 4:
        out.add(home)
    return sorted(out, key=len, reverse=True)


def check_no_local_paths(text: str, forbidden: list[str], where: str) -> None:
    """Raise MetadataError if ``text`` holds one of the ``forbidden`` paths as a whole path (not as part
    of a longer name or URL path: ``/root`` is not found in ``https://x.org/rootkit`` or ``x.org/root``)."""
    for path in forbidden:
        if re.search(rf"(?<![A-Za-z0-9_.-]){re.escape(path)}(?![A-Za-z0-9_.-])", text):
            raise MetadataError(f"{where} would publish the local path {path}; remove it from the metadata, "
                                "model_description and creator fields.", step="metadata")


def files_with_local_paths(folder: Path, forbidden: list[str], skip: frozenset[str] = frozenset()) -> list[str]:
    """Text files of the package (code, model card, configs; under 1 MB) that name a forbidden local path."""
    from .archive import package_members

    found = []
    for rel, path in package_members(folder):
        if rel not in skip and path.suffix.lower() in _TEXT_SUFFIXES and path.stat().st_size < 1 << 20:
            text = path.read_text(encoding="utf-8", errors="replace")
            try:
                check_no_local_paths(text, forbidden, rel)
            except MetadataError:
                found.append(rel)
    return found


def check_weights(folder: Path, execution: Mapping[str, Any]) -> Path:
    """The weights file: inside the package, present, not empty, not a pickle; safetensors headers are parsed."""
    from ..execution.resolve import weights_path

    path = weights_path(folder, execution)
    rel = os.path.relpath(path, folder)
    if Path(rel).is_absolute() or rel.startswith(".."):
        raise ContributionError(f"The weights file {rel} is outside the package folder; copy it into the package and "
                                "name it relative to the folder (model_weights_name / execution.weights).",
                                step="weights")
    if not path.is_file():
        present = sorted(p.name for p in folder.iterdir() if p.is_file() and p.suffix not in (".py", ".md", ".txt",
                                                                                               ".json"))
        raise ContributionError(
            f"The weights file {Path(rel).as_posix()} is not in the package (files there: {', '.join(present) or 'none'}). "
            "Set model_weights_name and model_weights_extension, or execution.weights in the metadata.", step="weights")
    size = path.stat().st_size
    if size == 0:
        raise ContributionError(f"The weights file {Path(rel).as_posix()} is empty.", step="weights")
    if path.suffix.lower() in _PICKLE_SUFFIXES:
        raise ContributionError(f"The weights file {path.name} is a pickle, and unpickling runs code; save the weights "
                                "as safetensors (see docs/model-package.md, section 7).", step="weights")
    if path.suffix == ".safetensors":
        with open(path, "rb") as fh:
            head = fh.read(8)
            length = int.from_bytes(head, "little") if len(head) == 8 else -1
            try:
                if not 0 < length <= size - 8:
                    raise ValueError
                json.loads(fh.read(length))
            except ValueError:
                raise ContributionError(f"The weights file {path.name} is not a valid safetensors file (bad header); "
                                        "is it a Git LFS pointer or a truncated copy?", step="weights") from None
    return path


def detect_interface(module: Any, generate_method_name: str) -> str:
    """``medhub/1`` when the package has callable ``load`` and ``sample``, else ``medigan``."""
    if callable(getattr(module, "load", None)) and callable(getattr(module, "sample", None)):
        return "medhub/1"
    if callable(getattr(module, generate_method_name, None)):
        return "medigan"
    raise ContributionError(
        f"The package defines neither load() and sample() (interface medhub/1) nor {generate_method_name}() (interface "
        "medigan); see docs/model-package.md. Set generate_method_name if your generate function has another name.",
        step="import")


def spec_to_dict(spec: Any) -> dict[str, Any]:
    """An :class:`~medhub.outputs.OutputSpec` as the catalog writes it."""
    out: dict[str, Any] = {"name": spec.name, "kind": spec.kind, "shape": list(spec.shape), "dtype": spec.dtype}
    for key in ("channels", "range", "values", "format", "spacing"):
        value = getattr(spec, key)
        if value is not None:
            out[key] = list(value) if isinstance(value, tuple) else value
    return out


def run_model_test(executor: Any, num_samples: int = 3, seed: int = 0, device: str = "cpu",
                   install_dependencies: bool = False, trust_remote_code: bool = False) -> TestReport:
    """Generate ``num_samples`` samples twice with ``seed`` and check them.

    Every batch is checked against the outputs spec (inferred from the first batch when the entry
    declares none); ``medhub/1`` packages must give the same samples for the same seeds. Raises
    :class:`~medhub.errors.ModelTestError` with the underlying problem.
    """
    import numpy as np

    from ..execution.device import resolve_device
    from ..execution.executor import check_num_samples

    started = time.perf_counter()
    try:
        n = check_num_samples(num_samples)
        executor.prepare(install_dependencies, trust_remote_code)
        device = resolve_device(device, executor.uses_torch)
        inferred = not executor.specs
        first = executor.sample_batch(range(n), seed, device)
        second = executor.sample_batch(range(n), seed, device)
    except MedhubError as exc:
        raise ModelTestError(f"{exc}", step="test") from exc
    same = all(np.array_equal(first[k], second[k], equal_nan=first[k].dtype.kind in "fc") for k in first)
    if not same:
        if executor.interface == "medhub/1":
            raise ModelTestError(
                "The same seeds gave different samples: sample() must draw the random numbers of sample i from a "
                "generator seeded with seeds[i] alone (see docs/model-package.md, section 2).", step="test")
        logger.warning("%s: the same seed gave different samples; medigan packages should draw from the global "
                       "random generators, which medhub seeds", executor.model_id)
    if executor.interface == "medhub/1" and not callable(getattr(executor.prepare(), "generate", None)):
        logger.warning("%s: no medigan-style generate(); the package will not run under medigan", executor.model_id)
    return TestReport(executor.model_id, executor.interface, n, seed, device,
                      [spec_to_dict(s) for s in executor.specs], inferred, same,
                      round(time.perf_counter() - started, 3))


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
    from .. import __version__

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


# ---------------------------------------------------------------------------- the workflow
class ModelContributor:
    """Contributes one model package: see the module docstring for the steps.

    Args:
        model_id: the new model's id, e.g. ``00150_MY_GAN``.
        init_py_path: the package's ``__init__.py`` (or its folder).
        config_manager: the catalog whose ids are taken (default: medhub's catalog).
        interactive: prompt for missing metadata and for the publication (never otherwise).
        prompt: the function that asks (default :func:`input`).
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
        self.done: list[str] = []
        self.state: dict[str, Any] = {}
        self._secrets: list[str] = []
        self.action = "Contributing"  # first word of error messages

    @property
    def config_manager(self) -> Any:
        if self._config_manager is None:
            from ..config import ConfigManager

            self._config_manager = ConfigManager()
        return self._config_manager

    def __repr__(self) -> str:
        return f"ModelContributor(model_id={self.model_id!r}, init_py_path={str(self.init_py_path)!r})"

    # ------------------------------------------------------------------ error handling
    def _next_step_hint(self) -> str:
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
    def _step(self, step: str) -> Iterator[None]:
        """Run one step; any failure becomes a ContributionError naming the step and what was done."""
        from .zenodo import redact

        try:
            yield
        except ContributionError as exc:
            if getattr(exc, "_contextualised", False):  # already says what was done (nested step)
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
                   f"Already done: {done}. {self._next_step_hint()}")
        error = cls(redact(message, self._secrets), step=failed, done=self.done,
                    state={**state, **{k: v for k, v in self.state.items() if k != "zenodo_deposition_url"}})
        error._contextualised = True  # type: ignore[attr-defined]
        raise error from original

    def _did(self, what: str) -> None:
        self.done.append(what)
        logger.info("%s: %s", self.model_id, what)

    # ------------------------------------------------------------------ local steps
    def _ask(self, key: str) -> Any:
        answer = self.prompt(f"{key} ({REQUIRED_FIELDS.get(key, '')}): ").strip()
        if key in _LIST_FIELDS:
            return [part.strip() for part in answer.split(",") if part.strip()]
        return answer

    def build_metadata(self, metadata_file_path: str | os.PathLike[str] | None = None,
                       model_weights_name: str | None = None, model_weights_extension: str | None = None,
                       generate_method_name: str | None = None, dependencies: list[str] | None = None,
                       creator_name: str | None = None, model_description: str | None = None,
                       metadata_fields: Mapping[str, Any] | None = None, require_fields: bool = True) -> dict[str, Any]:
        """The entry of the model (without package link, sha256 and size): from a metadata file, the
        package's own ``metadata.json``, or the template plus arguments; arguments win.

        ``require_fields=False`` (testing only) accepts an entry without the fields a publication needs."""
        assert self.folder is not None
        if metadata_file_path is not None:
            entry = read_metadata_file(metadata_file_path, self.model_id)
            self._did(f"read the metadata from {Path(metadata_file_path).name}")
        elif (self.folder / "metadata.json").is_file():
            entry = read_metadata_file(self.folder, self.model_id)
            self._did("read the metadata from the package's metadata.json")
        else:
            entry = skeleton_entry(self.model_id)
            deps = requirements_txt(self.folder)
            entry["execution"]["dependencies"] = deps or []
            self._did("built the metadata from the template")
        if not all(isinstance(entry.get(k), dict) for k in ("execution", "selection", "description")):
            raise MetadataError("The metadata needs the objects execution, selection and description.", step="metadata")
        execution = entry["execution"]
        execution["package_name"] = self.model_id
        if model_weights_name:
            extension = model_weights_extension or ""
            if extension and not extension.startswith("."):
                extension = "." + extension
            execution.update(model_name=model_weights_name, extension=extension, weights=model_weights_name + extension)
        if generate_method_name:
            execution.setdefault("generate_method", {})["name"] = generate_method_name
        execution.setdefault("generate_method", {}).setdefault("name", "generate")
        if dependencies is not None:
            execution["dependencies"] = list(dependencies)
        execution["dependencies"] = check_dependencies(execution.get("dependencies", []))
        description = entry["description"]
        no_authors = not [a for a in description.get("authors") or [] if str(a).strip()]
        if creator_name and (no_authors or "description.authors" in _template_values(entry)):
            description["authors"] = [creator_name]
        if model_description and not description.get("comment"):
            description["comment"] = model_description
        for key, value in (metadata_fields or {}).items():
            if key.split(".")[0] not in ("execution", "selection", "description"):
                raise MetadataError(f"Metadata field {key!r} must start with execution., selection. or description.",
                                    step="metadata")
            if key in _LIST_FIELDS and isinstance(value, str):
                value = [part.strip() for part in value.split(",") if part.strip()]
            _set(entry, key, value)
        if not require_fields:
            if not str(description.get("title") or "").strip():
                description["title"] = self.model_id
            self.entry = entry
            return entry
        missing = missing_fields(entry)
        if missing and self.interactive:
            for key in missing:
                _set(entry, key, self._ask(key))
            missing = missing_fields(entry)
        if missing:
            hints = ", ".join(f"{k} ({REQUIRED_FIELDS[k]})" for k in missing)
            raise MetadataError(
                f"Required metadata is missing: {hints}. Give it in the metadata file, as metadata_fields="
                f"{{'{missing[0]}': ...}} (CLI: --field {missing[0]}=...), or run interactively "
                "(interactive=True, CLI: --interactive).", step="metadata")
        self.entry = entry
        return entry

    def validate_entry(self, package_link: str | None = None, sha256: str | None = None,
                       size: int | None = None) -> dict[str, Any]:
        """``{model_id: entry}`` with the given link / pin, validated against the catalog schema."""
        from ..config import validate_catalog

        assert self.entry is not None
        entry = json.loads(json.dumps(self.entry))
        execution = entry["execution"]
        execution["package_link"] = package_link or self.model_id
        for key, value in (("sha256", sha256), ("size", size)):
            if value is None:
                execution.pop(key, None)
            else:
                execution[key] = value
        doc = {self.model_id: entry}
        validate_catalog(catalog_document(doc), source=f"metadata of {self.model_id}")
        return doc

    def import_and_detect(self, install_dependencies: bool = False) -> str:
        """Check dependencies, import the package by file path, detect (and record) its interface."""
        from ..execution.deps import ensure_dependencies
        from ..execution.loader import import_package

        assert self.folder is not None and self.entry is not None
        execution = self.entry["execution"]
        ensure_dependencies(self.model_id, execution["dependencies"], install=install_dependencies)
        module = import_package(self.folder, self.model_id)
        interface = detect_interface(module, execution["generate_method"]["name"])
        declared = execution.get("interface")
        if declared == "medhub/1" and interface != "medhub/1":
            raise ContributionError("The metadata declares interface medhub/1, but the package has no load() and "
                                    "sample(); implement them or declare interface medigan.", step="import")
        if declared and declared != interface:
            logger.info("%s: the package has load() and sample(); its interface is medhub/1, not %s", self.model_id,
                        declared)
        execution["interface"] = interface
        return interface

    def test(self, num_samples: int = 3, seed: int = 0, device: str = "cpu", install_dependencies: bool = False,
             trust_remote_code: bool = False) -> TestReport:
        """Run the package through medhub's executor, as users will, and check its samples."""
        from ..execution.executor import ModelExecutor

        assert self.folder is not None and self.entry is not None
        execution = {**self.entry["execution"], "package_link": str(self.folder)}
        executor = ModelExecutor(self.model_id, execution, base_dir=self.folder.parent,
                                 description=self.entry["description"], package_path=self.folder)
        report = run_model_test(executor, num_samples, seed, device, install_dependencies, trust_remote_code)
        if report.outputs_inferred:
            self.entry["execution"]["outputs"] = report.outputs
            logger.warning("%s: no outputs spec in the metadata; inferred %s from the samples. Check it, and add "
                           "range / values.", self.model_id, [o["name"] for o in report.outputs])
        selection = self.entry["selection"]
        if not selection.get("generates"):
            selection["generates"] = [o["name"] for o in report.outputs]
        return report

    def prepare(self, metadata_file_path: str | os.PathLike[str] | None = None, *, check_id: bool = True,
                allow_existing: bool = False, install_dependencies: bool = False, num_samples: int = 3,
                seed: int = 0, device: str = "cpu", require_fields: bool = True, **metadata_args: Any) -> TestReport:
        """The local steps: id, package, metadata, weights, import, schema, test. Returns the test report.

        ``check_id=False`` and ``require_fields=False`` test a package without the checks a
        publication needs (what :meth:`medhub.Generators.test_model` does)."""
        with self._step("model-id"):
            if check_id:
                validate_model_id(self.model_id, list(self.config_manager.model_ids), allow_existing)
                self._did(f"checked that {self.model_id} is free in catalog {self.config_manager.catalog_version}")
            else:
                validate_model_id(self.model_id, [])
        with self._step("package"):
            self.folder = locate_package(self.init_py_path)
            for name in ("README.md", "LICENSE"):
                if not (self.folder / name).is_file():
                    self.state.setdefault("warnings", []).append(f"the package has no {name}")
                    logger.warning("%s: the package has no %s (see docs/model-package.md)", self.model_id, name)
        with self._step("metadata"):
            self.build_metadata(metadata_file_path, require_fields=require_fields, **metadata_args)
        with self._step("weights"):
            check_weights(self.folder, self.entry["execution"])  # type: ignore[index]
            self._did("checked the weights file")
        with self._step("import"):
            interface = self.import_and_detect(install_dependencies)
            self._did(f"imported the package (interface {interface})")
        with self._step("metadata"):
            assert self.entry is not None
            for change in relativize_paths(self.entry, self.folder, self.model_id, interface):
                logger.info("%s: made a local path relative: %s", self.model_id, change)
            self.validate_entry()
        with self._step("test"):
            report = self.test(num_samples=num_samples, seed=seed, device=device,
                               install_dependencies=install_dependencies)
            self.validate_entry()
            self._did(f"tested {report.num_samples} samples against the outputs spec")
        return report

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
        from .archive import make_archive

        zenodo_token = zenodo_access_token or os.environ.get(ZENODO_TOKEN_ENV) or None
        github_token = github_access_token or os.environ.get(GITHUB_TOKEN_ENV) or None
        self._secrets = [t for t in (zenodo_token, github_token) if t]
        may_publish = publish is True or (publish is None and self.interactive) or package_link is not None
        with self._step("tokens"):
            missing = []
            if not dry_run and package_link is None and not zenodo_token:
                missing.append(f"a Zenodo token (zenodo_access_token= or {ZENODO_TOKEN_ENV}; create one at "
                               "https://zenodo.org/account/settings/applications/tokens/new/ with the scopes "
                               "deposit:write and deposit:actions, or on sandbox.zenodo.org for sandbox=True)")
            if not dry_run and may_publish and not github_token:
                missing.append(f"a GitHub token (github_access_token= or {GITHUB_TOKEN_ENV}; a token that can open "
                               "issues in the repository)")
            if not dry_run and may_publish:
                from .github import require_pygithub

                require_pygithub()
            if missing:
                raise MissingTokenError(f"Missing {' and '.join(missing)}. Or run with dry_run=True to check and "
                                        "package the model without publishing.", step="tokens")
        # settings are checked before any work, so a typo in a URL does not cost a test run
        if not dry_run:
            from .github import github_settings
            from .zenodo import zenodo_base_url

            with self._step("tokens"):
                zenodo_base = zenodo_base_url(zenodo_url, sandbox)
                github_base, repo_name = github_settings(github_url, github_repo)

        report = self.prepare(metadata_file_path, allow_existing=allow_existing,
                              install_dependencies=install_dependencies, num_samples=num_samples, device=device,
                              model_weights_name=model_weights_name, model_weights_extension=model_weights_extension,
                              generate_method_name=generate_method_name, dependencies=dependencies,
                              creator_name=creator_name, model_description=model_description,
                              metadata_fields=metadata_fields)
        assert self.folder is not None and self.entry is not None

        from .._paths import medhub_home

        out_dir = Path(output_path).expanduser() if output_path else medhub_home() / "contributions" / self.model_id
        filename = f"{self.model_id}.zip"
        forbidden = forbidden_strings(self.folder, out_dir)
        warnings = self.state.setdefault("warnings", [])
        with self._step("metadata"):
            inner = self.validate_entry(package_link=self.model_id)  # the archive's metadata.json
            check_no_local_paths(json.dumps(inner), forbidden, "The catalog entry")
            for label, text in (("model_description", model_description), ("creator_name", creator_name),
                                ("creator_affiliation", creator_affiliation)):
                check_no_local_paths(text or "", forbidden, label)
        leaky = files_with_local_paths(self.folder, forbidden, skip=frozenset({"metadata.json"}))
        if leaky:
            warnings.append(f"files naming local paths of this machine: {', '.join(leaky)}")
            logger.warning("%s: %s name local paths of this machine; they are published inside the archive. Check "
                           "them.", self.model_id, ", ".join(leaky))
        with self._step("archive"):
            inner_bytes = (json.dumps(inner, indent=2, ensure_ascii=False) + "\n").encode()
            archive = make_archive(self.folder, out_dir / filename, self.model_id, {"metadata.json": inner_bytes},
                                   secrets=self._secrets)
            self._did(f"wrote {filename} (sha256 {archive.sha256}, {archive.size} bytes)")
        result = ContributionResult(self.model_id, {}, archive.path, archive.sha256, archive.size, dry_run, report,
                                    done=self.done, warnings=warnings)

        if dry_run:
            result.entry = self.validate_entry(filename, archive.sha256, archive.size)
            self._write_entry(out_dir, result.entry)
            self._did("dry run: nothing uploaded or published")
            return result

        from .github import IssueTracker
        from .zenodo import ZenodoUploader

        tracker = IssueTracker(github_token, github_base, repo_name) if may_publish and github_token else None
        if tracker is not None:
            with self._step("github-check"):
                if self._existing_issue(tracker, result):
                    return result
                self._did(f"checked {repo_name}: no open issue for {self.model_id}")

        if package_link is None:
            assert zenodo_token is not None
            uploader = ZenodoUploader(zenodo_token, zenodo_base, retries=retries, backoff=backoff)
            published = self._zenodo(uploader, archive, filename, result, zenodo_deposition_id, publish,
                                     zenodo_metadata(self.model_id, self.entry, creator_name, creator_affiliation,
                                                     model_description, archive.sha256), forbidden)
            if not published:
                result.entry = self.validate_entry(filename, archive.sha256, archive.size)
                return result
        else:
            with self._step("zenodo-publish"):
                if not package_link.startswith(("https://", "http://")):
                    raise ContributionError(f"package_link must be the download URL of the published archive, not "
                                            f"{package_link!r}.", step="zenodo-publish")
                self._check_published(package_link, archive, out_dir, retries, backoff)
                match = re.search(r"/records?/(\d+)/", package_link)
                result.download_url, result.published = package_link, True
                result.record_id = int(match.group(1)) if match else None
                self.state["package_link"] = package_link
                self._did(f"used the published package {package_link}")

        with self._step("github-issue"):
            result.entry = self.validate_entry(result.download_url, archive.sha256, archive.size)
            self._write_entry(out_dir, result.entry)
            body = issue_body(self.model_id, result.entry, result, creator_name, creator_affiliation, model_description)
            check_no_local_paths(body, forbidden, "The issue")
            assert tracker is not None
            if self._existing_issue(tracker, result):
                return result
            issue = tracker.create_issue(f"Model contribution: {self.model_id}", body)
            result.issue_url, result.issue_number, result.issue_created = issue.url, issue.number, True
            self._did(f"opened issue #{issue.number} ({issue.url})")
        return result

    def _existing_issue(self, tracker: Any, result: ContributionResult) -> bool:
        """True (and the result points at it) when an open issue already names the model id."""
        same, clashes = tracker.open_issues_for(self.model_id)
        if same is not None:
            result.issue_url, result.issue_number = same.url, same.number
            logger.warning("%s: open issue #%s already names this model (%s); no new issue. Comment there to update "
                           "the submission.", self.model_id, same.number, same.url)
            self._did(f"found open issue #{same.number} for {self.model_id}; opened no other")
            return True
        if clashes:
            listed = ", ".join(f"#{i.number} ({i.title})" for i in clashes)
            raise ModelIdError(f"Open issue {listed} already claims model number {self.model_id[:5]}; choose another "
                               "number.", step="github-check")
        return False

    def _zenodo(self, uploader: Any, archive: Any, filename: str, result: ContributionResult,
                deposition_id: int | None, publish: bool | None, metadata: dict[str, Any],
                forbidden: list[str]) -> bool:
        """Create (or resume), upload, describe and publish; True when published."""
        with self._step("metadata"):
            check_no_local_paths(json.dumps(metadata), forbidden, "The Zenodo metadata")
        with self._step("zenodo-create"):
            if deposition_id is not None:
                deposition = uploader.get_deposition(deposition_id)
                self._did(f"resumed Zenodo draft deposition {deposition.id}")
            else:
                deposition = uploader.create_deposition()
                self._did(f"created Zenodo draft deposition {deposition.id} ({deposition.html_url})")
            self.state.update(zenodo_deposition_id=deposition.id, zenodo_deposition_url=deposition.html_url)
            result.deposition_id = deposition.id
        with self._step("zenodo-upload"):
            uploader.upload(deposition, archive.path, filename, archive.md5)
            self._did(f"uploaded {filename} to deposition {deposition.id} (md5 checked)")
        with self._step("zenodo-metadata"):
            uploader.set_metadata(deposition, metadata)
            self._did(f"set the metadata of deposition {deposition.id}")
        if publish is None and self.interactive:
            answer = self.prompt(f"Publish deposition {deposition.id} ({deposition.html_url}) on {uploader.base_url}? "
                                 "A published record cannot be deleted. [y/N] ")
            publish = answer.strip().lower() in ("y", "yes")
        if not publish:
            logger.warning("%s: deposition %s is a draft; review it at %s, then publish with contribute(..., "
                           "publish=True, zenodo_deposition_id=%s)", self.model_id, deposition.id, deposition.html_url,
                           deposition.id)
            self._did(f"left deposition {deposition.id} as a draft (publish=True publishes it)")
            return False
        with self._step("zenodo-publish"):
            record = uploader.publish(deposition, filename)
            result.record_id, result.concept_record_id, result.doi = record.record_id, record.concept_record_id, record.doi
            result.download_url, result.record_url, result.published = record.download_url, record.html_url, True
            self.state["package_link"] = record.download_url
            self._did(f"published Zenodo record {record.record_id}" + (f" (DOI {record.doi})" if record.doi else ""))
        return True

    def _check_published(self, url: str, archive: Any, out_dir: Path, retries: int | None,
                         backoff: float | None) -> None:
        """Download the published archive and check it is byte for byte the one rebuilt now."""
        from ..errors import DownloadError, IntegrityError
        from ..execution.fetch import download

        try:
            part, _, _ = download(url, out_dir / ".verify", self.model_id, sha256=archive.sha256, size=archive.size,
                                  retries=retries, backoff=backoff, progress=False, resume=False)
        except IntegrityError as exc:
            raise ContributionError(
                f"The archive at package_link is not the one rebuilt from the package now ({exc}); the package changed "
                "since it was published. Contribute it as a new version (without package_link).",
                step="zenodo-publish") from None
        except DownloadError as exc:
            raise ContributionError(f"Could not download package_link to check it: {exc}", step="zenodo-publish") from None
        part.unlink(missing_ok=True)
        with contextlib.suppress(OSError):
            part.parent.rmdir()
        self._did("checked that the published archive is the one rebuilt now (sha256)")

    def _write_entry(self, out_dir: Path, entry: dict[str, Any]) -> None:
        path = out_dir / f"{self.model_id}.entry.json"
        path.write_text(json.dumps(catalog_document(entry), indent=2, ensure_ascii=False) + "\n", encoding="utf-8")


def test_model(generators: Any, model_id: str | int, num_samples: int = 3, install_dependencies: bool = False,
               init_py_path: str | os.PathLike[str] | None = None,
               metadata_file_path: str | os.PathLike[str] | None = None, seed: int = 0, device: str = "cpu",
               trust_remote_code: bool = False) -> TestReport:
    """Test a local package (``init_py_path``) or a catalog model; see :meth:`medhub.Generators.test_model`."""
    from ..errors import InvalidArgumentError

    if init_py_path is not None:
        contributor = ModelContributor(str(model_id), init_py_path, generators.config_manager)
        contributor.action = "Testing"
        return contributor.prepare(metadata_file_path, check_id=False, require_fields=False,
                                   install_dependencies=install_dependencies, num_samples=num_samples, seed=seed,
                                   device=device)
    if not generators.config_manager.is_model_in_config(model_id):
        raise InvalidArgumentError(f"{model_id} is not in the catalog; to test a local package pass init_py_path= "
                                   "(the path of its __init__.py).")
    return run_model_test(generators.get_model_executor(model_id), num_samples, seed, device, install_dependencies,
                          trust_remote_code)


test_model.__test__ = False  # type: ignore[attr-defined]  # not a pytest test
