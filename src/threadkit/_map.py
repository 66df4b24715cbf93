"""Map runs: many calls of one function, fed to a pool without a Future per item.

A :class:`MapRun` holds its pending items in a deque; the pool's task queue carries one
token (the run itself) per chunk, and a worker that takes a token claims up to
``chunksize`` items with atomic ``popleft`` calls. Results travel back to the one
consuming thread through :class:`MapIterator`, in input order or as they complete.

Guarantees:
    * Every item fed to the pool ends, for the consumer, as a value, the exception it
      raised, or ``CancelledError``; a consumer never waits on an item that nobody will
      run (shutdown and a broken pool deliver markers for the items they drop).
    * Input is read in the consumer's thread only: all at once at the call (eager, as
      ``Executor.map``) or ``buffersize`` at a time (lazy), never in a worker.
    * Closing the iterator, or dropping it after iteration began, cancels the items that
      have not started; dropping it before the first ``next()`` cancels nothing, so a
      ``map`` called only for its side effects still runs every item.

No Python-level lock is shared: ``pending`` is touched only with single atomic deque
operations, and outcomes reach the consumer through a ``SimpleQueue`` (C-level, and
interruptible by Ctrl-C while the consumer waits); reordering happens in the consumer.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections import deque
from concurrent.futures import CancelledError
from queue import Empty, SimpleQueue
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from ._futures import describe_callable
from ._hooks import emit
from ._reports import TaskEvent
from ._waiting import get_interruptibly

if TYPE_CHECKING:
    import contextvars
    from collections.abc import Callable, Iterator

    from ._hooks import HookSet
    from ._pool import _Core
    from ._progress import Progress

__all__ = ["CANCELLED", "FAILED", "OK", "PROCESS", "MapIterator", "MapRun"]

T = TypeVar("T")

logger = logging.getLogger("threadkit")

OK, FAILED, CANCELLED = 0, 1, 2

# Stands in for the running thread's own Worker.process, in map runs and task entries.
PROCESS: Any = object()

# (index, args) of one item waiting in a run.
Item = tuple[int, tuple[Any, ...]]
# (index, kind, value) of one finished item.
Outcome = tuple[int, int, Any]


class MapRun:
    """The shared state of one ``map``/``process`` call."""

    __slots__ = (
        "chunksize",
        "ctx",
        "fn",
        "hooks",
        "map_id",
        "name",
        "out",
        "pending",
        "progress",
    )

    def __init__(
        self,
        fn: Callable[..., Any],
        ctx: contextvars.Context,
        *,
        chunksize: int,
        hooks: HookSet | None = None,
        map_id: int | None = None,
        progress: Progress | None = None,
    ) -> None:
        self.progress = progress
        self.fn = fn
        self.ctx = ctx
        self.chunksize = chunksize
        self.hooks = hooks
        self.map_id = map_id
        self.name = (
            "" if hooks is None else ("Worker.process" if fn is PROCESS else describe_callable(fn))
        )
        self.pending: deque[list[Item]] = deque()  # chunks; single atomic operations only
        # Workers -> the consumer: one outcome, or a list of them for a larger chunk.
        self.out: SimpleQueue[Outcome | list[Outcome]] = SimpleQueue()

    def add(self, items: list[Item]) -> int:
        """Queue ``items`` in chunks; return how many chunks that made."""
        size = self.chunksize
        if size == 1:
            self.pending.extend([item] for item in items)
            return len(items)
        chunks = [items[i : i + size] for i in range(0, len(items), size)]
        self.pending.extend(chunks)
        return len(chunks)

    def claim(self) -> list[Item]:
        """Take the next chunk of items (empty if others took them all)."""
        try:
            return self.pending.popleft()
        except IndexError:
            return []

    def take_all(self) -> list[Item]:
        """Remove and return every pending item (for cancellation)."""
        popleft = self.pending.popleft
        items: list[Item] = []
        with contextlib.suppress(IndexError):
            while True:
                items.extend(popleft())
        return items

    def run_chunk(self, chunk: list[Item], worker: Any) -> tuple[int, int]:
        """Run ``chunk`` in the calling worker; return (completed, failed) counts.

        ``worker`` is the thread's Worker object (or ``None``); it runs ``PROCESS`` runs.
        """
        ctx = self.ctx
        fn = self.fn
        if fn is PROCESS:
            fn = worker.process
        else:
            worker = None
        if self.hooks is not None:
            return self._run_hooked(chunk, fn, worker)
        if len(chunk) == 1:  # the common case (chunksize=1): no list for one outcome
            index, args = chunk[0]
            try:
                self.out.put((index, OK, ctx.copy().run(fn, *args)))
            except BaseException as exc:
                if worker is not None and isinstance(exc, Exception):
                    worker._tk_on_error(args[0], exc)
                self.out.put((index, FAILED, exc))
                if self.progress is not None:
                    self.report(0, 1)
                return 0, 1
            if self.progress is not None:
                self.report(1, 0)
            return 1, 0
        outcomes: list[Outcome] = []
        append = outcomes.append
        failed = 0
        for index, args in chunk:
            try:
                append((index, OK, ctx.copy().run(fn, *args)))
            except BaseException as exc:
                if worker is not None and isinstance(exc, Exception):
                    worker._tk_on_error(args[0], exc)
                append((index, FAILED, exc))
                failed += 1
        self.out.put(outcomes)
        if self.progress is not None:
            self.report(len(chunk) - failed, failed)
        return len(chunk) - failed, failed

    def report(self, completed: int, failed: int) -> None:
        """Advance the progress display as items complete."""
        if completed:
            self.call_progress("advance", completed)
        if failed:
            self.call_progress("advance", failed, failed=True)

    def call_progress(self, method: str, *args: Any, **kwargs: Any) -> None:
        """Call the progress display, if any; one that raises is logged and turned off.

        A user's own ``Progress`` object may raise: it must never break the map.
        """
        progress = self.progress
        if progress is None:
            return
        try:
            getattr(progress, method)(*args, **kwargs)
        except Exception:
            logger.exception("progress display %r failed; it is turned off", progress)
            self.progress = None

    def _run_hooked(
        self, chunk: list[Item], fn: Callable[..., Any], worker: Any
    ) -> tuple[int, int]:
        """``run_chunk`` for a pool with hooks: report each item's start and end."""
        hooks = self.hooks
        assert hooks is not None
        thread = threading.current_thread().name
        name, map_id = self.name, self.map_id
        outcomes: list[Outcome] = []
        failed = 0
        for index, args in chunk:
            if hooks.started is not None:
                emit(hooks.started, TaskEvent(index, name, thread, map_id=map_id))
            started = time.monotonic()
            try:
                value = self.ctx.copy().run(fn, *args)
            except BaseException as exc:
                if worker is not None and isinstance(exc, Exception):
                    worker._tk_on_error(args[0], exc)
                if hooks.failed is not None:
                    elapsed = time.monotonic() - started
                    emit(hooks.failed, TaskEvent(index, name, thread, elapsed, exc, map_id))
                outcomes.append((index, FAILED, exc))
                failed += 1
            else:
                if hooks.finished is not None:
                    elapsed = time.monotonic() - started
                    emit(hooks.finished, TaskEvent(index, name, thread, elapsed, map_id=map_id))
                outcomes.append((index, OK, value))
        self.out.put(outcomes)
        if self.progress is not None:
            self.report(len(chunk) - failed, failed)
        return len(chunk) - failed, failed

    def emit_cancelled(self, items: list[Item]) -> None:
        """Report items removed before they started (pools with hooks)."""
        hooks = self.hooks
        if hooks is None or hooks.cancelled is None:
            return
        thread = threading.current_thread().name
        for index, _ in items:
            emit(hooks.cancelled, TaskEvent(index, self.name, thread, map_id=self.map_id))

    def poison(self, exc: BaseException) -> None:
        """Make the consumer raise ``exc`` at once (the pool can never finish the run)."""
        self.out.put([(-1, FAILED, exc)])

    def deliver(self, outcomes: list[Outcome]) -> None:
        """Hand outcomes decided elsewhere (cancelled, pool broken) to the consumer."""
        if outcomes:
            self.out.put(outcomes)


class MapIterator(Generic[T]):
    """The iterator returned by ``map``, ``map_unordered`` and ``process``.

    Iterate it for the results; call :meth:`close` (or leave a ``with`` block) to cancel
    the items that have not started.
    """

    __slots__ = (
        "_core",
        "_deadline",
        "_feed_error",
        "_inputs",
        "_next_index",
        "_ordered",
        "_owner",
        "_ready",
        "_run",
        "_started",
        "_stash",
        "_unfinished",
        "_want",
    )

    def __init__(
        self,
        core: _Core,
        run: MapRun,
        inputs: Iterator[tuple[Any, ...]] | None,
        fed: int,
        deadline: float | None,
        *,
        ordered: bool,
        owner: object = None,
    ) -> None:
        # The pool object itself, so that ``for r in WorkerPool(...).process(items)`` keeps
        # its pool alive (an unreferenced pool shuts down) until the iteration ends.
        self._owner = owner
        self._core: _Core | None = core
        self._run = run
        self._ordered = ordered
        self._ready: deque[tuple[int, Any]] = deque()  # outcomes to yield next, in order
        self._feed_error: Exception | None = None  # raised once what is in flight is out
        self._stash: dict[int, tuple[int, Any]] = {}  # ordered: outcomes that came early
        self._want = 0  # ordered: the index to yield next
        self._inputs = inputs  # None once exhausted (or for an eager map)
        self._next_index = fed
        self._unfinished = fed  # items fed and not yet yielded
        self._deadline = deadline
        self._started = False

    def __iter__(self) -> MapIterator[T]:
        return self

    def __enter__(self) -> MapIterator[T]:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __next__(self) -> T:
        ready = self._ready
        if not ready:
            self._started = True
            if self._core is None:
                raise StopIteration
            if self._unfinished == 0 and not self._feed():
                error, self._feed_error = self._feed_error, None
                self._finish()
                if error is not None:
                    raise error
                raise StopIteration
            try:
                self._fill()
            except BaseException:
                self.close()
                raise
        kind, value = ready.popleft()
        self._unfinished -= 1
        if kind == OK:
            if self._inputs is not None:
                try:
                    self._feed()
                except Exception as exc:
                    # The input or the pool failed; this result is still good, and so
                    # are those in flight: hand them out, raise once they are done.
                    self._inputs = None
                    self._feed_error = exc
                except BaseException:
                    self.close()
                    raise
            return value  # type: ignore[no-any-return]
        self.close()
        if kind == CANCELLED:
            raise CancelledError
        raise value

    def _fill(self) -> None:
        """Wait until the next outcome to yield arrives; move it (and followers) to ready."""
        deadline = self._deadline
        get = self._run.out.get
        ready = self._ready
        stash = self._stash
        while True:
            try:
                if deadline is None:
                    batch = get_interruptibly(get, None)
                else:
                    batch = get_interruptibly(get, max(0.0, deadline - time.monotonic()))
            except Empty:
                raise TimeoutError("map results were not ready before the timeout") from None
            if isinstance(batch, tuple):
                index, kind, value = batch
                if index < 0:
                    raise value  # poisoned: the pool can never finish this run
                if not self._ordered or index == self._want:
                    ready.append((kind, value))
                    if self._ordered:
                        want = self._want + 1
                        while want in stash:
                            ready.append(stash.pop(want))
                            want += 1
                        self._want = want
                    return
                stash[index] = (kind, value)
                continue
            outcomes: list[Outcome] = batch
            if not self._ordered:
                if outcomes and outcomes[0][0] < 0:
                    raise outcomes[0][2]  # poisoned: the pool can never finish this run
                ready.extend([(kind, value) for _, kind, value in outcomes])
                return
            for index, kind, value in outcomes:
                if index < 0:
                    raise value  # poisoned: the pool can never finish this run
                stash[index] = (kind, value)
            want = self._want
            while want in stash:
                ready.append(stash.pop(want))
                want += 1
            self._want = want
            if ready:
                return

    def _feed(self) -> bool:
        """Read one more input item and hand it to the pool; ``False`` if none is left."""
        inputs = self._inputs
        if inputs is None or self._core is None:
            return False
        try:
            args = next(inputs)
        except StopIteration:
            self._inputs = None
            self._run.call_progress("set_total", self._next_index)
            return False
        index = self._next_index
        self._next_index += 1
        self._core.feed_map(self._run, [(index, args)])
        self._unfinished += 1
        return True

    def _finish(self) -> None:
        self._run.call_progress("close")
        self._run.progress = None  # closed: late chunks no longer report to it
        self._core = None
        self._owner = None
        self._inputs = None
        self._ready.clear()

    def close(self) -> None:
        """Stop iterating: cancel every item that has not started and read no more input.

        Items already running finish; their results are discarded.
        """
        core = self._core
        self._finish()
        if core is not None:
            core.cancel_map(self._run)

    def __del__(self) -> None:
        # Like a generator: finalizing a started iteration cancels what is left; one
        # never started (a map called for its side effects) runs to the end.
        if self._started and self._core is not None:
            self.close()
        elif self._run.progress is not None:
            self._run.call_progress("close")
            self._run.progress = None
