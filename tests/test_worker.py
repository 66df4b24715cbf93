"""Worker: per-thread objects with setup, process and teardown (the guarantees of issue 4).

Every test orders threads with events, barriers, semaphores and the pool's statistics, and
checks who ran what by recording (thread, method) pairs.
"""

from __future__ import annotations

import concurrent.futures as cf
import functools
import gc
import importlib.util
import itertools
import logging
import random
import sqlite3
import subprocess
import sys
import tempfile
import textwrap
import threading
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

import threadkit
from helpers import WAIT
from threadkit import Worker, WorkerPool

EXAMPLES = Path(__file__).resolve().parent.parent / "docs" / "examples"


class Recorder:
    """A log of (thread, method) pairs from the workers' hooks.

    Threads are kept as ``Thread`` objects, not idents: an ident can be reused by a thread
    started after another one ended, which would merge two workers' records.
    """

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.events: list[tuple[threading.Thread, str]] = []

    def record(self, method: str) -> None:
        with self.lock:
            self.events.append((threading.current_thread(), method))

    def threads(self, method: str) -> list[threading.Thread]:
        """The thread of every call of ``method``, one entry per call."""
        with self.lock:
            return [thread for thread, name in self.events if name == method]

    def by_thread(self) -> dict[threading.Thread, list[str]]:
        """The methods each thread called, in order."""
        calls: dict[threading.Thread, list[str]] = {}
        with self.lock:
            for thread, method in self.events:
                calls.setdefault(thread, []).append(method)
        return calls

    def join_threads(self) -> None:
        """Wait for every recorded thread to end; fail if one does not."""
        for thread in self.by_thread():
            thread.join(WAIT)
            assert not thread.is_alive(), f"{thread.name} still running"


def same_threads(first: list[threading.Thread], second: list[threading.Thread]) -> bool:
    """Whether two lists hold the same threads, each as often."""
    return Counter(first) == Counter(second)


class Recording(Worker[int, int]):
    """Records every hook call; ``process`` returns ``item * 10``."""

    def __init__(self, rec: Recorder) -> None:
        rec.record("init")
        self.rec = rec
        self.seen = 0

    def setup(self) -> None:
        self.rec.record("setup")

    def process(self, item: int) -> int:
        self.rec.record("process")
        self.seen += 1
        return item * 10

    def teardown(self) -> None:
        self.rec.record("teardown")


def assert_lifecycles(rec: Recorder, workers: int) -> None:
    """Each of ``workers`` threads ran init, setup, its items, then teardown, in order."""
    calls = rec.by_thread()
    assert len(calls) == workers
    assert threading.current_thread() not in calls
    for methods in calls.values():
        assert methods[:2] == ["init", "setup"]
        assert methods[-1] == "teardown"
        assert set(methods[2:-1]) <= {"process"}


def load_example(name: str) -> Any:
    """Import ``docs/examples/<name>.py`` (not a package) as a module."""
    spec = importlib.util.spec_from_file_location(f"example_{name}", EXAMPLES / f"{name}.py")
    assert spec is not None
    assert spec.loader is not None
    module: ModuleType = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


# -- one object per thread ----------------------------------------------------------------


def test_each_thread_makes_its_own_worker_and_sets_it_up_before_its_first_item() -> None:
    """One instance per thread, made and set up in that thread before any of its items."""
    rec = Recorder()
    everyone_busy = threading.Barrier(3, timeout=WAIT)
    seen: list[tuple[threading.Thread, int, str]] = []

    class Job(Recording):
        def process(self, item: int) -> int:
            if item < 3:
                everyone_busy.wait()  # three items at once: three threads
            seen.append((threading.current_thread(), self.index, self.name))
            return super().process(item)

    with WorkerPool(worker=functools.partial(Job, rec), max_workers=3) as pool:
        assert list(pool.process(range(12))) == [i * 10 for i in range(12)]
    assert_lifecycles(rec, 3)
    assert Counter(method for _, method in rec.events) == {
        "init": 3,
        "setup": 3,
        "process": 12,
        "teardown": 3,
    }
    assert same_threads(rec.threads("init"), rec.threads("setup"))
    assert same_threads(rec.threads("setup"), rec.threads("teardown"))
    assert {index for _, index, _ in seen} == {0, 1, 2}
    for thread, index, name in seen:
        assert thread.name == name
        assert {i for t, i, _ in seen if t is thread} == {index}


def test_put_returns_the_future_of_process() -> None:
    """put(item) hands back a future that resolves to process(item)."""
    rec = Recorder()
    with WorkerPool(worker=functools.partial(Recording, rec), max_workers=2) as pool:
        futures = [pool.put(i) for i in range(5)]
        assert [f.result(WAIT) for f in futures] == [0, 10, 20, 30, 40]
    assert len(rec.threads("process")) == 5
    assert same_threads(rec.threads("setup"), rec.threads("teardown"))


def test_submit_and_map_run_in_the_same_threads_as_process() -> None:
    """Plain functions given to submit and map run in the worker threads of a worker= pool."""
    rec = Recorder()
    with WorkerPool(worker=functools.partial(Recording, rec), max_workers=1) as pool:
        assert pool.put(1).result(WAIT) == 10
        thread = pool.submit(threading.current_thread).result(WAIT)
        assert list(pool.map(lambda _: threading.current_thread(), range(3))) == [thread] * 3
    assert rec.threads("process") == [thread]
    assert rec.threads("teardown") == [thread]


def test_put_and_process_need_a_worker_pool() -> None:
    """put and process on a pool made without worker= raise TypeError and queue nothing."""
    with WorkerPool(1) as pool:
        with pytest.raises(TypeError, match="worker="):
            pool.put(1)  # type: ignore[arg-type]
        with pytest.raises(TypeError, match="worker="):
            pool.process([1, 2])  # type: ignore[list-item]
        assert pool.statistics().submitted == 0


def test_caller_runs_is_refused_with_worker() -> None:
    """overflow="caller_runs" with worker= fails at construction: the caller has no Worker."""
    with pytest.raises(ValueError, match="caller_runs"):
        WorkerPool(worker=Worker, max_queue=1, overflow="caller_runs")


def test_process_yields_as_completed_when_unordered() -> None:
    """process(ordered=False) yields a later item's result while an earlier one still runs."""
    started = threading.Event()
    gate = threading.Event()

    class Job(Worker[int, int]):
        def process(self, item: int) -> int:
            if item == 0:
                started.set()
                assert gate.wait(WAIT)
            return item

    with WorkerPool(worker=Job, max_workers=2) as pool:
        results = pool.process([0, 1], ordered=False)
        assert next(results) == 1
        assert started.wait(WAIT)  # item 0 is running, not finished: it waits for the gate
        gate.set()
        assert list(results) == [0]


def test_closing_process_early_cancels_what_has_not_started() -> None:
    """Closing the process() iterator cancels the items not started; input is read lazily."""
    read: list[int] = []
    started = threading.Semaphore(0)
    gate = threading.Event()

    def inputs() -> Iterator[int]:
        for item in itertools.count():
            read.append(item)
            yield item

    class Job(Worker[int, int]):
        def process(self, item: int) -> int:
            if item >= 2:
                started.release()
                assert gate.wait(WAIT)
            return item

    with WorkerPool(worker=Job, max_workers=2) as pool:
        results = pool.process(inputs(), buffersize=6)
        assert [next(results), next(results)] == [0, 1]  # each result reads one more item
        assert started.acquire(timeout=WAIT)
        assert started.acquire(timeout=WAIT)  # both workers hold an item (2 and 3)
        results.close()
        gate.set()
    stats = pool.statistics()
    assert read == list(range(8))
    assert stats.submitted == 8
    assert stats.completed == 4
    assert stats.cancelled == 4
    assert stats.failed == 0


# -- setup failures ---------------------------------------------------------------------


@pytest.mark.parametrize("failing", [0, 2])
def test_setup_failure_on_the_kth_worker_breaks_the_pool(
    failing: int, caplog: pytest.LogCaptureFixture
) -> None:
    """Worker k's setup failing breaks the pool; the others that set up are torn down."""
    rec = Recorder()
    cause = OSError(f"worker {failing} cannot connect")
    # The four workers and this thread: no setup ends before every item is queued.
    all_started = threading.Barrier(5, timeout=WAIT)
    gate = threading.Event()

    class Job(Recording):
        def setup(self) -> None:
            all_started.wait()
            if self.index == failing:
                raise cause
            super().setup()

        def process(self, item: int) -> int:
            assert gate.wait(WAIT)
            return super().process(item)

    pool = WorkerPool(worker=functools.partial(Job, rec), max_workers=4)
    with caplog.at_level(logging.ERROR, logger="threadkit"), pool:
        held = [pool.put(i) for i in range(4)]  # each new worker takes one with it
        queued = [pool.put(i) for i in range(4, 10)]
        all_started.wait()
        for fut in [held[failing], *queued]:
            exc = fut.exception(WAIT)
            assert isinstance(exc, threadkit.BrokenPool)
            assert isinstance(exc, cf.BrokenExecutor)
            assert exc.__cause__ is cause
        with pytest.raises(threadkit.BrokenPool) as raised:
            pool.put(99)
        assert raised.value.__cause__ is cause
        gate.set()
        _, not_done = cf.wait(held, timeout=WAIT)
        assert not not_done
    assert "Worker setup failed" in caplog.text
    setups = rec.threads("setup")
    assert len(setups) == 3
    assert same_threads(rec.threads("teardown"), setups)
    assert len(rec.threads("init")) == 4  # the failed one was made, but never torn down
    stats = pool.statistics()
    assert stats.submitted == 10
    assert stats.submitted == stats.completed + stats.failed + stats.cancelled


def test_an_item_held_by_a_worker_still_in_setup_fails_when_the_pool_breaks(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """An item no worker has started when setup fails elsewhere fails with BrokenPool."""
    release = threading.Event()
    ran: list[int] = []
    cause = OSError("no database")

    class Job(Worker[int, int]):
        def setup(self) -> None:
            if self.index == 1:
                raise cause
            assert release.wait(WAIT)  # worker 0 is still setting up when the pool breaks

        def process(self, item: int) -> int:
            ran.append(item)
            return item

    with (
        caplog.at_level(logging.ERROR, logger="threadkit"),
        WorkerPool(worker=Job, max_workers=2) as pool,
    ):
        first = pool.put(0)  # travels with worker 0, which is stuck in setup
        assert isinstance(pool.put(1).exception(WAIT), threadkit.BrokenPool)
        with pytest.raises(threadkit.BrokenPool):
            pool.put(2)
        release.set()
        exc = first.exception(WAIT)
    assert ran == []
    assert isinstance(exc, threadkit.BrokenPool)
    assert exc.__cause__ is cause


def test_a_factory_that_makes_no_worker_breaks_the_pool_with_a_type_error(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """worker= returning something that is not a Worker breaks the pool, chained to TypeError."""

    def make() -> Worker[int, int]:
        return object()  # type: ignore[return-value]

    with caplog.at_level(logging.ERROR, logger="threadkit"), WorkerPool(worker=make) as pool:
        exc = pool.put(1).exception(WAIT)
        assert isinstance(exc, threadkit.BrokenPool)
        assert isinstance(exc.__cause__, TypeError)
        assert "Worker" in str(exc.__cause__)
        with pytest.raises(threadkit.BrokenPool):
            pool.put(2)


def test_setup_failure_fails_the_items_of_process() -> None:
    """A setup failure ends a process() iteration with BrokenPool chained to the cause."""
    cause = RuntimeError("setup failed")

    class Job(Worker[int, int]):
        def setup(self) -> None:
            raise cause

        def process(self, item: int) -> int:
            raise AssertionError("never runs")

    with WorkerPool(worker=Job, max_workers=2) as pool:
        with pytest.raises(threadkit.BrokenPool) as raised:
            list(pool.process(range(10)))
        with pytest.raises(threadkit.BrokenPool):
            pool.process(range(3))
    assert raised.value.__cause__ is cause
    stats = pool.statistics()
    assert stats.submitted == stats.completed + stats.failed + stats.cancelled


def test_process_on_an_unnamed_pool_yields_every_result() -> None:
    """for x in WorkerPool(worker=...).process(items) runs every item, not just the first batch."""

    class Job(Worker[int, int]):
        def process(self, item: int) -> int:
            return item

    results = WorkerPool(worker=Job, max_workers=2).process(range(20))
    gc.collect()
    assert list(results) == list(range(20))


# -- teardown on every exit path ----------------------------------------------------------


def test_teardown_runs_once_per_worker_after_a_cancelling_shutdown() -> None:
    """shutdown(cancel_futures=True) cancels queued items and still tears every worker down."""
    rec = Recorder()
    started = threading.Semaphore(0)
    gate = threading.Event()

    class Job(Recording):
        def process(self, item: int) -> int:
            started.release()
            assert gate.wait(WAIT)
            return super().process(item)

    pool = WorkerPool(worker=functools.partial(Job, rec), max_workers=2)
    running = [pool.put(0), pool.put(1)]
    assert started.acquire(timeout=WAIT)
    assert started.acquire(timeout=WAIT)
    queued = [pool.put(i) for i in range(2, 7)]
    report = pool.shutdown(wait=False, cancel_futures=True)
    assert report.cancelled == 5
    assert all(f.cancelled() for f in queued)
    gate.set()
    assert [f.result(WAIT) for f in running] == [0, 10]
    pool.shutdown(timeout=WAIT)
    rec.join_threads()
    assert_lifecycles(rec, 2)
    assert len(rec.threads("teardown")) == 2
    assert pool.statistics().cancelled == 5


def test_teardown_runs_when_an_idle_worker_retires() -> None:
    """A worker retired by idle_timeout runs teardown in its own thread, while the pool lives."""
    rec = Recorder()
    torn_down = threading.Semaphore(0)
    both_busy = threading.Barrier(2, timeout=WAIT)

    class Job(Recording):
        def process(self, item: int) -> int:
            if item < 3:
                both_busy.wait()  # items 1 and 2 run at once: two threads
            return super().process(item)

        def teardown(self) -> None:
            super().teardown()
            torn_down.release()

    with WorkerPool(worker=functools.partial(Job, rec), max_workers=2, idle_timeout=0.01) as pool:
        assert sorted(pool.process([1, 2], ordered=False)) == [10, 20]
        assert torn_down.acquire(timeout=WAIT)
        assert torn_down.acquire(timeout=WAIT)
        rec.join_threads()
        assert pool.statistics().workers == 0
        # A new item gets a new thread with a new worker, set up again.
        assert pool.put(3).result(WAIT) == 30
    assert len(rec.threads("setup")) == 3
    assert same_threads(rec.threads("teardown"), rec.threads("setup"))
    assert_lifecycles(rec, 3)


def test_teardown_runs_when_the_pool_is_garbage_collected() -> None:
    """A pool nobody references is collected; its workers finish, tear down and exit."""
    rec = Recorder()
    pool: WorkerPool[int, int] | None = WorkerPool(
        worker=functools.partial(Recording, rec), max_workers=3
    )
    assert pool is not None
    futures = [pool.put(i) for i in range(9)]
    del pool
    gc.collect()
    assert [f.result(WAIT) for f in futures] == [i * 10 for i in range(9)]
    rec.join_threads()
    setups = rec.threads("setup")
    assert setups
    assert same_threads(rec.threads("teardown"), setups)
    assert_lifecycles(rec, len(setups))


def test_teardown_runs_at_interpreter_exit() -> None:
    """A script that ends without shutdown finishes its items and tears every worker down."""
    script = textwrap.dedent(
        """
        import sys
        import threading

        import threadkit

        class Job(threadkit.Worker[int, int]):
            def setup(self):
                self.ident = threading.get_ident()
                self.done = 0

            def process(self, item):
                self.done += 1
                return item

            def teardown(self):
                same = self.ident == threading.get_ident()
                sys.stdout.write(f"teardown {self.index} same-thread={same} done={self.done}\\n")

        pool = threadkit.WorkerPool(worker=Job, max_workers=3)
        futures = [pool.put(i) for i in range(30)]
        print("READY", flush=True)
        """
    )
    result = subprocess.run(
        [sys.executable, "-W", "error", "-c", script],
        capture_output=True,
        text=True,
        timeout=3 * WAIT,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    lines = result.stdout.splitlines()
    assert lines[0] == "READY"
    teardowns = [line.split() for line in lines[1:]]
    assert teardowns
    assert all(line[0] == "teardown" and line[2] == "same-thread=True" for line in teardowns)
    assert sorted(line[1] for line in teardowns) == [str(i) for i in range(len(teardowns))]
    assert sum(int(line[3].removeprefix("done=")) for line in teardowns) == 30


def test_a_failing_teardown_is_logged_and_the_others_still_run(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """One teardown raising is logged on threadkit; other teardowns and the shutdown go on."""
    rec = Recorder()
    all_busy = threading.Barrier(3, timeout=WAIT)

    class Job(Recording):
        def process(self, item: int) -> int:
            all_busy.wait()
            return super().process(item)

        def teardown(self) -> None:
            super().teardown()
            if self.index == 1:
                raise OSError("close failed")

    with caplog.at_level(logging.ERROR, logger="threadkit"):
        with WorkerPool(worker=functools.partial(Job, rec), max_workers=3) as pool:
            assert list(pool.process(range(3))) == [0, 10, 20]
        rec.join_threads()
    assert len(rec.threads("teardown")) == 3
    assert "teardown raised" in caplog.text
    assert "close failed" in caplog.text
    assert pool.statistics().workers == 0


# -- errors in process -------------------------------------------------------------------


class Flaky(Worker[int, int]):
    """Fails on odd items; counts every item it sees and every error it is told about."""

    def __init__(self) -> None:
        self.seen = 0
        self.errors: list[tuple[int, Exception, threading.Thread]] = []

    def process(self, item: int) -> int:
        self.seen += 1
        if item % 2:
            raise ValueError(item)
        return self.seen

    def on_error(self, item: int, exc: Exception) -> None:
        self.errors.append((item, exc, threading.current_thread()))


def test_an_error_in_process_goes_to_the_future_and_on_error_and_the_worker_lives() -> None:
    """process raising fails only its item's future; on_error sees the same item and object."""
    workers: list[Flaky] = []

    def make() -> Flaky:
        worker = Flaky()
        workers.append(worker)
        return worker

    with WorkerPool(worker=make, max_workers=1) as pool:
        ok = pool.put(0)
        bad = pool.put(1)
        after = pool.put(2)
        assert ok.result(WAIT) == 1
        exc = bad.exception(WAIT)
        assert after.result(WAIT) == 3  # the same object, still counting
        thread = pool.submit(threading.current_thread).result(WAIT)
    [worker] = workers
    assert isinstance(exc, ValueError)
    assert worker.errors == [(1, exc, thread)]
    assert worker.errors[0][1] is exc


def test_an_error_in_process_reaches_on_error_from_process_iteration() -> None:
    """An item failing inside process() reaches on_error and is raised at its turn."""
    workers: list[Flaky] = []

    def make() -> Flaky:
        worker = Flaky()
        workers.append(worker)
        return worker

    with WorkerPool(worker=make, max_workers=1) as pool:
        results = pool.process([0, 2, 3])
        assert [next(results), next(results)] == [1, 2]
        with pytest.raises(ValueError) as raised:
            next(results)
    [worker] = workers
    [(item, exc, _)] = worker.errors
    assert item == 3
    assert exc is raised.value


def test_on_error_sees_each_failing_item_of_a_chunk() -> None:
    """With chunksize > 1, every failing item reaches on_error with its own exception."""
    workers: list[Flaky] = []

    def make() -> Flaky:
        worker = Flaky()
        workers.append(worker)
        return worker

    with WorkerPool(worker=make, max_workers=1) as pool:
        results = pool.process([0, 2, 4, 5, 6, 7, 8], chunksize=7, buffersize=None)
        assert [next(results) for _ in range(3)] == [1, 2, 3]
        with pytest.raises(ValueError) as raised:
            next(results)
    [worker] = workers
    assert [(item, type(exc)) for item, exc, _ in worker.errors] == [
        (5, ValueError),
        (7, ValueError),
    ]
    assert worker.errors[0][1] is raised.value
    assert worker.seen == 7


def test_on_error_raising_is_logged_and_ignored(caplog: pytest.LogCaptureFixture) -> None:
    """on_error raising is logged; the item's future keeps process's error; the worker goes on."""

    class Job(Worker[int, int]):
        def process(self, item: int) -> int:
            if item == 1:
                raise KeyError(item)
            return item

        def on_error(self, item: int, exc: Exception) -> None:
            raise RuntimeError("on_error broke")

    with (
        caplog.at_level(logging.ERROR, logger="threadkit"),
        WorkerPool(worker=Job, max_workers=1) as pool,
    ):
        assert isinstance(pool.put(1).exception(WAIT), KeyError)
        assert pool.put(2).result(WAIT) == 2
    assert "on_error raised" in caplog.text
    assert "on_error broke" in caplog.text


def test_hundreds_of_items_with_random_failures_and_cancels_are_each_accounted_once() -> None:
    """Every item ends exactly once as a result, an error or a cancel; statistics add up."""
    rng = random.Random(20240604)
    items = list(range(600))
    failing = set(rng.sample(items, 150))
    gate = threading.Event()
    errors: list[tuple[int, Exception]] = []
    processed = Counter[int]()  # item -> times process() ran it
    per_worker: list[int] = []  # each worker's own count, reported at teardown
    lock = threading.Lock()

    class Job(Worker[int, int]):
        def setup(self) -> None:
            self.count = 0

        def process(self, item: int) -> int:
            assert gate.wait(WAIT)
            self.count += 1
            with lock:
                processed[item] += 1
            if item in failing:
                raise ValueError(item)
            return -item

        def on_error(self, item: int, exc: Exception) -> None:
            with lock:
                errors.append((item, exc))

        def teardown(self) -> None:
            per_worker.append(self.count)

    with WorkerPool(worker=Job, max_workers=4) as pool:
        futures = {item: pool.put(item) for item in items}
        to_cancel = rng.sample(items, 100)
        cancelled = {item for item in to_cancel if futures[item].cancel()}
        gate.set()
        _, not_done = cf.wait(futures.values(), timeout=WAIT)
        assert not not_done
    results: dict[int, int] = {}
    failures: dict[int, BaseException] = {}
    for item, fut in futures.items():
        if fut.cancelled():
            assert item in cancelled
            continue
        exc = fut.exception(0)
        if exc is None:
            results[item] = fut.result(0)
        else:
            failures[item] = exc
    assert len(results) + len(failures) + len(cancelled) == len(items)
    assert len(cancelled) >= 96  # at most the four running items could not be cancelled
    assert all(value == -item for item, value in results.items())
    assert set(failures) == failing - cancelled
    assert all(
        isinstance(exc, ValueError) and exc.args == (item,) for item, exc in failures.items()
    )
    assert dict(errors) == failures
    assert all(failures[item] is exc for item, exc in errors)
    assert set(processed) == set(results) | set(failures)
    assert set(processed.values()) == {1}
    assert len(per_worker) == 4
    assert sum(per_worker) == len(processed)
    stats = pool.statistics()
    assert stats.submitted == len(items)
    assert stats.completed == len(results)
    assert stats.failed == len(failures)
    assert stats.cancelled == len(cancelled)
    assert stats.submitted == stats.completed + stats.failed + stats.cancelled


def test_shutdown_now_hands_back_put_items_with_their_item() -> None:
    """A put item dropped by shutdown_now comes back with its item (fn is None: no callable)."""
    started = threading.Event()
    gate = threading.Event()

    class Job(Worker[int, int]):
        def process(self, item: int) -> int:
            started.set()
            assert gate.wait(WAIT)
            return item

    pool = WorkerPool(worker=Job, max_workers=1)
    running = pool.put(0)
    assert started.wait(WAIT)
    queued = pool.put(1)
    report = pool.shutdown_now(wait=False)
    gate.set()
    assert running.result(WAIT) == 0
    pool.shutdown(timeout=WAIT)
    [dropped] = report.dropped
    assert dropped.future is queued
    assert dropped.args == (1,)
    assert dropped.item == 1
    assert dropped.fn is None


# -- the examples, with their guarantees asserted ----------------------------------------


def test_downloader_example_uses_one_connection_per_worker() -> None:
    """The downloader example fetches every file, each thread over one kept-alive connection."""
    example = load_example("worker_downloader")
    summary = example.download_all(files=30, workers=3)
    assert summary.saved == 30
    assert len(summary.per_thread) == 3  # every worker thread was torn down
    assert sum(summary.per_thread.values()) == 30
    busy = sum(1 for count in summary.per_thread.values() if count)
    assert summary.connections == busy


def test_sqlite_example_writes_every_row_from_per_thread_connections() -> None:
    """The SQLite example writes all rows, each connection used only in the thread that made it."""
    example = load_example("worker_sqlite")
    with tempfile.TemporaryDirectory() as tmp:
        db_path = Path(tmp) / "rows.db"
        example.create_database(db_path)
        assert example.write_rows(db_path, batches=24, batch_size=25, workers=3) == 600
        per_thread = example.count_rows(db_path)
        db = sqlite3.connect(db_path)
        try:
            ids = [row[0] for row in db.execute("SELECT id FROM rows ORDER BY id")]
            mode = db.execute("PRAGMA journal_mode").fetchone()[0]
        finally:
            db.close()
    assert ids == list(range(600))
    assert sum(per_thread.values()) == 600
    assert 1 <= len(per_thread) <= 3
    assert mode == "wal"
