"""The downloader as a task group: a missing file is skipped, a fatal error stops everything.

The files come from an HTTP server the script starts on 127.0.0.1, so it needs no
internet. File 13 is missing (404: noted, the others go on); file 29 makes the server
fail (500: fatal, the group cancels every download not yet done).
"""

from __future__ import annotations

import hashlib
import http.client
import http.server
import tempfile
import threading
import time
from concurrent.futures import Future
from pathlib import Path

import threadkit

FILES = 60
SIZE = 16 * 1024
WORKERS = 4
MISSING = 13  # 404: not fatal
BROKEN = 29  # 500: fatal


def content(number: int) -> bytes:
    """The bytes of file ``number``: known in advance, so a download can be checked."""
    return hashlib.sha256(str(number).encode()).digest() * (SIZE // 32)


class FileHandler(http.server.BaseHTTPRequestHandler):
    """Serves ``/files/<number>.bin`` a little slowly; 404 for MISSING, 500 for BROKEN."""

    protocol_version = "HTTP/1.1"

    def do_GET(self) -> None:
        number = self.path.removeprefix("/files/").removesuffix(".bin")
        time.sleep(0.005)  # a server with some latency, so there is work to cancel
        if not number.isdigit() or int(number) >= FILES or int(number) == MISSING:
            self.send_error(404)
            return
        if int(number) == BROKEN:
            self.send_error(500)
            return
        body = content(int(number))
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        """Keep the example's output to the downloads."""


# --8<-- [start:task]
class ServerError(Exception):
    """The server failed: nothing else it sends can be trusted. Fatal."""


def download(port: int, folder: Path, number: int) -> int | None:
    """Save file ``number``; ``None`` if it does not exist; raise ServerError if fatal."""
    token = threadkit.current_token()  # the group's token, inside a group's task
    assert token is not None
    token.raise_if_cancelled()  # a download that has not begun need not begin
    # The group's deadline bounds every network wait, too.
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=token.remaining())
    try:
        conn.request("GET", f"/files/{number}.bin")
        response = conn.getresponse()
        data = response.read()
    finally:
        conn.close()
    if response.status == 404:
        return None  # not fatal: note it and let the others go on
    if response.status != 200:
        raise ServerError(f"file {number}: HTTP {response.status}")
    (folder / f"{number}.bin").write_bytes(data)
    return len(data)


# --8<-- [end:task]


# --8<-- [start:main]
def main() -> None:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), FileHandler)
    serving = threading.Thread(target=server.serve_forever, name="server")
    serving.start()
    port = server.server_address[1]
    try:
        with tempfile.TemporaryDirectory() as tmp:
            folder = Path(tmp)
            tg = threadkit.TaskGroup(limit=WORKERS, timeout=30, name="download")
            futures: list[Future[int | None]] = []
            try:
                with tg:
                    futures = [tg.submit(download, port, folder, n) for n in range(FILES)]
            except* ServerError as group:
                for exc in group.exceptions:
                    print("stopped:", exc)
            missing = [
                n
                for n, f in enumerate(futures)
                if f.done() and not f.cancelled() and f.exception() is None and f.result() is None
            ]
            stats = tg.statistics()
            print(f"saved {len(list(folder.iterdir()))} files; missing: {missing}")
            print(f"failed {stats.failed}, cancelled {stats.cancelled} of {FILES}")
    finally:
        server.shutdown()
        server.server_close()
        serving.join()


# --8<-- [end:main]


if __name__ == "__main__":
    main()
