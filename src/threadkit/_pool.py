"""WorkerPool: a drop-in ``ThreadPoolExecutor`` with backpressure and bounded shutdown.

The public :class:`WorkerPool` is a thin face over :class:`_Core`, which holds every piece
of shared state. Worker threads reference the core, never the pool, so a pool nobody
references is garbage-collected; its finalizer shuts the core down and the workers drain
the queue and exit.

Design: the hot path takes no Python-level lock that workers share. Entries travel
through a ``queue.SimpleQueue`` (its put and get are atomic in C, on free-threaded
builds too), and each worker keeps its own counters, written by it alone. A Python
lock held by one thread across a GIL switch stalls every other thread that wants it,
and a lock shared by submitters and workers on every task turns that into a convoy.
``_Core.lock`` is therefore taken only by submitters, by workers going idle or exiting,
and by shutdown, statistics and the rare paths.

Core invariants:
    * Every entry put on ``tasks`` is taken exactly once: by a worker (which runs it or,
      if its future was cancelled, skips it) or by a drain (cancelling shutdown, broken
      pool), which resolves it. ``_STOP`` is put only after intake stopped, so every
      entry accepted before it is ahead of it, and a worker passes it on before exiting.
    * Submission checks the state and puts the entry under ``lock``; shutdown changes
      the state under ``lock``. So nothing is put after the last worker may have left.
    * A worker retires (idle timeout) only under ``lock`` and only while ``tasks`` is
      empty; since puts happen under the same lock, a retiring worker never strands a
      task. ``alive`` counts the workers that are capacity.
    * With ``max_queue``, ``slots`` holds one token per free queue place. A submitter
      takes a token before queueing a task; the worker that takes the task returns it.
      Blocked submitters wait in ``slots.get`` (C-level, interruptible by Ctrl-C) and are
      woken by a returned token or by ``_STOP``, which each passes on.
    * A submission starts a new worker unless an idle one is free: ``idle - claimed``
      counts idle workers that no earlier put already counts on, so a burst of
      submissions starts threads up to ``max_workers`` even while one worker flickers
      between idle and busy (a plain "is anyone idle?" test starves the pool of threads).
    * ``submitted == completed + failed + cancelled + queued + busy`` whenever the pool
      is quiescent, and ``queued`` is derived from that identity.
"""

from __future__ import annotations

import contextlib
import contextvars
import itertools
import logging
import os
import queue
import sys
import threading
import time
import traceback
import weakref
from collections import deque
from concurrent.futures import CancelledError, ThreadPoolExecutor
from typing import TYPE_CHECKING, Any, Final, Generic, Literal, ParamSpec, TypeVar, final

from ._aio import AsyncMapIterator, run_job
from ._cancel import CancelToken, _current_token, _thread_token
from ._errors import BrokenPool, PoolShutDown, QueueFull, SubmitTimeout
from ._futures import _RUNNING as _RUNNING_STATE
from ._futures import HookedFuture, TaskFuture, _make_condition, describe_callable
from ._hooks import HookSet, PoolHooks, emit, hook_raised, new_event
from ._map import CANCELLED, FAILED, PROCESS, Chunk, MapIterator, MapRun, count
from ._progress import ProgressArg, make_progress
from ._reports import DroppedTask, PoolStatistics, ShutdownReport, TaskEvent, WorkerSnapshot
from ._shutdown import adopt_pool
from ._threads import set_os_thread_name, unique_name
from ._validate import check_int, check_timeout
from ._waiting import get_interruptibly, join_interruptibly
from ._worker import In, Out, Worker

if TYPE_CHECKING:
    from collections.abc import Callable, Coroutine, Iterable, Iterator
    from concurrent.futures import Future
    from types import TracebackType
    from typing import Self

__all__ = ["OverflowPolicy", "WorkerPool"]

P = ParamSpec("P")
T = TypeVar("T")

logger = logging.getLogger("threadkit")

OverflowPolicy = Literal["block", "reject", "caller_runs", "drop_oldest"]
_POLICIES: Final = ("block", "reject", "caller_runs", "drop_oldest")

_RUNNING, _SHUTDOWN, _BROKEN = "running", "shut down", "broken"

# Put on the task queue (and the slot queue) when intake stops; passed from thread to thread.
_STOP: Final = None
# Returned by _Core.wait_for_work when an idle worker retires.
_RETIRE: Final = object()
# No queue place could be taken (distinct from _STOP, which is None).
_NO_PLACE: Final = object()
# Stands in for the thread's own Worker.process in task entries and map runs.
_PROCESS: Final = PROCESS

# A task entry: (future, fn, args, kwargs, context).
_Task = tuple[TaskFuture[Any], Any, tuple[Any, ...], dict[str, Any], contextvars.Context]

_pool_counter = itertools.count()
_live_cores: weakref.WeakSet[_Core] = weakref.WeakSet()
_live_lock = threading.Lock()
_hooks_installed = False
_interpreter_exiting = False
_current = threading.local()


def _default_max_workers() -> int:
    # As ThreadPoolExecutor computes it on the running Python (process_cpu_count on 3.13+).
    cpu_count: Callable[[], int | None] = getattr(os, "process_cpu_count", os.cpu_count)
    return min(32, (cpu_count() or 1) + 4)


class _WorkerState:
    """One worker thread's record.

    ``task``, ``items``, ``started`` and the three outcome counters are written only by
    the worker itself; other threads read them (statistics, stragglers) without a lock,
    which is safe for single attribute reads and exact whenever the pool is quiescent.
    """

    __slots__ = (
        "cancelled",
        "completed",
        "failed",
        "first",
        "idle",
        "index",
        "instance",
        "items",
        "name",
        "retiring",
        "started",
        "task",
        "thread",
    )

    def __init__(self, name: str, index: int) -> None:
        self.name = name
        self.index = index
        self.thread: threading.Thread | None = None
        self.first: Any = None  # the entry a new worker starts with (handed over once)
        self.task: object = None  # the entry being run, or None
        self.items = 0  # tasks/map items in `task`
        self.started = 0.0
        self.completed = self.failed = self.cancelled = 0
        self.idle = False  # guarded by the core's lock
        self.retiring = False  # guarded by the core's lock
        self.instance: Any = None  # the thread's Worker object (worker= pools)


class _Core:
    """The shared state and the algorithms of one pool."""

    def __init__(
        self,
        *,
        max_workers: int,
        prefix: str,
        initializer: Callable[..., object] | None,
        initargs: tuple[Any, ...],
        worker_factory: Callable[[], Any] | None,
        max_queue: int | None,
        overflow: OverflowPolicy,
        submit_timeout: float | None,
        min_workers: int,
        idle_timeout: float | None,
        log_unretrieved: bool,
        token: CancelToken,
        hooks: PoolHooks | None = None,
        watchdog: float | None = None,
    ) -> None:
        self.token = token
        self.hooks = HookSet.of(hooks)  # None unless some event is actually watched
        self.task_ids = itertools.count()  # hooks only (next() is atomic, even without a GIL)
        self.map_ids = itertools.count()  # hooks only
        self.watchdog = watchdog
        self.watch_stop = threading.Event()
        self.watch_thread: threading.Thread | None = None
        self.max_workers = max_workers
        self.prefix = prefix
        self.initializer = initializer
        self.initargs = initargs
        self.worker_factory = worker_factory
        self.max_queue = max_queue
        self.overflow = overflow
        self.submit_timeout = submit_timeout
        self.min_workers = min_workers
        self.idle_timeout = idle_timeout
        self.log_unretrieved = log_unretrieved

        self.tasks: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self.slots: queue.SimpleQueue[Any] | None = None
        if max_queue is not None:
            self.slots = queue.SimpleQueue()
            for _ in range(max_queue):
                self.slots.put(True)

        self.lock = threading.Lock()
        self.workers: set[_WorkerState] = set()  # every live worker thread
        self.alive = 0  # workers that count as capacity (not retiring)
        self.idle = 0  # workers waiting in tasks.get()
        self.claimed = 0  # idle workers already counted on to take an entry put since
        self.runs: weakref.WeakSet[MapRun] = weakref.WeakSet()  # map runs, for _drain
        # One item per entry a busy worker took while claims were out (see _work_loop).
        self.steals: deque[None] = deque()
        self.state = _RUNNING
        self.broken_message = ""
        self.broken_cause: BaseException | None = None
        self.abandoned = False  # a shutdown gave up waiting: interpreter exit will not wait
        self.inline = 0  # tasks running in a submitter's thread
        self.next_index = 0
        # Totals; the live workers' own counters are added in statistics().
        self.submitted = 0
        self.completed = 0
        self.failed = 0
        self.cancelled = 0
        self.rejected = 0
        self.late_cancelled: deque[int] = deque()  # counts from lock-free paths
        self.in_shutdown: set[threading.Thread] = set()  # threads inside shutdown()

    # -- intake ------------------------------------------------------------------------

    def closed_error(self) -> Exception:
        """The error a submission gets when the pool is not running."""
        if self.state == _BROKEN:
            return self.broken_error()
        if _interpreter_exiting:
            return PoolShutDown("cannot schedule new futures after interpreter shutdown")
        return PoolShutDown("cannot schedule new futures after shutdown")

    def check_open(self) -> None:
        """Raise the right error if the pool takes no more work (lock held)."""
        if self.state != _RUNNING or _interpreter_exiting:
            raise self.closed_error()

    def _accept_with(self, token: object, entry: _Task) -> None:
        """Queue ``entry`` on the queue place ``token``, unless the token says intake stopped."""
        assert self.slots is not None
        if token is _STOP:
            self.slots.put(_STOP)  # pass it on: it wakes the next blocked submitter too
            with self.lock:
                raise self.closed_error()
        self._accept(entry)

    def broken_error(self) -> BrokenPool:
        err = BrokenPool(self.broken_message)
        err.__cause__ = self.broken_cause
        return err

    def submit(self, entry: _Task, *, try_only: bool = False) -> bool:
        """Accept a task entry or raise; ``False`` if ``try_only`` and the queue is full."""
        slots = self.slots
        if slots is not None:
            token: object = _NO_PLACE
            with contextlib.suppress(queue.Empty):
                token = slots.get_nowait()
            if token is not _NO_PLACE:
                self._accept_with(token, entry)
                return True
            # The queue is full (outside the except block: errors raised from here on
            # should not carry a queue.Empty as their context).
            if self._spawn_for(entry):
                return True  # a new worker takes it directly: the queue is not involved
            if try_only:
                with self.lock:
                    self.check_open()
                    self.rejected += 1
                return False
            return self._overflow(entry)
        self._accept(entry)
        return True

    def fold_steals(self) -> None:
        """Drop the claims that busy workers' takes made stale (lock held).

        A claim says "an idle worker will take an entry put since". When a busy worker
        takes an entry first (its ``get_nowait``), no idle worker wakes for it, and the
        claim would stay forever: every later burst would start threads while idle ones
        wait. Claims are interchangeable, so each recorded take cancels one.
        """
        steals = self.steals
        taken = 0
        with contextlib.suppress(IndexError):
            for _ in range(len(steals)):
                steals.popleft()
                taken += 1
        self.claimed = max(0, self.claimed - taken)

    def _spawn_for(self, entry: _Task) -> bool:
        """Start a worker for ``entry`` if the pool may grow and nobody idle will take it."""
        with self.lock:
            self.check_open()
            if self.steals:
                self.fold_steals()
            if self.idle > self.claimed or self.alive >= self.max_workers:
                return False
            self._spawn(entry)
            return True

    def _accept(self, entry: _Task) -> None:
        """Queue ``entry`` or start a worker for it; the caller holds a slot if bounded."""
        slots = self.slots
        with self.lock:
            if self.state != _RUNNING or _interpreter_exiting:
                if slots is not None:
                    slots.put(True)
                raise self.closed_error()
            if self.steals:
                self.fold_steals()
            if self.idle > self.claimed:
                self.claimed += 1  # an idle worker will take it: do not start another
            elif self.alive < self.max_workers:
                if slots is not None:
                    # Never queued: the new worker runs it first. Returned before the
                    # thread starts, so the task itself finds the place free.
                    slots.put(True)
                self._spawn(entry)  # if this raises, the task was never accepted
                return
            self.tasks.put(entry)
            self.submitted += 1

    def _overflow(self, entry: _Task) -> bool:
        """Apply the overflow policy: the bounded queue has no free place."""
        policy = self.overflow
        if policy == "block" and getattr(_current, "core", None) is self:
            # A worker blocking on its own full pool could wait forever for itself:
            # run the task inline instead (documented).
            policy = "caller_runs"
        if policy == "reject":
            with self.lock:
                self.check_open()
                self.rejected += 1
            raise QueueFull(f"the pool's queue is full (max_queue={self.max_queue})")
        if policy == "caller_runs":
            with self.lock:
                self.check_open()
                self.submitted += 1
                self.inline += 1
            self._run_inline(entry)
            return True
        if policy == "drop_oldest":
            return self._drop_oldest(entry)
        return self._block(entry)

    def _block(self, entry: _Task, *, wait_forever: bool = False) -> bool:
        """Wait for a free place in the queue, then queue ``entry`` (``"block"`` policy)."""
        assert self.slots is not None
        timeout = None if wait_forever else self.submit_timeout
        try:
            token = get_interruptibly(self.slots.get, timeout)
        except queue.Empty:
            with self.lock:
                self.rejected += 1
            raise SubmitTimeout(f"no room in the pool's queue within {timeout} s") from None
        self._accept_with(token, entry)
        return True

    def _drop_oldest(self, entry: _Task) -> bool:
        """Cancel the oldest queued task and queue ``entry`` in its place."""
        with self.lock:
            self.check_open()
            others: list[Any] = []
            victim: _Task | None = None
            while victim is None:
                try:
                    found = self.tasks.get_nowait()
                except queue.Empty:
                    break
                if type(found) is tuple:
                    victim = found
                else:
                    others.append(found)  # map tokens: their order carries no meaning
            for other in others:
                self.tasks.put(other)
            if victim is not None:
                self.tasks.put(entry)  # takes over the victim's place
                self.submitted += 1
                self.cancelled += 1
        if victim is None:
            # Nothing queued to drop: every place is held by a task in flight (a worker
            # that took one, a submitter about to queue one). One is freed shortly.
            return self._block(entry, wait_forever=True)
        victim[0].cancel()
        return True

    def _run_inline(self, entry: _Task) -> None:
        """Run a task in the submitting thread (``caller_runs``)."""
        fut = entry[0]
        ws = getattr(_current, "worker", None) if getattr(_current, "core", None) is self else None
        entry[4].run(_current_token.set, self.token)
        outcome = _run_task(entry, ws, self.log_unretrieved, self.hooks)
        with self.lock:
            self.inline -= 1
            if outcome == 0:
                self.completed += 1
            elif outcome == FAILED:
                self.failed += 1
            else:
                self.cancelled += 1
        if outcome == FAILED and threading.current_thread() is threading.main_thread():
            exc = fut.exception(0)
            if isinstance(exc, KeyboardInterrupt | SystemExit):
                raise exc  # a Ctrl-C in the caller's own thread is the caller's

    def feed_map(self, run: MapRun, start: int, calls: list[Any]) -> None:
        """Add map items ``start``, ``start + 1``, ... to ``run``; put queue tokens for them.

        A worker holding a token keeps claiming chunks until the run is empty, so a
        batch needs no more tokens than there are workers to run it. Every feed puts
        at least one token after its items, so no item is left without a worker coming.
        """
        if not calls:
            return
        with self.lock:
            self.check_open()
            if start == 0:  # the run's first feed
                self.runs.add(run)
            tokens = min(run.add(start, calls), self.max_workers)
            self.submitted += len(calls)
            if self.steals:
                self.fold_steals()
            claim = max(0, min(tokens, self.idle - self.claimed))
            self.claimed += claim
            interrupt: BaseException | None = None
            for _ in range(min(tokens - claim, self.max_workers - self.alive)):
                alive = self.alive
                try:
                    self._spawn(None)
                except BaseException as exc:
                    if self.alive > alive:  # a Ctrl-C in start(), after the thread ran
                        self.claimed += 1
                    if self.alive == 0:
                        run.pending.clear()
                        self.submitted -= len(calls)
                        raise
                    if not isinstance(exc, Exception):
                        interrupt = exc  # raised once the tokens are out
                    else:
                        logger.warning("could not start a worker thread; %d alive", self.alive)
                    break
                # The new worker takes one of the tokens put below, from the queue: count
                # it as claimed, or while it waits (or takes an entry meant for another
                # idle worker) it looks like spare capacity.
                self.claimed += 1
            put = self.tasks.put
            for _ in range(tokens):
                put(run)
            if interrupt is not None:
                raise interrupt

    def cancel_map(self, run: MapRun) -> None:
        """Cancel the items of ``run`` that have not started (its consumer is gone).

        Takes no lock: it runs from ``MapIterator.__del__``, which the garbage collector
        may call in a thread that already holds this core's lock. The count goes through
        ``late_cancelled`` (atomic appends) and is folded in by ``statistics``.
        """
        chunks = run.take_all()
        run.emit_unstarted(chunks)
        if chunks:
            self.late_cancelled.append(count(chunks))

    # -- hooks and watchdog --------------------------------------------------------------

    def submit_hooked(
        self, fn: Any, args: tuple[Any, ...], kwargs: dict[str, Any], *, try_only: bool = False
    ) -> HookedFuture[Any] | None:
        """``submit`` for a pool with hooks: make the task's numbered future, report the
        task, and report it cancelled if it is refused (then return ``None``, if
        ``try_only``). The future reports its own cancellation (``HookedFuture``)."""
        hooks = self.hooks
        assert hooks is not None
        task_id = next(self.task_ids)
        shown = None if fn is _PROCESS else fn
        fut: HookedFuture[Any] = HookedFuture()
        fut._tk_id = task_id
        fut._tk_fn = shown
        fut._tk_hooks = hooks
        if hooks.submitted is not None:
            thread = threading.current_thread().name
            try:
                hooks.submitted(new_event(TaskEvent, (task_id, shown, thread, None, None, None)))
            except BaseException:
                hook_raised(hooks.submitted)
        try:
            accepted = self.submit(
                (fut, fn, args, kwargs, contextvars.copy_context()), try_only=try_only
            )
        except BaseException:
            if not (fut.running() or fut.done()):  # refused (not a caller_runs task raising)
                hooks.report_cancelled(task_id, shown)
            raise
        if not accepted:
            hooks.report_cancelled(task_id, shown)
            return None
        return fut

    def new_map_id(self) -> int | None:
        """A number for a map call's events, or ``None`` without hooks."""
        return None if self.hooks is None else next(self.map_ids)

    def start_watchdog(self) -> None:
        """Start the thread that warns about tasks running longer than ``watchdog``."""
        thread = threading.Thread(target=self._watch, name=f"{self.prefix}_watchdog", daemon=True)
        self.watch_thread = thread
        thread.start()

    def _watch(self) -> None:
        threshold = self.watchdog
        assert threshold is not None
        interval = min(1.0, max(0.005, threshold / 4))
        reported: set[tuple[str, float]] = set()  # (thread name, exact start) of a task
        while not self.watch_stop.wait(interval):
            try:
                now = time.monotonic()
                with self.lock:
                    long_running = {
                        (ws.name, ws.started)
                        for ws in self.workers
                        if ws.task is not None and now - ws.started >= threshold
                    }
                fresh = long_running - reported
                if fresh:
                    names = {name for name, _ in fresh}
                    for snap in self.snapshots(long_running=threshold):
                        if snap.thread_name in names:
                            logger.warning(
                                "task %s has been running for %.1f s in %s:\n%s",
                                snap.task,
                                snap.running_for,
                                snap.thread_name,
                                "".join(snap.stack).rstrip(),
                            )
                reported = long_running  # forget tasks that ended
            except Exception:  # pragma: no cover - a bug here must not end the watch
                logger.exception("the watchdog of %s failed", self.prefix)

    # -- workers -----------------------------------------------------------------------

    def _spawn(self, first: object) -> None:
        """Start a worker whose first entry is ``first`` (lock held); raises on failure.

        A task given as ``first`` is counted as submitted once its thread runs.
        """
        ws = _WorkerState(unique_name(self.prefix), self.next_index)
        if type(first) is tuple:
            ws.first = ws.task = first
            ws.items = 1
            ws.started = time.monotonic()
        # The first entry travels in the record, not the thread's arguments, which
        # would keep it (and its result) alive for the thread's whole life.
        thread = threading.Thread(target=_worker_main, args=(self, ws), name=ws.name, daemon=True)
        ws.thread = thread
        self.workers.add(ws)
        self.alive += 1
        try:
            thread.start()
        except BaseException:
            if not _thread_started(thread):
                self.workers.discard(ws)
                self.alive -= 1
                raise
            # A Ctrl-C hit start() while it waited for a thread that does run: keep the
            # worker's records and its task's count right, then let the interrupt go on.
            self._count_spawned(first)
            raise
        self._count_spawned(first)

    def _count_spawned(self, first: object) -> None:
        self.next_index += 1
        if type(first) is tuple:
            self.submitted += 1

    def wait_for_work(self, ws: _WorkerState) -> Any:
        """Block until an entry arrives; ``_RETIRE`` after ``idle_timeout`` of nothing."""
        timeout = self.idle_timeout
        with self.lock:
            self.idle += 1
            ws.idle = True
        entry: Any = _RETIRE
        try:
            while True:
                try:
                    entry = self.tasks.get(timeout=timeout)
                    return entry
                except queue.Empty:
                    with self.lock:
                        # Puts happen under this lock, so an empty queue here stays empty
                        # until this worker is no longer counted as capacity, nor as idle
                        # (a submitter that saw it idle would count on it to come).
                        if self.tasks.empty() and self.alive > self.min_workers:
                            ws.retiring = True
                            self.alive -= 1
                            self.idle -= 1
                            ws.idle = False
                            return _RETIRE
        finally:
            if ws.idle:
                with self.lock:
                    self.idle -= 1
                    if entry is not _RETIRE and self.claimed:
                        self.claimed -= 1  # the entry this worker took was counted on it
                    ws.idle = False

    def init_thread(self, ws: _WorkerState) -> bool:
        """Run the initializer and the Worker's setup in the new thread; break on failure."""
        try:
            if self.initializer is not None:
                self.initializer(*self.initargs)
            if self.worker_factory is not None:
                from ._worker import start_worker

                ws.instance = start_worker(self.worker_factory, ws, self)
        except BaseException as exc:
            what = "Worker setup" if self.worker_factory is not None else "initializer"
            logger.error("%s failed in %s; the pool is broken", what, ws.name, exc_info=exc)
            self.break_pool(f"a worker's {what} failed ({exc!r}); the pool is not usable", exc)
            return False
        return True

    def worker_exited(self, ws: _WorkerState, crashed: bool) -> None:
        """Forget a worker whose thread is ending; replace it if it died with work left."""
        with self.lock:
            self.workers.discard(ws)
            self.completed += ws.completed
            self.failed += ws.failed
            self.cancelled += ws.cancelled
            ws.completed = ws.failed = ws.cancelled = 0
            if not ws.retiring:
                self.alive -= 1
            if not (crashed and self.state == _RUNNING and self.alive == 0):
                return
            try:
                self._spawn(None)
                return
            except BaseException as exc:
                cause: BaseException = exc
        self.break_pool("a worker died and no replacement could be started", cause)

    def break_pool(self, message: str, cause: BaseException | None) -> None:
        """Mark the pool broken and fail everything queued, chained to ``cause``."""
        with self.lock:
            if self.state == _BROKEN:
                return
            self.state = _BROKEN
            self.broken_message = message
            self.broken_cause = cause
            tasks, runs = self._drain()
        failed, cancelled = 0, 0
        for entry in tasks:
            if self.fail_unstarted(entry[0]):
                failed += 1
            else:
                cancelled += 1
        for run, chunks in runs:
            error = self.broken_error()
            run.resolve(chunks, error)
            run.emit_unstarted(chunks, error)
            failed += count(chunks)
        with self.lock:
            self.failed += failed
            self.cancelled += cancelled

    def fail_unstarted(self, fut: TaskFuture[Any]) -> bool:
        """Fail a task the broken pool will never run; ``False`` if it was cancelled.

        Hooks see ``task_failed`` alone (no ``task_started``), with no duration.
        """
        error = self.broken_error()
        method = None if self.hooks is None else self.hooks.failed
        if method is not None:  # read before the start, which drops the callable
            task_id, shown = fut._tk_id, fut._tk_fn  # type: ignore[attr-defined]
        if not fut._tk_fail_unstarted(error):
            return False
        if method is not None:
            thread = threading.current_thread().name
            emit(method, TaskEvent(task_id, shown, thread, None, error))
        return True

    def _drain(self) -> tuple[list[_Task], list[tuple[MapRun, list[Chunk]]]]:
        """Take everything queued and stop intake everywhere (lock held).

        Returns the task entries, and each map run with the items taken from it.
        """
        tasks: list[_Task] = []
        while True:
            try:
                entry = self.tasks.get_nowait()
            except queue.Empty:
                break
            if type(entry) is tuple:
                tasks.append(entry)
        # Every run, not only those with a token still queued: workers that took a run's
        # last tokens keep claiming its chunks until none is left.
        while True:
            try:
                live = list(self.runs)
                break
            except RuntimeError:  # a run was collected mid-copy (possible without a GIL)
                continue
        runs = [(run, run.take_all()) for run in live]
        self._stop_intake()
        return tasks, [(run, chunks) for run, chunks in runs if chunks]

    def _stop_intake(self) -> None:
        """Wake idle workers to exit and blocked submitters to fail (lock held)."""
        self.tasks.put(_STOP)
        if self.slots is not None:
            self.slots.put(_STOP)

    # -- shutdown ----------------------------------------------------------------------

    def shutdown(
        self, *, wait: bool, cancel: bool, timeout: float | None, drop: bool = False
    ) -> ShutdownReport:
        """Stop intake; optionally cancel what is queued; optionally wait for workers."""
        deadline = None if timeout is None else time.monotonic() + timeout
        tasks: list[_Task] = []
        runs: list[tuple[MapRun, list[Chunk]]] = []
        with self.lock:
            if self.state == _RUNNING:
                self.state = _SHUTDOWN
                if cancel:
                    tasks, runs = self._drain()
                else:
                    self._stop_intake()
            elif cancel:
                tasks, runs = self._drain()
            me = threading.current_thread()
            self.in_shutdown.add(me)
            # A worker never waits for another worker that is itself shutting the pool
            # down (two doing so from tasks or callbacks would wait on each other). Any
            # other thread waits for them all.
            skip = self.in_shutdown if getattr(_current, "core", None) is self else ()
            threads = [
                ws.thread for ws in self.workers if ws.thread is not None and ws.thread not in skip
            ]
        if cancel:
            # Only now that the queue is empty: a task that returns early on the token
            # must not free its worker for a queued task that was about to be cancelled.
            self.token.cancel("the pool is shutting down")
        try:
            return self._finish_shutdown(
                threads, tasks, runs, drop=drop, wait=wait, deadline=deadline, timeout=timeout
            )
        finally:
            with self.lock:
                self.in_shutdown.discard(me)

    def _finish_shutdown(
        self,
        threads: list[threading.Thread],
        tasks: list[_Task],
        runs: list[tuple[MapRun, list[Chunk]]],
        *,
        drop: bool,
        wait: bool,
        deadline: float | None,
        timeout: float | None,
    ) -> ShutdownReport:
        """The part of shutdown that runs without the lock: resolve, then wait."""
        self.watch_stop.set()
        cancelled = 0
        dropped: list[DroppedTask] = []
        for fut, fn, args, kwargs, _ in tasks:
            fut.cancel()
            cancelled += 1
            if drop:
                dropped.append(DroppedTask(None if fn is _PROCESS else fn, args, kwargs, fut))
        for run, chunks in runs:
            run.resolve(chunks, CancelledError)
            run.emit_unstarted(chunks)
            cancelled += count(chunks)
            if drop:
                fn = None if run.fn is _PROCESS else run.fn
                calls = [call for _, chunk in chunks for call in chunk]
                dropped.extend(DroppedTask(fn, run.args(call), {}, None) for call in calls)
        if cancelled:
            with self.lock:
                self.cancelled += cancelled
        stragglers: tuple[WorkerSnapshot, ...] = ()
        if wait:
            me = threading.current_thread()
            watcher = self.watch_thread
            if watcher is not None and watcher is not me:
                threads.append(watcher)
            for thread in threads:
                if thread is not me:
                    remaining = None if deadline is None else max(0.0, deadline - time.monotonic())
                    join_interruptibly(thread, remaining)
            waited = {t.name for t in threads if t is not me}
            stragglers = tuple(s for s in self.snapshots(exclude=me) if s.thread_name in waited)
            if stragglers:
                self.abandoned = True
                logger.warning(
                    "shutdown stopped waiting after %s s; still running: %s",
                    timeout,
                    ", ".join(f"{s.thread_name} ({s.task})" for s in stragglers),
                )
        return ShutdownReport(cancelled=cancelled, stragglers=stragglers, dropped=tuple(dropped))

    def shutdown_on_gc(self) -> None:
        """The finalizer of an unreferenced pool: let queued work finish, then exit."""
        self.shutdown(wait=False, cancel=False, timeout=None)

    def snapshots(
        self, *, exclude: threading.Thread | None = None, long_running: float | None = None
    ) -> tuple[WorkerSnapshot, ...]:
        """Snapshot live workers (only those whose task has run ``long_running`` s, if set)."""
        now = time.monotonic()
        with self.lock:
            alive = [
                (ws.thread, ws.name, ws.task, ws.started)
                for ws in self.workers
                if ws.thread is not None and ws.thread is not exclude and ws.thread.is_alive()
            ]
        if long_running is not None:
            alive = [a for a in alive if a[2] is not None and now - a[3] >= long_running]
        frames = sys._current_frames()
        found = []
        for thread, name, task, started in alive:
            frame = frames.get(thread.ident) if thread.ident is not None else None
            stack = tuple(traceback.format_stack(frame)) if frame is not None else ()
            found.append(
                WorkerSnapshot(
                    thread_name=name,
                    task=_describe_entry(task),
                    running_for=None if task is None else now - started,
                    stack=stack,
                )
            )
        return tuple(sorted(found, key=lambda s: s.thread_name))

    def statistics(self) -> PoolStatistics:
        """A snapshot of the counters: exact whenever the pool is quiescent."""
        now = time.monotonic()
        with self.lock:
            late = self.late_cancelled
            while late:
                self.cancelled += late.popleft()
            completed, failed, cancelled = self.completed, self.failed, self.cancelled
            busy, items = self.inline, self.inline
            ages: list[float] = []
            for ws in self.workers:
                completed += ws.completed
                failed += ws.failed
                cancelled += ws.cancelled
                if ws.task is not None:
                    busy += 1
                    items += ws.items
                    ages.append(now - ws.started)
            queued = max(0, self.submitted - completed - failed - cancelled - items)
            return PoolStatistics(
                max_workers=self.max_workers,
                workers=len(self.workers),
                idle=self.idle,
                busy=busy,
                queued=queued,
                submitted=self.submitted,
                completed=completed,
                failed=failed,
                cancelled=cancelled,
                rejected=self.rejected,
                oldest_running=max(ages) if ages else None,
                running_ages=tuple(sorted(ages, reverse=True)),
            )

    def after_fork_in_child(self) -> None:
        """The child of a fork inherits no threads: refuse work clearly, resolve the rest.

        Every future the parent's pool had accepted (queued, or running in a thread that
        does not exist here) fails with ``BrokenPool``, so nothing in the child waits on
        it forever. Locks a vanished thread may have held are replaced first.
        """
        self.lock = threading.Lock()
        self.state = _BROKEN
        self.broken_message = (
            "this pool was inherited across os.fork(); its worker threads do not exist "
            "in the child process: create a new pool there"
        )
        self.broken_cause = None
        self.slots = None
        inherited, self.tasks = self.tasks, queue.SimpleQueue()
        entries: list[Any] = []
        while True:
            try:
                entries.append(inherited.get_nowait())
            except queue.Empty:
                break
        for ws in self.workers:
            entries += [ws.first, ws.task]
        self.workers.clear()
        self.alive = self.idle = self.claimed = 0
        for entry in entries:
            if type(entry) is tuple:
                fut = entry[0]
                fut._condition = _make_condition()
                if not fut.done():
                    fut._state = _RUNNING_STATE  # running or not, it will never run here
                    fut.set_exception(self.broken_error())
            elif isinstance(entry, MapRun):
                entry.poison(self.broken_error())


def _describe_entry(entry: object) -> str | None:
    if type(entry) is tuple:
        fn = entry[1]
    elif isinstance(entry, MapRun):
        fn = entry.fn
    else:
        return None
    return "Worker.process" if fn is _PROCESS else describe_callable(fn)


def _run_task(
    entry: _Task, ws: _WorkerState | None, log_unretrieved: bool, hooks: HookSet | None
) -> int:
    """Run one task entry; return its outcome (0 completed, FAILED or CANCELLED)."""
    if hooks is not None and hooks.runs:
        return _run_task_hooked(entry, ws, log_unretrieved, hooks)
    fut, fn, args, kwargs, ctx = entry
    if not fut._tk_start():
        return CANCELLED
    instance = None
    if fn is _PROCESS:
        assert ws is not None
        instance = ws.instance
        fn = instance.process
    try:
        result = ctx.run(fn, *args, **kwargs)
    except BaseException as exc:
        if instance is not None and isinstance(exc, Exception):
            instance._tk_on_error(args[0], exc)
        fut._tk_fail(exc, fn, log_unretrieved)
        # The traceback holds this frame: drop the future and the task from it, or the
        # cycle future -> exception -> frame -> future outlives everyone's interest.
        del fut, entry, fn, args, kwargs
        return FAILED
    fut._tk_finish(result)
    return 0


def _run_task_hooked(
    entry: _Task, ws: _WorkerState | None, log_unretrieved: bool, hooks: HookSet
) -> int:
    """``_run_task`` for pools that watch runs: the same, timed and reported.

    Kept apart (rather than tests inside ``_run_task``) so a pool without such hooks pays
    nothing for them; the hot events are built and called inline, for the same reason.
    """
    fut, fn, args, kwargs, ctx = entry
    task_id, shown = fut._tk_id, fut._tk_fn  # type: ignore[attr-defined]
    if not fut._tk_start():  # (which drops the future's _tk_fn)
        return CANCELLED
    instance = None
    if fn is _PROCESS:
        assert ws is not None
        instance = ws.instance
        fn = instance.process
    thread = threading.current_thread().name if ws is None else ws.name
    if hooks.started is not None:
        try:
            hooks.started(new_event(TaskEvent, (task_id, shown, thread, None, None, None)))
        except BaseException:
            hook_raised(hooks.started)
    started = time.monotonic()
    try:
        result = ctx.run(fn, *args, **kwargs)
    except BaseException as exc:
        elapsed = time.monotonic() - started
        if instance is not None and isinstance(exc, Exception):
            instance._tk_on_error(args[0], exc)
        if hooks.failed is not None:
            emit(hooks.failed, TaskEvent(task_id, shown, thread, elapsed, exc))
        fut._tk_fail(exc, fn, log_unretrieved)
        del fut, entry, fn, args, kwargs  # as in _run_task
        return FAILED
    if hooks.finished is not None:
        elapsed = time.monotonic() - started
        try:
            hooks.finished(new_event(TaskEvent, (task_id, shown, thread, elapsed, None, None)))
        except BaseException:
            hook_raised(hooks.finished)
    fut._tk_finish(result)
    return 0


def _thread_started(thread: threading.Thread) -> bool:
    """After ``thread.start()`` raised: is the thread running (or about to) anyway?

    ``Thread.start`` registers the thread in ``threading._limbo``, creates it, then waits
    for it to signal that it started; a failure to create it removes it from ``_limbo``.
    An interrupt during the wait leaves a thread that runs. (An interrupt before the
    creation also leaves it in ``_limbo``: the bounded wait on its start tells them apart.)
    """
    if thread.ident is not None:
        return True
    if thread not in getattr(threading, "_limbo", {}):
        return False
    started = getattr(thread, "_started", None)
    return started is None or bool(started.wait(1.0))


def _length(iterables: tuple[Iterable[Any], ...]) -> int | None:
    """How many items zipping ``iterables`` gives, if all have a length; else ``None``."""
    try:
        return min((len(it) for it in iterables), default=0)  # type: ignore[arg-type]
    except TypeError:
        return None


def _worker_main(core: _Core, ws: _WorkerState) -> None:
    """The body of every worker thread.

    It holds no task in its own locals: tracebacks of failed tasks reach this frame,
    and the thread lives long; the first entry is taken from ``ws`` by the loop.
    """
    set_os_thread_name(ws.name)
    _current.core = core
    _current.worker = ws
    _thread_token.token = core.token
    crashed = False
    try:
        if not core.init_thread(ws):
            _fail_first(core, ws)
            return
        if core.state == _BROKEN:
            # Another worker broke the pool while this one was setting up: its first task
            # fails like the queued ones did, instead of running on a broken pool.
            _fail_first(core, ws)
        _work_loop(core, ws)
    except BaseException:
        crashed = True
        logger.critical("worker thread %s crashed; threadkit bug", ws.name, exc_info=True)
        task = ws.task
        if type(task) is tuple and not task[0].done():
            task[0].set_exception(RuntimeError("the worker running this task crashed"))
        del task
    finally:
        if ws.instance is not None:
            from ._worker import stop_worker

            stop_worker(ws.instance, ws)
            ws.instance = None
        core.worker_exited(ws, crashed)


def _fail_first(core: _Core, ws: _WorkerState) -> None:
    """Fail the entry a worker was started with (the pool broke before it ran)."""
    first, ws.first = ws.first, None
    ws.task = None
    if type(first) is tuple:
        if core.fail_unstarted(first[0]):
            ws.failed += 1
        else:
            ws.cancelled += 1


def _work_loop(core: _Core, ws: _WorkerState) -> None:
    log_unretrieved = core.log_unretrieved
    hooks = core.hooks
    get_nowait = core.tasks.get_nowait
    steals = core.steals
    slots = core.slots
    empty = queue.Empty
    entry, ws.first = ws.first, None
    queued = entry is None  # a spawned worker's first task never sat in the queue
    while True:
        if entry is None:
            queued = True
            try:
                entry = get_nowait()
            except empty:
                entry = core.wait_for_work(ws)
            else:
                # A hint, read without the lock (see fold_steals): a take it misses
                # leaves a claim that only makes the pool start a thread too many.
                if core.claimed:
                    steals.append(None)
            if entry is _STOP:
                core.tasks.put(_STOP)  # pass it on to the next worker
                return
            if entry is _RETIRE:
                return
        if type(entry) is tuple:
            if slots is not None and queued:
                slots.put(True)  # the task left the queue: one more place for submitters
            ws.task = entry
            ws.items = 1
            ws.started = time.monotonic()
            outcome = _run_task(entry, ws, log_unretrieved, hooks)
            if outcome == 0:
                ws.completed += 1
            elif outcome == FAILED:
                ws.failed += 1
            else:
                ws.cancelled += 1
        else:
            run: MapRun = entry
            chunk = run.claim()
            while chunk is not None:
                ws.task = run
                ws.items = len(chunk[1])
                ws.started = time.monotonic()
                completed, failed = run.run_chunk(chunk, ws.instance)
                ws.completed += completed
                ws.failed += failed
                ws.task = None
                chunk = run.claim()
            del run, chunk
        entry = None  # drop the finished task before waiting for the next one
        ws.task = None


# -- process-wide hooks: interpreter exit and fork ---------------------------------------


def _install_hooks() -> None:
    global _hooks_installed
    with _live_lock:
        if _hooks_installed:
            return
        _hooks_installed = True
    register = getattr(threading, "_register_atexit", None)
    if register is not None:
        register(_at_interpreter_exit)
    else:  # pragma: no cover - every supported CPython has it
        import atexit

        atexit.register(_at_interpreter_exit)
    if hasattr(os, "register_at_fork"):
        os.register_at_fork(after_in_child=_after_fork_in_child)


def _at_interpreter_exit() -> None:
    """Let running and queued work finish before the interpreter exits, as the stdlib does.

    Pools whose shutdown already gave up on stragglers are not waited for; a Ctrl-C
    during this wait abandons the remaining work and exits with status 130.
    """
    global _interpreter_exiting
    _interpreter_exiting = True
    cores = list(_live_cores)
    try:
        for core in cores:
            core.shutdown(wait=False, cancel=False, timeout=None)
        for core in cores:
            if core.abandoned:
                continue
            with core.lock:
                threads = [ws.thread for ws in core.workers if ws.thread is not None]
            for thread in threads:
                thread.join()
    except KeyboardInterrupt:
        # From the pools' records: an interrupted join may already report a running
        # thread as stopped (before Python 3.13).
        names = sorted(ws.name for core in cores for ws in list(core.workers))
        logger.warning("interrupted at exit; abandoning running tasks in %s", ", ".join(names))
        import atexit

        atexit._run_exitfuncs()
        for stream in (sys.stdout, sys.stderr):
            with contextlib.suppress(Exception):  # a closed stream
                stream.flush()
        os._exit(130)


def _after_fork_in_child() -> None:
    global _live_lock
    _live_lock = threading.Lock()
    for core in list(_live_cores):
        core.after_fork_in_child()


# -- the public pool -----------------------------------------------------------------------


@final
class WorkerPool(ThreadPoolExecutor, Generic[In, Out]):
    """A thread pool that can replace ``concurrent.futures.ThreadPoolExecutor`` as is.

    The constructor takes ThreadPoolExecutor's arguments in the same order with the same
    defaults; the keyword-only ones add backpressure, elastic size and bounded shutdown.
    It is a ``ThreadPoolExecutor`` subclass, so code that checks for one (asyncio's
    ``loop.set_default_executor``, for instance) accepts it; none of the base class's
    machinery is used.

    Args:
        max_workers: The most threads the pool runs; by default as ThreadPoolExecutor
            computes it (``min(32, cpu count + 4)``). An ``int >= 1``.
        thread_name_prefix: Workers are named ``{prefix}_{n}``; by default the prefix is
            ``WorkerPool-{k}``.
        initializer: Called with ``*initargs`` in each new worker thread before its first
            task. If it raises, the pool breaks (see :class:`BrokenPool`).
        initargs: Arguments for ``initializer``.
        worker: A zero-argument callable (typically a :class:`Worker` subclass) called once
            in each worker thread to make that thread's worker object; tasks given with
            :meth:`put` and :meth:`process` run its ``process`` method.
        max_queue: The most tasks that may wait for a worker (``None``: unbounded). When
            the queue is full, ``overflow`` decides.
        overflow: ``"block"`` (wait for room, up to ``submit_timeout``), ``"reject"``
            (raise :class:`QueueFull`), ``"caller_runs"`` (run the task in the submitting
            thread) or ``"drop_oldest"`` (cancel the oldest queued task to make room). A
            worker of this pool that would block on its full queue runs the task inline.
        submit_timeout: With ``"block"``, how long a submitter waits for room before
            :class:`SubmitTimeout`; ``None`` waits as long as it takes.
        min_workers: Workers that ``idle_timeout`` never retires once started.
        idle_timeout: Seconds after which an idle worker beyond ``min_workers`` exits;
            ``None`` keeps workers until shutdown, as ThreadPoolExecutor does.
        shutdown_grace: When a ``with`` block is left by an exception (Ctrl-C included),
            the queued tasks are cancelled and running ones get this many seconds.
        log_unretrieved: Log a failed task's exception on the ``threadkit`` logger when its
            future is discarded without anyone retrieving it.
        cancel_token: Make the pool's :attr:`cancel_token` a child of this token, so
            cancelling it (for example from a :class:`GracefulShutdown`) tells the pool's
            running tasks to stop.
        hooks: A :class:`PoolHooks` whose methods see every task submitted, started,
            finished, failed or cancelled. Without it the pool pays nothing for hooks.
        watchdog: Seconds after which a running task is reported (once) on the
            ``threadkit`` logger with its thread and stack. Needs one extra thread.

    Raises:
        TypeError: An argument has the wrong type (``max_workers=1.5``, a non-callable
            ``initializer``).
        ValueError: An argument is out of range (``max_workers=0``, an unknown policy).
    """

    def __init__(
        self,
        max_workers: int | None = None,
        thread_name_prefix: str = "",
        initializer: Callable[..., object] | None = None,
        initargs: Iterable[Any] = (),
        *,
        worker: Callable[[], Worker[In, Out]] | None = None,
        max_queue: int | None = None,
        overflow: OverflowPolicy = "block",
        submit_timeout: float | None = None,
        min_workers: int = 0,
        idle_timeout: float | None = None,
        shutdown_grace: float = 2.0,
        log_unretrieved: bool = True,
        cancel_token: CancelToken | None = None,
        hooks: PoolHooks | None = None,
        watchdog: float | None = None,
    ) -> None:
        max_workers = (
            _default_max_workers() if max_workers is None else check_int(max_workers, "max_workers")
        )
        if not isinstance(thread_name_prefix, str):
            raise TypeError(f"thread_name_prefix must be a str, got {thread_name_prefix!r}")
        if initializer is not None and not callable(initializer):
            raise TypeError("initializer must be a callable")
        if worker is not None and not callable(worker):
            raise TypeError(f"worker must be a callable returning a Worker, got {worker!r}")
        if max_queue is not None:
            check_int(max_queue, "max_queue")
        if overflow not in _POLICIES:
            raise ValueError(f"overflow must be one of {', '.join(_POLICIES)}; got {overflow!r}")
        if overflow == "caller_runs" and worker is not None:
            raise ValueError(
                'overflow="caller_runs" cannot be used with worker=: the submitting thread '
                "has no Worker of its own to run the item"
            )
        check_int(min_workers, "min_workers", minimum=0)
        if min_workers > max_workers:
            raise ValueError(
                f"min_workers must be <= max_workers ({max_workers}), got {min_workers}"
            )
        grace = check_timeout(shutdown_grace, "shutdown_grace")
        if cancel_token is not None and not isinstance(cancel_token, CancelToken):
            raise TypeError(f"cancel_token must be a CancelToken, got {cancel_token!r}")
        if hooks is not None and not isinstance(hooks, PoolHooks):
            raise TypeError(f"hooks must be a PoolHooks instance, got {hooks!r}")
        watch = check_timeout(watchdog, "watchdog")
        if watch == 0:
            raise ValueError("watchdog must be None or a number of seconds > 0, got 0")
        # Inside a running GracefulShutdown block the pool registers with it (so a signal
        # stops it gracefully) and its token becomes a child of the block's token.
        adopted = adopt_pool(self)
        parent = cancel_token if cancel_token is not None else adopted
        self._grace = grace
        self._core = _Core(
            max_workers=max_workers,
            prefix=thread_name_prefix or f"WorkerPool-{next(_pool_counter)}",
            initializer=initializer,
            initargs=tuple(initargs),
            worker_factory=worker,
            max_queue=max_queue,
            overflow=overflow,
            submit_timeout=check_timeout(submit_timeout, "submit_timeout"),
            min_workers=min_workers,
            idle_timeout=check_timeout(idle_timeout, "idle_timeout"),
            log_unretrieved=bool(log_unretrieved),
            token=CancelToken() if parent is None else parent.child(),
            hooks=hooks,
            watchdog=watch,
        )
        if watch is not None:
            self._core.start_watchdog()
        _install_hooks()
        with _live_lock:
            _live_cores.add(self._core)
        self._finalizer = weakref.finalize(self, self._core.shutdown_on_gc)
        self._finalizer.atexit = False  # interpreter exit has its own hook

    # -- submitting ------------------------------------------------------------------------

    def submit(self, fn: Callable[P, T], /, *args: P.args, **kwargs: P.kwargs) -> Future[T]:
        """Schedule ``fn(*args, **kwargs)`` and return its future.

        The call runs in a copy of the caller's ``contextvars`` context.

        Returns:
            A :class:`concurrent.futures.Future` that resolves to the call's result or
            exception, or is cancelled.

        Raises:
            TypeError: ``fn`` is not callable (nothing is queued).
            PoolShutDown: The pool is shut down (also raised to a submitter blocked on a
                full queue when shutdown begins).
            BrokenPool: The pool is broken.
            QueueFull: The queue is full and the policy is ``"reject"``.
            SubmitTimeout: The queue stayed full for ``submit_timeout`` seconds.
            RuntimeError: No worker thread could be started (the task will not run).
        """
        if not callable(fn):
            raise TypeError(f"submit() needs a callable, got {fn!r}")
        core = self._core
        if core.hooks is not None:
            return core.submit_hooked(fn, args, kwargs)  # type: ignore[return-value]
        fut: TaskFuture[T] = TaskFuture()
        core.submit((fut, fn, args, kwargs, contextvars.copy_context()))
        return fut

    def try_submit(
        self, fn: Callable[P, T], /, *args: P.args, **kwargs: P.kwargs
    ) -> Future[T] | None:
        """Schedule ``fn(*args, **kwargs)`` only if that needs no waiting.

        Whatever the overflow policy, a full queue makes this return ``None`` (and count
        as rejected) instead of blocking, raising, dropping or running inline.

        Returns:
            The task's future, or ``None`` if the queue is full.

        Raises:
            TypeError: ``fn`` is not callable.
            PoolShutDown: The pool is shut down.
            BrokenPool: The pool is broken.
        """
        if not callable(fn):
            raise TypeError(f"try_submit() needs a callable, got {fn!r}")
        core = self._core
        if core.hooks is not None:
            return core.submit_hooked(fn, args, kwargs, try_only=True)
        fut: TaskFuture[T] = TaskFuture()
        accepted = core.submit((fut, fn, args, kwargs, contextvars.copy_context()), try_only=True)
        return fut if accepted else None

    def map(
        self,
        fn: Callable[..., T],
        *iterables: Iterable[Any],
        timeout: float | None = None,
        chunksize: int = 1,
        buffersize: int | None = None,
        progress: ProgressArg = False,
    ) -> MapIterator[T]:
        """Call ``fn`` on items of ``iterables`` (zipped) concurrently; yield results in order.

        Like ``Executor.map``: without ``buffersize`` the iterables are read in full at the
        call and every call is scheduled then, so work happens even if you never iterate.
        With ``buffersize=N`` (as in Python 3.14) input is read lazily with at most ``N``
        calls in flight, so an endless iterable works in flat memory.

        Args:
            fn: The callable; it takes one argument from each iterable.
            *iterables: The argument sources, zipped (the shortest ends the map).
            timeout: Seconds, from this call, that the iteration may take in all; past
                that, ``next()`` raises ``TimeoutError`` and unstarted calls are cancelled.
            chunksize: Items a worker takes at once; larger chunks cost less per item.
                A chunk's items run one after another in one copy of the caller's
                context (so with ``chunksize > 1`` they see each other's context
                changes).
            buffersize: The most calls in flight (lazy mode), or ``None`` (eager).
            progress: Show a progress bar that advances as calls complete: ``True`` on a
                terminal only, ``"plain"``/``"tqdm"``/``"rich"`` always, or a callable
                ``fn(done, total)`` or :class:`Progress` object. Off by default.

        Returns:
            An iterator of results; closing it (or an error, or the timeout) cancels
            the calls not yet started. Map items do not count against ``max_queue``.

        Raises:
            TypeError: ``fn`` is not callable, or a bad ``chunksize``/``buffersize`` type.
            ValueError: ``chunksize`` or ``buffersize`` is below 1, or a bad timeout.
            PoolShutDown: The pool is shut down.
        """
        return self._map(
            fn, iterables, timeout, chunksize, buffersize, ordered=True, progress=progress
        )

    def map_unordered(
        self,
        fn: Callable[..., T],
        *iterables: Iterable[Any],
        timeout: float | None = None,
        chunksize: int = 1,
        buffersize: int | None = 0,
        progress: ProgressArg = False,
    ) -> MapIterator[T]:
        """Like :meth:`map`, but yield each result as soon as it is ready.

        Lazy and bounded by default: ``buffersize=0`` means twice ``max_workers`` in
        flight; pass ``None`` to read all input at the call.

        Raises:
            TypeError: As for :meth:`map`.
            ValueError: As for :meth:`map`.
            PoolShutDown: The pool is shut down.
        """
        if buffersize == 0:
            buffersize = 2 * self._core.max_workers
        return self._map(
            fn, iterables, timeout, chunksize, buffersize, ordered=False, progress=progress
        )

    def _map(
        self,
        fn: Any,
        iterables: tuple[Iterable[Any], ...],
        timeout: float | None,
        chunksize: int,
        buffersize: int | None,
        *,
        ordered: bool,
        progress: ProgressArg = False,
    ) -> MapIterator[T]:
        if fn is not _PROCESS and not callable(fn):
            raise TypeError(f"map() needs a callable, got {fn!r}")
        # One iterable: its items are the calls' arguments as they are; several: zipped
        # into argument tuples, which the workers spread.
        spread = len(iterables) != 1
        inputs: Iterator[Any] = zip(*iterables, strict=False) if spread else iter(iterables[0])
        total = _length(iterables)
        seconds = check_timeout(timeout)
        check_int(chunksize, "chunksize")
        if buffersize is not None:
            check_int(buffersize, "buffersize")
        deadline = None if seconds is None else time.monotonic() + seconds
        core = self._core
        run = MapRun(
            fn,
            contextvars.copy_context(),
            spread=spread,
            chunksize=chunksize,
            hooks=core.hooks,
            map_id=core.new_map_id(),
        )
        first = list(itertools.islice(inputs, buffersize))
        if buffersize is None:
            total = len(first)
        if progress is not False:
            shown = make_progress(
                None if progress is True else progress,
                total=total,
                description="Worker.process" if fn is _PROCESS else describe_callable(fn),
            )
            run.progress = shown
        self._core.feed_map(run, 0, first)
        lazy_inputs = inputs if buffersize is not None else None
        return MapIterator(
            self._core, run, lazy_inputs, len(first), deadline, ordered=ordered, owner=self
        )

    def put(self, item: In) -> Future[Out]:
        """Give ``item`` to the pool's workers; one of them runs ``process(item)``.

        Needs a pool made with ``worker=``. Backpressure applies as for :meth:`submit`.

        Returns:
            The future of ``process(item)``.

        Raises:
            TypeError: The pool was made without ``worker=``.
            PoolShutDown: The pool is shut down.
            BrokenPool: The pool is broken (for example a ``setup`` failed).
            QueueFull: The queue is full and the policy is ``"reject"``.
            SubmitTimeout: The queue stayed full for ``submit_timeout`` seconds.
        """
        self._need_worker("put")
        core = self._core
        if core.hooks is not None:
            return core.submit_hooked(_PROCESS, (item,), {})  # type: ignore[return-value]
        fut: TaskFuture[Out] = TaskFuture()
        core.submit((fut, _PROCESS, (item,), {}, contextvars.copy_context()))
        return fut

    def process(
        self,
        items: Iterable[In],
        *,
        ordered: bool = True,
        buffersize: int | None = 0,
        chunksize: int = 1,
        timeout: float | None = None,
        progress: ProgressArg = False,
    ) -> MapIterator[Out]:
        """Run ``process`` on every item and yield the results; lazy and bounded.

        Needs a pool made with ``worker=``. Input is read as results are consumed, with
        at most ``buffersize`` items in flight (``0``, the default, means twice
        ``max_workers``; ``None`` reads all input at the call).

        Args:
            items: The items, any iterable (an endless generator is fine).
            ordered: Yield results in input order (``True``) or as they complete.
            buffersize: The most items in flight, as described above.
            chunksize: Items a worker takes at once.
            timeout: Seconds, from this call, that the whole iteration may take.
            progress: A progress bar, as for :meth:`map`.

        Returns:
            An iterator of results. An item's exception is raised when its turn comes;
            closing the iterator early cancels the items that have not started.

        Raises:
            TypeError: The pool was made without ``worker=``.
            ValueError: Bad ``buffersize``, ``chunksize`` or ``timeout``.
            PoolShutDown: The pool is shut down.
        """
        self._need_worker("process")
        if buffersize == 0:
            buffersize = 2 * self._core.max_workers
        return self._map(
            _PROCESS, (items,), timeout, chunksize, buffersize, ordered=ordered, progress=progress
        )

    # -- awaiting from asyncio (the bridge lives in _aio) --------------------------------

    def run(
        self, fn: Callable[P, T], /, *args: P.args, **kwargs: P.kwargs
    ) -> Coroutine[Any, Any, T]:
        """Run ``fn(*args, **kwargs)`` on the pool; await the returned coroutine for its result.

        For asyncio code, like ``asyncio.to_thread`` but on this pool, and with a
        cancellation that reaches the thread: the job runs with its own cancel token (a
        child of :attr:`cancel_token`), which it finds with :func:`current_token`. If the
        awaiting task is cancelled (a timeout, a ``TaskGroup``, a client gone) before the
        job starts, the job is cancelled and never runs; if it is running, its token is
        cancelled and the task waits, without blocking the loop, up to the pool's
        ``shutdown_grace`` for it to return, then raises ``CancelledError`` as asyncio
        expects. A job still running then is logged on the ``threadkit`` logger, counts
        as busy in :meth:`statistics` until it returns, and a shutdown lists it among
        the stragglers. A second cancellation ends the grace early.

        The job runs in a copy of the awaiting task's ``contextvars`` context. The event
        loop never blocks: a full bounded queue raises :class:`QueueFull` at once,
        whatever the ``overflow`` policy. Callbacks registered on the job's token run in
        the loop's thread when the awaiting task is cancelled: keep them short.

        Example::

            async with asyncio.timeout(5):
                page = await pool.run(fetch, url)

        Returns:
            A coroutine that returns what ``fn`` returns, or raises what it raised.

        Raises:
            TypeError: ``fn`` is not callable (at the call, nothing is queued).
            PoolShutDown: The pool is shut down (when awaited).
            BrokenPool: The pool is broken (when awaited).
            QueueFull: The pool's bounded queue is full (when awaited).
        """
        if not callable(fn):
            raise TypeError(f"run() needs a callable, got {fn!r}")
        core = self._core
        return run_job(self._submit_nowait, fn, args, kwargs, parent=core.token, grace=self._grace)

    def run_process(self, item: In) -> Coroutine[Any, Any, Out]:
        """Run ``process(item)`` on one of the pool's workers; await the returned coroutine.

        The awaitable counterpart of :meth:`put`, with cancellation as for :meth:`run`
        (inside ``process``, :func:`current_token` is the item's own token; the
        Worker's :attr:`Worker.token` stays the pool's).

        Returns:
            A coroutine that returns the result of ``process(item)``.

        Raises:
            TypeError: The pool was made without ``worker=``.
            PoolShutDown: The pool is shut down (when awaited).
            BrokenPool: The pool is broken (when awaited).
            QueueFull: The pool's bounded queue is full (when awaited).
        """
        self._need_worker("run_process")
        core = self._core
        return run_job(
            self._submit_nowait, _PROCESS, (item,), {}, parent=core.token, grace=self._grace
        )

    def amap(
        self, fn: Callable[..., T], *iterables: Iterable[Any], buffersize: int = 0
    ) -> AsyncMapIterator[T]:
        """Call ``fn`` on items of ``iterables`` (zipped); iterate the results with ``async for``.

        Lazy and bounded like ``map(buffersize=...)``: input is read (in the loop's
        thread) as results are consumed, with at most ``buffersize`` jobs in flight
        (``0``, the default, means twice ``max_workers``). Results come in input order;
        an item's exception is raised when its turn comes and ends the iteration.

        Leaving the loop early (``break``, an error, :meth:`AsyncMapIterator.aclose`) or
        cancelling its task cancels the jobs not started and the tokens of the running
        ones, as for :meth:`run`; ``async with pool.amap(...) as results:`` also waits up
        to ``shutdown_grace`` for those. Every job runs in a copy of the context that
        was current at this call, each with its own cancel token.

        Returns:
            An :class:`AsyncMapIterator` of the results.

        Raises:
            TypeError: ``fn`` is not callable, or ``buffersize`` is not an int.
            ValueError: ``buffersize`` is below 0.
        """
        if not callable(fn):
            raise TypeError(f"amap() needs a callable, got {fn!r}")
        return self._amap(fn, iterables, buffersize)

    def aprocess(self, items: Iterable[In], *, buffersize: int = 0) -> AsyncMapIterator[Out]:
        """Run ``process`` on every item; iterate the results with ``async for``.

        The asyncio counterpart of :meth:`process` (in input order), with the lazy
        input, bounds and cancellation of :meth:`amap`.

        Returns:
            An :class:`AsyncMapIterator` of the results.

        Raises:
            TypeError: The pool was made without ``worker=``, or a bad ``buffersize``.
            ValueError: ``buffersize`` is below 0.
        """
        self._need_worker("aprocess")
        return self._amap(_PROCESS, (items,), buffersize)

    def _amap(
        self, fn: Any, iterables: tuple[Iterable[Any], ...], buffersize: int
    ) -> AsyncMapIterator[Any]:
        check_int(buffersize, "buffersize", minimum=0)
        spread = len(iterables) != 1
        inputs: Iterator[Any] = zip(*iterables, strict=False) if spread else iter(iterables[0])
        return AsyncMapIterator(
            self._submit_nowait,
            self._core.token,
            self._grace,
            fn,
            inputs,
            spread=spread,
            buffersize=buffersize or 2 * self._core.max_workers,
        )

    def _submit_nowait(
        self, fn: Any, args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> Future[Any] | None:
        """Queue a job for the asyncio bridge; ``None`` if the queue is full (never waits)."""
        core = self._core
        if core.hooks is not None:
            return core.submit_hooked(fn, args, kwargs, try_only=True)
        fut: TaskFuture[Any] = TaskFuture()
        accepted = core.submit((fut, fn, args, kwargs, contextvars.copy_context()), try_only=True)
        return fut if accepted else None

    def _need_worker(self, method: str) -> None:
        if self._core.worker_factory is None:
            raise TypeError(
                f"{method}() needs a pool made with worker=...; use submit() for functions"
            )

    # -- shutting down -----------------------------------------------------------------

    def shutdown(  # type: ignore[override]
        self, wait: bool = True, *, cancel_futures: bool = False, timeout: float | None = None
    ) -> ShutdownReport:
        """Stop taking work and release the threads once the work is done.

        Safe to call more than once, from several threads, from a task or from a
        done-callback (a worker never waits for itself).

        Args:
            wait: Wait for the workers to finish (up to ``timeout``).
            cancel_futures: Cancel (and notify) every task that has not started.
            timeout: The most seconds to wait; workers still running then are reported
                as stragglers and the call returns. ``None`` waits as long as it takes.

        Returns:
            A :class:`ShutdownReport`: what was cancelled and who is still running.

        Raises:
            ValueError: ``timeout`` is negative or NaN.
        """
        seconds = check_timeout(timeout)
        return self._core.shutdown(wait=wait, cancel=cancel_futures, timeout=seconds)

    def shutdown_now(self, *, wait: bool = True, timeout: float | None = None) -> ShutdownReport:
        """Shut down at once and hand back the tasks that never started.

        Like Java's ``shutdownNow``: every queued task is removed, its future cancelled and
        notified, and it is returned in the report's ``dropped`` list so it can be saved or
        resubmitted elsewhere. Running tasks are left to finish (up to ``timeout``).

        Returns:
            A :class:`ShutdownReport` whose ``dropped`` holds the unstarted tasks.

        Raises:
            ValueError: ``timeout`` is negative or NaN.
        """
        seconds = check_timeout(timeout)
        return self._core.shutdown(wait=wait, cancel=True, timeout=seconds, drop=True)

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc_val: BaseException | None,
        exc_tb: TracebackType | None,
    ) -> None:
        if exc_type is None:
            self.shutdown(wait=True)
        else:
            # Leaving on an error (Ctrl-C included): drop what has not started and give
            # the running tasks only a short grace.
            self.shutdown(wait=True, cancel_futures=True, timeout=self._grace)

    # -- looking at it -------------------------------------------------------------------

    @property
    def cancel_token(self) -> CancelToken:
        """The token this pool's tasks see through :func:`current_token`.

        It is cancelled when the pool shuts down with cancellation (``shutdown_now``,
        ``shutdown(cancel_futures=True)``, leaving ``with`` on an error) or when the
        ``cancel_token`` given to the constructor is cancelled. Tasks that check it stop
        promptly instead of running to their end.
        """
        return self._core.token

    @property
    def max_workers(self) -> int:
        """The most worker threads this pool runs."""
        return self._core.max_workers

    @property
    def _max_workers(self) -> int:  # type: ignore[override]
        # ThreadPoolExecutor's attribute, read by third-party code that sizes things by it.
        return self._core.max_workers

    def statistics(self) -> PoolStatistics:
        """Return a consistent snapshot of the pool's counters (see :class:`PoolStatistics`)."""
        return self._core.statistics()

    def worker_snapshots(self) -> tuple[WorkerSnapshot, ...]:
        """Return every live worker's name, current task, its running time and its stack.

        For a hung pool, this answers "who is stuck, doing what, where?". The stacks are
        taken one thread after another, not all at one instant.
        """
        return self._core.snapshots()

    def __repr__(self) -> str:
        stats = self._core.statistics()
        return (
            f"<threadkit.WorkerPool {self._core.state} workers={stats.workers}/"
            f"{stats.max_workers} idle={stats.idle} busy={stats.busy} queued={stats.queued}>"
        )
