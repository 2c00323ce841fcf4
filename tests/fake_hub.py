"""A small Hugging Face Hub stand-in: a real HTTP server on 127.0.0.1 answering what
``huggingface_hub.snapshot_download`` asks (pointed at with ``HF_ENDPOINT``).

Answered:

* ``GET /api/models/<owner>/<repo>[/revision/<rev>]``: model info with the commit ``sha`` and
  ``siblings`` (how a branch or tag becomes a commit);
* ``GET /api/models/<owner>/<repo>/tree/<rev>[/<path>]``: the recursive file listing, with the git
  blob ``oid`` of each file and, for weights (``*.safetensors``, ``*.pt``, ``*.pth``), the ``lfs``
  sha256 as the real Hub lists LFS files;
* ``HEAD`` / ``GET /<owner>/<repo>/resolve/<rev>/<path>``: the file, with ``X-Repo-Commit``,
  ``ETag``, ``Content-Length`` (and ``Range``).

Errors as the Hub gives them: an unknown repository is ``404`` with ``X-Error-Code: RepoNotFound``,
an unknown revision ``404`` ``RevisionNotFound``, a missing file ``404`` ``EntryNotFound``, a gated
repository without the right ``Authorization: Bearer`` token ``401`` ``GatedRepo``. Every request
is logged (method, path, whether a token was sent) so tests can check that offline runs make none.
"""

from __future__ import annotations

import hashlib
import json
import re
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import unquote, urlsplit

_LFS = (".safetensors", ".pt", ".pth", ".bin")
_INFO = re.compile(r"^/api/models/([^/]+/[^/]+)(?:/revision/([^/]+))?$")
_TREE = re.compile(r"^/api/models/([^/]+/[^/]+)/tree/([^/]+)(?:/(.*))?$")
_RESOLVE = re.compile(r"^/([^/]+/[^/]+)/resolve/([^/]+)/(.+)$")


def blob_id(data: bytes) -> str:
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


@dataclass
class Repo:
    commits: dict[str, dict[str, bytes]] = field(default_factory=dict)
    refs: dict[str, str] = field(default_factory=dict)
    token: str | None = None  # gated: this token is needed


class FakeHub:
    """``add(repo_id, files)`` publishes a commit (returned); ``url`` is the ``HF_ENDPOINT``."""

    def __init__(self) -> None:
        self.repos: dict[str, Repo] = {}
        self.log: list[tuple[str, str, bool]] = []
        #: (repo_id, path) -> bytes served by ``resolve`` instead of the listed ones (a damaged transfer)
        self.corrupt: dict[tuple[str, str], bytes] = {}
        self.lock = threading.Lock()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: object) -> None:
                pass

            def do_HEAD(self) -> None:  # noqa: N802
                outer.answer(self, head=True)

            def do_GET(self) -> None:  # noqa: N802
                outer.answer(self, head=False)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05},
                                       daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def start(self) -> FakeHub:
        self.thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    # ------------------------------------------------------------------ content
    def add(self, repo_id: str, files: dict[str, bytes], branch: str = "main", token: str | None = None) -> str:
        """Publish ``files`` as a new commit of ``repo_id`` on ``branch``; returns the commit hash."""
        listing = "".join(f"{p}:{hashlib.sha256(d).hexdigest()}\n" for p, d in sorted(files.items()))
        commit = hashlib.sha1(f"{repo_id}|{branch}|{listing}".encode()).hexdigest()
        with self.lock:
            repo = self.repos.setdefault(repo_id, Repo())
            repo.commits[commit] = dict(files)
            repo.refs[branch] = commit
            repo.token = token
        return commit

    @staticmethod
    def folder_files(folder: Path) -> dict[str, bytes]:
        """Every file under ``folder`` by repository path."""
        return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}

    def requests(self, kind: str = "") -> list[tuple[str, str, bool]]:
        with self.lock:
            return [r for r in self.log if kind in r[1]]

    # ------------------------------------------------------------------ HTTP
    def _send(self, h: BaseHTTPRequestHandler, status: int, body: bytes = b"", headers: dict[str, str] | None = None,
              head: bool = False, content_type: str = "application/json") -> None:
        h.send_response(status)
        h.send_header("Content-Type", content_type)
        for k, v in (headers or {}).items():
            h.send_header(k, v)
        h.send_header("Content-Length", str(len(body)))
        h.end_headers()
        if not head:
            h.wfile.write(body)

    def _error(self, h: BaseHTTPRequestHandler, status: int, code: str, head: bool) -> None:
        body = json.dumps({"error": code}).encode()
        self._send(h, status, body, {"X-Error-Code": code, "X-Error-Message": code}, head)

    def _commit(self, h: BaseHTTPRequestHandler, repo_id: str, revision: str, head: bool
                ) -> tuple[Repo, str] | None:
        with self.lock:
            repo = self.repos.get(repo_id)
        if repo is None:
            self._error(h, 401, "RepoNotFound", head)  # the Hub answers 401 for unknown or private repos
            return None
        if repo.token and h.headers.get("Authorization") != f"Bearer {repo.token}":
            self._error(h, 401, "GatedRepo", head)
            return None
        commit = repo.refs.get(revision, revision)
        if commit not in repo.commits:
            self._error(h, 404, "RevisionNotFound", head)
            return None
        return repo, commit

    def answer(self, h: BaseHTTPRequestHandler, head: bool) -> None:
        path = unquote(urlsplit(h.path).path)
        with self.lock:
            self.log.append((h.command, path, bool(h.headers.get("Authorization"))))
        if m := _TREE.match(path):
            found = self._commit(h, m.group(1), m.group(2), head)
            if found is None:
                return
            repo, commit = found
            prefix = (m.group(3) or "").strip("/")
            files = {p: d for p, d in repo.commits[commit].items() if not prefix or p.startswith(prefix + "/")}
            entries, folders = [], set()
            for p, d in sorted(files.items()):
                parts = p.split("/")
                for i in range(1, len(parts)):
                    folders.add("/".join(parts[:i]))
                entry = {"type": "file", "path": p, "size": len(d), "oid": blob_id(d)}
                if p.endswith(_LFS):
                    entry["lfs"] = {"oid": hashlib.sha256(d).hexdigest(), "size": len(d), "pointerSize": 134}
                entries.append(entry)
            entries += [{"type": "directory", "path": f, "size": 0, "oid": hashlib.sha1(f.encode()).hexdigest()}
                        for f in sorted(folders)]
            self._send(h, 200, json.dumps(entries).encode(), head=head)
            return
        if m := _INFO.match(path):
            found = self._commit(h, m.group(1), m.group(2) or "main", head)
            if found is None:
                return
            repo, commit = found
            info = {"id": m.group(1), "modelId": m.group(1), "sha": commit, "private": False,
                    "gated": "auto" if repo.token else False,
                    "siblings": [{"rfilename": p} for p in sorted(repo.commits[commit])]}
            self._send(h, 200, json.dumps(info).encode(), head=head)
            return
        if m := _RESOLVE.match(path):
            found = self._commit(h, m.group(1), m.group(2), head)
            if found is None:
                return
            repo, commit = found
            data = self.corrupt.get((m.group(1), m.group(3)), repo.commits[commit].get(m.group(3)))
            if data is None:
                self._send(h, 404, b"{}", {"X-Error-Code": "EntryNotFound", "X-Repo-Commit": commit}, head)
                return
            etag = hashlib.sha256(data).hexdigest() if m.group(3).endswith(_LFS) else blob_id(data)
            headers = {"X-Repo-Commit": commit, "ETag": f'"{etag}"', "Accept-Ranges": "bytes"}
            status, body = 200, data
            rng = h.headers.get("Range")
            if rng and (r := re.match(r"bytes=(\d+)-(\d*)$", rng)):
                start = int(r.group(1))
                end = int(r.group(2)) if r.group(2) else len(data) - 1
                body = data[start:end + 1]
                status = 206
                headers["Content-Range"] = f"bytes {start}-{start + len(body) - 1}/{len(data)}"
            self._send(h, status, body, headers, head, content_type="application/octet-stream")
            return
        self._send(h, 404, b'{"error": "not found"}', head=head)
