"""WorkerPool where code written for ThreadPoolExecutor puts it (issue 17).

Error words against the running Python's own ThreadPoolExecutor; ``map`` through a
wrapped or overridden ``submit`` (tqdm's ``thread_map``, the real library); futures
abandoned by asyncio; the private attributes popular libraries read (stand-ins that do
what google-cloud-pubsub's ``ThreadScheduler.shutdown`` and celery's thread pool do);
submitters that are event-loop threads; grpc servers (the real library); and 3.14's
``prepare_context`` hook.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import gc
import io
import logging
import queue
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from concurrent.futures import BrokenExecutor, Future, ThreadPoolExecutor
from typing import Any, TypeVar

import pytest

import threadkit
from helpers import WAIT, Gate
from threadkit import MapIterator, PoolShutDown, QueueFull, WorkerPool

T = TypeVar("T")


def _raised(call: Callable[[], object]) -> BaseException:
    try:
        call()
    except BaseException as exc:
        return exc
    raise AssertionError(f"{call} raised nothing")


def _map_buffersize(pool: Any, value: object) -> object:
    return pool.map(str, range(4), buffersize=value)


def _fail_init() -> None:
    raise ValueError("bad init")


def _after_shutdown(cls: Any) -> object:
    pool = cls(1)
    pool.shutdown()
    return pool.submit(int)


def _with_pool(cls: Any, use: Callable[[Any], object]) -> object:
    with cls(1) as pool:
        return use(pool)


# Each misuse, done to a pool made by ``make`` (the class under test).
MISUSES: dict[str, Callable[[Any], object]] = {
    "max_workers=0": lambda cls: cls(max_workers=0),
    "max_workers=-1": lambda cls: cls(max_workers=-1),
    "initializer=3": lambda cls: cls(initializer=3),
    "submit after shutdown": _after_shutdown,
}
if sys.version_info >= (3, 14):  # map(buffersize=...) is new in 3.14
    MISUSES |= {
        "buffersize='foo'": lambda cls: _with_pool(cls, lambda p: _map_buffersize(p, "foo")),
        "buffersize=2.0": lambda cls: _with_pool(cls, lambda p: _map_buffersize(p, 2.0)),
        "buffersize=0": lambda cls: _with_pool(cls, lambda p: _map_buffersize(p, 0)),
        "buffersize=-1": lambda cls: _with_pool(cls, lambda p: _map_buffersize(p, -1)),
    }


@pytest.mark.parametrize("misuse", sorted(MISUSES))
def test_misuse_raises_the_stdlib_type_with_the_stdlib_words(misuse: str) -> None:
    """Each misuse raises what this Python's ThreadPoolExecutor raises, its words first."""
    expected = _raised(lambda: MISUSES[misuse](ThreadPoolExecutor))
    got = _raised(lambda: MISUSES[misuse](WorkerPool))
    assert isinstance(got, type(expected))
    assert str(got).startswith(str(expected)), (str(got), str(expected))


def test_broken_pool_error_starts_with_the_stdlib_words() -> None:
    """A failed initializer breaks the pool with ThreadPoolExecutor's words, then detail."""
    with ThreadPoolExecutor(1, initializer=_fail_init) as std:
        expected = _raised(std.submit(int).result)
    logging.getLogger("threadkit").disabled = True
    try:
        with WorkerPool(1, initializer=_fail_init) as pool:
            got = _raised(pool.submit(int).result)
    finally:
        logging.getLogger("threadkit").disabled = False
    assert isinstance(got, BrokenExecutor)
    assert str(got).startswith(str(expected)), (str(got), str(expected))
    assert "bad init" in str(got)


def test_pool_shut_down_stays_a_runtime_error_with_the_stdlib_words() -> None:
    """submit after shutdown raises PoolShutDown: a RuntimeError worded as the stdlib's."""
    pool = WorkerPool(1)
    pool.shutdown()
    exc = _raised(lambda: pool.submit(int))
    assert type(exc) is PoolShutDown
    assert isinstance(exc, RuntimeError)
    assert str(exc) == "cannot schedule new futures after shutdown"


# -- map through submit ------------------------------------------------------------------


def test_map_goes_through_a_submit_wrapped_on_the_instance() -> None:
    """A submit replaced on the instance (tqdm's way) sees every call map makes."""
    seen: list[Future[Any]] = []
    with WorkerPool(2) as pool:
        own = pool.submit

        def counting(fn: Callable[..., T], /, *args: Any, **kwargs: Any) -> Future[T]:
            fut = own(fn, *args, **kwargs)
            seen.append(fut)
            return fut

        pool.submit = counting  # type: ignore[method-assign]
        assert list(pool.map(abs, range(-3, 3))) == [3, 2, 1, 0, 1, 2]
        assert list(pool.map(pow, [2, 3], [3, 2], buffersize=1)) == [8, 9]
    assert len(seen) == 8


def test_map_goes_through_a_submit_a_subclass_overrides() -> None:
    """A subclass that overrides submit (logging, tracing) sees every call map makes."""

    class Traced(WorkerPool[Any, Any]):  # type: ignore[misc]
        calls = 0

        def submit(self, fn: Callable[..., T], /, *args: Any, **kwargs: Any) -> Future[T]:
            type(self).calls += 1
            return super().submit(fn, *args, **kwargs)

    with Traced(2) as pool:
        results = pool.map(str, range(5), timeout=WAIT)
        assert list(results) == ["0", "1", "2", "3", "4"]
    assert Traced.calls == 5


def test_map_keeps_its_fast_path_with_threadkits_own_submit() -> None:
    """With its own submit, map makes no future per item (a MapIterator)."""
    with WorkerPool(2) as pool:
        results = pool.map(abs, [-1, -2])
        assert isinstance(results, MapIterator)
        assert list(results) == [1, 2]


def test_map_through_submit_cancels_the_rest_when_closed() -> None:
    """Closing a map that went through a foreign submit cancels what has not started."""
    gate = Gate()
    futures: list[Future[Any]] = []
    with WorkerPool(1) as pool:
        own = pool.submit

        def keep(fn: Callable[..., T], /, *args: Any, **kwargs: Any) -> Future[T]:
            fut = own(fn, *args, **kwargs)
            futures.append(fut)
            return fut

        pool.submit = keep  # type: ignore[method-assign]
        results = pool.map(gate, range(4))
        assert gate.started.wait(WAIT)
        results.close()
        gate.open()
    assert [f.cancelled() for f in futures] == [False, True, True, True]


def test_tqdm_thread_map_counts_every_item(monkeypatch: pytest.MonkeyPatch) -> None:
    """tqdm's thread_map (the real library), with WorkerPool patched in, ends at N/N."""
    concurrent_contrib = pytest.importorskip("tqdm.contrib.concurrent")
    tqdm = pytest.importorskip("tqdm")
    monkeypatch.setattr(concurrent.futures, "ThreadPoolExecutor", WorkerPool)
    bars: list[Any] = []

    base: Any = tqdm.tqdm

    class Recorded(base):  # type: ignore[misc]
        monitor_interval = 0  # no monitor thread (it would outlive the test)

        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            bars.append(self)

    out = io.StringIO()
    items = iter(range(25))  # unknown length, as in tqdm's own test
    got = concurrent_contrib.thread_map(
        abs, items, max_workers=3, tqdm_class=Recorded, file=out, mininterval=0
    )
    assert got == list(range(25))
    assert [bar.n for bar in bars] == [25]


# -- futures whose awaiting side has gone ------------------------------------------------


def _records(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if "never retrieved" in r.getMessage()]


def test_asyncio_timeout_then_failure_is_not_logged_as_lost(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A task whose asyncio awaiter timed out, then failed, is not logged as unretrieved."""
    release = threading.Event()

    def slow_failure() -> None:
        assert release.wait(WAIT)
        raise ValueError("after the caller gave up")

    async def main(pool: WorkerPool[Any, Any]) -> None:
        loop = asyncio.get_running_loop()
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(loop.run_in_executor(pool, slow_failure), 0.05)

    with caplog.at_level(logging.ERROR, logger="threadkit"):
        with WorkerPool(1) as pool:
            asyncio.run(main(pool))
            release.set()
        gc.collect()
    assert _records(caplog) == []


def test_a_failure_nobody_gave_up_on_is_still_logged(caplog: pytest.LogCaptureFixture) -> None:
    """The counterpart: a failed future dropped unread, never cancelled, is logged."""
    with caplog.at_level(logging.ERROR, logger="threadkit"):
        with WorkerPool(1) as pool:
            pool.submit(int, "not a number")
        gc.collect()
    assert len(_records(caplog)) == 1


def test_cancel_of_a_running_task_exempts_its_failure(caplog: pytest.LogCaptureFixture) -> None:
    """cancel() on a running future (too late) says its outcome is not wanted: no log."""
    gate = Gate()

    def fail() -> None:
        gate()
        raise ValueError("unwanted")

    with caplog.at_level(logging.ERROR, logger="threadkit"):
        with WorkerPool(1) as pool:
            fut = pool.submit(fail)
            assert gate.started.wait(WAIT)
            assert not fut.cancel()
            gate.open()
        del fut
        gc.collect()
    assert _records(caplog) == []


# -- private attributes ------------------------------------------------------------------


class PubSubLikeScheduler:
    """A stand-in for google-cloud-pubsub's ThreadScheduler: its shutdown drains the
    executor's ``_work_queue`` to hand back the messages that never reached a callback."""

    def __init__(self, executor: Any) -> None:
        self._executor = executor

    def schedule(self, callback: Callable[[Any], object], message: Any) -> None:
        self._executor.submit(callback, message)

    def shutdown(self) -> list[Any]:
        dropped = []
        try:
            while True:
                item = self._executor._work_queue.get(block=False)
                if item is None:
                    continue
                dropped.append(item.args[0])
        except queue.Empty:
            pass
        self._executor.shutdown(wait=True)
        return dropped


def test_pubsub_style_drain_hands_back_the_unstarted_messages() -> None:
    """Draining _work_queue returns queued tasks in order, cancelled; statistics add up."""
    gate = Gate()
    pool: WorkerPool[Any, Any] = WorkerPool(1)
    scheduler = PubSubLikeScheduler(pool)
    scheduler.schedule(gate, "m0")
    assert gate.started.wait(WAIT)
    for i in range(1, 5):
        scheduler.schedule(gate, f"m{i}")
    assert pool._work_queue.qsize() == 4
    threading.Timer(0.05, gate.open).start()
    assert scheduler.shutdown() == ["m1", "m2", "m3", "m4"]
    stats = pool.statistics()
    assert (stats.submitted, stats.completed, stats.cancelled) == (5, 1, 4)


def test_draining_frees_places_in_a_bounded_queue() -> None:
    """A task drained from a bounded queue gives its place back, and its future is cancelled."""
    gate = Gate()
    with WorkerPool(1, max_queue=1, overflow="reject") as pool:
        pool.submit(gate)
        assert gate.started.wait(WAIT)
        queued = pool.submit(int, "7")
        assert pool.try_submit(int) is None
        item = pool._work_queue.get_nowait()
        assert (item.fn, item.args, item.kwargs, item.task) == (int, ("7",), {}, (int, ("7",), {}))
        assert item.future is queued
        assert queued.cancelled()
        later = pool.try_submit(int, "8")
        gate.open()
        assert later is not None
        assert later.result(WAIT) == 8
        with pytest.raises(queue.Empty):
            pool._work_queue.get(block=False)


def test_work_queue_refuses_puts_naming_the_public_way() -> None:
    """Putting into _work_queue fails and names submit() and shutdown_now()."""
    with WorkerPool(1) as pool, pytest.raises(TypeError, match="submit"):
        pool._work_queue.put(None)


def test_draining_while_workers_and_submitters_race(fast_switching: None) -> None:
    """Drains racing submits and workers: every future ends, none twice; counts add up."""
    pool: WorkerPool[Any, Any] = WorkerPool(2, max_queue=8)
    futures: list[Future[Any]] = []
    drained: list[Any] = []
    lock = threading.Lock()
    go = threading.Barrier(4, timeout=WAIT)

    submitting = threading.Semaphore(0)

    def submitter() -> None:
        go.wait()
        mine = [pool.submit(time.sleep, 0.0001) for i in range(300)]
        with lock:
            futures.extend(mine)
        submitting.release()

    def drainer() -> None:
        go.wait()
        finished = 0
        while finished < 2:  # drain until both submitters are done
            with contextlib.suppress(queue.Empty):
                drained.append(pool._work_queue.get(block=False))
            if submitting.acquire(blocking=False):
                finished += 1

    threads = [threading.Thread(target=submitter) for _ in range(2)]
    threads.append(threading.Thread(target=drainer))
    for thread in threads:
        thread.start()
    go.wait()
    for thread in threads:
        thread.join(WAIT)
    pool.shutdown(wait=True)
    _, pending = concurrent.futures.wait(futures, timeout=WAIT)
    assert not pending
    assert all(item.future.cancelled() for item in drained)
    assert len({id(item.future) for item in drained}) == len(drained)
    cancelled = sum(f.cancelled() for f in futures)
    assert cancelled == len(drained)
    stats = pool.statistics()
    assert stats.submitted == 600
    assert (stats.completed, stats.cancelled) == (600 - cancelled, cancelled)


def test_celery_style_info_reads_threads_and_max_workers() -> None:
    """A stand-in for celery's thread pool info: _max_workers and len(_threads) are live."""
    barrier = threading.Barrier(3, timeout=WAIT)
    with WorkerPool(4) as pool:
        assert (pool._max_workers, len(pool._threads)) == (4, 0)
        futures = [pool.submit(barrier.wait) for _ in range(2)]
        barrier.wait()
        for fut in futures:
            fut.result(WAIT)
        info = {"max-concurrency": pool._max_workers, "threads": len(pool._threads)}
        assert info == {"max-concurrency": 4, "threads": 2}
        assert all(isinstance(t, threading.Thread) for t in pool._threads)
    assert len(pool._threads) == 0


def test_shutdown_and_broken_read_as_in_the_stdlib() -> None:
    """_shutdown turns True at shutdown; _broken is False or the reason."""
    pool: WorkerPool[Any, Any] = WorkerPool(1, thread_name_prefix="tk")
    assert (pool._shutdown, pool._broken, pool._thread_name_prefix) == (False, False, "tk")
    pool.shutdown()
    assert pool._shutdown is True
    logging.getLogger("threadkit").disabled = True
    try:
        broken: WorkerPool[Any, Any] = WorkerPool(1, initializer=_fail_init)
        with pytest.raises(BrokenExecutor):
            broken.submit(int).result(WAIT)
        broken.shutdown()
    finally:
        logging.getLogger("threadkit").disabled = False
    assert isinstance(broken._broken, str)
    assert broken._broken.startswith("A thread initializer failed")


@pytest.mark.parametrize(
    ("name", "alternative"),
    [("_idle_semaphore", "statistics"), ("_shutdown_lock", "shutdown")],
)
def test_unsupported_internals_fail_naming_the_alternative(name: str, alternative: str) -> None:
    """Internals WorkerPool has no equivalent of raise AttributeError naming what to use."""
    with WorkerPool(1) as pool, pytest.raises(AttributeError, match=alternative):
        getattr(pool, name)


# -- event-loop submitters ---------------------------------------------------------------


@pytest.mark.parametrize("policy", ["block", "caller_runs"])
def test_an_event_loop_thread_is_never_blocked_by_a_full_queue(policy: str) -> None:
    """run_in_executor on a full queue raises QueueFull in the loop instead of stalling it."""
    gate = Gate()

    async def main(pool: WorkerPool[Any, Any]) -> None:
        loop = asyncio.get_running_loop()
        with pytest.raises(QueueFull, match="event loop"):
            await loop.run_in_executor(pool, int)

    with WorkerPool(1, max_queue=1, overflow=policy) as pool:  # type: ignore[call-overload]
        pool.submit(gate)
        assert gate.started.wait(WAIT)
        queued = pool.submit(int, "5")
        asyncio.run(main(pool))
        gate.open()
        assert queued.result(WAIT) == 5
        assert pool.statistics().rejected == 1


def test_a_plain_thread_still_blocks_on_a_full_queue() -> None:
    """The rule is for event-loop threads only: another thread waits for room as before."""
    gate = Gate()
    with WorkerPool(1, max_queue=1, overflow="block", submit_timeout=0.05) as pool:
        pool.submit(gate)
        assert gate.started.wait(WAIT)
        pool.submit(int)
        with pytest.raises(threadkit.SubmitTimeout):
            pool.submit(int)
        gate.open()


# -- grpc --------------------------------------------------------------------------------


def _echo_server(pool: WorkerPool[Any, Any], **kwargs: Any) -> tuple[Any, int]:
    grpc = pytest.importorskip("grpc")

    def echo(request: bytes, context: Any) -> bytes:
        return request

    handler = grpc.method_handlers_generic_handler(
        "tk.Echo", {"Say": grpc.unary_unary_rpc_method_handler(echo)}
    )
    server = grpc.server(pool, handlers=[handler], **kwargs)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    return server, port


def test_grpc_server_answers_every_concurrent_call_with_an_unbounded_pool() -> None:
    """grpc.server(WorkerPool(4)) answers 40 concurrent calls (the real grpcio)."""
    grpc = pytest.importorskip("grpc")
    pool: WorkerPool[Any, Any] = WorkerPool(4)
    server, port = _echo_server(pool)
    try:
        with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
            say = channel.unary_unary("/tk.Echo/Say")
            calls = [say.future(b"%d" % i, timeout=WAIT) for i in range(40)]
            assert [c.result() for c in calls] == [b"%d" % i for i in range(40)]
    finally:
        server.stop(grace=WAIT).wait(WAIT)
        pool.shutdown(timeout=WAIT)


def test_grpc_backpressure_through_maximum_concurrent_rpcs() -> None:
    """With grpc's own limit (the documented safe setting), excess calls fail fast."""
    grpc = pytest.importorskip("grpc")
    release = threading.Event()
    started = threading.Semaphore(0)

    def hold(request: bytes, context: Any) -> bytes:
        started.release()
        assert release.wait(WAIT)
        return request

    handler = grpc.method_handlers_generic_handler(
        "tk.Hold", {"Say": grpc.unary_unary_rpc_method_handler(hold)}
    )
    pool: WorkerPool[Any, Any] = WorkerPool(2)
    server = grpc.server(pool, handlers=[handler], maximum_concurrent_rpcs=2)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    try:
        with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
            say = channel.unary_unary("/tk.Hold/Say")
            held = [say.future(b"x", timeout=WAIT) for _ in range(2)]
            assert started.acquire(timeout=WAIT)
            assert started.acquire(timeout=WAIT)
            with pytest.raises(grpc.RpcError) as info:
                say(b"y", timeout=WAIT)
            assert info.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
            release.set()
            assert [c.result() for c in held] == [b"x", b"x"]
    finally:
        release.set()
        server.stop(grace=WAIT).wait(WAIT)
        pool.shutdown(timeout=WAIT)


# -- prepare_context (3.14+) -------------------------------------------------------------


def test_a_subclass_customised_by_prepare_context_is_refused() -> None:
    """A WorkerPool subclass with its own prepare_context raises TypeError at construction."""

    class Contextual(WorkerPool[Any, Any]):  # type: ignore[misc]
        @classmethod
        def prepare_context(cls, initializer: Any, initargs: Any) -> Any:
            raise AssertionError("never called")

    with pytest.raises(TypeError, match="prepare_context"):
        Contextual(1)


def test_a_plain_subclass_is_accepted() -> None:
    """A subclass that leaves prepare_context alone constructs as WorkerPool does."""

    class Plain(WorkerPool[Any, Any]):  # type: ignore[misc]
        pass

    with Plain(1) as pool:
        assert pool.submit(int, "3").result(WAIT) == 3


@pytest.mark.slow
@pytest.mark.skipif(sys.version_info < (3, 14), reason="InterpreterPoolExecutor is new in 3.14")
def test_interpreter_pool_over_a_patched_stdlib_is_refused_loudly() -> None:
    """With the stdlib class patched to WorkerPool first, InterpreterPoolExecutor() raises."""
    code = (
        "import concurrent.futures as f, concurrent.futures.thread as t, threadkit\n"
        "f.ThreadPoolExecutor = t.ThreadPoolExecutor = threadkit.WorkerPool\n"
        "from concurrent.futures import InterpreterPoolExecutor\n"
        "try:\n"
        "    InterpreterPoolExecutor(1)\n"
        "except TypeError as exc:\n"
        "    print('refused:', exc)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    ).stdout
    assert out.startswith("refused: InterpreterPoolExecutor customises ThreadPoolExecutor")
