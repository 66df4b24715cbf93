"""What a drop-in ``ThreadPoolExecutor`` owes code written against the standard one.

Third-party code leans on more than the documented methods: it wraps or overrides
``submit`` and expects ``map`` to go through it (tqdm, tracing), drains the private
``_work_queue`` at shutdown (google-cloud-pubsub), reads ``_threads`` (celery), and
submits from an event loop's own thread (asyncio's default executor). This module holds
the pieces of ``WorkerPool`` that exist only for such code, so the pool's own
modules stay about the pool:

* ``SubmitMap``: ``map`` built on ``submit``, as ``Executor.map`` is, for pools
  whose ``submit`` is not threadkit's own.
* ``WorkQueueView`` and ``QueuedTask``: what ``pool._work_queue`` gives.
* ``in_event_loop``: is the calling thread running an asyncio event loop?
* ``refuse_context_hook``: a subclass customised through ``prepare_context``
  (3.14's ``InterpreterPoolExecutor`` over a patched stdlib) is refused loudly.

It imports nothing of threadkit's but the argument rules.
"""

from __future__ import annotations

import queue
import sys
import time
import weakref
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any, Generic, TypeVar

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Iterator
    from concurrent.futures import Future
    from types import TracebackType
    from typing import Self

__all__ = [
    "QueuedTask",
    "SubmitMap",
    "WorkQueueView",
    "in_event_loop",
    "refuse_context_hook",
]

T = TypeVar("T")


def in_event_loop() -> bool:
    """Whether the calling thread is running an asyncio event loop.

    Costs a dictionary lookup when asyncio was never imported (then no loop can run).
    """
    asyncio = sys.modules.get("asyncio")
    if asyncio is None:
        return False
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return False
    return True


def refuse_context_hook(cls: type, base: type) -> None:
    """Raise if ``cls`` (a subclass of ``base``) customises its threads by ``prepare_context``.

    Python 3.14's ``ThreadPoolExecutor`` lets a subclass decide, through the class method
    ``prepare_context``, what runs in each worker thread and how a task is run there;
    ``InterpreterPoolExecutor`` runs tasks in subinterpreters that way. A pool that
    ignored the hook would run such tasks in the main interpreter without a word.

    Raises:
        TypeError: ``cls`` overrides ``prepare_context``.
    """
    hook = getattr(cls, "prepare_context", None)
    if hook is None:
        return
    stdlib = getattr(ThreadPoolExecutor, "prepare_context", None)
    if getattr(hook, "__func__", hook) is getattr(stdlib, "__func__", stdlib):
        return
    raise TypeError(
        f"{cls.__qualname__} customises ThreadPoolExecutor through prepare_context(), "
        f"which {base.__qualname__} does not support (its tasks would silently run in "
        f"ordinary threads): do not patch concurrent.futures.ThreadPoolExecutor before "
        f"{cls.__module__} is imported, or use the standard class for this executor"
    )


class SubmitMap(Generic[T]):
    """``Executor.map`` built on a pool's ``submit``: every call goes through it.

    For a pool whose ``submit`` was overridden by a subclass or replaced on the instance
    (progress bars, logging, tracing): what that ``submit`` does happens for every item,
    as with the standard library. Input is read at once (``buffersize=None``) or
    ``buffersize`` items ahead; closing the iterator, an error or the timeout cancels
    the calls not yet started. The pool is held weakly, as ``Executor.map`` holds it.
    """

    __slots__ = ("__weakref__", "_deadline", "_fn", "_futures", "_inputs", "_pool", "_started")

    def __init__(
        self,
        pool: Any,
        fn: Callable[..., T],
        iterables: tuple[Iterable[Any], ...],
        *,
        timeout: float | None,
        buffersize: int | None,
    ) -> None:
        self._deadline = None if timeout is None else time.monotonic() + timeout
        self._started = False
        self._fn = fn
        self._pool = weakref.ref(pool)
        inputs = zip(*iterables, strict=False)
        self._futures: deque[Future[T]] = deque()
        self._inputs: Iterator[tuple[Any, ...]] | None = inputs if buffersize else None
        try:
            for args in inputs if buffersize is None else _take(inputs, buffersize):
                self._futures.append(pool.submit(fn, *args))
        except BaseException:
            self.close()
            raise

    def __iter__(self) -> Self:
        return self

    def __next__(self) -> T:
        self._started = True
        futures = self._futures
        if not futures:
            raise StopIteration
        fut = futures.popleft()
        try:
            self._feed()
            if self._deadline is None:
                return fut.result()
            return fut.result(max(0.0, self._deadline - time.monotonic()))
        except BaseException:
            fut.cancel()
            self.close()
            raise
        finally:
            del fut  # never keep a result alive from this frame

    def _feed(self) -> None:
        """Submit one more call for the one about to be yielded (lazy maps only)."""
        inputs = self._inputs
        if inputs is None:
            return
        pool = self._pool()
        args = None if pool is None else next(inputs, None)
        if pool is None or args is None:
            self._inputs = None
            return
        self._futures.append(pool.submit(self._fn, *args))

    def close(self) -> None:
        """Cancel the calls that have not started and read no more input."""
        self._inputs = None
        futures = self._futures
        while futures:
            futures.popleft().cancel()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc_val: BaseException | None,
        exc_tb: TracebackType | None,
    ) -> None:
        self.close()

    def __del__(self) -> None:
        # As the standard map's generator does when it is dropped after iteration began:
        # cancel what is left (a map never iterated still runs, for its side effects).
        if self._started:
            self.close()


def _take(inputs: Iterator[tuple[Any, ...]], n: int) -> Iterator[tuple[Any, ...]]:
    for _ in range(n):
        args = next(inputs, None)
        if args is None:
            return
        yield args


class QueuedTask:
    """A task taken off a pool's queue through ``_work_queue``; it will not run.

    It carries what code that drains ``ThreadPoolExecutor._work_queue`` reads from the
    standard library's work items: ``fn``, ``args`` and ``kwargs`` (before 3.14), ``task``
    (``(fn, args, kwargs)``, 3.14+) and ``future``, which is already cancelled.
    """

    __slots__ = ("args", "fn", "future", "kwargs")

    def __init__(
        self, future: Future[Any], fn: Any, args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> None:
        self.future = future
        self.fn = fn
        self.args = args
        self.kwargs = kwargs

    @property
    def task(self) -> tuple[Any, tuple[Any, ...], dict[str, Any]]:
        """``(fn, args, kwargs)``, as Python 3.14's work items hold them."""
        return self.fn, self.args, self.kwargs

    def __repr__(self) -> str:
        return f"<QueuedTask fn={self.fn!r} args={self.args!r}>"


class WorkQueueView:
    """What ``WorkerPool._work_queue`` gives: the pool's queued tasks, for draining.

    Code written for ``ThreadPoolExecutor`` empties its queue at shutdown with
    ``_work_queue.get(block=False)`` until ``queue.Empty``, to hand back work that never
    started. Here each ``get`` takes one task that has not started off the pool's
    queue, cancels its future (so nobody waits on it) and returns it as a
    ``QueuedTask``. It never blocks. Putting into it is refused: the public way in
    is ``submit``, and the public way out is ``shutdown_now()``, whose report hands back
    every task that never started.
    """

    __slots__ = ("_size", "_take")

    def __init__(self, take: Callable[[], QueuedTask | None], size: Callable[[], int]) -> None:
        self._take = take
        self._size = size

    def get(self, block: bool = True, timeout: float | None = None) -> QueuedTask:
        """Take the oldest queued task, cancelled; never waits.

        Raises:
            queue.Empty: No task is waiting for a worker.
        """
        task = self._take()
        if task is None:
            raise queue.Empty
        return task

    def get_nowait(self) -> QueuedTask:
        """As ``get(block=False)``."""
        return self.get(block=False)

    def qsize(self) -> int:
        """How many tasks wait for a worker (an estimate while others submit)."""
        return self._size()

    def empty(self) -> bool:
        """Whether no task waits for a worker."""
        return self._size() == 0

    def put(self, item: object, block: bool = True, timeout: float | None = None) -> None:
        """Refused: see the class docstring.

        Raises:
            TypeError: Always.
        """
        raise TypeError(
            "WorkerPool._work_queue does not take items: submit work with submit(), and "
            "use shutdown_now() to get back the tasks that never started"
        )

    put_nowait = put
