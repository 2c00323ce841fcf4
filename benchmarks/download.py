"""Benchmark: verified package download on loopback against a plain copy of the same archive.

    python benchmarks/download.py [--size-mb 256] [--repeat 5] [--json PATH]

A random archive is served by an HTTP server on 127.0.0.1 (``sendfile``). Measured, alternately:

* **copy**: ``shutil.copyfile`` of the archive to a new file (page cache warm), the floor any
  download into the cache must pay for writing the bytes;
* **http**: a plain ``requests`` streaming download of the same URL to a file, no checks (what
  the transport alone costs);
* **medhub**: ``medhub.execution.fetch.download`` of the same bytes with its sha256 and size
  checked while streaming (what every package download does).

Prints medians (MB/s) and the ratios medhub / copy (goal: at least 0.8) and medhub / http.
Server, client and hashing share the machine's cores.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import statistics
import sys
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

GOAL = 0.8


def serve(path: Path) -> tuple[ThreadingHTTPServer, str]:
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


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--size-mb", type=int, default=256)
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--json", type=Path)
    ap.add_argument("--quick", action="store_true", help="a 32 MB archive and 2 rounds")
    args = ap.parse_args(argv)
    if args.quick:
        args.size_mb, args.repeat = 32, 2

    from medhub.execution.fetch import download

    with tempfile.TemporaryDirectory(prefix="medhub-bench-dl-") as tmp:
        root = Path(tmp)
        src = root / "package.zip"
        with open(src, "wb") as fh:
            for _ in range(args.size_mb):
                fh.write(os.urandom(2**20))
        size = src.stat().st_size
        sha = hashlib.sha256(src.read_bytes()).hexdigest()
        httpd, url = serve(src)
        import requests

        copy_s, http_s, fetch_s = [], [], []
        try:
            for i in range(args.repeat + 1):
                dst = root / "copy.zip"
                t = time.perf_counter()
                shutil.copyfile(src, dst)
                elapsed = time.perf_counter() - t
                dst.unlink()
                if i:
                    copy_s.append(elapsed)
                t = time.perf_counter()
                with requests.get(url, stream=True) as response, open(root / "plain.zip", "wb") as fh:
                    for block in response.iter_content(2**20):
                        fh.write(block)
                elapsed = time.perf_counter() - t
                (root / "plain.zip").unlink()
                if i:
                    http_s.append(elapsed)
                t = time.perf_counter()
                part, digest, n = download(url, root / "downloads", f"bench{i}", sha256=sha, size=size,
                                           progress=False, resume=False)
                elapsed = time.perf_counter() - t
                assert digest == sha and n == size
                part.unlink()
                if i:  # the first round warms the page cache
                    fetch_s.append(elapsed)
        finally:
            httpd.shutdown()
            httpd.server_close()
    mb = size / 1e6
    copy_rate = mb / statistics.median(copy_s)
    http_rate = mb / statistics.median(http_s)
    fetch_rate = mb / statistics.median(fetch_s)
    ratio = fetch_rate / copy_rate
    result = {"size_mb": round(mb, 1), "repeat": args.repeat, "copy_mb_s": round(copy_rate, 1),
              "http_mb_s": round(http_rate, 1), "download_verify_mb_s": round(fetch_rate, 1),
              "ratio": round(ratio, 3), "ratio_vs_http": round(fetch_rate / http_rate, 3), "goal": GOAL,
              "passed": ratio >= GOAL, "cpus": os.cpu_count()}
    print(f"archive {mb:.0f} MB, {args.repeat} rounds (medians)")
    print(f"  plain file copy            {copy_rate:8.1f} MB/s")
    print(f"  plain HTTP download        {http_rate:8.1f} MB/s   (requests, no checks)")
    print(f"  medhub download + verify   {fetch_rate:8.1f} MB/s")
    print(f"  ratio medhub / copy        {ratio:8.3f}   goal >= {GOAL}  {'PASS' if ratio >= GOAL else 'MISSED'}")
    print(f"  ratio medhub / plain HTTP  {fetch_rate / http_rate:8.3f}")
    if args.json:
        args.json.write_text(json.dumps(result, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
