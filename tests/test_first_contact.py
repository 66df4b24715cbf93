"""What a new user meets first: cancellations, messages, reprs, progress and defaults."""

from __future__ import annotations

import concurrent.futures as cf
import gc
import logging
import signal
import sys
import threading

import pytest

import threadkit
from helpers import WAIT, Gate
from test_shutdown import Child
from threadkit import WorkerPool


def _stops_when_told(started: threading.Event) -> str:
    """A task that checks its token the documented way, once it is cancelled."""
    started.set()
    token = threadkit.current_token()
    assert token is not None
    assert token.wait(WAIT), "the pool's token was never cancelled"
    token.raise_if_cancelled()
    return "not reached"


def test_a_task_stopped_by_its_own_token_counts_as_cancelled_and_is_not_logged(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """raise_if_cancelled() on the pool's own cancelled token is a cancellation: no log."""
    started = threading.Event()
    with caplog.at_level(logging.ERROR, logger="threadkit"):
        pool = WorkerPool(1)
        future = pool.submit(_stops_when_told, started)
        assert started.wait(WAIT)
        pool.shutdown(cancel_futures=True, timeout=WAIT)
        cf.wait([future], timeout=WAIT)
        stats = pool.statistics()
        del future
        gc.collect()
    assert (stats.cancelled, stats.failed) == (1, 0)
    assert "never retrieved" not in caplog.text


def test_the_stopped_task_keeps_its_cancelled_exception() -> None:
    """The future of a task stopped by its token carries the Cancelled it raised."""
    started = threading.Event()
    pool = WorkerPool(1)
    future = pool.submit(_stops_when_told, started)
    assert started.wait(WAIT)
    pool.shutdown(cancel_futures=True, timeout=WAIT)
    error = future.exception(WAIT)
    assert isinstance(error, threadkit.Cancelled)


def _raises_a_foreign_cancelled() -> None:
    other = threadkit.CancelToken()
    other.cancel("mine")
    other.raise_if_cancelled()


def test_a_cancelled_of_another_token_is_a_failure_and_is_logged(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A Cancelled from a token the task made itself is an ordinary failure, logged."""
    with caplog.at_level(logging.ERROR, logger="threadkit"):
        with WorkerPool(1) as pool:
            cf.wait([pool.submit(_raises_a_foreign_cancelled)], timeout=WAIT)
        stats = pool.statistics()
        gc.collect()
    assert (stats.cancelled, stats.failed) == (0, 1)
    assert "never retrieved" in caplog.text


class _Seen(threadkit.PoolHooks):
    def __init__(self) -> None:
        self.cancelled: list[threadkit.TaskEvent] = []
        self.failed: list[threadkit.TaskEvent] = []

    def task_cancelled(self, event: threadkit.TaskEvent) -> None:
        self.cancelled.append(event)

    def task_failed(self, event: threadkit.TaskEvent) -> None:
        self.failed.append(event)


def test_hooks_see_a_task_stopped_by_its_token_as_cancelled() -> None:
    """With hooks, such a task is reported to task_cancelled with its exception."""
    seen = _Seen()
    started = threading.Event()
    pool = WorkerPool(1, hooks=seen)
    future = pool.submit(_stops_when_told, started)
    assert started.wait(WAIT)
    pool.shutdown(cancel_futures=True, timeout=WAIT)
    cf.wait([future], timeout=WAIT)
    assert seen.failed == []
    assert len(seen.cancelled) == 1
    assert isinstance(seen.cancelled[0].exception, threadkit.Cancelled)
    assert pool.statistics().cancelled == 1


COOPERATIVE_TASKS = """
import threading
import threadkit

started = threading.Barrier(3)

def cooperative():
    started.wait(10)
    token = threadkit.current_token()
    while True:
        token.raise_if_cancelled()
        token.wait(0.05)

with threadkit.GracefulShutdown(grace=5):
    with threadkit.WorkerPool(2) as pool:
        futures = [pool.submit(cooperative) for _ in range(2)]
        started.wait(10)
        print("READY", flush=True)
        for future in futures:
            future.result()
"""


@pytest.mark.skipif(sys.platform == "win32", reason="sends POSIX signals")
@pytest.mark.slow
def test_one_ctrl_c_with_cooperative_tasks_prints_nothing() -> None:
    """One Ctrl-C under GracefulShutdown, tasks stopping by their token: no traceback."""
    proc = Child(COOPERATIVE_TASKS)
    try:
        proc.expect("READY")
        proc.kill(signal.SIGINT)
        code, out, err = proc.finish()
    finally:
        proc.close()
    assert code == 130, f"{out}\n{err}"
    assert err == ""


@pytest.mark.parametrize(
    ("seconds", "shown"),
    [
        (2.9998413240000446, "3 s"),
        (0.1 + 0.2, "0.3 s"),
        (0.25, "0.25 s"),
        (45.6, "46 s"),
        (0.0123, "0.012 s"),
        (0, "0 s"),
        (None, "no limit"),
    ],
)
def test_durations_are_rounded_for_people(seconds: float | None, shown: str) -> None:
    """Every duration in a message is rounded: no float noise reaches a user."""
    from threadkit._text import format_seconds

    assert format_seconds(seconds) == shown


def test_the_shutdown_warning_shows_a_rounded_duration(caplog: pytest.LogCaptureFixture) -> None:
    """'shutdown stopped waiting after 0.3 s', not after 0.30000000000000004 s."""
    gate = Gate()
    pool = WorkerPool(1)
    pool.submit(gate)
    assert gate.started.wait(WAIT)
    with caplog.at_level(logging.WARNING, logger="threadkit"):
        report = pool.shutdown(timeout=0.1 + 0.2)
    gate.open()
    pool.shutdown()
    assert report.stragglers
    assert "after 0.3 s;" in caplog.text
    assert "0.30000000000000004" not in caplog.text


def test_a_map_iterator_repr_says_what_it_runs_and_its_state() -> None:
    """repr(MapIterator) names the callable, the order and the items in flight."""
    with WorkerPool(2) as pool:
        results = pool.map_unordered(abs, range(-5, 0), buffersize=2)
        text = repr(results)
        assert text.startswith("<threadkit.MapIterator builtins.abs unordered")
        assert "in_flight=" in text
        assert sorted(results) == [1, 2, 3, 4, 5]
        assert " done " in repr(results)


def test_a_cancel_token_repr_has_the_package_prefix() -> None:
    """repr(CancelToken) starts with threadkit., as every other public object's does."""
    assert repr(threadkit.CancelToken()).startswith("<threadkit.CancelToken active")
