"""A long-running service for a container: SIGTERM stops it cleanly with status 143.

``docker stop`` (and Kubernetes) send SIGTERM, wait, then SIGKILL. Inside the block,
SIGTERM raises ``threadkit.ShutdownRequested`` in the main thread, which ``except
Exception`` does not catch, so the loop unwinds through its ``finally``; leaving the
block stops the pool within the grace period, runs each worker's ``teardown`` and the
cleanups, then exits with 143 after ``atexit`` handlers ran. Run as is, a timer calls
``shutdown.request()`` instead, and the service exits 0.
"""

from __future__ import annotations

import queue
import threading

import threadkit


class Handler(threadkit.Worker[str, str]):
    def setup(self) -> None:
        self.handled = 0  # stands in for a database connection

    def process(self, item: str) -> str:
        self.handled += 1
        return item.upper()

    def teardown(self) -> None:
        print(f"{self.name}: closed after {self.handled} messages")


def serve(inbox: queue.Queue[str], shutdown: threadkit.GracefulShutdown) -> None:
    pool = shutdown.register(
        threadkit.WorkerPool(worker=Handler, max_workers=2, cancel_token=shutdown.token)
    )
    try:
        while not shutdown.requested:
            try:
                message = inbox.get(timeout=0.01)
            except queue.Empty:
                continue
            pool.put(message).result()
    finally:
        print("service loop ended")


def main() -> None:
    inbox: queue.Queue[str] = queue.Queue()
    for n in range(20):
        inbox.put(f"message {n}")
    # Leave the grace below the orchestrator's kill timeout (Docker: 10 s by default).
    with threadkit.GracefulShutdown(grace=8) as shutdown:
        # In a container SIGTERM does this; here a timer does, so the demo ends.
        timer = threading.Timer(0.05, shutdown.request, args=("demo timer",))
        timer.start()
        shutdown.add_cleanup(timer.join)
        shutdown.add_cleanup(timer.cancel)
        serve(inbox, shutdown)
    print(f"stopped by {shutdown.summary.trigger if shutdown.summary else None}")


if __name__ == "__main__":
    main()
