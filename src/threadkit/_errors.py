"""The exceptions threadkit raises.

Every class says when it is raised. The tree::

    ThreadkitError(Exception)
    ├── Cancelled(ThreadkitError)
    ├── PoolShutDown(ThreadkitError, RuntimeError)
    ├── QueueFull(ThreadkitError)
    │   └── SubmitTimeout(QueueFull, TimeoutError)
    └── BrokenPool(ThreadkitError, concurrent.futures.thread.BrokenThreadPool)

``PoolShutDown`` is a ``RuntimeError`` because that is what
``ThreadPoolExecutor.submit`` raises after shutdown, and ``BrokenPool`` is a
``BrokenThreadPool`` (so also a ``concurrent.futures.BrokenExecutor``), so code
written against the standard library keeps catching what it caught before.
"""

from __future__ import annotations

from concurrent.futures.thread import BrokenThreadPool

__all__ = [
    "BrokenPool",
    "Cancelled",
    "PoolShutDown",
    "QueueFull",
    "SubmitTimeout",
    "ThreadkitError",
]


class ThreadkitError(Exception):
    """Base class of every exception threadkit defines."""


class Cancelled(ThreadkitError):
    """Raised by ``CancelToken.raise_if_cancelled`` once the token is cancelled.

    Attributes:
        reason: The value given to ``CancelToken.cancel`` (``None`` when none was
            given), or ``DeadlineExceeded`` when the token's deadline passed.
    """

    def __init__(self, reason: object = None) -> None:
        super().__init__(reason)
        self.reason = reason

    def __str__(self) -> str:
        return "cancelled" if self.reason is None else f"cancelled: {self.reason}"


class PoolShutDown(ThreadkitError, RuntimeError):
    """Raised by a pool that is shutting down or shut down when it is asked to take work.

    Also raised in a thread blocked on a full queue when shutdown begins.
    """


class QueueFull(ThreadkitError):
    """Raised when a bounded pool queue is full and the overflow policy is ``"reject"``."""


class SubmitTimeout(QueueFull, TimeoutError):
    """Raised when a submitter waited ``submit_timeout`` seconds for room in a full queue."""


class BrokenPool(ThreadkitError, BrokenThreadPool):
    """Raised when a pool can no longer run work, for example after an initializer failed.

    The pending futures of a broken pool fail with this error, chained (``__cause__``)
    to the error that broke it; later submissions raise it at once.
    """
