"""TaskGroup: each rule pinned with events and barriers, never with sleeps."""

from __future__ import annotations

import concurrent.futures as cf
import contextlib
import gc
import os
import selectors
import signal
import subprocess
import sys
import textwrap
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, Generic, TypeVar

import pytest

import threadkit
from helpers import WAIT, FakeClock, Gate
from threadkit import Cancelled, TaskGroup, TaskGroupTimeout, WorkerPool, _cancel

E = TypeVar("E", bound=BaseException)
T = TypeVar("T")


class Caught(Generic[E]):
    """What ``expect`` caught."""

    value: E


@contextlib.contextmanager
def expect(kind: type[E]) -> Iterator[Caught[E]]:
    """Like ``pytest.raises``, for blocks of several statements (a group's whole block)."""
    caught: Caught[E] = Caught()
    try:
        yield caught
    except kind as exc:
        caught.value = exc
    else:
        raise AssertionError(f"{kind.__name__} was not raised")


def wait_until(predicate: Callable[[], bool]) -> None:
    """Block until ``predicate()`` holds (checked on a short tick), failing after WAIT."""
    tick = threading.Event()
    for _ in range(int(WAIT / 0.001)):
        if predicate():
            return
        tick.wait(0.001)
    raise AssertionError("condition never held")


def fail(message: str = "boom") -> None:
    raise ValueError(message)


def wait_for_cancel() -> object:
    """A cooperative task: wait on its token, then leave as a cancelled task does."""
    token = threadkit.current_token()
    assert token is not None
    assert token.wait(WAIT), "never cancelled"
    token.raise_if_cancelled()
    raise AssertionError("unreachable")


class Recorder:
    """Records which task ids ran, and the most that ran at once."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.ran: list[int] = []
        self.now = 0
        self.most = 0

    def task(self, task_id: int, gate: threading.Event | None = None) -> int:
        with self.lock:
            self.ran.append(task_id)
            self.now += 1
            self.most = max(self.most, self.now)
        try:
            if gate is not None:
                assert gate.wait(WAIT)
            return task_id
        finally:
            with self.lock:
                self.now -= 1


# -- success and waiting ------------------------------------------------------------------


def test_results_come_back_and_the_group_closes() -> None:
    """Every task's future has its result after the block; the group is closed then."""
    with TaskGroup() as tg:
        futures = [tg.submit(pow, i, 2) for i in range(20)]
    assert [f.result(0) for f in futures] == [i * i for i in range(20)]
    stats = tg.statistics()
    assert (stats.state, stats.submitted, stats.completed) == ("closed", 20, 20)
    with pytest.raises(RuntimeError, match="is closed"):
        tg.submit(int)


def test_exit_waits_for_every_task() -> None:
    """Leaving the block waits until a task still running at its end has finished."""
    gate = Gate()
    finished = threading.Event()

    def task() -> None:
        gate()
        finished.set()

    def opener(tg: TaskGroup) -> None:
        wait_until(lambda: tg.statistics().state == "exiting")
        gate.open()

    with TaskGroup() as tg:
        tg.submit(task)
        assert gate.started.wait(WAIT)
        helper = threading.Thread(target=opener, args=(tg,))
        helper.start()
    helper.join(WAIT)
    assert finished.is_set()


def test_current_token_in_a_task_is_the_groups_child_of_the_pools() -> None:
    """Inside a task, current_token() is the group's token, a child of the pool's token."""
    with WorkerPool(2) as pool, expect(Cancelled), TaskGroup(pool) as tg:
        seen = tg.submit(threadkit.current_token).result(WAIT)
        assert seen is tg.token
        pool.cancel_token.cancel("pool stops")
        assert tg.token.cancelled
        assert tg.token.reason == "pool stops"


def test_a_cancelled_pool_token_makes_the_exit_raise_cancelled() -> None:
    """A group cancelled from outside (the pool's token) leaves with Cancelled, not normally."""
    with WorkerPool(2) as pool, expect(Cancelled) as info, TaskGroup(pool) as tg:
        fut = tg.submit(wait_for_cancel)
        wait_until(lambda: tg.statistics().running == 1)
        pool.shutdown(wait=False, cancel_futures=True)
    assert info.value.reason == "the pool is shutting down"
    assert isinstance(fut.exception(0), Cancelled)
    assert tg.statistics().failed == 0


# -- the first failure ---------------------------------------------------------------------


def test_a_graceful_shutdown_request_cancels_a_group_in_its_block() -> None:
    """A group on its own pool inside a GracefulShutdown is cancelled by request()."""
    with (
        threadkit.GracefulShutdown(signals=()) as shutdown,
        expect(Cancelled) as info,
        TaskGroup() as tg,
    ):
        fut = tg.submit(wait_for_cancel)
        wait_until(lambda: tg.statistics().running == 1)
        shutdown.request("stop")
    assert info.value.reason == "stop"
    assert isinstance(fut.exception(0), Cancelled)


def test_first_failure_cancels_unstarted_tasks_which_never_run() -> None:
    """Tasks queued behind a failing one are cancelled and never run; the group holds it."""
    rec = Recorder()
    go = threading.Event()

    def failing() -> None:
        assert go.wait(WAIT)
        fail("first")

    with WorkerPool(1) as pool, expect(ExceptionGroup) as info, TaskGroup(pool) as tg:
        bad = tg.submit(failing)
        rest = [tg.submit(rec.task, i) for i in range(5)]
        go.set()
    assert [type(e) for e in info.value.exceptions] == [ValueError]
    assert info.value.exceptions[0] is bad.exception(0)
    assert all(f.cancelled() for f in rest)
    assert rec.ran == []
    stats = tg.statistics()
    assert (stats.failed, stats.cancelled, stats.completed) == (1, 5, 0)


def test_running_tasks_see_their_token_cancelled_and_are_not_failures() -> None:
    """A running task that stops on the group's token is a cancellation, not in the group."""
    with expect(ExceptionGroup) as info, TaskGroup() as tg:
        waiting = tg.submit(wait_for_cancel)
        wait_until(lambda: tg.statistics().running == 1)
        tg.submit(fail)
    assert [str(e) for e in info.value.exceptions] == ["boom"]
    assert isinstance(waiting.exception(0), Cancelled)
    assert tg.statistics().cancelled == 1


def test_the_group_is_cancelled_before_the_failed_future_is_resolved() -> None:
    """Whoever sees the failed future done finds the group already cancelled."""
    seen: list[bool] = []
    with expect(ExceptionGroup), TaskGroup() as tg:
        fut = tg.submit(fail)
        fut.add_done_callback(lambda f: seen.append(tg.token.cancelled))
        cf.wait([fut], timeout=WAIT)
        assert tg.cancelled
    assert seen == [True]


def test_a_ctrl_c_in_a_done_callback_does_not_stop_the_cancelling() -> None:
    """A KeyboardInterrupt from one future's callback still lets every task be cancelled."""
    ran = threading.Event()
    with WorkerPool(1) as pool, expect(KeyboardInterrupt), TaskGroup(pool) as tg:
        gate = Gate()
        tg.submit(gate)
        assert gate.started.wait(WAIT)
        first = tg.submit(ran.set)
        second = tg.submit(ran.set)

        def interrupt(_: cf.Future[Any]) -> None:
            raise KeyboardInterrupt

        first.add_done_callback(interrupt)
        try:
            tg.cancel()
        finally:
            gate.open()
    assert first.cancelled()
    assert second.cancelled()
    assert not ran.is_set()


def test_submit_after_cancellation_returns_a_cancelled_future_that_never_runs() -> None:
    """While the block is still open, a cancelled group hands out cancelled futures."""
    ran = threading.Event()
    with expect(ExceptionGroup), TaskGroup() as tg:
        cf.wait([tg.submit(fail)], timeout=WAIT)
        late = tg.submit(ran.set)
    assert late.cancelled()
    assert not ran.is_set()


def test_every_failure_is_in_the_group_but_no_cancellation() -> None:
    """Two tasks failing together are both raised; a Cancelled with a foreign reason counts."""
    barrier = threading.Barrier(3, timeout=WAIT)

    def together(exc: Exception) -> None:
        barrier.wait()
        raise exc

    first, second = ValueError("a"), Cancelled("some other token")
    with expect(ExceptionGroup) as info, TaskGroup() as tg:
        tg.submit(together, first)
        tg.submit(together, second)
        tg.submit(barrier.wait)
    assert set(map(id, info.value.exceptions)) == {id(first), id(second)}


def test_body_exception_cancels_and_is_raised_after_the_task_failures() -> None:
    """The block raising cancels the group; its exception comes last in the group."""
    with expect(ExceptionGroup) as info, TaskGroup() as tg:
        cf.wait([tg.submit(fail)], timeout=WAIT)
        waiting = tg.submit(wait_for_cancel)  # cancelled already: never runs
        raise KeyError("body")
    assert [type(e) for e in info.value.exceptions] == [ValueError, KeyError]
    assert waiting.cancelled()


def test_body_exception_alone_cancels_running_tasks() -> None:
    """With no failing task, the block's exception cancels running tasks and is grouped."""
    with expect(ExceptionGroup) as info, TaskGroup() as tg:
        waiting = tg.submit(wait_for_cancel)
        wait_until(lambda: tg.statistics().running == 1)
        raise KeyError("body")
    assert [type(e) for e in info.value.exceptions] == [KeyError]
    assert isinstance(waiting.exception(0), Cancelled)


# -- cancel(), timeout, limit ---------------------------------------------------------------


def test_cancel_leaves_the_block_normally_with_the_reason_on_the_token() -> None:
    """cancel(reason) stops running tasks with that reason and cancels queued ones."""
    with WorkerPool(1) as pool, TaskGroup(pool) as tg:
        running = tg.submit(wait_for_cancel)
        queued = tg.submit(int)
        wait_until(lambda: tg.statistics().running == 1)
        tg.cancel("enough")
        tg.cancel("twice is harmless")
    exc = running.exception(0)
    assert isinstance(exc, Cancelled)
    assert exc.reason == "enough"
    assert queued.cancelled()
    assert tg.statistics().cancelled == 2


def test_cancel_still_raises_task_failures() -> None:
    """A task failing while the group is cancelled still makes the exit raise it."""

    def fails_on_cancel() -> None:
        token = threadkit.current_token()
        assert token is not None
        assert token.wait(WAIT)
        fail("cleanup failed")

    with expect(ExceptionGroup) as info, TaskGroup() as tg:
        tg.submit(fails_on_cancel)
        wait_until(lambda: tg.statistics().running == 1)
        tg.cancel()
    assert [str(e) for e in info.value.exceptions] == ["cleanup failed"]


def test_body_raising_the_groups_cancelled_after_cancel_leaves_normally() -> None:
    """The block may stop itself with token.raise_if_cancelled() after cancel()."""
    with TaskGroup() as tg:
        tg.cancel("stop")
        tg.token.raise_if_cancelled()
    assert tg.statistics().group_cancelled


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> FakeClock:
    """Drive every token deadline with a fake clock."""
    fake = FakeClock()
    monkeypatch.setattr(_cancel, "_clock", fake)
    return fake


def test_a_timeout_already_passed_runs_nothing() -> None:
    """timeout=0: the group starts cancelled, no task runs, leaving raises TimeoutError."""
    ran = threading.Event()
    with expect(TaskGroupTimeout) as info, TaskGroup(timeout=0, name="late") as tg:
        fut = tg.submit(ran.set)
    assert isinstance(info.value, TimeoutError)
    assert str(info.value) == "late was cancelled after 0.0 s"
    assert info.value.__cause__ is None
    assert fut.cancelled()
    assert not ran.is_set()


def test_cancel_before_entering_cancels_on_entry_and_after_closing_does_nothing() -> None:
    """cancel() on an unentered group takes effect at entry; after the exit it is a no-op."""
    ran = threading.Event()
    tg = TaskGroup()
    tg.cancel("before")
    with tg:
        assert tg.token.reason == "before"
        fut = tg.submit(ran.set)
    assert fut.cancelled()
    assert not ran.is_set()
    tg.cancel("after")
    assert tg.token.reason == "before"
    assert tg.statistics().state == "closed"


def test_timeout_cancels_running_tasks_and_raises(clock: FakeClock) -> None:
    """Once the timeout passes, running tasks see DeadlineExceeded; leaving raises."""
    with expect(TaskGroupTimeout), TaskGroup(timeout=10) as tg:
        waiting = tg.submit(wait_for_cancel)
        wait_until(lambda: tg.statistics().running == 1)
        clock.advance(11)
    exc = waiting.exception(0)
    assert isinstance(exc, Cancelled)
    assert exc.reason is threadkit.DeadlineExceeded


def test_timeout_is_chained_to_the_failures(clock: FakeClock) -> None:
    """A task failing after the deadline is in the exception group the timeout is chained to."""

    def fails_late() -> None:
        token = threadkit.current_token()
        assert token is not None
        assert token.wait(WAIT)
        fail("late")

    with expect(TaskGroupTimeout) as info, TaskGroup(timeout=10) as tg:
        tg.submit(fails_late)
        wait_until(lambda: tg.statistics().running == 1)
        clock.advance(11)
    cause = info.value.__cause__
    assert isinstance(cause, ExceptionGroup)
    assert [str(e) for e in cause.exceptions] == ["late"]


def test_limit_runs_at_most_n_and_holds_the_rest_in_order() -> None:
    """With limit=2 on a pool of 6, two tasks run at once; held ones start in order."""
    rec = Recorder()
    gates = [threading.Event() for _ in range(6)]
    with WorkerPool(6) as pool, TaskGroup(pool, limit=2) as tg:
        for i, gate in enumerate(gates):
            tg.submit(rec.task, i, gate)
        wait_until(lambda: tg.statistics().running == 2)
        stats = tg.statistics()
        assert (stats.held, stats.waiting, stats.limit) == (4, 0, 2)
        # Free one place at a time: exactly the next held task starts.
        for i, gate in enumerate(gates):
            gate.set()
            started = min(i + 3, len(gates))
            wait_until(lambda started=started: len(rec.ran) == started)  # type: ignore[misc]
    assert rec.most == 2
    assert sorted(rec.ran[:2]) == [0, 1]
    assert rec.ran[2:] == [2, 3, 4, 5]


def test_limit_on_a_shared_pool_hands_out_no_more_than_n() -> None:
    """Held tasks are not handed to a shared pool: its queue holds at most limit of them."""
    gates = [threading.Event() for _ in range(5)]
    rec = Recorder()
    with WorkerPool(8) as pool, TaskGroup(pool, limit=1) as tg:
        for i, gate in enumerate(gates):
            tg.submit(rec.task, i, gate)
        wait_until(lambda: tg.statistics().running == 1)
        assert pool.statistics().submitted == 1
        for gate in gates:
            gate.set()
    assert rec.ran == [0, 1, 2, 3, 4]
    assert rec.most == 1


def test_failure_cancels_held_tasks() -> None:
    """Tasks held for a place are cancelled by a failure and never run."""
    rec = Recorder()
    go = threading.Event()

    def failing() -> None:
        assert go.wait(WAIT)
        fail()

    with expect(ExceptionGroup), TaskGroup(limit=1) as tg:
        tg.submit(failing)
        held = [tg.submit(rec.task, i) for i in range(3)]
        assert tg.statistics().held == 3
        go.set()
    assert all(f.cancelled() for f in held)
    assert rec.ran == []


def test_a_held_task_cancelled_by_its_owner_is_skipped() -> None:
    """Cancelling a held task's future counts it cancelled; the next held one runs."""
    gate = Gate()
    with TaskGroup(limit=1) as tg:
        first = tg.submit(gate)
        assert gate.started.wait(WAIT)
        skipped = tg.submit(int, "1")
        after = tg.submit(int, "2")
        assert skipped.cancel()
        gate.open()
    assert first.done()
    assert skipped.cancelled()
    assert after.result(0) == 2
    stats = tg.statistics()
    assert (stats.completed, stats.cancelled) == (2, 1)


def test_tasks_may_submit_to_their_group_even_after_the_block() -> None:
    """A task submitting more tasks (a crawler) keeps the group open until all ended."""
    gate = Gate()
    found: list[int] = []
    lock = threading.Lock()

    def crawl(depth: int) -> None:
        if depth == 0:
            gate()
        with lock:
            found.append(depth)
        if depth < 3:
            tg.submit(crawl, depth + 1)

    def opener() -> None:
        wait_until(lambda: tg.statistics().state == "exiting")
        gate.open()

    with TaskGroup() as tg:
        tg.submit(crawl, 0)
        assert gate.started.wait(WAIT)
        helper = threading.Thread(target=opener)
        helper.start()
    helper.join(WAIT)
    assert found == [0, 1, 2, 3]
    assert tg.statistics().completed == 4


# -- nesting -----------------------------------------------------------------------------


def test_inner_failure_is_one_failure_of_the_outer_group() -> None:
    """A task's own group raising its ExceptionGroup is one failure of the outer group."""

    def inner() -> None:
        with TaskGroup() as tg:
            tg.submit(fail, "deep")

    with expect(ExceptionGroup) as info, TaskGroup() as outer:
        outer.submit(inner)
    (nested,) = info.value.exceptions
    assert isinstance(nested, ExceptionGroup)
    assert [str(e) for e in nested.exceptions] == ["deep"]


def test_cancelling_the_outer_group_reaches_the_inner_one() -> None:
    """outer.cancel() cancels a task's inner group; the inner exit raises a cancellation."""
    inner_started = threading.Event()
    seen: list[object] = []

    def inner() -> None:
        with TaskGroup() as tg:
            seen.append(tg.token)
            fut = tg.submit(wait_for_cancel)
            inner_started.set()
        seen.append(fut)

    with TaskGroup() as outer:
        task = outer.submit(inner)
        assert inner_started.wait(WAIT)
        outer.cancel("all stop")
    exc = task.exception(0)
    assert isinstance(exc, Cancelled)
    assert exc.reason == "all stop"
    assert outer.statistics().failed == 0


def test_a_group_opened_in_another_groups_block_is_nested_in_it() -> None:
    """Lexical nesting in one thread: the inner group's token is a child of the outer's."""
    with TaskGroup() as outer, expect(Cancelled), TaskGroup() as inner:
        outer.cancel("outer")
        assert inner.token.cancelled
        assert inner.token.reason == "outer"


# -- BaseException rules -------------------------------------------------------------------


@pytest.mark.parametrize("kind", [KeyboardInterrupt, SystemExit])
def test_interrupts_from_a_task_are_raised_alone_after_all_tasks_ended(
    kind: type[BaseException],
) -> None:
    """KeyboardInterrupt or SystemExit from a task cancels, waits, and is raised alone."""
    raised = kind()
    both = threading.Barrier(2, timeout=WAIT)

    def task() -> None:
        both.wait()
        raise raised

    def failing() -> None:
        both.wait()
        fail()

    with expect(kind) as info, TaskGroup() as tg:
        other = tg.submit(wait_for_cancel)
        wait_until(lambda: tg.statistics().running == 1)
        tg.submit(task)
        tg.submit(failing)
    assert info.value is raised  # the ValueError is dropped, as asyncio.TaskGroup does
    assert isinstance(other.exception(0), Cancelled)


def test_other_base_exceptions_go_in_a_base_exception_group() -> None:
    """A BaseException that is not an interrupt is grouped (a BaseExceptionGroup)."""

    class Odd(BaseException):
        pass

    def task() -> None:
        raise Odd

    with expect(BaseExceptionGroup) as info, TaskGroup() as tg:
        tg.submit(task)
    assert not isinstance(info.value, ExceptionGroup)
    assert [type(e) for e in info.value.exceptions] == [Odd]


def test_keyboard_interrupt_in_the_block_cancels_and_is_raised() -> None:
    """Ctrl-C in the block cancels the group, lets cooperative tasks end, and goes on."""
    interrupt = KeyboardInterrupt()
    with expect(KeyboardInterrupt) as info, TaskGroup() as tg:
        waiting = tg.submit(wait_for_cancel)
        wait_until(lambda: tg.statistics().running == 1)
        raise interrupt
    assert info.value is interrupt
    assert isinstance(waiting.exception(0), Cancelled)


def test_keyboard_interrupt_waits_only_for_the_grace() -> None:
    """A task that ignores cancellation does not hold a Ctrl-C longer than the grace."""
    release = threading.Event()

    def stubborn() -> None:
        assert release.wait(WAIT)

    try:
        with expect(KeyboardInterrupt), TaskGroup(grace=0) as tg:
            fut = tg.submit(stubborn)
            wait_until(lambda: tg.statistics().running == 1)
            raise KeyboardInterrupt
        assert not fut.done()
        assert tg.statistics().state == "closed"
    finally:
        release.set()
    assert fut.result(WAIT) is None


# -- arguments and states ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"limit": 0}, ValueError, "limit must be an int >= 1, got 0"),
        ({"limit": 1.5}, TypeError, "limit must be an int"),
        ({"limit": True}, TypeError, "limit must be an int"),
        ({"timeout": -1}, ValueError, "timeout must be None or a finite number >= 0"),
        ({"timeout": "1"}, TypeError, "timeout must be None or a number"),
        ({"grace": None}, TypeError, "grace must be a number"),
        ({"name": 3}, TypeError, "name must be a str"),
        ({"pool": 42}, TypeError, "pool must be a concurrent.futures.Executor"),
    ],
)
def test_bad_arguments_fail_at_the_call(kwargs: dict[str, Any], error: type, match: str) -> None:
    """Each bad argument is refused by the constructor, naming the parameter."""
    with pytest.raises(error, match=match):
        TaskGroup(**kwargs)


def test_a_process_pool_is_refused() -> None:
    """A process pool cannot share the token with its tasks: refused at once."""
    with cf.ProcessPoolExecutor(1) as pool, pytest.raises(TypeError, match="threads"):
        TaskGroup(pool)


def test_submit_needs_a_callable_and_an_entered_open_group() -> None:
    """submit(42) is a TypeError; before entering or after closing, a RuntimeError."""
    tg = TaskGroup(name="g")
    with pytest.raises(RuntimeError, match="g has not been entered"):
        tg.submit(int)
    with pytest.raises(RuntimeError, match="has not been entered"):
        _ = tg.token
    with tg:
        with pytest.raises(TypeError, match="submit\\(\\) needs a callable, got 42"):
            tg.submit(42)  # type: ignore[arg-type]
        with pytest.raises(RuntimeError, match="already entered"):
            tg.__enter__()
    with pytest.raises(RuntimeError, match="g is closed"):
        tg.submit(int)
    assert tg.statistics().submitted == 0


def test_statistics_and_repr_show_live_state() -> None:
    """statistics() adds up at every step, and the repr shows the state and counts."""
    gate = Gate()
    tg = TaskGroup(name="stats", limit=1)
    assert "new" in repr(tg)
    with tg:
        tg.submit(gate)
        assert gate.started.wait(WAIT)
        tg.submit(int)
        stats = tg.statistics()
        assert (stats.running, stats.held, stats.submitted) == (1, 1, 2)
        text = repr(tg)
        assert text.startswith("<threadkit.TaskGroup 'stats' open limit=1 running=1")
        assert "held=1" in text
        gate.open()
    stats = tg.statistics()
    assert stats == threadkit.TaskGroupStatistics(
        name="stats",
        state="closed",
        group_cancelled=False,
        limit=1,
        submitted=2,
        held=0,
        waiting=0,
        running=0,
        completed=2,
        failed=0,
        cancelled=0,
    )


# -- other executors and shared pools -------------------------------------------------------


def test_any_thread_executor_works_with_cooperative_cancellation() -> None:
    """On a ThreadPoolExecutor tasks see the group's token, and a failure stops them."""
    with cf.ThreadPoolExecutor(2) as executor:
        with expect(ExceptionGroup), TaskGroup(executor) as tg:
            waiting = tg.submit(wait_for_cancel)
            wait_until(lambda: tg.statistics().running == 1)
            token = tg.submit(threadkit.current_token).result(WAIT)
            tg.submit(fail)
        assert token is tg.token
        assert isinstance(waiting.exception(0), Cancelled)
        # The executor's thread keeps no group token in its own context afterwards.
        assert executor.submit(threadkit.current_token).result(WAIT) is None


def test_a_held_task_fails_when_the_shared_pool_stops_taking_work() -> None:
    """A held task the shut-down pool refuses fails with PoolShutDown (not stuck forever)."""
    gate = Gate()
    pool: WorkerPool[Any, Any] = WorkerPool(2)
    try:
        with expect(ExceptionGroup) as info, TaskGroup(pool, limit=1) as tg:
            tg.submit(gate)
            assert gate.started.wait(WAIT)
            held = tg.submit(int)
            pool.shutdown(wait=False)
            gate.open()
    finally:
        pool.shutdown()
    assert [type(e) for e in info.value.exceptions] == [threadkit.PoolShutDown]
    assert isinstance(held.exception(0), threadkit.PoolShutDown)


def test_the_pool_reports_a_group_task_by_its_own_callable() -> None:
    """A pool's worker snapshots name the task's function, not the group's machinery."""
    started, release = threading.Event(), threading.Event()

    def hold_the_worker() -> None:
        started.set()
        assert release.wait(WAIT)

    with WorkerPool(1) as pool, TaskGroup(pool) as tg:
        tg.submit(hold_the_worker)
        assert started.wait(WAIT)
        (snapshot,) = pool.worker_snapshots()
        release.set()
    assert snapshot.task is not None
    assert snapshot.task.endswith("hold_the_worker"), snapshot.task


class InlineExecutor(cf.Executor):
    """Runs every task in the submitting thread, inside submit()."""

    def submit(self, fn: Callable[..., T], /, *args: Any, **kwargs: Any) -> cf.Future[T]:
        fut: cf.Future[T] = cf.Future()
        fut.set_result(fn(*args, **kwargs))
        return fut


def test_a_long_line_of_held_tasks_run_inline_does_not_recurse() -> None:
    """Held tasks a pool runs inline start one after another, not nested (no RecursionError)."""

    def spawner() -> None:
        for i in range(3 * sys.getrecursionlimit()):
            tg.submit(int, str(i))  # held: the spawner itself fills the only place

    with TaskGroup(InlineExecutor(), limit=1) as tg:
        tg.submit(spawner)
    stats = tg.statistics()
    assert stats.completed == stats.submitted == 3 * sys.getrecursionlimit() + 1


def test_submit_to_a_shut_down_pool_raises_and_counts_nothing() -> None:
    """When the pool refuses a task, submit raises its error and the group forgets it."""
    pool: WorkerPool[Any, Any] = WorkerPool(1)
    pool.shutdown()
    with TaskGroup(pool) as tg, expect(threadkit.PoolShutDown):
        tg.submit(int)
    assert tg.statistics().submitted == 0


def test_a_queued_task_cancelled_by_its_owner_is_counted_once_and_never_runs() -> None:
    """Cancelling the future of a task waiting in the pool counts it cancelled; exit returns."""
    gate = Gate()
    ran = threading.Event()
    with WorkerPool(1) as pool:
        with TaskGroup(pool) as tg:
            first = tg.submit(gate)
            assert gate.started.wait(WAIT)
            queued = tg.submit(ran.set)
            assert queued.cancel()
            assert queued.cancel()  # again: nothing changes
            gate.open()
        assert pool.statistics().cancelled == 1
    assert first.done()
    assert queued.cancelled()
    assert not ran.is_set()
    stats = tg.statistics()
    assert (stats.submitted, stats.completed, stats.cancelled) == (2, 1, 1)


def raise_os_error() -> None:
    raise OSError("no setup")


@pytest.mark.parametrize(
    ("pool_kwargs", "limit"),
    [({}, None), ({}, 1), ({"max_queue": 4}, None), ({"hooks": threadkit.PoolHooks()}, None)],
    ids=["plain", "limit", "bounded-queue", "hooks"],
)
def test_a_pool_that_breaks_fails_the_groups_task_instead_of_hanging_the_exit(
    caplog: pytest.LogCaptureFixture, pool_kwargs: dict[str, Any], limit: int | None
) -> None:
    """A task a broken pool will never run is a failure of the group, not a task forever
    live: whether the pool takes the group's entry itself or runs the group's wrapper."""
    pool: WorkerPool[Any, Any] = WorkerPool(1, initializer=raise_os_error, **pool_kwargs)
    try:
        with expect(ExceptionGroup) as info, TaskGroup(pool, limit=limit) as tg:
            fut = tg.submit(int, "1")
    finally:
        pool.shutdown()
    (error,) = info.value.exceptions
    assert isinstance(error, threadkit.BrokenPool)
    assert fut.exception(0) is error
    stats = tg.statistics()
    assert (stats.group_cancelled, stats.failed) == (True, 1)
    assert "Exception in initializer" in caplog.text


def test_tasks_a_stdlib_pool_cancels_at_shutdown_end_cancelled() -> None:
    """``shutdown(cancel_futures=True)`` on another executor cancels the queued tasks the
    group handed it: they count as cancelled, never run, and the exit returns."""
    gate = Gate()
    ran = threading.Event()
    stdlib = cf.ThreadPoolExecutor(1)
    try:
        with TaskGroup(stdlib) as tg:
            tg.submit(gate)
            assert gate.started.wait(WAIT)
            queued = tg.submit(ran.set)
            stdlib.shutdown(wait=False, cancel_futures=True)
            gate.open()
    finally:
        stdlib.shutdown()
    assert queued.cancelled()
    assert not ran.is_set()
    stats = tg.statistics()
    assert (stats.submitted, stats.completed, stats.cancelled) == (2, 1, 1)


def test_a_failed_task_is_not_logged_as_unretrieved(caplog: pytest.LogCaptureFixture) -> None:
    """The exit raises a task's failure: its future never logs it as lost."""
    with WorkerPool(1) as pool, expect(ExceptionGroup), TaskGroup(pool) as tg:
        tg.submit(fail)
    assert pool.statistics().failed == 1
    gc.collect()
    assert "never retrieved" not in caplog.text


# -- Ctrl-C in a real interpreter ---------------------------------------------------------

ROOT = Path(__file__).resolve().parents[1]
CHILD_WAIT = 20.0

SECOND_CTRL_C = """
import sys, threading, threadkit
hung = threading.Event()
with threadkit.TaskGroup(grace=60) as tg:
    tg.submit(hung.wait)
    tg.token.add_callback(lambda t: print("CANCELLED", flush=True))
    print("READY", flush=True)
    threading.Event().wait()
"""


@pytest.mark.skipif(sys.platform == "win32", reason="needs POSIX signals")
def test_a_second_ctrl_c_does_not_wait_for_the_grace() -> None:
    """One Ctrl-C cancels and waits up to the grace; a second ends the wait at once."""
    path = os.pathsep.join(filter(None, [str(ROOT / "src"), os.environ.get("PYTHONPATH")]))
    env = {**os.environ, "PYTHONPATH": path, "PYTHONDONTWRITEBYTECODE": "1"}
    with subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(SECOND_CTRL_C)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    ) as proc:
        try:
            assert proc.stdout is not None
            lines = []
            with selectors.DefaultSelector() as selector:
                selector.register(proc.stdout, selectors.EVENT_READ)
                for expected, send in (("READY", True), ("CANCELLED", True)):
                    assert selector.select(CHILD_WAIT), f"the child never printed {expected}"
                    line = proc.stdout.readline()
                    lines.append(line)
                    assert line.strip() == expected, line
                    if send:
                        proc.send_signal(signal.SIGINT)
            _, err = proc.communicate(timeout=CHILD_WAIT)  # not 60 s: the grace was cut
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.communicate()
    assert proc.returncode != 0
    assert "KeyboardInterrupt" in err
