"""The engine of one pool: its shared state, its algorithms, and the worker-thread body.

``WorkerPool`` (in ``_pool``) is a thin face over one ``Core``. Worker threads
reference the core, never the pool, so a pool nobody references is garbage-collected;
its finalizer shuts the core down and the workers drain the queue and exit.

What a worker can be given, the one list of it (from the task queue ``Core.tasks``, as
its first entry when it starts, or handed to it while it is idle):
    * a task: the tuple ``(future, fn, args, kwargs, context)`` (``Task``), made by
      ``submit``/``put``; ``fn`` is ``PROCESS`` for a Worker pool's ``put``;
    * a map run: a ``MapRun`` object, given once per chunk a worker should come for;
      a worker that takes it keeps claiming chunks until the run has none left;
    * ``_STOP`` (``None``), only ever handed to an idle worker: intake stopped, exit.
They are told apart with ``type(entry) is tuple`` (a task), ``entry is _STOP`` and,
otherwise, a run.

Design: the hot path takes no Python-level lock that workers share. A worker with work
left takes entries with ``tasks.get_nowait()`` (a ``queue.SimpleQueue``: atomic in C, on
free-threaded builds too) and keeps its own counters, written by it alone. A Python lock
held by one thread across a GIL switch stalls every other thread that wants it, and a
lock shared by submitters and workers on every task turns that into a convoy. ``lock``
is therefore taken only by submitters, by workers going idle or exiting, and by
shutdown, statistics and the rare paths.

The hand-off to idle workers: an idle worker is on the list ``idlers`` and blocked on its
own ``WorkerRecord.wake`` lock. A submitter, under ``lock``, pops the most recently idle
worker, sets its ``handed`` entry and releases its ``wake``; only when ``idlers`` is empty
does it start a new worker (below ``max_workers``) or put the entry on ``tasks`` (at it).
A worker whose ``get_nowait`` finds nothing looks at ``tasks`` once more under ``lock``
and joins ``idlers`` only if it is still empty. Puts and joins both happen under the
lock, so the invariant holds exactly:

    **an entry waits in ``tasks`` only while no worker is idle and the pool is at
    ``max_workers``** (``not idlers or tasks is empty``, and ``tasks is empty or
    alive == max_workers``, whenever ``lock`` is free and the pool is running).

Hence no task waits behind a worker that could run it, and work in which every task
waits for a later one cannot deadlock below ``max_workers``. Three things keep the
exactness cheap:

* after a task quicker than the switch interval, a worker finding the queue empty
  yields the GIL once (``time.sleep(0)``) before going idle, so a submitter running
  ahead queues more and the worker takes it without an idle round trip (join the list,
  be handed the task, be woken). After a longer task every other thread had its turn:
  the yield would find nothing, and among hundreds of threads it costs a round of them;
* while the tasks last finished were quick, a submitter about to start a thread yields
  once, so workers finishing one go idle first (a burst keeps the GIL otherwise, and a
  large pool grew to hundreds of threads one idle worker could serve); it stops when a
  yield spares nothing, until a task is handed to an idle worker again;
* a new worker is counted under the lock (``_reserve``) and its thread started once the
  lock is released: a start waits for the new thread to run, and workers going idle
  would queue up on the lock. Shutdown and exit wait for a start in progress
  (``WorkerRecord.launched``) before joining.

Invariants:
    * Every entry put on ``tasks`` is taken exactly once: by a worker (which runs it or,
      if its future was cancelled, skips it) or by a drain (cancelling shutdown, broken
      pool), which resolves it. Every handed entry is run by the worker it was handed to.
    * Submission checks the state and puts or hands the entry under ``lock``; shutdown
      changes the state and hands ``_STOP`` to an idle worker under ``lock``, and each
      worker exiting on it passes it to the next idle one; a busy worker that finds
      ``tasks`` empty under ``lock`` once intake stopped exits. So nothing is accepted
      after the last worker may have left, and none is stranded.
    * A Ctrl-C in a submitting main thread cannot take a worker off ``idlers`` without
      handing it its entry (``_hand_to_idle`` has no point where a handler runs).
    * A worker retires (idle timeout) only under ``lock`` and only while still on
      ``idlers`` (no entry was handed to it). ``alive`` counts the workers that are
      capacity, a counted one whose thread is still starting included; if that start
      fails, entries queued meanwhile get another worker, or the pool breaks and fails
      them (``_start_failed``).
    * With ``max_queue``, a task is queued only on a free place of ``places``, and its
      place is given back when it leaves the queue (``_places``).
    * ``submitted == completed + failed + cancelled + queued + busy`` whenever the pool
      is quiescent, and ``queued`` is derived from that identity.
"""

from __future__ import annotations

import itertools
import logging
import queue
import sys
import threading
import time
import weakref
from collections import deque
from typing import TYPE_CHECKING, Any, Final, Literal

from . import _process
from ._cancel import CancelToken, task_token
from ._compat import in_event_loop
from ._errors import BrokenPool, PoolShutDown, QueueFull, SubmitTimeout
from ._futures import TaskFuture
from ._hooks import HookedFuture, HookSet, PoolHooks, emit, submit_hooked
from ._locks import new_lock
from ._map import Chunk, MapRun, count
from ._observe import count_statistics, snapshot_workers, start_watchdog, wait_for_workers
from ._places import FULL, STOP, QueuePlaces
from ._process import pool_numbers, this_thread
from ._reports import (
    DroppedTask,
    PoolStatistics,
    ShutdownReport,
    TaskEvent,
    WorkerSnapshot,
)
from ._tasks import Task, run_task, take_oldest_task
from ._text import format_seconds
from ._threads import set_os_thread_name, started_anyway, unique_name
from ._worker import (
    CANCELLED,
    FAILED,
    PROCESS,
    WorkerRecord,
    set_up_thread,
    started_threads,
    stop_worker,
)

if TYPE_CHECKING:
    from collections.abc import Callable

__all__ = [
    "BROKEN",
    "POLICIES",
    "RUNNING",
    "SHUTDOWN",
    "Core",
    "OverflowPolicy",
    "Task",
    "worker_main",
]

logger = logging.getLogger("threadkit")

OverflowPolicy = Literal["block", "reject", "caller_runs", "drop_oldest"]
POLICIES: Final = ("block", "reject", "caller_runs", "drop_oldest")

# The engine's states, in this order; the face reads them for repr and the stdlib's
# private attributes.
RUNNING, SHUTDOWN, BROKEN = "running", "shut down", "broken"

# Handed to an idle worker when intake stops (each one exiting on it passes it on).
_STOP: Final = None
# Returned by Core.wait_for_work when an idle worker retires.
_RETIRE: Final = object()


class Core:
    """The engine of one pool: its shared state and its algorithms (see the module)."""

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
        # -- settings: set here, never changed (read by any thread without the lock) --
        self.max_workers = max_workers
        self.own_prefix = not prefix  # named WorkerPool-<n>, n unique in the process
        self.prefix = prefix or f"WorkerPool-{next(pool_numbers)}"
        self.initializer = initializer
        self.initargs = initargs
        self.worker_factory = worker_factory
        self.max_queue = max_queue
        self.overflow = overflow
        self.submit_timeout = submit_timeout
        self.min_workers = min_workers
        self.idle_timeout = idle_timeout
        self.log_unretrieved = log_unretrieved
        self.token = token
        self.hooks = HookSet.of(hooks)  # None unless some event is actually watched
        self.watchdog = watchdog

        # -- thread-safe on their own (C-level queues, counters, events) ----------------
        self.tasks: queue.SimpleQueue[Any] = queue.SimpleQueue()  # entries: see the module
        self.places = None if max_queue is None else QueuePlaces(max_queue)
        self.task_ids = itertools.count()  # hooks only (next() is atomic, even without a GIL)
        self.map_ids = itertools.count()  # hooks only
        self.late_cancelled: deque[int] = deque()  # counts from lock-free paths (appends)
        # Stops the watchdog (a put: a C call, so a Ctrl-C cannot leave a lock held, as
        # it can inside threading.Event.set, whose Condition.__enter__ is Python code).
        self.watch_stop: queue.SimpleQueue[None] = queue.SimpleQueue()

        # -- guarded by `lock` --------------------------------------------------------------
        self.lock = new_lock()
        self.state = RUNNING
        self.broken_message = ""
        self.broken_cause: BaseException | None = None
        # Every live worker (a dict used as an ordered set: storing in it is no signal point).
        self.workers: dict[WorkerRecord, None] = {}
        self.alive = 0  # workers that count as capacity (not retiring)
        self.idlers: list[WorkerRecord] = []  # idle workers, the most recently idle last
        self.runs: weakref.WeakSet[MapRun] = weakref.WeakSet()  # map runs, for _drain
        self.inline: dict[int, Task] = {}  # tasks running in submitters' threads, by id
        self.next_index = 0
        # Totals; the live workers' own counters (in their records) are added by statistics().
        self.submitted = 0
        self.completed = 0
        self.failed = 0
        self.cancelled = 0
        self.rejected = 0
        self.in_shutdown: set[threading.Thread] = set()  # threads inside shutdown()

        # -- lock-free hints (a stale value costs only a thread too many or a yield) --------
        self.yield_first = True  # yield the GIL once before starting a thread (_accept)
        self.quick_tasks = True  # the last task before a worker went idle was quick

        # -- written once by one thread, read without the lock ------------------------------
        self.abandoned = False  # a shutdown gave up waiting: interpreter exit will not wait
        self.watch_thread: threading.Thread | None = None

    # -- intake ------------------------------------------------------------------------

    def closed_error(self) -> Exception:
        """The error a submission gets when the pool is not running."""
        if self.state == BROKEN:
            return self.broken_error()
        if _process.exiting:
            # ThreadPoolExecutor's own type and words: tracebacks printed at exit (and the
            # tools that read them) see what they would with the stdlib pool.
            return RuntimeError("cannot schedule new futures after interpreter shutdown")
        return PoolShutDown("cannot schedule new futures after shutdown")

    def check_open(self) -> None:
        """Raise the right error if the pool takes no more work (lock held)."""
        if self.state != RUNNING or _process.exiting:
            raise self.closed_error()

    def _accept_with(self, place: object, entry: Task) -> None:
        """Queue ``entry`` on a free queue place, unless ``place`` says intake stopped."""
        assert self.places is not None
        if place is STOP:
            self.places.pass_stop()
            with self.lock:
                raise self.closed_error()
        self._accept(entry)

    def broken_error(self) -> BrokenPool:
        err = BrokenPool(self.broken_message)
        err.__cause__ = self.broken_cause
        return err

    def submit(self, entry: Task, *, try_only: bool = False) -> bool:
        """Accept a task entry or raise; ``False`` if ``try_only`` and the queue is full.

        An ``Exception`` means the entry was not accepted. An interrupt (Ctrl-C) may land
        after it was: its future is then cancelled, so a task whose ``submit`` raised
        never starts, unless a worker had started it already (see "Ctrl-C inside submit"
        in the guarantees page).
        """
        try:
            places = self.places
            if places is not None:
                place = places.take()
                if place is not FULL:
                    self._accept_with(place, entry)
                    return True
                if self._spawn_for(entry):
                    return True  # a new worker takes it directly: the queue is not involved
                if try_only:
                    self._reject()
                    return False
                return self._overflow(entry)
            self._accept(entry)
            return True
        except BaseException as exc:
            if not isinstance(exc, Exception):
                entry[0]._tk_cancel_pending()
            raise

    def _spawn_for(self, entry: Task) -> bool:
        """Give ``entry`` to an idle worker or a new one, bypassing the (full) queue;
        ``False`` if no worker is idle and the pool is at ``max_workers``."""
        ws = None
        try:
            with self.lock:
                self.check_open()
                if self.idlers:
                    self._hand_to_idle(entry, counted=True)
                    return True
                if self.alive >= self.max_workers:
                    return False
                ws = self._reserve(entry)
            self._start(ws)
        except BaseException:
            if ws is not None:
                self._start_failed(ws)
            raise
        return True

    def _hand_to_idle(self, entry: object, *, counted: bool = False) -> None:
        """Give ``entry`` to the most recently idle worker (lock held, ``idlers`` not empty);
        count it as submitted if ``counted``.

        Written so that a Ctrl-C cannot land inside it: from the first line to the release,
        no instruction lets a signal handler run (no call, no backward jump), so the
        worker leaves the list exactly when it is given the entry. A worker taken off the
        list without its entry would wait forever.
        """
        idlers = self.idlers
        ws = idlers[-1]
        del idlers[-1]
        ws.handed = entry
        if counted:
            self.submitted += 1
        ws.wake.release()

    def _accept(self, entry: Task) -> None:
        """Hand ``entry`` to an idle worker, start one for it, or queue it (only at
        ``max_workers``); the caller holds a queue place if the queue is bounded."""
        places = self.places
        if (
            self.yield_first
            and self.quick_tasks
            and not self.idlers
            and 0 < self.alive < self.max_workers
        ):
            # About to start a thread (hints, read without the lock): let workers that
            # finish quick tasks become idle first (see the engine's docstring).
            time.sleep(0)
            self.yield_first = bool(self.idlers)
        ws = None
        try:
            with self.lock:
                if self.state != RUNNING or _process.exiting:
                    if places is not None:
                        places.give_back()
                    raise self.closed_error()
                if self.idlers or self.alive < self.max_workers:
                    if places is not None:
                        # Never queued: the place is free again (before a new worker
                        # starts, so the task itself finds it free).
                        places.give_back()
                    if self.idlers:
                        self._hand_to_idle(entry, counted=True)
                        self.yield_first = True  # workers go idle: a yield can spare a thread
                    else:
                        ws = self._reserve(entry)
                else:
                    # Counted first: no signal handler runs between the two, and one that
                    # runs after the put finds the books right.
                    self.submitted += 1
                    self.tasks.put(entry)
            if ws is not None:
                self._start(ws)  # if this raises, the task was never accepted
        except BaseException:
            if ws is not None:
                self._start_failed(ws)
            raise

    def _overflow(self, entry: Task) -> bool:
        """Apply the overflow policy: the bounded queue has no free place."""
        policy = self.overflow
        if policy == "block" and getattr(this_thread, "core", None) is self:
            # A worker blocking on its own full pool could wait forever for itself:
            # run the task inline instead (documented).
            policy = "caller_runs"
        elif policy in ("block", "caller_runs") and in_event_loop():
            # An event loop's thread must neither wait for room nor run a task itself:
            # every coroutine and callback of its loop (often the very ones that would
            # free a place) would stop with it. It gets QueueFull at once (documented).
            self._reject()
            raise QueueFull(
                f"the pool's queue is full (max_queue={self.max_queue}); a thread running "
                f"an asyncio event loop is never made to wait or run the task ({policy!r})"
            )
        if policy == "reject":
            self._reject()
            raise QueueFull(f"the pool's queue is full (max_queue={self.max_queue})")
        if policy == "caller_runs":
            self._run_inline(entry)
            return True
        if policy == "drop_oldest":
            return self._drop_oldest(entry)
        return self._block(entry)

    def _reject(self) -> None:
        """Count a task the full queue turned away (the pool's own error first, if closed)."""
        with self.lock:
            self.check_open()
            self.rejected += 1

    def _block(self, entry: Task, *, wait_forever: bool = False) -> bool:
        """Wait for a free place in the queue, then queue ``entry`` (``"block"`` policy)."""
        assert self.places is not None
        timeout = None if wait_forever else self.submit_timeout
        try:
            place = self.places.wait(timeout)
        except queue.Empty:
            with self.lock:
                self.rejected += 1
            raise SubmitTimeout(
                f"no room in the pool's queue within {format_seconds(timeout)}"
            ) from None
        self._accept_with(place, entry)
        return True

    def _drop_oldest(self, entry: Task) -> bool:
        """Cancel the oldest queued task and queue ``entry`` in its place."""
        victim = None
        try:
            with self.lock:
                self.check_open()
                victim = take_oldest_task(self.tasks)
                if victim is not None:
                    self.tasks.put(entry)  # takes over the victim's place
                    self.submitted += 1
                    self.cancelled += 1
        finally:
            if victim is not None:
                victim[0].cancel()  # taken off the queue: resolved, even on an interrupt
        if victim is None:
            # Nothing queued to drop: every place is held by a task in flight (a worker
            # that took one, a submitter about to queue one). One is freed shortly.
            return self._block(entry, wait_forever=True)
        return True

    def take_queued(self) -> Task | None:
        """Take the oldest queued task entry off the queue, cancelled; ``None`` if none.

        For ``WorkerPool._work_queue`` (code that drains ThreadPoolExecutor's queue). Map
        tokens met on the way are put back (``take_oldest_task``).
        """
        found = None
        try:
            with self.lock:
                found = take_oldest_task(self.tasks)
                if found is None:
                    return None
                if self.places is not None:
                    self.places.give_back()  # the place it held is free again
                self.cancelled += 1
        finally:
            if found is not None:
                found[0].cancel()  # taken off the queue: resolved, even on an interrupt
        return found

    def _run_inline(self, entry: Task) -> None:
        """Run a task in the submitting thread (``caller_runs``).

        Whatever interrupts it, the ``finally`` clause counts the task once and forgets
        it: by its outcome, or as cancelled if it never ran (``submit`` then cancels its
        future), or by its future's state if an interrupt took the outcome away.
        """
        fut = entry[0]
        ws = (
            getattr(this_thread, "record", None)
            if getattr(this_thread, "core", None) is self
            else None
        )
        key = id(entry)
        outcome: int | None = None
        try:
            with self.lock:
                self.check_open()
                # Counted and recorded with no call between (no point for a signal
                # handler), as it is forgotten and counted below.
                self.submitted += 1
                self.inline[key] = entry
            entry[4].run(task_token.set, self.token)
            outcome = run_task(entry, ws, self.log_unretrieved, self.hooks)
        finally:
            if outcome is None:
                outcome = (
                    CANCELLED
                    if not fut.done() or fut.cancelled()
                    else (FAILED if fut.exception(0) is not None else 0)
                )
            with self.lock:
                if key in self.inline:
                    del self.inline[key]
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
            while tokens and self.idlers:
                self._hand_to_idle(run)
                tokens -= 1
            interrupt: BaseException | None = None
            for _ in range(min(tokens, self.max_workers - self.alive)):
                alive = self.alive
                try:
                    self._spawn(run)
                except BaseException as exc:
                    if self.alive > alive:  # a Ctrl-C in start(), after the thread ran
                        tokens -= 1
                    if self.alive == 0:
                        run.pending.clear()
                        self.submitted -= len(calls)
                        raise
                    if not isinstance(exc, Exception):
                        interrupt = exc  # raised once the tokens are out
                    else:
                        logger.warning("could not start a worker thread; %d alive", self.alive)
                    break
                tokens -= 1  # the new worker starts with the run
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
        """``submit`` for a pool with hooks (``_hooks.submit_hooked``); ``None`` if
        ``try_only`` and the queue is full."""
        assert self.hooks is not None
        shown = None if fn is PROCESS else fn
        return submit_hooked(
            self.hooks,
            next(self.task_ids),
            shown,
            (fn, args, kwargs),
            self.submit,
            try_only=try_only,
        )

    def new_map_id(self) -> int | None:
        """A number for a map call's events, or ``None`` without hooks."""
        return None if self.hooks is None else next(self.map_ids)

    def start_watchdog(self) -> None:
        """Start the thread that warns about tasks running longer than ``watchdog``."""
        self.watch_thread = start_watchdog(self)

    # -- workers -----------------------------------------------------------------------

    def _spawn(self, first: object) -> None:
        """Start a worker whose first entry is ``first``, the lock held throughout; raises
        on failure (rare paths: map feeds, replacing a crashed worker)."""
        ws = self._reserve(first)
        try:
            self._start(ws)
        except BaseException:
            if not started_anyway(ws.thread):  # type: ignore[arg-type]
                self._unreserve(ws)
            raise

    def _reserve(self, first: object) -> WorkerRecord:
        """Count a new worker whose first entry is ``first`` (lock held); ``_start`` starts it.

        Submitters start it after releasing the lock: a thread start waits for the new
        thread to run, and workers going idle meanwhile would otherwise queue up on the
        lock. A task given as ``first`` is counted as submitted. The worker is registered
        and counted with no call from there to the caller holding the record (no point
        where a signal handler runs), so a caller interrupted earlier has nothing to undo.
        """
        # A prefix of the pool's own is unique already: its workers are numbered by the
        # pool, and no process-wide counter keeps an entry for every pool ever made.
        name = f"{self.prefix}_{self.next_index}" if self.own_prefix else unique_name(self.prefix)
        ws = WorkerRecord(name, self.next_index)
        ws.first = first
        task = type(first) is tuple
        if task:
            ws.task = first
            ws.items = 1
            ws.started = time.monotonic()
        # The first entry travels in the record, not the thread's arguments, which
        # would keep it (and its result) alive for the thread's whole life.
        ws.thread = threading.Thread(target=worker_main, args=(self, ws), name=name, daemon=True)
        self.workers[ws] = None
        self.alive += 1
        self.next_index += 1
        if task:
            self.submitted += 1
        return ws

    def _start(self, ws: WorkerRecord) -> None:
        """Start a reserved worker's thread, the lock not held (see ``_reserve``)."""
        try:
            ws.thread.start()  # type: ignore[union-attr]
        finally:
            ws.launched = True

    def _start_failed(self, ws: WorkerRecord) -> None:
        """After ``_start`` (or the way to it) raised: take the counts back unless the
        thread runs anyway (an interrupt after its creation).

        Other submitters may have queued entries meanwhile, counting on this worker as
        capacity (``_keep_queue_served``).
        """
        try:
            if started_anyway(ws.thread):  # type: ignore[arg-type]
                return
            with self.lock:
                self._unreserve(ws)
                cause = self._keep_queue_served()
            if cause is not None:
                self.break_pool("no worker thread could be started for queued work", cause)
        finally:
            ws.launched = True

    def _keep_queue_served(self) -> BaseException | None:
        """After the pool lost a worker it counted on (lock held): if entries wait in the
        queue with nobody idle and room to grow, start a worker for them.

        Returns the error to break the pool with when none could start and no worker is
        left alive to take them (the caller breaks it, after releasing the lock).
        """
        if (
            self.state != RUNNING
            or self.idlers
            or self.alive >= self.max_workers
            or self.tasks.empty()
        ):
            return None
        try:
            self._spawn(None)
        except BaseException as exc:
            if not self.alive:
                return exc
        return None  # started, or the live workers take the queued entries in time

    def _unreserve(self, ws: WorkerRecord) -> None:
        """Forget a reserved worker whose thread never started (lock held)."""
        if self.workers.pop(ws, False) is None:
            self.alive -= 1
            if type(ws.first) is tuple:
                self.submitted -= 1

    def wait_for_work(self, ws: WorkerRecord) -> Any:
        """Wait for an entry, the queue having looked empty; ``_RETIRE`` or ``_STOP`` to exit.

        Under the lock, the queue is looked at once more (entries are put only under it):
        an entry found there is taken, and its queue place given back. Otherwise the
        worker joins ``idlers`` and blocks on its own wake lock until a submitter hands it
        an entry, shutdown hands it ``_STOP``, or ``idle_timeout`` lets it retire.
        """
        with self.lock:
            try:
                ws.task = entry = self.tasks.get_nowait()  # recorded as taken (for a fork)
            except queue.Empty:
                if self.state != RUNNING:
                    return _STOP  # nothing left to take, and nothing will come
                self.idlers.append(ws)
            else:
                if self.places is not None and type(entry) is tuple:
                    self.places.give_back()  # the task left the queue
                return entry
        timeout = -1 if self.idle_timeout is None else self.idle_timeout
        wake = ws.wake
        while not wake.acquire(timeout=timeout):
            with self.lock:
                # Still idle (no submitter took it off the list meanwhile): retire if
                # the pool may shrink, else wait again.
                if self.alive > self.min_workers and ws in self.idlers:
                    self.idlers.remove(ws)
                    ws.retiring = True
                    self.alive -= 1
                    return _RETIRE
        # Recorded as the running entry before it leaves ``handed``: a forked child
        # must find it in one or the other.
        entry = ws.task = ws.handed
        ws.handed = None
        return entry

    def pass_stop(self) -> None:
        """A worker exiting on ``_STOP`` hands it to the next idle worker."""
        with self.lock:
            if self.idlers:
                self._hand_to_idle(_STOP)

    def init_thread(self, ws: WorkerRecord) -> bool:
        """Run the initializer and the Worker's setup in the new thread; break on failure."""
        failure = set_up_thread(
            self.initializer, self.initargs, self.worker_factory, ws, self.token
        )
        if failure is not None:
            self.break_pool(*failure)
        return failure is None

    def worker_exited(self, ws: WorkerRecord, crashed: bool) -> None:
        """Forget a worker whose thread is ending; replace it if it died with work left."""
        with self.lock:
            self.workers.pop(ws, None)
            self.completed += ws.completed
            self.failed += ws.failed
            self.cancelled += ws.cancelled
            ws.completed = ws.failed = ws.cancelled = 0
            if not ws.retiring:
                self.alive -= 1
            cause = self._keep_queue_served() if crashed else None
        if cause is not None:
            self.break_pool("a worker died and no replacement could be started", cause)

    def break_pool(self, message: str, cause: BaseException | None) -> None:
        """Mark the pool broken and fail everything queued, chained to ``cause``."""
        with self.lock:
            if self.state == BROKEN:
                return
            self.state = BROKEN
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
            failed += run.end_unstarted(chunks, error)
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
            emit(method, TaskEvent(task_id, shown, thread, None, error))  # pyright: ignore[reportPossiblyUnboundVariable]
        return True

    def _drain(self) -> tuple[list[Task], list[tuple[MapRun, list[Chunk]]]]:
        """Take everything queued and stop intake everywhere (lock held).

        Returns the task entries, and each map run with the items taken from it.
        """
        tasks: list[Task] = []
        while True:
            try:
                entry = self.tasks.get_nowait()
            except queue.Empty:
                break
            if type(entry) is tuple:
                tasks.append(entry)
        # Every run, not only those with a token still queued: workers that took a run's
        # last tokens keep claiming its chunks until none is left.
        runs = [(run, run.take_all()) for run in self._live_runs()]
        self._stop_intake()
        return tasks, [(run, chunks) for run, chunks in runs if chunks]

    def _live_runs(self) -> list[MapRun]:
        """The map runs not yet collected (lock held)."""
        while True:
            try:
                return list(self.runs)
            except RuntimeError:  # a run was collected mid-copy (possible without a GIL)
                continue

    def _stop_intake(self) -> None:
        """Wake idle workers to exit and blocked submitters to fail (lock held).

        One idle worker is handed ``_STOP``; each one that exits on it hands it to the
        next (``pass_stop``, in worker threads, where no Ctrl-C lands). Busy workers exit
        when they find the queue empty (``wait_for_work``). Every shutdown call runs this
        again, so an interrupted one is finished by the next.
        """
        if self.idlers:
            self._hand_to_idle(_STOP)
        if self.places is not None:
            self.places.pass_stop()

    # -- shutdown ----------------------------------------------------------------------

    def shutdown(
        self, *, wait: bool, cancel: bool, timeout: float | None, drop: bool = False
    ) -> ShutdownReport:
        """Stop intake; optionally cancel what is queued; optionally wait for workers."""
        deadline = None if timeout is None else time.monotonic() + timeout
        tasks: list[Task] = []
        runs: list[tuple[MapRun, list[Chunk]]] = []
        with self.lock:
            if self.state == RUNNING:
                self.state = SHUTDOWN
                if cancel:
                    tasks, runs = self._drain()
                else:
                    self._stop_intake()
            elif cancel:
                tasks, runs = self._drain()
            else:
                self._stop_intake()  # again: an earlier call may have been interrupted
            me = threading.current_thread()
            self.in_shutdown.add(me)
            # A worker never waits for another worker that is itself shutting the pool
            # down (two doing so from tasks or callbacks would wait on each other). Any
            # other thread waits for them all.
            skip = self.in_shutdown if getattr(this_thread, "core", None) is self else ()
            records = [ws for ws in self.workers if ws.thread not in skip]
        if cancel:
            # Only now that the queue is empty: a task that returns early on the token
            # must not free its worker for a queued task that was about to be cancelled.
            self.token.cancel("the pool is shutting down")
        try:
            return self._finish_shutdown(
                records, tasks, runs, drop=drop, wait=wait, deadline=deadline, timeout=timeout
            )
        finally:
            with self.lock:
                self.in_shutdown.discard(me)

    def _finish_shutdown(
        self,
        records: list[WorkerRecord],
        tasks: list[Task],
        runs: list[tuple[MapRun, list[Chunk]]],
        *,
        drop: bool,
        wait: bool,
        deadline: float | None,
        timeout: float | None,
    ) -> ShutdownReport:
        """The part of shutdown that runs without the lock: resolve, then wait."""
        self.watch_stop.put(None)
        cancelled = 0
        dropped: list[DroppedTask] = []
        for fut, fn, args, kwargs, _ in tasks:
            fut.cancel()
            cancelled += 1
            if drop:
                dropped.append(DroppedTask(None if fn is PROCESS else fn, args, kwargs, fut))
        for run, chunks in runs:
            cancelled += run.end_unstarted(chunks)
            if drop:
                fn = None if run.fn is PROCESS else run.fn
                calls = [call for _, chunk in chunks for call in chunk]
                dropped.extend(DroppedTask(fn, run.args(call), {}, None) for call in calls)
        if cancelled:
            with self.lock:
                self.cancelled += cancelled
        stragglers = wait_for_workers(self, records, deadline, timeout) if wait else ()
        if stragglers:
            self.abandoned = True
        return ShutdownReport(cancelled=cancelled, stragglers=stragglers, dropped=tuple(dropped))

    def shutdown_on_gc(self) -> None:
        """The finalizer of an unreferenced pool: let queued work finish, then exit."""
        self.shutdown(wait=False, cancel=False, timeout=None)

    def snapshots(
        self, *, exclude: threading.Thread | None = None, long_running: float | None = None
    ) -> tuple[WorkerSnapshot, ...]:
        """Snapshot live workers (only those whose task has run ``long_running`` s, if set)."""
        with self.lock:
            alive = [
                (ws.thread, ws.name, ws.task, ws.started)
                for ws in self.workers
                if ws.thread is not None and ws.thread is not exclude and ws.thread.is_alive()
            ]
        return snapshot_workers(alive, long_running=long_running)

    def statistics(self) -> PoolStatistics:
        """A snapshot of the counters: exact whenever the pool is quiescent."""
        with self.lock:
            late = self.late_cancelled
            while late:
                self.cancelled += late.popleft()
            return count_statistics(self)

    def stop_intake_at_exit(self) -> None:
        """Interpreter exit: take no more work; what was accepted still runs."""
        self.shutdown(wait=False, cancel=False, timeout=None)

    def worker_threads(self) -> list[threading.Thread]:
        """The threads of the live workers (for interpreter exit to join)."""
        with self.lock:
            records = list(self.workers)
        return started_threads(records, None)

    def after_fork_in_child(self) -> None:
        """The child of a fork inherits no threads: refuse work clearly, resolve the rest.

        Every future the parent's pool had accepted (queued, or running in a thread that
        does not exist here) fails with ``BrokenPool``, so nothing in the child waits on
        it forever. Locks a vanished thread may have held are replaced first.
        """
        self.lock = new_lock()
        self.state = BROKEN
        self.broken_message = (
            "this pool was inherited across os.fork(); its worker threads do not exist "
            "in the child process: create a new pool there"
        )
        self.broken_cause = None
        self.places = None
        inherited, self.tasks = self.tasks, queue.SimpleQueue()
        entries: list[Any] = []
        while True:
            try:
                entries.append(inherited.get_nowait())
            except queue.Empty:
                break
        for ws in self.workers:
            entries += [ws.first, ws.task, ws.handed]
        entries += self.inline.values()  # running in submitters' threads: not here either
        entries += self._live_runs()  # every map run, whoever holds its tokens
        self.workers.clear()
        self.alive = 0
        self.idlers.clear()
        self.inline.clear()
        for entry in entries:
            if type(entry) is tuple:
                fut = entry[0]
                fut._tk_fail_after_fork(self.broken_error())
            elif isinstance(entry, MapRun):
                entry.poison(self.broken_error())


def worker_main(core: Core, ws: WorkerRecord) -> None:
    """The body of every worker thread.

    It holds no task in its own locals: tracebacks of failed tasks reach this frame,
    and the thread lives long; the first entry is taken from ``ws`` by the loop.
    """
    set_os_thread_name(ws.name)
    this_thread.core = core
    this_thread.record = ws
    this_thread.token = core.token
    crashed = False
    try:
        if not core.init_thread(ws):
            _fail_first(core, ws)
            return
        if core.state == BROKEN:
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
            stop_worker(ws.instance, ws)
            ws.instance = None
        core.worker_exited(ws, crashed)


def _fail_first(core: Core, ws: WorkerRecord) -> None:
    """Fail the entry a worker was started with (the pool broke before it ran)."""
    first, ws.first = ws.first, None
    ws.task = None
    if type(first) is tuple:
        if core.fail_unstarted(first[0]):
            ws.failed += 1
        else:
            ws.cancelled += 1


def _work_loop(core: Core, ws: WorkerRecord) -> None:
    log_unretrieved = core.log_unretrieved
    hooks = core.hooks
    get_nowait = core.tasks.get_nowait
    sleep = time.sleep
    monotonic = time.monotonic
    quick_limit = sys.getswitchinterval()
    give_back = None if core.places is None else core.places.give_back
    empty = queue.Empty
    entry, ws.first = ws.first, None  # a new worker's first entry, handed at its start
    while True:
        if entry is None:
            try:
                # Recorded in the same step as it is taken: a fork in between would leave
                # the child a future that no structure of its pool holds.
                ws.task = entry = get_nowait()
            except empty:
                # After a quick task, yield once before going idle (see the docstring);
                # whether it was quick is also a hint for submitters about to start one.
                quick = monotonic() - ws.started < quick_limit
                if core.quick_tasks is not quick:
                    core.quick_tasks = quick
                if quick:
                    sleep(0)
                entry = core.wait_for_work(ws)  # handed, or taken there: no place to return
                if entry is _STOP:
                    core.pass_stop()
                    return
                if entry is _RETIRE:
                    return
            else:
                if give_back is not None and type(entry) is tuple:
                    give_back()  # the task left the queue: its place is free
        if type(entry) is tuple:
            ws.task = entry
            ws.items = 1
            ws.started = time.monotonic()
            outcome = run_task(entry, ws, log_unretrieved, hooks)
            if outcome == 0:
                ws.completed += 1
            elif outcome == FAILED:
                ws.failed += 1
            else:
                ws.cancelled += 1
        else:
            run: MapRun = entry  # pyright: ignore[reportAssignmentType] (not a tuple: a run)
            chunk = run.claim()
            while chunk is not None:
                ws.task = run
                ws.items = len(chunk[1])
                ws.started = time.monotonic()
                completed, failed, cancelled = run.run_chunk(chunk, ws.instance)
                ws.completed += completed
                ws.failed += failed
                ws.cancelled += cancelled
                ws.task = None
                chunk = run.claim()
            del run, chunk
        entry = None  # drop the finished task before waiting for the next one
        ws.task = None
