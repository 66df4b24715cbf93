"""Looking at a pool from outside: statistics, snapshots, the watchdog, stragglers.

All read the engine's counters and worker records (``WorkerRecord``), never change them:

* ``count_statistics`` adds the engine's totals and the live workers' own counters up
  into a ``PoolStatistics``, under the engine's lock;

* ``snapshot_workers`` turns the records of live workers, copied under the engine's
  lock, into ``WorkerSnapshot`` values: the task each runs, for how long, and its stack.
  Stacks are read (``current_frames``) only here, so a pool reads them only when someone
  asks for snapshots: ``worker_snapshots()``, a shutdown with stragglers, the watchdog.
* ``watch`` is the body of a pool's watchdog thread (``watchdog=`` seconds): it wakes a
  few times per threshold, and logs each task once, with its stack, when it has run
  longer than the threshold.
* ``wait_for_workers`` is a shutdown's wait for the workers (and the watchdog), up to
  its deadline; it returns the snapshots of the workers still running then.

The engine is seen through the small ``Watched`` protocol.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
import traceback
from typing import TYPE_CHECKING, Any, Protocol

from ._reports import PoolStatistics, WorkerSnapshot, describe_callable
from ._text import format_seconds
from ._threads import current_frames
from ._waiting import join_interruptibly
from ._worker import PROCESS, started_threads

if TYPE_CHECKING:
    from collections.abc import Iterable

    from ._locks import Lock
    from ._worker import WorkerRecord

__all__ = [
    "Watched",
    "count_statistics",
    "snapshot_workers",
    "start_watchdog",
    "wait_for_workers",
    "watch",
]

logger = logging.getLogger("threadkit")

# A live worker, as copied under the engine's lock: (thread, name, entry, started).
Copied = tuple[threading.Thread, str, Any, float]


class Watched(Protocol):
    """What looking at a pool needs of its engine."""

    lock: Lock
    workers: dict[WorkerRecord, None]
    idlers: list[WorkerRecord]
    inline: dict[int, Any]
    max_workers: int
    submitted: int
    completed: int
    failed: int
    cancelled: int
    rejected: int
    watchdog: float | None
    watch_stop: queue.SimpleQueue[None]
    prefix: str

    watch_thread: threading.Thread | None

    def snapshots(
        self, *, exclude: threading.Thread | None = None, long_running: float | None = None
    ) -> tuple[WorkerSnapshot, ...]:
        """Snapshots of the live workers (but ``exclude``) whose task has run
        ``long_running`` seconds."""
        ...


def count_statistics(engine: Watched) -> PoolStatistics:
    """The pool's statistics (the engine's lock held): exact whenever it is quiescent."""
    now = time.monotonic()
    completed, failed, cancelled = engine.completed, engine.failed, engine.cancelled
    busy = items = len(engine.inline)
    ages: list[float] = []
    for ws in engine.workers:
        completed += ws.completed
        failed += ws.failed
        cancelled += ws.cancelled
        if ws.task is not None:
            busy += 1
            items += ws.items
            ages.append(now - ws.started)
    return PoolStatistics(
        max_workers=engine.max_workers,
        workers=len(engine.workers),
        idle=len(engine.idlers),
        busy=busy,
        queued=max(0, engine.submitted - completed - failed - cancelled - items),
        submitted=engine.submitted,
        completed=completed,
        failed=failed,
        cancelled=cancelled,
        rejected=engine.rejected,
        oldest_running=max(ages) if ages else None,
        running_ages=tuple(sorted(ages, reverse=True)),
    )


def describe_entry(entry: object) -> str | None:
    """The callable a worker runs for ``entry`` (a task tuple or a map run), or ``None``."""
    if type(entry) is tuple:
        fn = entry[1]
    else:
        fn = getattr(entry, "fn", None)
        if fn is None:
            return None
    return "Worker.process" if fn is PROCESS else describe_callable(fn)


def snapshot_workers(
    alive: Iterable[Copied], *, long_running: float | None = None
) -> tuple[WorkerSnapshot, ...]:
    """Snapshots of the copied workers (those whose task has run ``long_running`` s, if set),
    sorted by thread name."""
    now = time.monotonic()
    if long_running is not None:
        alive = [a for a in alive if a[2] is not None and now - a[3] >= long_running]
    frames = current_frames()
    found = []
    for thread, name, task, started in alive:
        frame = frames.get(thread.ident) if thread.ident is not None else None
        stack = tuple(traceback.format_stack(frame)) if frame is not None else ()
        found.append(
            WorkerSnapshot(
                thread_name=name,
                task=describe_entry(task),
                running_for=None if task is None else now - started,
                stack=stack,
            )
        )
    return tuple(sorted(found, key=lambda s: s.thread_name))


def watch(engine: Watched) -> None:
    """Warn, once per task, about tasks running longer than ``engine.watchdog`` seconds,
    until something is put on ``engine.watch_stop``."""
    threshold = engine.watchdog
    assert threshold is not None
    interval = min(1.0, max(0.005, threshold / 4))
    reported: set[tuple[str, float]] = set()  # (thread name, exact start) of a task
    while True:
        try:
            engine.watch_stop.get(timeout=interval)
            return  # the pool shut down
        except queue.Empty:
            pass
        try:
            now = time.monotonic()
            with engine.lock:
                long_running = {
                    (ws.name, ws.started)
                    for ws in engine.workers
                    if ws.task is not None and now - ws.started >= threshold
                }
            fresh = long_running - reported
            if fresh:
                names = {name for name, _ in fresh}
                for snap in engine.snapshots(long_running=threshold):
                    if snap.thread_name in names:
                        logger.warning(
                            "task %s has been running for %.1f s in %s:\n%s",
                            snap.task,
                            snap.running_for,
                            snap.thread_name,
                            "".join(snap.stack).rstrip(),
                        )
            reported = long_running  # forget tasks that ended
        except Exception:  # pragma: no cover - a bug here must not end the watch
            logger.exception("the watchdog of %s failed", engine.prefix)


def start_watchdog(engine: Watched) -> threading.Thread:
    """Start the thread that runs ``watch(engine)``."""
    thread = threading.Thread(
        target=watch, args=(engine,), name=f"{engine.prefix}_watchdog", daemon=True
    )
    thread.start()
    return thread


def wait_for_workers(
    engine: Watched,
    records: Iterable[WorkerRecord],
    deadline: float | None,
    timeout: float | None,
) -> tuple[WorkerSnapshot, ...]:
    """Join the workers of ``records`` and the watchdog until ``deadline``; return the
    snapshots of those still running then (logged), if any."""
    me = threading.current_thread()
    threads = started_threads(records, deadline)
    watcher = engine.watch_thread
    if watcher is not None:
        threads.append(watcher)
    threads = [t for t in threads if t is not me]
    for thread in threads:
        remaining = None if deadline is None else max(0.0, deadline - time.monotonic())
        join_interruptibly(thread, remaining)
    # Stacks are taken only when some thread is still running: the snapshot is the
    # costly (and, on 3.11, GC-sensitive) part of a shutdown.
    late = {t.name for t in threads if t.is_alive()}
    if not late:
        return ()
    stragglers = tuple(s for s in engine.snapshots(exclude=me) if s.thread_name in late)
    if stragglers:
        logger.warning(
            "shutdown stopped waiting after %s; still running: %s",
            format_seconds(timeout),
            ", ".join(f"{s.thread_name} ({s.task})" for s in stragglers),
        )
    return stragglers
