"""TaskGroup: tasks that succeed or fail together (structured concurrency for threads).

A group hands its tasks to a pool (its own, a ``WorkerPool``, or any thread executor)
and keeps ``live``, the futures of its tasks that have not ended. Its token is what
``current_token()`` returns inside its tasks; cancelling the group cancels the token,
and a callback on the token cancels every task that has not started.

How a task reaches its pool: without ``limit``, a ``WorkerPool`` without hooks or a
bounded queue takes the group's task entry as its own (``WorkerPool._tk_entry_sink``):
one future, a ``_GroupFuture``, whose ``_tk_finish``/``_tk_fail``/``_tk_cancelled``
do the group's part as the worker settles it, and the call itself runs in a context
copy made at submit with the group's token bound. Everywhere else (``limit``, other
executors, pools with hooks or a bounded queue) the pool runs a ``_GroupTask`` that
wraps the call and settles the group's own future; the pool's future is not used.

The hot path takes no lock that the submitter and the workers share (such a lock, taken
by every task's end, made a convoy costing more than the rest of the group's work).
``live`` is a dict: adding a future and ``pop(fut, False)`` are each one atomic
operation, and *whoever pops a future counts it* (its wrapper when it ends, the cancel
callback when it cancels it unstarted, ``submit`` when it takes it back), so every task
is counted exactly once. Counts live in per-thread tallies, written by their thread
only, and ``completed`` is derived; ``statistics()`` is exact whenever the group is
quiescent. ``lock`` guards the rare state: ``state``, ``cancelled``, ``cause``,
``failures``, the tallies' list, and, with ``limit``, ``held`` and ``in_pool``.

How each rule is kept:

* **No task starts after the group is cancelled.** Two flags are each written before a
  read of the other side's data: ``submit`` adds its future to ``live``, then reads
  ``cancelled`` (and ``state``); the cancel callback sets ``cancelled``, then copies
  ``live`` and cancels every future in the copy. So a racing submit is either seen by
  the callback or sees the flag and cancels its own future. A task whose future was
  cancelled finds it so when a worker reaches it, and returns without running. Held
  tasks (``limit``) leave ``held`` only under the lock, and only while not cancelled.
  ``cancel()`` runs the callback itself if another thread's cancel is still running it,
  so when ``cancel()`` returns nothing can start any more.
* **A failure cancels before anyone sees it.** The task's exception is recorded and the
  group cancelled (as by ``cancel()``) before its future is resolved, so whoever waits
  on that future finds the group already cancelled.
* **Exit waits for every task.** ``__exit__`` sets ``waiter`` and waits, holding the
  condition, until ``live`` is empty, and closes the group in the same hold. A task
  whose pop empties ``live`` then takes the lock to notify. A submit racing the close
  is ordered like the cancel flag: it adds, then reads ``state``, and takes its future
  back (raising ``RuntimeError``) if the group closed.
* **The token is never read under the lock.** Reading a token may notice its deadline,
  cancel it and run its callbacks, and the callback takes the lock.
"""

from __future__ import annotations

import contextvars
import threading
import time
from collections import deque
from concurrent.futures import CancelledError, Executor, Future, ProcessPoolExecutor
from typing import TYPE_CHECKING, Any, Final, ParamSpec, TypeVar, final

import attrs

from ._cancel import CancelToken, DeadlineExceeded, bind_token, current_token
from ._errors import Cancelled, TaskGroupTimeout
from ._futures import TaskFuture
from ._locks import new_lock
from ._pool import WorkerPool
from ._process import group_numbers, register_fork_aware, this_thread
from ._reports import describe_callable
from ._tasks import Task
from ._validate import check_int, check_timeout
from ._waiting import wait_condition_interruptibly

if TYPE_CHECKING:
    from collections.abc import Callable
    from concurrent.futures import Future
    from types import TracebackType
    from typing import Self

__all__ = ["INTERRUPT_GRACE", "TaskGroup", "TaskGroupStatistics"]

P = ParamSpec("P")
T = TypeVar("T")

#: Seconds the running tasks get to end after a Ctrl-C (or ``SystemExit``) in the block.
INTERRUPT_GRACE: Final = 2.0

_NEW: Final = "new"
_OPEN: Final = "open"
_EXITING: Final = "exiting"
_CLOSED: Final = "closed"

# What cancelled the group first.
_FAILURE: Final = "a task failed"
_BODY: Final = "the with block raised"
_REQUEST: Final = "cancel() was called"
_INTERRUPT: Final = "interrupted"
_TIMEOUT: Final = "the timeout passed"
_OUTSIDE: Final = "an enclosing token was cancelled"

# How a task ended, for the counters.
_COMPLETED: Final = 0
_FAILED: Final = 1
_CANCELLED: Final = 2


# A task entry held for a free place (limit): (future, fn, args, kwargs, context).
_Held = tuple[TaskFuture[Any], Any, tuple[Any, ...], dict[str, Any], contextvars.Context | None]


class _Tally:
    """One thread's counts for one group: written by that thread alone, read by all."""

    __slots__ = ("cancelled", "failed", "submitted")

    def __init__(self) -> None:
        self.submitted = self.failed = self.cancelled = 0


@attrs.frozen
class TaskGroupStatistics:
    """A snapshot of a ``TaskGroup``'s counters.

    ``submitted == completed + failed + cancelled + held + waiting + running`` holds
    whenever the group is quiescent (no task starting or ending at that moment): the
    counts are kept without a lock shared by the tasks, as a pool's are.

    Attributes:
        name: The group's name.
        state: ``"new"`` (not entered), ``"open"`` (the block runs), ``"exiting"`` (the
            block ended; waiting for tasks) or ``"closed"``.
        group_cancelled: Whether the group has been cancelled.
        limit: The most tasks that run at once, or ``None``.
        submitted: Tasks submitted, including those cancelled at once.
        held: Tasks the group holds back because ``limit`` tasks are in the pool.
        waiting: Tasks handed to the pool that have not started.
        running: Tasks running now.
        completed: Tasks that returned.
        failed: Tasks that raised (each is in the exception group the exit raises).
        cancelled: Tasks cancelled before they started, and tasks that ended by
            raising the group's own cancellation (``Cancelled`` with its reason).
    """

    name: str
    state: str
    group_cancelled: bool
    limit: int | None
    submitted: int
    held: int
    waiting: int
    running: int
    completed: int
    failed: int
    cancelled: int


@final
class TaskGroup:
    """Run tasks on threads that succeed or fail together: the first failure cancels the rest.

    For example:

    ```python
    with threadkit.TaskGroup(limit=16, timeout=30.0) as tg:
        pages = [tg.submit(fetch, url) for url in urls]
    # Here every task has ended. If any raised, an ExceptionGroup was raised.
    print([page.result() for page in pages])
    ```

    The rules, the same as ``asyncio.TaskGroup``'s where threads allow:

    * The first task that raises cancels the group: tasks not started are cancelled and
      never run; running tasks see their token (``current_token``, ``token``)
      cancelled and should stop at their next check. Leaving the block waits for every
      task to end, then raises an ``ExceptionGroup`` of every task failure (not the
      cancellations), followed by the block's own exception if it raised one.
    * A task that ends by raising ``Cancelled`` with the group's reason (as
      ``token.raise_if_cancelled()`` does), or ``concurrent.futures.CancelledError``,
      after the group was cancelled, was cancelled: it is not a failure.
    * ``KeyboardInterrupt`` and ``SystemExit`` from a task cancel the group too; once
      every task has ended, the first of them is raised alone, not in a group, and the
      other failures are dropped. Other ``BaseException`` s go in the group, which is
      then a ``BaseExceptionGroup``.
    * A ``KeyboardInterrupt`` or ``SystemExit`` in the block, or a Ctrl-C while leaving
      it, cancels the group, gives running tasks ``grace`` seconds (2 by default), and
      is raised; a second Ctrl-C stops the waiting at once.
    * ``cancel`` cancels everything and leaves the block normally; ``timeout``
      cancels the group when it passes and leaving raises ``TaskGroupTimeout``; a
      cancelled enclosing token (an outer group's, the pool's) cancels the group and
      leaving raises ``Cancelled``.

    Groups nest: a group opened inside a task of another group, or inside its block in
    the same thread, has a token that is a child of the outer group's, and its failure
    group becomes one failure of the outer group.

    A group is entered once; make a new one for each block.

    Args:
        pool: Where the tasks run. ``None``: a ``WorkerPool`` of the group's own, with
            ``limit`` threads (or the default number), shut down when the block is
            left. A ``WorkerPool``: its threads; its ``WorkerPool.cancel_token``
            cancels the group too. Any other ``concurrent.futures.Executor`` that runs
            callables in threads of this process: its threads; unstarted tasks are
            cancelled through their futures, running ones only through the token, and
            the executor's own shutdown does not reach the token.
        limit: The most tasks of this group that run at once (``None``: no limit).
            Further tasks are held by the group, in order, and handed to the pool as
            places free up; held tasks cost memory until they start.
        timeout: Seconds from entering the block after which the group is cancelled
            and leaving it raises ``TaskGroupTimeout``; ``None`` for none.
        name: A name for reprs, statistics and the group's own pool threads.
        grace: Seconds the running tasks get to end after a ``KeyboardInterrupt`` or
            ``SystemExit`` in the block, or a Ctrl-C while leaving it, before the
            interrupt is raised anyway (the group's own pool then stops waiting for
            them, so the interpreter does not wait at exit either).

    Raises:
        TypeError: ``pool`` is not an executor (or is a process pool), ``limit`` is not
            an ``int``, ``timeout`` or ``grace`` is not a number, or ``name`` is not a
            ``str``.
        ValueError: ``limit`` is below 1, or ``timeout`` or ``grace`` is negative, NaN
            or infinite.
    """

    def __init__(
        self,
        pool: Executor | None = None,
        *,
        limit: int | None = None,
        timeout: float | None = None,
        name: str | None = None,
        grace: float = INTERRUPT_GRACE,
    ) -> None:
        if pool is not None:
            if not isinstance(pool, Executor):
                raise TypeError(f"pool must be a concurrent.futures.Executor or None, got {pool!r}")
            if isinstance(pool, ProcessPoolExecutor):
                raise TypeError(
                    "pool must run tasks in threads: a ProcessPoolExecutor cannot share "
                    "the group's token with its tasks"
                )
        if limit is not None:
            check_int(limit, "limit")
        self._timeout = check_timeout(timeout)
        grace_seconds = check_timeout(grace, "grace")
        if grace_seconds is None:
            raise TypeError("grace must be a number of seconds >= 0, got None")
        self._grace = grace_seconds
        if name is not None and not isinstance(name, str):
            raise TypeError(f"name must be a str or None, got {name!r}")
        self._name = name if name is not None else f"TaskGroup-{next(group_numbers)}"
        self._pool = pool
        self._limit = limit
        self._executor: Executor | None = None  # the pool the tasks go to, once entered
        self._own_pool: WorkerPool[Any, Any] | None = None
        self._token_: CancelToken | None = None
        self._unlink: list[Callable[[], None]] = []
        self._own_deadline = False
        self._bind_in_task = False
        self._sink: Callable[[Task], object] | None = None  # a WorkerPool's entry intake
        self._early_cancel: tuple[object] | None = None  # cancel() before __enter__

        self._lock = new_lock()
        self._cond = threading.Condition(self._lock)
        register_fork_aware(self)
        self._state = _NEW
        self._cancelled = False  # set by the token's callback (see the module docstring)
        self._cause: str | None = None  # what cancelled the group first
        # Every task future not yet ended (a dict for its atomic pop: see the module doc).
        self._live: dict[TaskFuture[Any], bool] = {}
        self._held: deque[_Held] = deque()  # under lock
        self._in_pool = 0  # under lock; with limit: tasks handed to the pool, not ended
        self._failures: list[BaseException] = []  # under lock
        self._waiter = False  # __exit__ waits: notify when live empties
        # One tally per thread that submits or ends tasks, written by that thread only.
        self._local = threading.local()
        self._tallies: list[_Tally] = []  # under lock

    # -- entering ----------------------------------------------------------------------

    def __enter__(self) -> Self:
        with self._lock:
            if self._state is not _NEW:
                raise RuntimeError(f"{self._name} was already entered; make a new TaskGroup")
            self._state = _OPEN
        stack: list[TaskGroup] = getattr(this_thread, "task_groups", None) or []
        parent = stack[-1].token if stack else current_token()
        token = CancelToken(parent, timeout=self._timeout)
        self._token_ = token
        # Whether the token's deadline is the group's own timeout, not an enclosing one:
        # only the own one makes leaving raise TaskGroupTimeout.
        inherited = None if parent is None else parent.deadline
        self._own_deadline = self._timeout is not None and (
            inherited is None or token.deadline != inherited
        )
        pool = self._pool
        if pool is None:
            pool = self._own_pool = WorkerPool(self._limit, thread_name_prefix=self._name)
        self._executor = pool
        # A WorkerPool runs each task in its own copy of the submitter's context: the
        # task can set its token there. Held tasks are handed over later, from another
        # thread, and other executors run tasks in their threads' own contexts: those
        # get a copy made at submit.
        self._bind_in_task = isinstance(pool, WorkerPool) and self._limit is None
        # Without limit, a WorkerPool that runs entries as given takes the group's own
        # (see _GroupFuture): no second future, no wrapper around the task.
        if self._bind_in_task and isinstance(pool, WorkerPool):
            self._sink = pool._tk_entry_sink()
        links: list[CancelToken] = []
        if isinstance(pool, WorkerPool) and pool.cancel_token is not parent:
            links.append(pool.cancel_token)
        # The token's callback first: a link that fires at once must find it in place.
        self._unlink.append(token.add_callback(self._on_cancel))
        for other in links:
            self._unlink.append(other.add_callback(_canceller(token)))
        stack.append(self)
        this_thread.task_groups = stack
        early = self._early_cancel
        if early is not None:
            self._cancel_for(_REQUEST, early[0])
        return self

    @property
    def token(self) -> CancelToken:
        """The group's token: what ``current_token`` returns inside its tasks.

        It is cancelled when the group is (a failure, ``cancel``, the timeout, an
        enclosing token). The block's own code can check it or wait on it.

        Raises:
            RuntimeError: The group has not been entered.
        """
        token = self._token_
        if token is None:
            raise RuntimeError(f"{self._name} has not been entered: use `with TaskGroup() as tg:`")
        return token

    @property
    def name(self) -> str:
        """The group's name."""
        return self._name

    @property
    def cancelled(self) -> bool:
        """Whether the group has been cancelled (a passed timeout counts once noticed)."""
        token = self._token_
        return token is not None and token.cancelled

    # -- submitting --------------------------------------------------------------------

    def submit(self, fn: Callable[P, T], /, *args: P.args, **kwargs: P.kwargs) -> Future[T]:
        """Run ``fn(*args, **kwargs)`` as a task of the group; return its future.

        The task runs in a copy of the caller's ``contextvars`` context in which
        ``current_token`` is the group's token. Tasks of the group (and callbacks)
        may submit more tasks until the group closes: after the block, the group stays
        open while any of its tasks runs.

        Returns:
            The task's future. If the group is already cancelled, the future is
            cancelled and the task never runs.

        Raises:
            TypeError: ``fn`` is not callable.
            RuntimeError: The group has not been entered, or is closed (its block was
                left and every task ended).
            PoolShutDown: The pool (not the group's own) is shut down; nothing runs.
        """
        if not callable(fn):
            raise TypeError(f"submit() needs a callable, got {fn!r}")
        state = self._state
        if state is not _OPEN and state is not _EXITING:
            with self._lock:
                raise self._closed_error()
        sink = self._sink
        fut: TaskFuture[T]
        ctx: contextvars.Context | None
        if sink is not None:
            # The pool takes the task entry itself: one future, run as the pool's own.
            group_fut: _GroupFuture[T] = _GroupFuture()
            group_fut._tk_group = self
            fut = group_fut
            ctx = contextvars.copy_context()
            ctx.run(bind_token, self._token_)
        else:
            fut = TaskFuture()
            ctx = None
            if not self._bind_in_task:
                ctx = contextvars.copy_context()
                ctx.run(bind_token, self._token_)
                if self._limit is not None:
                    return self._submit_limited(fut, (fut, fn, args, kwargs, ctx))
        tally = getattr(self._local, "tally", None) or self._tally()
        tally.submitted += 1
        if not self._cancelled:
            live = self._live
            live[fut] = True
            # Published, then the flags read again: the cancel callback and __exit__
            # write their flag, then read ``live``, so one of the two sees the other.
            if not (self._cancelled or self._state is _CLOSED):
                try:
                    if sink is None:
                        executor = self._executor
                        assert executor is not None
                        _hand(executor, _GroupTask((self, fut, fn, args, kwargs, ctx)))
                    else:
                        assert ctx is not None
                        sink((fut, fn, args, kwargs, ctx))
                except BaseException as exc:
                    self._refused(fut, exc, tally)
                    raise
                return fut
            if not live.pop(fut, False):
                return fut  # the cancel callback took it: cancelled and counted
            if self._state is _CLOSED:
                tally.submitted -= 1
                raise self._closed_error()
        fut.cancel()
        tally.cancelled += 1
        return fut

    def _refused(self, fut: TaskFuture[Any], exc: BaseException, tally: _Tally) -> None:
        """Undo a submit whose hand-over to the pool raised ``exc``."""
        refused = isinstance(exc, Exception)  # the pool took nothing (its submit is atomic)
        # An interrupt may have come after the pool took it: then it stays counted unless
        # it can still be cancelled.
        if (refused or fut.cancel()) and self._live.pop(fut, False):
            if refused:
                tally.submitted -= 1
            else:
                tally.cancelled += 1
            self._place_freed()

    def _submit_limited(self, fut: TaskFuture[Any], entry: _Held) -> TaskFuture[Any]:
        """``submit`` with ``limit``: hand the task over, or hold it, under the lock."""
        tally = self._tally()
        with self._lock:
            if self._state is not _OPEN and self._state is not _EXITING:
                raise self._closed_error()
            tally.submitted += 1
            if self._cancelled:
                cancel_now = True
            else:
                cancel_now = False
                self._live[fut] = True
                limit = self._limit
                assert limit is not None
                if self._in_pool >= limit:
                    self._held.append(entry)
                    return fut
                self._in_pool += 1
        if cancel_now:
            fut.cancel()
            tally.cancelled += 1
            return fut
        executor = self._executor
        assert executor is not None
        try:
            _hand(executor, _GroupTask((self, *entry)))
        except BaseException as exc:
            self._refused(fut, exc, tally)
            raise
        return fut

    def _tally(self) -> _Tally:
        tally: _Tally | None = getattr(self._local, "tally", None)
        if tally is None:
            tally = self._local.tally = _Tally()
            with self._lock:
                self._tallies.append(tally)
        return tally

    def _closed_error(self) -> RuntimeError:
        if self._state is _NEW:
            return RuntimeError(
                f"{self._name} has not been entered: use `with TaskGroup() as tg:` "
                "and submit inside the block"
            )
        return RuntimeError(
            f"{self._name} is closed: its block was left and all its tasks ended, "
            "so it takes no more tasks"
        )

    # -- a task's life (runs in a pool thread) -----------------------------------------

    def _raised(self, fut: TaskFuture[Any], exc: BaseException) -> None:
        token = self._token_
        assert token is not None
        if _is_cancellation(exc, token):
            fut.set_exception(exc)
            self._ended(fut, _CANCELLED)
            return
        with self._lock:
            self._failures.append(exc)
        # Cancel before the future tells anyone: a waiter on it finds the group cancelled.
        self._cancel_for(_FAILURE, f"{self._name}: a task raised {type(exc).__name__}")
        fut.set_exception(exc)
        self._ended(fut, _FAILED)

    def _ended(self, fut: TaskFuture[Any], outcome: int) -> None:
        """Count a task that ended (or was found cancelled); start a held one."""
        if not self._live.pop(fut, False):
            return  # the cancel callback counted it already
        if outcome == _FAILED:
            self._tally().failed += 1
        elif outcome == _CANCELLED:
            self._tally().cancelled += 1
        self._place_freed()

    def _place_freed(self) -> None:
        """A task left ``live``: start a held one (with limit); wake a waiting exit."""
        if self._limit is not None:
            with self._lock:
                self._in_pool -= 1
                entry = self._take_held()
            if entry is not None:
                self._start_held(entry)
        if not self._live and self._waiter:
            with self._cond:
                self._cond.notify_all()

    def _take_held(self) -> _Held | None:
        """The next held task, now counted in the pool (lock held); ``None`` if none may go."""
        if self._held and not self._cancelled:
            limit = self._limit
            if limit is None or self._in_pool < limit:
                self._in_pool += 1
                return self._held.popleft()
        return None

    def _start_held(self, entry: _Held) -> None:
        """Hand a held task to the pool, outside the lock (skipping ones cancelled meanwhile).

        A pool may run the task inline, in this very call (a full ``WorkerPool`` queue
        seen from its own worker, an executor that runs tasks in the caller): its end
        then frees a place and hands over the next held task from inside this one. So
        hand-overs in one thread go through a queue, one after another, never nested:
        a long line of held tasks must not become a deep recursion.
        """
        local = self._local
        pending: deque[_Held] | None = getattr(local, "handing", None)
        if pending is not None:
            pending.append(entry)  # the loop below, further up this thread's stack, runs it
            return
        pending = local.handing = deque([entry])
        executor = self._executor
        assert executor is not None
        try:
            while pending:
                entry = pending.popleft()
                fut = entry[0]
                if not fut.cancelled():
                    try:
                        _hand(executor, _GroupTask((self, *entry)))
                    except BaseException as exc:
                        if fut._tk_start():  # never started: the pool refused it, it fails
                            self._raised(fut, exc)
                        else:  # it ran (inline) or was cancelled: count it if nobody did
                            self._ended(fut, _CANCELLED)
                        if not isinstance(exc, Exception):
                            raise
                    continue
                # Its owner cancelled it while it was held: count it, take the next one.
                if self._live.pop(fut, False):
                    self._tally().cancelled += 1
                    with self._lock:
                        self._in_pool -= 1
                        following = self._take_held()
                    if following is not None:
                        pending.append(following)
        finally:
            local.handing = None
            if pending:  # an interrupt: hold the rest again, first in line
                with self._lock:
                    self._in_pool -= len(pending)
                    self._held.extendleft(reversed(pending))

    # -- cancelling --------------------------------------------------------------------

    def cancel(self, reason: object = None) -> None:
        """Cancel the group: unstarted tasks are cancelled, running ones see the token.

        Leaving the block then waits for the running tasks and returns normally, unless
        a task failed (then its exception group is raised as usual). Once it returns,
        no task of the group starts any more. Safe from any thread, any number of times;
        calls after the first change nothing.

        Called before the block is entered, it cancels the group as it is entered (so
        one piece of code can hand an unentered group to another to be able to stop
        whatever runs in it); called after the group closed, it does nothing.

        Args:
            reason: The token's reason, which ``Cancelled`` raised in the tasks carries.
        """
        with self._lock:
            if self._state is _NEW:
                self._early_cancel = (reason,)  # applied by __enter__
                return
        self._cancel_for(_REQUEST, reason)

    def _cancel_for(self, cause: str, reason: object) -> None:
        """Cancel the token; return once no unstarted task can start any more.

        If another thread is cancelling at the same moment, its callback may still be
        cancelling the unstarted tasks: this thread does it too, so that on return (and
        before a failed task's future is resolved) the cancellation is complete.
        """
        token = self._token_
        assert token is not None
        with self._lock:
            if self._cause is None:
                self._cause = cause
        if not token.cancel(reason):
            self._on_cancel(token)

    def _on_cancel(self, token: CancelToken) -> None:
        """The token's callback: cancel every task that has not started."""
        own = self._own_deadline and token.reason is DeadlineExceeded
        outside = _TIMEOUT if own else _OUTSIDE
        with self._lock:
            self._cancelled = True
            if self._cause is None:
                self._cause = outside
            self._held.clear()
        pending = self._live.copy()  # after the flag: see submit
        tally = self._tally()
        live = self._live
        interrupt: BaseException | None = None
        for fut in pending:
            try:
                stopped = fut.cancel()  # runs done-callbacks, which may raise a Ctrl-C
            except BaseException as exc:  # every other task must still be cancelled
                interrupt = interrupt or exc
                stopped = fut.cancelled()
            if stopped and live.pop(fut, False):
                tally.cancelled += 1
        with self._lock:
            # The held ones were never in the pool: what is left in ``live`` is.
            self._in_pool = len(live)
        if not live and self._waiter:
            with self._cond:
                self._cond.notify_all()
        if interrupt is not None:
            raise interrupt

    # -- leaving -----------------------------------------------------------------------

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> bool:
        interrupt: BaseException | None = None
        all_ended = False
        try:
            with self._lock:
                self._state = _EXITING
            if isinstance(exc, KeyboardInterrupt | SystemExit):
                interrupt = exc
                self._cancel_for(_INTERRUPT, f"{self._name}: {type(exc).__name__} in the block")
            elif exc is not None and not _is_cancellation(exc, self.token):
                self._cancel_for(_BODY, f"{self._name}: the block raised {type(exc).__name__}")
            if interrupt is None:
                try:
                    all_ended = self._wait(None)
                except KeyboardInterrupt as ctrl_c:
                    interrupt = ctrl_c
                    self._cancel_for(_INTERRUPT, f"{self._name}: KeyboardInterrupt")
            if interrupt is not None:
                all_ended = self._wait(self._grace)  # a second Ctrl-C ends it at once
        finally:
            with self._lock:
                self._state = _CLOSED
            self._leave(wait=all_ended)
        if interrupt is not None:
            if interrupt is exc:
                return False
            raise interrupt
        return self._outcome(exc)

    def _wait(self, grace: float | None) -> bool:
        """Wait until every task ended (then close), or ``grace`` s; ``True`` if all ended."""
        token = self.token
        end = None if grace is None else time.monotonic() + grace
        while True:
            # Outside the lock: reading the token may notice the deadline and cancel.
            step = None if token.cancelled else token.remaining()
            if end is not None:
                left = end - time.monotonic()
                if left <= 0:
                    return False
                step = left if step is None else min(step, left)
            with self._cond:
                self._waiter = True
                wait_condition_interruptibly(self._cond, self._idle, step)
                if not self._live:
                    self._state = _CLOSED
                    return True

    def _idle(self) -> bool:
        return not self._live

    def _leave(self, *, wait: bool) -> None:
        """Undo what entering did; shut the group's own pool down."""
        for unlink in self._unlink:
            unlink()
        self._unlink.clear()
        stack: list[TaskGroup] = getattr(this_thread, "task_groups", None) or []
        if self in stack:
            stack.remove(self)
        own = self._own_pool
        if own is not None:
            if wait:
                own.shutdown(wait=True)
            else:
                # Tasks outlived the grace (or a second Ctrl-C came): stop waiting, and
                # mark the pool abandoned so interpreter exit does not wait for them.
                own.shutdown(wait=True, cancel_futures=True, timeout=0)

    def _outcome(self, exc: BaseException | None) -> bool:
        """Raise what leaving the block raises, once every task has ended."""
        token = self.token
        with self._lock:
            failures, self._failures = self._failures, []
            cause = self._cause
        for failure in failures:
            if isinstance(failure, KeyboardInterrupt | SystemExit):
                raise failure  # as asyncio.TaskGroup: alone, the others dropped
        body_cancelled = exc is not None and _is_cancellation(exc, token)
        errors = list(failures)
        if exc is not None and not body_cancelled:
            errors.append(exc)
        group = None
        if errors:
            group = BaseExceptionGroup(self._describe(failures, exc, body_cancelled), errors)
        if cause is _TIMEOUT:
            timeout = TaskGroupTimeout(f"{self._name} was cancelled after {self._timeout} s")
            raise timeout from group
        if group is not None:
            raise group from None
        if cause is _OUTSIDE:
            if body_cancelled:
                return False  # the block's own Cancelled goes on
            raise Cancelled(token.reason)
        return body_cancelled  # cancel(): the block's Cancelled is the group's own

    def _describe(
        self, failures: list[BaseException], exc: BaseException | None, body_cancelled: bool
    ) -> str:
        tasks = f"{len(failures)} task{'s' if len(failures) != 1 else ''} failed"
        if exc is None or body_cancelled:
            return f"{self._name}: {tasks}"
        if not failures:
            return f"{self._name}: the block raised"
        return f"{self._name}: {tasks} and the block raised"

    # -- looking at it -----------------------------------------------------------------

    def statistics(self) -> TaskGroupStatistics:
        """Return a snapshot of the group's counters (exact whenever it is quiescent)."""
        token = self._token_
        cancelled = token is not None and token.cancelled  # outside the lock (see above)
        with self._lock:
            live = self._live.copy()
            held = len(self._held)
            tallies = list(self._tallies)
            state = self._state
        running = sum(1 for fut in live if fut.running())
        submitted = sum(t.submitted for t in tallies)
        failed = sum(t.failed for t in tallies)
        cancelled_tasks = sum(t.cancelled for t in tallies)
        return TaskGroupStatistics(
            name=self._name,
            state=state,
            group_cancelled=cancelled or self._cancelled,
            limit=self._limit,
            submitted=submitted,
            held=held,
            waiting=max(0, len(live) - held - running),
            running=running,
            completed=max(0, submitted - failed - cancelled_tasks - len(live)),
            failed=failed,
            cancelled=cancelled_tasks,
        )

    def _after_fork_in_child(self) -> None:
        # A thread that held the lock at the fork is not in the child.
        self._lock = new_lock()
        self._cond = threading.Condition(self._lock)

    def __repr__(self) -> str:
        stats = self.statistics()
        state = stats.state + (" cancelled" if stats.group_cancelled else "")
        limit = "" if stats.limit is None else f" limit={stats.limit}"
        return (
            f"<threadkit.TaskGroup {self._name!r} {state}{limit} running={stats.running}"
            f" waiting={stats.waiting} held={stats.held} completed={stats.completed}"
            f" failed={stats.failed} cancelled={stats.cancelled}>"
        )


class _GroupTask(tuple[Any, ...]):
    """One task as its pool sees it: ``(group, future, fn, args, kwargs, context)``.

    Calling it runs the task for the group. A tuple, so making one costs a single
    allocation; its ``__wrapped__`` is the task's own callable, so the pool's reports
    (watchdog, worker snapshots, hook events) name ``fn``, not the group's machinery.
    """

    __slots__ = ()

    @property
    def __wrapped__(self) -> Callable[..., Any]:
        fn: Callable[..., Any] = self[2]
        return fn

    def __repr__(self) -> str:
        return f"<task {describe_callable(self[2])} of {self[0].name}>"

    def __call__(self) -> None:
        """Run the task; never raises.

        The hot path of every task, so kept flat: no counting on success (``completed``
        is derived in ``statistics``), and the future's own fast paths, as the pool's
        workers use them (``set_running_or_notify_cancel`` + ``set_result`` cost about a
        third of a no-op task).
        """
        group, fut, fn, args, kwargs, ctx = self
        if not fut._tk_start():
            group._ended(fut, _CANCELLED)  # cancelled by its owner before it started
            return
        try:
            if ctx is None:  # in the pool's own copy of the submitter's context
                bind_token(group._token_)
                result = fn(*args, **kwargs)
            else:
                result = ctx.run(fn, *args, **kwargs)
        except BaseException as exc:
            group._raised(fut, exc)
            # The traceback holds this frame: let go of the task, or the cycle future ->
            # exception -> frame -> future outlives everyone's interest.
            del self, fut, fn, args, kwargs, ctx
            return
        fut._tk_finish(result)
        live = group._live
        if live.pop(fut, False) and (group._limit is not None or (not live and group._waiter)):
            group._place_freed()

    def settle_unrun(self, pool_fut: Future[Any]) -> None:
        """The pool's future ended: settle the task if the pool never ran it.

        A pool fails its futures without running them when it breaks, and cancels them
        when it is shut down with ``cancel_futures=True``; the group's future would
        then stay pending and the block's exit wait for it forever. Called runs never
        raise, so a pool future that failed or was cancelled means "never ran", or, in
        a forked child, "never ends": the thread running it is not there.
        """
        if pool_fut.cancelled():
            exc: BaseException | None = None
        else:
            exc = pool_fut.exception()
            if exc is None:
                return  # it ran, and settled itself
        group, fut = self[0], self[1]
        if exc is not None and (fut._tk_start() or not fut.done()):
            # A broken pool, or (after a fork) a task whose thread is not in the child:
            # a failure of the task.
            group._raised(fut, exc)
        else:
            fut.cancel()
            group._ended(fut, _CANCELLED)


def _hand(executor: Executor, task: _GroupTask) -> None:
    """Submit ``task``; if its pool never runs it, its done callback settles it."""
    executor.submit(task).add_done_callback(task.settle_unrun)


class _GroupFuture(TaskFuture[T]):
    """The future of a task the pool runs as its own entry (no limit, a plain WorkerPool).

    The pool's worker settles it through the methods below, which also do the group's
    part that ``_GroupTask`` does for other pools: a failure is recorded and cancels the
    group before the future resolves, and the task leaves ``live`` after it resolved.
    A cancellation (by its owner, the group, or the pool's shutdown) counts it at once.
    """

    _tk_group: TaskGroup

    def _tk_finish(self, result: T) -> None:
        TaskFuture._tk_finish(self, result)
        group = self._tk_group
        live = group._live
        if live.pop(self, False) and not live and group._waiter:
            group._place_freed()

    def _tk_fail(self, exc: BaseException, fn: object, log_unretrieved: bool) -> None:
        # Never logged as unretrieved: the group's exit raises it (or it was a cancellation).
        self._tk_group._raised(self, exc)

    def _tk_fail_unstarted(self, exc: BaseException) -> bool:
        if not self._tk_start():
            return False
        self._tk_group._raised(self, exc)  # a broken pool: a failure of the task
        return True

    def _tk_cancelled(self) -> None:
        self._tk_group._ended(self, _CANCELLED)


def _is_cancellation(exc: BaseException, token: CancelToken) -> bool:
    """Whether ``exc`` is the group's own cancellation arriving, not a failure."""
    if isinstance(exc, Cancelled):
        if not token.cancelled:
            return False
        # The group's reason, or a deadline the group's token has passed too (a nested
        # group may notice an enclosing deadline before the enclosing token does).
        return exc.reason is token.reason or (
            exc.reason is DeadlineExceeded and token.remaining() == 0.0
        )
    return isinstance(exc, CancelledError) and token.cancelled


def _canceller(token: CancelToken) -> Callable[[CancelToken], None]:
    # Holds the group's token only, for a callback on another token.
    def cancel(other: CancelToken) -> None:
        token.cancel(other.reason)

    return cancel
