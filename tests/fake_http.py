"""A loopback HTTP server for download tests: bytes by path, strong ETags, ``Range``/``If-Range``,
and faults on request (see :class:`Server`). Started and stopped by the ``server`` fixture of conftest."""

from __future__ import annotations

import threading
import time
from collections import defaultdict, deque
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


class Server:
    """A loopback HTTP server serving bytes by path, with strong ETags, ``Range`` and ``If-Range``,
    and per-request modes: ``cut:N`` (send N bytes of the body, then close), ``trickle`` (100 bytes
    every 0.3 s), ``close-delimited`` (no Content-Length), ``ignore-if-range`` (answer ``Range`` with
    206 whatever ``If-Range`` says, as a broken cache would). Counts every connection it accepts."""

    def __init__(self) -> None:
        self.files: dict[str, bytes] = {}
        self.etags: dict[str, str] = {}
        self.modes: dict[str, deque[str]] = defaultdict(deque)
        self.requests: list[tuple[str, dict[str, str]]] = []
        self.connections = 0
        outer = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self) -> None:  # noqa: N802
                path = self.path.split("?", 1)[0]
                outer.requests.append((path, dict(self.headers)))
                mode = outer.modes[path].popleft() if outer.modes[path] else "ok"
                if path not in outer.files:
                    self.send_response(404)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                data, etag = outer.files[path], outer.etags.get(path)
                start, rng, cond = 0, self.headers.get("Range"), self.headers.get("If-Range")
                if rng and rng.startswith("bytes=") and (cond is None or cond == etag or mode == "ignore-if-range"):
                    start = int(rng[6:].rstrip("-"))
                    self.send_response(206)
                    self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
                else:
                    self.send_response(200)
                if etag:
                    self.send_header("ETag", etag)
                body = data[start:]
                if mode == "close-delimited":
                    self.send_header("Connection", "close")
                    self.close_connection = True
                else:
                    self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                try:
                    if mode.startswith("cut:"):
                        self.wfile.write(body[: int(mode[4:])])
                        self.wfile.flush()
                        self.close_connection = True
                    elif mode == "trickle":
                        for k in range(0, len(body), 100):
                            self.wfile.write(body[k : k + 100])
                            self.wfile.flush()
                            time.sleep(0.3)
                    else:
                        self.wfile.write(body)
                except (BrokenPipeError, ConnectionResetError):
                    pass

            def log_message(self, *args: object) -> None:
                pass

        class Counting(ThreadingHTTPServer):
            daemon_threads = True

            def process_request(self, request: Any, client_address: Any) -> None:
                outer.connections += 1
                super().process_request(request, client_address)

        self.httpd = Counting(("127.0.0.1", 0), Handler)
        self.base = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def url(self, path: str) -> str:
        return self.base + path

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
