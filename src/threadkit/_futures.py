"""The future type threadkit pools hand out: a ``concurrent.futures.Future`` that never hides.

It differs from its base class in four ways. Three fix ways the standard pool can lose
track of work or errors, and one makes it cheaper:

* ``cancel()`` cancels *and notifies* in one step. The base class only marks the future
  cancelled and leaves the notification of ``wait``/``as_completed`` waiters to the worker
  that eventually dequeues it; if no worker ever does (shutdown, hung workers), those
  waiters hang. Here the worker side claims a future with ``TaskFuture._tk_start()``.
* A done-callback that raises, even a ``BaseException``, is logged on the ``threadkit``
  logger and the remaining callbacks still run; the thread completing the future (a pool
  worker) is never killed by it.
* A failed future whose exception nobody retrieved (``result()`` or ``exception()``) logs
  that exception when it is garbage-collected, like asyncio's "exception was never
  retrieved". Only failed futures pay for this. A future someone tried to ``cancel()``
  (too late: it was running or done) is exempt: its outcome was given up, not lost.

* Its ``_condition`` is a ``_FutureCondition``: one re-entrant lock object that
  creates a real ``threading.Condition`` only when a thread actually waits. A standard
  future allocates about a dozen objects for its condition; with many futures alive,
  that garbage-collector load dominates the cost of a no-op task.

Invariants: the state machine is the base class's (PENDING -> RUNNING -> FINISHED, or
PENDING -> CANCELLED_AND_NOTIFIED), always changed under ``self._condition``; a threadkit
future never rests in the intermediate CANCELLED state.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from concurrent.futures import Future
from concurrent.futures import _base as _cf
from typing import TYPE_CHECKING, Any, TypeVar

from ._locks import RLockBase
from ._reports import describe_callable
from ._waiting import in_main_thread, wait_condition_interruptibly

if TYPE_CHECKING:
    from collections.abc import Callable

__all__ = ["TaskFuture"]

T = TypeVar("T")

logger = logging.getLogger("threadkit")

_PENDING: str = _cf.PENDING
_RUNNING: str = _cf.RUNNING
_CANCELLED: str = _cf.CANCELLED
_NOTIFIED: str = _cf.CANCELLED_AND_NOTIFIED
_FINISHED: str = _cf.FINISHED
_DONE_STATES = frozenset({_CANCELLED, _NOTIFIED, _FINISHED})


class _UnretrievedGuard:
    """Logs a future's exception when dropped, unless the future cleared it first."""

    __slots__ = ("exc", "what")

    def __init__(self, exc: BaseException, what: str) -> None:
        self.exc: BaseException | None = exc
        self.what = what

    def __del__(self) -> None:
        if self.exc is None:  # disarmed: somebody retrieved the exception
            return
        with contextlib.suppress(Exception):  # logging may be torn down at exit
            logger.error(
                "exception of task %s was never retrieved",
                self.what,
                exc_info=(type(self.exc), self.exc, self.exc.__traceback__),
            )


def _light_condition_type() -> Callable[[], Any]:
    """The class of a future's ``_condition``; ``threading.Condition`` if RLock is final."""
    try:

        class _FutureCondition(RLockBase):  # type: ignore[misc]
            """What a future needs of a ``Condition``: an RLock that makes one lazily.

            The standard library uses a future's ``_condition`` only as a lock (``with``,
            ``acquire``, ``release``) and through ``wait`` and ``notify_all``, each called
            with the lock held; so the real Condition, created under the lock by the first
            waiter, is seen by every later ``notify_all``.
            """

            __slots__ = ("_cond",)

            def __init__(self) -> None:
                self._cond: threading.Condition | None = None

            def wait(self, timeout: float | None = None) -> bool:
                cond = self._cond
                if cond is None:
                    cond = self._cond = threading.Condition(self)
                return cond.wait(timeout)

            def notify_all(self) -> None:
                cond = self._cond
                if cond is not None:
                    cond.notify_all()

            def notify(self, n: int = 1) -> None:
                cond = self._cond
                if cond is not None:
                    cond.notify(n)

    except TypeError:  # pragma: no cover - an interpreter whose RLock cannot be subclassed
        return threading.Condition
    return _FutureCondition


_make_condition = _light_condition_type()


class TaskFuture(Future[T]):
    """A ``concurrent.futures.Future`` as returned by threadkit pools.

    Use it exactly like its base class; ``concurrent.futures.wait()``,
    ``concurrent.futures.as_completed()``, ``asyncio.wrap_future()`` and
    ``loop.run_in_executor`` all accept it.
    """

    # Class-level defaults keep the per-future cost at zero until a task fails.
    _tk_guard: _UnretrievedGuard | None = None
    _tk_what: str | None = None
    _tk_unwanted: bool = False  # cancel() was called too late: the outcome is not wanted

    def __init__(self) -> None:
        # The base class's attributes, with the light condition (a test pins the set).
        self._condition = _make_condition()
        self._state = _PENDING
        self._result = None
        self._exception = None
        self._waiters = []
        self._done_callbacks: list[Callable[[Future[T]], object]] = []

    def cancel(self) -> bool:
        """Cancel the future if it has not started, and notify every waiter at once.

        Returns:
            ``True`` if the future is cancelled (now or before), ``False`` if it is
            running or done.
        """
        with self._condition:
            state = self._state
            if state in (_RUNNING, _FINISHED):
                # Whoever cancels has said the outcome is no longer wanted (asyncio does
                # so for a timed-out or cancelled run_in_executor, to_thread or
                # wrap_future): a failure of this task is not a lost error.
                self._tk_unwanted = True
                self._tk_disarm()
                return False
            if state in (_CANCELLED, _NOTIFIED):
                return True
            self._state = _NOTIFIED
            for waiter in self._waiters:
                waiter.add_cancelled(self)
            self._condition.notify_all()
        self._tk_cancelled()
        self._invoke_callbacks()
        return True

    def _tk_cancel_pending(self) -> None:
        """Cancel the future if no worker has started it; else leave it as it is.

        Unlike ``cancel``, a future already running or done is not marked unwanted, so
        its failure is still logged if nobody retrieves it (for ``submit`` interrupted
        after the task was accepted: its caller never got the future).
        """
        with self._condition:
            if self._state != _PENDING:
                return
        self.cancel()  # (a worker starting it in between makes this a late cancel())

    def _tk_cancelled(self) -> None:
        """Called once, when ``cancel`` cancels the future (see HookedFuture)."""

    def set_running_or_notify_cancel(self) -> bool:
        """As in the base class; a future cancelled by ``cancel()`` reports ``False``."""
        with self._condition:
            if self._state == _NOTIFIED:
                return False
        return super().set_running_or_notify_cancel()

    def _tk_start(self) -> bool:
        """Move PENDING to RUNNING for the worker about to run the task.

        Returns ``False`` (and the task must not run) if the future was cancelled.
        """
        with self._condition:
            if self._state == _PENDING:
                self._state = _RUNNING
                return True
            return False

    def _tk_finish(self, result: T) -> None:
        """Set the result of a task this worker started (RUNNING, so never refused).

        ``set_result`` without its state check and with the empty notification and
        callback calls skipped: the worker's hot path.
        """
        cond = self._condition
        with cond:
            self._result = result
            self._state = _FINISHED
            for waiter in self._waiters:
                waiter.add_result(self)
            cond.notify_all()
        if self._done_callbacks:
            self._invoke_callbacks()

    def _tk_fail(self, exc: BaseException, fn: object, log_unretrieved: bool) -> None:
        """Set the exception of a running task, arming the unretrieved-exception log."""
        if log_unretrieved:
            self._tk_what = describe_callable(fn)
        self.set_exception(exc)

    def _tk_fail_unstarted(self, exc: BaseException) -> bool:
        """Fail a future that never started; ``False`` if it was cancelled meanwhile."""
        if not self._tk_start():
            return False
        self.set_exception(exc)
        return True

    def _tk_fail_after_fork(self, exc: BaseException) -> None:
        """In a forked child: fail a future whose task can never run here.

        Its lock may have been held by a thread that does not exist in the child, so it
        gets a new one first; running or not, the task will never end here.
        """
        self._condition = _make_condition()
        if not self.done():
            self._state = _RUNNING
            self._tk_fail(exc, None, log_unretrieved=False)  # (a subclass's part runs too)

    def set_exception(self, exception: BaseException | None) -> None:
        """Set the future's exception (for executors); see the base class."""
        if self._tk_what is not None and exception is not None and not self._tk_unwanted:
            # Armed before the waiters can see the exception, so a waiter that
            # retrieves it at once always finds the guard to disarm.
            self._tk_guard = _UnretrievedGuard(exception, self._tk_what)
        try:
            super().set_exception(exception)
        except BaseException:
            self._tk_disarm()
            raise
        if self._tk_unwanted:  # a cancel() that came while the guard was being armed
            self._tk_disarm()

    def _tk_disarm(self) -> None:
        guard = self._tk_guard
        if guard is not None:
            guard.exc = None
            self._tk_guard = None

    def _tk_wait_in_main(self, timeout: float | None) -> float | None:
        """On the main thread, wait for completion in slices so Ctrl-C is never stuck.

        Returns the timeout to pass on to the base class: 0 once waited here.
        """
        if self._state in _DONE_STATES or not in_main_thread():
            return timeout
        with self._condition:
            wait_condition_interruptibly(
                self._condition,
                lambda: self._state in _DONE_STATES,
                timeout,
            )
        return 0

    def result(self, timeout: float | None = None) -> T:
        """Return the task's result; see ``concurrent.futures.Future.result()``."""
        timeout = self._tk_wait_in_main(timeout)
        try:
            return super().result(timeout)
        finally:
            if self._tk_guard is not None and self._state == _FINISHED:
                self._tk_disarm()

    def exception(self, timeout: float | None = None) -> BaseException | None:
        """Return the task's exception; see ``concurrent.futures.Future.exception()``."""
        exc = super().exception(self._tk_wait_in_main(timeout))
        self._tk_disarm()
        return exc

    def _invoke_callbacks(self) -> None:
        # The base class logs an Exception from a callback and lets a BaseException
        # escape, which kills the completing worker and skips the remaining callbacks.
        interrupt: BaseException | None = None
        for callback in self._done_callbacks:
            try:
                callback(self)
            except BaseException as exc:
                logger.exception("done-callback %s of %r raised", describe_callable(callback), self)
                if (
                    interrupt is None
                    and isinstance(exc, KeyboardInterrupt | SystemExit)
                    and threading.current_thread() is threading.main_thread()
                ):
                    interrupt = exc
        if interrupt is not None:
            # In the main thread a Ctrl-C or exit request must not vanish into a log.
            raise interrupt
