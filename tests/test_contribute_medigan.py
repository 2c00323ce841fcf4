"""medigan's step-by-step contribution API on medhub's steps, ``install_dependencies`` of the
executor methods, and offline mode for every contribution request.

Against the loopback fake Zenodo and GitHub of tests/fake_publish.py (fixtures of
tests/test_contribute.py) and a loopback listener that counts connections. No internet.
"""

from __future__ import annotations

import hashlib
import json
import socket
import threading
import time

import pytest
import test_contribute as shared
from test_contribute import FIELDS, MODEL_ID, issue_entry, zenodo_calls

from medhub import Generators
from medhub.cli import main as cli_main
from medhub.contribute import ModelContributor, OfflineModeError
from medhub.contribute.github import IssueTracker
from medhub.contribute.zenodo import ZenodoUploader
from medhub.errors import ContributionError, InvalidArgumentError, ModelIdError

pytest.importorskip("torch")
pytest.importorskip("safetensors")

package, services, github_client = shared.package, shared.services, shared.github_client  # the same fixtures


# ---------------------------------------------------------------------------- medigan's step-by-step API
def test_medigan_step_by_step_contribution(package, tmp_path, services, github_client):
    zen, gh = services
    g = Generators()
    contributor = g.add_model_contributor(MODEL_ID, str(package / "__init__.py"))
    assert isinstance(contributor, ModelContributor) and g.model_contributors == [contributor]
    assert g.add_model_contributor(MODEL_ID, "elsewhere/__init__.py") is contributor  # the one added before
    assert g.get_model_contributor_by_id(150) is contributor and g.get_model_contributor_by_id("00151_X") is None

    metadata = g.add_metadata_from_file(MODEL_ID, str(package / "metadata.json"))
    assert list(metadata) == [MODEL_ID] and metadata[MODEL_ID]["description"]["title"] == FIELDS["description.title"]
    assert g.is_model_metadata_valid(MODEL_ID, metadata)
    assert not g.is_model_metadata_valid(MODEL_ID, metadata, is_local_model=False)  # no download URL yet
    assert not g.is_model_metadata_valid("00151_OTHER", metadata)  # no entry for that id

    # in this process's catalog, run from the contributor's folder; test_model tests the contributor's package
    assert g.add_model_to_config(MODEL_ID, metadata)
    assert not g.add_model_to_config(MODEL_ID, metadata)  # already there, not overwritten
    assert g.test_model(MODEL_ID, num_samples=2).reproducible
    images = g.generate(MODEL_ID, num_samples=2, save_images=False, seed=0)
    assert len(images) == 2 and images[0][0].shape == (32, 32)
    assert MODEL_ID not in Generators().list_models()  # nothing written into a catalog file

    # medigan's placeholder texts count as not given; the token comes from ZENODO_ACCESS_TOKEN
    record_url = g.push_to_zenodo(MODEL_ID, None, creator_name="Ada Lovelace")
    (dep,) = zen.published()
    assert record_url == f"{zen.base}/records/{dep['id']}"
    assert zenodo_calls(zen) == ["POST deposition", "PUT bucket", "PUT deposition", "POST publish"]
    assert dep["metadata"]["creators"][0] == {"name": "Ada Lovelace"} and "unknown" not in json.dumps(dep["metadata"])
    stored = dep["files"][f"{MODEL_ID}.zip"]

    # medigan passes the record page on as package_link: the issue gets the download URL and the pin
    calls = len(zen.log)
    issue_url = g.push_to_github(MODEL_ID, None, package_link=record_url, model_description="A tiny GAN.")
    (post,) = gh.created()
    assert issue_url == gh.issues[0]["html_url"] and len(zen.log) == calls  # its own archive: not downloaded again
    body = json.loads(post["body"])["body"]
    execution = issue_entry(body)[MODEL_ID]["execution"]
    assert execution["package_link"] == f"{zen.base}/api/records/{dep['id']}/files/{MODEL_ID}.zip/content"
    assert execution["sha256"] == hashlib.sha256(stored).hexdigest() and execution["size"] == len(stored)
    assert "A tiny GAN." in body and str(tmp_path) not in body
    assert g.push_to_github(MODEL_ID, None) == issue_url and len(gh.created()) == 1  # the open issue, no second


def test_metadata_from_input_asks_for_missing_fields_and_writes_the_file(package, tmp_path, monkeypatch):
    (package / "metadata.json").unlink()
    answers = iter(["My GAN", "Ada Lovelace", "MRI", "brain", "MIT"])
    monkeypatch.setattr("builtins.input", lambda prompt: next(answers))
    g = Generators()
    g.add_model_contributor(MODEL_ID, package / "__init__.py")
    metadata = g.add_metadata_from_input(MODEL_ID, "weights", ".safetensors", "generate", ["torch>=2.1"],
                                         output_path=tmp_path / "config")
    entry = metadata[MODEL_ID]
    assert entry["execution"]["weights"] == "weights.safetensors" and entry["execution"]["dependencies"] == ["torch>=2.1"]
    assert entry["description"]["authors"] == ["Ada Lovelace"] and entry["selection"]["license"] == "MIT"
    assert json.loads((tmp_path / "config" / f"{MODEL_ID}.json").read_text()) == metadata
    # without asking, the missing fields are left for the publication step to require
    monkeypatch.setattr("builtins.input", lambda prompt: pytest.fail("asked although told not to"))
    other = Generators()
    other.add_model_contributor(MODEL_ID, package)
    bare = other.add_metadata_from_input(MODEL_ID, "weights", "safetensors", None, [], False, tmp_path / "cfg")
    assert bare[MODEL_ID]["description"]["authors"] == []
    with pytest.raises(ContributionError, match="weights.pt is not in the package") as err:
        other.add_metadata_from_input(MODEL_ID, "weights", ".pt", None, [], False, tmp_path / "cfg")
    assert err.value.step == "weights"


def test_medigan_metadata_format_is_converted():
    metadata = {"00150_MY_GAN": {
        "execution": {"package_link": "https://zenodo.org/record/1/files/a.zip?download=1", "package_name": "a",
                      "model_name": "500", "extension": ".pt", "dependencies": ["numpy", "path"],
                      "generate_method": {"name": "generate", "args": {"base": ["model_file"], "custom": {}}}},
        "selection": {"performance": {"SSIM": None}}, "description": {"title": "A GAN"}}}
    g = Generators()
    assert g.is_model_metadata_valid("00150_MY_GAN", metadata, is_local_model=False)
    assert g.add_model_to_config("00150_MY_GAN", metadata, is_local_model=False, store_new_config=True)
    execution = g.get_config_by_id("00150_MY_GAN", "execution")
    assert execution["interface"] == "medigan" and execution["dependencies"] == ["numpy"]
    shipped = {"00101_DCGAN_BRAIN_MRI_T1": g.get_config_by_id(101)}
    assert not g.add_model_to_config("00101_DCGAN_BRAIN_MRI_T1", shipped)  # not local: needs a download URL
    assert not g.add_model_to_config("00101_DCGAN_BRAIN_MRI_T1", shipped, True)  # taken
    g.get_model_executor(101)
    assert g.add_model_to_config("00101_DCGAN_BRAIN_MRI_T1", shipped, True, overwrite_existing_metadata=True)
    assert g.find_model_executor_by_id(101) is None  # the executor of the replaced entry is dropped


def test_steps_need_a_contributor_and_a_publication(package, tmp_path, services, github_client):
    g = Generators()
    with pytest.raises(ContributionError, match=r"add_model_contributor\('00150_MY_GAN', init_py_path\) first"):
        g.add_metadata_from_file(MODEL_ID, package)
    with pytest.raises(InvalidArgumentError, match="needs init_py_path"):
        g.add_model_contributor(MODEL_ID)
    with pytest.raises(ModelIdError, match="not a model id"):
        g.add_model_contributor("150_GAN", package)
    with pytest.raises(ContributionError, match="__init__.py") as err:
        g.add_model_contributor(MODEL_ID, tmp_path / "nothing")
    assert err.value.step == "package" and g.model_contributors == []
    g.add_model_contributor(MODEL_ID, package)
    with pytest.raises(ContributionError, match="run push_to_zenodo first, or pass package_link") as err:
        g.push_to_github(MODEL_ID, None)
    assert err.value.step == "github-issue" and services[1].created() == []
    # the id is checked against the catalog when publishing
    g.add_model_contributor("00101_TAKEN", package)
    with pytest.raises(ModelIdError, match="number 00101") as err:
        g.push_to_zenodo("00101_TAKEN", None)
    assert services[0].log == []


# ---------------------------------------------------------------------------- install_dependencies
def test_install_dependencies_of_the_executor_methods(monkeypatch):
    calls = []
    monkeypatch.setattr("medhub.execution.deps.ensure_dependencies",
                        lambda model_id, requirements, install=False: calls.append((model_id, requirements, install)))
    g = Generators()
    g.add_model_executor(101)
    g.get_model_executor(101)
    assert calls == []  # nothing installed unless asked
    g.add_model_executor(101, True)  # medigan's positional form
    executor = g.get_model_executor(101, install_dependencies=True)  # also for an executor that exists
    deps = g.get_config_by_id(101, "execution.dependencies")
    assert calls == [("00101_DCGAN_BRAIN_MRI_T1", deps, True)] * 2 and deps
    assert g.get_model_executor(101) is executor and len(g) == 1


# ---------------------------------------------------------------------------- offline mode
@pytest.fixture
def listener():
    """A loopback TCP listener that counts the connections made to it: (its URL, the count)."""
    sock = socket.create_server(("127.0.0.1", 0))
    sock.settimeout(0.05)
    count, stop = [0], threading.Event()

    def serve() -> None:
        while not stop.is_set():
            try:
                conn, _ = sock.accept()
            except TimeoutError:
                continue
            count[0] += 1
            conn.close()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{sock.getsockname()[1]}", count
    stop.set()
    thread.join()
    sock.close()


@pytest.fixture
def offline(listener, monkeypatch, github_client):
    """Zenodo and GitHub pointed at the counting listener, tokens set, MEDHUB_OFFLINE=1."""
    url, count = listener
    monkeypatch.setenv("MEDHUB_ZENODO_URL", url)
    monkeypatch.setenv("MEDHUB_GITHUB_URL", f"{url}/api/v3")
    monkeypatch.setenv("ZENODO_ACCESS_TOKEN", "zenodo-token")
    monkeypatch.setenv("GITHUB_TOKEN", "github-token")
    monkeypatch.setenv("MEDHUB_OFFLINE", "1")
    return url, count


def connections(count: list[int]) -> int:
    time.sleep(0.2)  # a connection that was made has been accepted by now
    return count[0]


def test_offline_contribute_fails_before_any_request(package, tmp_path, offline, monkeypatch, capsys):
    url, count = offline
    for kwargs in ({"publish": True}, {}, {"package_link": f"{url}/api/records/1/files/{MODEL_ID}.zip/content"}):
        with pytest.raises(OfflineModeError, match="Offline mode is on") as err:
            Generators().contribute(MODEL_ID, package, creator_name="Ada", output_path=tmp_path / "out", **kwargs)
        assert err.value.step == "tokens" and "\n" not in str(err.value) and "Already done: nothing" in str(err.value)
    assert not (tmp_path / "out").exists()  # failed before any work
    code = cli_main(["contribute", MODEL_ID, str(package), "--publish", "--creator-name", "Ada", "-o",
                     str(tmp_path / "cli")])
    err_text = capsys.readouterr().err
    assert code == 1 and err_text.count("\n") == 1 and "Offline mode is on (MEDHUB_OFFLINE=1)" in err_text
    # a dry run needs no network: it works offline
    assert Generators().contribute(MODEL_ID, package, dry_run=True, creator_name="Ada", output_path=tmp_path / "dry").dry_run
    assert connections(count) == 0


def test_offline_steps_and_clients_make_no_connection(package, offline):
    url, count = offline
    g = Generators()
    g.add_model_contributor(MODEL_ID, package)
    with pytest.raises(OfflineModeError):
        g.push_to_zenodo(MODEL_ID, None)
    with pytest.raises(OfflineModeError):
        g.push_to_github(MODEL_ID, None, package_link=f"{url}/api/records/1/files/x.zip/content")
    with pytest.raises(OfflineModeError):
        ZenodoUploader("zenodo-token", url).create_deposition()
    with pytest.raises(OfflineModeError):
        IssueTracker("github-token", f"{url}/api/v3", "lab/models").open_issues_for(MODEL_ID)
    assert connections(count) == 0


def test_the_listener_counts_connections(listener):
    """The counter the offline tests rely on sees a real connection."""
    url, count = listener
    with socket.create_connection(("127.0.0.1", int(url.rsplit(":", 1)[1])), timeout=2):
        pass
    assert connections(count) == 1


def test_zenodo_request_goes_out_when_online(listener, monkeypatch):
    """Without MEDHUB_OFFLINE the same client call does connect (so the offline tests would fail without it)."""
    url, count = listener
    monkeypatch.delenv("MEDHUB_OFFLINE", raising=False)
    with pytest.raises(ContributionError):
        ZenodoUploader("zenodo-token", url, retries=0).create_deposition()
    assert connections(count) >= 1
