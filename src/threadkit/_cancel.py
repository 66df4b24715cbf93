"""Cancellation tokens: a thread-safe "please stop" flag that work checks and waits on.

A ``CancelToken`` is cancelled once, by ``cancel()`` or by its deadline, and stays
cancelled. Tokens form a tree: cancelling one cancels every descendant with the same
reason, never an ancestor. There is no timer thread: a token notices its deadline the
first time something looks at it afterwards (``cancelled``, ``reason``, ``remaining``,
``raise_if_cancelled``, ``wait``, ``sleep``, ``add_callback``, ``child``), and the
blocking calls bound their waits by the deadline so they notice it on time. A token
cancelled by its deadline has ``DeadlineExceeded`` as its reason.

A pool's worker threads record the pool's token (in ``_process.this_thread``), and a task
run inline in a submitting thread gets it in its context (``task_token``), so code deep
in a task can find its token with ``current_token()``.
"""

from __future__ import annotations

import enum
import logging
import threading
import time
import weakref
from collections.abc import Callable
from contextvars import Context, ContextVar
from typing import Final, final

from ._errors import Cancelled
from ._locks import new_lock
from ._process import register_fork_aware, this_thread
from ._reports import describe_callable
from ._validate import check_timeout
from ._waiting import wait_slice

__all__ = [
    "CancelToken",
    "DeadlineExceeded",
    "bind_token",
    "check_wait",
    "current_token",
    "set_current_token",
    "stopped_by_own_token",
    "task_token",
]

_logger = logging.getLogger("threadkit")

# Every deadline is measured on this clock; a module global so tests can drive time.
_clock = time.monotonic


class _DeadlineExceededType(enum.Enum):
    """The reason carried by a token cancelled by its deadline.

    Test for it with ``token.reason is threadkit.DeadlineExceeded``.
    """

    # An enum member is a singleton that survives pickling and copying, so
    # ``token.reason is DeadlineExceeded`` holds everywhere.
    DEADLINE_EXCEEDED = "deadline exceeded"

    def __repr__(self) -> str:
        return "DeadlineExceeded"

    def __str__(self) -> str:
        return "deadline exceeded"


#: The reason of a token cancelled because its deadline (or an ancestor's) passed.
DeadlineExceeded: Final = _DeadlineExceededType.DEADLINE_EXCEEDED
"""The reason of a token cancelled because its deadline (or an ancestor's) passed.

Test for it with ``token.reason is threadkit.DeadlineExceeded``; it prints as
``deadline exceeded``.
"""

#: The token of the pool task running in this context; the pool sets it per task.
task_token: ContextVar[CancelToken | None] = ContextVar("threadkit.current_token", default=None)

# A pool's worker threads record their pool's token once, in ``this_thread.token``, so
# that finding it costs the pool nothing per task; the context variable takes precedence.


def current_token() -> CancelToken | None:
    """Return the cancel token of the pool task running in this thread.

    A pool cancels its token when it shuts down with cancellation (``shutdown_now``,
    ``shutdown(cancel_futures=True)``, leaving ``with pool:`` on an error, or a
    ``GracefulShutdown``), so long tasks can stop cooperatively.

    Returns:
        The token of the pool whose task is running, or ``None`` outside a pool task.
    """
    token = task_token.get()
    if token is None:
        token = getattr(this_thread, "token", None)
    return token


#: For the package's own use: ``bind_token(token)`` makes ``token`` what
#: ``current_token()`` returns in the running context. Call it in a context copy a task
#: runs in (``ctx.run(bind_token, token)``, or from inside the task's own copy), so the
#: setting stays there. The variable's bound ``set``: no Python frame per task.
bind_token: Final = task_token.set


def set_current_token(token: CancelToken | None) -> None:
    """Make ``token`` what ``current_token()`` returns in the current context.

    For the package's own use (not exported): the asyncio bridge calls it inside a copy
    of the awaiting task's context, so the job submitted from there sees its own token.
    """
    task_token.set(token)


def stopped_by_own_token(exc: BaseException, ctx: Context) -> bool:
    """Whether a task that raised ``exc`` stopped because its own token was cancelled.

    Call it in the worker thread after the task raised; ``ctx`` is the context the task
    ran in, so the token is the one its own ``current_token()`` returned. Such a task
    (or map item) is a cancellation the user asked for (a shutdown with cancellation, a
    ``GracefulShutdown``), not a failure: the pool counts it as cancelled and does not
    log its exception as unretrieved. A ``Cancelled`` from any other token (one the task
    made itself, say) is an ordinary failure.
    """
    if not isinstance(exc, Cancelled):
        return False
    token = ctx.run(current_token)
    return token is not None and token.cancelled and exc.reason is token.reason


@final
class CancelToken:
    """A thread-safe cancellation flag with an optional deadline and child tokens.

    Work checks ``cancelled`` (or calls ``raise_if_cancelled()``) at convenient points,
    and blocks with ``wait()`` or ``sleep()`` instead of ``time.sleep`` so that it wakes
    up as soon as it is cancelled. Every method may be called from any thread.

    For example:

    ```python
    token = CancelToken(timeout=30)
    while not token.sleep(5):
        poll()
    ```

    Args:
        parent: Cancelling ``parent`` cancels this token too, with the parent's
            reason. If ``parent`` is already cancelled, this token starts cancelled.
            The token keeps no strong reference to its parent, and the parent keeps
            only a weak reference to it.
        timeout: Seconds from now after which the token counts as cancelled, with the
            reason ``DeadlineExceeded``; ``None`` for no deadline of its own. The
            effective deadline is the earliest of this one and the parent's.

    Raises:
        TypeError: ``parent`` is not a ``CancelToken`` or ``None``, or ``timeout`` is
            not a number.
        ValueError: ``timeout`` is negative, NaN or infinite.
    """

    # Invariants:
    # - _outcome goes from None to (reason,) exactly once, under _lock, and never back.
    #   It is one reference, so readers may look at it without the lock.
    # - Once _outcome is set: _event (if made) is set, the token's node is empty and
    #   detached for good, and no callback is added; the ones present are popped and
    #   run exactly once.
    # - The tree lives in _Node objects, not in the tokens (see _Node).
    # - User code (callbacks) never runs while _lock is held.

    __slots__ = (
        "__weakref__",
        "_callbacks",
        "_deadline",
        "_event",
        "_lock",
        "_next_key",
        "_node",
        "_outcome",
    )

    def __init_subclass__(cls) -> None:
        raise TypeError("CancelToken is final and cannot be subclassed")

    def __init__(self, parent: CancelToken | None = None, *, timeout: float | None = None) -> None:
        if parent is not None and not isinstance(parent, CancelToken):
            raise TypeError(f"parent must be a CancelToken or None, got {parent!r}")
        seconds = check_timeout(timeout)
        self._lock = new_lock()
        self._outcome: tuple[object] | None = None
        self._event: threading.Event | None = None  # made on the first wait
        register_fork_aware(self)
        self._callbacks: dict[int, Callable[[CancelToken], object]] = {}
        self._next_key = 0
        self._node = _Node()
        self._node.token = weakref.ref(self, self._node.token_died)
        deadline = None if seconds is None else _clock() + seconds
        if parent is not None:
            deadline = _earliest(deadline, parent._deadline)
        self._deadline: float | None = deadline
        if parent is not None:
            parent._adopt(self)

    # -- state ---------------------------------------------------------------------

    @property
    def cancelled(self) -> bool:
        """Whether the token is cancelled; a passed deadline cancels it here."""
        return self._observe()

    @property
    def reason(self) -> object | None:
        """The reason given to ``cancel()``, ``DeadlineExceeded``, or ``None`` if active."""
        self._observe()
        outcome = self._outcome
        return None if outcome is None else outcome[0]

    @property
    def deadline(self) -> float | None:
        """The ``time.monotonic()`` time of the earliest deadline of the token and its ancestors.

        ``None`` when neither the token nor any ancestor has a deadline.
        """
        return self._deadline

    def remaining(self) -> float | None:
        """Return the seconds left before the deadline.

        Returns:
            ``None`` without a deadline, ``0.0`` once it has passed (which cancels the
            token), else the seconds left. Explicit cancellation does not change it.
        """
        deadline = self._deadline
        if deadline is None:
            return None
        left = deadline - _clock()
        if left > 0:
            return left
        self._observe()
        return 0.0

    def raise_if_cancelled(self) -> None:
        """Raise ``Cancelled`` if the token is cancelled; do nothing otherwise.

        Raises:
            Cancelled: The token is cancelled; its ``reason`` is the token's reason.
        """
        if self._observe():
            outcome = self._outcome
            assert outcome is not None
            raise Cancelled(outcome[0])

    # -- cancelling ----------------------------------------------------------------

    def cancel(self, reason: object = None) -> bool:
        """Cancel the token and all its descendants, then run their callbacks.

        Safe to call from any thread and any number of times; only the first call has
        an effect. Every descendant is marked cancelled before any callback runs. The
        callbacks run in this thread, this token's first, each in registration order.
        A callback that raises is logged on the ``threadkit`` logger and the others
        still run; a ``KeyboardInterrupt`` from one is re-raised once all have run.

        Args:
            reason: Any object saying why; it becomes ``reason`` of this token and of
                its descendants that were still active.

        Returns:
            ``True`` if this call cancelled the token, ``False`` if it already was.

        Raises:
            KeyboardInterrupt: A callback raised it; the token and its descendants are
                cancelled and every other callback has run.
        """
        pending = self._mark(reason)
        if pending is None:
            return False
        marked: list[CancelToken] = [self]
        # Iterative, so a deep chain of children cannot exhaust the stack.
        while pending:
            node = pending.pop()
            ref = node.token
            token = None if ref is None else ref()
            if token is not None:
                grandchildren = token._mark(reason)
                if grandchildren is not None:
                    marked.append(token)
                    pending.extend(grandchildren)
            else:
                pending.extend(node.take_children())
        interrupt: KeyboardInterrupt | None = None
        for token in marked:
            interrupt = token._run_callbacks() or interrupt
        if interrupt is not None:
            raise interrupt
        return True

    def add_callback(self, fn: Callable[[CancelToken], object]) -> Callable[[], None]:
        """Arrange for ``fn(token)`` to run when the token is cancelled.

        If the token is already cancelled, ``fn`` runs at once, in this thread.
        Otherwise it runs in the thread that cancels the token (or that first notices
        its deadline), outside any lock, so it may use the token freely. Errors it
        raises are logged on the ``threadkit`` logger, never propagated, except
        ``KeyboardInterrupt``, which is re-raised so Ctrl-C is not lost.

        Args:
            fn: Called with the token as its only argument.

        Returns:
            A function that unregisters ``fn``; calling it again, or after ``fn``
            ran, does nothing.

        Raises:
            TypeError: ``fn`` is not callable.
            KeyboardInterrupt: ``fn`` ran at once and raised it.
        """
        if not callable(fn):
            raise TypeError(f"fn must be callable, got {fn!r}")
        if not self._observe():
            with self._lock:
                if self._outcome is None:
                    key = self._next_key
                    self._next_key += 1
                    self._callbacks[key] = fn
                    return _unregisterer(self._callbacks, key)
        interrupt = self._call(fn)
        if interrupt is not None:
            raise interrupt
        return _nothing

    def child(self, *, timeout: float | None = None) -> CancelToken:
        """Return a new token cancelled whenever this one is.

        Args:
            timeout: The child's own deadline in seconds from now, or ``None``; the
                child also keeps this token's deadline.

        Returns:
            The child token; already cancelled if this token is.

        Raises:
            TypeError: ``timeout`` is not a number.
            ValueError: ``timeout`` is negative, NaN or infinite.
        """
        return CancelToken(self, timeout=timeout)

    # -- waiting -------------------------------------------------------------------

    def wait(self, timeout: float | None = None) -> bool:
        """Block until the token is cancelled or ``timeout`` seconds have passed.

        Works like ``threading.Event.wait``. The wait ends on time when the deadline
        passes, and Ctrl-C interrupts it in the main thread.

        Args:
            timeout: The most seconds to wait, or ``None`` to wait until cancelled.

        Returns:
            ``True`` if the token is cancelled, ``False`` if the timeout expired first.

        Raises:
            TypeError: ``timeout`` is not a number.
            ValueError: ``timeout`` is negative, NaN or infinite.
        """
        seconds = check_timeout(timeout)
        if self._observe():
            return True
        event = self._get_event()
        end = None if seconds is None else _clock() + seconds
        while True:
            limit = _earliest(end, self._deadline)
            wait_for = None if limit is None else max(0.0, limit - _clock())
            if event.wait(wait_slice(wait_for)) or self._observe():
                return True
            if end is not None and _clock() >= end:
                return False

    def sleep(self, seconds: float) -> bool:
        """Sleep for ``seconds``, waking early if the token is cancelled.

        Made for polling loops: ``while not token.sleep(5): poll()``.

        Args:
            seconds: How long to sleep.

        Returns:
            ``True`` as soon as the token is cancelled (at once if it already is),
            ``False`` if the whole time passed.

        Raises:
            TypeError: ``seconds`` is not a number.
            ValueError: ``seconds`` is negative, NaN or infinite.
        """
        if seconds is None:
            raise TypeError("seconds must be a number >= 0, got None")
        return self.wait(check_timeout(seconds, "seconds"))

    # -- plumbing ------------------------------------------------------------------

    def __repr__(self) -> str:
        # Reading only: a repr in a log line must not cancel the token and run callbacks.
        outcome = self._outcome
        deadline = self._deadline
        if outcome is not None:
            state = f"cancelled reason={_safe_repr(outcome[0])}"
        elif deadline is not None and _clock() >= deadline:
            state = "deadline passed"
        else:
            state = "active"
        if deadline is not None:
            state += f" remaining={max(0.0, deadline - _clock()):.3f}s"
        return (
            f"<threadkit.CancelToken {state} callbacks={len(self._callbacks)}"
            f" children={len(self._node.children)} at {id(self):#x}>"
        )

    def _observe(self) -> bool:
        """Return whether the token is cancelled, cancelling it if its deadline passed."""
        if self._outcome is not None:
            return True
        deadline = self._deadline
        if deadline is not None and _clock() >= deadline:
            self.cancel(DeadlineExceeded)
            return True
        return False

    def _adopt(self, child: CancelToken) -> None:
        # The child is not shared with anyone yet, so its fields need no lock.
        self._observe()
        with self._lock:
            outcome = self._outcome
            if outcome is None:
                key = self._next_key
                self._next_key += 1
                child._node.key = key
                child._node.parent = weakref.ref(self._node)
                self._node.children[key] = child._node
                return
        child._outcome = outcome

    def _mark(self, reason: object) -> list[_Node] | None:
        """Set the outcome; return the child nodes to cancel, or None if already done."""
        with self._lock:
            if self._outcome is not None:
                return None
            self._outcome = (reason,)
            event = self._event
            children = self._node.take_children()
        if event is not None:
            event.set()
        self._node.detach()
        return children

    def _run_callbacks(self) -> KeyboardInterrupt | None:
        with self._lock:
            keys = list(self._callbacks)
        interrupt: KeyboardInterrupt | None = None
        for key in keys:
            # Popped one at a time so a callback can unregister one that has not run.
            with self._lock:
                fn = self._callbacks.pop(key, None)
            if fn is not None:
                interrupt = self._call(fn) or interrupt
        return interrupt

    def _call(self, fn: Callable[[CancelToken], object]) -> KeyboardInterrupt | None:
        try:
            fn(self)
        except KeyboardInterrupt as exc:
            # Ctrl-C must not be eaten by a callback; cancel() re-raises it at the end.
            return exc
        except BaseException:
            _logger.exception("cancel callback %s raised", describe_callable(fn))
        return None

    def _after_fork_in_child(self) -> None:
        # The child has only the forking thread: a lock another thread held stays held,
        # and the event's waiters are gone. Both are made anew, in the token's state.
        self._lock = new_lock()
        if self._event is not None:
            self._event = threading.Event()
            if self._outcome is not None:
                self._event.set()

    def _get_event(self) -> threading.Event:
        with self._lock:
            event = self._event
            if event is None:
                event = self._event = threading.Event()
                if self._outcome is not None:
                    event.set()
        return event


def _earliest(a: float | None, b: float | None) -> float | None:
    if a is None:
        return b
    if b is None:
        return a
    return min(a, b)


@final
class _Node:
    """A token's place in its tree, kept apart from the token so the tree survives it.

    Invariants:
    - A node holds its children strongly and its parent weakly, and its token weakly:
      a child never keeps its parent's token (nor its callbacks) alive.
    - When a token is collected its node becomes a ghost (token is None). A ghost with
      children stays in its parent, so cancelling an ancestor still reaches the
      descendants of a token nobody kept; a ghost without children is removed.
    - A node leaves its parent when its token is cancelled, or as an empty ghost, so
      a long-lived parent never piles up entries for finished children.
    - Nothing here takes a lock: these methods run in weakref callbacks, maybe inside
      the GC while this thread holds some token's lock. Each step is one atomic dict
      or attribute operation; ghosts only ever lose children, so the races between
      them only repeat idempotent pops.
    """

    __slots__ = ("__weakref__", "children", "key", "parent", "token")

    def __init__(self) -> None:
        self.children: dict[int, _Node] = {}
        self.key = 0
        self.parent: weakref.ref[_Node] | None = None
        self.token: weakref.ref[CancelToken] | None = None

    def take_children(self) -> list[_Node]:
        children = self.children.copy()
        self.children.clear()
        return list(children.values())

    def token_died(self, _: weakref.ref[CancelToken]) -> None:
        self.token = None
        self._prune()

    def detach(self) -> None:
        parent = self._leave_parent()
        if parent is not None:
            parent._prune()

    def _prune(self) -> None:
        # Walk up removing empty ghosts; iterative, as chains can be long.
        node: _Node | None = self
        while node is not None and node.token is None and not node.children:
            node = node._leave_parent()

    def _leave_parent(self) -> _Node | None:
        ref, self.parent = self.parent, None
        parent = None if ref is None else ref()
        if parent is not None:
            parent.children.pop(self.key, None)
        return parent


def _unregisterer(
    callbacks: dict[int, Callable[[CancelToken], object]], key: int
) -> Callable[[], None]:
    # Holds the token's table, not the token, so keeping it keeps nothing alive. No lock:
    # one dict.pop is atomic (on free-threaded builds too), and _run_callbacks pops each
    # callback the same way; a lock here would also be the one a forked child replaces.
    def unregister() -> None:
        callbacks.pop(key, None)

    return unregister


def _nothing() -> None:
    pass


def _safe_repr(value: object) -> str:
    try:
        return repr(value)
    except Exception:
        return f"<{type(value).__qualname__} with a failing repr>"


def check_wait(timeout: object, cancel: CancelToken | None) -> float | None:
    """Validate a limiter wait's ``timeout`` and ``cancel``; fail fast if already cancelled."""
    seconds = None if timeout is None else check_timeout(timeout)
    if cancel is not None:
        if not isinstance(cancel, CancelToken):
            raise TypeError(f"cancel must be a CancelToken or None, got {cancel!r}")
        cancel.raise_if_cancelled()
    return seconds
