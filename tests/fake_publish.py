"""Loopback stand-ins for the services a model contribution talks to: Zenodo's deposit API and
GitHub's issues API, each a real HTTP server on 127.0.0.1 with real-shaped answers and status codes.

FakeZenodoDeposit: ``POST /api/deposit/depositions`` (201), ``GET /api/deposit/depositions/<id>``
(200), ``PUT /api/files/<bucket>/<name>`` (201, ``checksum: "md5:..."``), ``PUT
/api/deposit/depositions/<id>`` (200), ``POST .../actions/publish`` (202) and, for published files,
``GET /api/records/<id>/files/<name>/content`` (200, no token needed).

FakeGitHub: ``GET /api/v3/repos/<owner>/<repo>``, ``GET .../issues?state=open``,
``GET .../issues/<n>``, ``POST .../issues`` (201), as PyGithub calls them with
``base_url="http://127.0.0.1:PORT/api/v3"``.

Both check the token in the ``Authorization`` header (401 otherwise), record every request
(method, path, headers, body) in ``log``, and take a queue of failure statuses per step in
``fail`` (e.g. ``fake.fail["upload"] = [500, 500, 500]``).
"""

from __future__ import annotations

import hashlib
import json
import re
import threading
import uuid
from collections import defaultdict, deque
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


class _Server:
    token = ""
    auth_schemes: tuple[str, ...] = ("Bearer",)

    def __init__(self) -> None:
        self.log: list[dict[str, Any]] = []
        self.fail: dict[str, deque[int]] = defaultdict(deque)
        self.lock = threading.Lock()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True  # headers and body go out at once: no 40 ms delayed-ACK stalls

            def _handle(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                with outer.lock:
                    outer.log.append({"method": self.command, "path": self.path, "headers": dict(self.headers),
                                      "body": body})
                status, payload, headers = outer.route(self.command, self.path, dict(self.headers), body)
                data = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/octet-stream" if isinstance(payload, bytes)
                                 else "application/json")
                self.send_header("Content-Length", str(len(data)))
                for key, value in (headers or {}).items():
                    self.send_header(key, value)
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = do_PUT = do_DELETE = _handle  # noqa: N815

            def log_message(self, *args: object) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.base = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self._thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)

    def start(self):
        self._thread.start()
        return self

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()

    def authorized(self, headers: dict[str, str]) -> bool:
        auth = headers.get("Authorization", "")
        return any(auth == f"{scheme} {self.token}" for scheme in self.auth_schemes)

    def failure(self, step: str) -> int | None:
        with self.lock:
            return self.fail[step].popleft() if self.fail[step] else None

    def route(self, method: str, path: str, headers: dict[str, str], body: bytes) -> tuple[int, Any, dict | None]:
        raise NotImplementedError


class FakeZenodoDeposit(_Server):
    def __init__(self, token: str = "zenodo-secret-token-123") -> None:
        super().__init__()
        self.token = token
        self.depositions: dict[int, dict[str, Any]] = {}
        self.buckets: dict[str, int] = {}
        self.next_id = 7031801
        self.bad_checksum = False
        self.bucket_base: str | None = None  # another origin for the bucket links, to test the host check

    def _deposition_json(self, dep: dict[str, Any]) -> dict[str, Any]:
        dep_id = dep["id"]
        api = f"{self.base}/api/deposit/depositions/{dep_id}"
        doc = {
            "created": "2026-11-24T10:00:00+00:00", "modified": "2026-11-24T10:00:00+00:00",
            "id": dep_id, "conceptrecid": str(dep_id - 1), "owner": 42, "title": dep["metadata"].get("title", ""),
            "doi": dep.get("doi", ""), "doi_url": f"https://doi.org/{dep.get('doi', '')}",
            "metadata": {"prereserve_doi": {"doi": f"10.5072/zenodo.{dep_id}", "recid": dep_id}, **dep["metadata"]},
            "files": [{"id": str(uuid.uuid5(uuid.NAMESPACE_URL, name)), "filename": name, "filesize": len(data),
                       "checksum": hashlib.md5(data).hexdigest(),
                       "links": {"self": f"{api}/files/{name}", "download": f"{self.base}/api/files/{dep['bucket']}/{name}"}}
                      for name, data in dep["files"].items()],
            "links": {"self": api, "html": f"{self.base}/deposit/{dep_id}",
                      "bucket": f"{self.bucket_base or self.base}/api/files/{dep['bucket']}",
                      "publish": f"{api}/actions/publish", "edit": f"{api}/actions/edit",
                      "discard": f"{api}/actions/discard", "files": f"{api}/files"},
            "record_id": dep_id, "state": "done" if dep["submitted"] else "unsubmitted", "submitted": dep["submitted"],
        }
        if dep["submitted"]:
            doc["links"].update(record=f"{self.base}/api/records/{dep_id}", record_html=f"{self.base}/records/{dep_id}",
                                latest=f"{self.base}/api/records/{dep_id}/versions/latest",
                                doi=f"https://doi.org/10.5072/zenodo.{dep_id}")
        return doc

    @staticmethod
    def _error(status: int, message: str, errors: list[dict] | None = None) -> tuple[int, Any, None]:
        doc: dict[str, Any] = {"status": status, "message": message}
        if errors:
            doc["errors"] = errors
        return status, doc, None

    def route(self, method: str, path: str, headers: dict[str, str], body: bytes) -> tuple[int, Any, dict | None]:
        path = path.split("?", 1)[0]
        content = re.match(r"^/api/records/(\d+)/files/([^/]+)/content$", path)
        if method == "GET" and content:  # public downloads need no token
            dep = self.depositions.get(int(content.group(1)))
            if not dep or not dep["submitted"] or content.group(2) not in dep["files"]:
                return self._error(404, "The persistent identifier does not exist.")
            return 200, dep["files"][content.group(2)], None
        if not self.authorized(headers):
            return self._error(401, "The server could not verify that you are authorized to access the URL requested.")
        if method == "POST" and path == "/api/deposit/depositions":
            if status := self.failure("create"):
                return self._error(status, "Internal server error" if status >= 500 else "Forbidden")
            dep_id, self.next_id = self.next_id, self.next_id + 1
            bucket = str(uuid.uuid4())
            self.depositions[dep_id] = {"id": dep_id, "bucket": bucket, "files": {}, "metadata": {}, "submitted": False}
            self.buckets[bucket] = dep_id
            return 201, self._deposition_json(self.depositions[dep_id]), None
        m = re.match(r"^/api/deposit/depositions/(\d+)$", path)
        if m and int(m.group(1)) in self.depositions:
            dep = self.depositions[int(m.group(1))]
            if method == "GET":
                return 200, self._deposition_json(dep), None
            if method == "PUT":
                if status := self.failure("metadata"):
                    return self._error(status, "Validation error.", [{"field": "metadata.license",
                                                                      "message": "Invalid license."}])
                meta = json.loads(body or b"{}").get("metadata") or {}
                missing = [k for k in ("upload_type", "title", "creators", "description") if not meta.get(k)]
                if missing:
                    return self._error(400, "Validation error.", [{"field": f"metadata.{k}",
                                                                   "message": "Field is required."} for k in missing])
                dep["metadata"] = meta
                return 200, self._deposition_json(dep), None
        m = re.match(r"^/api/deposit/depositions/(\d+)/actions/publish$", path)
        if m and method == "POST" and int(m.group(1)) in self.depositions:
            dep = self.depositions[int(m.group(1))]
            if status := self.failure("publish"):
                return self._error(status, "Internal server error" if status >= 500 else "Validation error.")
            if not dep["files"]:
                return self._error(400, "Validation error.", [{"message": "Minimum one file must be provided."}])
            if not dep["metadata"]:
                return self._error(400, "Validation error.", [{"field": "metadata.title", "message": "Required."}])
            dep["submitted"], dep["doi"] = True, f"10.5072/zenodo.{dep['id']}"
            return 202, self._deposition_json(dep), None
        m = re.match(r"^/api/files/([0-9a-f-]+)/([^/]+)$", path)
        if m and method == "PUT" and m.group(1) in self.buckets:
            if status := self.failure("upload"):
                return self._error(status, "Internal server error" if status >= 500 else "Bad request")
            dep = self.depositions[self.buckets[m.group(1)]]
            dep["files"][m.group(2)] = body
            md5 = hashlib.md5(b"corrupted" if self.bad_checksum else body).hexdigest()
            return 201, {"key": m.group(2), "mimetype": "application/zip", "checksum": f"md5:{md5}",
                         "version_id": str(uuid.uuid4()), "size": len(body), "created": "2026-11-24T10:00:01+00:00",
                         "updated": "2026-11-24T10:00:01+00:00", "is_head": True, "delete_marker": False,
                         "links": {"self": f"{self.base}{path}", "version": f"{self.base}{path}?versionId=1",
                                   "uploads": f"{self.base}{path}?uploads"}}, None
        return self._error(404, "The requested URL was not found on the server.")

    def published(self) -> list[dict[str, Any]]:
        return [d for d in self.depositions.values() if d["submitted"]]


class FakeGitHub(_Server):
    auth_schemes = ("token", "Bearer")

    def __init__(self, token: str = "ghp_secret_token_456", repo: str = "medhub-org/medhub") -> None:
        super().__init__()
        self.token = token
        self.repo = repo
        self.issues: list[dict[str, Any]] = []

    @property
    def api(self) -> str:
        return f"{self.base}/api/v3"

    def add_issue(self, title: str, body: str = "", state: str = "open", pull_request: bool = False) -> dict[str, Any]:
        number = len(self.issues) + 1
        kind = "pull" if pull_request else "issues"
        issue = {"id": 1000 + number, "number": number, "title": title, "body": body, "state": state,
                 "url": f"{self.api}/repos/{self.repo}/issues/{number}",
                 "html_url": f"https://github.example/{self.repo}/{kind}/{number}",
                 "labels": [], "user": {"login": "someone", "id": 7}, "comments": 0,
                 "created_at": "2026-11-24T10:00:00Z", "updated_at": "2026-11-24T10:00:00Z"}
        if pull_request:
            issue["pull_request"] = {"url": f"{self.api}/repos/{self.repo}/pulls/{number}"}
        self.issues.append(issue)
        return issue

    def route(self, method: str, path: str, headers: dict[str, str], body: bytes) -> tuple[int, Any, dict | None]:
        if not self.authorized(headers):
            return 401, {"message": "Bad credentials", "documentation_url": "https://docs.github.com/rest"}, None
        route, _, query = path.partition("?")
        prefix = f"/api/v3/repos/{self.repo}"
        if not route.startswith(prefix + "/") and route != prefix:
            return 404, {"message": "Not Found", "documentation_url": "https://docs.github.com/rest"}, None
        rest = route[len(prefix):]
        if method == "GET" and rest == "":
            if status := self.failure("repo"):
                return status, {"message": "Server Error"}, None
            owner, name = self.repo.split("/")
            return 200, {"id": 1, "name": name, "full_name": self.repo, "private": False,
                         "owner": {"login": owner, "id": 2, "type": "Organization"},
                         "url": f"{self.api}/repos/{self.repo}", "html_url": f"https://github.example/{self.repo}",
                         "issues_url": f"{self.api}/repos/{self.repo}/issues{{/number}}", "has_issues": True}, None
        if method == "GET" and rest == "/issues":
            if status := self.failure("list"):
                return status, {"message": "Server Error"}, None
            state = dict(p.split("=", 1) for p in query.split("&") if "=" in p).get("state", "open")
            return 200, [i for i in self.issues if state == "all" or i["state"] == state], None
        m = re.match(r"^/issues/(\d+)$", rest)
        if method == "GET" and m and 0 < int(m.group(1)) <= len(self.issues):
            return 200, self.issues[int(m.group(1)) - 1], None
        if method == "POST" and rest == "/issues":
            if status := self.failure("create"):
                message = "Resource not accessible by personal access token" if status == 403 else "Server Error"
                return status, {"message": message}, None
            doc = json.loads(body)
            if not doc.get("title"):
                return 422, {"message": "Validation Failed", "errors": [{"field": "title", "code": "missing_field"}]}, None
            issue = self.add_issue(doc["title"], doc.get("body", ""))
            issue["labels"] = [{"name": n} for n in doc.get("labels", [])]
            return 201, issue, None
        return 404, {"message": "Not Found"}, None

    def created(self) -> list[dict[str, Any]]:
        return [entry for entry in self.log if entry["method"] == "POST"]
