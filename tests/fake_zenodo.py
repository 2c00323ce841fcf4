"""A small Zenodo stand-in: a real HTTP server on 127.0.0.1 serving package archives.

Both of Zenodo's download URL forms work: ``/record/<id>/files/<name>?download=1`` answers with a
redirect to ``/api/records/<id>/files/<name>/content``, which serves the bytes (with ``Range``).
Each file can be given a queue of behaviours for its next requests: ``"ok"``, ``"500"``,
``"404"``, ``"truncate"`` (announce the full length, send half, close), ``"hang"`` (sleep before
answering). ``slow`` (seconds per 64 KiB) throttles every transfer.
"""

from __future__ import annotations

import re
import threading
import time
from collections import defaultdict, deque
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

_CONTENT = re.compile(r"^/api/records/(\d+)/files/([^/]+)/content$")
_RECORD = re.compile(r"^/record/(\d+)/files/([^/?]+)$")


class FakeZenodo:
    def __init__(self) -> None:
        self.files: dict[str, bytes] = {}
        self.behaviour: dict[str, deque[str]] = defaultdict(deque)
        self.slow = 0.0
        self.hang_s = 3.0
        self.log: list[tuple[str, str | None]] = []  # (path, Range header) of content requests
        self.lock = threading.Lock()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self) -> None:  # noqa: N802
                path = self.path.split("?", 1)[0]
                record = _RECORD.match(path)
                if record:
                    self.send_response(302)
                    self.send_header("Location", f"/api/records/{record.group(1)}/files/{record.group(2)}/content")
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                match = _CONTENT.match(path)
                name = match.group(2) if match else None
                with outer.lock:
                    outer.log.append((path, self.headers.get("Range")))
                    action = outer.behaviour[name].popleft() if name and outer.behaviour[name] else "ok"
                if not match or name not in outer.files or action == "404":
                    self._plain(404, b"not found")
                    return
                if action == "500":
                    self._plain(500, b"server error")
                    return
                if action == "hang":
                    time.sleep(outer.hang_s)
                data = outer.files[name]
                start = 0
                rng = self.headers.get("Range")
                if rng and (m := re.match(r"bytes=(\d+)-$", rng)) and int(m.group(1)) < len(data):
                    start = int(m.group(1))
                    self.send_response(206)
                    self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
                else:
                    self.send_response(200)
                self.send_header("Content-Type", "application/octet-stream")
                self.send_header("Content-Length", str(len(data) - start))
                self.send_header("Accept-Ranges", "bytes")
                self.end_headers()
                body = data[start:]
                if action == "truncate":
                    body = body[: len(body) // 2]
                try:
                    for k in range(0, len(body), 65536):
                        self.wfile.write(body[k : k + 65536])
                        self.wfile.flush()
                        if outer.slow:
                            time.sleep(outer.slow)
                except (BrokenPipeError, ConnectionResetError):
                    return
                if action == "truncate":
                    self.close_connection = True

            def _plain(self, status: int, body: bytes) -> None:
                self.send_response(status)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.base = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self._thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def start(self) -> FakeZenodo:
        self._thread.start()
        return self

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()

    def record_url(self, name: str, record: int = 7031735) -> str:
        return f"{self.base}/record/{record}/files/{name}?download=1"

    def api_url(self, name: str, record: int = 7031735) -> str:
        return f"{self.base}/api/records/{record}/files/{name}/content"

    def content_requests(self, name: str) -> list[str | None]:
        return [r for p, r in self.log if p.endswith(f"/{name}/content")]
