"""The classic queue downloader meets one missing file: a worker dies and nobody is told.

The URL of a file the server does not have gets a 404, ``urlopen`` raises, the
exception leaves ``run()`` and ends that worker thread. Its traceback goes to stderr,
the other workers share the rest of the queue, ``urls.join()`` returns, and the script
exits with status 0, one file short and one worker fewer.
"""

from __future__ import annotations

import hashlib
import http.server
import queue
import tempfile
import threading
import urllib.request
from pathlib import Path

FILES = 20
SIZE = 16 * 1024
WORKERS = 4


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
        """Keep the example's output to what matters."""


def download(url: str, folder: Path) -> None:
    with urllib.request.urlopen(url, timeout=5) as response:  # raises HTTPError on a 404
        data = response.read()
    (folder / url.rsplit("/", 1)[-1]).write_bytes(data)


class DownloadWorker(threading.Thread):
    """Takes URLs from the queue, one at a time, until an exception ends it."""

    def __init__(self, urls: queue.Queue[str], folder: Path, name: str) -> None:
        super().__init__(name=name, daemon=True)
        self.urls = urls
        self.folder = folder

    def run(self) -> None:
        while True:
            url = self.urls.get()
            try:
                download(url, self.folder)
            finally:
                self.urls.task_done()  # still called, so urls.join() does not hang


def main() -> None:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), FileHandler)
    server_thread = threading.Thread(target=server.serve_forever, args=(0.05,), name="server")
    server_thread.start()
    try:
        base_url = f"http://127.0.0.1:{server.server_port}/files"
        with tempfile.TemporaryDirectory() as tmp:
            folder = Path(tmp)
            urls: queue.Queue[str] = queue.Queue()
            for n in range(WORKERS):
                DownloadWorker(urls, folder, name=f"downloader-{n}").start()
            for number in [*range(FILES), 404]:  # the server has no file 404
                urls.put(f"{base_url}/{number}.bin")
            urls.join()
            saved = len(list(folder.iterdir()))
    finally:
        server.shutdown()
        server.server_close()
        server_thread.join(timeout=5)
    print(f"saved {saved} of {FILES + 1} files, and the exit status will be 0:")
    print("nothing told the main thread that a download failed and a worker died")


if __name__ == "__main__":
    main()
