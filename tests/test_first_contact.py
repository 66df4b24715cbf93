"""What a new user meets first: cancellations, messages, reprs, progress and defaults."""

from __future__ import annotations

import concurrent.futures as cf
import functools
import gc
import inspect
import io
import logging
import signal
import sys
import threading
from collections.abc import Iterator
from typing import Any

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


class _WatchesCancellations(threadkit.PoolHooks):
    def __init__(self) -> None:
        self.cancelled: list[int] = []

    def task_cancelled(self, event: threadkit.TaskEvent) -> None:
        self.cancelled.append(event.task_id)


def test_hooks_that_watch_only_cancellations_see_a_task_stopped_by_its_token() -> None:
    """A pool whose hooks watch no run (only ``task_cancelled``) still reports it."""
    started = threading.Event()
    hooks = _WatchesCancellations()
    pool: WorkerPool[Any, Any] = WorkerPool(1, hooks=hooks)
    future = pool.submit(_stops_when_told, started)
    assert started.wait(WAIT)
    pool.shutdown(cancel_futures=True, timeout=WAIT)
    assert isinstance(future.exception(WAIT), threadkit.Cancelled)
    assert hooks.cancelled == [0]


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


class _StopsWhenTold(threadkit.Worker[int, int]):
    """A Worker whose ``process`` is ``_item_stops_when_told``."""

    def __init__(self, started: threading.Semaphore) -> None:
        self.started = started

    def process(self, item: int, /) -> int:
        return _item_stops_when_told(self.started, item)


def _item_stops_when_told(started: threading.Semaphore, item: int) -> int:
    """A map item that checks its token the documented way, once it is cancelled."""
    started.release()
    token = threadkit.current_token()
    assert token is not None
    assert token.wait(WAIT), "the pool's token was never cancelled"
    token.raise_if_cancelled()
    return item


def _stop(pool: WorkerPool[Any, Any], how: str) -> None:
    """Cancel the pool's token the way ``how`` names, then let the pool end."""
    if how == "cancel_futures":
        pool.shutdown(cancel_futures=True, timeout=WAIT)
    elif how == "shutdown_now":
        pool.shutdown_now(timeout=WAIT)
    else:
        pool.cancel_token.cancel("stop")
    pool.shutdown(timeout=WAIT)


@pytest.mark.parametrize("how", ["cancel_futures", "shutdown_now", "cancel_token"])
@pytest.mark.parametrize(
    "kind", ["map", "map chunked", "map_unordered", "process", "process chunked", "map hooked"]
)
def test_map_items_stopped_by_their_own_token_count_as_cancelled(
    kind: str, how: str, caplog: pytest.LogCaptureFixture
) -> None:
    """Map items that raise Cancelled for the pool's cancelled token are cancellations:
    counted as cancelled, not failed, reported to task_cancelled, and not logged."""
    started = threading.Semaphore(0)
    seen = _Seen()
    chunksize = 3 if kind.endswith("chunked") else 1
    with caplog.at_level(logging.WARNING, logger="threadkit"):
        if kind.startswith("process"):
            pool: WorkerPool[Any, Any] = WorkerPool(1, worker=lambda: _StopsWhenTold(started))
            results = pool.process(range(3), chunksize=chunksize, buffersize=None)
        else:
            pool = WorkerPool(1, hooks=seen if kind == "map hooked" else None)
            work = functools.partial(_item_stops_when_told, started)
            if kind == "map_unordered":
                results = pool.map_unordered(work, range(3), buffersize=None)
            else:
                results = pool.map(work, range(3), chunksize=chunksize)
        assert started.acquire(timeout=WAIT)  # item 0 runs; the others wait their turn
        _stop(pool, how)
        stats = pool.statistics()
        # What the consumer sees is unchanged: the Cancelled an item raised (or the
        # CancelledError of an item the shutdown dropped, which unordered may meet first).
        with pytest.raises(threadkit.Cancelled if kind != "map_unordered" else Exception) as info:
            next(results)
        assert isinstance(info.value, threadkit.Cancelled | cf.CancelledError)
    assert (stats.submitted, stats.completed, stats.failed, stats.cancelled) == (3, 0, 0, 3)
    assert stats.queued == stats.busy == 0
    if kind == "map hooked":
        assert seen.failed == []
        assert len(seen.cancelled) == 3
    assert [r.getMessage() for r in caplog.records] == []


@pytest.mark.parametrize("chunksize", [1, 3])
def test_a_map_item_raising_a_foreign_cancelled_still_fails(chunksize: int) -> None:
    """A map item's Cancelled from a token it made itself is an ordinary failure."""

    def work(item: int) -> int:
        if item == 1:
            _raises_a_foreign_cancelled()
        return item

    with WorkerPool(1) as pool:
        results = pool.map(work, range(3), chunksize=chunksize)
        assert next(results) == 0
        with pytest.raises(threadkit.Cancelled):
            next(results)
    stats = pool.statistics()
    assert (stats.completed, stats.failed, stats.cancelled) == (2, 1, 0)


COOPERATIVE_TASKS = """
import threading
from collections.abc import Iterator
from typing import Any
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


class _SlowFirst(threadkit.Worker[int, int]):
    """Item 0 waits for ``gate``; every other item counts itself and returns at once."""

    def __init__(self, gate: threading.Event, done: list[int], enough: threading.Event) -> None:
        self.gate, self.done, self.enough = gate, done, enough

    def process(self, item: int) -> int:
        if item == 0:
            assert self.gate.wait(WAIT), "the gate never opened"
        else:
            self.done.append(item)
            if len(self.done) >= 30:
                self.enough.set()
        return item * 2


def _open_when(enough: threading.Event, gate: threading.Event, seen: list[bool]) -> None:
    """Open ``gate`` once ``enough`` is set (or after WAIT); record which came first."""
    seen.append(enough.wait(WAIT))
    gate.set()


def test_one_slow_item_does_not_idle_the_workers_of_an_ordered_process() -> None:
    """process() by default keeps starting items while the first one is slow (no HOL)."""
    gate, enough, done = threading.Event(), threading.Event(), list[int]()
    before_the_gate: list[bool] = []
    opener = threading.Thread(target=_open_when, args=(enough, gate, before_the_gate))
    opener.start()
    try:
        with WorkerPool(2, worker=lambda: _SlowFirst(gate, done, enough)) as pool:
            # The window is 4; 30 later items can only finish if the window moves on.
            results = list(pool.process(range(100)))
    finally:
        gate.set()
        opener.join(WAIT)
    assert before_the_gate == [True], "30 items did not run while the first was slow"
    assert results == [2 * i for i in range(100)]


def test_an_input_error_while_feeding_ahead_comes_after_the_good_results() -> None:
    """An input that fails while the head is slow raises after the results before it."""
    gate, enough, done = threading.Event(), threading.Event(), list[int]()

    def items() -> Iterator[int]:
        yield from range(40)
        raise LookupError("input broke")

    opener = threading.Thread(target=_open_when, args=(enough, gate, []))
    opener.start()
    got: list[int] = []
    try:
        with (
            WorkerPool(2, worker=lambda: _SlowFirst(gate, done, enough)) as pool,
            pytest.raises(LookupError, match="input broke"),
        ):
            got.extend(pool.process(items()))
    finally:
        gate.set()
        opener.join(WAIT)
    assert got == [2 * i for i in range(40)]


@pytest.mark.parametrize("method", ["map", "map_unordered", "process"])
def test_buffersize_zero_is_refused_everywhere(method: str) -> None:
    """buffersize=0 raises ValueError in map, map_unordered and process alike."""
    with WorkerPool(1, worker=_Doubler) as pool:
        call = getattr(pool, method)
        args = ([1],) if method == "process" else (abs, [1])
        with pytest.raises(ValueError, match="buffersize"):
            call(*args, buffersize=0)


@pytest.mark.parametrize("method", ["map", "map_unordered", "process"])
def test_buffersize_auto_is_accepted_everywhere(method: str) -> None:
    """buffersize="auto" is the lazy default window, and map takes it too."""
    with WorkerPool(2, worker=_Doubler) as pool:
        call = getattr(pool, method)
        args = ([-1, -2, -3],) if method == "process" else (abs, [-1, -2, -3])
        assert sorted(call(*args, buffersize="auto")) in ([1, 2, 3], [-6, -4, -2])


class _Doubler(threadkit.Worker[int, int]):
    def process(self, item: int) -> int:
        return 2 * item


def test_a_users_own_tqdm_bar_is_driven(monkeypatch: pytest.MonkeyPatch) -> None:
    """progress=tqdm(desc=...) is accepted: the run sets its total and advances it."""
    tqdm_module = pytest.importorskip("tqdm")
    monkeypatch.setattr(tqdm_module.tqdm, "monitor_interval", 0)  # no monitor thread
    out = io.StringIO()
    bar = tqdm_module.tqdm(desc="pages", file=out)
    with WorkerPool(2) as pool:
        assert list(pool.map(abs, [-1, -2, -3, -4, -5], progress=bar)) == [1, 2, 3, 4, 5]
    assert (bar.n, bar.total) == (5, 5)
    assert "pages" in out.getvalue()


def test_a_users_tqdm_bar_keeps_its_total_when_the_run_has_none(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A generator's unknown length does not erase the total the user gave the bar."""
    tqdm_module = pytest.importorskip("tqdm")
    monkeypatch.setattr(tqdm_module.tqdm, "monitor_interval", 0)
    bar = tqdm_module.tqdm(total=100, file=io.StringIO())
    progress = threadkit.make_progress(bar, total=None)
    assert progress is not None
    progress.advance(3)
    progress.close()
    assert (bar.n, bar.total) == (3, 100)


def test_a_users_rich_progress_gets_a_task_and_is_stopped_if_we_started_it() -> None:
    """A rich Progress not yet started is started for the run and stopped after it."""
    rich_progress = pytest.importorskip("rich.progress")
    rich_console = pytest.importorskip("rich.console")
    bar = rich_progress.Progress(console=rich_console.Console(file=io.StringIO()))
    with WorkerPool(2) as pool:
        assert list(pool.map(abs, [-1, -2, -3], progress=bar)) == [1, 2, 3]
    (task,) = bar.tasks
    assert (task.completed, task.total) == (3, 3)
    assert not bar.live.is_started


def test_a_users_running_rich_progress_is_left_running() -> None:
    """A rich Progress the user started (with ...:) gets a task and keeps running."""
    rich_progress = pytest.importorskip("rich.progress")
    rich_console = pytest.importorskip("rich.console")
    console = rich_console.Console(file=io.StringIO())
    with rich_progress.Progress(console=console, auto_refresh=False) as bar:
        with WorkerPool(2) as pool:
            assert list(pool.map(abs, [-1, -2], progress=bar)) == [1, 2]
        assert bar.live.is_started
        (task,) = bar.tasks
        assert task.completed == 2


def test_a_bar_class_and_a_wrong_object_get_messages_that_agree() -> None:
    """progress=tqdm (the class) asks for an instance; a wrong object lists bars as valid."""
    tqdm_module = pytest.importorskip("tqdm")
    with pytest.raises(TypeError, match=r"pass an instance \(tqdm\(\.\.\.\)\)"):
        threadkit.make_progress(tqdm_module.tqdm, total=1)
    with pytest.raises(TypeError, match=r"a tqdm bar, a rich\.progress\.Progress"):
        threadkit.make_progress(42, total=1)  # type: ignore[arg-type]


def test_progress_true_means_the_same_for_a_pool_and_make_progress() -> None:
    """progress=True off a terminal draws nothing, whether given to a pool or make_progress."""
    assert threadkit.make_progress(True, total=3, stream=io.StringIO()) is None


@pytest.mark.parametrize(
    ("limiter", "names"),
    [
        (threadkit.Semaphore, ["total"]),
        (threadkit.CapacityLimiter, ["total"]),
        (threadkit.KeyedLimiter, ["limit_per_key"]),
        (threadkit.RateLimiter, ["rate", "burst", "clock", "wait"]),
        (threadkit.KeyedRateLimiter, ["rate", "burst", "clock", "wait"]),
    ],
)
def test_limiters_have_their_documented_signature(limiter: type, names: list[str]) -> None:
    """The constructors name their public parameters (not attrs' private field names)."""
    assert list(inspect.signature(limiter).parameters) == names


def test_a_limiter_refuses_its_private_field_name_at_run_time() -> None:
    """RateLimiter(_rate=10), which pyright once accepted, raises TypeError."""
    with pytest.raises(TypeError):
        threadkit.RateLimiter(_rate=10)  # type: ignore[call-arg]
    assert threadkit.RateLimiter(10, burst=2).burst == 2
    assert threadkit.Semaphore(total=3).total == 3
