"""Map runs: many calls of one function, fed to a pool without a Future per item.

A ``MapRun`` holds its pending items in a deque; the pool's task queue carries one
token (the run itself) per chunk, and a worker that takes a token claims up to
``chunksize`` items with atomic ``popleft`` calls. Results travel back to the one
consuming thread through ``MapIterator``, in input order or as they complete.

Guarantees:
    * Every item fed to the pool ends, for the consumer, as a value, the exception it
      raised, or ``CancelledError``; a consumer never waits on an item that nobody will
      run (shutdown and a broken pool deliver markers for the items they drop).
    * Input is read in the consumer's thread only: all at once at the call (eager, as
      ``Executor.map``) or ``buffersize`` at a time (lazy), never in a worker.
    * Closing the iterator, or dropping it after iteration began, cancels the items that
      have not started; dropping it before the first ``next()`` cancels nothing, so a
      ``map`` called only for its side effects still runs every item.
    * An item that stops by raising ``Cancelled`` for its own cancelled token (the pool's,
      cancelled by a shutdown) counts as cancelled in the pool's statistics, as a task
      does, and hooks see it as cancelled; its consumer still gets that ``Cancelled``.

No Python-level lock is shared: ``pending`` is touched only with single atomic deque
operations, and outcomes reach the consumer through a ``SimpleQueue`` (C-level, and
interruptible by Ctrl-C while the consumer waits); reordering happens in the consumer.
"""

from __future__ import annotations

import contextlib
import itertools
import logging
import threading
import time
from collections import deque
from concurrent.futures import CancelledError
from queue import Empty, SimpleQueue
from typing import TYPE_CHECKING, Any, Generic, NoReturn, Protocol, TypeVar

from ._cancel import stopped_by_own_token
from ._hooks import emit
from ._reports import TaskEvent, describe_callable
from ._waiting import get_interruptibly
from ._worker import CANCELLED, FAILED, OK, PROCESS

if TYPE_CHECKING:
    import contextvars
    from collections.abc import Callable, Iterator

    from ._hooks import HookSet
    from ._progress import Progress

__all__ = ["Batch", "MapEngine", "MapIterator", "MapRun", "count"]

T = TypeVar("T")

logger = logging.getLogger("threadkit")


class MapEngine(Protocol):
    """What a map's iterator needs of the pool's engine (``_core.Core`` provides it)."""

    def feed_map(self, run: MapRun, start: int, calls: list[Any]) -> None:
        """Add items ``start``, ``start + 1``, ... to ``run`` and have workers take them."""

    def cancel_map(self, run: MapRun) -> None:
        """Cancel the items of ``run`` that have not started; takes no lock."""


# (index of the first item, each item's call) for consecutive items of a run. A call is
# the item's one argument, or the tuple of its arguments in a run that ``spread``s them.
Chunk = tuple[int, list[Any]]
# (index, kind, value) of one finished item.
Outcome = tuple[int, int, Any]
# What an item failed with: its exception, or the ``CancelledError`` class itself.
Error = BaseException | type[CancelledError]


class Batch:
    """The outcomes of a chunk of consecutive items, sent to the consumer in one go.

    ``values[i]`` is item ``start + i``'s result, unless ``errors`` (``None`` when all
    went well) maps ``i`` to what that item failed with.
    """

    __slots__ = ("errors", "start", "values")

    def __init__(self, start: int, values: list[Any], errors: dict[int, Error] | None) -> None:
        self.start = start
        self.values = values
        self.errors = errors


def count(chunks: list[Chunk]) -> int:
    """How many items ``chunks`` hold."""
    return sum(len(calls) for _, calls in chunks)


class MapRun:
    """The shared state of one ``map``/``process`` call."""

    __slots__ = (
        "__weakref__",  # the pool keeps its runs in a WeakSet
        "chunksize",
        "ctx",
        "event_fn",
        "fn",
        "hooks",
        "map_id",
        "out",
        "pending",
        "progress",
        "spread",
    )

    def __init__(
        self,
        fn: Callable[..., Any],
        ctx: contextvars.Context,
        *,
        spread: bool,
        chunksize: int,
        hooks: HookSet | None = None,
        map_id: int | None = None,
        progress: Progress | None = None,
    ) -> None:
        self.progress = progress
        self.fn = fn
        self.spread = spread  # calls are argument tuples (a map over several iterables)
        self.ctx = ctx
        self.chunksize = chunksize
        self.hooks = hooks
        self.map_id = map_id
        self.event_fn = None if fn is PROCESS else fn  # the callable hook events name
        self.pending: deque[Chunk] = deque()  # single atomic operations only
        # Workers -> the consumer: one outcome, or a Batch for a larger chunk.
        self.out: SimpleQueue[Outcome | Batch] = SimpleQueue()

    def args(self, call: Any) -> tuple[Any, ...]:
        """The positional arguments of one call."""
        return call if self.spread else (call,)

    def add(self, start: int, calls: list[Any]) -> int:
        """Queue the items ``start``, ``start + 1``, ... in chunks; return how many chunks."""
        size = self.chunksize
        if size == 1 or len(calls) == 1:
            self.pending.extend([(start + i, [args]) for i, args in enumerate(calls)])
            return len(calls)
        chunks = [(start + i, calls[i : i + size]) for i in range(0, len(calls), size)]
        self.pending.extend(chunks)
        return len(chunks)

    def claim(self) -> Chunk | None:
        """Take the next chunk of items (``None`` if others took them all)."""
        try:
            return self.pending.popleft()
        except IndexError:
            return None

    def take_all(self) -> list[Chunk]:
        """Remove and return every pending chunk (for cancellation)."""
        popleft = self.pending.popleft
        chunks: list[Chunk] = []
        with contextlib.suppress(IndexError):
            while True:
                chunks.append(popleft())
        return chunks

    def run_chunk(self, chunk: Chunk, worker: Any) -> tuple[int, int, int]:
        """Run ``chunk`` in the calling worker; return (completed, failed, cancelled) counts.

        ``worker`` is the thread's Worker object (or ``None``); it runs ``PROCESS`` runs.
        A chunk of several items runs in one copy of the caller's context, its calls made
        from C (``map`` consumed by ``list.extend``), which is what makes a large
        ``chunksize`` cheap; an item that raises leaves the items before it done, and the
        same iterator carries on with the items after it.

        An item that raised ``Cancelled`` for its own cancelled token is counted as
        cancelled, as a task is (``stopped_by_own_token``); it is looked at only on the
        exception path. The consumer still gets the ``Cancelled`` it raised.
        """
        start, calls = chunk
        fn = self.fn
        if fn is PROCESS:
            fn = worker.process
        else:
            worker = None
        if self.hooks is not None:
            return self._run_hooked(start, calls, fn, worker)
        if len(calls) == 1:  # the common case (chunksize=1): no Batch for one outcome
            args = calls[0] if self.spread else (calls[0],)
            ctx = self.ctx.copy()
            try:
                self.out.put((start, OK, ctx.run(fn, *args)))
            except BaseException as exc:
                if worker is not None and isinstance(exc, Exception):
                    worker._tk_on_error(args[0], exc)
                self.out.put((start, FAILED, exc))
                if self.progress is not None:
                    self.report(0, 1)
                if stopped_by_own_token(exc, ctx):
                    return 0, 0, 1
                return 0, 1, 0
            if self.progress is not None:
                self.report(1, 0)
            return 1, 0, 0
        values: list[Any] = []
        errors: dict[int, Error] | None = None
        cancelled = 0
        todo = itertools.starmap(fn, calls) if self.spread else map(fn, calls)
        ctx = self.ctx.copy()
        run_in_context = ctx.run
        extend = values.extend
        while True:
            try:
                run_in_context(extend, todo)
            except BaseException as exc:
                error: BaseException = exc
            else:
                if len(values) == len(calls):
                    break
                # The call raised StopIteration, which extend() took for the end of the
                # calls: the original is gone, so say what happened (as PEP 479 does).
                error = RuntimeError("the mapped function raised StopIteration")
            offset = len(values)
            if worker is not None and isinstance(error, Exception):
                worker._tk_on_error(self.args(calls[offset])[0], error)
            if stopped_by_own_token(error, ctx):
                cancelled += 1
            values.append(None)
            if errors is None:
                errors = {}
            errors[offset] = error
        self.out.put(Batch(start, values, errors))
        failed = 0 if errors is None else len(errors)
        if self.progress is not None:
            self.report(len(calls) - failed, failed)
        return len(calls) - failed, failed - cancelled, cancelled

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
        self, start: int, calls: list[Any], fn: Callable[..., Any], worker: Any
    ) -> tuple[int, int, int]:
        """``run_chunk`` for a pool with hooks: the same, one item at a time, reported.

        An item stopped by its own token is reported to ``task_cancelled`` (with its
        duration and exception), as a task is.
        """
        hooks = self.hooks
        assert hooks is not None
        ctx = self.ctx.copy()
        run_in_context = ctx.run
        thread = threading.current_thread().name
        shown, map_id = self.event_fn, self.map_id
        values: list[Any] = []
        errors: dict[int, Error] = {}
        cancelled = 0
        for index, call in enumerate(calls, start):
            args = self.args(call)
            if hooks.started is not None:
                emit(hooks.started, TaskEvent(index, shown, thread, map_id=map_id))
            started = time.monotonic()
            try:
                value = run_in_context(fn, *args)
            except BaseException as exc:
                if worker is not None and isinstance(exc, Exception):
                    worker._tk_on_error(args[0], exc)
                own = stopped_by_own_token(exc, ctx)  # as in run_chunk
                if own:
                    cancelled += 1
                method = hooks.cancelled if own else hooks.failed
                if method is not None:
                    elapsed = time.monotonic() - started
                    emit(method, TaskEvent(index, shown, thread, elapsed, exc, map_id))
                errors[index - start] = exc
                value = None
            else:
                if hooks.finished is not None:
                    elapsed = time.monotonic() - started
                    emit(hooks.finished, TaskEvent(index, shown, thread, elapsed, map_id=map_id))
            values.append(value)
        self.out.put(Batch(start, values, errors or None))
        if self.progress is not None:
            self.report(len(calls) - len(errors), len(errors))
        return len(calls) - len(errors), len(errors) - cancelled, cancelled

    def emit_unstarted(self, chunks: list[Chunk], error: BaseException | None = None) -> None:
        """Report items that will never start (pools with hooks): cancelled, or failed
        with ``error`` (the pool broke)."""
        hooks = self.hooks
        method = None if hooks is None else hooks.cancelled if error is None else hooks.failed
        if method is None:
            return
        thread = threading.current_thread().name
        for start, calls in chunks:
            for index in range(start, start + len(calls)):
                emit(method, TaskEvent(index, self.event_fn, thread, None, error, self.map_id))

    def poison(self, exc: BaseException) -> None:
        """Make the consumer raise ``exc`` at once (the pool can never finish the run)."""
        self.out.put(Batch(-1, [None], {0: exc}))

    def end_unstarted(self, chunks: list[Chunk], error: BaseException | None = None) -> int:
        """End items that will never run: cancelled, or failed with ``error`` (the pool
        broke); report them to hooks, and return how many there were."""
        ending: Error = CancelledError if error is None else error
        for start, calls in chunks:
            size = len(calls)
            self.out.put(Batch(start, [None] * size, dict.fromkeys(range(size), ending)))
        self.emit_unstarted(chunks, error)
        return count(chunks)


_NOTHING: deque[Any] = deque(maxlen=0)  # always empty: the fast path of a lazy iterator


def _raise_item_error(error: Error) -> NoReturn:
    if isinstance(error, StopIteration):
        # Raised from __next__ it would end the caller's loop silently; a generator
        # (the stdlib's map) turns it into RuntimeError, and so does this.
        raise RuntimeError("the mapped function raised StopIteration") from error
    raise error


class MapIterator(Generic[T]):
    """The iterator returned by ``map``, ``map_unordered`` and ``process``.

    Iterate it for the results; call ``close()`` (or leave a ``with`` block) to cancel
    the items that have not started.
    """

    # Results that arrived in order wait in ``_ready`` as plain values, and ``__next__``
    # starts with one C-level ``popleft``: yielding a result costs about one Python call.
    # Everything else (waiting, reordering, errors, feeding a lazy map) happens in
    # ``_next_slow`` when ``_ready`` is empty; it moves every outcome already delivered,
    # not just the next one. A lazy iterator must feed one input per result it yields,
    # so its fast path looks at an always-empty deque instead until its input runs out.

    __slots__ = (
        "_advance",
        "_core",
        "_deadline",
        "_error",
        "_fast",
        "_feed_error",
        "_hold",
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
        core: MapEngine,
        run: MapRun,
        inputs: Iterator[Any] | None,
        fed: int,
        deadline: float | None,
        *,
        ordered: bool,
        owner: object = None,
        hold: int = 0,
    ) -> None:
        # The pool object itself, so that ``for r in WorkerPool(...).process(items)`` keeps
        # its pool alive (an unreferenced pool shuts down) until the iteration ends.
        self._owner = owner
        self._core: MapEngine | None = core
        self._run = run
        self._ordered = ordered
        self._ready: deque[Any] = deque()  # results to yield next, in order
        self._fast = _NOTHING if inputs is not None else self._ready
        self._error: Error | None = None  # raised once ``_ready`` is empty
        self._feed_error: Exception | None = None  # raised once what is in flight is out
        self._stash: dict[int, Outcome | Batch] = {}  # ordered: outcomes that came early
        self._want = 0  # ordered: the index to yield next
        self._inputs = inputs  # None once exhausted (or for an eager map)
        self._next_index = fed
        self._unfinished = fed  # items fed and not yet moved to ``_ready``
        self._deadline = deadline
        self._started = False
        # Ordered and lazy: while the next result is late, each later one that arrives
        # may feed one more input ahead of time, up to ``hold`` results held, so one slow
        # item does not idle every worker (head-of-line blocking). ``_advance`` counts
        # those feeds, which the yields of the held results then do not repeat.
        self._hold = hold if ordered else 0
        self._advance = 0

    def __repr__(self) -> str:
        # Reading only, without the pool's lock: a snapshot good enough for a log line.
        fn = self._run.event_fn
        shown = "Worker.process" if fn is None else describe_callable(fn)
        if self._core is None:
            state = "done"  # exhausted or closed
        else:
            state = "reading input" if self._inputs is not None else "input read"
        return (
            f"<threadkit.MapIterator {shown} {'ordered' if self._ordered else 'unordered'}"
            f" {state} in_flight={self._unfinished} ready={len(self._ready)}"
            f" at {id(self):#x}>"
        )

    def __iter__(self) -> MapIterator[T]:
        return self

    def __enter__(self) -> MapIterator[T]:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __next__(self) -> T:
        fast = self._fast
        if fast:
            return fast.popleft()  # type: ignore[no-any-return]
        return self._next_slow()

    def _next_slow(self) -> T:
        self._started = True
        ready = self._ready
        while not ready:
            error = self._error
            if error is not None:
                self.close()
                _raise_item_error(error)
            if self._core is None:
                raise StopIteration
            if self._unfinished == 0 and not self._feed():
                feed_error, self._feed_error = self._feed_error, None
                self._finish()
                if feed_error is not None:
                    raise feed_error
                raise StopIteration
            try:
                self._fill()
            except BaseException:
                self.close()
                raise
        value = ready.popleft()
        if self._advance:
            self._advance -= 1  # this result's input was fed while it waited
        elif self._inputs is not None:
            try:
                self._feed()
            except Exception as exc:
                # The input or the pool failed; this result is still good, and so are
                # those in flight: hand them out, raise once they are done.
                self._end_inputs()
                self._feed_error = exc
            except BaseException:
                self.close()
                raise
        return value  # type: ignore[no-any-return]

    def _fill(self) -> None:
        """Wait until an outcome can be yielded (or raised); move it to ``_ready``, with
        every outcome already delivered, so the fast path hands those out."""
        deadline = self._deadline
        out = self._run.out
        get = out.get
        stash = self._stash
        ready = self._ready
        while True:
            if not ready:
                try:
                    if deadline is None:
                        batch = get_interruptibly(get, None)
                    else:
                        batch = get_interruptibly(get, max(0.0, deadline - time.monotonic()))
                except Empty:
                    raise TimeoutError("map results were not ready before the timeout") from None
            elif out.empty():
                return
            else:
                batch = out.get_nowait()  # this thread is the only consumer: it is there
            start = batch[0] if isinstance(batch, tuple) else batch.start
            if start < 0:  # poisoned: the pool can never finish this run
                self._take(batch)
                return
            if not self._ordered:
                self._take(batch)
            elif start != self._want:
                stash[start] = batch
                if self._advance < self._hold and self._inputs is not None:
                    self._feed_ahead()
            else:
                self._take(batch)
                while self._error is None and self._want in stash:
                    self._take(stash.pop(self._want))
            if self._error is not None:
                return

    def _feed_ahead(self) -> None:
        """Feed one input while an early result waits in the stash (see ``_hold``)."""
        try:
            if self._feed():
                self._advance += 1
        except Exception as exc:
            # As in _next_slow: what is in flight is still good; raise once it is out.
            self._end_inputs()
            self._feed_error = exc

    def _take(self, batch: Outcome | Batch) -> None:
        """Move ``batch``'s results to ``_ready``, up to its first error (kept to raise)."""
        if type(batch) is tuple:
            index, kind, value = batch
            self._want = index + 1
            self._unfinished -= 1
            if kind == OK:
                self._ready.append(value)
            else:
                self._error = CancelledError if kind == CANCELLED else value
            return
        assert isinstance(batch, Batch)
        values, errors = batch.values, batch.errors
        if errors is None:
            self._ready.extend(values)
            taken = len(values)
        else:
            first = min(errors)
            self._ready.extend(values[:first])
            self._error = errors[first]
            taken = first + 1
        self._want = batch.start + taken
        self._unfinished -= taken

    def _feed(self) -> bool:
        """Read one more input item and hand it to the pool; ``False`` if none is left."""
        inputs = self._inputs
        if inputs is None or self._core is None:
            return False
        try:
            args = next(inputs)
        except StopIteration:
            self._end_inputs()
            self._run.call_progress("set_total", self._next_index)
            return False
        index = self._next_index
        self._next_index += 1
        self._core.feed_map(self._run, index, [args])
        self._unfinished += 1
        return True

    def _end_inputs(self) -> None:
        """No more input: from now on results are yielded straight from ``_ready``."""
        self._inputs = None
        self._fast = self._ready

    def _finish(self) -> None:
        self._run.call_progress("close")
        self._run.progress = None  # closed: late chunks no longer report to it
        self._core = None
        self._owner = None
        self._inputs = None
        self._error = None
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
