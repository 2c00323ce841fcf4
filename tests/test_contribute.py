"""Model contribution: validate, test, zip, publish to Zenodo, open the GitHub issue.

End to end against loopback HTTP servers the tests start (tests/fake_publish.py): a fake Zenodo
deposit API and a fake GitHub API that PyGithub talks to through base_url. The package to
contribute is made from templates/medhub_package with `medhub init-model`. CPU only, no internet.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import zipfile
from pathlib import Path

import pytest
from fake_publish import FakeGitHub, FakeZenodoDeposit

from medhub import Generators
from medhub.cli import main as cli_main
from medhub.config import validate_catalog
from medhub.contribute import catalog_document, init_model, make_archive
from medhub.contribute import zenodo as zenodo_module
from medhub.contribute.github import github_settings, ids_in_title
from medhub.contribute.zenodo import zenodo_base_url
from medhub.errors import (
    ContributionError,
    GitHubError,
    InvalidArgumentError,
    MetadataError,
    MissingTokenError,
    ModelIdError,
    ModelTestError,
    ZenodoError,
)

pytest.importorskip("torch")
pytest.importorskip("safetensors")

MODEL_ID = "00150_MY_GAN"
FIELDS = {"description.title": "My GAN: 32x32 test images", "selection.modality": ["MRI"], "selection.organ": ["brain"]}


# ---------------------------------------------------------------------------- fixtures and helpers
@pytest.fixture
def package(tmp_path) -> Path:
    """A package made with init-model from the template, with its own title, modality and organ (the
    template's are refused); the authors come from creator_name."""
    folder = init_model("my_gan", MODEL_ID, tmp_path / "work")
    meta_path = folder / "metadata.json"
    meta = json.loads(meta_path.read_text())
    for key, value in FIELDS.items():
        section, name = key.split(".")
        meta[MODEL_ID][section][name] = value
    meta_path.write_text(json.dumps(meta, indent=2))
    return folder


@pytest.fixture
def services(monkeypatch):
    """Fake Zenodo and GitHub on 127.0.0.1, named by the environment as a deployment would."""
    zen, gh = FakeZenodoDeposit().start(), FakeGitHub().start()
    monkeypatch.setenv("MEDHUB_ZENODO_URL", zen.base)
    monkeypatch.setenv("MEDHUB_GITHUB_URL", gh.api)
    monkeypatch.setenv("MEDHUB_GITHUB_REPO", gh.repo)
    monkeypatch.setenv("ZENODO_ACCESS_TOKEN", zen.token)
    monkeypatch.setenv("GITHUB_TOKEN", gh.token)
    monkeypatch.setattr(zenodo_module, "DEFAULT_BACKOFF", 0.0)
    monkeypatch.setattr("medhub.contribute.github.REQUEST_SPACING", (0.0, 0.0))
    yield zen, gh
    zen.stop()
    gh.stop()


@pytest.fixture
def github_client():
    return pytest.importorskip("github")


def contribute(package: Path, tmp_path: Path, **kwargs):
    kwargs.setdefault("output_path", tmp_path / "out")
    kwargs.setdefault("creator_name", "Ada Lovelace")
    kwargs.setdefault("creator_affiliation", "Analytical Engine Lab")
    kwargs.setdefault("model_description", "A tiny conditional GAN used to test the contribution workflow.")
    return Generators().contribute(MODEL_ID, package / "__init__.py", **kwargs)


def zenodo_calls(zen: FakeZenodoDeposit) -> list[str]:
    """The deposit API calls made, as 'METHOD kind'."""
    out = []
    for entry in zen.log:
        path = entry["path"]
        kind = ("publish" if path.endswith("/actions/publish") else "bucket" if path.startswith("/api/files/")
                else "content" if path.endswith("/content") else "deposition")
        out.append(f"{entry['method']} {kind}")
    return out


def issue_entry(body: str) -> dict:
    return json.loads(re.search(r"```json\n(.*?)\n```", body, re.S).group(1))


# ---------------------------------------------------------------------------- success
def test_end_to_end_publishes_and_opens_issue(package, tmp_path, services, github_client, caplog):
    zen, gh = services
    caplog.set_level(logging.DEBUG)
    result = contribute(package, tmp_path, publish=True)

    # Zenodo: create (201), upload (201), metadata (200), publish (202), in that order
    assert zenodo_calls(zen) == ["POST deposition", "PUT bucket", "PUT deposition", "POST publish"]
    (dep,) = zen.published()
    assert result.published and result.record_id == dep["id"] and result.deposition_id == dep["id"]
    assert result.doi == f"10.5072/zenodo.{dep['id']}"
    assert result.download_url == f"{zen.base}/api/records/{dep['id']}/files/{MODEL_ID}.zip/content"
    stored = dep["files"][f"{MODEL_ID}.zip"]
    assert hashlib.sha256(stored).hexdigest() == result.sha256 == hashlib.sha256(result.archive_path.read_bytes()).hexdigest()
    assert dep["metadata"]["creators"] == [{"name": "Ada Lovelace", "affiliation": "Analytical Engine Lab"}]
    assert dep["metadata"]["license"] == "mit" and dep["metadata"]["upload_type"] == "software"

    # GitHub: repository read and open issues searched before anything is uploaded, then one issue
    gh_calls = [(e["method"], e["path"].split("?")[0]) for e in gh.log]
    assert gh_calls[:2] == [("GET", "/api/v3/repos/medhub-org/medhub"), ("GET", "/api/v3/repos/medhub-org/medhub/issues")]
    assert "state=open" in gh.log[1]["path"]
    assert gh.log.index(gh.created()[0]) > 1  # the issue is opened last, after Zenodo
    (post,) = gh.created()
    sent = json.loads(post["body"])
    assert sent["title"] == f"Model contribution: {MODEL_ID}" and sent["labels"] == ["model contribution"]
    assert result.issue_created and result.issue_url == gh.issues[0]["html_url"] and result.issue_number == 1

    # the issue holds a valid catalog entry with sha256, size and the download URL
    entry = issue_entry(sent["body"])
    validate_catalog(catalog_document(entry))
    execution = entry[MODEL_ID]["execution"]
    assert execution["sha256"] == result.sha256 and execution["size"] == len(stored) == result.size
    assert execution["package_link"] == result.download_url and execution["interface"] == "medhub/1"
    assert entry == result.entry
    assert json.loads((tmp_path / "out" / f"{MODEL_ID}.entry.json").read_text())["models"] == entry

    # nothing published holds a local path; tokens travel only in Authorization headers
    for server, token, other in ((zen, zen.token, gh.token), (gh, gh.token, zen.token)):
        for request in server.log:
            text = request["path"] + request["body"].decode("latin-1")
            assert str(tmp_path) not in text and str(Path.home()) not in text
            assert token not in text and other not in text
            headers = {k: v for k, v in request["headers"].items() if k.lower() != "authorization"}
            assert token not in json.dumps(headers)
            if not request["path"].endswith("/content"):
                assert token in request["headers"]["Authorization"]
    assert str(tmp_path) not in json.dumps(dep["metadata"])
    for token in (zen.token, gh.token):
        assert token not in caplog.text
        for file in (tmp_path / "out").iterdir():
            assert token.encode() not in file.read_bytes()

    # the published entry works: medhub downloads the archive, checks its sha256 and runs it
    catalog = tmp_path / "published.json"
    catalog.write_text(json.dumps(catalog_document(entry)))
    images = Generators(config_file=catalog).generate(MODEL_ID, num_samples=2, save_images=False, seed=0)
    assert len(images) == 2 and images[0][0].shape == (32, 32)


def test_archive_inside_holds_metadata_without_local_paths(package, tmp_path):
    result = contribute(package, tmp_path, dry_run=True, metadata_fields=FIELDS)
    with zipfile.ZipFile(result.archive_path) as zf:
        names = zf.namelist()
        inner = json.loads(zf.read(f"{MODEL_ID}/metadata.json"))
        infos = zf.infolist()
    assert names == sorted(names) and all(n.startswith(f"{MODEL_ID}/") for n in names)
    assert {i.date_time for i in infos} == {(1980, 1, 1, 0, 0, 0)}
    assert inner[MODEL_ID]["execution"]["package_link"] == MODEL_ID
    assert "sha256" not in inner[MODEL_ID]["execution"]
    assert str(tmp_path) not in json.dumps(inner)


def test_contribution_computes_the_golden_digest(package, tmp_path):
    """The entry of a contributed model holds its golden samples' digest (issue 33, point 6), and
    ``verify_model`` of the added entry finds the package draws them (add_model_to_config also makes
    the short id resolve: 150 -> 00150_MY_GAN)."""
    result = contribute(package, tmp_path, dry_run=True, metadata_fields=FIELDS)
    with zipfile.ZipFile(result.archive_path) as zf:
        inner = json.loads(zf.read(f"{MODEL_ID}/metadata.json"))
    golden = inner[MODEL_ID]["execution"]["golden"]
    assert (golden["seed"], golden["num_samples"], golden["args"]) == (0, 8, {}) and len(golden["sha256"]) == 64
    g = Generators()
    g.add_model_contributor(MODEL_ID, package / "__init__.py")
    assert g.add_model_to_config(MODEL_ID, inner, is_local_model=True)
    assert g.verify_model(150).equal


def test_archive_is_reproducible(package, tmp_path):
    first = make_archive(package, tmp_path / "a" / "p.zip", MODEL_ID)
    # bytecode, .DS_Store, other timestamps and permissions change nothing
    (package / "__pycache__").mkdir(exist_ok=True)
    (package / "__pycache__" / "x.cpython-311.pyc").write_bytes(b"bytecode")
    (package / ".DS_Store").write_bytes(b"finder")
    for path in package.rglob("*"):
        os.utime(path, (1_000_000_000, 1_000_000_000))
    (package / "README.md").chmod(0o600)
    second = make_archive(package, tmp_path / "b" / "p.zip", MODEL_ID)
    assert (first.sha256, first.size, first.members) == (second.sha256, second.size, second.members)
    assert first.path.read_bytes() == second.path.read_bytes()
    (package / "README.md").write_text("changed\n")
    assert make_archive(package, tmp_path / "c" / "p.zip", MODEL_ID).sha256 != first.sha256


def test_archive_refuses_symlinks_and_tokens(package, tmp_path):
    (package / "notes.txt").write_text("my token is zenodo-secret-token-123, do not share\n")
    with pytest.raises(ContributionError, match="notes.txt.*access tokens") as err:
        make_archive(package, tmp_path / "x.zip", MODEL_ID, secrets=["zenodo-secret-token-123"])
    assert "zenodo-secret-token-123" not in str(err.value)
    (package / "notes.txt").unlink()
    (package / "link").symlink_to(tmp_path)
    with pytest.raises(ContributionError, match="symbolic link"):
        make_archive(package, tmp_path / "x.zip", MODEL_ID)
    assert not (tmp_path / "x.zip").exists()


# ---------------------------------------------------------------------------- dry run and tokens
def test_dry_run_makes_no_request(package, tmp_path, services, monkeypatch):
    zen, gh = services
    monkeypatch.delenv("ZENODO_ACCESS_TOKEN")
    monkeypatch.delenv("GITHUB_TOKEN")
    import requests

    def no_network(*args, **kwargs):
        raise AssertionError("a dry run made an HTTP request")

    monkeypatch.setattr(requests.Session, "request", no_network)
    result = contribute(package, tmp_path, dry_run=True, publish=True)
    assert zen.log == [] and gh.log == []
    assert result.dry_run and not result.published and result.issue_url is None
    assert result.archive_path.is_file() and result.sha256 == hashlib.sha256(result.archive_path.read_bytes()).hexdigest()
    validate_catalog(catalog_document(result.entry))
    assert result.entry[MODEL_ID]["execution"]["package_link"] == f"{MODEL_ID}.zip"
    assert result.test is not None and result.test.reproducible and result.test.num_samples == 3


def test_missing_tokens_name_the_variables(package, tmp_path, services, monkeypatch):
    zen, gh = services
    monkeypatch.delenv("ZENODO_ACCESS_TOKEN")
    monkeypatch.delenv("GITHUB_TOKEN")
    with pytest.raises(MissingTokenError) as err:
        contribute(package, tmp_path, publish=True)
    assert err.value.step == "tokens"
    assert "ZENODO_ACCESS_TOKEN" in str(err.value) and "GITHUB_TOKEN" in str(err.value)
    assert "Already done: nothing" in str(err.value)
    monkeypatch.setenv("ZENODO_ACCESS_TOKEN", zen.token)
    with pytest.raises(MissingTokenError) as err:
        contribute(package, tmp_path, publish=True)
    assert "GITHUB_TOKEN" in str(err.value) and "ZENODO_ACCESS_TOKEN" not in str(err.value)
    assert zen.log == [] and gh.log == []
    assert not (tmp_path / "out").exists()  # failed before any work


def test_missing_pygithub_is_reported_before_any_work(package, tmp_path, services, monkeypatch):
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "github" else real(name, *a))
    with pytest.raises(GitHubError, match=r"pip install 'medhub\[contribute\]'") as err:
        contribute(package, tmp_path, publish=True)
    assert err.value.step == "tokens" and services[0].log == [] and not (tmp_path / "out").exists()


def test_draft_needs_no_github_and_opens_no_issue(package, tmp_path, services, monkeypatch):
    zen, gh = services
    monkeypatch.delenv("GITHUB_TOKEN")
    result = contribute(package, tmp_path)  # publish=None, not interactive: a draft
    assert zenodo_calls(zen) == ["POST deposition", "PUT bucket", "PUT deposition"]
    assert not result.published and result.deposition_id == next(iter(zen.depositions))
    assert gh.log == [] and result.issue_url is None
    validate_catalog(catalog_document(result.entry))


def test_interactive_prompts_for_missing_fields_and_publication(package, tmp_path, services, monkeypatch, github_client):
    zen, gh = services
    (package / "metadata.json").unlink()  # metadata from the template plus arguments and answers
    answers = iter(["My GAN", "Ada Lovelace, Charles Babbage", "MRI, T1", "brain", "MIT", "n"])
    prompts = []

    def fake_input(prompt):
        prompts.append(prompt)
        return next(answers)

    monkeypatch.setattr("builtins.input", fake_input)
    result = contribute(package, tmp_path, interactive=True, creator_name=None)
    assert [p.split(" ")[0] for p in prompts[:5]] == ["description.title", "description.authors", "selection.modality",
                                                      "selection.organ", "selection.license"]
    assert prompts[5].startswith("Publish deposition") and not result.published  # answered "n"
    entry = result.entry[MODEL_ID]
    assert entry["description"]["authors"] == ["Ada Lovelace", "Charles Babbage"]
    assert entry["selection"]["modality"] == ["MRI", "T1"]
    # no outputs spec in the template skeleton: inferred from the test samples
    assert [o["name"] for o in entry["execution"]["outputs"]] == ["image", "mask", "label"]
    assert entry["execution"]["dependencies"] == ["torch>=2.1", "numpy>=1.24", "safetensors>=0.4", "pillow>=10"]
    assert result.test.outputs_inferred and gh.created() == []


def test_missing_metadata_lists_every_field_without_prompting(package, tmp_path, monkeypatch):
    (package / "metadata.json").unlink()
    monkeypatch.setattr("builtins.input", lambda prompt: pytest.fail("prompted without interactive=True"))
    with pytest.raises(MetadataError) as err:
        contribute(package, tmp_path, dry_run=True, creator_name=None)
    for key in ("description.title", "description.authors", "selection.modality", "selection.organ",
                "selection.license"):
        assert key in str(err.value)
    assert err.value.step == "metadata"
    # the same, given as arguments, works (string values of list fields are split at commas)
    result = contribute(package, tmp_path, dry_run=True, metadata_fields={**FIELDS, "selection.license": "MIT",
                                                                          "selection.organ": "brain, head"})
    assert result.entry[MODEL_ID]["description"]["authors"] == ["Ada Lovelace"]
    assert result.entry[MODEL_ID]["selection"]["organ"] == ["brain", "head"]


def test_template_values_are_refused(tmp_path):
    folder = init_model("plain", MODEL_ID, tmp_path)
    with pytest.raises(MetadataError) as err:
        Generators().contribute(MODEL_ID, folder, dry_run=True, metadata_fields={"selection.organ": ["brain"]})
    missing = str(err.value).split("Give it")[0]
    assert all(k in missing for k in ("description.title", "description.authors", "selection.modality"))
    assert "selection.organ" not in missing and "selection.license" not in missing


# ---------------------------------------------------------------------------- Zenodo failures
@pytest.mark.parametrize("step, statuses, failed, calls", [
    ("create", [500], "zenodo-create", 1),
    ("create", [403], "zenodo-create", 1),
    ("upload", [500, 500, 500], "zenodo-upload", 4),   # retried twice, then given up
    ("metadata", [400], "zenodo-metadata", 3),
    ("publish", [500], "zenodo-publish", 4),            # never retried
])
def test_each_zenodo_step_failing_says_what_was_done(package, tmp_path, services, github_client, step, statuses, failed,
                                                     calls):
    zen, gh = services
    zen.fail[step].extend(statuses)
    with pytest.raises(ZenodoError) as err:
        contribute(package, tmp_path, publish=True)
    message = str(err.value)
    assert err.value.step == failed and f"failed at step '{failed}'" in message
    assert f"HTTP {statuses[0]}" in message
    assert len(zen.log) == calls
    assert gh.created() == [] and zen.published() == []
    assert zen.token not in message and gh.token not in message
    if step == "create":
        assert "nothing was uploaded or published" in message
        assert "zenodo_deposition_id" not in err.value.state
    else:
        dep_id = next(iter(zen.depositions))
        assert f"created Zenodo draft deposition {dep_id}" in message
        assert f"zenodo_deposition_id={dep_id}" in message and err.value.state["zenodo_deposition_id"] == dep_id
    if step == "metadata":
        assert "metadata.license: Invalid license" in message


def test_resume_a_draft_after_a_failure(package, tmp_path, services, github_client):
    zen, gh = services
    zen.fail["metadata"].append(400)
    with pytest.raises(ZenodoError) as err:
        contribute(package, tmp_path, publish=True)
    dep_id = err.value.state["zenodo_deposition_id"]
    before = len(zen.log)
    result = contribute(package, tmp_path, publish=True, zenodo_deposition_id=dep_id)
    # the rebuilt archive is byte-identical, so it is not uploaded again; no second deposition
    assert zenodo_calls(zen)[before:] == ["GET deposition", "PUT deposition", "POST publish"]
    assert list(zen.depositions) == [dep_id] and result.record_id == dep_id and result.issue_created


def test_upload_retried_after_a_gateway_error(package, tmp_path, services, github_client):
    zen, _ = services
    zen.fail["upload"].append(503)
    result = contribute(package, tmp_path, publish=True)
    assert zenodo_calls(zen).count("PUT bucket") == 2 and result.published


def test_upload_checksum_mismatch(package, tmp_path, services, github_client):
    zen, _ = services
    zen.bad_checksum = True
    with pytest.raises(ZenodoError, match="corrupted") as err:
        contribute(package, tmp_path, publish=True)
    assert err.value.step == "zenodo-upload" and zen.published() == []


def test_token_never_sent_to_another_host(package, tmp_path, services, github_client):
    zen, _ = services
    zen.bucket_base = zen.base.replace("127.0.0.1", "localhost")
    with pytest.raises(ZenodoError, match="another host") as err:
        contribute(package, tmp_path, publish=True)
    assert err.value.step == "zenodo-upload"
    assert zenodo_calls(zen) == ["POST deposition"]


def test_bad_zenodo_token(package, tmp_path, services, github_client, monkeypatch):
    zen, _ = services
    monkeypatch.setenv("ZENODO_ACCESS_TOKEN", "wrong-token-abcdef")
    with pytest.raises(ZenodoError, match="HTTP 401.*ZENODO_ACCESS_TOKEN") as err:
        contribute(package, tmp_path, publish=True)
    assert "wrong-token-abcdef" not in str(err.value) and zen.depositions == {}


# ---------------------------------------------------------------------------- GitHub
def test_duplicate_open_issue_is_not_reopened(package, tmp_path, services, github_client):
    zen, gh = services
    gh.add_issue("Closed: Model contribution: 00150_MY_GAN", state="closed")
    existing = gh.add_issue(f"Model contribution: {MODEL_ID}")
    result = contribute(package, tmp_path, publish=True)
    assert result.issue_url == existing["html_url"] and result.issue_number == existing["number"]
    assert not result.issue_created and not result.published
    assert gh.created() == [] and zen.log == []  # found before anything was uploaded


def test_closed_issue_does_not_count(package, tmp_path, services, github_client):
    _, gh = services
    gh.add_issue(f"Model contribution: {MODEL_ID}", state="closed")
    result = contribute(package, tmp_path, publish=True)
    assert result.issue_created and result.issue_number == 2


def test_open_issue_claiming_the_same_number(package, tmp_path, services, github_client):
    zen, gh = services
    gh.add_issue("Model contribution: 00150_OTHER_GAN")
    with pytest.raises(ModelIdError, match="#1.*number 00150") as err:
        contribute(package, tmp_path, publish=True)
    assert err.value.step == "github-check" and zen.log == []


def test_bad_github_token_is_found_before_upload(package, tmp_path, services, github_client, monkeypatch):
    zen, gh = services
    monkeypatch.setenv("GITHUB_TOKEN", "ghp_wrong_token_zzz")
    with pytest.raises(GitHubError, match="HTTP 401.*GITHUB_TOKEN") as err:
        contribute(package, tmp_path, publish=True)
    assert err.value.step == "github-check" and zen.log == []
    assert "ghp_wrong_token_zzz" not in str(err.value)


def test_unknown_repository(package, tmp_path, services, github_client, monkeypatch):
    monkeypatch.setenv("MEDHUB_GITHUB_REPO", "someone/else")
    with pytest.raises(GitHubError, match="HTTP 404.*someone/else"):
        contribute(package, tmp_path, publish=True)


def test_issue_failure_after_publication_then_issue_only(package, tmp_path, services, github_client):
    zen, gh = services
    gh.fail["create"].append(403)
    with pytest.raises(GitHubError) as err:
        contribute(package, tmp_path, publish=True)
    (dep,) = zen.published()
    link = f"{zen.base}/api/records/{dep['id']}/files/{MODEL_ID}.zip/content"
    message = str(err.value)
    assert err.value.step == "github-issue" and "HTTP 403" in message
    assert f"published Zenodo record {dep['id']}" in message and f'package_link="{link}"' in message
    assert err.value.state["package_link"] == link
    before = len(zen.depositions)
    result = contribute(package, tmp_path, package_link=link)  # issue only: the archive is checked, not re-uploaded
    assert len(zen.depositions) == before and result.issue_created and result.record_id == dep["id"]
    assert issue_entry(json.loads(gh.created()[-1]["body"])["body"])[MODEL_ID]["execution"]["package_link"] == link


def test_package_link_must_match_the_rebuilt_archive(package, tmp_path, services, github_client):
    zen, gh = services
    result = contribute(package, tmp_path, publish=True)
    (package / "README.md").write_text("# changed after publication\n")
    gh.issues.clear()
    with pytest.raises(ContributionError, match="not the one rebuilt"):
        contribute(package, tmp_path, package_link=result.download_url)
    assert len(gh.created()) == 1


# ---------------------------------------------------------------------------- local validation
@pytest.mark.parametrize("model_id, pattern", [
    ("150_MY_GAN", "not a model id"),
    ("00150-MY-GAN", "not a model id"),
    ("00101_OTHER", "number 00101.*00101_DCGAN_BRAIN_MRI_T1"),
    ("00101_DCGAN_BRAIN_MRI_T1", "already taken.*overwrite_existing_metadata"),
])
def test_bad_or_taken_model_id(package, tmp_path, model_id, pattern):
    with pytest.raises(ModelIdError, match=pattern) as err:
        Generators().contribute(model_id, package / "__init__.py", dry_run=True, metadata_fields=FIELDS)
    assert err.value.step == "model-id"


def test_new_version_of_a_catalog_model(package, tmp_path):
    result = Generators().contribute("00101_DCGAN_BRAIN_MRI_T1", package, dry_run=True, metadata_fields=FIELDS,
                                     overwrite_existing_metadata=True, output_path=tmp_path / "out",
                                     creator_name="Ada Lovelace")
    assert "00101_DCGAN_BRAIN_MRI_T1" in result.entry


def test_missing_or_bad_weights(package, tmp_path):
    (package / "weights.safetensors").rename(package / "elsewhere.bin")
    with pytest.raises(ContributionError, match="weights.safetensors is not in the package") as err:
        contribute(package, tmp_path, dry_run=True)
    assert err.value.step == "weights" and "elsewhere.bin" in str(err.value)
    (package / "weights.safetensors").write_bytes(b"version https://git-lfs.github.com/spec/v1\n")
    with pytest.raises(ContributionError, match="not a valid safetensors"):
        contribute(package, tmp_path, dry_run=True)
    (package / "model.pkl").write_bytes(b"\x80\x04pickle")
    with pytest.raises(ContributionError, match="pickle"):
        contribute(package, tmp_path, dry_run=True, model_weights_name="model", model_weights_extension="pkl")


def test_missing_package(tmp_path):
    with pytest.raises(ContributionError, match="__init__.py") as err:
        Generators().contribute(MODEL_ID, tmp_path / "nothing" / "__init__.py", dry_run=True)
    assert err.value.step == "package"


def test_package_failing_its_test(package, tmp_path):
    init = package / "__init__.py"
    source = init.read_text()

    def write(text: str, stamp: int) -> None:  # a new mtime makes medhub import the edited package afresh
        init.write_text(text)
        os.utime(init, (stamp, stamp))

    write(source.replace('return {"image": image.numpy(),', 'return {"image": image.numpy()[:, :16],'), 1_000_000_001)
    with pytest.raises(ModelTestError, match="output 'image' has shape") as err:
        contribute(package, tmp_path, dry_run=True)
    assert err.value.step == "test" and "imported the package" in str(err.value)
    # a medhub/1 package whose samples do not follow their seeds
    write(source.replace("z, labels = draw_inputs(seeds,",
                         "z, labels = draw_inputs([s + torch.randint(9, (1,)).item() for s in seeds],"), 1_000_000_002)
    with pytest.raises(ModelTestError, match="same seeds gave different samples"):
        contribute(package, tmp_path, dry_run=True)
    write("raise ImportError('No module named torchxyz')\n", 1_000_000_003)
    with pytest.raises(ModelTestError, match="torchxyz") as err:
        contribute(package, tmp_path, dry_run=True)
    assert err.value.step == "import"


def test_local_paths_are_made_relative_or_refused(package, tmp_path):
    meta_path = package / "metadata.json"
    meta = json.loads(meta_path.read_text())
    meta[MODEL_ID]["execution"]["weights"] = str(package / "weights.safetensors")
    meta[MODEL_ID]["execution"]["package_link"] = str(package)
    meta_path.write_text(json.dumps(meta))
    result = contribute(package, tmp_path, dry_run=True)
    assert result.entry[MODEL_ID]["execution"]["weights"] == "weights.safetensors"
    assert str(tmp_path) not in json.dumps(result.entry)
    meta[MODEL_ID]["execution"]["generate_method"]["args"]["custom"] = {"lut": str(tmp_path / "outside.npy")}
    meta_path.write_text(json.dumps(meta))
    with pytest.raises(MetadataError, match=r"local paths outside the package at \$.execution.generate_method.args.custom.lut"):
        contribute(package, tmp_path, dry_run=True)
    meta[MODEL_ID]["execution"]["generate_method"]["args"]["custom"] = {}
    meta_path.write_text(json.dumps(meta))
    with pytest.raises(MetadataError, match="local path"):
        contribute(package, tmp_path, dry_run=True, model_description=f"trained with {package}/train.py")
    # a file of the package naming a local path is published inside the archive: a warning
    (package / "train.py").write_text(f"DATA = '{package.parent}/slices'\n")
    assert contribute(package, tmp_path, dry_run=True).warnings == ["files naming local paths of this machine: train.py"]


# ---------------------------------------------------------------------------- facade, CLI, settings
def test_test_model_local_and_catalog(package):
    g = Generators()
    report = g.test_model(MODEL_ID, init_py_path=package / "__init__.py", num_samples=2)
    assert report.interface == "medhub/1" and report.num_samples == 2 and report.reproducible
    assert [o["name"] for o in report.outputs] == ["image", "mask", "label"] and not report.outputs_inferred
    assert g.test_model(101, num_samples=2).outputs[0]["shape"] == [64, 64]
    with pytest.raises(InvalidArgumentError, match="init_py_path"):
        g.test_model("00777_NOT_THERE")


def test_cli_init_model_and_contribute(tmp_path, capsys, services, github_client):
    zen, gh = services
    assert cli_main(["init-model", "my_gan", "--id", MODEL_ID, "-o", str(tmp_path)]) == 0
    folder = tmp_path / "my_gan"
    meta = json.loads((folder / "metadata.json").read_text())
    assert list(meta) == [MODEL_ID] and meta[MODEL_ID]["execution"]["package_name"] == MODEL_ID
    assert (folder / "README.md").read_text().startswith(f"# {MODEL_ID}:")
    assert "00999" not in (folder / "README.md").read_text()
    capsys.readouterr()
    assert cli_main(["init-model", "my_gan", "--id", MODEL_ID, "-o", str(tmp_path)]) == 2  # not empty
    assert cli_main(["init-model", "my_gan2", "-o", str(tmp_path)]) == 2
    assert re.search(r"--id \d{5}_MY_GAN2", capsys.readouterr().err)

    args = ["contribute", MODEL_ID, str(folder / "__init__.py"), "--field", "description.title=My GAN",
            "--field", 'selection.modality=["MRI"]', "--field", "selection.organ=brain", "--creator-name", "Ada Lovelace", "-o", str(tmp_path / "out"),
            "--json"]
    assert cli_main([*args, "--dry-run"]) == 0
    dry = json.loads(capsys.readouterr().out)
    assert dry["dry_run"] and zen.log == [] and gh.log == []
    assert cli_main([*args, "--publish"]) == 0
    done = json.loads(capsys.readouterr().out)
    assert done["published"] and done["issue_created"] and done["sha256"] == dry["sha256"]
    assert done["download_url"].endswith(f"/files/{MODEL_ID}.zip/content")
    assert cli_main(["contribute", "bad", str(folder)]) == 2  # what was typed is wrong: usage (docs/cli.md)
    assert "not a model id" in capsys.readouterr().err


def test_settings_from_arguments_and_environment(monkeypatch):
    monkeypatch.delenv("MEDHUB_ZENODO_URL", raising=False)
    monkeypatch.delenv("MEDHUB_GITHUB_URL", raising=False)
    monkeypatch.delenv("MEDHUB_GITHUB_REPO", raising=False)
    assert zenodo_base_url() == "https://zenodo.org"
    assert zenodo_base_url(sandbox=True) == "https://sandbox.zenodo.org"
    monkeypatch.setenv("MEDHUB_ZENODO_URL", "https://mirror.example/api/")
    assert zenodo_base_url() == "https://mirror.example"
    assert zenodo_base_url("http://127.0.0.1:9") == "http://127.0.0.1:9"
    with pytest.raises(ZenodoError):
        zenodo_base_url("ftp://zenodo.org")
    assert github_settings() == ("https://api.github.com", "medhub-org/medhub")
    monkeypatch.setenv("MEDHUB_GITHUB_URL", "https://ghe.example/api/v3")
    monkeypatch.setenv("MEDHUB_GITHUB_REPO", "lab/models")
    assert github_settings() == ("https://ghe.example/api/v3", "lab/models")
    with pytest.raises(GitHubError):
        github_settings(repo="not a repo")
    assert ids_in_title("Re: 00150_MY_GAN, and 00151_B.") == ["00150_MY_GAN", "00151_B"]
    assert ids_in_title("model 00150_MY_GAN_V2") == ["00150_MY_GAN_V2"]
