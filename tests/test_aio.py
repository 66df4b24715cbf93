"""The asyncio bridge: run, run_process, amap and aprocess, and cancellation reaching the job."""

from __future__ import annotations

import asyncio
import concurrent.futures as cf
import contextvars
import gc
import logging
import sys
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest

import threadkit
from helpers import WAIT
from threadkit import CancelToken, WorkerPool, current_token


class LoopEvent:
    """A flag any thread can set and a coroutine can await (without blocking the loop)."""

    def __init__(self) -> None:
        self.loop = asyncio.get_running_loop()
        self.event = asyncio.Event()
        self.flag = threading.Event()

    def set(self) -> None:
        self.flag.set()
        self.loop.call_soon_threadsafe(self.event.set)

    async def wait(self) -> None:
        await asyncio.wait_for(self.event.wait(), WAIT)


def wait_for_token() -> object:
    """A cooperative job: block until the job's own token is cancelled; return its reason."""
    token = current_token()
    assert token is not None
    assert token.wait(WAIT), "the job's token was never cancelled"
    return token.reason


# -- run -------------------------------------------------------------------------------


def test_run_returns_the_result_and_raises_the_very_exception() -> None:
    """``await pool.run`` gives the job's result, or raises the object it raised."""
    error = ValueError("boom")

    def fail() -> None:
        raise error

    async def main() -> None:
        with WorkerPool(2) as pool:
            assert await pool.run(pow, 2, 10) == 1024
            assert await pool.run(dict, a=1) == {"a": 1}
            with pytest.raises(ValueError) as info:
                await pool.run(fail)
            assert info.value is error

    asyncio.run(main())


def test_run_checks_its_arguments_at_the_call() -> None:
    """A non-callable, or run_process on a pool without workers, raises before any await."""
    with WorkerPool(1) as pool:
        with pytest.raises(TypeError, match="callable"):
            pool.run(42)  # type: ignore[arg-type, unused-coroutine]
        with pytest.raises(TypeError, match="worker="):
            pool.run_process(1)  # type: ignore[arg-type, unused-coroutine]
        with pytest.raises(TypeError, match="worker="):
            pool.aprocess([1])  # type: ignore[list-item]
        with pytest.raises(ValueError, match="buffersize"):
            pool.amap(abs, [1], buffersize=-1)


def test_each_job_has_its_own_token_under_the_pools() -> None:
    """The job's current_token() is its own token, a child of the pool's cancel_token."""

    async def main() -> None:
        with WorkerPool(2) as pool:
            first = await pool.run(current_token)
            second = await pool.run(current_token)
            assert isinstance(first, CancelToken)
            assert first is not pool.cancel_token
            assert first is not second
            started = LoopEvent()

            def job() -> object:
                started.set()
                return wait_for_token()

            task = asyncio.create_task(pool.run(job))
            await started.wait()
            pool.cancel_token.cancel("pool stops")
            assert await task == "pool stops"

    asyncio.run(main())


def test_a_finished_jobs_token_is_freed_without_the_garbage_collector() -> None:
    """Regression: future -> waiter -> future was a cycle that kept each job's token."""
    import weakref

    refs: list[weakref.ref[CancelToken]] = []

    def job() -> None:
        token = current_token()
        assert token is not None
        refs.append(weakref.ref(token))

    async def main() -> None:
        with WorkerPool(1) as pool:
            gc.disable()
            try:
                await pool.run(job)
                await pool.run(int)  # the worker has dropped the first job's entry by now
                assert refs[0]() is None
            finally:
                gc.enable()

    asyncio.run(main())


def test_contextvars_of_the_awaiting_task_reach_the_job() -> None:
    """The job sees the awaiting task's context variables, as with asyncio.to_thread."""
    var: contextvars.ContextVar[str] = contextvars.ContextVar("var", default="unset")

    async def one(value: str, pool: WorkerPool[Any, Any]) -> tuple[str, list[str]]:
        var.set(value)
        single = await pool.run(var.get)
        mapped = [v async for v in pool.amap(lambda _: var.get(), range(3))]
        return single, mapped

    async def main() -> None:
        with WorkerPool(2) as pool:
            results = await asyncio.gather(one("a", pool), one("b", pool))
        assert list(results) == [("a", ["a"] * 3), ("b", ["b"] * 3)]
        assert var.get() == "unset"

    asyncio.run(main())


def test_cancelling_before_start_means_the_job_never_runs() -> None:
    """A job still queued when its awaiter is cancelled is cancelled and never runs."""
    ran = threading.Event()

    pool = WorkerPool(1)

    async def main() -> None:
        with pool:
            busy = LoopEvent()
            release = threading.Event()

            def blocker() -> None:
                busy.set()
                release.wait(WAIT)

            first = asyncio.create_task(pool.run(blocker))
            await busy.wait()
            queued = asyncio.create_task(pool.run(ran.set))
            await asyncio.sleep(0)  # let it submit
            assert pool.statistics().queued == 1
            queued.cancel()
            with pytest.raises(asyncio.CancelledError):
                await queued
            release.set()
            await first

    asyncio.run(main())
    assert not ran.is_set()
    assert pool.statistics().cancelled == 1  # counted when a worker skips it


def test_cancelling_a_running_job_cancels_its_token_and_waits_for_it() -> None:
    """The running job sees its token cancelled; the awaiter raises only once it returned."""
    returned = threading.Event()
    seen: list[object] = []

    async def main() -> None:
        with WorkerPool(2) as pool:
            started = LoopEvent()

            def job() -> None:
                started.set()
                seen.append(wait_for_token())
                time.sleep(0.05)  # the awaiter must wait through this too
                returned.set()

            task = asyncio.create_task(pool.run(job))
            await started.wait()
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
            assert returned.is_set()
            assert not pool.cancel_token.cancelled  # only the job's own token

    asyncio.run(main())
    assert seen == ["the awaiting task was cancelled"]


def test_a_job_ignoring_its_token_is_waited_for_up_to_the_grace_then_reported(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Past the grace the awaiter gives up, the job stays busy, is logged, and is a straggler."""
    release = threading.Event()
    grace = 0.2

    async def main() -> None:
        pool = WorkerPool(2, shutdown_grace=grace)
        started = LoopEvent()

        def stubborn() -> str:
            started.set()
            release.wait(WAIT)
            return "late"

        task = asyncio.create_task(pool.run(stubborn))
        await started.wait()
        began = time.monotonic()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert time.monotonic() - began >= grace * 0.9  # it did wait (a lower bound)
        assert not release.is_set()
        stats = pool.statistics()
        assert stats.busy == 1
        assert stats.oldest_running is not None
        report = pool.shutdown(wait=True, timeout=0)
        assert [s.task for s in report.stragglers] == [f"{__name__}.{stubborn.__qualname__}"]
        release.set()
        pool.shutdown(wait=True)

    with caplog.at_level(logging.INFO, logger="threadkit"):
        asyncio.run(main())
    messages = [r.getMessage() for r in caplog.records if r.name == "threadkit"]
    assert any("ignores its cancel token" in m and "stubborn" in m for m in messages)
    assert any("returned" in m and "stubborn" in m for m in messages)


def test_a_second_cancellation_ends_the_grace_early() -> None:
    """Cancelling the task again while it waits through the grace raises at once."""
    release = threading.Event()

    async def main() -> None:
        with WorkerPool(1, shutdown_grace=WAIT) as pool:
            started = LoopEvent()

            def stubborn() -> None:
                started.set()
                release.wait(WAIT)

            task = asyncio.create_task(pool.run(stubborn))
            await started.wait()
            task.cancel()
            await asyncio.sleep(0.01)  # the task is in its grace wait now
            assert not task.done()
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await asyncio.wait_for(task, WAIT)
            release.set()

    asyncio.run(main())


def test_asyncio_timeout_cancels_the_running_job() -> None:
    """asyncio.timeout around ``await pool.run`` stops the job and raises TimeoutError."""
    seen: list[object] = []

    def job() -> None:
        seen.append(wait_for_token())

    async def main() -> None:
        with WorkerPool(1) as pool:
            with pytest.raises(TimeoutError):
                async with asyncio.timeout(0.05):
                    await pool.run(job)
            assert seen == ["the awaiting task was cancelled"]  # returned before TimeoutError

    asyncio.run(main())
    assert seen == ["the awaiting task was cancelled"]


def test_a_taskgroup_cancels_the_sibling_jobs() -> None:
    """A failing TaskGroup member cancels the siblings' running and queued jobs.

    The group cancels its tasks one after another; the queued job must be cancelled
    before a running one stops on its token and frees a worker that would take it.
    """
    reasons: list[object] = []
    never = threading.Event()

    async def main() -> None:
        with WorkerPool(2) as pool:
            started = [LoopEvent(), LoopEvent()]

            def job(i: int) -> None:
                started[i].set()
                reasons.append(wait_for_token())

            async def fail() -> None:
                for event in started:
                    await event.wait()
                raise ValueError("sibling failed")

            async def members() -> None:
                async with asyncio.TaskGroup() as group:
                    group.create_task(pool.run(job, 0))
                    group.create_task(pool.run(job, 1))
                    group.create_task(pool.run(never.set))  # queued behind the two
                    group.create_task(fail())

            with pytest.raises(ExceptionGroup) as info:
                await members()
            assert [type(e) for e in info.value.exceptions] == [ValueError]
            assert len(reasons) == 2  # both jobs returned before the group ended
        assert pool.statistics().cancelled == 1

    asyncio.run(main())
    assert reasons == ["the awaiting task was cancelled"] * 2
    assert not never.is_set()


def test_a_pool_cancelling_a_queued_job_cancels_the_awaiter() -> None:
    """A cancelling shutdown raises CancelledError in the awaiter, as wrap_future does."""

    async def main() -> None:
        pool = WorkerPool(1)
        busy = LoopEvent()
        release = threading.Event()

        def blocker() -> None:
            busy.set()
            release.wait(WAIT)

        first = asyncio.create_task(pool.run(blocker))
        await busy.wait()
        queued = asyncio.create_task(pool.run(int))
        await asyncio.sleep(0)
        pool.shutdown(wait=False, cancel_futures=True)
        with pytest.raises(asyncio.CancelledError):
            await queued
        release.set()
        await first
        pool.shutdown(wait=True)

    asyncio.run(main())


def test_a_full_queue_raises_instead_of_blocking_the_loop() -> None:
    """With a bounded queue full, run raises QueueFull whatever the policy; nothing waits."""

    async def main() -> None:
        with WorkerPool(1, max_queue=1, overflow="block") as pool:
            busy = LoopEvent()
            release = threading.Event()

            def blocker() -> None:
                busy.set()
                release.wait(WAIT)

            first = asyncio.create_task(pool.run(blocker))
            await busy.wait()
            second = asyncio.create_task(pool.run(int))
            await asyncio.sleep(0)
            with pytest.raises(threadkit.QueueFull):
                await pool.run(int)
            release.set()
            await first
            assert await second == 0

    asyncio.run(main())


def test_run_on_a_pool_with_hooks() -> None:
    """A pool with hooks reports the bridge's jobs like any other task."""
    events: list[str] = []

    class Hooks(threadkit.PoolHooks):
        def task_finished(self, event: threadkit.TaskEvent) -> None:
            events.append("finished")

        def task_cancelled(self, event: threadkit.TaskEvent) -> None:
            events.append("cancelled")

    async def main() -> None:
        with WorkerPool(1, hooks=Hooks()) as pool:
            assert await pool.run(abs, -3) == 3

    asyncio.run(main())
    assert events == ["finished"]


# -- unretrieved exceptions ------------------------------------------------------------


@pytest.mark.parametrize("kind", ["cancelled", "error"])
def test_no_never_retrieved_log_for_a_job_whose_awaiter_was_cancelled(
    kind: str, caplog: pytest.LogCaptureFixture
) -> None:
    """A job failing after its awaiter was cancelled is never logged as unretrieved."""

    async def main() -> None:
        started = LoopEvent()

        def job() -> None:
            token = current_token()
            assert token is not None
            started.set()
            token.wait(WAIT)
            if kind == "cancelled":
                token.raise_if_cancelled()
            raise OSError("connection closed by the cancellation")

        with WorkerPool(1) as pool:
            task = asyncio.create_task(pool.run(job))
            await started.wait()
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
            del task

    with caplog.at_level(logging.DEBUG, logger="threadkit"):
        asyncio.run(main())
        gc.collect()
    messages = [r.getMessage() for r in caplog.records if r.name == "threadkit"]
    assert not [m for m in messages if "never retrieved" in m]


def test_an_unawaited_failure_is_still_logged_when_nobody_cancelled() -> None:
    """The pool's own unretrieved-exception log is unchanged for plain submits (control)."""
    records: list[logging.LogRecord] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            records.append(record)

    handler = Keep()
    logging.getLogger("threadkit").addHandler(handler)
    try:
        with WorkerPool(1) as pool:
            fut = pool.submit(int, "x")
            assert fut.exception(WAIT) is not None  # retrieved: not logged
            fut2 = pool.submit(int, "y")
            assert cf.wait([fut2], WAIT).done  # waited for, never retrieved
            del fut, fut2
        gc.collect()
    finally:
        logging.getLogger("threadkit").removeHandler(handler)
    assert len([r for r in records if "never retrieved" in r.getMessage()]) == 1


# -- amap / aprocess -------------------------------------------------------------------


def test_amap_yields_results_in_order_with_bounded_input() -> None:
    """amap reads input lazily with at most buffersize jobs in flight, results in order."""
    read: list[int] = []
    high = [0]
    lock = threading.Lock()
    active = [0]

    def source() -> Iterator[int]:
        for i in range(50):
            read.append(i)
            yield i

    def job(x: int, y: int) -> int:
        with lock:
            active[0] += 1
            high[0] = max(high[0], active[0])
        time.sleep(0.001)
        with lock:
            active[0] -= 1
        return x * y

    async def main() -> None:
        with WorkerPool(8) as pool:
            results = []
            async for value in pool.amap(job, source(), range(100, 150), buffersize=3):
                results.append(value)
                assert len(read) <= len(results) + 3
            assert results == [i * (100 + i) for i in range(50)]

    asyncio.run(main())
    assert high[0] <= 3


def test_amap_raises_an_items_exception_in_its_turn_and_cancels_the_rest() -> None:
    """An item's error comes after the earlier results; later unstarted items never run."""
    ran: list[int] = []

    def job(x: int) -> int:
        ran.append(x)
        if x == 2:
            raise KeyError(x)
        if x > 2:
            wait_for_token()
        return x

    async def main() -> None:
        with WorkerPool(2) as pool:
            seen: list[int] = []

            async def consume() -> None:
                async for value in pool.amap(job, range(1000), buffersize=4):
                    seen.append(value)  # noqa: PERF401 - the items before the error

            with pytest.raises(KeyError):
                await consume()
            assert seen == [0, 1]

    asyncio.run(main())
    assert max(ran) < 8


def test_breaking_out_of_async_for_cancels_what_has_not_started() -> None:
    """``break`` cancels the queued jobs and the running jobs' tokens."""
    reasons: list[object] = []
    started: list[int] = []

    def job(x: int) -> int:
        started.append(x)
        if x == 0:
            return x
        reasons.append(wait_for_token())
        return x

    async def main() -> None:
        with WorkerPool(2) as pool:
            async for value in pool.amap(job, range(1000), buffersize=8):
                assert value == 0
                break
        assert pool.statistics().cancelled >= 5  # after shutdown: skipped ones counted

    asyncio.run(main())
    assert len(started) <= 3
    assert reasons == ["the awaiting task was cancelled"] * (len(started) - 1)


def test_closing_amap_cancels_the_queued_jobs_before_stopping_the_running_ones() -> None:
    """Regression: a job stopped by its token freed a worker that ran a queued job.

    Closing cancelled job 0's token before job 1's future; job 0 returned and its
    worker took job 1. A callback on job 0's token (it runs in the closing thread, in
    cancel()) gives the worker time to do so; no later job may start.
    """
    later_started = threading.Event()
    first: list[LoopEvent] = []

    def job(x: int) -> int:
        if x > 0:
            later_started.set()
            return x
        token = current_token()
        assert token is not None
        token.add_callback(lambda _: later_started.wait(0.2))
        first[0].set()
        token.wait(WAIT)
        return x

    async def main() -> None:
        first.append(LoopEvent())
        with WorkerPool(1) as pool:
            results = pool.amap(job, range(3), buffersize=3)
            head = asyncio.create_task(results.__anext__())
            await first[0].wait()
            head.cancel()
            with pytest.raises(asyncio.CancelledError):
                await head
        assert pool.statistics().cancelled == 2

    asyncio.run(main())
    assert not later_started.is_set()


def test_async_with_amap_waits_for_the_running_jobs() -> None:
    """Leaving ``async with pool.amap(...)`` early waits (up to the grace) for running jobs."""
    returned = threading.Event()
    second_running = threading.Event()

    async def main() -> None:
        with WorkerPool(2) as pool:

            def job(x: int) -> int:
                if x == 0:
                    assert second_running.wait(WAIT)  # so job 1 runs when 0 is seen
                if x == 1:
                    second_running.set()
                    wait_for_token()
                    time.sleep(0.05)
                    returned.set()
                return x

            async with pool.amap(job, range(100), buffersize=2) as results:
                async for value in results:
                    assert value == 0
                    break
            assert returned.is_set()

    asyncio.run(main())


def test_cancelling_the_task_iterating_amap_cancels_its_jobs() -> None:
    """Cancelling the task inside ``async for`` cancels the jobs and waits for them."""
    reasons: list[object] = []

    async def main() -> None:
        with WorkerPool(3) as pool:
            running = [LoopEvent() for _ in range(3)]

            def job(x: int) -> int:
                running[x].set()  # only items 0-2 ever start
                reasons.append(wait_for_token())
                return x

            async def consume() -> None:
                async for _ in pool.amap(job, range(100), buffersize=5):
                    pass

            task = asyncio.create_task(consume())
            for event in running:
                await event.wait()
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
            assert len(reasons) == 3  # the running jobs returned before the task ended
        assert pool.statistics().cancelled == 2  # five in flight, three running

    asyncio.run(main())
    assert reasons == ["the awaiting task was cancelled"] * 3


def test_amap_raises_an_input_error_after_the_results_in_flight() -> None:
    """An input that raises ends the iteration with that error, after what was in flight."""

    def source() -> Iterator[int]:
        yield 1
        yield 2
        raise LookupError("input broke")

    async def main() -> None:
        with WorkerPool(2) as pool:
            seen: list[int] = []

            async def consume() -> None:
                async for value in pool.amap(abs, source(), buffersize=4):
                    seen.append(value)  # noqa: PERF401 - the items before the error

            with pytest.raises(LookupError):
                await consume()
            assert seen == [1, 2]

    asyncio.run(main())


def test_amap_on_a_full_bounded_queue_keeps_fewer_jobs_in_flight() -> None:
    """On a full queue amap holds the next input back until one of its jobs is done."""
    gate = threading.Event()
    started: list[LoopEvent] = []

    def job(x: int) -> int:
        if x == 0:
            started[-1].set()
            assert gate.wait(WAIT)
        return x

    async def main() -> None:
        started.append(LoopEvent())
        with WorkerPool(1, max_queue=1, overflow="block") as pool:
            results = pool.amap(job, range(6), buffersize=4)
            first = asyncio.create_task(results.__anext__())
            await asyncio.sleep(0)  # it submitted what fits: one running, one queued
            stats = pool.statistics()
            assert (stats.submitted, stats.rejected) == (2, 1)
            gate.set()
            assert await first == 0
            assert [x async for x in results] == [1, 2, 3, 4, 5]
            # With none of its own in flight, a full queue is an error, not a wait.
            gate.clear()
            started.append(LoopEvent())
            blocker = asyncio.create_task(pool.run(job, 0))
            await started[-1].wait()
            filler = asyncio.create_task(pool.run(job, 1))
            await asyncio.sleep(0)
            with pytest.raises(threadkit.QueueFull):
                await pool.amap(job, range(3)).__anext__()
            gate.set()
            assert list(await asyncio.gather(blocker, filler)) == [0, 1]

    asyncio.run(main())


class Doubler(threadkit.Worker[int, int]):
    def process(self, item: int) -> int:
        token = current_token()
        assert token is not None
        assert token is not self.token
        return item * 2


def test_run_process_and_aprocess_use_the_threads_worker() -> None:
    """run_process and aprocess run Worker.process with the item's own token."""

    async def main() -> None:
        with WorkerPool(2, worker=Doubler) as pool:
            assert await pool.run_process(21) == 42
            assert [v async for v in pool.aprocess(range(5))] == [0, 2, 4, 6, 8]

    asyncio.run(main())


# -- the loop is never blocked, and the default executor -----------------------------


def test_heartbeat_stays_on_time_while_1000_jobs_run_and_are_cancelled() -> None:
    """The loop keeps ticking while 1,000 jobs run and are cancelled, stubborn ones too.

    100 jobs run (10 of them ignore their token), 900 wait in the queue. The stubborn
    ones return only after the heartbeat has ticked 20 times since the cancellation, so
    a bridge that waited for them on the loop's thread would stall the loop until their
    10 s timeout. The bound on a gap (0.5 s) is generous; the test takes well under it.
    """
    gaps: list[float] = []
    released = threading.Event()  # set by the heartbeat, never by a timeout
    lock = threading.Lock()
    running = [0]

    async def main() -> None:
        all_running = LoopEvent()
        cancelled = asyncio.Event()

        def job(i: int) -> bool:
            token = current_token()
            assert token is not None
            with lock:
                running[0] += 1
                if running[0] == 100:
                    all_running.set()
            if i % 10 == 0:
                return released.wait(WAIT)  # stubborn: ignores its token
            return token.wait(WAIT)

        async def heartbeat() -> None:
            last = time.monotonic()
            ticks = 0
            while not released.is_set():
                await asyncio.sleep(0.005)
                now = time.monotonic()
                gaps.append(now - last)
                last = now
                if cancelled.is_set():
                    ticks += 1
                    if ticks == 20:
                        released.set()

        beat = asyncio.create_task(heartbeat())
        with WorkerPool(100, shutdown_grace=WAIT) as pool:
            tasks = [asyncio.create_task(pool.run(job, i)) for i in range(1000)]
            await all_running.wait()
            for task in tasks:
                task.cancel()
            cancelled.set()
            outcomes = await asyncio.gather(*tasks, return_exceptions=True)
            assert all(isinstance(o, asyncio.CancelledError) for o in outcomes)
            await asyncio.wait_for(beat, WAIT)
        assert pool.statistics().cancelled == 900

    asyncio.run(main())
    assert released.is_set()
    assert len(gaps) >= 20
    assert max(gaps) < 0.5, f"the loop stalled for {max(gaps):.3f} s"


def test_the_pool_as_the_default_executor_and_asyncio_run_ending() -> None:
    """As the loop's default executor it runs to_thread; asyncio.run ending stops its jobs."""
    pool = WorkerPool(4, thread_name_prefix="default")
    reasons: list[object] = []

    def job() -> None:
        reasons.append(wait_for_token())

    async def main() -> str:
        asyncio.get_running_loop().set_default_executor(pool)
        name = await asyncio.to_thread(lambda: threading.current_thread().name)
        running = [LoopEvent() for _ in range(3)]

        def started_job(i: int) -> None:
            running[i].set()
            job()

        for i in range(3):
            asyncio.get_running_loop().create_task(pool.run(started_job, i))
        for event in running:
            await event.wait()
        return name  # asyncio.run cancels the three tasks, then shuts the pool down

    began = time.monotonic()
    assert asyncio.run(main()).startswith("default")
    assert time.monotonic() - began < WAIT
    assert reasons == ["the awaiting task was cancelled"] * 3
    with pytest.raises(threadkit.PoolShutDown):
        pool.submit(int)


@pytest.mark.skipif(
    sys.version_info < (3, 13),
    reason="shutdown_default_executor has no timeout before 3.12 and ignores it in 3.12",
)
def test_shutdown_default_executor_returns_within_its_timeout() -> None:
    """With a job that ignores every token, shutdown_default_executor(timeout) still returns."""
    release = threading.Event()
    pool = WorkerPool(2)

    async def main() -> None:
        loop = asyncio.get_running_loop()
        loop.set_default_executor(pool)
        started = LoopEvent()

        def stubborn() -> None:
            started.set()
            release.wait(WAIT)

        fut = loop.run_in_executor(None, stubborn)
        await started.wait()
        with pytest.warns(RuntimeWarning, match="did not finish"):
            await loop.shutdown_default_executor(timeout=0.1)  # type: ignore[call-arg]
        release.set()
        await fut

    asyncio.run(main())
    pool.shutdown(wait=True)


def test_importing_threadkit_does_not_import_asyncio() -> None:
    """A program that never uses asyncio does not pay for importing it."""
    import subprocess

    code = "import sys, threadkit; print('asyncio' in sys.modules)"
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    )
    assert out.stdout.strip() == "False"
