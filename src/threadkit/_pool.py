"""WorkerPool: a drop-in ``ThreadPoolExecutor`` with backpressure and bounded shutdown.

This module is the pool's face: argument checks, docstrings, and delegation to the
engine (``_core.Core``), which holds every piece of shared state and runs the workers.
Read it top to bottom as the list of what a user can call.
"""

from __future__ import annotations

import contextvars
import itertools
import os
import time
import weakref
from concurrent.futures import ThreadPoolExecutor
from typing import (
    TYPE_CHECKING,
    Any,
    Final,
    Generic,
    Literal,
    Never,
    NoReturn,
    ParamSpec,
    TypeVar,
    cast,
    final,
    overload,
)

from ._aio import AsyncMapIterator, run_job
from ._cancel import CancelToken
from ._compat import QueuedTask, SubmitMap, WorkQueueView, refuse_context_hook
from ._core import BROKEN, POLICIES, RUNNING, Core, OverflowPolicy
from ._futures import TaskFuture
from ._hooks import PoolHooks
from ._map import MapIterator, MapRun
from ._process import innermost_scope, register_engine
from ._progress import ProgressArg, check_progress, make_progress
from ._reports import PoolStatistics, ShutdownReport, WorkerSnapshot, describe_callable
from ._tasks import Task
from ._validate import check_buffersize, check_int, check_timeout
from ._worker import PROCESS, In, Out, Worker

if TYPE_CHECKING:
    import threading
    from collections.abc import Callable, Coroutine, Iterable, Iterator
    from concurrent.futures import Future
    from types import TracebackType
    from typing import Self

__all__ = ["OverflowPolicy", "WorkerPool"]

P = ParamSpec("P")
T = TypeVar("T")

# What map/map_unordered/process take as buffersize: None (eager), an int >= 1, or "auto".
BufferSize = int | Literal["auto"] | None
# With buffersize="auto", an ordered lazy iteration may hold this many finished results
# per worker while an earlier item is still running (see MapIterator).
_HOLD_PER_WORKER: Final = 32


def _default_max_workers() -> int:
    # As ThreadPoolExecutor computes it on the running Python (process_cpu_count on 3.13+).
    cpu_count: Callable[[], int | None] = getattr(os, "process_cpu_count", os.cpu_count)
    return min(32, (cpu_count() or 1) + 4)


def _length(iterables: tuple[Iterable[Any], ...]) -> int | None:
    """How many items zipping ``iterables`` gives, if all have a length; else ``None``."""
    try:
        return min((len(it) for it in iterables), default=0)  # type: ignore[arg-type]
    except TypeError:
        return None


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
            task. If it raises, the pool breaks (see ``BrokenPool``).
        initargs: Arguments for ``initializer``.
        worker: A zero-argument callable (typically a ``Worker`` subclass) called once
            in each worker thread to make that thread's worker object; tasks given with
            ``put()`` and ``process()`` run its ``process`` method.
        max_queue: The most tasks that may wait for a worker (``None``: unbounded). When
            the queue is full, ``overflow`` decides.
        overflow: ``"block"`` (wait for room, up to ``submit_timeout``), ``"reject"``
            (raise ``QueueFull``), ``"caller_runs"`` (run the task in the submitting
            thread) or ``"drop_oldest"`` (cancel the oldest queued task to make room). A
            worker of this pool that would block on its full queue runs the task inline.
        submit_timeout: With ``"block"``, how long a submitter waits for room before
            ``SubmitTimeout``; ``None`` waits as long as it takes.
        min_workers: Workers that ``idle_timeout`` never retires once started.
        idle_timeout: Seconds after which an idle worker beyond ``min_workers`` exits;
            ``None`` keeps workers until shutdown, as ThreadPoolExecutor does.
        shutdown_grace: When a ``with`` block is left by an exception (Ctrl-C included),
            the queued tasks are cancelled and running ones get this many seconds.
        log_unretrieved: Log a failed task's exception on the ``threadkit`` logger when its
            future is discarded without anyone retrieving it (or trying to cancel it: a
            ``cancel()`` that came too late, as asyncio's on a timeout, gives it up).
        cancel_token: Make the pool's ``cancel_token`` a child of this token, so
            cancelling it (for example from a ``GracefulShutdown``) tells the pool's
            running tasks to stop.
        hooks: A ``PoolHooks`` whose methods see every task submitted, started,
            finished, failed or cancelled. Without it the pool pays nothing for hooks.
        watchdog: Seconds after which a running task is reported (once) on the
            ``threadkit`` logger with its thread and stack. Needs one extra thread.

    Raises:
        TypeError: An argument has the wrong type (``max_workers=1.5``, a non-callable
            ``initializer``).
        ValueError: An argument is out of range (``max_workers=0``, an unknown policy).
    """

    # A pool without ``worker=`` is a WorkerPool[Never, Never]: type checkers then reject
    # its put() and process(), which raise TypeError at run time.
    @overload
    def __init__(
        self: WorkerPool[Never, Never],
        max_workers: int | None = None,
        thread_name_prefix: str = "",
        initializer: Callable[..., object] | None = None,
        initargs: Iterable[Any] = (),
        *,
        worker: None = None,
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
    ) -> None: ...

    @overload
    def __init__(
        self,
        max_workers: int | None = None,
        thread_name_prefix: str = "",
        initializer: Callable[..., object] | None = None,
        initargs: Iterable[Any] = (),
        *,
        worker: Callable[[], Worker[In, Out]],
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
    ) -> None: ...

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
        cls: type = type(self)
        if cls is not WorkerPool:  # subclassed at run time despite @final (a patched stdlib)
            refuse_context_hook(cls, WorkerPool)
        max_workers = (
            _default_max_workers()
            if max_workers is None
            else check_int(
                max_workers, "max_workers", too_small="max_workers must be greater than 0"
            )
        )
        if not isinstance(thread_name_prefix, str):
            raise TypeError(f"thread_name_prefix must be a str, got {thread_name_prefix!r}")
        if initializer is not None and not callable(initializer):
            raise TypeError("initializer must be a callable")
        if worker is not None and not callable(worker):
            raise TypeError(f"worker must be a callable returning a Worker, got {worker!r}")
        if max_queue is not None:
            check_int(max_queue, "max_queue")
        if overflow not in POLICIES:
            raise ValueError(f"overflow must be one of {', '.join(POLICIES)}; got {overflow!r}")
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
        if not isinstance(log_unretrieved, bool):
            raise TypeError(f"log_unretrieved must be a bool, got {log_unretrieved!r}")
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
        adopt = innermost_scope()
        adopted: CancelToken | None = None if adopt is None else adopt(self)
        parent = cancel_token if cancel_token is not None else adopted
        self._grace = grace
        self._core = Core(
            max_workers=max_workers,
            prefix=thread_name_prefix,
            initializer=initializer,
            initargs=tuple(initargs),
            worker_factory=worker,
            max_queue=max_queue,
            overflow=overflow,
            submit_timeout=check_timeout(submit_timeout, "submit_timeout"),
            min_workers=min_workers,
            idle_timeout=check_timeout(idle_timeout, "idle_timeout"),
            log_unretrieved=log_unretrieved,
            token=CancelToken() if parent is None else parent.child(),
            hooks=hooks,
            watchdog=watch,
        )
        if watch is not None:
            self._core.start_watchdog()
        register_engine(self._core)
        self._finalizer = weakref.finalize(self, self._core.shutdown_on_gc)
        self._finalizer.atexit = False  # interpreter exit has its own hook

    # -- submitting ------------------------------------------------------------------------

    def submit(self, fn: Callable[P, T], /, *args: P.args, **kwargs: P.kwargs) -> Future[T]:
        """Schedule ``fn(*args, **kwargs)`` and return its future.

        The call runs in a copy of the caller's ``contextvars`` context.

        Returns:
            A ``concurrent.futures.Future`` that resolves to the call's result or
            exception, or is cancelled.

        Raises:
            TypeError: ``fn`` is not callable (nothing is queued).
            PoolShutDown: The pool is shut down (also raised to a submitter blocked on a
                full queue when shutdown begins).
            BrokenPool: The pool is broken.
            QueueFull: The queue is full and the policy is ``"reject"``.
            SubmitTimeout: The queue stayed full for ``submit_timeout`` seconds.
            RuntimeError: No worker thread could be started (the task will not run), or
                the interpreter is exiting (ThreadPoolExecutor's error and words).
        """
        if not callable(fn):
            raise TypeError(f"submit() needs a callable, got {fn!r}")
        core = self._core
        if core.hooks is not None:
            return core.submit_hooked(fn, args, kwargs)  # type: ignore[return-value]
        fut: TaskFuture[T] = TaskFuture()
        core.submit((fut, fn, args, kwargs, contextvars.copy_context()))
        return fut

    def _tk_entry_sink(self) -> Callable[[Task], object] | None:
        """For ``TaskGroup``: what takes ready task entries, if this pool runs them as given.

        An entry ``(future, fn, args, kwargs, context)`` given to the returned callable is
        accepted or refused (raising) as ``submit`` accepts its own, and runs ``fn`` in
        ``context`` untouched; its future is claimed and settled only through
        ``_tk_start``, ``_tk_finish``, ``_tk_fail``, ``_tk_fail_unstarted`` and
        ``cancel``, which a future subclass may extend. ``None`` where that does not
        hold: with hooks (they make the futures) or a bounded queue (a task run inline
        by its overflow policy gets the pool's token bound in its context).
        """
        core = self._core
        if core.hooks is not None or core.max_queue is not None:
            return None
        return core.submit

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
        buffersize: BufferSize = None,
        progress: ProgressArg = False,
    ) -> MapIterator[T]:
        """Call ``fn`` on items of ``iterables`` (zipped) concurrently; yield results in order.

        Like ``Executor.map``: without ``buffersize`` the iterables are read in full at the
        call and every call is scheduled then, so work happens even if you never iterate.
        With ``buffersize=N`` (as in Python 3.14) input is read lazily with at most ``N``
        calls in flight, so an endless iterable works in flat memory; with
        ``buffersize="auto"`` lazily with the window ``process`` uses by default.

        If ``submit`` is not threadkit's own (a subclass overrides it, or it was replaced
        on the instance, as progress bars and tracing tools do), ``map`` is built on it,
        as ``Executor.map`` is: every call goes through that ``submit`` (``chunksize``
        is then ignored, as ThreadPoolExecutor ignores it, and ``progress`` is refused).

        Args:
            fn: The callable; it takes one argument from each iterable.
            *iterables: The argument sources, zipped (the shortest ends the map).
            timeout: Seconds, from this call, that the iteration may take in all; past
                that, ``next()`` raises ``TimeoutError`` and unstarted calls are cancelled.
            chunksize: Items a worker takes at once; larger chunks cost less per item.
                A chunk's items run one after another in one copy of the caller's
                context (so with ``chunksize > 1`` they see each other's context
                changes).
            buffersize: ``None`` (eager, the default), the most calls read ahead of the
                results you have taken (an ``int`` >= 1; lazy), or ``"auto"`` (lazy, see
                ``process``).
            progress: Show a progress bar that advances as calls complete: ``True`` on a
                terminal only, ``"plain"``/``"tqdm"``/``"rich"`` always, a ``tqdm`` bar or
                ``rich.progress.Progress`` of your own, a callable ``fn(done, total)`` or a
                ``Progress`` object. Off by default; see ``make_progress()``.

        Returns:
            An iterator of results; closing it (or an error, or the timeout) cancels
            the calls not yet started. Map items do not count against ``max_queue``.

        Raises:
            TypeError: ``fn`` is not callable, a bad ``chunksize``/``buffersize`` type, or
                ``progress`` with a ``submit`` that is not threadkit's own.
            ValueError: ``chunksize`` or ``buffersize`` is below 1, or a bad timeout.
            PoolShutDown: The pool is shut down.
        """
        if type(self).submit is not WorkerPool.submit or "submit" in self.__dict__:
            return self._map_via_submit(
                fn, iterables, timeout, chunksize, buffersize, progress=progress
            )
        return self._map(
            fn, iterables, timeout, chunksize, buffersize, ordered=True, progress=progress
        )

    def _map_via_submit(
        self,
        fn: Callable[..., T],
        iterables: tuple[Iterable[Any], ...],
        timeout: float | None,
        chunksize: int,
        buffersize: BufferSize,
        *,
        progress: ProgressArg,
    ) -> MapIterator[T]:
        if not callable(fn):
            raise TypeError(f"map() needs a callable, got {fn!r}")
        seconds = check_timeout(timeout)
        check_int(chunksize, "chunksize")
        if buffersize == "auto":
            buffersize = 2 * self._core.max_workers
        check_buffersize(buffersize)
        if progress is not False:
            raise TypeError(
                "map(progress=...) needs WorkerPool's own submit; this pool's submit is "
                "overridden or wrapped, so map goes through it and cannot show progress"
            )
        # The same iteration protocol as a MapIterator (iterate, close, with).
        return cast(
            "MapIterator[T]",
            SubmitMap(self, fn, iterables, timeout=seconds, buffersize=buffersize),
        )

    def map_unordered(
        self,
        fn: Callable[..., T],
        *iterables: Iterable[Any],
        timeout: float | None = None,
        chunksize: int = 1,
        buffersize: BufferSize = "auto",
        progress: ProgressArg = False,
    ) -> MapIterator[T]:
        """Like ``map()``, but yield each result as soon as it is ready.

        Lazy and bounded by default: ``buffersize="auto"`` means twice ``max_workers`` in
        flight; pass ``None`` to read all input at the call.

        Raises:
            TypeError: As for ``map()``.
            ValueError: As for ``map()``.
            PoolShutDown: The pool is shut down.
        """
        return self._map(
            fn, iterables, timeout, chunksize, buffersize, ordered=False, progress=progress
        )

    def _map(
        self,
        fn: Any,
        iterables: tuple[Iterable[Any], ...],
        timeout: float | None,
        chunksize: int,
        buffersize: BufferSize,
        *,
        ordered: bool,
        progress: ProgressArg = False,
    ) -> MapIterator[T]:
        if fn is not PROCESS and not callable(fn):
            raise TypeError(f"map() needs a callable, got {fn!r}")
        check_progress(progress)  # every argument is checked before any input is read
        # One iterable: its items are the calls' arguments as they are; several: zipped
        # into argument tuples, which the workers spread.
        spread = len(iterables) != 1
        inputs: Iterator[Any] = zip(*iterables, strict=False) if spread else iter(iterables[0])
        total = _length(iterables)
        seconds = check_timeout(timeout)
        check_int(chunksize, "chunksize")
        # "auto": twice max_workers in flight and, when ordered, up to _HOLD_PER_WORKER
        # results per worker held while an earlier item is slow (see MapIterator); an int
        # is a strict bound on what is read ahead. 0 is refused, as by the stdlib's map.
        hold = 0
        if buffersize == "auto":
            buffersize = 2 * self._core.max_workers
            hold = _HOLD_PER_WORKER * self._core.max_workers
        elif buffersize is not None:
            check_buffersize(buffersize)  # the stdlib's words (and "auto" is ours)
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
                description="Worker.process" if fn is PROCESS else describe_callable(fn),
            )
            run.progress = shown
        self._core.feed_map(run, 0, first)
        lazy_inputs = inputs if buffersize is not None else None
        # A lazy map keeps its pool alive to feed it; an eager one does not, as with the
        # stdlib (a pool dropped after map() still finishes the calls, then its threads end).
        owner = self if lazy_inputs is not None else None
        return MapIterator(
            self._core,
            run,
            lazy_inputs,
            len(first),
            deadline,
            ordered=ordered,
            owner=owner,
            hold=hold if lazy_inputs is not None else 0,
        )

    def put(self, item: In) -> Future[Out]:
        """Give ``item`` to the pool's workers; one of them runs ``process(item)``.

        Needs a pool made with ``worker=``. Backpressure applies as for ``submit()``.

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
            return core.submit_hooked(PROCESS, (item,), {})  # type: ignore[return-value]
        fut: TaskFuture[Out] = TaskFuture()
        core.submit((fut, PROCESS, (item,), {}, contextvars.copy_context()))
        return fut

    def process(
        self,
        items: Iterable[In],
        *,
        ordered: bool = True,
        buffersize: BufferSize = "auto",
        chunksize: int = 1,
        timeout: float | None = None,
        progress: ProgressArg = False,
    ) -> MapIterator[Out]:
        """Run ``process`` on every item and yield the results; lazy and bounded.

        Needs a pool made with ``worker=``. Input is read as results are consumed.

        With ``buffersize="auto"`` (the default) twice ``max_workers`` items are in
        flight; when ``ordered``, a slow item does not hold up the others: while it runs,
        up to 32 finished results per worker are kept for their turn and as many new
        items started. Memory is then bounded by those results; pass an ``int`` to bound
        what is read ahead strictly (one slow item then idles the workers once the window
        is full), or ``ordered=False`` to take results as they come.

        Args:
            items: The items, any iterable (an endless generator is fine).
            ordered: Yield results in input order (``True``) or as they complete.
            buffersize: ``"auto"`` as described above, the most items read ahead of the
                results you have taken (an ``int`` >= 1), or ``None`` to read all input
                at the call.
            chunksize: Items a worker takes at once.
            timeout: Seconds, from this call, that the whole iteration may take.
            progress: A progress bar, as for ``map()``.

        Returns:
            An iterator of results. An item's exception is raised when its turn comes;
            closing the iterator early cancels the items that have not started.

        Raises:
            TypeError: The pool was made without ``worker=``.
            ValueError: Bad ``buffersize``, ``chunksize`` or ``timeout``.
            PoolShutDown: The pool is shut down.
        """
        self._need_worker("process")
        return self._map(
            PROCESS, (items,), timeout, chunksize, buffersize, ordered=ordered, progress=progress
        )

    # -- awaiting from asyncio (the bridge lives in _aio) --------------------------------

    def run(
        self, fn: Callable[P, T], /, *args: P.args, **kwargs: P.kwargs
    ) -> Coroutine[Any, Any, T]:
        """Run ``fn(*args, **kwargs)`` on the pool; await the returned coroutine for its result.

        For asyncio code, like ``asyncio.to_thread`` but on this pool, and with a
        cancellation that reaches the thread: the job runs with its own cancel token (a
        child of ``cancel_token``), which it finds with ``current_token``. If the
        awaiting task is cancelled (a timeout, a ``TaskGroup``, a client gone) before the
        job starts, the job is cancelled and never runs; if it is running, its token is
        cancelled and the task waits, without blocking the loop, up to the pool's
        ``shutdown_grace`` for it to return, then raises ``CancelledError`` as asyncio
        expects. A job still running then is logged on the ``threadkit`` logger, counts
        as busy in ``statistics`` until it returns, and a shutdown lists it among
        the stragglers. A second cancellation ends the grace early.

        The job runs in a copy of the awaiting task's ``contextvars`` context. The event
        loop never blocks: a full bounded queue raises ``QueueFull`` at once,
        whatever the ``overflow`` policy. Callbacks registered on the job's token run in
        the loop's thread when the awaiting task is cancelled: keep them short.

        For example:

        ```python
        async with asyncio.timeout(5):
            page = await pool.run(fetch, url)
        ```

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

        The awaitable counterpart of ``put``, with cancellation as for ``run``
        (inside ``process``, ``current_token`` is the item's own token; the
        Worker's ``Worker.token`` stays the pool's).

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
            self._submit_nowait, PROCESS, (item,), {}, parent=core.token, grace=self._grace
        )

    def amap(
        self,
        fn: Callable[..., T],
        *iterables: Iterable[Any],
        buffersize: int | Literal["auto"] = "auto",
    ) -> AsyncMapIterator[T]:
        """Call ``fn`` on items of ``iterables`` (zipped); iterate the results with ``async for``.

        Lazy and bounded like ``map(buffersize=...)``: input is read (in the loop's
        thread) as results are consumed, with at most ``buffersize`` jobs in flight
        (``"auto"``, the default, means twice ``max_workers``, as for ``process``).
        Results come in input order; an item's exception is raised when its turn comes
        and ends the iteration.

        Leaving the loop early (``break``, an error, ``AsyncMapIterator.aclose``) or
        cancelling its task cancels the jobs not started and the tokens of the running
        ones, as for ``run``; ``async with pool.amap(...) as results:`` also waits up
        to ``shutdown_grace`` for those. Every job runs in a copy of the context that
        was current at this call, each with its own cancel token.

        Returns:
            An ``AsyncMapIterator`` of the results.

        Raises:
            TypeError: ``fn`` is not callable, or ``buffersize`` is not an int.
            ValueError: ``buffersize`` is below 1.
        """
        if not callable(fn):
            raise TypeError(f"amap() needs a callable, got {fn!r}")
        return self._amap(fn, iterables, buffersize)

    def aprocess(
        self, items: Iterable[In], *, buffersize: int | Literal["auto"] = "auto"
    ) -> AsyncMapIterator[Out]:
        """Run ``process`` on every item; iterate the results with ``async for``.

        The asyncio counterpart of ``process`` (in input order), with the lazy
        input, bounds and cancellation of ``amap``.

        Returns:
            An ``AsyncMapIterator`` of the results.

        Raises:
            TypeError: The pool was made without ``worker=``, or a bad ``buffersize``.
            ValueError: ``buffersize`` is below 1.
        """
        self._need_worker("aprocess")
        return self._amap(PROCESS, (items,), buffersize)

    def _amap(
        self, fn: Any, iterables: tuple[Iterable[Any], ...], buffersize: int | Literal["auto"]
    ) -> AsyncMapIterator[Any]:
        if buffersize == "auto":
            buffersize = 2 * self._core.max_workers
        check_buffersize(buffersize)
        assert buffersize is not None
        spread = len(iterables) != 1
        inputs: Iterator[Any] = zip(*iterables, strict=False) if spread else iter(iterables[0])
        return AsyncMapIterator(
            self._submit_nowait,
            self._core.token,
            self._grace,
            fn,
            inputs,
            spread=spread,
            buffersize=buffersize,
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
            A ``ShutdownReport``: what was cancelled and who is still running.

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
            A ``ShutdownReport`` whose ``dropped`` holds the unstarted tasks.

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
        """The token this pool's tasks see through ``current_token()``.

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

    # -- ThreadPoolExecutor's private attributes that popular code reads ------------------
    # (docs/how-to/migrate-from-threadpoolexecutor.md lists them with their status)

    @property
    def _max_workers(self) -> int:  # type: ignore[override]
        # ThreadPoolExecutor's attribute, read by third-party code that sizes things by it.
        return self._core.max_workers

    @property
    def _threads(self) -> set[threading.Thread]:  # type: ignore[override]
        # A snapshot of the live worker threads (celery reads its size); threads that
        # exited are not in it, and changing the set changes nothing.
        core = self._core
        with core.lock:
            return {ws.thread for ws in core.workers if ws.thread is not None and ws.launched}

    @property
    def _work_queue(self) -> WorkQueueView:  # type: ignore[override]
        # For code that drains the queue at shutdown (google-cloud-pubsub).
        return WorkQueueView(self._take_queued, lambda: self._core.statistics().queued)

    def _take_queued(self) -> QueuedTask | None:
        entry = self._core.take_queued()
        if entry is None:
            return None
        fut, fn, args, kwargs, _ = entry
        return QueuedTask(fut, None if fn is PROCESS else fn, args, kwargs)

    @property
    def _shutdown(self) -> bool:  # type: ignore[override]
        # True once the pool takes no more work (shut down or broken), as in the stdlib.
        return self._core.state != RUNNING

    @property
    def _broken(self) -> str | bool:  # type: ignore[override]
        # The stdlib's value: False, or the message saying why the pool is broken.
        core = self._core
        return core.broken_message if core.state == BROKEN else False

    @property
    def _thread_name_prefix(self) -> str:  # type: ignore[override]
        return self._core.prefix

    @property
    def _initializer(self) -> Callable[..., object] | None:  # type: ignore[override]
        return self._core.initializer

    @property
    def _initargs(self) -> tuple[Any, ...]:  # type: ignore[override]
        return self._core.initargs

    @property
    def _idle_semaphore(self) -> NoReturn:  # type: ignore[override]
        raise AttributeError(
            "WorkerPool has no _idle_semaphore (a ThreadPoolExecutor internal); "
            "statistics().idle counts the idle workers"
        )

    @property
    def _shutdown_lock(self) -> NoReturn:  # type: ignore[override]
        raise AttributeError(
            "WorkerPool has no _shutdown_lock (a ThreadPoolExecutor internal); shutdown() "
            "is safe to call from any thread, and submit() after it raises PoolShutDown"
        )

    def statistics(self) -> PoolStatistics:
        """Return a consistent snapshot of the pool's counters (see ``PoolStatistics``)."""
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
