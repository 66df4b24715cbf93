"""Seeing what a pool does: lifecycle hooks, the watchdog, worker snapshots."""

from __future__ import annotations

import gc
import logging
import threading
import weakref
from typing import Any

import pytest

import threadkit
from helpers import WAIT
from threadkit import PoolHooks, TaskEvent, WorkerPool, _core, _futures, _hooks, _tasks


class Recorder(PoolHooks):
    """Records (kind, task_id, thread_name) for every event."""

    def __init__(self) -> None:
        self.events: list[tuple[str, TaskEvent]] = []
        self.lock = threading.Lock()

    def _add(self, kind: str, event: TaskEvent) -> None:
        with self.lock:
            self.events.append((kind, event))

    def task_submitted(self, event: TaskEvent) -> None:
        self._add("submitted", event)

    def task_started(self, event: TaskEvent) -> None:
        self._add("started", event)

    def task_finished(self, event: TaskEvent) -> None:
        self._add("finished", event)

    def task_failed(self, event: TaskEvent) -> None:
        self._add("failed", event)

    def task_cancelled(self, event: TaskEvent) -> None:
        self._add("cancelled", event)

    def by_task(self, map_id: int | None = None) -> dict[int, list[str]]:
        out: dict[int, list[str]] = {}
        for kind, event in self.events:
            if event.map_id == map_id:
                out.setdefault(event.task_id, []).append(kind)
        return out


def test_hooks_see_each_task_in_order_with_counts() -> None:
    """Each task gets submitted, then started and finished/failed, or cancelled."""
    hooks = Recorder()
    gate = threading.Event()
    with WorkerPool(1, hooks=hooks, thread_name_prefix="hooked") as pool:
        blocker = pool.submit(gate.wait, WAIT)
        ok = pool.submit(int, "1")
        bad = pool.submit(int, "x")
        doomed = pool.submit(int, "2")
        assert doomed.cancel()
        gate.set()
        assert blocker.result(WAIT)
        assert ok.result(WAIT) == 1
        assert isinstance(bad.exception(WAIT), ValueError)
    flows = hooks.by_task()
    assert flows == {
        0: ["submitted", "started", "finished"],
        1: ["submitted", "started", "finished"],
        2: ["submitted", "started", "failed"],
        3: ["submitted", "cancelled"],
    }
    events = {(k, e.task_id): e for k, e in hooks.events}
    assert events[("started", 1)].thread_name == "hooked_0"
    assert events[("submitted", 1)].thread_name == threading.current_thread().name
    assert events[("finished", 1)].duration is not None
    assert isinstance(events[("failed", 2)].exception, ValueError)
    assert events[("started", 1)].name == "builtins.int"


def test_a_raising_hook_is_logged_and_changes_nothing(caplog: pytest.LogCaptureFixture) -> None:
    """A hook raising, even a BaseException, is logged; the task and pool carry on."""

    class Broken(PoolHooks):
        def task_submitted(self, event: TaskEvent) -> None:
            raise SystemExit("hook")

        def task_started(self, event: TaskEvent) -> None:
            raise KeyboardInterrupt("hook")

        def task_finished(self, event: TaskEvent) -> None:
            raise ValueError("hook")

        def task_cancelled(self, event: TaskEvent) -> None:
            raise ValueError("hook")

    gate = threading.Event()
    with caplog.at_level(logging.ERROR, logger="threadkit"), WorkerPool(1, hooks=Broken()) as pool:
        assert pool.submit(int, "5").result(WAIT) == 5
        assert pool.submit(int, "6").result(WAIT) == 6
        pool.submit(gate.wait, WAIT)
        queued = pool.submit(int)
        assert queued.cancel()
        assert queued.cancelled()
        gate.set()
    logged = [r.getMessage() for r in caplog.records if "pool hook" in r.getMessage()]
    assert sum("task_submitted" in m for m in logged) == 4
    assert sum("task_started" in m for m in logged) == 3
    assert sum("task_finished" in m for m in logged) == 3
    assert sum("task_cancelled" in m for m in logged) == 1


def test_hooks_see_map_items_and_their_cancellation() -> None:
    """map items report start and end with their map's id; closing reports the rest cancelled."""
    hooks = Recorder()
    gate = threading.Event()
    with WorkerPool(1, hooks=hooks) as pool:
        assert list(pool.map(abs, [-1, -2])) == [1, 2]
        blocker = pool.submit(gate.wait, WAIT)
        results = pool.map(abs, range(3))
        results.close()
        gate.set()
        blocker.result(WAIT)
    assert hooks.by_task(map_id=0) == {0: ["started", "finished"], 1: ["started", "finished"]}
    assert hooks.by_task(map_id=1) == {i: ["cancelled"] for i in range(3)}


def test_rejected_submissions_are_reported_cancelled() -> None:
    """A submission refused by the overflow policy ends its events with task_cancelled."""
    hooks = Recorder()
    gate = threading.Event()
    with WorkerPool(1, max_queue=1, overflow="reject", hooks=hooks) as pool:
        pool.submit(gate.wait, WAIT)
        pool.submit(int)
        with pytest.raises(threadkit.QueueFull):
            pool.submit(int)
        assert pool.try_submit(int) is None
        gate.set()
    flows = hooks.by_task()
    assert flows[2] == ["submitted", "cancelled"]
    assert flows[3] == ["submitted", "cancelled"]


def test_no_hook_path_is_taken_without_hooks(monkeypatch: pytest.MonkeyPatch) -> None:
    """Without hooks=, submissions never enter the hook machinery."""

    def forbidden(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("hook path taken")

    monkeypatch.setattr(_core.Core, "submit_hooked", forbidden)
    monkeypatch.setattr(_tasks, "_run_task_hooked", forbidden)
    monkeypatch.setattr(_hooks.HookSet, "report_cancelled", forbidden)
    with WorkerPool(2, hooks=threadkit.PoolHooks()) as pool:  # overrides nothing
        fut = pool.submit(int, "3")
        assert fut.result(WAIT) == 3
        assert type(fut) is _futures.TaskFuture  # no slots for hook data
        assert list(pool.map(abs, [-4])) == [4]
        assert pool.try_submit(int) is not None


def test_hooks_that_only_watch_cancellation_see_a_queued_task_cancelled() -> None:
    """A pool whose hooks watch only task_cancelled reports a task cancelled while queued
    (from the cancelling thread), and nothing about the task that ran.

    Such hooks take the hooked run path, since a task stopped by its own token is
    reported from its run (``HookSet.runs``); this test once forbade that path, and
    passed only because the worker it crashed went unnoticed.
    """

    class Cancels(threadkit.PoolHooks):
        def __init__(self) -> None:
            self.events: list[threadkit.TaskEvent] = []

        def task_cancelled(self, event: threadkit.TaskEvent) -> None:
            self.events.append(event)

    hooks = Cancels()
    gate = threading.Event()
    with WorkerPool(1, hooks=hooks) as pool:
        running = pool.submit(gate.wait, WAIT)
        queued = pool.submit(int)
        assert queued.cancel()
        gate.set()
        assert running.result(WAIT) is True
    [event] = hooks.events
    assert event.fn is int
    assert event.name == "builtins.int"
    assert event.thread_name == threading.current_thread().name


class OnlyStarted(PoolHooks):
    """Hooks that watch runs but not cancellations."""

    def task_started(self, event: TaskEvent) -> None:
        pass


def test_cancel_works_when_hooks_do_not_watch_cancellations() -> None:
    """cancel(), a cancelling shutdown and drop_oldest work whatever the hooks watch."""
    gate = threading.Event()
    pool = WorkerPool(1, hooks=OnlyStarted())
    pool.submit(gate.wait, WAIT)
    queued = pool.submit(int)
    called: list[bool] = []
    queued.add_done_callback(lambda f: called.append(f.cancelled()))
    assert queued.cancel()
    assert called == [True]
    rest = [pool.submit(int, i) for i in range(3)]
    pool.shutdown(wait=False, cancel_futures=True)
    assert all(f.cancelled() for f in rest)
    gate.set()
    pool.shutdown()

    gate = threading.Event()
    ran: list[str] = []
    with WorkerPool(1, max_queue=1, overflow="drop_oldest", hooks=OnlyStarted()) as dropping:
        dropping.submit(gate.wait, WAIT)
        victim = dropping.submit(ran.append, "A")
        kept = dropping.submit(ran.append, "B")
        assert victim.cancelled()
        gate.set()
        assert kept.result(WAIT) is None
    assert ran == ["B"]


def test_a_finished_hooked_future_lets_go_of_its_callable() -> None:
    """A future kept after its task ran (or was cancelled) does not keep the callable."""

    class Job:
        def __call__(self) -> int:
            return 1

    class Silent(PoolHooks):  # watches everything, keeps no event
        def task_started(self, event: TaskEvent) -> None:
            pass

        def task_cancelled(self, event: TaskEvent) -> None:
            pass

    gate = threading.Event()
    with WorkerPool(1, hooks=Silent()) as pool:
        job = Job()
        ref = weakref.ref(job)
        done = pool.submit(job)
        assert done.result(WAIT) == 1
        pool.submit(gate.wait, WAIT)
        other = Job()
        other_ref = weakref.ref(other)
        cancelled = pool.submit(other)
        assert cancelled.cancel()
        del job, other
        gate.set()
        gc.collect()
        assert ref() is None
        assert other_ref() is None
        assert done.done()  # the futures are still held
        assert cancelled.cancelled()


def test_caller_runs_task_raising_systemexit_is_not_also_reported_cancelled() -> None:
    """A task run inline by caller_runs that raises SystemExit: started, failed; that is all."""
    hooks = Recorder()
    gate = threading.Event()

    def leave() -> None:
        raise SystemExit(3)

    with WorkerPool(1, max_queue=1, overflow="caller_runs", hooks=hooks) as pool:
        pool.submit(gate.wait, WAIT)
        pool.submit(int)  # fills the queue
        with pytest.raises(SystemExit):
            pool.submit(leave)
        gate.set()
    assert hooks.by_task()[2] == ["submitted", "started", "failed"]


def test_tasks_a_broken_pool_never_starts_are_reported_failed(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The pool breaks before anything runs: each task gets submitted then failed (no
    started, no duration), each map item failed, with the BrokenPool error."""
    hooks = Recorder()
    gate = threading.Event()

    def init() -> None:
        assert gate.wait(WAIT)
        raise OSError("no database")

    with (
        caplog.at_level(logging.CRITICAL, logger="threadkit"),
        WorkerPool(1, initializer=init, hooks=hooks) as pool,
    ):
        futures = [pool.submit(int) for _ in range(3)]  # the first starts the worker
        items = pool.map(abs, [-1, -2])
        gate.set()
        for fut in futures:
            assert isinstance(fut.exception(WAIT), threadkit.BrokenPool)
        with pytest.raises(threadkit.BrokenPool):
            next(items)
    flows = hooks.by_task()
    assert flows == {task: ["submitted", "failed"] for task in range(3)}
    [map_id] = {event.map_id for _, event in hooks.events if event.map_id is not None}
    assert hooks.by_task(map_id) == {0: ["failed"], 1: ["failed"]}
    failed = [event for kind, event in hooks.events if kind == "failed"]
    assert all(event.duration is None for event in failed)
    assert all(isinstance(event.exception, threadkit.BrokenPool) for event in failed)


def test_bad_hooks_and_watchdog_values_raise() -> None:
    """hooks must be a PoolHooks; watchdog a positive number of seconds."""
    with pytest.raises(TypeError, match="hooks"):
        WorkerPool(1, hooks=object())  # type: ignore[call-overload]
    with pytest.raises(ValueError, match="watchdog"):
        WorkerPool(1, watchdog=0)
    with pytest.raises(ValueError, match="watchdog"):
        WorkerPool(1, watchdog=-1)


class Catch(logging.Handler):
    """A logging handler that signals when a record containing `needle` arrives."""

    def __init__(self, needle: str) -> None:
        super().__init__()
        self.needle = needle
        self.seen = threading.Event()
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        message = record.getMessage()
        self.messages.append(message)
        if self.needle in message:
            self.seen.set()


def test_watchdog_reports_a_long_task_once_with_its_stack() -> None:
    """A task running past the watchdog threshold is logged with thread and stack."""
    catch = Catch("long_task")
    log = logging.getLogger("threadkit")
    log.addHandler(catch)
    gate = threading.Event()

    def long_task() -> None:
        gate.wait(WAIT)

    try:
        with WorkerPool(2, watchdog=0.02, thread_name_prefix="watched") as pool:
            for _ in range(20):
                pool.submit(int, "1").result(WAIT)
            fut = pool.submit(long_task)
            assert catch.seen.wait(WAIT)
            # Let the watchdog look several more times (its interval is 5 ms): the task
            # must still be reported only once.
            while (pool.statistics().oldest_running or 0.0) < 0.2:
                gate.wait(0.01)
            gate.set()
            fut.result(WAIT)
    finally:
        log.removeHandler(catch)
    reports = [m for m in catch.messages if "long_task" in m]
    assert len(reports) == 1
    assert "watched_" in reports[0]
    assert "gate.wait" in reports[0]
    assert not any("builtins.int" in m for m in catch.messages)


def test_worker_snapshots_and_running_ages() -> None:
    """worker_snapshots names each worker, its task and stack; statistics show task ages."""
    gate = threading.Event()
    started = threading.Event()

    def stuck() -> None:
        started.set()
        gate.wait(WAIT)

    with WorkerPool(2, thread_name_prefix="snap") as pool:
        pool.submit(stuck)
        assert started.wait(WAIT)
        snaps = pool.worker_snapshots()
        busy = [s for s in snaps if s.task is not None]
        assert len(busy) == 1
        assert busy[0].thread_name == "snap_0"
        assert busy[0].task is not None
        assert busy[0].task.endswith("stuck")
        assert any("gate.wait" in line for line in busy[0].stack)
        stats = pool.statistics()
        assert len(stats.running_ages) == 1
        assert stats.running_ages[0] == stats.oldest_running
        gate.set()


# -- progress ---------------------------------------------------------------------------


class Counting:
    """A Progress object that records what the pool tells it."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.totals: list[int | None] = []
        self.done = 0
        self.failed = 0
        self.closed = 0

    def set_total(self, total: int | None) -> None:
        with self.lock:
            self.totals.append(total)

    def advance(self, n: int = 1, *, failed: bool = False) -> None:
        with self.lock:
            if failed:
                self.failed += n
            else:
                self.done += n

    def close(self) -> None:
        with self.lock:
            self.closed += 1


def test_map_progress_counts_completions_with_a_known_total() -> None:
    """progress= sees the total of a sized input and every completion, then a close."""
    seen = Counting()
    with WorkerPool(3) as pool:
        assert list(pool.map(abs, range(50), progress=seen, chunksize=4)) == list(range(50))
    assert seen.totals == [50]
    assert (seen.done, seen.failed, seen.closed) == (50, 0, 1)


def test_lazy_progress_learns_the_total_when_the_input_ends() -> None:
    """For a generator the total starts unknown and is set once the input runs out."""
    seen = Counting()

    def numbers() -> Any:
        yield from range(20)

    with WorkerPool(2) as pool:
        assert sorted(pool.map_unordered(abs, numbers(), progress=seen)) == list(range(20))
    assert seen.totals == [None, 20]
    assert seen.done == 20
    assert seen.closed == 1


def test_process_progress_counts_failures_apart() -> None:
    """Failed items advance the display as failed; a callable gets (done, total)."""
    calls: list[tuple[int, int | None]] = []
    lock = threading.Lock()

    class Half(threadkit.Worker[int, int]):
        def process(self, item: int) -> int:
            if item % 2:
                raise ValueError(item)
            return item

    def record(done: int, total: int | None) -> None:
        with lock:
            calls.append((done, total))

    seen = Counting()
    with WorkerPool(2, worker=Half) as pool:
        results = pool.process(range(10), progress=seen)
        assert next(results) == 0
        with pytest.raises(ValueError):
            next(results)
        results.close()
        assert list(pool.process([0, 2, 4], progress=record)) == [0, 2, 4]
    assert seen.done + seen.failed <= 10
    assert seen.failed >= 1
    assert calls[-1] == (3, 3)


def test_progress_true_stays_silent_off_a_terminal(capsys: pytest.CaptureFixture[str]) -> None:
    """progress=True shows nothing when stderr is not a terminal (logs, CI)."""
    with WorkerPool(2) as pool:
        assert list(pool.map(abs, [-1, -2], progress=True)) == [1, 2]
    assert capsys.readouterr().err == ""


def test_a_raising_progress_object_is_logged_and_the_map_goes_on(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A user's Progress that raises is turned off and logged; results still arrive."""

    class Broken(Counting):
        def advance(self, n: int = 1, *, failed: bool = False) -> None:
            raise RuntimeError("display broke")

    with caplog.at_level(logging.ERROR, logger="threadkit"), WorkerPool(2) as pool:
        assert list(pool.map(abs, range(10), progress=Broken())) == list(range(10))
    assert "display broke" in caplog.text


def test_events_a_hooks_class_does_not_override_cost_nothing(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Only overridden hook methods are called; a PoolHooks overriding none is no hooks."""
    emitted: list[str] = []
    import threadkit._hooks as hooks_module

    real_emit = hooks_module.emit

    def spy(method: Any, event: TaskEvent) -> None:
        emitted.append(method.__name__)
        real_emit(method, event)

    monkeypatch.setattr("threadkit._tasks.emit", spy)

    class OnlyFailures(PoolHooks):
        def task_failed(self, event: TaskEvent) -> None:
            pass

    with WorkerPool(1, hooks=OnlyFailures()) as pool:
        pool.submit(int, "1").result(WAIT)
        pool.submit(int, "x").exception(WAIT)
    assert emitted == ["task_failed"]
    with WorkerPool(1, hooks=PoolHooks()) as plain:
        assert plain._core.hooks is None
        plain.submit(int, "1").result(WAIT)
    assert emitted == ["task_failed"]
