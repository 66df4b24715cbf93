"""Seeing what a pool does: lifecycle hooks, the watchdog, worker snapshots."""

from __future__ import annotations

import logging
import threading
from typing import Any

import pytest

import threadkit
from threadkit import PoolHooks, TaskEvent, WorkerPool

WAIT = 10.0


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
        def task_started(self, event: TaskEvent) -> None:
            raise KeyboardInterrupt("hook")

        def task_finished(self, event: TaskEvent) -> None:
            raise ValueError("hook")

    with caplog.at_level(logging.ERROR, logger="threadkit"), WorkerPool(1, hooks=Broken()) as pool:
        assert pool.submit(int, "5").result(WAIT) == 5
        assert pool.submit(int, "6").result(WAIT) == 6
    assert caplog.text.count("pool hook") >= 4


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

    monkeypatch.setattr(WorkerPool, "_submit_hooked", forbidden)
    with WorkerPool(2) as pool:
        assert pool.submit(int, "3").result(WAIT) == 3
        assert list(pool.map(abs, [-4])) == [4]
        assert pool.try_submit(int) is not None


def test_bad_hooks_and_watchdog_values_raise() -> None:
    """hooks must be a PoolHooks; watchdog a positive number of seconds."""
    with pytest.raises(TypeError, match="hooks"):
        WorkerPool(1, hooks=object())  # type: ignore[arg-type]
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
