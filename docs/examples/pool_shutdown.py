"""Shut down within a deadline, see who is still running, and get unstarted work back."""

from __future__ import annotations

import threading

import threadkit


def main() -> None:
    release = threading.Event()
    pool: threadkit.WorkerPool = threadkit.WorkerPool(1, thread_name_prefix="job")
    pool.submit(release.wait)  # a task that will not finish in time
    queued = [pool.submit(pow, 2, n) for n in range(5)]

    report = pool.shutdown_now(timeout=0.1)
    print("handed back:", [(t.fn.__name__, t.args) for t in report.dropped])
    print("all cancelled:", all(f.cancelled() for f in queued))
    for straggler in report.stragglers:
        print(f"still running: {straggler.thread_name} runs {straggler.task}")

    release.set()  # let the straggler finish, then wait for it
    assert not pool.shutdown().timed_out


if __name__ == "__main__":
    main()
