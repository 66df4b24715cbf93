"""Bound memory: a bounded queue that blocks a fast producer, and a lazy map."""

from __future__ import annotations

import itertools
import threading

import threadkit


def handle(record: int) -> int:
    return record * 2


def endless_records() -> itertools.count[int]:
    return itertools.count()


def main() -> None:
    # At most 100 tasks wait in the queue; submit() blocks the producer beyond that,
    # and gives up with SubmitTimeout after 5 seconds.
    with threadkit.WorkerPool(4, max_queue=100, submit_timeout=5.0) as pool:
        futures = [pool.submit(handle, i) for i in range(1_000)]
        print("sum:", sum(f.result() for f in futures))

    # A lazy map reads an endless input 64 items at a time: memory stays flat.
    with threadkit.WorkerPool(4) as pool:
        results = pool.map(handle, endless_records(), buffersize=64)
        first = list(itertools.islice(results, 5))
        results.close()  # cancel what has not started; read no more input
        print("first results:", first)

    # When the queue is full, "reject" raises at once instead of waiting.
    gate = threading.Event()
    with threadkit.WorkerPool(1, max_queue=1, overflow="reject") as pool:
        pool.submit(gate.wait)  # the worker is busy...
        pool.submit(gate.wait)  # ...and the one queue place is taken
        try:
            pool.submit(handle, 1)
        except threadkit.QueueFull as exc:
            print("rejected:", exc)
        gate.set()


if __name__ == "__main__":
    main()
