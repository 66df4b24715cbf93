"""Locks that a Ctrl-C cannot leave held.

A signal handler (``KeyboardInterrupt`` for Ctrl-C, ``ShutdownRequested`` inside a
``GracefulShutdown`` block) runs in the main thread between two bytecode instructions,
wherever the interpreter checks for pending signals. Up to CPython 3.13, ``with lock:``
acquires the lock in one instruction (``BEFORE_WITH``) that is already covered by the
block's cleanup, so a handler that raises always releases the lock on the way out.

CPython 3.14 compiles ``with lock:`` as an ordinary call to ``lock.__enter__``, and an
ordinary call to C code ends with a check for pending signals. A handler that raises
there, after the lock was acquired and before the block's cleanup is armed, leaves the
lock held forever (CPython gh-148874): every thread that wants it next, a pool's workers
and its exit hook included, then waits forever.

``new_lock()`` gives, on 3.14 and later, a ``SignalSafeLock``: an ``RLock`` whose
``__enter__`` is Python code. A call to a Python function returns without that check,
and the one check inside ``__enter__`` (after ``acquire`` returns) is covered by its own
``try``, which releases the lock if this thread holds it. Its ``__exit__`` is the C
``release``. On older versions it gives a plain ``threading.Lock``, which has no such
window and costs less.

Code that takes such a lock must not take it again in the same thread: an ``RLock``
would let it, a plain lock would deadlock, and the tests run both.
"""

from __future__ import annotations

import _thread
import sys
import threading
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from typing import TypeAlias

__all__ = ["Lock", "RLockBase", "SignalSafeLock", "new_lock"]


# typeshed marks ``_thread.RLock`` final; the C type accepts subclasses at
# run time on every supported version (tests/test_locks.py).
class SignalSafeLock(_thread.RLock):  # type: ignore[misc]  # pyright: ignore[reportGeneralTypeIssues]
    """An ``RLock`` whose ``with`` form cannot be left held by a signal handler."""

    __slots__ = ()

    def __enter__(self, blocking: bool = True, timeout: float = -1) -> bool:
        try:
            return self.acquire(blocking, timeout)
        except BaseException:
            # A handler raised: either inside the wait (nothing was acquired) or in the
            # check for signals right after ``acquire`` returned (this thread holds it).
            if self._is_owned():  # type: ignore[attr-defined]
                self.release()
            raise


Lock: TypeAlias = "threading.Lock | SignalSafeLock"

_NEEDS_GUARD = sys.version_info >= (3, 14)


if TYPE_CHECKING:
    RLockBase = _thread.RLock
else:
    # The class to derive an ``RLock`` that is taken in ``with`` blocks from.
    RLockBase = SignalSafeLock if _NEEDS_GUARD else _thread.RLock


def new_lock() -> Lock:
    """A lock for ``with`` blocks the main thread may run (see the module docstring)."""
    if _NEEDS_GUARD:
        return SignalSafeLock()
    return threading.Lock()
