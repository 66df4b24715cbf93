"""WorkerPool under races: a Hypothesis state machine, and hand-made probes of the same rules.

The machine drives one pool with random sequences of submits (plain, failing and gated
tasks), cancels, maps (some closed early), try_submit on bounded pools, done-callbacks
and shutdowns, from the main thread and from helper threads released together, with the
thread switch interval at its minimum. At the end of every example it checks the
invariants of RELIABILITY.md:

* RESOLVE: once ``shutdown(wait=True)`` returned, every future handed out is done and
  ``concurrent.futures.wait(fs, timeout=0)`` says so;
* NOLOSS: every accepted task ran exactly once or was cancelled (executions are counted
  per task id), a refused submission never ran, and no map item ran twice;
* the statistics add up once the pool is quiescent
  (``submitted == completed + failed + cancelled``, nothing queued or busy).
"""

from __future__ import annotations

import collections
import concurrent.futures as cf
import gc
import itertools
import threading
import weakref
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)

import threadkit
from helpers import WAIT, handoff_holds
from threadkit import MapIterator, WorkerPool


class Tally:
    """Counts executions per task id; thread-safe."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.runs: collections.Counter[Any] = collections.Counter()

    def bump(self, key: Any) -> None:
        with self.lock:
            self.runs[key] += 1

    def __getitem__(self, key: Any) -> int:
        with self.lock:
            return self.runs[key]


REFUSED = (RuntimeError, threadkit.QueueFull)  # PoolShutDown is a RuntimeError


class PoolMachine(RuleBasedStateMachine):
    """Random operations on one WorkerPool keep RESOLVE, NOLOSS and the statistics identity."""

    def __init__(self) -> None:
        super().__init__()
        self.pool: WorkerPool[Any, Any] | None = None
        self.tally = Tally()
        self.ids = itertools.count()
        self.futures: dict[int, cf.Future[Any]] = {}  # accepted tasks by id
        # Every task id tried, accepted or not. Rules draw from this list, never from
        # what races decided, so Hypothesis sees the same choices when it replays.
        self.issued: list[int] = []
        self.failing: set[int] = set()
        self.refused: list[int] = []  # ids of submissions that raised or returned None
        self.gates: list[threading.Event] = []
        self.callbacks: dict[int, int] = {}  # registrations per future id
        self.callback_calls: collections.Counter[int] = collections.Counter()
        self.callback_lock = threading.Lock()
        self.maps: list[tuple[MapIterator[Any], list[Any], bool]] = []  # (it, keys, closed)
        self.shut = False
        self.cancelling_shutdown = False
        self.helper_errors: list[BaseException] = []

    # -- set-up --------------------------------------------------------------------------

    @initialize(
        max_workers=st.integers(1, 3),
        max_queue=st.none() | st.integers(1, 3),
        overflow=st.sampled_from(["reject", "caller_runs", "drop_oldest"]),
    )
    def make_pool(self, max_workers: int, max_queue: int | None, overflow: Any) -> None:
        self.pool = WorkerPool(max_workers, "machine", max_queue=max_queue, overflow=overflow)
        self.bounded = max_queue is not None

    @property
    def live(self) -> WorkerPool[Any, Any]:
        assert self.pool is not None
        return self.pool

    # -- task bodies -----------------------------------------------------------------------

    def plain(self, task_id: int) -> int:
        self.tally.bump(task_id)
        if task_id in self.failing:
            raise ValueError(task_id)
        return task_id

    def gated(self, task_id: int, gate: threading.Event) -> int:
        self.tally.bump(task_id)
        gate.wait(WAIT)  # opened by a rule or at teardown; never hangs an example
        return task_id

    def _submit(self, fn: Callable[..., Any], *args: Any, try_only: bool = False) -> None:
        task_id = args[0]
        self.issued.append(task_id)
        try:
            fut = self.live.try_submit(fn, *args) if try_only else self.live.submit(fn, *args)
        except REFUSED:
            self.refused.append(task_id)
            return
        if fut is None:
            self.refused.append(task_id)
        else:
            self.futures[task_id] = fut

    # -- rules ---------------------------------------------------------------------------

    @rule(fails=st.booleans())
    def submit_plain(self, fails: bool) -> None:
        task_id = next(self.ids)
        if fails:
            self.failing.add(task_id)
        self._submit(self.plain, task_id)

    @rule()
    def submit_gated(self) -> None:
        gate = threading.Event()
        self.gates.append(gate)
        # A gated task run inline (caller_runs) would block this thread: use try_submit
        # on bounded pools, which never runs inline.
        self._submit(self.gated, next(self.ids), gate, try_only=self.bounded)

    @precondition(lambda self: self.bounded)
    @rule()
    def try_submit_plain(self) -> None:
        self._submit(self.plain, next(self.ids), try_only=True)

    @precondition(lambda self: bool(self.gates))
    @rule(data=st.data())
    def open_gate(self, data: st.DataObject) -> None:
        data.draw(st.sampled_from(self.gates)).set()

    @precondition(lambda self: bool(self.issued))
    @rule(data=st.data())
    def cancel(self, data: st.DataObject) -> None:
        fut = self.futures.get(data.draw(st.sampled_from(self.issued)))
        if fut is not None and fut.cancel():
            assert fut.cancelled()
            assert fut in cf.wait([fut], timeout=0).done  # notified at once

    @precondition(lambda self: bool(self.issued))
    @rule(data=st.data())
    def add_callback(self, data: st.DataObject) -> None:
        task_id = data.draw(st.sampled_from(self.issued))
        if task_id not in self.futures:
            return
        self.callbacks[task_id] = self.callbacks.get(task_id, 0) + 1

        def count(f: cf.Future[Any], task_id: int = task_id) -> None:
            assert f.done()
            with self.callback_lock:
                self.callback_calls[task_id] += 1

        self.futures[task_id].add_done_callback(count)

    @rule(
        size=st.integers(0, 6),
        chunksize=st.integers(1, 3),
        buffersize=st.none() | st.integers(1, 3),
        close_early=st.booleans(),
    )
    def map(self, size: int, chunksize: int, buffersize: int | None, close_early: bool) -> None:
        keys = [("map", next(self.ids), i) for i in range(size)]

        def body(key: Any) -> Any:
            self.tally.bump(key)
            return key

        try:
            it = self.live.map(body, keys, timeout=WAIT, chunksize=chunksize, buffersize=buffersize)
        except RuntimeError:
            assert self.shut
            return
        if close_early:
            it.close()
        self.maps.append((it, keys, close_early))

    @rule(submitters=st.integers(1, 3), with_shutdown=st.booleans(), cancel=st.booleans())
    def race_from_helper_threads(self, submitters: int, with_shutdown: bool, cancel: bool) -> None:
        """Submitters (and maybe a shutdown) released together from helper threads."""
        parties = submitters + (1 if with_shutdown else 0)
        barrier = threading.Barrier(parties, timeout=WAIT)
        batches = [[next(self.ids) for _ in range(4)] for _ in range(submitters)]
        for batch in batches:
            self.issued.extend(batch)
        results: list[list[tuple[int, cf.Future[Any] | None]]] = [[] for _ in batches]

        def submit_batch(index: int) -> None:
            try:
                barrier.wait()
                for task_id in batches[index]:
                    try:
                        fut = self.live.submit(self.plain, task_id)
                    except REFUSED:
                        fut = None
                    results[index].append((task_id, fut))
            except BaseException as exc:  # surfaced by the rule below
                self.helper_errors.append(exc)

        def stop() -> None:
            try:
                barrier.wait()
                self.live.shutdown(wait=False, cancel_futures=cancel)
            except BaseException as exc:
                self.helper_errors.append(exc)

        threads = [threading.Thread(target=submit_batch, args=(i,)) for i in range(submitters)]
        if with_shutdown:
            threads.append(threading.Thread(target=stop))
            self.shut = True
            self.cancelling_shutdown = self.cancelling_shutdown or cancel
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(WAIT)
            assert not thread.is_alive(), "a helper thread hung"
        assert not self.helper_errors, self.helper_errors
        for outcomes in results:
            for task_id, fut in outcomes:
                if fut is None:
                    self.refused.append(task_id)
                else:
                    self.futures[task_id] = fut

    @rule(cancel=st.booleans(), from_thread=st.booleans())
    def shutdown_without_waiting(self, cancel: bool, from_thread: bool) -> None:
        self.shut = True
        self.cancelling_shutdown = self.cancelling_shutdown or cancel
        if from_thread:
            thread = threading.Thread(
                target=self.live.shutdown, kwargs={"wait": False, "cancel_futures": cancel}
            )
            thread.start()
            thread.join(WAIT)
            assert not thread.is_alive()
        else:
            self.live.shutdown(wait=False, cancel_futures=cancel)
        with pytest.raises(RuntimeError):
            self.live.submit(int)

    @precondition(lambda self: bool(self.issued))
    @rule(data=st.data(), cancel=st.booleans())
    def shutdown_from_a_done_callback(self, data: st.DataObject, cancel: bool) -> None:
        task_id = data.draw(st.sampled_from(self.issued))
        if task_id not in self.futures:
            return
        self.shut = True
        self.cancelling_shutdown = self.cancelling_shutdown or cancel
        pool = self.live

        def stop(_: cf.Future[Any]) -> None:
            # Not wait=True: two workers doing that wait for each other forever (see
            # test_two_workers_shutting_down_with_wait_do_not_wait_for_each_other).
            pool.shutdown(wait=False, cancel_futures=cancel)

        self.futures[task_id].add_done_callback(stop)

    # -- invariants at every step --------------------------------------------------------

    @invariant()
    def counters_never_exceed_submissions(self) -> None:
        if self.pool is None:
            return
        stats = self.live.statistics()
        assert stats.queued >= 0
        assert stats.busy >= 0
        assert stats.completed + stats.failed + stats.cancelled <= stats.submitted

    @invariant()
    def entries_wait_only_at_the_cap_with_nobody_idle(self) -> None:
        if self.pool is None:
            return
        assert handoff_holds(self.live)

    @invariant()
    def cancelled_tasks_never_ran(self) -> None:
        for task_id, fut in list(self.futures.items()):
            if fut.cancelled():
                assert self.tally[task_id] == 0, f"task {task_id} was cancelled but ran"

    # -- the end of an example -----------------------------------------------------------

    def teardown(self) -> None:
        if self.pool is None:
            return
        for gate in self.gates:
            gate.set()
        # Maps are consumed before the final shutdown: a lazy map reads its input as it
        # is iterated, so after a shutdown it can only fail to feed.
        for it, keys, closed in self.maps:
            if closed:
                continue
            try:
                results = list(it)
            except (cf.CancelledError, RuntimeError):
                # A cancelling shutdown dropped items, or a lazy map could not feed more
                # after a shutdown; what ran still ran once (checked below).
                assert self.shut
            else:
                assert results == keys
                assert all(self.tally[key] == 1 for key in keys)
        self.live.shutdown(wait=True)
        futures = list(self.futures.values())
        # RESOLVE
        not_done = cf.wait(futures, timeout=0).not_done
        assert not not_done, f"pending after shutdown: {not_done}"
        # NOLOSS
        for task_id, fut in self.futures.items():
            if fut.cancelled():
                assert self.tally[task_id] == 0
                continue
            assert self.tally[task_id] == 1, f"task {task_id} ran {self.tally[task_id]} times"
            if task_id in self.failing:
                assert isinstance(fut.exception(0), ValueError)
            else:
                assert fut.result(0) == task_id
        for task_id in self.refused:
            assert self.tally[task_id] == 0, f"refused task {task_id} ran"
        for _, keys, _ in self.maps:
            assert all(self.tally[key] <= 1 for key in keys)
        # Callbacks: once per registration.
        for task_id, registered in self.callbacks.items():
            assert self.callback_calls[task_id] == registered
        # The statistics add up once quiescent.
        stats = self.live.statistics()
        assert stats.busy == 0
        assert stats.queued == 0
        assert stats.submitted == stats.completed + stats.failed + stats.cancelled, stats


MACHINE_SETTINGS = settings(
    max_examples=30,
    stateful_step_count=15,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)


def test_pool_state_machine(fast_switching: None) -> None:
    """Random interleavings of pool operations keep RESOLVE, NOLOSS and the statistics."""
    run_state_machine_as_test(PoolMachine, settings=MACHINE_SETTINGS)


@pytest.mark.slow
def test_pool_state_machine_long(fast_switching: None) -> None:
    """The same state machine, with many more and longer examples."""
    run_state_machine_as_test(
        PoolMachine,
        settings=settings(MACHINE_SETTINGS, max_examples=300, stateful_step_count=40),
    )


# -- hand-made probes ---------------------------------------------------------------------


def run_together(count: int, target: Callable[[int], object]) -> None:
    """Run ``target(i)`` in ``count`` helper threads released by one barrier; join them."""
    barrier = threading.Barrier(count, timeout=WAIT)
    errors: list[BaseException] = []

    def body(index: int) -> None:
        try:
            barrier.wait()
            target(index)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=body, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(WAIT)
        assert not thread.is_alive(), "a helper thread hung"
    assert not errors, errors


def wait_until_quiescent(pool: WorkerPool[Any, Any], futures: list[cf.Future[Any]]) -> None:
    """Wait for every future, then for the pool's counters to show nothing queued or busy."""
    assert not cf.wait(futures, timeout=WAIT).not_done
    # A worker bumps its counters just after resolving the future: a no-op task submitted
    # now runs after them on a one-worker pool, and on larger pools every worker is
    # caught by a barrier, so the counters are final once these return.
    size = pool.max_workers
    barrier = threading.Barrier(size, timeout=WAIT)
    cf.wait([pool.submit(barrier.wait) for _ in range(size)], timeout=WAIT)


def race_submits_against_a_shutdown(round_number: int) -> None:
    """One round: five threads submit while a sixth shuts the pool down."""
    pool: WorkerPool[Any, Any] = WorkerPool(1 + round_number % 3)
    tally = Tally()
    lock = threading.Lock()
    accepted: list[cf.Future[Any]] = []
    refused: list[tuple[int, int]] = []

    def act(index: int) -> None:
        if index == 0:
            pool.shutdown(wait=False, cancel_futures=bool(round_number % 2))
            return
        for j in range(10):
            key = (index, j)
            try:
                fut = pool.submit(tally.bump, key)
            except RuntimeError:
                with lock:
                    refused.append(key)
            else:
                with lock:
                    accepted.append(fut)

    run_together(6, act)
    pool.shutdown(wait=True)
    assert not cf.wait(accepted, timeout=0).not_done
    for key in refused:
        assert tally[key] == 0
    assert sum(tally.runs.values()) == sum(1 for f in accepted if not f.cancelled())
    stats = pool.statistics()
    assert stats.submitted == len(accepted)
    assert stats.submitted == stats.completed + stats.failed + stats.cancelled


def test_submit_racing_shutdown_from_many_threads(fast_switching: None) -> None:
    """Each of many racing submits either raises or returns a future that resolves (NOLOSS)."""
    for round_number in range(20):
        race_submits_against_a_shutdown(round_number)


@pytest.mark.parametrize("policy", ["caller_runs", "reject", "block", "drop_oldest"])
def test_overflow_policies_under_concurrency_keep_the_books(
    fast_switching: None, policy: Any
) -> None:
    """Under concurrent overflow, every task runs once or is cancelled, and slots come back."""
    pool: WorkerPool[Any, Any] = WorkerPool(2, max_queue=2, overflow=policy)
    tally = Tally()
    accepted: list[tuple[tuple[int, int], cf.Future[Any]]] = []
    refused: list[tuple[int, int]] = []
    lock = threading.Lock()

    def submit_many(index: int) -> None:
        for j in range(150):
            key = (index, j)
            try:
                fut = pool.submit(tally.bump, key)
            except threadkit.QueueFull:
                with lock:
                    refused.append(key)
                continue
            with lock:
                accepted.append((key, fut))

    run_together(4, submit_many)
    wait_until_quiescent(pool, [f for _, f in accepted])
    places = pool._core.places
    assert places is not None
    assert places.free() == 2  # every queue place is free again
    stats = pool.statistics()
    pool.shutdown()
    for key, fut in accepted:
        assert tally[key] == (0 if fut.cancelled() else 1)
    for key in refused:
        assert tally[key] == 0
    assert stats.queued == 0
    assert stats.rejected == len(refused)
    # +size: the no-op barrier tasks of wait_until_quiescent
    assert stats.submitted == len(accepted) + 2
    assert stats.submitted == stats.completed + stats.failed + stats.cancelled


def test_queue_slots_return_to_max_queue_after_many_cycles(fast_switching: None) -> None:
    """After many fill-drain cycles with cancels and try_submit, every queue place is free."""
    with WorkerPool(2, max_queue=3, overflow="reject") as pool:
        for cycle in range(30):
            gate = threading.Event()
            started = threading.Semaphore(0)

            def hold(gate: threading.Event = gate, started: threading.Semaphore = started) -> None:
                started.release()
                gate.wait(WAIT)

            held = [pool.submit(hold) for _ in range(2)]
            assert started.acquire(timeout=WAIT)
            assert started.acquire(timeout=WAIT)  # both workers are busy
            queued = [pool.try_submit(int, "1") for _ in range(4)]
            assert queued[-1] is None  # three places, four tries
            if cycle % 2:
                for fut in queued[:2]:
                    assert fut is not None
                    fut.cancel()
            gate.set()
            wait_until_quiescent(pool, [*held, *(f for f in queued if f is not None)])
            places = pool._core.places
            assert places is not None
            free = places.free()
            assert free == 3, f"cycle {cycle}: {free} free places"
        stats = pool.statistics()
    assert stats.submitted == stats.completed + stats.failed + stats.cancelled


@pytest.mark.parametrize(("chunksize", "buffersize"), [(1, None), (4, None), (3, 2), (5, 7)])
def test_map_chunks_and_buffers_keep_the_statistics_exact(
    chunksize: int, buffersize: int | None
) -> None:
    """map with chunksize > 1 and buffersize counts each item once, closed early or not."""
    with WorkerPool(3) as pool:
        assert list(pool.map(abs, range(-40, 0), chunksize=chunksize, buffersize=buffersize)) == [
            abs(i) for i in range(-40, 0)
        ]
        partial = pool.map(abs, range(100), chunksize=chunksize, buffersize=buffersize)
        assert next(partial) == 0
        partial.close()
    stats = pool.statistics()
    assert stats.queued == 0
    assert stats.busy == 0
    assert stats.submitted == stats.completed + stats.failed + stats.cancelled
    assert stats.failed == 0
    assert stats.completed >= 41


def test_statistics_never_go_negative_or_over_while_maps_run(fast_switching: None) -> None:
    """Snapshots taken while chunked maps and tasks run never show impossible counts."""
    stop = threading.Event()
    bad: list[Any] = []

    with WorkerPool(3) as pool:

        def watch() -> None:
            while not stop.is_set():
                stats = pool.statistics()
                finished = stats.completed + stats.failed + stats.cancelled
                if stats.queued < 0 or stats.busy < 0 or finished > stats.submitted:
                    bad.append(stats)

        watcher = threading.Thread(target=watch)
        watcher.start()
        try:
            for _ in range(20):
                it = pool.map(abs, range(60), chunksize=4)
                futures = [pool.submit(abs, -i) for i in range(10)]
                assert next(it) == 0
                it.close()
                cf.wait(futures, timeout=WAIT)
        finally:
            stop.set()
            watcher.join(WAIT)
    assert not bad, bad[:3]


def test_two_workers_shutting_down_with_wait_do_not_wait_for_each_other() -> None:
    """Two tasks that each call shutdown(wait=True) on their own pool both return promptly.

    Without a timeout this is a permanent deadlock (found by the state machine with
    done-callbacks): each worker joins the other. Here each call has a timeout, so the
    bug shows as both shutdowns running out their time and reporting the other worker,
    which was only waiting for them, as a straggler.
    """
    pool: WorkerPool[Any, Any] = WorkerPool(2)
    both_running = threading.Barrier(2, timeout=WAIT)

    def stop_own_pool() -> bool:
        both_running.wait()
        return pool.shutdown(wait=True, timeout=0.3).timed_out

    first, second = pool.submit(stop_own_pool), pool.submit(stop_own_pool)
    timed_out = [first.result(WAIT), second.result(WAIT)]
    pool.shutdown()
    assert timed_out == [False, False]


class RetireGate:
    """Stands in for a pool's lock and holds a retiring worker between its two lock holds.

    ``wait_for_work`` decides to retire under the lock, releases it, and takes it again to
    stop counting itself idle. This gate signals ``retired`` after the first hold and lets
    the worker take the lock again only once ``go`` is set, so a test can run a submission
    in exactly that gap, as the scheduler may.
    """

    def __init__(self, pool: WorkerPool[Any, Any]) -> None:
        self.core = pool._core
        self.real = threading.Lock()
        self.retired = threading.Event()
        self.go = threading.Event()

    def _retiring(self) -> bool:
        me = threading.current_thread()
        return any(ws.thread is me and ws.retiring for ws in list(self.core.workers))

    def __enter__(self) -> None:
        if self.retired.is_set() and self._retiring():
            assert self.go.wait(WAIT)
        self.real.acquire()

    def __exit__(self, *exc_info: object) -> None:
        retiring = self._retiring()
        self.real.release()
        if retiring:
            self.retired.set()


def test_idle_retirement_racing_a_submit_strands_no_task() -> None:
    """A submit landing while an idle worker retires is still run (ALIVE, RESOLVE)."""
    pool: WorkerPool[Any, Any] = WorkerPool(1, idle_timeout=0.001)
    gate = RetireGate(pool)
    pool._core.lock = gate  # type: ignore[assignment]
    assert pool.submit(int, "1").result(WAIT) == 1
    (worker,) = list(pool._core.workers)
    assert gate.retired.wait(WAIT)  # the only worker decided to retire
    fut = pool.submit(int, "7")
    gate.go.set()
    assert worker.thread is not None
    worker.thread.join(WAIT)
    pool.shutdown(wait=True, timeout=WAIT)
    assert fut.done(), f"stranded: {pool.statistics()}"
    assert fut.result(0) == 7


class CollectingLock:
    """Stands in for a pool's lock: a garbage collection runs the first time it is taken.

    Any allocation may start a collection, so code holding the pool's lock must expect
    finalizers to run in its thread. A finalizer that takes the lock again would deadlock
    on the real (non-reentrant) lock; here it is recorded and let through instead.
    """

    def __init__(self) -> None:
        self.real = threading.Lock()
        self.owner: int | None = None
        self.depth = 0
        self.collect = True
        self.reentered = False

    def __enter__(self) -> None:
        me = threading.get_ident()
        if self.owner == me:
            self.reentered = True  # the real lock would block here forever
            self.depth += 1
            return
        self.real.acquire()
        self.owner = me
        self.depth = 1
        if self.collect and me == threading.main_thread().ident:
            self.collect = False
            gc.collect()

    def __exit__(self, *exc_info: object) -> None:
        self.depth -= 1
        if self.depth == 0:
            self.owner = None
            self.real.release()


def test_finalizing_an_abandoned_map_under_the_pools_lock_does_not_deadlock() -> None:
    """A started, abandoned map collected while its pool's lock is held does not deadlock."""
    pool: WorkerPool[Any, Any] = WorkerPool(1)
    gate = threading.Event()

    def work(i: int) -> int:
        if i:
            gate.wait(WAIT)
        return i

    class Holder:
        """A reference cycle, so only the collector frees the iterator."""

    holder = Holder()
    holder.cycle = holder  # type: ignore[attr-defined]
    holder.results = pool.map(work, range(5))  # type: ignore[attr-defined]
    assert next(holder.results) == 0  # type: ignore[attr-defined]
    gc.collect()
    lock = CollectingLock()
    pool._core.lock = lock  # type: ignore[assignment]
    ref = weakref.ref(holder)
    del holder
    try:
        pool.statistics()
    finally:
        gate.set()
        lock.collect = False
        pool.shutdown(wait=True)
    assert ref() is None
    assert not lock.reentered


def test_drop_oldest_waits_for_a_place_in_flight_instead_of_recursing() -> None:
    """With every queue place in flight and nothing queued, a drop_oldest submit waits for it."""
    pool: WorkerPool[Any, Any] = WorkerPool(1, max_queue=1, overflow="drop_oldest")
    started, gate = threading.Event(), threading.Event()

    def hold() -> None:
        started.set()
        gate.wait(WAIT)

    pool.submit(hold)
    assert started.wait(WAIT)
    places = pool._core.places
    assert places is not None
    token = places.take()  # the place a worker holds between taking a task and returning it
    assert token is True
    outcome: list[Any] = []

    def submit() -> None:
        try:
            outcome.append(pool.submit(int, "5"))
        except BaseException as exc:
            outcome.append(exc)

    submitter = threading.Thread(target=submit)
    submitter.start()
    submitter.join(0.2)  # long enough for the recursion to blow up, if it does
    places.give_back()  # the worker returns the place
    submitter.join(WAIT)
    gate.set()
    pool.shutdown()
    assert not submitter.is_alive()
    assert isinstance(outcome[0], cf.Future), outcome
    assert outcome[0].result(0) == 5


def test_a_lazy_map_keeps_its_unreferenced_pool_running() -> None:
    """Iterating a lazy map of a pool nobody else references reads all input (no PoolShutDown)."""
    assert sorted(WorkerPool(2).map_unordered(abs, range(-30, 0))) == list(range(1, 31))
    assert list(WorkerPool(2).map(abs, range(-30, 0), buffersize=3)) == list(range(30, 0, -1))
    gc.collect()
