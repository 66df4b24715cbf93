"""The queue downloader rebuilt on threadkit: the same job, with each pitfall answered.

The files come from an HTTP server the script starts on 127.0.0.1, so it needs no
internet. One of the files is missing on purpose, to show where errors go.
"""

from __future__ import annotations

import functools
import hashlib
import http.client
import http.server
import tempfile
import threading
from pathlib import Path

import threadkit

FILES = 20
SIZE = 16 * 1024
WORKERS = 4
MISSING = 13  # the server answers 404 for this one


# --8<-- [start:server]
def content(number: int) -> bytes:
    """The bytes of file ``number``: known in advance, so a download can be checked."""
    return hashlib.sha256(str(number).encode()).digest() * (SIZE // 32)


class FileHandler(http.server.BaseHTTPRequestHandler):
    """Serves ``/files/<number>.bin`` over keep-alive connections; 404 for MISSING."""

    protocol_version = "HTTP/1.1"

    def do_GET(self) -> None:
        number = self.path.removeprefix("/files/").removesuffix(".bin")
        if not number.isdigit() or int(number) >= FILES or int(number) == MISSING:
            self.send_error(404)
            return
        body = content(int(number))
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        """Keep the example's output to the downloads."""


# --8<-- [end:server]


# --8<-- [start:worker]
class Download(threadkit.Worker[int, int]):
    """Downloads files over one connection per thread, opened once and closed once."""

    def __init__(self, port: int, folder: Path) -> None:
        self.port = port
        self.folder = folder

    def setup(self) -> None:
        # Runs in the worker's own thread, before its first file.
        self.conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=5)

    def process(self, number: int) -> int:
        self.conn.request("GET", f"/files/{number}.bin")
        response = self.conn.getresponse()
        data = response.read()
        if response.status != 200:
            raise LookupError(f"file {number}: HTTP {response.status}")
        (self.folder / f"{number}.bin").write_bytes(data)
        return len(data)

    def teardown(self) -> None:
        # Runs once, in the same thread, however the pool ends.
        self.conn.close()


# --8<-- [end:worker]


# --8<-- [start:main]
def main() -> None:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), FileHandler)
    serving = threading.Thread(target=server.serve_forever, name="server")
    serving.start()
    try:
        with tempfile.TemporaryDirectory() as tmp:
            folder = Path(tmp)
            # The pool calls the factory once in each worker thread: one Download each.
            factory = functools.partial(Download, server.server_address[1], folder)
            with threadkit.WorkerPool(
                max_workers=WORKERS,
                thread_name_prefix="download",
                worker=factory,
                max_queue=2 * WORKERS,  # a producer that outruns the workers waits
            ) as pool:
                futures = [pool.put(number) for number in range(FILES)]
                total = 0
                for fut in futures:
                    try:
                        total += fut.result(timeout=10)
                    except LookupError as exc:  # errors come back to the main thread
                        print("failed:", exc)
                print(f"saved {len(list(folder.iterdir()))} files, {total} bytes")
                stats = pool.statistics()
                print(f"completed {stats.completed}, failed {stats.failed}")
    finally:
        server.shutdown()
        server.server_close()
        serving.join()


# --8<-- [end:main]


if __name__ == "__main__":
    main()
