"""Worker: the base class for jobs that keep per-thread state.

The pool owns the loop; a subclass overrides hooks that default to doing nothing.

Guarantees (enforced by the pool's worker threads, see ``_core.worker_main``):
    * One instance per worker thread, made by the pool's ``worker`` factory *in that
      thread*, then ``setup()`` runs there before the thread takes its first item.
    * If ``setup()`` raises, the pool breaks; that instance gets no ``teardown()``.
    * ``teardown()`` runs exactly once for every instance whose ``setup()`` returned, in
      its own thread, whatever ends the thread: shutdown, a broken pool, idle retirement,
      the pool being garbage-collected, interpreter exit. Its errors are logged.
    * An exception from ``process()`` goes to that item's future (and ``on_error``); the
      worker keeps its state and takes the next item.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import TYPE_CHECKING, Any, Final, Generic

from typing_extensions import TypeVar

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable

    from ._cancel import CancelToken

__all__ = [
    "CANCELLED",
    "FAILED",
    "OK",
    "PROCESS",
    "In",
    "Out",
    "Worker",
    "WorkerRecord",
    "set_up_thread",
    "start_worker",
    "started_threads",
    "stop_worker",
]

In = TypeVar("In", default=Any)
Out = TypeVar("Out", default=Any)

logger = logging.getLogger("threadkit")
stdlib_logger = logging.getLogger("concurrent.futures")  # where ThreadPoolExecutor logs

# How one task or map item ended, as the worker counts it.
OK: Final = 0
FAILED: Final = 1
CANCELLED: Final = 2

# Stands in for the running thread's own Worker.process, in task entries and map runs.
PROCESS: Any = object()


class Worker(Generic[In, Out]):
    """Subclass this to define a job whose threads each keep their own state.

    Give the subclass (or any zero-argument callable returning an instance, such as a
    ``functools.partial``) to ``WorkerPool(worker=...)``. Each worker thread then makes
    one instance and calls, in that thread:

    * ``setup()`` once, before its first item (open a connection here);
    * ``process()`` for every item it takes (the only method you must write);
    * ``teardown()`` once at the end, if ``setup`` returned (close it here).

    For example:

    ```python
    class Fetch(threadkit.Worker[str, bytes]):
        def setup(self) -> None:
            self.conn = http.client.HTTPConnection("example.org")

        def process(self, path: str) -> bytes:
            self.conn.request("GET", path)
            return self.conn.getresponse().read()

        def teardown(self) -> None:
            self.conn.close()

    with threadkit.WorkerPool(worker=Fetch, max_workers=8) as pool:
        for body in pool.process(paths):
            ...
    ```
    """

    # Set by the pool before setup(); class defaults keep an unattached instance usable.
    _tk_name: str = ""
    _tk_index: int = -1
    _tk_token: CancelToken | None = None

    @property
    def name(self) -> str:
        """The name of the thread this worker lives in (``""`` outside a pool)."""
        return self._tk_name

    @property
    def index(self) -> int:
        """This worker's number in its pool, from 0 in the order the pool made its
        workers (``-1`` outside a pool); a thread that failed to start leaves a gap."""
        return self._tk_index

    @property
    def token(self) -> CancelToken | None:
        """The pool's cancel token (``None`` outside a pool).

        Long ``process`` calls should check it (``self.token.cancelled``, or sleep with
        ``self.token.sleep(...)``) so that a cancelling shutdown stops them promptly.
        """
        return self._tk_token

    def setup(self) -> None:
        """Prepare this thread's state; runs in the worker thread before its first item.

        Raising here breaks the pool: pending items fail with ``BrokenPool``.
        """

    def process(self, item: In, /) -> Out:
        """Do the job for one item and return its result.

        ``item`` is positional-only, so an override may name it as it likes
        (``def process(self, path: str) -> bytes``).

        Raises:
            Exception: Whatever it raises goes to the item's future and to
                ``on_error()``; the worker lives on.
        """
        raise NotImplementedError(f"{type(self).__name__} must override Worker.process")

    def teardown(self) -> None:
        """Release this thread's state; runs once, in the worker thread, at its end."""

    def on_error(self, item: In, exc: Exception, /) -> None:
        """Called in the worker thread when ``process()`` raised ``exc`` for ``item``.

        The exception still goes to the item's future; use this hook to log, count, or
        reset a broken connection. Errors raised here are logged and ignored.
        """

    def _tk_on_error(self, item: Any, exc: Exception) -> None:
        try:
            self.on_error(item, exc)
        except BaseException:
            logger.exception("%s.on_error raised in %s", type(self).__name__, self._tk_name)


def start_worker(
    factory: Callable[[], Any], ws: WorkerRecord, token: CancelToken
) -> Worker[Any, Any]:
    """Make and set up the worker object of the calling (new) worker thread."""
    instance = factory()
    if not isinstance(instance, Worker):
        raise TypeError(f"worker= must make Worker instances, got {instance!r}")
    instance._tk_name = ws.name
    instance._tk_index = ws.index
    instance._tk_token = token
    instance.setup()
    return instance


def set_up_thread(
    initializer: Callable[..., object] | None,
    initargs: tuple[Any, ...],
    factory: Callable[[], Any] | None,
    ws: WorkerRecord,
    token: CancelToken,
) -> tuple[str, BaseException] | None:
    """Run the initializer, then make the thread's Worker (``ws.instance``); on failure,
    log it and return the broken pool's message and the cause."""
    what = "initializer"
    try:
        if initializer is not None:
            initializer(*initargs)
        what = "Worker setup"
        if factory is not None:
            ws.instance = start_worker(factory, ws, token)
    except BaseException as exc:
        if what == "initializer":
            # ThreadPoolExecutor's record and words for the same failure, on its logger,
            # so logging set up for the stdlib's pools sees it too.
            stdlib_logger.critical(
                "Exception in initializer: %s failed; the pool is broken", ws.name, exc_info=exc
            )
            message = (
                "A thread initializer failed, the thread pool is not usable anymore "
                f"({exc!r} in {ws.name})"
            )
        else:
            logger.error("Worker setup failed in %s; the pool is broken", ws.name, exc_info=exc)
            message = f"a worker's Worker setup failed ({exc!r}); the pool is not usable"
        return message, exc
    return None


def stop_worker(instance: Worker[Any, Any], ws: WorkerRecord) -> None:
    """Run ``teardown`` for a worker whose setup succeeded; log instead of raising."""
    try:
        instance.teardown()
    except BaseException:
        logger.exception("%s.teardown raised in %s", type(instance).__name__, ws.name)


class WorkerRecord:
    """One worker thread's record, kept by the pool's engine.

    ``task``, ``items``, ``started`` and the three outcome counters are written only by
    the worker itself; other threads read them (statistics, stragglers) without a lock,
    which is safe for single attribute reads and exact whenever the pool is quiescent.
    """

    __slots__ = (
        "cancelled",
        "completed",
        "failed",
        "first",
        "handed",
        "index",
        "instance",
        "items",
        "launched",
        "name",
        "retiring",
        "started",
        "task",
        "thread",
        "wake",
    )

    def __init__(self, name: str, index: int) -> None:
        self.name = name
        self.index = index
        self.thread: threading.Thread | None = None
        # True once its start is over (started or not). A flag that waiters poll, not an
        # Event: Event.set takes a lock in Python code, which a Ctrl-C in the starting
        # (main) thread could leave held.
        self.launched = False
        self.first: Any = None  # the entry a new worker starts with (handed over once)
        self.task: object = None  # the entry being run, or None
        self.items = 0  # tasks/map items in `task`
        self.started = 0.0
        self.completed = self.failed = self.cancelled = 0
        # Idle-worker hand-off: locked while the worker waits; the engine sets ``handed``
        # and releases it, under its lock, when it takes this worker off its idle list.
        self.wake = threading.Lock()
        self.wake.acquire()
        self.handed: Any = None
        self.retiring = False  # guarded by the core's lock
        self.instance: Any = None  # the thread's Worker object (worker= pools)


def started_threads(
    records: Iterable[WorkerRecord], deadline: float | None
) -> list[threading.Thread]:
    """The threads of ``records`` that started, each looked at once its start is over.

    A submitter starts a new worker's thread after releasing the engine's lock, so a
    record can be seen before its thread exists (joining it then would raise). Polls
    its ``launched`` flag until ``deadline`` (``time.monotonic()``) at most; the wait is
    rare and short, and a sleep is interruptible everywhere.
    """
    threads: list[threading.Thread] = []
    for ws in records:
        while not ws.launched:  # a thread start takes well under a millisecond
            if deadline is not None and time.monotonic() >= deadline:
                break
            time.sleep(0.0005)
        if ws.thread is not None and ws.thread.ident is not None:
            threads.append(ws.thread)
    return threads
