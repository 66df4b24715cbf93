"""The queue downloader rebuilt on a Worker: one HTTP connection per thread, reused.

The script serves generated files from a local HTTP/1.1 server (no internet needed),
downloads them with a pool of ``Downloader`` workers, checks every file, and prints how
many files each thread fetched and how many connections the server saw: one per worker.
"""

from __future__ import annotations

import functools
import hashlib
import http.client
import http.server
import socket
import tempfile
import threading
from collections.abc import Generator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import attrs

import threadkit

FILES = 24
SIZE = 16 * 1024
WORKERS = 4


def content(number: int) -> bytes:
    """The bytes of file ``number``: known in advance, so a download can be checked."""
    return hashlib.sha256(str(number).encode()).digest() * (SIZE // 32)


# --8<-- [start:server]
class FileHandler(http.server.BaseHTTPRequestHandler):
    """Serves ``/files/<number>.bin`` (any number) over keep-alive connections."""

    protocol_version = "HTTP/1.1"  # keep the connection open between requests
    timeout = 5  # an idle keep-alive connection is closed after this many seconds
    # Headers and body go out in two writes; without this, Nagle's algorithm holds the
    # body back until the client's delayed ACK, about 40 ms per request on a kept connection.
    disable_nagle_algorithm = True

    def do_GET(self) -> None:
        number = self.path.removeprefix("/files/").removesuffix(".bin")
        if not number.isdigit():
            self.send_error(404)
            return
        body = content(int(number))
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        """Keep the example's output to the summary."""


class FileServer(http.server.ThreadingHTTPServer):
    """Counts the connections it accepts; ``server_close()`` joins their threads."""

    daemon_threads = False

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), FileHandler)
        self.connections = 0

    def process_request(
        self, request: socket.socket | tuple[bytes, socket.socket], client_address: Any
    ) -> None:
        self.connections += 1  # only the serve_forever thread calls this
        super().process_request(request, client_address)


@contextmanager
def running_server() -> Generator[FileServer, None, None]:
    """Run a ``FileServer`` on 127.0.0.1 in a thread for the ``with`` block."""
    server = FileServer()
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), name="server")
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


# --8<-- [end:server]


# --8<-- [start:worker]
class Downloader(threadkit.Worker[str, Path]):
    """Downloads paths over this thread's own connection and saves them in ``folder``."""

    def __init__(self, port: int, folder: Path, tally: dict[str, int]) -> None:
        self.port = port
        self.folder = folder
        self.tally = tally  # thread name -> files downloaded, filled in at teardown
        self.downloaded = 0

    def setup(self) -> None:
        # One connection for every file this thread fetches; it connects at the first
        # request, and http.client keeps it open while the server allows keep-alive.
        self.conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=5)

    def process(self, path: str) -> Path:
        self.conn.request("GET", path)
        response = self.conn.getresponse()
        body = response.read()  # read it all, or the connection cannot be reused
        if response.status != 200:
            raise OSError(f"GET {path}: HTTP {response.status}")
        expected = int(response.getheader("Content-Length", "-1"))
        if len(body) != expected:
            raise OSError(f"GET {path}: got {len(body)} of {expected} bytes")
        target = self.folder / path.rsplit("/", 1)[-1]
        target.write_bytes(body)
        self.downloaded += 1  # this object belongs to one thread: no lock needed
        return target

    def teardown(self) -> None:
        self.conn.close()
        self.tally[self.name] = self.downloaded


# --8<-- [end:worker]


@attrs.frozen
class Summary:
    """What a run did: files per thread and connections the server accepted."""

    per_thread: dict[str, int]  # every worker thread, also one that got no file
    connections: int
    saved: int


# --8<-- [start:main]
def download_all(files: int = FILES, workers: int = WORKERS) -> Summary:
    """Download ``files`` files with ``workers`` threads and check each one."""
    tally: dict[str, int] = {}
    with running_server() as server, tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        make = functools.partial(Downloader, server.server_port, folder, tally)
        paths = (f"/files/{number}.bin" for number in range(files))
        pool = threadkit.WorkerPool(worker=make, max_workers=workers, thread_name_prefix="dl")
        with pool:
            saved = list(pool.process(paths))  # lazy: at most 2 * workers in flight
        # Leaving the pool's block ran every teardown, so every connection is closed.
        for target in saved:
            assert target.read_bytes() == content(int(target.stem)), target
        return Summary(per_thread=dict(tally), connections=server.connections, saved=len(saved))


def main() -> None:
    summary = download_all()
    for name, count in sorted(summary.per_thread.items()):
        print(f"{name}: {count} files")
    busy = sum(1 for count in summary.per_thread.values() if count)
    print(f"{summary.saved} files over {summary.connections} connections by {busy} threads")
    assert summary.connections == busy, "a thread opened more than one connection"


# --8<-- [end:main]


if __name__ == "__main__":
    main()
