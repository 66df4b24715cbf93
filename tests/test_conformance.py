"""One behavioural suite run against ThreadPoolExecutor and WorkerPool: the drop-in contract.

Every test taking ``executor_cls`` pins something the standard library documents, and
both implementations must agree on it. Tests that name ``WorkerPool`` directly pin a
documented defect of the standard pool that threadkit fixes; each says why.
"""

from __future__ import annotations

import asyncio
import concurrent.futures as cf
import gc
import logging
import signal
import subprocess
import sys
import threading
import time
import weakref
from collections.abc import Callable, Iterator
from concurrent.futures.thread import BrokenThreadPool
from typing import Any

import pytest

from helpers import WAIT, Gate
from threadkit import WorkerPool

ExecutorFactory = Callable[..., cf.Executor]


@pytest.fixture(
    params=[cf.ThreadPoolExecutor, WorkerPool], ids=["ThreadPoolExecutor", "WorkerPool"]
)
def executor_cls(request: pytest.FixtureRequest) -> ExecutorFactory:
    """The executor class under test: the standard library's, then threadkit's."""
    factory: ExecutorFactory = request.param
    return factory


@pytest.fixture
def executor(executor_cls: ExecutorFactory) -> Iterator[cf.Executor]:
    """A two-worker executor of the class under test, shut down after the test."""
    ex = executor_cls(2)
    try:
        yield ex
    finally:
        ex.shutdown(wait=True)


class Recorder:
    """A task body that records, under a lock, every argument it was called with."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.seen: list[Any] = []

    def __call__(self, value: Any) -> Any:
        with self.lock:
            self.seen.append(value)
        return value


def hold_only_worker(ex: cf.Executor) -> tuple[Gate, cf.Future[Any]]:
    """Occupy a one-worker executor's only thread with a gate and wait until it runs."""
    gate = Gate()
    held = ex.submit(gate)
    assert gate.started.wait(WAIT)
    return gate, held


# -- construction -----------------------------------------------------------------------


def test_positional_constructor_arguments(executor_cls: ExecutorFactory) -> None:
    """max_workers, thread_name_prefix, initializer and initargs are accepted positionally."""
    seen: list[tuple[str, str]] = []

    def init(tag: str) -> None:
        seen.append((tag, threading.current_thread().name))

    barrier = threading.Barrier(2, timeout=WAIT)

    def name() -> str:
        barrier.wait()  # both workers exist at once
        return threading.current_thread().name

    ex = executor_cls(2, "conformance", init, ("tag",))
    with ex:
        names = {f.result(WAIT) for f in [ex.submit(name), ex.submit(name)]}
    assert len(names) == 2
    assert all(n.startswith("conformance") for n in names)
    assert sorted(seen) == sorted(("tag", n) for n in names)


@pytest.mark.parametrize("max_workers", [0, -1])
def test_max_workers_below_one_raises_value_error(
    executor_cls: ExecutorFactory, max_workers: int
) -> None:
    """max_workers <= 0 raises ValueError at construction."""
    with pytest.raises(ValueError):
        executor_cls(max_workers)


def test_non_callable_initializer_raises_type_error(executor_cls: ExecutorFactory) -> None:
    """A non-callable initializer raises TypeError at construction."""
    with pytest.raises(TypeError):
        executor_cls(1, "", 42)


# -- submit, results, callbacks ---------------------------------------------------------


def test_submit_passes_args_and_kwargs_including_one_named_fn(executor: cf.Executor) -> None:
    """submit(fn, /, *args, **kwargs) forwards every argument, even a keyword named fn."""
    assert executor.submit(dict, fn=1, x=2).result(WAIT) == {"fn": 1, "x": 2}
    assert executor.submit(pow, 2, 5).result(WAIT) == 32


def test_result_and_exception_carry_the_tasks_exception(executor: cf.Executor) -> None:
    """A task's exception is raised by result() and returned by exception(), as is."""
    error = LookupError("the task's own")

    def fail() -> None:
        raise error

    fut = executor.submit(fail)
    assert fut.exception(WAIT) is error
    with pytest.raises(LookupError) as info:
        fut.result(0)
    assert info.value is error
    assert fut.done()
    assert not fut.cancelled()


def test_result_with_timeout_raises_the_builtin_timeout_error(
    executor_cls: ExecutorFactory,
) -> None:
    """result(timeout) on an unfinished future raises TimeoutError and leaves it running."""
    ex = executor_cls(1)
    with ex:
        gate, held = hold_only_worker(ex)
        with pytest.raises(TimeoutError):
            held.result(timeout=0)
        assert held.running()
        assert not held.done()
        assert not held.cancel()  # a running future cannot be cancelled
        gate.open()
        assert held.result(WAIT) is None


def test_cancel_a_queued_future(executor_cls: ExecutorFactory) -> None:
    """A queued future can be cancelled; result() raises CancelledError; the task never runs."""
    ran = threading.Event()
    ex = executor_cls(1)
    with ex:
        gate, _ = hold_only_worker(ex)
        queued = ex.submit(ran.set)
        assert queued.cancel()
        assert queued.cancelled()
        assert queued.done()
        with pytest.raises(cf.CancelledError):
            queued.result(0)
        gate.open()
    assert not ran.is_set()


def test_done_callbacks_run_once_in_order_after_completion(executor: cf.Executor) -> None:
    """Callbacks run once each, in the order added, with the finished future."""
    calls: list[tuple[str, Any]] = []
    both = threading.Semaphore(0)
    gate = Gate()
    fut = executor.submit(gate, 7)

    def first(f: cf.Future[Any]) -> None:
        calls.append(("first", f.result(0)))
        both.release()

    def second(f: cf.Future[Any]) -> None:
        calls.append(("second", f.result(0)))
        both.release()

    fut.add_done_callback(first)
    fut.add_done_callback(second)
    assert calls == []
    gate.open()
    assert both.acquire(timeout=WAIT)
    assert both.acquire(timeout=WAIT)
    assert calls == [("first", 7), ("second", 7)]


def test_a_callback_added_to_a_done_future_runs_at_once_in_the_caller(
    executor: cf.Executor,
) -> None:
    """add_done_callback on a finished future calls it immediately, in the calling thread."""
    fut = executor.submit(int, "3")
    assert fut.result(WAIT) == 3
    threads: list[threading.Thread] = []
    fut.add_done_callback(lambda _: threads.append(threading.current_thread()))
    assert threads == [threading.current_thread()]


def test_a_callback_raising_an_exception_does_not_stop_the_others(
    executor: cf.Executor, caplog: pytest.LogCaptureFixture
) -> None:
    """A callback raising Exception is logged; later callbacks run; the executor keeps serving."""
    ran = threading.Event()
    gate = Gate()
    fut = executor.submit(gate)

    def bad(_: cf.Future[Any]) -> None:
        raise ValueError("callback failed")

    fut.add_done_callback(bad)
    fut.add_done_callback(lambda _: ran.set())
    with caplog.at_level(logging.ERROR):
        gate.open()
        assert ran.wait(WAIT)
    assert fut.result(0) is None
    assert executor.submit(int, "4").result(WAIT) == 4
    assert "callback failed" in caplog.text


# -- map --------------------------------------------------------------------------------


def test_map_yields_in_input_order_whatever_the_completion_order(
    executor_cls: ExecutorFactory,
) -> None:
    """map yields results in input order even when a later item finishes first."""
    last_done = threading.Event()

    def work(i: int) -> int:
        if i == 0:
            assert last_done.wait(WAIT)  # item 0 finishes only after item 2
        if i == 2:
            last_done.set()
        return i * 10

    ex = executor_cls(3)
    with ex:
        assert list(ex.map(work, range(3))) == [0, 10, 20]


def test_map_zips_several_iterables_to_the_shortest(executor: cf.Executor) -> None:
    """map(fn, a, b) calls fn(a[i], b[i]) and stops at the shortest iterable."""
    assert list(executor.map(pow, [2, 3, 4, 5], (3, 2, 1))) == [8, 9, 4]
    assert list(executor.map(abs, [])) == []


def test_map_accepts_chunksize(executor: cf.Executor) -> None:
    """map takes the chunksize keyword (ThreadPoolExecutor ignores it) with the same results."""
    assert list(executor.map(str, range(20), chunksize=4)) == [str(i) for i in range(20)]


def test_map_submits_every_call_before_the_first_next(executor_cls: ExecutorFactory) -> None:
    """map schedules all calls at once: they can all be running before anyone iterates."""
    barrier = threading.Barrier(3, timeout=WAIT)
    passed = threading.Semaphore(0)

    def work(i: int) -> int:
        barrier.wait()  # passes only if all three calls run at the same time
        passed.release()
        return i

    ex = executor_cls(3)
    with ex:
        results = ex.map(work, range(3))
        for _ in range(3):
            assert passed.acquire(timeout=WAIT)
        assert list(results) == [0, 1, 2]


def test_map_runs_every_call_without_being_iterated(executor_cls: ExecutorFactory) -> None:
    """A map whose iterator is never consumed still runs every call (eager, like the stdlib)."""
    record = Recorder()
    ex = executor_cls(2)
    with ex:
        ex.map(record, range(50))
    assert sorted(record.seen) == list(range(50))


def test_map_raises_an_items_exception_at_its_position(executor_cls: ExecutorFactory) -> None:
    """The failing item's exception surfaces at its turn; calls not yet started never run."""
    record = Recorder()
    gate = Gate()

    def work(i: int) -> int:
        record(i)
        if i == 1:
            raise KeyError(i)
        if i == 2:
            gate()
        return i

    ex = executor_cls(1)
    with ex:
        results = ex.map(work, range(10))
        assert next(results) == 0
        assert gate.started.wait(WAIT)  # item 2 is running, items 3.. are queued
        with pytest.raises(KeyError):
            next(results)
        gate.open()
        with pytest.raises(StopIteration):
            next(results)
    assert record.seen == [0, 1, 2]


def test_map_timeout_is_measured_from_the_call(executor_cls: ExecutorFactory) -> None:
    """map's timeout runs from the map() call: a late next() raises TimeoutError at once."""
    timeout = 0.3
    ex = executor_cls(1)
    with ex:
        gate, _ = hold_only_worker(ex)
        results = ex.map(abs, [-1, -2], timeout=timeout)
        # Let the whole timeout pass before iterating (a deliberate wait, not a guess).
        assert not threading.Event().wait(timeout + 0.05)
        start = time.monotonic()
        with pytest.raises(TimeoutError):
            next(results)
        # Measured from next(), it would have waited `timeout` again.
        assert time.monotonic() - start < timeout
        gate.open()


def test_map_timeout_cancels_the_calls_not_started(executor_cls: ExecutorFactory) -> None:
    """After map's TimeoutError the calls that had not started never run."""
    record = Recorder()
    ex = executor_cls(1)
    with ex:
        gate, _ = hold_only_worker(ex)
        results = ex.map(record, range(5), timeout=0)
        with pytest.raises(TimeoutError):
            next(results)
        gate.open()
    assert record.seen == []


# -- shutdown ---------------------------------------------------------------------------


def test_shutdown_waits_for_running_and_queued_work(executor_cls: ExecutorFactory) -> None:
    """shutdown(wait=True) returns only after every accepted task has run."""
    record = Recorder()
    ex = executor_cls(1)
    gate, held = hold_only_worker(ex)
    futures = [ex.submit(record, i) for i in range(5)]
    opener = threading.Thread(target=gate.open)
    opener.start()
    ex.shutdown(wait=True)
    opener.join(WAIT)
    assert held.done()
    assert all(f.done() and not f.cancelled() for f in futures)
    assert record.seen == list(range(5))


def test_shutdown_without_wait_returns_while_work_runs(executor_cls: ExecutorFactory) -> None:
    """shutdown(wait=False) returns at once; accepted work still runs to completion."""
    ex = executor_cls(1)
    gate, held = hold_only_worker(ex)
    queued = ex.submit(int, "5")
    ex.shutdown(wait=False)
    assert not held.done()
    gate.open()
    assert queued.result(WAIT) == 5
    ex.shutdown(wait=True)


def test_shutdown_cancel_futures_cancels_queued_but_not_running(
    executor_cls: ExecutorFactory,
) -> None:
    """shutdown(cancel_futures=True) cancels queued futures; the running one completes."""
    ran = threading.Event()
    ex = executor_cls(1)
    gate, held = hold_only_worker(ex)
    queued = [ex.submit(ran.set) for _ in range(3)]
    ex.shutdown(wait=False, cancel_futures=True)
    assert all(f.cancelled() for f in queued)
    gate.open()
    ex.shutdown(wait=True)
    assert held.result(0) is None
    assert not ran.is_set()


def test_submit_after_shutdown_raises_runtime_error(executor_cls: ExecutorFactory) -> None:
    """submit after shutdown raises RuntimeError with the standard message."""
    ex = executor_cls(1)
    ex.shutdown()
    with pytest.raises(RuntimeError, match="cannot schedule new futures after shutdown"):
        ex.submit(int)
    with pytest.raises(RuntimeError):
        ex.map(abs, [1])
    ex.shutdown()  # a second shutdown is harmless


def test_context_manager_returns_itself_and_waits_on_exit(executor_cls: ExecutorFactory) -> None:
    """`with` yields the executor itself and leaves only after its work is done."""
    record = Recorder()
    ex = executor_cls(2)
    with ex as entered:
        assert entered is ex
        futures = [ex.submit(record, i) for i in range(20)]
    assert all(f.done() for f in futures)
    assert sorted(record.seen) == list(range(20))
    with pytest.raises(RuntimeError):
        ex.submit(int)


def test_failing_initializer_breaks_the_executor(
    executor_cls: ExecutorFactory, caplog: pytest.LogCaptureFixture
) -> None:
    """A failing initializer fails pending work with BrokenThreadPool; submit then raises it."""

    def init() -> None:
        raise OSError("cannot initialize")

    ex = executor_cls(1, "", init)
    with caplog.at_level(logging.CRITICAL + 1), ex:
        fut = ex.submit(int, "1")
        assert isinstance(fut.exception(WAIT), BrokenThreadPool)
        with pytest.raises(BrokenThreadPool):
            ex.submit(int, "2")


# -- interop ---------------------------------------------------------------------------


def test_wait_first_completed_and_all_completed(executor: cf.Executor) -> None:
    """wait(FIRST_COMPLETED) returns the finished future; ALL_COMPLETED returns both."""
    gate = Gate()
    slow = executor.submit(gate)
    fast = executor.submit(int, "1")
    done, pending = cf.wait([slow, fast], timeout=WAIT, return_when=cf.FIRST_COMPLETED)
    assert done == {fast}
    assert pending == {slow}
    gate.open()
    done, pending = cf.wait([slow, fast], timeout=WAIT)
    assert done == {slow, fast}
    assert not pending


def test_wait_first_exception(executor: cf.Executor) -> None:
    """wait(FIRST_EXCEPTION) returns as soon as one future fails."""
    gate = Gate()
    slow = executor.submit(gate)
    failing = executor.submit(int, "not a number")
    done, pending = cf.wait([slow, failing], timeout=WAIT, return_when=cf.FIRST_EXCEPTION)
    assert done == {failing}
    assert pending == {slow}
    gate.open()


def test_as_completed_yields_in_completion_order(executor: cf.Executor) -> None:
    """as_completed yields the future that finishes first first."""
    gate = Gate()
    slow = executor.submit(gate, "slow")
    fast = executor.submit(str, "fast")
    order = []
    for fut in cf.as_completed([slow, fast], timeout=WAIT):
        order.append(fut.result())
        gate.open()
    assert order == ["fast", "slow"]


def test_asyncio_run_in_executor_and_wrap_future(executor: cf.Executor) -> None:
    """loop.run_in_executor and asyncio.wrap_future work with the executor and its futures."""

    async def main() -> list[int]:
        loop = asyncio.get_running_loop()
        first = await loop.run_in_executor(executor, pow, 2, 3)
        second = await asyncio.wrap_future(executor.submit(pow, 3, 2))
        gathered = await asyncio.gather(
            *(loop.run_in_executor(executor, abs, -i) for i in range(5))
        )
        return [first, second, *gathered]

    assert asyncio.run(main()) == [8, 9, 0, 1, 2, 3, 4]


def test_asyncio_sees_a_tasks_exception(executor: cf.Executor) -> None:
    """An exception raised in run_in_executor's call is raised by the await."""

    async def main() -> None:
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(executor, int, "x")

    with pytest.raises(ValueError, match="invalid literal"):
        asyncio.run(main())


def test_executor_can_be_asyncios_default_executor(
    executor_cls: ExecutorFactory,
) -> None:
    """loop.set_default_executor accepts the executor, so asyncio.to_thread runs on it."""
    ex = executor_cls(1, "default")

    async def main() -> str:
        asyncio.get_running_loop().set_default_executor(ex)
        return await asyncio.to_thread(lambda: threading.current_thread().name)

    try:
        assert asyncio.run(main()).startswith("default")
    finally:
        ex.shutdown()


# -- what the executor keeps and what its tasks inherit ----------------------------------


class Payload:
    """An object a test follows with a weak reference."""


def test_a_finished_tasks_argument_and_result_are_released(
    executor_cls: ExecutorFactory,
) -> None:
    """Once its future is dropped, a task's argument and result are freed though the pool lives."""
    ex = executor_cls(1)
    with ex:
        arg = Payload()
        fut = ex.submit(lambda p: (p, Payload())[1], arg)
        result = fut.result(WAIT)
        arg_ref, result_ref = weakref.ref(arg), weakref.ref(result)
        del arg, result, fut
        gc.collect()
        assert arg_ref() is None, gc.get_referrers(arg_ref())
        assert result_ref() is None


def fail_with(payload: Payload) -> None:
    """A task that fails (its payload is in its own traceback)."""
    raise ValueError("failed on purpose")


def test_after_shutdown_nothing_of_a_task_is_kept(executor_cls: ExecutorFactory) -> None:
    """After shutdown the executor holds no task's argument or result (NOLEAK)."""
    ex = executor_cls(2)
    refs = []
    for _ in range(4):
        arg = Payload()
        refs.append(weakref.ref(arg))
        ex.submit(lambda p: Payload(), arg).result(WAIT)
    failing_arg = Payload()
    refs.append(weakref.ref(failing_arg))
    assert isinstance(ex.submit(fail_with, failing_arg).exception(WAIT), ValueError)
    del arg, failing_arg
    ex.shutdown(wait=True)
    gc.collect()
    assert [r() for r in refs] == [None] * len(refs)


def test_a_kept_failed_future_holds_only_its_own_task(
    executor_cls: ExecutorFactory,
) -> None:
    """A failed future kept after shutdown pins its own task's data, no other task's."""
    ex = executor_cls(1)
    first_arg = Payload()
    first_ref = weakref.ref(first_arg)
    ex.submit(lambda p: Payload(), first_arg).result(WAIT)
    del first_arg
    kept = ex.submit(fail_with, Payload())  # the user keeps this failed future
    assert isinstance(kept.exception(WAIT), ValueError)
    ex.shutdown(wait=True)
    gc.collect()
    assert first_ref() is None


@pytest.mark.skipif(not hasattr(signal, "pthread_sigmask"), reason="needs POSIX signal masks")
def test_a_subprocess_started_by_a_task_can_be_terminated(
    executor_cls: ExecutorFactory,
) -> None:
    """A child process started from a task does not inherit blocked SIGTERM/SIGINT."""
    script = (
        "import signal; print(sorted(int(s) for s in signal.pthread_sigmask(signal.SIG_BLOCK, [])))"
    )

    def child_blocked_signals() -> str:
        done = subprocess.run(
            [sys.executable, "-c", script],
            capture_output=True,
            text=True,
            timeout=WAIT,
            check=True,
        )
        return done.stdout.strip()

    ex = executor_cls(1)
    with ex:
        blocked = ex.submit(child_blocked_signals).result(WAIT)
    assert str(int(signal.SIGTERM)) not in blocked.strip("[]").split(", ")
    assert str(int(signal.SIGINT)) not in blocked.strip("[]").split(", ")


# -- standard-library defects threadkit fixes (WorkerPool only) ---------------------------


class NotifyingWaiters(list[Any]):
    """A future's waiter list that signals when wait()/as_completed() registers on it."""

    def __init__(self) -> None:
        super().__init__()
        self.registered = threading.Event()

    def append(self, item: Any) -> None:
        super().append(item)
        self.registered.set()


def test_a_thread_blocked_in_wait_is_woken_by_a_cancelling_shutdown() -> None:
    """A waiter already blocked in wait() sees futures cancelled by shutdown(cancel_futures=True).

    WorkerPool only: ThreadPoolExecutor marks those futures CANCELLED without notifying
    their waiters (only a worker dequeuing them would), so such a waiter sleeps until its
    timeout even though nothing will ever run.
    """
    pool: WorkerPool[Any, Any] = WorkerPool(1)
    gate, held = hold_only_worker(pool)
    queued = [pool.submit(int, str(i)) for i in range(3)]
    waiters = NotifyingWaiters()
    queued[-1]._waiters = waiters
    outcome: list[tuple[set[cf.Future[Any]], set[cf.Future[Any]]]] = []
    waiter = threading.Thread(target=lambda: outcome.append(cf.wait(queued, timeout=WAIT)))
    waiter.start()
    assert waiters.registered.wait(WAIT)
    pool.shutdown(wait=False, cancel_futures=True)
    waiter.join(WAIT)
    assert not waiter.is_alive()
    done, not_done = outcome[0]
    assert done == set(queued)
    assert not not_done
    gate.open()
    pool.shutdown()
    assert held.result(0) is None


def test_as_completed_in_progress_is_woken_by_a_user_cancel() -> None:
    """An as_completed loop already waiting yields a queued future the moment it is cancelled.

    WorkerPool only: ThreadPoolExecutor notifies waiters of a cancelled queued future only
    when a worker dequeues it, so with busy workers as_completed blocks on work that is gone.
    """
    pool: WorkerPool[Any, Any] = WorkerPool(1)
    gate, _held = hold_only_worker(pool)
    queued = pool.submit(int, "1")
    waiters = NotifyingWaiters()
    queued._waiters = waiters
    yielded: list[cf.Future[Any]] = []
    consumer = threading.Thread(
        target=lambda: yielded.extend(cf.as_completed([queued], timeout=WAIT))
    )
    consumer.start()
    assert waiters.registered.wait(WAIT)
    assert queued.cancel()
    consumer.join(WAIT)
    assert not consumer.is_alive()
    assert yielded == [queued]
    gate.open()
    pool.shutdown()


def test_a_callback_raising_base_exception_during_cancel_is_logged(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """cancel() from a helper thread survives a callback raising SystemExit; the rest still run.

    WorkerPool only: Future._invoke_callbacks catches only Exception, so in the standard
    pool a BaseException escapes cancel() and skips the remaining callbacks.
    """
    pool: WorkerPool[Any, Any] = WorkerPool(1)
    gate, _held = hold_only_worker(pool)
    queued = pool.submit(int, "1")
    later = threading.Event()

    def bad(_: cf.Future[Any]) -> None:
        raise SystemExit("from a callback")

    queued.add_done_callback(bad)
    queued.add_done_callback(lambda _: later.set())
    results: list[bool] = []
    with caplog.at_level(logging.ERROR, logger="threadkit"):
        canceller = threading.Thread(target=lambda: results.append(queued.cancel()))
        canceller.start()
        canceller.join(WAIT)
    assert results == [True]
    assert later.is_set()
    assert "from a callback" in caplog.text
    gate.open()
    pool.shutdown()
