"""Blocking waits that Ctrl-C can always interrupt in the main thread.

Python runs signal handlers in the main thread, between bytecodes. The kernel may
deliver a process-directed signal to any thread that does not block it; Linux prefers
the main thread, but when that thread already has a signal pending, or on other
systems, a Ctrl-C can land in a worker, and a main thread asleep in a C-level wait
(a lock, a queue) stays asleep until the wait ends. (Blocking the signals in worker
threads would route them to the main thread, but a blocked mask survives fork and
exec, so every process a task started would ignore Ctrl-C and ``terminate()``.)

So every wait threadkit does on the main thread is cut into slices of at most
``MAIN_SLICE`` seconds: between slices the interpreter runs any pending handler. Other
threads wait in one piece, of at most ``threading.TIMEOUT_MAX`` seconds (a C-level wait
refuses more): a timeout that argument checks accept is one every wait here honours.
"""

from __future__ import annotations

import threading
import time
from queue import Empty
from typing import TYPE_CHECKING, TypeVar

if TYPE_CHECKING:
    from collections.abc import Callable

__all__ = [
    "MAIN_SLICE",
    "acquire_interruptibly",
    "get_interruptibly",
    "in_main_thread",
    "join_interruptibly",
    "wait_condition_interruptibly",
    "wait_slice",
]

T = TypeVar("T")

# The longest one C-level wait accepts (a longer timeout raises OverflowError).
TIMEOUT_MAX = threading.TIMEOUT_MAX

# The longest a main-thread wait goes without giving signal handlers a chance to run.
MAIN_SLICE = 0.25


def in_main_thread() -> bool:
    """Whether the calling thread is the main thread (where signal handlers run)."""
    return threading.current_thread() is threading.main_thread()


def wait_slice(seconds: float | None) -> float | None:
    """How long one blocking call of this thread may wait, for a wait of ``seconds``.

    At most ``MAIN_SLICE`` on the main thread (``None`` included); never more than
    ``threading.TIMEOUT_MAX``, which C-level waits refuse. For waits whose callers loop
    with their own deadline and wake-up test (cancel tokens, rate limiters).
    """
    if in_main_thread():
        return MAIN_SLICE if seconds is None else min(seconds, MAIN_SLICE)
    return None if seconds is None else min(seconds, TIMEOUT_MAX)


def acquire_interruptibly(lock: threading.Lock, timeout: float | None) -> bool:
    """``lock.acquire(timeout=...)`` (``None``: no limit), in slices on the main thread."""
    if not in_main_thread():
        return (
            lock.acquire() if timeout is None else lock.acquire(timeout=min(timeout, TIMEOUT_MAX))
        )
    end = None if timeout is None else time.monotonic() + timeout
    while True:
        step = MAIN_SLICE if end is None else max(0.0, min(MAIN_SLICE, end - time.monotonic()))
        if lock.acquire(timeout=step):
            return True
        if end is not None and time.monotonic() >= end:
            return False


def _clamped(timeout: float | None) -> float | None:
    return None if timeout is None else min(timeout, TIMEOUT_MAX)


def get_interruptibly(get: Callable[[bool, float | None], T], timeout: float | None) -> T:
    """Call a queue's ``get(True, timeout)``, in slices when on the main thread.

    Raises:
        queue.Empty: ``timeout`` passed with nothing to get.
    """
    if not in_main_thread():
        return get(True, _clamped(timeout))
    deadline = None if timeout is None else time.monotonic() + timeout
    while True:
        if deadline is None:
            step = MAIN_SLICE
        else:
            step = min(MAIN_SLICE, max(0.0, deadline - time.monotonic()))
        try:
            return get(True, step)
        except Empty:
            if deadline is not None and time.monotonic() >= deadline:
                raise


def join_interruptibly(thread: threading.Thread, timeout: float | None) -> None:
    """``thread.join(timeout)``, in slices when on the main thread."""
    if not in_main_thread():
        thread.join(_clamped(timeout))
        return
    deadline = None if timeout is None else time.monotonic() + timeout
    while thread.is_alive():
        if deadline is None:
            thread.join(MAIN_SLICE)
            continue
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return
        thread.join(min(MAIN_SLICE, remaining))


def wait_condition_interruptibly(
    cond: threading.Condition, done: Callable[[], bool], timeout: float | None
) -> None:
    """Wait (holding ``cond``) until ``done()`` or ``timeout``, in slices on the main thread."""
    deadline = None if timeout is None else time.monotonic() + timeout
    while not done():
        if deadline is None:
            cond.wait(MAIN_SLICE)
            continue
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return
        cond.wait(min(MAIN_SLICE, remaining))
