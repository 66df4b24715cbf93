"""Testing code that uses threads: order with events, wait on counters, never sleep."""

from __future__ import annotations

import threading
from collections.abc import Callable

import threadkit

WAIT = 10.0  # every wait in a test is bounded: a bug fails fast instead of hanging


def fetch_all(
    pool: threadkit.WorkerPool, fetch: Callable[[str], object], keys: list[str]
) -> dict[str, object]:
    """The code under test: fetch every key concurrently, keep the failures apart."""
    futures = {key: pool.submit(fetch, key) for key in keys}
    return {key: fut.exception(WAIT) or fut.result(WAIT) for key, fut in futures.items()}


def test_a_slow_fetch_does_not_hold_back_the_others() -> None:
    gate = threading.Event()
    done: list[str] = []

    def fetch(key: str) -> str:
        if key == "slow":
            assert gate.wait(WAIT)  # blocks until the test says so: no sleep guesses
        done.append(key)
        return key.upper()

    with threadkit.WorkerPool(2) as pool:
        slow = pool.submit(fetch, "slow")
        fast = pool.submit(fetch, "fast")
        assert fast.result(WAIT) == "FAST"  # finished while "slow" is still held
        assert not slow.done()
        gate.set()
        assert slow.result(WAIT) == "SLOW"
    assert done == ["fast", "slow"]


def test_failures_are_kept_and_counted() -> None:
    def fetch(key: str) -> str:
        if key == "bad":
            raise LookupError(key)
        return key

    with threadkit.WorkerPool(3) as pool:
        results = fetch_all(pool, fetch, ["a", "bad", "c"])
    assert isinstance(results["bad"], LookupError)
    stats = pool.statistics()  # quiescent after the with block: the counters add up
    assert (stats.completed, stats.failed) == (2, 1)


def test_no_thread_is_left_behind() -> None:
    before = set(threading.enumerate())
    with threadkit.WorkerPool(4) as pool:
        list(pool.map(str, range(10)))
    report = pool.shutdown(timeout=WAIT)  # already shut: returns at once, reports nobody
    assert not report.timed_out
    assert set(threading.enumerate()) <= before


if __name__ == "__main__":
    for name, test in list(globals().items()):
        if name.startswith("test_") and callable(test):
            test()
            print("ok", name)
