"""The asyncio bridge: await a job on a pool, and let a cancellation reach its thread.

``asyncio.to_thread`` and ``loop.run_in_executor`` cancel a job only while it waits in
the queue; once it runs, cancelling the awaiting task leaves the thread working to the
end. Here every job gets its own ``CancelToken``, a child of the pool's, which the
job finds with ``current_token()``. Cancelling the awaiting task cancels the job's
future if it has not started (it then never runs), or else cancels the job's token and
waits, without blocking the loop, up to a grace period for the job to return.

Where it stands: below the pool. ``WorkerPool.run``, ``run_process``, ``amap`` and
``aprocess`` delegate here, handing over a *submit* callable (``submit(fn, args,
kwargs)`` returns the job's ``concurrent.futures.Future``, or ``None`` if the queue is
full), the pool's token and the grace. This module works only on the futures that
callable returns, so it knows nothing of the pool's engine.

How a job gets its token: the submit call runs inside a copy of the awaiting task's
context in which the current token is set to the job's token; the pool copies that
context for the job, so the job runs with the awaiting task's context variables (as
with ``asyncio.to_thread``) plus its own token. No wrapper runs in the worker thread.

``asyncio`` is imported where it is used, not with the module: ``import threadkit``
must not cost a program that never uses asyncio the tens of milliseconds that
importing it takes. (The waiter class, which subclasses ``asyncio.Future``, is made on
first use.)

Guarantees:
    * A job not started when its awaiting task is cancelled never runs. Its future is
      cancelled inside ``task.cancel()`` itself (the task waits on a ``_Waiter``),
      so when many tasks are cancelled together their queued jobs are all cancelled
      before any running job stops on its token and frees a worker.
    * Nothing here blocks the event loop's thread: it never waits for a job, nor for
      room in a full queue (a full queue raises ``QueueFull`` instead), and the
      only locks it takes are held for short bookkeeping (a future's condition, a
      token's lock, the pool's intake lock, which at worst covers a thread start),
      never across a job.
    * A job whose awaiting side went away never logs "exception was never retrieved":
      the bridge retrieves its outcome. A job that ignores its token past the grace is
      logged when the grace ends and again when it returns; until then the pool's
      statistics count it as busy and a shutdown lists it among the stragglers.
    * Worker threads reach the loop only through ``call_soon_threadsafe``; a loop closed
      meanwhile is ignored (nobody awaits any more).
"""

from __future__ import annotations

import concurrent.futures as cf
import contextlib
import contextvars
import functools
import logging
import time
from collections import deque
from collections.abc import Callable
from functools import partial
from typing import TYPE_CHECKING, Any, Final, Generic, TypeAlias, TypeVar, final

from ._cancel import CancelToken, set_current_token
from ._errors import Cancelled, QueueFull
from ._reports import describe_callable

if TYPE_CHECKING:
    import asyncio
    from collections.abc import Iterable, Iterator
    from concurrent.futures import Future

    class _Waiter(asyncio.Future[None]):
        jobs: Iterable[tuple[Future[Any], CancelToken, Any]]


__all__ = ["AsyncMapIterator", "Submit", "run_job"]

T = TypeVar("T")

logger = logging.getLogger("threadkit")

#: ``submit(fn, args, kwargs)``: queue a job without waiting; its future, or ``None`` if full.
Submit: TypeAlias = Callable[[Any, tuple[Any, ...], dict[str, Any]], "cf.Future[Any] | None"]

_REASON: Final = "the awaiting task was cancelled"
_NOTHING: Final = object()


def _submit_as(
    token: CancelToken,
    submit: Submit,
    fn: Any,
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
) -> Future[Any] | None:
    # Runs inside a context copy: the pool copies this context, token included, for the job.
    set_current_token(token)
    return submit(fn, args, kwargs)


def _full() -> QueueFull:
    return QueueFull("the pool's queue is full (an event loop never waits for room in it)")


def _wake(waiter: asyncio.Future[None]) -> None:
    if not waiter.done():
        waiter.set_result(None)


def _notify(loop: asyncio.AbstractEventLoop, waiter: asyncio.Future[None], _: object) -> None:
    """A job's done-callback, in the worker thread: wake the waiter on its loop."""
    try:  # noqa: SIM105 - the hot path: a try costs nothing, contextlib.suppress does
        loop.call_soon_threadsafe(_wake, waiter)
    except RuntimeError:  # the loop is closed: nobody awaits this job any more
        pass


def _new_waiter(
    loop: asyncio.AbstractEventLoop, jobs: Iterable[tuple[Future[Any], CancelToken, Any]]
) -> _Waiter:
    waiter: _Waiter = _define_waiter()(loop=loop)
    waiter.jobs = jobs
    return waiter


@functools.cache  # made on first use, once: importing threadkit does not import asyncio
def _define_waiter() -> Any:  # type[_Waiter], which mypy cannot see in this body
    import asyncio

    class Waiter(asyncio.Future[None]):
        """What an awaiting task waits on; woken when a job is done.

        Cancelling the task cancels this future, synchronously, inside
        ``task.cancel()``. At that moment it cancels the futures of its jobs that have
        not started, before the task's coroutine runs again: cancelling many tasks (a
        ``TaskGroup``, a loop of ``cancel()`` calls) thus cancels all their queued jobs
        at once, before the first running job stops on its token and frees a worker
        that would take one of them.
        """

        __slots__ = ("jobs",)

        jobs: Iterable[tuple[Future[Any], CancelToken, Any]]

        def cancel(self, msg: Any = None) -> bool:
            for job in self.jobs:
                job[0].cancel()  # thread-safe, never blocks: an unstarted job never runs
            return super().cancel(msg)

    return Waiter


def _describe(fn: object) -> str:
    # Worker pools pass a stand-in that is not callable for the thread's own process().
    return describe_callable(fn) if callable(fn) else "Worker.process"


def _outcome(cfut: Future[T]) -> T:
    """The result of a finished job, as awaiting ``asyncio.wrap_future`` would give it."""
    try:
        return cfut.result()
    except cf.CancelledError:
        if cfut.cancelled():  # the pool cancelled it (a cancelling shutdown)
            import asyncio

            raise asyncio.CancelledError from None
        raise


async def run_job(
    submit: Submit,
    fn: Any,
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
    *,
    parent: CancelToken,
    grace: float | None,
) -> Any:
    """Submit ``fn(*args, **kwargs)`` with a token of its own and await its outcome.

    The awaiting task being cancelled settles the job (see ``_settle``) before the
    ``CancelledError`` goes on.
    """
    import asyncio  # a dictionary lookup once imported (see the module's docstring)

    loop = asyncio.get_running_loop()
    token = CancelToken(parent)
    cfut = contextvars.copy_context().run(_submit_as, token, submit, fn, args, kwargs)
    if cfut is None:
        raise _full()
    jobs = ((cfut, token, fn),)
    waiter = _new_waiter(loop, jobs)
    cfut.add_done_callback(partial(_notify, loop, waiter))
    try:
        await waiter
    except asyncio.CancelledError:
        await _settle(loop, jobs, grace)
        raise
    finally:
        # The future's callback holds the waiter: without this, future -> waiter ->
        # future is a cycle that keeps the job's token alive until the collector runs.
        waiter.jobs = ()
    return _outcome(cfut)


# -- settling jobs whose awaiting side went away ----------------------------------------


@final
class _Countdown:
    """Wakes ``waiter`` on its loop once ``left`` jobs have finished."""

    __slots__ = ("left", "loop", "waiter")

    def __init__(self, loop: asyncio.AbstractEventLoop, left: int) -> None:
        self.loop = loop
        self.left = left
        self.waiter: asyncio.Future[None] = loop.create_future()

    def job_done(self, _: object) -> None:  # in the worker thread
        with contextlib.suppress(RuntimeError):  # the loop is closed
            self.loop.call_soon_threadsafe(self._one)

    def _one(self) -> None:
        self.left -= 1
        if self.left <= 0:
            _wake(self.waiter)


def _cancel_jobs(
    jobs: Iterable[tuple[Future[Any], CancelToken, Any]],
) -> list[tuple[Future[Any], Any]]:
    """Cancel each job: its future if not started, else its token; return the started ones.

    Every started job gets a done-callback that takes its outcome, so no failure of a
    job nobody awaits is logged as "never retrieved".
    """
    # Every future first, then the tokens: a running job that stops on its token frees
    # its worker, which must not find a job of this batch still waiting in the queue.
    started = [(cfut, token, fn) for cfut, token, fn in jobs if not cfut.cancel()]
    for cfut, token, _ in started:
        token.cancel(_REASON)
        cfut.add_done_callback(_discard)
    return [(cfut, fn) for cfut, _, fn in started]


def _discard(cfut: Future[Any]) -> None:
    """Take the outcome of a job whose awaiter left; only a real failure is logged (debug)."""
    exc = cfut.exception()
    if exc is not None and not isinstance(exc, Cancelled | cf.CancelledError):
        logger.debug("a job whose awaiting task was cancelled raised %r", exc)


async def _settle(
    loop: asyncio.AbstractEventLoop,
    jobs: Iterable[tuple[Future[Any], CancelToken, Any]],
    grace: float | None,
) -> None:
    """Cancel ``jobs`` and wait, up to ``grace`` seconds in all (``None``: no limit), for
    the started ones.

    Jobs still running then are reported as ignoring their token. A second cancellation
    of the waiting task ends the wait early (the same report is made).
    """
    started = _cancel_jobs(jobs)
    running = [(cfut, fn) for cfut, fn in started if not cfut.done()]
    if not running:
        return
    began = time.monotonic()
    countdown = _Countdown(loop, len(running))
    for cfut, _ in running:
        cfut.add_done_callback(countdown.job_done)
    timer = None if grace is None else loop.call_later(grace, _wake, countdown.waiter)
    try:
        await countdown.waiter
    finally:
        if timer is not None:
            timer.cancel()
        for cfut, fn in running:
            if not cfut.done():
                _report_straggler(cfut, fn, time.monotonic() - began)


def _report_straggler(cfut: Future[Any], fn: Any, waited: float) -> None:
    what = _describe(fn)
    logger.warning(
        "job %s ignores its cancel token: still running %.2f s after its awaiting task "
        "was cancelled; it keeps its worker thread until it returns",
        what,
        waited,
    )
    began = time.monotonic() - waited
    cfut.add_done_callback(partial(_report_late_end, what, began))


def _report_late_end(what: str, began: float, cfut: Future[Any]) -> None:
    exc = None if cfut.cancelled() else cfut.exception()
    logger.info(
        "job %s, which ignored its cancel token, returned %.2f s after its awaiting task "
        "was cancelled%s",
        what,
        time.monotonic() - began,
        "" if exc is None else f" (raising {exc!r})",
    )


# -- async map -------------------------------------------------------------------------


@final
class AsyncMapIterator(Generic[T]):
    """The async iterator returned by ``WorkerPool.amap`` and ``WorkerPool.aprocess``.

    Results come in input order. Input is read lazily, at most ``buffersize`` jobs in
    flight, each with its own cancel token. Leave the loop early with ``break`` (or an
    error), close it with ``aclose``, or cancel its task: the jobs not started are
    cancelled and never run, and the running ones see their token cancelled. Use it as
    ``async with pool.amap(...) as results:`` to also wait, up to the pool's grace, for
    the running ones when the loop ends early.
    """

    # Invariant: every job in ``_jobs`` was accepted by the pool and has not been handed
    # out; closing cancels exactly those (and takes their outcomes), then reads no more.

    __slots__ = (
        "_buffersize",
        "_context",
        "_feed_error",
        "_fn",
        "_grace",
        "_held",
        "_inputs",
        "_jobs",
        "_parent",
        "_spread",
        "_submit",
    )

    def __init__(
        self,
        submit: Submit,
        parent: CancelToken,
        grace: float | None,
        fn: Any,
        inputs: Iterator[Any],
        *,
        spread: bool,
        buffersize: int,
    ) -> None:
        # A bound method of the pool: it keeps the pool alive until the iteration ends.
        self._submit: Submit | None = submit
        self._parent = parent
        self._grace = grace
        self._fn = fn
        self._inputs: Iterator[Any] | None = inputs
        self._spread = spread
        self._buffersize = buffersize
        # One copy for the whole run, as map() takes one: each job gets its own copy of
        # it (with its own token) when submitted.
        self._context = contextvars.copy_context()
        self._jobs: deque[tuple[Future[Any], CancelToken, Any]] = deque()
        self._held: Any = _NOTHING  # an input the full queue refused; submitted next
        self._feed_error: Exception | None = None

    def __aiter__(self) -> AsyncMapIterator[T]:
        return self

    async def __aenter__(self) -> AsyncMapIterator[T]:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    async def __anext__(self) -> T:
        import asyncio

        jobs = self._jobs
        if self._inputs is not None:
            try:
                self._fill()
            except BaseException:
                self.close()
                raise
        if not jobs:
            feed_error, self._feed_error = self._feed_error, None
            self.close()
            if feed_error is not None:
                raise feed_error
            raise StopAsyncIteration
        cfut = jobs[0][0]
        if not cfut.done():
            loop = asyncio.get_running_loop()
            # All of them: cancelling the task cancels every job of this run not started.
            waiter = _new_waiter(loop, jobs)
            cfut.add_done_callback(partial(_notify, loop, waiter))
            try:
                await waiter
            except asyncio.CancelledError:
                await self._aclose(loop)
                raise
        jobs.popleft()
        try:
            return _outcome(cfut)  # type: ignore[no-any-return]
        except BaseException:
            self.close()
            raise

    def _fill(self) -> None:
        """Submit inputs until ``buffersize`` jobs are in flight or the input ends."""
        jobs, submit, fn, parent = self._jobs, self._submit, self._fn, self._parent
        assert submit is not None  # only called while there is input, so not closed
        run = self._context.run
        while len(jobs) < self._buffersize:
            item = self._held
            if item is _NOTHING:
                inputs = self._inputs
                if inputs is None:
                    return
                try:
                    item = next(inputs)
                except StopIteration:
                    self._inputs = None
                    return
                except Exception as exc:
                    # Hand out what is in flight first, as map() does; then raise.
                    self._inputs = None
                    self._feed_error = exc
                    return
            token = CancelToken(parent)
            cfut = run(_submit_as, token, submit, fn, item if self._spread else (item,), {})
            if cfut is None:
                self._held = item  # retried once a job of this run has finished
                if not jobs:
                    raise _full()
                return
            self._held = _NOTHING
            jobs.append((cfut, token, fn))

    def _take_jobs(self) -> list[tuple[Future[Any], CancelToken, Any]]:
        jobs = list(self._jobs)
        self._jobs.clear()
        self._inputs = None
        self._held = _NOTHING
        self._submit = None  # an iterator kept after its end must not keep the pool
        return jobs

    def close(self) -> None:
        """Stop: cancel the jobs not started, cancel the tokens of the running ones.

        Does not wait for the running ones (see ``aclose``); their outcomes are
        discarded. Reads no more input. Calling it again does nothing.
        """
        _cancel_jobs(self._take_jobs())

    async def aclose(self) -> None:
        """Like ``close``, then wait up to the pool's grace for the running jobs.

        Jobs still running then are logged as ignoring their token (they stay busy in
        the pool's statistics until they return).
        """
        import asyncio

        await self._aclose(asyncio.get_running_loop())

    async def _aclose(self, loop: asyncio.AbstractEventLoop) -> None:
        await _settle(loop, self._take_jobs(), self._grace)

    def __del__(self) -> None:
        # Like a generator left by ``break``: what is left is cancelled. (Nothing is
        # submitted before the first ``__anext__``, so an unused iterator has no jobs.)
        if self._jobs:
            self.close()
