"""Benchmark: verified package download on loopback against a plain copy of the same archive.

Run from the repository root::

    python benchmarks/download.py                    # a 256 MB archive, 5 rounds
    python benchmarks/download.py --quick            # a 32 MB archive, 2 rounds (smoke test)
    python benchmarks/download.py --json out.json    # also write the results as JSON

A random archive is served by an HTTP server on 127.0.0.1 (``sendfile``). Measured, in rounds
that each run the three transfers in a rotated order, after one warm-up of each:

* **copy**: ``shutil.copyfile`` of the archive to a new file (page cache warm), the floor any
  download into the cache must pay for writing the bytes;
* **http**: a plain ``requests`` streaming download of the same URL to a file, no checks (what
  the transport alone costs);
* **medhub**: ``medhub.execution.fetch.download`` of the same bytes with its sha256 and size
  checked while streaming (what every package download does).

Reported: medians (MB/s), the ratios medhub / copy (goal: at least 0.8) and medhub / http, and
the speed of sha256 alone on one core. Server, client and hashing share the machine's cores.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import statistics
import sys
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from common import alternate, finish, machine_info, parser, timed
from report import Goal, Run, Section, fill, table

GOAL = 0.8

REPORT = """
    ## Package download and verification

    `{command}` ({when}): a random {size_mb:.0f} MB archive served by an HTTP server on 127.0.0.1
    (sendfile), {repeat} rounds of the three transfers after a warm-up of each, medians. Server, client
    and hashing share the machine's cores.

    {table}

    Goal: medhub at least {goal} of the plain copy: **{verdict}**. A kernel-side file copy never leaves the
    page cache, while a download moves every byte through the socket, user space and sha256 ({sha_mb_s:.0f}
    MB/s on one core here); medhub hashes in a second thread so hashing overlaps with receiving and writing.
"""


def serve(path: Path) -> tuple[ThreadingHTTPServer, str]:
    """Serve ``path`` on 127.0.0.1 with ``sendfile``; returns the server and the URL."""
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802
            self.send_response(200)
            self.send_header("Content-Length", str(path.stat().st_size))
            self.end_headers()
            self.wfile.flush()
            with open(path, "rb") as fh:
                self.connection.sendfile(fh)

        def log_message(self, *args: object) -> None:
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    return httpd, f"http://127.0.0.1:{httpd.server_address[1]}/package.zip"


def measure(size_mb: int, repeat: int) -> dict[str, Any]:
    import requests

    from medhub.execution.fetch import download

    with tempfile.TemporaryDirectory(prefix="medhub-bench-dl-") as tmp:
        root = Path(tmp)
        src = root / "package.zip"
        with open(src, "wb") as fh:
            for _ in range(size_mb):
                fh.write(os.urandom(2**20))
        size = src.stat().st_size
        data = src.read_bytes()
        start = time.perf_counter()
        sha = hashlib.sha256(data).hexdigest()
        sha_s = time.perf_counter() - start
        del data
        httpd, url = serve(src)

        def copy() -> None:
            shutil.copyfile(src, root / "copy.zip")
            (root / "copy.zip").unlink()

        def http() -> None:
            with requests.get(url, stream=True, timeout=60) as response, open(root / "plain.zip", "wb") as fh:
                for block in response.iter_content(2**20):
                    fh.write(block)
            (root / "plain.zip").unlink()

        def medhub() -> None:
            part, digest, n = download(url, root / "downloads", "bench", sha256=sha, size=size, progress=False,
                                       resume=False)
            assert digest == sha and n == size
            part.unlink()

        try:
            times = alternate({"copy": timed(copy), "http": timed(http), "medhub": timed(medhub)}, repeat)
        finally:
            httpd.shutdown()
            httpd.server_close()
    mb = size / 1e6
    rate = {name: mb / statistics.median(t) for name, t in times.items()}
    return {"size_mb": round(mb, 1), "repeat": repeat, "copy_mb_s": round(rate["copy"], 1),
            "http_mb_s": round(rate["http"], 1), "download_verify_mb_s": round(rate["medhub"], 1),
            "sha256_mb_s": round(mb / sha_s, 1), "ratio": round(rate["medhub"] / rate["copy"], 3),
            "ratio_vs_http": round(rate["medhub"] / rate["http"], 3), "goal": GOAL}


def report(run: Run) -> Section:
    """The download section and its goal (medhub's verified download against a plain copy)."""
    d = run.result["result"]
    passed = d["ratio"] >= GOAL
    goal = Goal("download", f"verified download / plain file copy ({d['download_verify_mb_s']:.0f} vs "
                f"{d['copy_mb_s']:.0f} MB/s)", f"{d['ratio']:.2f}", f">= {GOAL}", passed)
    rows = [["plain file copy (`shutil.copyfile`, page cache to page cache)", f"{d['copy_mb_s']:.0f}",
             f"{d['ratio']:.2f}"],
            ["plain HTTP download (`requests`, no checks)", f"{d['http_mb_s']:.0f}", f"{d['ratio_vs_http']:.2f}"],
            ["medhub download, sha256 and size verified while streaming", f"{d['download_verify_mb_s']:.0f}", "1.00"]]
    return Section([goal], fill(REPORT, command=run.command, when=run.when, size_mb=d["size_mb"], repeat=d["repeat"],
                                table=table(["Transfer", "MB/s", "medhub / it"], rows, "lrr"), goal=GOAL,
                                verdict="PASS" if passed else "MISSED", sha_mb_s=d["sha256_mb_s"]))


def main(argv: list[str] | None = None) -> int:
    cli = parser(__doc__, "a 32 MB archive and 2 rounds")
    cli.add_argument("--size-mb", type=int, help="archive size in MB (default 256; 32 quick)")
    args = cli.parse_args(argv)
    size_mb = args.size_mb or (32 if args.quick else 256)
    repeat = 2 if args.quick else 5
    info = machine_info()
    doc = {"benchmark": "download", "machine": info, "settings": {"size_mb": size_mb, "repeat": repeat,
                                                                 "quick": args.quick},
           "result": measure(size_mb, repeat)}
    return finish(args, doc, report, argv)


if __name__ == "__main__":
    sys.exit(main())
