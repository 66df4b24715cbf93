"""The classic queue downloader: worker threads pull URLs from a Queue and save the files.

The files come from an HTTP server that the script starts on 127.0.0.1 itself, so it
needs no internet. The code is kept in the classic form on purpose; the tutorial names
each of its pitfalls (marked PITFALL below).
"""

from __future__ import annotations

import hashlib
import http.server
import queue
import sys
import tempfile
import threading
import urllib.request
from pathlib import Path

FILES = 20
SIZE = 16 * 1024
WORKERS = 4


# --8<-- [start:server]
def content(number: int) -> bytes:
    """The bytes of file ``number``: known in advance, so a download can be checked."""
    return hashlib.sha256(str(number).encode()).digest() * (SIZE // 32)


class FileHandler(http.server.BaseHTTPRequestHandler):
    """Serves ``/files/<number>.bin``; anything else is a 404."""

    def do_GET(self) -> None:
        number = self.path.removeprefix("/files/").removesuffix(".bin")
        if not number.isdigit() or int(number) >= FILES:
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
def download(url: str, folder: Path) -> None:
    with urllib.request.urlopen(url, timeout=5) as response:
        data = response.read()
    name = url.rsplit("/", 1)[-1]
    (folder / name).write_bytes(data)
    # One write() per line: print() writes the text and the newline separately, so lines
    # printed by several threads at once can run together.
    sys.stdout.write(f"{threading.current_thread().name}: {name} ({len(data)} bytes)\n")


class DownloadWorker(threading.Thread):
    """Takes URLs from the queue, one at a time, forever."""

    def __init__(self, urls: queue.Queue[str], folder: Path, name: str) -> None:
        # PITFALL (no shutdown): run() never returns, so the thread is made a daemon,
        # which the interpreter kills at exit, wherever it is.
        super().__init__(name=name, daemon=True)
        self.urls = urls
        self.folder = folder

    def run(self) -> None:
        while True:
            url = self.urls.get()
            try:
                download(url, self.folder)
            finally:
                self.urls.task_done()


# --8<-- [end:worker]


# --8<-- [start:main]
def main() -> None:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), FileHandler)
    # serve_forever(0.05) checks every 50 ms whether shutdown() was called.
    server_thread = threading.Thread(target=server.serve_forever, args=(0.05,), name="server")
    server_thread.start()
    try:
        base_url = f"http://127.0.0.1:{server.server_port}/files"
        with tempfile.TemporaryDirectory() as tmp:
            folder = Path(tmp)
            urls: queue.Queue[str] = queue.Queue()  # PITFALL: unbounded
            for n in range(WORKERS):
                DownloadWorker(urls, folder, name=f"downloader-{n}").start()
            for number in range(FILES):
                urls.put(f"{base_url}/{number}.bin")
            urls.join()  # returns when task_done() was called once per put()
            saved = sorted(folder.iterdir(), key=lambda path: int(path.stem))
            assert all(path.read_bytes() == content(int(path.stem)) for path in saved)
            print(f"saved {len(saved)} of {FILES} files")
    finally:
        server.shutdown()
        server.server_close()
        server_thread.join(timeout=5)
    still_running = [t.name for t in threading.enumerate() if t.name.startswith("downloader")]
    print(f"still running, blocked in urls.get(): {', '.join(still_running)}")


# --8<-- [end:main]


if __name__ == "__main__":
    main()
