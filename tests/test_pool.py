"""WorkerPool: behaviour beyond the stdlib contract, and the stdlib defects it fixes."""

from __future__ import annotations

import concurrent.futures as cf
import contextvars
import gc
import itertools
import logging
import signal
import sys
import threading
import time
from collections.abc import Iterator
from concurrent.futures.thread import BrokenThreadPool
from typing import Any

import pytest

import threadkit
from helpers import WAIT, Gate
from threadkit import WorkerPool


def busy_pool(**kwargs: Any) -> tuple[WorkerPool[Any, Any], Gate, cf.Future[Any]]:
    """A one-worker pool whose only worker is held by a gate."""
    pool: WorkerPool[Any, Any] = WorkerPool(1, **kwargs)
    gate = Gate()
    held = pool.submit(gate)
    assert gate.started.wait(WAIT)
    return pool, gate, held


# -- submitting and results ------------------------------------------------------------


def test_submit_returns_a_stdlib_future() -> None:
    """submit hands out a concurrent.futures.Future with the call's result."""
    with WorkerPool(2) as pool:
        fut = pool.submit(pow, 2, 10)
        assert isinstance(fut, cf.Future)
        assert fut.result(WAIT) == 1024


class FalsyError(Exception):
    def __bool__(self) -> bool:
        return False


class BadReprError(Exception):
    def __repr__(self) -> str:
        raise RuntimeError("no repr for you")


@pytest.mark.parametrize(
    "exc", [ValueError("x"), FalsyError(), BadReprError(), TimeoutError("from the task")]
)
def test_task_exception_is_carried_as_is(exc: Exception) -> None:
    """The future carries the very exception object the task raised; the worker lives on."""

    def fail() -> None:
        raise exc

    with WorkerPool(1) as pool:
        fut = pool.submit(fail)
        assert fut.exception(WAIT) is exc
        assert pool.submit(int, "7").result(WAIT) == 7


class CustomBase(BaseException):
    pass


@pytest.mark.parametrize("exc_type", [SystemExit, KeyboardInterrupt, CustomBase])
def test_base_exceptions_are_captured_and_the_worker_survives(
    exc_type: type[BaseException],
) -> None:
    """A task raising SystemExit, KeyboardInterrupt or another BaseException fails only itself."""
    names: list[str] = []

    def fail() -> None:
        names.append(threading.current_thread().name)
        raise exc_type

    def name() -> str:
        return threading.current_thread().name

    with WorkerPool(1) as pool:
        fut = pool.submit(fail)
        assert isinstance(fut.exception(WAIT), exc_type)
        assert pool.submit(name).result(WAIT) == names[0]
        assert pool.statistics().workers == 1


def test_callback_raising_base_exception_is_logged_and_others_run(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A done-callback raising a BaseException is logged; later callbacks run; no worker dies."""
    ran: list[str] = []
    pool, gate, held = busy_pool()
    with pool:

        def bad(_: cf.Future[Any]) -> None:
            raise CustomBase("callback blew up")

        held.add_done_callback(bad)
        held.add_done_callback(lambda _: ran.append("second"))
        with caplog.at_level(logging.ERROR, logger="threadkit"):
            gate.open()
            assert held.result(WAIT) is None
            assert pool.submit(int, "3").result(WAIT) == 3
    assert ran == ["second"]
    assert "callback blew up" in caplog.text


def test_submit_refuses_a_non_callable_and_queues_nothing() -> None:
    """submit(42) raises TypeError at once and nothing is counted as submitted."""
    with WorkerPool(1) as pool:
        with pytest.raises(TypeError, match="callable"):
            pool.submit(42)  # type: ignore[arg-type]
        assert pool.statistics().submitted == 0


@pytest.mark.parametrize(
    ("kwargs", "error"),
    [
        ({"max_workers": 0}, ValueError),
        ({"max_workers": -1}, ValueError),
        ({"max_workers": 1.5}, TypeError),
        ({"max_workers": True}, TypeError),
        ({"max_workers": "2"}, TypeError),
        ({"thread_name_prefix": 3}, TypeError),
        ({"initializer": 5}, TypeError),
        ({"worker": 5}, TypeError),
        ({"max_queue": 0}, ValueError),
        ({"max_queue": True}, TypeError),
        ({"overflow": "explode"}, ValueError),
        ({"submit_timeout": -1}, ValueError),
        ({"submit_timeout": float("nan")}, ValueError),
        ({"idle_timeout": -0.5}, ValueError),
        ({"shutdown_grace": float("nan")}, ValueError),
        ({"min_workers": -1}, ValueError),
        ({"max_workers": 2, "min_workers": 3}, ValueError),
        ({"worker": threadkit.Worker, "overflow": "caller_runs"}, ValueError),
    ],
)
def test_bad_constructor_arguments_raise_at_the_call(
    kwargs: dict[str, Any], error: type[Exception]
) -> None:
    """Every constructor argument is checked where it is given, naming the parameter."""
    with pytest.raises(error):
        WorkerPool(**kwargs)


def test_default_size_matches_the_running_pythons_executor() -> None:
    """Without max_workers the pool is as large as ThreadPoolExecutor would be."""
    with cf.ThreadPoolExecutor() as stdlib, WorkerPool() as pool:
        assert pool.max_workers == stdlib._max_workers


def test_workers_are_named_from_the_prefix_and_unique_across_pools() -> None:
    """Workers are named {prefix}_{n}, and two pools with one prefix never share a name."""
    barrier = threading.Barrier(4, timeout=WAIT)

    def name() -> str:
        barrier.wait()
        return threading.current_thread().name

    with WorkerPool(2, "dl") as first, WorkerPool(2, "dl") as second:
        futures = [first.submit(name), first.submit(name)]
        futures += [second.submit(name), second.submit(name)]
        names = [f.result(WAIT) for f in futures]
    assert len(set(names)) == 4
    assert all(n.startswith("dl_") for n in names)


def test_default_prefix_names_the_pool() -> None:
    """Without a prefix, workers are named WorkerPool-{k}_{n}."""
    with WorkerPool(1) as pool:
        name = pool.submit(lambda: threading.current_thread().name).result(WAIT)
    assert name.startswith("WorkerPool-")


request_id: contextvars.ContextVar[str] = contextvars.ContextVar("request_id", default="none")


def test_tasks_run_in_a_copy_of_the_submitters_context() -> None:
    """A task sees the submitter's context variables; its own changes stay in its copy."""

    def read_and_set() -> str:
        seen = request_id.get()
        request_id.set("changed-by-task")
        return seen

    with WorkerPool(1) as pool:
        token = request_id.set("r-42")
        try:
            assert pool.submit(read_and_set).result(WAIT) == "r-42"
            assert list(pool.map(lambda _: request_id.get(), range(3))) == ["r-42"] * 3
            assert request_id.get() == "r-42"
        finally:
            request_id.reset(token)


# -- cancellation is notified at once ---------------------------------------------------


def test_cancel_notifies_wait_and_as_completed_at_once() -> None:
    """A queued future cancelled by the user is seen by wait() without any worker's help."""
    pool, gate, _held = busy_pool()
    with pool:
        queued = pool.submit(int, "1")
        assert queued.cancel()
        done, _ = cf.wait([queued], timeout=0)
        assert queued in done
        assert list(cf.as_completed([queued], timeout=0)) == [queued]
        gate.open()
    assert pool.statistics().cancelled == 1


def test_cancel_runs_callbacks_once_and_never_starts_the_task() -> None:
    """Cancelling runs each done-callback once and the task body never runs."""
    calls: list[bool] = []
    ran = threading.Event()
    pool, gate, _held = busy_pool()
    with pool:
        queued = pool.submit(ran.set)
        queued.add_done_callback(lambda f: calls.append(f.cancelled()))
        assert queued.cancel()
        assert queued.cancel()  # idempotent
        gate.open()
    assert calls == [True]
    assert not ran.is_set()
    assert not queued.set_running_or_notify_cancel()


# -- map -------------------------------------------------------------------------------


def test_map_is_ordered_and_zips_like_the_builtin() -> None:
    """map yields results in input order, stopping at the shortest iterable."""
    with WorkerPool(4) as pool:
        assert list(pool.map(pow, [2, 3, 4], [5, 2])) == [32, 9]
        assert list(pool.map(str, range(100), chunksize=7)) == [str(i) for i in range(100)]


def test_map_raises_at_the_failing_item_and_cancels_the_rest() -> None:
    """An item's exception surfaces at its position; unstarted items are cancelled."""
    gate = Gate()

    def work(i: int) -> int:
        if i == 1:
            raise ValueError("item 1")
        if i == 0:
            return 0
        return int(gate(i))

    with WorkerPool(1) as pool:
        results = pool.map(work, range(50))
        assert next(results) == 0
        with pytest.raises(ValueError, match="item 1"):
            next(results)
        gate.open()
        with pytest.raises(StopIteration):
            next(results)
    stats = pool.statistics()
    assert stats.cancelled + stats.completed + stats.failed == 50
    assert stats.cancelled > 0


@pytest.mark.parametrize("chunksize", [1, 64])
def test_map_item_raising_stopiteration_is_an_error_not_the_end(chunksize: int) -> None:
    """A call raising StopIteration surfaces as RuntimeError, never as a silent early end."""
    ran: list[int] = []
    lock = threading.Lock()

    def work(i: int) -> int:
        with lock:
            ran.append(i)
        if i == 3:
            raise StopIteration
        return i

    with WorkerPool(1) as pool:
        results = pool.map(work, range(10), chunksize=chunksize)
        assert [next(results) for _ in range(3)] == [0, 1, 2]
        with pytest.raises(RuntimeError, match="StopIteration"):
            next(results)
    if chunksize > 1:
        assert sorted(ran) == list(range(10))  # the chunk carried on after item 3


@pytest.mark.parametrize("iterables", [1, 2])
def test_a_failing_item_inside_a_chunk_leaves_its_neighbours_done(iterables: int) -> None:
    """Items before a failure in a chunk are yielded; those after it still run once."""
    ran: list[int] = []
    lock = threading.Lock()

    def work(i: int, j: int = 0) -> int:
        with lock:
            ran.append(i)
        if i in (5, 6):
            raise ValueError(f"item {i}")
        return i + j

    args = [range(20)] * iterables
    with WorkerPool(2) as pool:
        results = pool.map(work, *args, chunksize=8)
        assert [next(results) for _ in range(5)] == [i * iterables for i in range(5)]
        with pytest.raises(ValueError, match="item 5"):
            next(results)
        assert list(results) == []  # closed by the error
    assert sorted(ran) == list(range(20))  # an eager map runs every item exactly once
    stats = pool.statistics()
    assert (stats.completed, stats.failed) == (18, 2)


def test_a_chunk_shares_one_copy_of_the_callers_context() -> None:
    """With chunksize > 1 the items of a chunk see each other's context changes; the
    caller and the other chunks do not."""
    var: contextvars.ContextVar[int] = contextvars.ContextVar("var", default=0)
    var.set(100)

    def bump(_: int) -> int:
        seen = var.get()
        var.set(seen + 1)
        return seen

    with WorkerPool(1) as pool:
        assert list(pool.map(bump, range(6), chunksize=3)) == [100, 101, 102, 100, 101, 102]
        assert list(pool.map(bump, range(3))) == [100, 100, 100]  # chunksize 1: one each
    assert var.get() == 100


def test_map_timeout_counts_from_the_call() -> None:
    """next() raises TimeoutError once the map's timeout has passed, and cancels the rest."""
    pool, gate, _held = busy_pool()
    with pool:
        results = pool.map(abs, range(5), timeout=0)
        with pytest.raises(TimeoutError):
            next(results)
        gate.open()
    assert pool.statistics().cancelled == 5


def test_plain_map_is_eager_so_side_effects_happen_without_iterating() -> None:
    """map runs every call even if its iterator is never consumed (as the stdlib's)."""
    seen: list[int] = []
    lock = threading.Lock()

    def record(i: int) -> None:
        with lock:
            seen.append(i)

    with WorkerPool(3) as pool:
        pool.map(record, range(200))
    assert sorted(seen) == list(range(200))


def test_closing_a_started_map_cancels_what_has_not_started() -> None:
    """Closing the result iterator cancels the items that no worker took yet."""
    pool, gate, _held = busy_pool()
    with pool:
        results = pool.map(abs, range(10))
        results.close()
        gate.open()
    stats = pool.statistics()
    assert stats.cancelled == 10
    assert stats.submitted == stats.completed + stats.failed + stats.cancelled


def test_lazy_map_reads_input_with_bounded_lookahead() -> None:
    """map(..., buffersize=N) over an endless iterator reads only what it needs."""
    consumed = itertools.count()

    def source() -> Any:
        for i in itertools.count():
            next(consumed)
            yield i

    with WorkerPool(2) as pool:
        results = pool.map(lambda x: x * 2, source(), buffersize=4)
        first = [next(results) for _ in range(10)]
        assert first == [i * 2 for i in range(10)]
        read = next(consumed)
        assert read <= 10 + 4 + 1
        results.close()


@pytest.mark.parametrize(
    ("kwargs", "error"),
    [
        ({"chunksize": 0}, ValueError),
        ({"chunksize": 1.0}, TypeError),
        ({"buffersize": 0}, ValueError),
        ({"buffersize": True}, TypeError),
        ({"timeout": -1}, ValueError),
    ],
)
def test_map_checks_its_arguments(kwargs: dict[str, Any], error: type[Exception]) -> None:
    """Bad chunksize, buffersize or timeout raise at the call."""
    with WorkerPool(1) as pool, pytest.raises(error):
        pool.map(abs, [1], **kwargs)


def test_map_unordered_yields_as_results_complete() -> None:
    """map_unordered yields a fast result before a slow one that was submitted first."""
    gate = Gate()

    def work(i: int) -> int:
        return int(gate(i)) if i == 0 else i

    with WorkerPool(2) as pool:
        results = pool.map_unordered(work, range(2))
        assert next(results) == 1
        gate.open()
        assert next(results) == 0


def test_map_after_shutdown_raises() -> None:
    """map on a shut-down pool raises PoolShutDown at the call."""
    pool: WorkerPool[Any, Any] = WorkerPool(1)
    pool.shutdown()
    with pytest.raises(threadkit.PoolShutDown):
        pool.map(abs, [1])


def test_cancelling_shutdown_resolves_map_items_for_the_consumer() -> None:
    """Items dropped by shutdown(cancel_futures=True) surface as CancelledError, not a hang."""
    pool, gate, _held = busy_pool()
    results = pool.map(abs, range(3))
    report = pool.shutdown(wait=False, cancel_futures=True)
    assert report.cancelled == 3
    with pytest.raises(cf.CancelledError):
        next(results)
    gate.open()
    pool.shutdown()


def test_cancelling_shutdown_reaches_map_items_whose_tokens_were_all_taken() -> None:
    """Workers busy in a map's chunks hold all its queue tokens; a cancelling shutdown
    still cancels the chunks nobody started (they used to run to the end)."""
    gate = threading.Event()
    both = threading.Barrier(3, timeout=WAIT)

    def work(i: int) -> int:
        if i in (0, 3):  # the first item of each worker's first chunk
            both.wait()
        assert gate.wait(WAIT)
        return i

    pool = WorkerPool(2)
    results = pool.map(work, range(40), chunksize=3)
    both.wait()  # each worker holds one token and runs the first item of its chunk
    report = pool.shutdown(wait=False, cancel_futures=True)
    assert report.cancelled == 34
    gate.set()
    assert [next(results) for _ in range(6)] == list(range(6))
    with pytest.raises(cf.CancelledError):
        next(results)
    pool.shutdown()
    stats = pool.statistics()
    assert (stats.completed, stats.cancelled) == (6, 34)


# -- shutdown --------------------------------------------------------------------------


def test_submit_after_shutdown_raises_the_stdlib_error() -> None:
    """After shutdown, submit raises PoolShutDown, a RuntimeError with the stdlib's message."""
    pool: WorkerPool[Any, Any] = WorkerPool(1)
    pool.shutdown()
    with pytest.raises(RuntimeError, match="cannot schedule new futures after shutdown"):
        pool.submit(int)


def test_shutdown_twice_and_from_many_threads_at_once() -> None:
    """Concurrent and repeated shutdown calls all return and leave the pool shut down."""
    pool, gate, held = busy_pool()
    barrier = threading.Barrier(8, timeout=WAIT)

    def stop() -> None:
        barrier.wait()
        pool.shutdown(wait=True)

    threads = [threading.Thread(target=stop) for _ in range(8)]
    for t in threads:
        t.start()
    gate.open()
    for t in threads:
        t.join(WAIT)
        assert not t.is_alive()
    pool.shutdown()
    assert held.done()


def test_shutdown_from_inside_a_task_does_not_deadlock() -> None:
    """A task may shut down its own pool with wait=True; it does not wait for itself."""
    pool: WorkerPool[Any, Any] = WorkerPool(2)

    def stop_own_pool() -> str:
        pool.shutdown(wait=True)
        return "stopped"

    assert pool.submit(stop_own_pool).result(WAIT) == "stopped"
    pool.shutdown()


def test_shutdown_from_a_done_callback_does_not_deadlock() -> None:
    """A done-callback running in a worker may shut the pool down."""
    pool: WorkerPool[Any, Any] = WorkerPool(1)
    stopped = threading.Event()

    def stop(_: cf.Future[Any]) -> None:
        pool.shutdown(wait=True)
        stopped.set()

    pool.submit(int).add_done_callback(stop)
    assert stopped.wait(WAIT)
    pool.shutdown()


def test_shutdown_cancel_futures_cancels_and_notifies_queued_tasks() -> None:
    """Queued futures are cancelled and every waiter sees them at once."""
    pool, gate, held = busy_pool()
    queued = [pool.submit(int, str(i)) for i in range(5)]
    report = pool.shutdown(wait=False, cancel_futures=True)
    assert report.cancelled == 5
    done, not_done = cf.wait(queued, timeout=0)
    assert done == set(queued)
    assert not not_done
    gate.open()
    pool.shutdown()
    assert held.result(0) is None


def test_shutdown_timeout_reports_the_stragglers() -> None:
    """shutdown(timeout=...) returns on time and names the thread and what it runs."""
    pool, gate, _held = busy_pool(thread_name_prefix="slowpoke")
    report = pool.shutdown(wait=True, timeout=0.05)
    assert report.timed_out
    (straggler,) = report.stragglers
    assert straggler.thread_name == "slowpoke_0"
    assert straggler.task is not None
    assert "Gate" in straggler.task
    assert straggler.running_for is not None
    assert straggler.running_for > 0
    assert any("opened.wait" in line for line in straggler.stack)
    gate.open()
    assert not pool.shutdown(wait=True).timed_out


def test_shutdown_now_hands_back_the_tasks_that_never_started() -> None:
    """shutdown_now returns the unstarted tasks, their futures cancelled and notified."""
    pool, gate, _held = busy_pool()
    fut = pool.submit(pow, 2, exp=5)
    pool.map(abs, [-1, -2])
    gate.open()
    report = pool.shutdown_now()
    by_fn = {(d.fn, d.args): d for d in report.dropped}
    assert set(by_fn) == {(pow, (2,)), (abs, (-1,)), (abs, (-2,))}
    assert by_fn[(pow, (2,))].kwargs == {"exp": 5}
    assert by_fn[(pow, (2,))].future is fut
    assert fut.cancelled()


def test_leaving_with_on_an_error_cancels_queued_work_and_bounds_the_wait() -> None:
    """An exception in the with block cancels what has not started and waits only the grace."""
    pool, gate, held = busy_pool(shutdown_grace=0.05)
    queued = pool.submit(int, "1")
    with pytest.raises(KeyError), pool:
        raise KeyError("boom")
    assert queued.cancelled()
    assert not held.done()  # still running: the grace ran out
    gate.open()
    pool.shutdown()


# -- backpressure ---------------------------------------------------------------------


def test_reject_policy_raises_queue_full_and_counts_it() -> None:
    """With overflow="reject", a submission to a full queue raises QueueFull."""
    pool, gate, _held = busy_pool(max_queue=2, overflow="reject")
    with pool:
        pool.submit(int)
        pool.submit(int)
        with pytest.raises(threadkit.QueueFull):
            pool.submit(int)
        assert pool.statistics().rejected == 1
        gate.open()


def test_block_policy_times_out_with_submit_timeout() -> None:
    """With overflow="block" and submit_timeout, a full queue raises SubmitTimeout."""
    pool, gate, _held = busy_pool(max_queue=1, submit_timeout=0.01)
    with pool:
        pool.submit(int)
        with pytest.raises(threadkit.SubmitTimeout):
            pool.submit(int)
        gate.open()


def test_blocked_submitter_proceeds_when_a_place_frees() -> None:
    """A submitter blocked on a full queue is let through when a worker takes a task."""
    pool, gate, _held = busy_pool(max_queue=1)
    with pool:
        pool.submit(int)
        result: list[cf.Future[Any]] = []
        submitter = threading.Thread(target=lambda: result.append(pool.submit(int, "9")))
        submitter.start()
        gate.open()
        submitter.join(WAIT)
        assert result[0].result(WAIT) == 9


def test_blocked_submitter_is_woken_by_shutdown() -> None:
    """A submitter blocked on a full queue gets PoolShutDown when shutdown begins."""
    pool, gate, _held = busy_pool(max_queue=1)
    pool.submit(int)
    errors: list[BaseException] = []
    entered = threading.Event()

    def submit() -> None:
        entered.set()
        try:
            pool.submit(int)
        except BaseException as exc:
            errors.append(exc)

    submitter = threading.Thread(target=submit)
    submitter.start()
    assert entered.wait(WAIT)
    pool.shutdown(wait=False, cancel_futures=True)
    submitter.join(WAIT)
    assert not submitter.is_alive()
    gate.open()
    pool.shutdown()
    # It either got in before the shutdown (then it was cancelled) or was refused.
    assert not errors or isinstance(errors[0], threadkit.PoolShutDown)


def test_caller_runs_policy_runs_in_the_submitting_thread() -> None:
    """With overflow="caller_runs", a full queue makes the submitter run the task."""
    pool, gate, _held = busy_pool(max_queue=1, overflow="caller_runs")
    with pool:
        pool.submit(int)
        fut = pool.submit(threading.current_thread)
        assert fut.done()
        assert fut.result() is threading.current_thread()
        gate.open()


def test_drop_oldest_policy_cancels_the_oldest_queued_task() -> None:
    """With overflow="drop_oldest", the oldest queued future is cancelled and notified."""
    pool, gate, _held = busy_pool(max_queue=2, overflow="drop_oldest")
    with pool:
        oldest = pool.submit(int, "1")
        middle = pool.submit(int, "2")
        newest = pool.submit(int, "3")
        assert oldest.cancelled()
        assert oldest in cf.wait([oldest], timeout=0).done
        gate.open()
        assert middle.result(WAIT) == 2
        assert newest.result(WAIT) == 3


def test_try_submit_returns_none_when_full() -> None:
    """try_submit never blocks: it returns None when the queue is full."""
    pool, gate, _held = busy_pool(max_queue=1)
    with pool:
        assert pool.try_submit(int) is not None
        assert pool.try_submit(int) is None
        assert pool.statistics().rejected == 1
        gate.open()


def test_a_task_submitting_to_its_own_full_pool_runs_it_inline() -> None:
    """A worker that would block on its own full queue runs the new task itself."""
    gate = Gate()
    with WorkerPool(1, max_queue=1) as pool:

        def parent() -> Any:
            pool.submit(gate)  # fills the queue
            child = pool.submit(lambda: threading.current_thread().name)
            return child.result(0)

        fut = pool.submit(parent)
        name = fut.result(WAIT)
        gate.open()
    assert name.startswith("WorkerPool-")


# -- elastic size -----------------------------------------------------------------------


def test_idle_workers_retire_down_to_min_workers() -> None:
    """Workers idle for idle_timeout exit (running teardown), except min_workers."""
    retired = threading.Semaphore(0)
    barrier = threading.Barrier(3, timeout=WAIT)

    class Job(threadkit.Worker[int, int]):
        def process(self, item: int) -> int:
            barrier.wait()  # all three workers busy at once
            return item

        def teardown(self) -> None:
            retired.release()

    with WorkerPool(3, min_workers=1, idle_timeout=0.01, worker=Job) as pool:
        assert sorted(pool.process(range(3))) == [0, 1, 2]
        assert retired.acquire(timeout=WAIT)
        assert retired.acquire(timeout=WAIT)
        stats = pool.statistics()
        assert stats.workers == 1
        assert stats.submitted == stats.completed == 3
    assert retired.acquire(timeout=WAIT)  # the last one at shutdown


def test_bursts_use_idle_workers_instead_of_starting_threads() -> None:
    """Repeated bursts of quick tasks do not grow a large pool to its cap, and once it is
    quiet, as many tasks as there are idle workers start no thread.

    Regression: a busy worker taking a task queued for an idle one once left a stale
    claim on that idle worker, and each burst started threads while idle ones waited, up
    to the cap. (Since the exact hand-off, see test_handoff.py, no claim exists to go
    stale.)
    """
    cap = 1000
    gate = threading.Event()
    with WorkerPool(cap) as pool:
        for _ in range(10):
            done, _pending = cf.wait([pool.submit(int) for _ in range(200)], timeout=WAIT)
            assert len(done) == 200
        for _ in range(int(WAIT / 0.001)):
            stats = pool.statistics()
            if stats.idle == stats.workers:
                break
            gate.wait(0.001)
        assert stats.idle == stats.workers, "the pool never went quiet"
        assert stats.workers < cap
        futures = [pool.submit(gate.wait, WAIT) for _ in range(stats.workers)]
        started = pool.statistics().workers
        gate.set()
        cf.wait(futures, timeout=WAIT)
    assert started == stats.workers


def _submitted_task_starts_beside_a_gated_map(spin: float, *, submit_first: bool) -> bool:
    """One trial: with one idle worker in an 8-worker pool, gated work (a map, and a task
    first if ``submit_first``), then a task that opens the gate. ``True`` if it ran.

    A worker a map starts takes its token from the queue; it once looked like spare
    capacity (or erased another idle worker's claim), and the opening task was left in
    the queue with no worker coming although the pool was far below its cap.
    """
    pool = WorkerPool(8)
    gate = threading.Event()
    try:
        pool.submit(int).result(WAIT)
        while pool.statistics().idle != 1:
            gate.wait(0.001)
        first = pool.submit(gate.wait, WAIT) if submit_first else None
        results = pool.map(lambda _: gate.wait(WAIT), range(1 if submit_first else 2))
        until = time.perf_counter() + spin
        while time.perf_counter() < until:
            pass
        opener = pool.submit(gate.set)
        opened = gate.wait(2.0)
        gate.set()
        assert all(results)
        assert opener.result(WAIT) is None
        if first is not None:
            assert first.result(WAIT)
        return opened
    finally:
        gate.set()
        pool.shutdown()


@pytest.mark.parametrize("submit_first", [False, True])
def test_a_task_never_waits_in_the_queue_while_the_pool_can_grow(submit_first: bool) -> None:
    """Gated map items plus a task that opens the gate, on a pool far below its cap: the
    task always starts (40 trials, with the submission at varied moments)."""
    for spin in [0.0, 0.0, 1e-5, 5e-5, 1e-4, 3e-4] * 7:
        assert _submitted_task_starts_beside_a_gated_map(spin, submit_first=submit_first), spin


# -- broken pools -----------------------------------------------------------------------


def test_initializer_failure_breaks_the_pool_with_a_chained_error(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A failing initializer fails pending work with BrokenPool chained to the cause."""
    cause = OSError("no database")

    def init() -> None:
        raise cause

    with (
        caplog.at_level(logging.CRITICAL, logger="threadkit"),
        WorkerPool(2, initializer=init) as pool,
    ):
        fut = pool.submit(int)
        exc = fut.exception(WAIT)
        assert isinstance(exc, threadkit.BrokenPool)
        assert isinstance(exc, BrokenThreadPool)
        assert exc.__cause__ is cause
        with pytest.raises(threadkit.BrokenPool):
            pool.submit(int)


def test_a_failed_thread_start_leaves_the_task_unqueued(monkeypatch: pytest.MonkeyPatch) -> None:
    """If a needed worker thread cannot start, submit raises and the task never runs."""
    ran = threading.Event()

    def refuse(self: threading.Thread) -> None:
        raise RuntimeError("can't start new thread")

    with WorkerPool(1) as pool:
        monkeypatch.setattr(threading.Thread, "start", refuse)
        with pytest.raises(RuntimeError, match="can't start"):
            pool.submit(ran.set)
        monkeypatch.undo()
        assert pool.statistics().submitted == 0
        assert pool.submit(int, "2").result(WAIT) == 2
    assert not ran.is_set()


# -- statistics and loud failures -------------------------------------------------------


def test_statistics_add_up_when_quiescent() -> None:
    """submitted == completed + failed + cancelled once the pool is idle."""
    pool, gate, _held = busy_pool()
    with pool:
        ok = [pool.submit(int, "1") for _ in range(5)]
        bad = [pool.submit(int, "x") for _ in range(3)]
        cancelled = [pool.submit(int) for _ in range(2)]
        for fut in cancelled:
            fut.cancel()
        gate.open()
        cf.wait(ok + bad, timeout=WAIT)
        list(pool.map(abs, range(4)))
    stats = pool.statistics()
    assert stats.submitted == 1 + 5 + 3 + 2 + 4
    assert stats.completed == 1 + 5 + 4
    assert stats.failed == 3
    assert stats.cancelled == 2
    assert stats.queued == 0
    assert stats.busy == 0
    assert stats.submitted == stats.completed + stats.failed + stats.cancelled


def test_statistics_show_the_oldest_running_task() -> None:
    """oldest_running reports how long the longest task has run."""
    pool, gate, _held = busy_pool()
    with pool:
        stats = pool.statistics()
        assert stats.busy == 1
        assert stats.oldest_running is not None
        assert stats.oldest_running >= 0
        assert "busy=1" in repr(pool)
        gate.open()
    assert pool.statistics().oldest_running is None


def test_unretrieved_exception_is_logged_when_the_future_is_dropped(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A failed future nobody looked at logs its exception when garbage-collected."""
    with caplog.at_level(logging.ERROR, logger="threadkit"):
        with WorkerPool(1) as pool:
            cf.wait([pool.submit(int, "not a number")], timeout=WAIT)
        gc.collect()
    assert "was never retrieved" in caplog.text
    assert "not a number" in caplog.text


def test_retrieved_or_silenced_exceptions_are_not_logged(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """No log when the exception was retrieved, or when log_unretrieved=False."""
    with caplog.at_level(logging.ERROR, logger="threadkit"):
        with WorkerPool(1) as pool:
            assert isinstance(pool.submit(int, "x").exception(WAIT), ValueError)
            with pytest.raises(ValueError):
                pool.submit(int, "y").result(WAIT)
        with WorkerPool(1, log_unretrieved=False) as quiet:
            cf.wait([quiet.submit(int, "z")], timeout=WAIT)
        gc.collect()
    assert "never retrieved" not in caplog.text


def test_task_future_keeps_the_base_class_attributes() -> None:
    """TaskFuture sets exactly the attributes Future.__init__ sets on this Python."""
    with WorkerPool(1) as pool:
        TaskFuture = type(pool.submit(int))

    assert set(vars(TaskFuture())) == set(vars(cf.Future()))


# -- lifecycle ------------------------------------------------------------------------


def test_an_unreferenced_pool_finishes_its_work_and_its_threads_exit() -> None:
    """A pool nobody references is collected; queued work finishes and threads exit."""
    done = threading.Event()
    threads: list[threading.Thread] = []
    pool: WorkerPool[Any, Any] | None = WorkerPool(
        2, initializer=lambda: threads.append(threading.current_thread())
    )
    assert pool is not None
    gate = Gate()
    pool.submit(gate)
    pool.submit(done.set)
    del pool
    gc.collect()
    gate.open()
    assert done.wait(WAIT)
    for thread in threads:
        thread.join(WAIT)
        assert not thread.is_alive()


def test_wait_as_completed_and_asyncio_interoperate() -> None:
    """The futures work with wait, as_completed, wrap_future and run_in_executor."""
    import asyncio

    with WorkerPool(2) as pool:
        futures = [pool.submit(pow, 2, i) for i in range(5)]
        assert {f.result() for f in cf.as_completed(futures, timeout=WAIT)} == {1, 2, 4, 8, 16}

        async def main() -> list[int]:
            loop = asyncio.get_running_loop()
            a = await loop.run_in_executor(pool, pow, 3, 2)
            b = await asyncio.wrap_future(pool.submit(pow, 3, 3))
            return [a, b]

        assert asyncio.run(main()) == [9, 27]


# -- cancellation tokens ----------------------------------------------------------------


def test_tasks_find_the_pools_token_and_outsiders_find_none() -> None:
    """current_token() in a task is the pool's cancel_token; outside a task it is None."""
    with WorkerPool(2) as pool:
        assert pool.submit(threadkit.current_token).result(WAIT) is pool.cancel_token
        assert list(pool.map(lambda _: threadkit.current_token(), [1])) == [pool.cancel_token]
    assert threadkit.current_token() is None


def test_shutdown_now_cancels_the_token_so_running_tasks_stop() -> None:
    """A cancelling shutdown cancels the token, waking a task blocked on it."""
    started = threading.Event()

    def long_job() -> str:
        token = threadkit.current_token()
        assert token is not None
        started.set()
        return "stopped early" if token.wait(WAIT) else "ran out"

    pool: WorkerPool[Any, Any] = WorkerPool(1)
    fut = pool.submit(long_job)
    assert started.wait(WAIT)
    report = pool.shutdown_now(timeout=WAIT)
    assert not report.timed_out
    assert fut.result(0) == "stopped early"
    assert pool.cancel_token.cancelled


def test_plain_shutdown_leaves_the_token_alone() -> None:
    """shutdown() without cancellation lets tasks run to their end: the token stays unset."""
    with WorkerPool(1) as pool:
        pass
    assert not pool.cancel_token.cancelled


def test_a_parent_token_cancels_the_pools_token() -> None:
    """With cancel_token=parent, cancelling the parent reaches the pool's tasks."""
    parent = threadkit.CancelToken()
    with WorkerPool(1, cancel_token=parent) as pool:
        assert pool.cancel_token is not parent
        parent.cancel("stop")
        assert pool.submit(lambda: pool.cancel_token.cancelled).result(WAIT)
    with pytest.raises(TypeError, match="cancel_token"):
        WorkerPool(1, cancel_token="nope")  # type: ignore[call-overload]


def test_a_task_run_inline_by_caller_runs_sees_the_token() -> None:
    """A task the submitter runs itself (caller_runs) still finds the pool's token."""
    pool, gate, _held = busy_pool(max_queue=1, overflow="caller_runs")
    with pool:
        pool.submit(int)
        fut = pool.submit(threadkit.current_token)
        assert fut.result(0) is pool.cancel_token
        gate.open()


SIGNAL_TO_A_WORKER = """
import signal, sys, threading, time
import threadkit

gate = threading.Event()
ready = threading.Event()
worker = []

def task():
    worker.append(threading.get_ident())
    ready.set()
    gate.wait(60)

pool = threadkit.WorkerPool(1, max_queue=1)
held = pool.submit(task)
ready.wait(10)

def deliver_to_the_worker():
    time.sleep(0.3)  # let the main thread fall asleep in its wait first
    signal.pthread_kill(worker[0], signal.SIGINT)

threading.Thread(target=deliver_to_the_worker, daemon=True).start()
start = time.monotonic()
try:
    if sys.argv[1] == "result":
        held.result()
    elif sys.argv[1] == "map":
        for _ in pool.map(abs, [1]):
            pass
    else:
        pool.submit(int)  # fills the one queue place
        pool.submit(int)  # blocks: the queue is full
except KeyboardInterrupt:
    print(f"interrupted after {time.monotonic() - start:.2f}s", flush=True)
gate.set()
pool.shutdown()
"""


@pytest.mark.skipif(not hasattr(signal, "pthread_kill"), reason="POSIX signals")
@pytest.mark.parametrize(
    "wait",
    [
        "result",
        pytest.param("map", marks=pytest.mark.slow),
        pytest.param("submit", marks=pytest.mark.slow),
    ],
)
def test_ctrl_c_delivered_to_a_worker_still_interrupts_the_main_thread(wait: str) -> None:
    """A SIGINT the kernel hands to a worker still interrupts the main thread's wait."""
    import subprocess
    import sys

    child = subprocess.run(
        [sys.executable, "-c", SIGNAL_TO_A_WORKER, wait],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert child.returncode == 0, child.stderr
    line = child.stdout.strip()
    assert line.startswith("interrupted after"), (line, child.stderr)
    assert float(line.split()[-1].rstrip("s")) < 5  # not 60: the wait did not sleep on


def test_a_process_started_by_a_task_can_be_terminated() -> None:
    """Worker threads leave the signal mask alone, so processes they start obey SIGTERM."""
    import subprocess
    import sys

    def start_and_terminate() -> int:
        proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
        proc.terminate()
        return proc.wait(timeout=WAIT)

    with WorkerPool(1) as pool:
        assert pool.submit(start_and_terminate).result(WAIT) == -signal.SIGTERM


def test_cancelling_shutdown_drains_before_it_cancels_the_token() -> None:
    """A task that returns on the token never frees its worker for a queued task."""
    import sys

    old_interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    try:
        for _ in range(50):
            ran: list[int] = []
            started = threading.Event()

            def polite(started: threading.Event = started) -> None:
                token = threadkit.current_token()
                assert token is not None
                started.set()
                token.wait(WAIT)  # returns the moment the pool cancels its token

            pool: WorkerPool[Any, Any] = WorkerPool(1)
            pool.submit(polite)
            assert started.wait(WAIT)
            queued = [pool.submit(ran.append, i) for i in range(5)]
            pool.shutdown(wait=True, cancel_futures=True)
            assert ran == []
            assert all(f.cancelled() for f in queued)
    finally:
        sys.setswitchinterval(old_interval)


def test_a_ctrl_c_inside_thread_start_keeps_the_books_right(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """An interrupt that hits Thread.start after the thread runs leaves no worker
    uncounted; the task, accepted after all, is cancelled unless the worker had started it."""
    real_start = threading.Thread.start
    ran = threading.Event()

    def start_then_interrupt(self: threading.Thread) -> None:
        real_start(self)
        raise KeyboardInterrupt  # as if Ctrl-C landed in start()'s wait for the thread

    pool: WorkerPool[Any, Any] = WorkerPool(1)
    monkeypatch.setattr(threading.Thread, "start", start_then_interrupt)
    with pytest.raises(KeyboardInterrupt):
        pool.submit(ran.set)
    monkeypatch.undo()
    pool.shutdown(wait=True)  # its thread is joined: none is left behind
    stats = pool.statistics()
    assert (stats.submitted, stats.completed + stats.cancelled, stats.workers) == (1, 1, 0)
    assert ran.is_set() == (stats.completed == 1)


def test_a_ctrl_c_inside_a_maps_thread_start_is_raised_with_the_books_right(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """The same for a thread a map starts: the interrupt reaches the caller (it used to
    be logged as a failed start and swallowed), and every item still runs once."""
    real_start = threading.Thread.start
    seen: list[int] = []
    lock = threading.Lock()

    def record(i: int) -> None:
        with lock:
            seen.append(i)

    def start_then_interrupt(self: threading.Thread) -> None:
        real_start(self)
        raise KeyboardInterrupt

    pool: WorkerPool[Any, Any] = WorkerPool(3)
    monkeypatch.setattr(threading.Thread, "start", start_then_interrupt)
    with caplog.at_level(logging.WARNING, logger="threadkit"), pytest.raises(KeyboardInterrupt):
        pool.map(record, range(6))
    monkeypatch.undo()
    pool.shutdown(wait=True)
    assert "could not start" not in caplog.text
    assert sorted(seen) == list(range(6))
    stats = pool.statistics()
    assert (stats.submitted, stats.completed, stats.workers) == (6, 6, 0)


def test_shutdown_takes_no_stack_snapshot_without_stragglers(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A shutdown whose workers all ended in time never calls sys._current_frames.

    Regression: every shutdown(wait=True) took a snapshot of every thread's stack, which on
    CPython 3.11 can deadlock with the garbage collector (gh-106883).
    """

    def forbidden() -> dict[int, Any]:
        raise AssertionError("sys._current_frames called with no straggler to report")

    pool = WorkerPool(2)
    assert pool.submit(int, "7").result(WAIT) == 7
    monkeypatch.setattr(sys, "_current_frames", forbidden)
    report = pool.shutdown_now(wait=True, timeout=WAIT)
    assert not report.timed_out


def test_stack_snapshots_pause_the_collector_on_3_11(monkeypatch: pytest.MonkeyPatch) -> None:
    """On 3.11 no garbage collection may run inside sys._current_frames (gh-106883)."""
    real = sys._current_frames
    seen: list[bool] = []

    def spy() -> dict[int, Any]:
        seen.append(gc.isenabled())
        return real()

    monkeypatch.setattr(sys, "_current_frames", spy)
    gate = threading.Event()
    with WorkerPool(1) as pool:
        pool.submit(gate.wait, WAIT)
        snaps = pool.worker_snapshots()
        gate.set()
    assert len(snaps) == 1
    assert seen == [sys.version_info >= (3, 12)]
    assert gc.isenabled()


def test_log_unretrieved_must_be_a_bool() -> None:
    """A truthy string is not taken for a yes: log_unretrieved refuses non-bools at once."""
    with pytest.raises(TypeError, match="log_unretrieved must be a bool"):
        WorkerPool(1, log_unretrieved="no")  # type: ignore[call-overload]


def test_a_huge_shutdown_timeout_is_honoured_not_overflowed() -> None:
    """shutdown(timeout=1e10), which the checks accept, waits for a running task in a
    thread (where waits are not cut into slices) instead of raising OverflowError."""
    errors: list[BaseException] = []
    gate = Gate()
    pool = WorkerPool(1)
    fut = pool.submit(gate, 5)
    assert gate.started.wait(WAIT)

    def stop() -> None:
        try:
            pool.shutdown(wait=True, timeout=1e10)
        except BaseException as exc:
            errors.append(exc)

    stopper = threading.Thread(target=stop)
    stopper.start()
    core = pool._core
    for _ in range(int(WAIT / 0.001)):  # until the shutdown is about to wait
        with core.lock:
            if stopper in core.in_shutdown:
                break
        gate.opened.wait(0.001)
    gate.open()
    stopper.join(WAIT)
    assert not stopper.is_alive()
    assert errors == []
    assert fut.result(WAIT) == 5


SIGNAL_TO_A_WORKER_WHILE_LEAVING = """
import signal, sys, threading, time
import threadkit

gate = threading.Event()
ready = threading.Event()
victim = []

def hold():
    victim.append(threading.get_ident())
    ready.set()
    gate.wait(60)

def deliver():
    ready.wait(10)
    time.sleep(0.3)  # let the main thread fall asleep in its join first
    signal.pthread_kill(victim[0], signal.SIGINT)

threading.Thread(target=deliver, daemon=True).start()
if sys.argv[1] == "graceful":
    with threadkit.GracefulShutdown(grace=0.2) as shutdown:
        shutdown.register(threading.Thread(target=hold)).start()
        ready.wait(10)
    # the block's end waits for the registered thread: a SIGINT ends that wait
else:
    pool = threadkit.WorkerPool(1)
    pool.submit(hold)
    ready.wait(10)
    print("EXITING", flush=True)
    # interpreter exit waits for the pool's running task: a SIGINT ends that wait
"""


@pytest.mark.slow
@pytest.mark.skipif(not hasattr(signal, "pthread_kill"), reason="POSIX signals")
@pytest.mark.parametrize("where", ["graceful", "exit"])
def test_ctrl_c_delivered_to_another_thread_ends_the_waits_at_the_end(where: str) -> None:
    """A SIGINT the kernel hands to another thread still ends the main thread's wait for
    threads at the end of a GracefulShutdown block and at interpreter exit (status 130)."""
    import subprocess

    started = time.monotonic()
    child = subprocess.run(
        [sys.executable, "-c", SIGNAL_TO_A_WORKER_WHILE_LEAVING, where],
        capture_output=True,
        text=True,
        timeout=45,
        check=False,
    )
    elapsed = time.monotonic() - started
    assert child.returncode == 130, (child.returncode, child.stdout, child.stderr)
    assert elapsed < 30, child.stderr  # the task would hold the process for 60 s


@pytest.mark.slow
def test_short_lived_pools_leave_nothing_behind() -> None:
    """Thousands of pools made and shut down (inside a GracefulShutdown block, which
    registers them) leave no memory behind.

    Regression: every pool left ~85 bytes for good: a process-wide thread-name counter
    kept an entry for each pool's own prefix.
    """
    import tracemalloc

    def cycle(count: int) -> None:
        for _ in range(count):
            with WorkerPool(1) as pool:
                pool.submit(int).result(WAIT)

    with threadkit.GracefulShutdown(signals=()):
        cycle(100)  # warm up caches and free lists
        gc.collect()
        tracemalloc.start()
        try:
            before = tracemalloc.take_snapshot()
            cycle(2000)
            gc.collect()
            after = tracemalloc.take_snapshot()
        finally:
            tracemalloc.stop()
    grown = sum(stat.size_diff for stat in after.compare_to(before, "filename"))
    assert grown / 2000 < 20, f"{grown / 2000:.0f} bytes left per pool"


def test_map_checks_every_argument_before_reading_input() -> None:
    """A bad progress= (or chunksize=, timeout=) fails before one item is read."""
    read: list[int] = []

    def items() -> Iterator[int]:
        for i in range(5):
            read.append(i)
            yield i

    with WorkerPool(1) as pool:
        with pytest.raises(ValueError, match="progress must be"):
            pool.map(abs, items(), progress="bogus")  # type: ignore[arg-type]
        with pytest.raises(TypeError, match="progress must be"):
            pool.map(abs, items(), progress=object())  # type: ignore[arg-type]
        with pytest.raises(ValueError, match="chunksize"):
            pool.map(abs, items(), chunksize=0)
    assert read == []
