"""PoolHooks: watch every task of a pool go by, as Java's beforeExecute/afterExecute do.

A pool made with ``hooks=`` calls the hook object's methods as its tasks are submitted,
start, finish, fail or are cancelled. A pool made without pays one ``is None`` test per
task and nothing else.

Guarantees:
    * Each task gets ``task_submitted`` (tasks given to ``submit``/``put`` only), then
      either ``task_cancelled``, or ``task_started`` followed by exactly one of
      ``task_finished`` / ``task_failed``, all with the same ``task_id``; a task that
      can never start because the pool broke gets ``task_failed`` alone, with
      ``duration`` ``None``.
    * ``task_started``, ``task_finished`` and ``task_failed`` run in the worker thread
      that runs the task, just around it; the others run where the event happens.
    * A hook that raises (anything, ``BaseException`` included) is logged on the
      ``threadkit`` logger and changes nothing else: the task, its future and the pool
      carry on.
"""

from __future__ import annotations

import contextvars
import logging
import threading
from typing import TYPE_CHECKING, Any, TypeVar

from ._futures import TaskFuture
from ._reports import TaskEvent, describe_callable

if TYPE_CHECKING:
    from collections.abc import Callable

__all__ = [
    "HookSet",
    "HookedFuture",
    "PoolHooks",
    "emit",
    "hook_raised",
    "new_event",
    "submit_hooked",
]

T = TypeVar("T")

logger = logging.getLogger("threadkit")


class PoolHooks:
    """Subclass this and override the events you want to see.

    Every method gets a ``TaskEvent`` and defaults to doing nothing. Keep them fast:
    ``task_started`` and ``task_finished`` run on the worker thread, around each task.

    For example:

    ```python
    class Timing(threadkit.PoolHooks):
        def task_finished(self, event: threadkit.TaskEvent) -> None:
            metrics.observe(event.name, event.duration)

    pool = threadkit.WorkerPool(8, hooks=Timing())
    ```
    """

    def task_submitted(self, event: TaskEvent) -> None:
        """A task was accepted by ``submit`` or ``put`` (in the submitting thread)."""

    def task_started(self, event: TaskEvent) -> None:
        """A worker is about to run the task (in that worker)."""

    def task_finished(self, event: TaskEvent) -> None:
        """The task returned; ``event.duration`` says how long it ran (in the worker)."""

    def task_failed(self, event: TaskEvent) -> None:
        """The task raised ``event.exception`` after ``event.duration`` seconds (or, with
        ``duration`` ``None``, failed unstarted because the pool broke)."""

    def task_cancelled(self, event: TaskEvent) -> None:
        """The task was cancelled before it started (by you, an overflow policy or shutdown),
        or it stopped by raising ``Cancelled`` for its own cancelled token (then
        ``event.duration`` and ``event.exception`` are set, as for ``task_failed``)."""


class HookSet:
    """The methods a ``PoolHooks`` object overrides, resolved once per pool.

    An event whose method is not overridden costs nothing: its slot is ``None``, and a
    hooks object that overrides nothing makes ``of`` return ``None``, as if no hooks
    were given.
    """

    __slots__ = ("cancelled", "failed", "finished", "runs", "started", "submitted")

    submitted: Callable[[TaskEvent], object] | None
    started: Callable[[TaskEvent], object] | None
    finished: Callable[[TaskEvent], object] | None
    failed: Callable[[TaskEvent], object] | None
    cancelled: Callable[[TaskEvent], object] | None
    runs: bool  # an outcome of a run is watched: take the hooked path, time each run

    @classmethod
    def of(cls, hooks: PoolHooks | None) -> HookSet | None:
        """The overridden methods of ``hooks``, or ``None`` if there are none."""
        if hooks is None:
            return None
        found = cls()
        any_set = False
        for slot in ("cancelled", "failed", "finished", "started", "submitted"):
            name = f"task_{slot}"
            overridden = getattr(type(hooks), name) is not getattr(PoolHooks, name)
            setattr(found, slot, getattr(hooks, name) if overridden else None)
            any_set = any_set or overridden
        # task_cancelled too: a task stopped by its own token is reported from the run.
        found.runs = any(
            method is not None
            for method in (found.started, found.finished, found.failed, found.cancelled)
        )
        return found if any_set else None

    def report_cancelled(self, task_id: int, fn: Callable[..., Any] | None) -> None:
        """Report a task cancelled (or refused after ``task_submitted``), from here."""
        if self.cancelled is not None:
            emit(self.cancelled, TaskEvent(task_id, fn, threading.current_thread().name))


# ``new_event(TaskEvent, (task_id, fn, thread_name, duration, exception, map_id))`` builds
# an event without the named tuple's Python-level ``__new__``: half the cost, for the
# events every task of a hooked pool makes.
new_event = tuple.__new__


def emit(method: Callable[[TaskEvent], object], event: TaskEvent) -> None:
    """Call one hook method, logging (never raising) whatever it raises."""
    try:
        method(event)
    except BaseException:
        hook_raised(method)


def hook_raised(method: Callable[[TaskEvent], object]) -> None:
    """Log the exception a hook method just raised (call from an ``except`` block)."""
    logger.exception("pool hook %s raised", describe_callable(method))


class HookedFuture(TaskFuture[T]):
    """The future of a task in a pool with hooks: it carries what the events report.

    Slots, not instance attributes: three more keys would make every such future's
    ``__dict__`` grow out of its shared-key form, which costs an allocation per task.
    """

    __slots__ = ("_tk_fn", "_tk_hooks", "_tk_id")

    # Set right after construction by the pool, all three (no __init__ of its own: one
    # more Python call per task is a cost every hooked task would pay):
    _tk_id: int
    _tk_fn: Callable[..., Any] | None  # for the events; dropped when it starts or is cancelled
    _tk_hooks: HookSet

    def _tk_cancelled(self) -> None:
        # Reported here, the one place a pending task becomes cancelled, rather than by
        # a done-callback that every task would pay for.
        self._tk_hooks.report_cancelled(self._tk_id, self._tk_fn)
        self._tk_fn = None

    def _tk_start(self) -> bool:
        """As in TaskFuture; a task that starts lets go of its callable (a finished
        future must not keep it alive). Read ``_tk_fn`` first if the events need it."""
        if TaskFuture._tk_start(self):
            self._tk_fn = None
            return True
        return False


def submit_hooked(
    hooks: HookSet,
    task_id: int,
    shown: Callable[..., Any] | None,
    call: tuple[Any, tuple[Any, ...], dict[str, Any]],
    submit: Callable[..., bool],
    *,
    try_only: bool,
) -> HookedFuture[Any] | None:
    """Submit ``call`` (``fn, args, kwargs``) through the engine's ``submit`` with hooks.

    Makes the task's numbered future, reports the task as submitted, and reports it
    cancelled if the engine refuses it (then returns ``None``, if ``try_only``). The
    future reports its own cancellation later (``HookedFuture``). ``shown`` is the
    callable the events name (``None`` for a Worker's ``process``).
    """
    fn, args, kwargs = call
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
        accepted = submit((fut, fn, args, kwargs, contextvars.copy_context()), try_only=try_only)
    except BaseException:
        if not (fut.running() or fut.done()):  # refused (not a caller_runs task raising)
            hooks.report_cancelled(task_id, shown)
        raise
    if not accepted:
        hooks.report_cancelled(task_id, shown)
        return None
    return fut
