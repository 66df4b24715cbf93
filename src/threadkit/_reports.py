"""Frozen values that pools report: statistics snapshots and shutdown reports."""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import Future
from typing import Any, NamedTuple

import attrs

__all__ = [
    "DroppedTask",
    "PoolStatistics",
    "ShutdownReport",
    "TaskEvent",
    "WorkerSnapshot",
    "describe_callable",
]


def describe_callable(fn: object) -> str:
    """A short, safe description of a task's callable for logs and reports."""
    try:
        name = getattr(fn, "__qualname__", None) or getattr(fn, "__name__", None)
        if isinstance(name, str):
            module = getattr(fn, "__module__", None)
            return f"{module}.{name}" if isinstance(module, str) else name
        wrapped = getattr(fn, "__wrapped__", None)  # a nameless wrapper (a group's task)
        if wrapped is not None and wrapped is not fn:
            return describe_callable(wrapped)
        return repr(fn)
    except Exception:  # a broken __repr__ must not break reporting
        return f"<{type(fn).__name__} object>"


@attrs.frozen
class PoolStatistics:
    """A consistent snapshot of a pool's state, taken under its lock.

    Whenever the pool is quiescent (nothing queued, nothing running),
    ``submitted == completed + failed + cancelled``; at every instant
    ``submitted == completed + failed + cancelled + queued + busy``.

    Attributes:
        max_workers: The most worker threads the pool may run.
        workers: Worker threads alive now.
        idle: Workers waiting for work.
        busy: Workers running a task (the number of tasks running).
        queued: Accepted tasks (and lazy-map items) waiting for a worker.
        submitted: Tasks accepted since the pool was created.
        completed: Tasks that returned a result.
        failed: Tasks that raised, or failed because the pool broke.
        cancelled: Tasks cancelled before they started (by you or by shutdown).
        rejected: Submissions refused by the overflow policy (``QueueFull``,
            ``SubmitTimeout`` or ``try_submit`` returning ``None``).
        oldest_running: Seconds the longest-running task has been running, or ``None``.
        running_ages: Seconds each running task has been running, longest first.
    """

    max_workers: int
    workers: int
    idle: int
    busy: int
    queued: int
    submitted: int
    completed: int
    failed: int
    cancelled: int
    rejected: int
    oldest_running: float | None
    running_ages: tuple[float, ...] = ()


@attrs.frozen
class WorkerSnapshot:
    """What one worker thread is doing: in stack dumps, and stragglers of a shutdown.

    Attributes:
        thread_name: The worker thread's name.
        task: A description of the callable it runs (``None`` if between tasks).
        running_for: Seconds the current task has been running (``None`` if none).
        stack: The thread's current stack, formatted, innermost frame last.
    """

    thread_name: str
    task: str | None
    running_for: float | None
    stack: tuple[str, ...]


@attrs.frozen
class DroppedTask:
    """A task that never started, handed back by ``WorkerPool.shutdown_now()``.

    Attributes:
        fn: The callable, or ``None`` for an item given to ``put``/``process`` (it would
            have run on a worker thread's own ``Worker``; see ``item``).
        args: Its positional arguments.
        kwargs: Its keyword arguments.
        future: Its future, already cancelled and notified; ``None`` for an item of
            ``map`` or ``process``, which hand out no futures.
    """

    fn: Any
    args: tuple[Any, ...]
    kwargs: dict[str, Any]
    future: Future[Any] | None

    @property
    def item(self) -> Any:
        """The item of a ``put``/``process`` task (its one argument), to save or re-``put``."""
        return self.args[0] if self.args else None


@attrs.frozen
class ShutdownReport:
    """What a shutdown did.

    Attributes:
        cancelled: Futures and map items this call cancelled before they started.
        stragglers: Workers still running when the call stopped waiting (only when
            it waited with a ``timeout`` that expired).
        dropped: The tasks handed back by ``WorkerPool.shutdown_now()``.
    """

    cancelled: int = 0
    stragglers: tuple[WorkerSnapshot, ...] = ()
    dropped: tuple[DroppedTask, ...] = ()

    @property
    def timed_out(self) -> bool:
        """``True`` if some worker was still running when the shutdown returned."""
        return bool(self.stragglers)


class TaskEvent(NamedTuple):
    """One step in a task's life, as given to ``PoolHooks`` methods.

    A named tuple rather than an attrs class, unlike the other reports: a pool with hooks
    makes one for every event of every task, and a tuple is the cheapest immutable value
    Python can build.

    Attributes:
        task_id: The task's number in its pool (for ``map``/``process`` items: the item's
            position in its input).
        fn: The task's callable, or ``None`` for an item of a Worker pool (``put`` and
            ``process``), whose callable is each worker's own ``process``.
        thread_name: The thread where the event happened: the submitter's for
            ``task_submitted``, the canceller's for ``task_cancelled``, the worker's
            otherwise.
        duration: Seconds the task ran (``task_finished`` and ``task_failed``), else ``None``.
        exception: The exception (``task_failed`` only).
        map_id: For ``map``/``process`` items, the number of the call they belong to.
    """

    task_id: int
    fn: Callable[..., Any] | None
    thread_name: str
    duration: float | None = None
    exception: BaseException | None = None
    map_id: int | None = None

    @property
    def name(self) -> str:
        """The task's callable, described (``module.qualname``), made only when asked."""
        return "Worker.process" if self.fn is None else describe_callable(self.fn)
