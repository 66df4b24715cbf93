"""The exceptions threadkit raises.

Every class says when it is raised. The tree:

```text
ThreadkitError(Exception)
├── Cancelled(ThreadkitError)
├── PoolShutDown(ThreadkitError, RuntimeError)
├── QueueFull(ThreadkitError)
│   └── SubmitTimeout(QueueFull, TimeoutError)
├── TaskGroupTimeout(ThreadkitError, TimeoutError)
└── BrokenPool(ThreadkitError, concurrent.futures.thread.BrokenThreadPool)

SystemExit (builtin)
└── ShutdownRequested(SystemExit)
```

``PoolShutDown`` is a ``RuntimeError`` because that is what
``ThreadPoolExecutor.submit`` raises after shutdown, and ``BrokenPool`` is a
``BrokenThreadPool`` (so also a ``concurrent.futures.BrokenExecutor``), so code
written against the standard library keeps catching what it caught before.
``ShutdownRequested`` is what a ``GracefulShutdown`` raises in the main thread for
SIGTERM, as the default handler raises ``KeyboardInterrupt`` for SIGINT; it is not an
``Exception``, so ``except Exception`` blocks do not stop it, and being a ``SystemExit``
with the conventional status, it ends the process quietly if nothing catches it.
"""

from __future__ import annotations

import signal
from concurrent.futures.thread import BrokenThreadPool

__all__ = [
    "BrokenPool",
    "Cancelled",
    "PoolShutDown",
    "QueueFull",
    "ShutdownRequested",
    "SubmitTimeout",
    "TaskGroupTimeout",
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

    Also raised in a thread blocked on a full queue when shutdown begins. Once the
    interpreter itself is exiting, submissions get a plain ``RuntimeError`` with
    ``ThreadPoolExecutor``'s words instead, as the stdlib pool gives them; catch
    ``RuntimeError`` to handle both.
    """


class QueueFull(ThreadkitError):
    """Raised when a bounded pool queue is full and the overflow policy is ``"reject"``."""


class SubmitTimeout(QueueFull, TimeoutError):
    """Raised when a submitter waited ``submit_timeout`` seconds for room in a full queue."""


class TaskGroupTimeout(ThreadkitError, TimeoutError):
    """Raised when a ``TaskGroup`` is left after its ``timeout`` (or an enclosing deadline) passed.

    The group was cancelled when the deadline passed and every task has ended. If tasks
    failed (or the ``with`` block raised), their exception group is the ``__cause__``.
    """


class BrokenPool(ThreadkitError, BrokenThreadPool):
    """Raised when a pool can no longer run work, for example after an initializer failed.

    The pending futures of a broken pool fail with this error, chained (``__cause__``)
    to the error that broke it; later submissions raise it at once.
    """


class ShutdownRequested(SystemExit):
    """Raised in the main thread by a ``GracefulShutdown`` when SIGTERM (or SIGHUP) arrives.

    It unwinds the main program, running its ``finally`` blocks, into the graceful
    sequence. Its ``code`` is 128 plus the signal number (143 for SIGTERM), so if it
    escapes it ends the process with that status and no traceback.

    Attributes:
        signal: The signal that arrived.
    """

    def __init__(self, signum: int) -> None:
        super().__init__(128 + signum)
        self.signal = signal.Signals(signum)

    def __str__(self) -> str:
        return f"{self.signal.name} received"
