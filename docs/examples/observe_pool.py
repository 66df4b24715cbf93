"""Watch a pool: lifecycle hooks, a watchdog for stuck tasks, statistics and snapshots."""

from __future__ import annotations

import logging
import sys
import threading
from collections import Counter

import threadkit


class Metrics(threadkit.PoolHooks):
    """Counts outcomes and keeps the slowest duration, from the events the pool reports."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.outcomes: Counter[str] = Counter()
        self.slowest = 0.0

    def task_finished(self, event: threadkit.TaskEvent) -> None:
        with self.lock:
            self.outcomes["finished"] += 1
            self.slowest = max(self.slowest, event.duration or 0.0)

    def task_failed(self, event: threadkit.TaskEvent) -> None:
        with self.lock:
            self.outcomes[f"failed: {type(event.exception).__name__}"] += 1

    def task_cancelled(self, event: threadkit.TaskEvent) -> None:
        with self.lock:
            self.outcomes["cancelled"] += 1


def main() -> None:
    # The watchdog and other threadkit messages go to the "threadkit" logger.
    logging.basicConfig(stream=sys.stdout, format="%(levelname)s %(name)s: %(message)s")
    release = threading.Event()
    metrics = Metrics()
    with threadkit.WorkerPool(2, thread_name_prefix="job", hooks=metrics, watchdog=0.05) as pool:
        stuck = pool.submit(release.wait, 5)  # the watchdog will name it, with its stack
        parsed = [pool.submit(int, text) for text in ["1", "2", "x"]]
        while not pool.statistics().running_ages or pool.statistics().running_ages[0] < 0.1:
            release.wait(0.01)  # give the watchdog time to look (0.05 s threshold)
        for snap in pool.worker_snapshots():
            if snap.task is not None:
                print(f"{snap.thread_name} is running {snap.task} for {snap.running_for:.2f} s")
        release.set()
        stuck.result(5)
        print("parsed:", [f.exception() or f.result() for f in parsed])
    stats = pool.statistics()
    print(f"submitted {stats.submitted}, completed {stats.completed}, failed {stats.failed}")
    print(dict(sorted(metrics.outcomes.items())))


if __name__ == "__main__":
    main()
