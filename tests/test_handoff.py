"""The hand-off to idle workers: a task waits in the queue only when nobody can run it.

The engine's invariant (see ``threadkit._core``): an entry waits in the task queue only
while no worker is idle and the pool is at ``max_workers``. These tests pin it directly,
and pin what follows from it: gated work never deadlocks below the cap, bursts of quick
tasks reuse idle workers, and elastic pools still retire and grow as documented.
"""

from __future__ import annotations

import concurrent.futures as cf
import itertools
import random
import threading
from collections.abc import Callable
from typing import Any

import pytest

from helpers import WAIT, Gate, handoff_holds
from threadkit import BrokenPool, WorkerPool


def patch_thread_starts(
    monkeypatch: pytest.MonkeyPatch, prefix: str, before_start: Callable[[int], None]
) -> None:
    """Call ``before_start(n)`` before the ``n``-th start (from 1) of a thread whose name
    starts with ``prefix``; it may block, or raise as a failed start would."""
    real_start = threading.Thread.start
    starts = itertools.count(1)

    def start(thread: threading.Thread) -> None:
        if thread.name.startswith(prefix):
            before_start(next(starts))
        real_start(thread)

    monkeypatch.setattr(threading.Thread, "start", start)


def refuse_start(n: int) -> None:
    """A ``before_start`` for ``patch_thread_starts``: no thread can start."""
    raise RuntimeError("can't start new thread")


def wait_until_all_idle(pool: WorkerPool) -> int:
    """Wait until every worker of ``pool`` is idle; return how many there are."""
    for _ in range(int(WAIT / 0.001)):
        stats = pool.statistics()
        if stats.idle == stats.workers:
            return stats.workers
        threading.Event().wait(0.001)
    raise AssertionError("the pool never went quiet")


def test_tasks_go_to_idle_workers_then_new_ones_then_the_queue() -> None:
    """Each submission is handed to an idle worker if one exists, starts a worker if the
    pool may grow, and is queued only at the cap with every worker busy."""
    gates = [Gate() for _ in range(5)]
    with WorkerPool(3) as pool:
        assert pool.submit(int, "1").result(WAIT) == 1
        assert wait_until_all_idle(pool) == 1
        futures = [pool.submit(gates[0])]
        assert gates[0].started.wait(WAIT)
        stats = pool.statistics()
        assert (stats.workers, stats.queued) == (1, 0)  # the idle worker took it
        for gate in gates[1:3]:
            futures.append(pool.submit(gate))
            assert gate.started.wait(WAIT)
            assert handoff_holds(pool)
        stats = pool.statistics()
        assert (stats.workers, stats.busy, stats.queued) == (3, 3, 0)
        futures += [pool.submit(gate) for gate in gates[3:]]
        stats = pool.statistics()
        assert (stats.workers, stats.queued) == (3, 2)  # at the cap: queued
        assert handoff_holds(pool)
        for gate in gates:
            gate.open()
        assert all(f.result(WAIT) is None for f in futures)
        assert pool.statistics().workers == 3


def test_a_map_is_handed_to_idle_workers_before_threads_start() -> None:
    """A map's items go to the idle workers first; no thread starts while one is idle."""
    with WorkerPool(8) as pool:
        cf.wait([pool.submit(int) for _ in range(2)], timeout=WAIT)
        before = wait_until_all_idle(pool)
        items = [-i for i in range(1, before + 1)]
        assert list(pool.map(abs, items)) == [-i for i in items]
        assert pool.statistics().workers == before
        assert handoff_holds(pool)


def _gated_chain(max_workers: int, length: int, seed: int) -> bool:
    """One trial: ``length`` tasks, each waiting for the next to start, submitted in a
    random order to a pool with room for all of them. ``True`` if all ended."""
    rng = random.Random(seed)
    started = [threading.Event() for _ in range(length)]

    def task(i: int) -> int:
        started[i].set()
        if i + 1 < length:
            assert started[i + 1].wait(WAIT), f"task {i + 1} never started"
        return i

    order = list(range(length))
    rng.shuffle(order)
    pool = WorkerPool(max_workers)
    try:
        futures = []
        for i in order:
            futures.append(pool.submit(task, i))
            if rng.random() < 0.3:
                pool.submit(int).result(WAIT)  # let a worker go idle in between
        done, _ = cf.wait(futures, timeout=WAIT)
        return len(done) == length and all(f.exception() is None for f in futures)
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


def test_a_gated_chain_below_the_cap_never_deadlocks() -> None:
    """Tasks that each wait for a later one all run when the pool has room for them."""
    for seed in range(20):
        assert _gated_chain(max_workers=6, length=6, seed=seed), seed


@pytest.mark.slow
def test_gated_chains_never_deadlock_below_the_cap_thousands_of_trials() -> None:
    """2,000 randomized trials of gated work (sizes, orders, idle workers in between)."""
    rng = random.Random(12345)
    for trial in range(2000):
        cap = rng.randint(2, 12)
        length = rng.randint(1, cap)
        assert _gated_chain(cap, length, seed=trial), (trial, cap, length)


def _peak_threads(make: object, bursts: int, size: int) -> int:
    """The most threads a pool had over ``bursts`` bursts of ``size`` no-op tasks."""
    pool = make(2000)  # type: ignore[operator]
    peak = 0
    try:
        for _ in range(bursts):
            done, _ = cf.wait([pool.submit(int) for _ in range(size)], timeout=WAIT)
            assert len(done) == size
            peak = max(peak, threading.active_count())
    finally:
        pool.shutdown(wait=True)
    return peak


@pytest.mark.slow
def test_bursts_start_no_more_threads_than_the_stdlib() -> None:
    """30 bursts of 300 no-op tasks on a 2,000-thread pool start no more threads than
    ThreadPoolExecutor does for the same bursts (it starts about 120 on two cores)."""
    base = threading.active_count()
    ours = _peak_threads(WorkerPool, 30, 300) - base
    theirs = _peak_threads(cf.ThreadPoolExecutor, 30, 300) - base
    assert ours <= theirs, (ours, theirs)


@pytest.mark.parametrize("max_queue", [None, 1])
def test_a_worker_starting_outside_the_lock_is_waited_for_and_idle_ones_are_not_blocked(
    monkeypatch: pytest.MonkeyPatch, max_queue: int | None
) -> None:
    """A submitter starts a new worker's thread after releasing the engine's lock: workers
    go idle meanwhile, and a shutdown that comes first still waits for that worker."""
    reached, go = threading.Event(), threading.Event()

    def hold_second(n: int) -> None:
        if n == 2:  # the pool's second worker
            reached.set()
            assert go.wait(WAIT)

    patch_thread_starts(monkeypatch, "gated", hold_second)
    pool = WorkerPool(2, thread_name_prefix="gated", max_queue=max_queue)
    first = Gate()
    futures = [pool.submit(first)]
    assert first.started.wait(WAIT)
    submitter = threading.Thread(target=lambda: futures.append(pool.submit(int, "2")))
    submitter.start()
    assert reached.wait(WAIT)
    # The first worker finishes and goes idle while the second one is being started
    # (counted, so busy with its first task).
    first.open()
    for _ in range(int(WAIT / 0.001)):
        if pool.statistics().idle == 1:
            break
        threading.Event().wait(0.001)
    stats = pool.statistics()
    assert (stats.workers, stats.idle, stats.busy) == (2, 1, 1)
    ended = threading.Event()

    def shut_down() -> None:
        pool.shutdown(wait=True)
        ended.set()

    shutter = threading.Thread(target=shut_down)
    shutter.start()
    assert not ended.wait(0.1), "shutdown returned before a counted worker started"
    go.set()
    submitter.join(WAIT)
    shutter.join(WAIT)
    assert ended.is_set()
    assert [f.result(0) for f in futures] == [None, 2]
    stats = pool.statistics()
    assert (stats.submitted, stats.completed, stats.workers) == (2, 2, 0)


@pytest.mark.parametrize("replacement_starts", [True, False])
def test_work_queued_behind_a_worker_that_failed_to_start_still_runs_or_fails(
    monkeypatch: pytest.MonkeyPatch, replacement_starts: bool
) -> None:
    """A task queued while a counted worker's thread was being started (the pool looked
    full) gets another worker if that start fails, or fails with the pool if none can
    start: it is never left waiting for nobody."""
    reached, go = threading.Event(), threading.Event()

    def fail_first(n: int) -> None:
        if n == 1:
            reached.set()
            assert go.wait(WAIT)
            refuse_start(n)
        if not replacement_starts:
            refuse_start(n)

    patch_thread_starts(monkeypatch, "fragile", fail_first)
    pool = WorkerPool(1, thread_name_prefix="fragile")
    first: list[BaseException] = []

    def submit_first() -> None:
        try:
            pool.submit(int, "1")
        except RuntimeError as exc:
            first.append(exc)

    submitter = threading.Thread(target=submit_first)
    submitter.start()
    assert reached.wait(WAIT)
    queued = pool.submit(int, "2")  # the pool is at max_workers: queued
    assert pool.statistics().queued == 1
    go.set()
    submitter.join(WAIT)
    assert [str(e) for e in first] == ["can't start new thread"]
    if replacement_starts:
        assert queued.result(WAIT) == 2
    else:
        with pytest.raises(BrokenPool, match="no worker thread could be started"):
            queued.result(WAIT)
    pool.shutdown(wait=True)
    stats = pool.statistics()
    assert stats.submitted == stats.completed + stats.failed + stats.cancelled == 1


@pytest.mark.parametrize("replacement_starts", [True, False])
def test_a_worker_that_crashes_with_work_queued_is_replaced_or_the_pool_breaks(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture, replacement_starts: bool
) -> None:
    """ALIVE: a worker dying of a threadkit bug fails its own task; work queued behind it
    gets a new worker, or, if none can start, fails with the broken pool."""
    # The engine's own task runner is what crashes here.
    from threadkit._tasks import run_task as real_run_task

    gate = Gate()

    def crashing_run_task(entry: Any, *args: Any) -> int:
        if entry[1] is gate:
            gate(None)
            raise AssertionError("a bug in the worker loop")
        return real_run_task(entry, *args)

    monkeypatch.setattr("threadkit._core.run_task", crashing_run_task)
    pool = WorkerPool(1, thread_name_prefix="crashing")
    doomed = pool.submit(gate)
    assert gate.started.wait(WAIT)
    queued = pool.submit(int, "7")  # at max_workers, the only worker busy: queued
    if not replacement_starts:
        patch_thread_starts(monkeypatch, "crashing", refuse_start)
    gate.open()
    with pytest.raises(RuntimeError, match="the worker running this task crashed"):
        doomed.result(WAIT)
    if replacement_starts:
        assert queued.result(WAIT) == 7
    else:
        with pytest.raises(BrokenPool, match="no replacement could be started"):
            queued.result(WAIT)
    pool.shutdown(wait=True)
    assert "crashed; threadkit bug" in caplog.text
