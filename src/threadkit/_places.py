"""The free places of a bounded task queue (``max_queue``).

A submitter takes a place before it queues a task, and gives it back at once if the task
is handed to a worker instead; the worker that takes a task from the queue gives its
place back. So the queue never holds more tasks than ``max_queue``, and the places held
by submitters about to queue are counted too.

The free places are the tokens in ``tokens`` plus the ``unissued`` places never used
yet: a place is made on first use, so a huge bound costs memory only for the places a
pool really fills. Blocked submitters wait in ``tokens.get`` (C-level, interruptible by
Ctrl-C in slices on the main thread) and are woken by a place given back, or by
``STOP`` when intake stops, which each one passes on (``pass_stop``).
"""

from __future__ import annotations

import functools
import queue
from typing import Any, Final

from ._locks import new_lock
from ._waiting import get_interruptibly

__all__ = ["FULL", "STOP", "QueuePlaces"]

# Put among the tokens when intake stops: whoever gets it passes it on and fails.
STOP: Final = None
# Returned by ``take`` when the queue has no free place.
FULL: Final = object()


class QueuePlaces:
    """The free places of one pool's bounded queue (see the module)."""

    __slots__ = ("_lock", "give_back", "tokens", "unissued")

    def __init__(self, bound: int) -> None:
        self.tokens: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self.unissued = bound  # places never used yet (guarded by _lock)
        self._lock = new_lock()
        # A place is free again (a C-level call: workers make it once per queued task).
        self.give_back = functools.partial(self.tokens.put, True)

    def take(self) -> object:
        """A free place (``True``), ``STOP`` once intake stopped, or ``FULL``."""
        try:
            return self.tokens.get_nowait()
        except queue.Empty:
            pass
        if self.unissued:  # a hint, checked again under the lock
            with self._lock:
                if self.unissued:
                    self.unissued -= 1
                    return True
        return FULL

    def wait(self, timeout: float | None) -> object:
        """Wait for a free place or ``STOP``; raise ``queue.Empty`` after ``timeout``."""
        return get_interruptibly(self.tokens.get, timeout)

    def pass_stop(self) -> None:
        """Stop intake: wake the next blocked submitter (each one passes it on)."""
        self.tokens.put(STOP)

    def free(self) -> int:
        """How many more tasks the queue would take now (for tests and reports)."""
        with self._lock:
            return self.tokens.qsize() + self.unissued
