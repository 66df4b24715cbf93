"""Running one task entry in the calling thread: a worker's, or a submitter's (caller_runs).

``run_task`` is the hot path of every pool: it starts the task's future (unless it was
cancelled), runs the call in the submitter's context, and settles the future. Pools that
watch runs with hooks take ``_run_task_hooked``, kept apart so a pool without hooks pays
nothing for them.
"""

from __future__ import annotations

import contextvars
import queue
import threading
import time
from typing import Any

from ._cancel import stopped_by_own_token
from ._futures import TaskFuture
from ._hooks import HookSet, emit, hook_raised, new_event
from ._reports import TaskEvent
from ._worker import CANCELLED, FAILED, PROCESS, WorkerRecord

__all__ = ["Task", "run_task", "take_oldest_task"]

# A task entry: (future, fn, args, kwargs, context).
Task = tuple[TaskFuture[Any], Any, tuple[Any, ...], dict[str, Any], contextvars.Context]


def run_task(
    entry: Task, ws: WorkerRecord | None, log_unretrieved: bool, hooks: HookSet | None
) -> int:
    """Run one task entry; return its outcome (0 completed, FAILED or CANCELLED)."""
    if hooks is not None and hooks.runs:
        return _run_task_hooked(entry, ws, log_unretrieved, hooks)
    fut, fn, args, kwargs, ctx = entry
    if not fut._tk_start():
        return CANCELLED
    instance = None
    if fn is PROCESS:
        assert ws is not None
        instance = ws.instance
        fn = instance.process
    try:
        result = ctx.run(fn, *args, **kwargs)
    except BaseException as exc:
        if instance is not None and isinstance(exc, Exception):
            instance._tk_on_error(args[0], exc)
        # A task stopped by its own token's Cancelled was cancelled, not failed: not logged.
        own = stopped_by_own_token(exc, ctx)
        fut._tk_fail(exc, fn, log_unretrieved and not own)
        # The traceback holds this frame: drop the future and the task from it, or the
        # cycle future -> exception -> frame -> future outlives everyone's interest.
        del fut, entry, fn, args, kwargs
        return CANCELLED if own else FAILED
    fut._tk_finish(result)
    return 0


def _run_task_hooked(
    entry: Task, ws: WorkerRecord | None, log_unretrieved: bool, hooks: HookSet
) -> int:
    """``run_task`` for pools that watch runs: the same, timed and reported.

    Kept apart (rather than tests inside ``_run_task``) so a pool without such hooks pays
    nothing for them; the hot events are built and called inline, for the same reason.
    """
    fut, fn, args, kwargs, ctx = entry
    task_id, shown = fut._tk_id, fut._tk_fn  # type: ignore[attr-defined]
    if not fut._tk_start():  # (which drops the future's _tk_fn)
        return CANCELLED
    instance = None
    if fn is PROCESS:
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
        own = stopped_by_own_token(exc, ctx)  # as in run_task
        method = hooks.cancelled if own else hooks.failed
        if method is not None:
            emit(method, TaskEvent(task_id, shown, thread, elapsed, exc))
        fut._tk_fail(exc, fn, log_unretrieved and not own)
        del fut, entry, fn, args, kwargs  # as in run_task
        return CANCELLED if own else FAILED
    if hooks.finished is not None:
        elapsed = time.monotonic() - started
        try:
            hooks.finished(new_event(TaskEvent, (task_id, shown, thread, elapsed, None, None)))
        except BaseException:
            hook_raised(hooks.finished)
    fut._tk_finish(result)
    return 0


def take_oldest_task(tasks: queue.SimpleQueue[Any]) -> Task | None:
    """Take the oldest task entry off a pool's queue ``tasks`` (its lock held), or ``None``.

    Map tokens met on the way are put back: their order carries no meaning.
    """
    others: list[Any] = []
    found: Task | None = None
    while found is None:
        try:
            entry = tasks.get_nowait()
        except queue.Empty:
            break
        if type(entry) is tuple:
            found = entry
        else:
            others.append(entry)
    for other in others:
        tasks.put(other)
    return found
