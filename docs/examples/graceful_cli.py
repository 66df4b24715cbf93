"""A command-line tool that stops cleanly on Ctrl-C: exit status 130, nothing half done.

Run it and press Ctrl-C: the downloads that have not started are cancelled, the running
ones see the token and stop, the cleanup runs, and the shell sees status 130. A second
Ctrl-C exits at once. Run as is, a timer stands in for Ctrl-C by calling
``shutdown.request()``, and the tool exits 0.
"""

from __future__ import annotations

import sys
import threading

import threadkit


def download(url: str) -> str:
    token = threadkit.current_token()
    assert token is not None
    if token.sleep(0.01):  # stands in for a slow transfer that checks the token
        return f"{url}: stopped"
    return f"{url}: done"


def main() -> int:
    shutdown = threadkit.GracefulShutdown(grace=5)
    urls = [f"https://example.org/file/{n}" for n in range(1000)]
    finished: list[str] = []
    shutdown.add_cleanup(lambda: print("cleanup: results saved"))

    def body() -> None:
        pool = shutdown.register(threadkit.WorkerPool(8, cancel_token=shutdown.token))
        for future in [pool.submit(download, url) for url in urls]:
            if shutdown.requested:
                break
            finished.append(future.result())

    # In real use there is no timer: Ctrl-C or SIGTERM starts the same sequence.
    timer = threading.Timer(0.05, shutdown.request, args=("demo timer",))
    timer.start()
    try:
        status = shutdown.run(body)
    finally:
        timer.cancel()
        timer.join()
    summary = shutdown.summary
    assert summary is not None
    print(f"stopped by {summary.trigger} after {len(finished)} of {len(urls)} downloads")
    return status


if __name__ == "__main__":
    sys.exit(main())
