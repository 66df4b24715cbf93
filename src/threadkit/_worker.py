"""Worker: the base class for jobs that keep per-thread state.

The pool owns the loop; a subclass overrides hooks that default to doing nothing.

Guarantees (enforced by the pool's worker threads, see ``_pool._worker_main``):
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
from typing import TYPE_CHECKING, Any, Generic

from typing_extensions import TypeVar

if TYPE_CHECKING:
    from collections.abc import Callable

    from ._cancel import CancelToken
    from ._pool import _Core, _WorkerState

__all__ = ["In", "Out", "Worker"]

In = TypeVar("In", default=Any)
Out = TypeVar("Out", default=Any)

logger = logging.getLogger("threadkit")


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
    _tk_core: _Core | None = None

    @property
    def name(self) -> str:
        """The name of the thread this worker lives in (``""`` outside a pool)."""
        return self._tk_name

    @property
    def index(self) -> int:
        """This worker's number in its pool, from 0 in start order (``-1`` outside a pool)."""
        return self._tk_index

    @property
    def token(self) -> CancelToken | None:
        """The pool's cancel token (``None`` outside a pool).

        Long ``process`` calls should check it (``self.token.cancelled``, or sleep with
        ``self.token.sleep(...)``) so that a cancelling shutdown stops them promptly.
        """
        core = self._tk_core
        return None if core is None else core.token

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


def start_worker(factory: Callable[[], Any], ws: _WorkerState, core: _Core) -> Worker[Any, Any]:
    """Make and set up the worker object of the calling (new) worker thread."""
    instance = factory()
    if not isinstance(instance, Worker):
        raise TypeError(f"worker= must make Worker instances, got {instance!r}")
    instance._tk_name = ws.name
    instance._tk_index = ws.index
    instance._tk_core = core
    instance.setup()
    return instance


def stop_worker(instance: Worker[Any, Any], ws: _WorkerState) -> None:
    """Run ``teardown`` for a worker whose setup succeeded; log instead of raising."""
    try:
        instance.teardown()
    except BaseException:
        logger.exception("%s.teardown raised in %s", type(instance).__name__, ws.name)
