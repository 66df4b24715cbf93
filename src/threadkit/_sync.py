"""Bounded, FIFO-fair semaphores and concurrency limiters, and the ``limited`` guard.

The three limiters here share one engine, ``_Permits``: a count of free permits plus a
queue of waiters, each parked on a lock of its own. A release hands permits straight
to the waiters at the head of the queue and never to a newcomer, so nobody barges in:
a waiter is never overtaken, and a large weighted request is not starved by a stream
of small ones. The uncontended path is one lock acquire and release.

- ``Semaphore``: a fixed number of permits, weighted acquire, over-release raises.
- ``CapacityLimiter``: one token per borrower, a total that can change at runtime.
- ``KeyedLimiter``: at most N holders per key; idle keys are forgotten.
- ``limited`` / ``Limited``: a context manager and decorator over any limiter,
  the rate limiters of ``_ratelimit`` included.

Blocking waits take a ``timeout`` (returning ``False`` when it expires, as
``threading.Semaphore`` does) and a ``cancel`` token (raising ``Cancelled``). Leaving a
wait for any reason, ``KeyboardInterrupt`` included, takes the waiter out of the queue
and hands back any permit granted to it at the last moment, so none is ever lost.
"""

from __future__ import annotations

import contextlib
import functools
import threading
import time
from collections import deque
from collections.abc import Callable, Hashable
from types import TracebackType
from typing import (
    ClassVar,
    Final,
    Generic,
    Literal,
    ParamSpec,
    Self,
    TypeVar,
    final,
)

import attrs

from . import _process
from ._cancel import CancelToken, check_wait
from ._limited import Limited, limited
from ._locks import Lock, new_lock
from ._validate import check_int
from ._waiting import acquire_interruptibly

__all__ = [
    "CapacityLimiter",
    "CapacityLimiterStatistics",
    "KeyedLimiter",
    "KeyedLimiterStatistics",
    "Semaphore",
    "SemaphoreStatistics",
]

K = TypeVar("K", bound=Hashable)
P = ParamSpec("P")
T = TypeVar("T")


# Waiter states. Only the holder of the owning limiter's lock changes a state, and
# whoever moves a waiter out of _WAITING is the one who releases its parking lock.
_WAITING: Final = 0
_GRANTED: Final = 1
_CANCELLED: Final = 2
_LEFT: Final = 3


def _check_total(_instance: object, attribute: attrs.Attribute[int], value: object) -> None:
    check_int(value, attribute.name.lstrip("_"))


# -- the engine -------------------------------------------------------------------------


class _Waiter:
    """One thread queued for ``n`` permits, parked on ``lock`` until it is granted."""

    __slots__ = ("lock", "n", "owner", "state")

    def __init__(self, n: int, owner: object = None) -> None:
        self.lock = threading.Lock()
        self.lock.acquire()
        self.n = n
        self.owner = owner
        self.state = _WAITING


class _Permits:
    """Free permits and the FIFO queue of waiters for them.

    Every method must be called with the owning limiter's lock held.

    Invariants:
        - free permits + permits held by callers == the owner's total. ``available``
          may go below zero when a ``CapacityLimiter`` shrinks.
        - A waiter is queued only while the head of the queue cannot be served: after
          every change ``grant()`` serves heads in arrival order until one does not fit.
        - With ``holders`` (a ``CapacityLimiter``) a waiter's owner is entered there in
          the same step that grants it a permit, and removed when it gives it back.
    """

    __slots__ = ("available", "holders", "waiters")

    def __init__(self, available: int, holders: dict[object, None] | None = None) -> None:
        self.available = available
        self.holders = holders
        self.waiters: deque[_Waiter] = deque()

    def grant(self) -> None:
        """Hand permits to the waiters at the head of the queue while they fit."""
        waiters = self.waiters
        while waiters and waiters[0].n <= self.available:
            waiter = waiters.popleft()
            self.available -= waiter.n
            if self.holders is not None:
                self.holders[waiter.owner] = None
            waiter.state = _GRANTED
            waiter.lock.release()

    def forget_waiters(self) -> None:
        """In a forked child: the queued threads are not here, so nobody waits.

        Nothing was granted to them, so no permit goes with them. The permits held by
        threads that are not here stay taken (a semaphore cannot tell whose they are).
        """
        self.waiters.clear()

    def withdraw(self, waiter: _Waiter) -> None:
        """Take ``waiter`` out for good, giving back whatever it was granted."""
        if waiter.state == _WAITING:
            # (An interrupt may have come between making the waiter and queueing it.)
            with contextlib.suppress(ValueError):
                self.waiters.remove(waiter)
        elif waiter.state == _GRANTED:
            self.available += waiter.n
            if self.holders is not None:
                del self.holders[waiter.owner]
        waiter.state = _LEFT
        # The queue may have lost its head, or gained permits: serve who fits now.
        self.grant()


def _cancel_waiter(
    lock: Lock,
    permits: _Permits,
    waiter: _Waiter,
    on_leave: Callable[[], None] | None,
    _token: CancelToken,
) -> None:
    # Runs in the thread that cancels the token, never under our lock (the token runs
    # callbacks outside its locks and we never call the token while holding ours).
    with lock:
        if waiter.state != _WAITING:
            return
        permits.waiters.remove(waiter)
        waiter.state = _CANCELLED
        permits.grant()
        if on_leave is not None:
            on_leave()
        waiter.lock.release()


def _block(
    lock: Lock,
    permits: _Permits,
    waiter: _Waiter,
    timeout: float | None,
    cancel: CancelToken | None,
    *,
    on_leave: Callable[[], None] | None = None,
) -> bool:
    """Wait until the queued ``waiter`` is granted; call with ``lock`` not held.

    Returns ``True`` once granted, ``False`` if ``timeout`` expired first; raises
    ``Cancelled`` if ``cancel`` was cancelled first. ``on_leave`` runs under ``lock``
    whenever the waiter leaves without its permits (a ``KeyedLimiter`` drops idle keys).
    """
    deadline = None if timeout is None else time.monotonic() + timeout
    unregister: Callable[[], None] | None = None
    gave_up = False
    try:
        if cancel is not None:
            unregister = cancel.add_callback(
                functools.partial(_cancel_waiter, lock, permits, waiter, on_leave)
            )
        while True:
            wait = None if deadline is None else max(0.0, deadline - time.monotonic())
            if cancel is not None:
                # remaining() may run our callback (deadline passed), so not under lock.
                left = cancel.remaining()
                if left is not None and (wait is None or left < wait):
                    wait = left
            if acquire_interruptibly(waiter.lock, wait):
                break
            expired = deadline is not None and time.monotonic() >= deadline
            token_done = cancel is not None and cancel.cancelled
            if not (expired or token_done):
                continue
            with lock:
                if waiter.state == _WAITING:
                    permits.withdraw(waiter)
                    if on_leave is not None:
                        on_leave()
                    gave_up = True
            break
    except BaseException:
        # KeyboardInterrupt (or another asynchronous exception) while parked: leave the
        # queue, or hand back permits granted just before the exception landed.
        with lock:
            permits.withdraw(waiter)
            if on_leave is not None:
                on_leave()
        raise
    finally:
        if unregister is not None:
            unregister()
    # The state is final here: whoever set it did so before releasing our lock.
    if waiter.state == _GRANTED:
        return True
    if cancel is not None and (waiter.state == _CANCELLED or cancel.cancelled):
        cancel.raise_if_cancelled()
    assert gave_up, "a waiter woke without being granted, cancelled or timed out"
    return False


# -- Semaphore --------------------------------------------------------------------------


@final
@attrs.frozen
class SemaphoreStatistics:
    """A snapshot of a ``Semaphore``.

    Attributes:
        total: The number of permits the semaphore was made with.
        available: Permits free right now.
        waiting: Threads blocked in ``acquire``.
        waiting_permits: Permits those threads ask for, all together.
    """

    total: int
    available: int
    waiting: int
    waiting_permits: int


@final
@attrs.define(eq=False, repr=False, init=False)
class Semaphore:
    """A bounded, FIFO-fair semaphore with weighted acquire.

    Like ``threading.BoundedSemaphore``, but: releasing more than was acquired raises
    and leaves the count unchanged; ``acquire(n)`` takes ``n`` permits at once (as Go's
    ``semaphore.Weighted``); waiters are served strictly in arrival order, so a large
    request is never starved by small ones; waits can be cancelled with a
    ``CancelToken``; and ``statistics()`` tells what it is doing.

    For example:

    ```python
    sem = Semaphore(4)          # at most 4 connections
    with sem:
        talk_to_the_host()
    ```

    Args:
        total: The number of permits, an ``int`` >= 1; all start free.

    Raises:
        TypeError: ``total`` is not an ``int``.
        ValueError: ``total`` is below 1.
    """

    _total: int = attrs.field(validator=_check_total)
    _lock: Lock = attrs.field(init=False, factory=new_lock)
    _permits: _Permits = attrs.field(init=False)

    _KEYED: ClassVar[Literal[False]] = False

    # A written-out signature, so type checkers and the docs see ``total`` (attrs would
    # name the parameter after the private field); attrs still validates it.
    def __init__(self, total: int) -> None:
        self.__attrs_init__(total)  # pyright: ignore[reportAttributeAccessIssue]

    def __attrs_post_init__(self) -> None:
        self._permits = _Permits(self._total)
        _process.register_fork_aware(self)

    def _after_fork_in_child(self) -> None:
        self._lock = new_lock()  # its holder may have been a thread that is not here
        self._permits.forget_waiters()

    @property
    def total(self) -> int:
        """The number of permits the semaphore was made with."""
        return self._total

    @property
    def available(self) -> int:
        """The number of permits free right now."""
        return self._permits.available

    def acquire(
        self, n: int = 1, *, timeout: float | None = None, cancel: CancelToken | None = None
    ) -> bool:
        """Take ``n`` permits, blocking until they are free.

        Waiters are served in arrival order: while anyone is queued, a newcomer queues
        too even if enough permits are free for it.

        Args:
            n: How many permits to take at once, an ``int`` from 1 to ``total``.
            timeout: The most seconds to wait, ``None`` to wait as long as it takes.
                ``0`` never blocks.
            cancel: A token whose cancellation ends the wait with ``Cancelled``.

        Returns:
            ``True`` once the permits are taken, ``False`` if ``timeout`` expired
            first (as ``threading.Semaphore.acquire`` does); nothing is taken then.

        Raises:
            TypeError: ``n`` is not an ``int``, ``timeout`` is not a number, or
                ``cancel`` is not a ``CancelToken``.
            ValueError: ``n`` is below 1 or above ``total``, or ``timeout`` is
                negative, NaN or infinite.
            Cancelled: ``cancel`` was cancelled before the permits were taken; none
                are taken then.
        """
        if type(n) is not int or n < 1:
            check_int(n, "n")
        if timeout is not None or cancel is not None:
            timeout = check_wait(timeout, cancel)
        permits = self._permits
        waiter: _Waiter | None = None
        taken = 0
        try:
            with self._lock:
                if n <= permits.available and not permits.waiters:
                    permits.available -= n
                    taken = n
                    return True
                if n > self._total:
                    raise ValueError(f"n must be an int <= total ({self._total}), got {n}")
                if timeout == 0:
                    return False
                waiter = _Waiter(n)
                permits.waiters.append(waiter)
            return _block(self._lock, permits, waiter, timeout, cancel)
        except BaseException:
            # A Ctrl-C anywhere in here: the caller gets no permit, so none stays taken.
            with self._lock:
                if waiter is not None:
                    permits.withdraw(waiter)
                elif taken:
                    permits.available += taken
                    permits.grant()
            raise

    def try_acquire(self, n: int = 1) -> bool:
        """Take ``n`` permits if that is possible right now, without blocking.

        Args:
            n: How many permits to take, an ``int`` from 1 to ``total``.

        Returns:
            ``True`` if the permits were taken, ``False`` if not enough are free or
            other threads are already waiting for theirs.

        Raises:
            TypeError: ``n`` is not an ``int``.
            ValueError: ``n`` is below 1 or above ``total``.
        """
        if type(n) is not int or n < 1:
            check_int(n, "n")
        permits = self._permits
        with self._lock:
            if n <= permits.available and not permits.waiters:
                permits.available -= n
                return True
            if n > self._total:
                raise ValueError(f"n must be an int <= total ({self._total}), got {n}")
            return False

    def release(self, n: int = 1) -> None:
        """Give back ``n`` permits, waking the waiters they are enough for.

        Args:
            n: How many permits to give back, an ``int`` >= 1.

        Raises:
            TypeError: ``n`` is not an ``int``.
            ValueError: ``n`` is below 1, or giving back ``n`` permits would make
                more than ``total`` free (over-release); the count is unchanged then.
        """
        if type(n) is not int or n < 1:
            check_int(n, "n")
        permits = self._permits
        with self._lock:
            if permits.available + n > self._total:
                raise ValueError(
                    f"release({n}) would free more than total ({self._total}) permits;"
                    f" only {self._total - permits.available} are held"
                )
            permits.available += n
            if permits.waiters:
                permits.grant()

    def statistics(self) -> SemaphoreStatistics:
        """Return a snapshot of the semaphore's state.

        Returns:
            The total, free permits, and the threads waiting and what they ask for.
        """
        with self._lock:
            return SemaphoreStatistics(
                total=self._total,
                available=self._permits.available,
                waiting=len(self._permits.waiters),
                waiting_permits=sum(w.n for w in self._permits.waiters),
            )

    def __enter__(self) -> Self:
        self.acquire()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.release()

    def __repr__(self) -> str:
        permits = self._permits
        return (
            f"<threadkit.Semaphore available={permits.available}/{self._total}"
            f" waiting={len(permits.waiters)} at {id(self):#x}>"
        )

    def _guard_enter(self, key: object, timeout: float | None, cancel: CancelToken | None) -> None:
        if not self.acquire(timeout=timeout, cancel=cancel):
            raise TimeoutError(f"no permit of {self!r} became free within {timeout} seconds")

    def _guard_exit(self, key: object) -> None:
        self.release()


# -- CapacityLimiter --------------------------------------------------------------------


@final
@attrs.frozen
class CapacityLimiterStatistics:
    """A snapshot of a ``CapacityLimiter``.

    Attributes:
        total: The current total number of tokens.
        borrowed: Tokens held right now; above ``total`` for a while after a shrink.
        available: Tokens free right now (never negative).
        waiting: Borrowers blocked in ``acquire``.
        borrowers: Who holds the tokens, in no particular order.
    """

    total: int
    borrowed: int
    available: int
    waiting: int
    borrowers: tuple[object, ...]


@final
@attrs.define(eq=False, repr=False, init=False)
class CapacityLimiter:
    """A FIFO-fair pool of tokens whose size can change while it is in use.

    Each borrower (by default the calling thread) holds at most one token. Raising
    ``total`` wakes waiters at once; lowering it never takes a token back from its
    holder: new borrowers wait until enough tokens come back. anyio's
    ``CapacityLimiter`` is the model.

    For example:

    ```python
    db_slots = CapacityLimiter(20)
    with db_slots:
        run_query()
    db_slots.total = 40         # the pool grew: 20 more may go at once
    ```

    Args:
        total: The number of tokens, an ``int`` >= 1.

    Raises:
        TypeError: ``total`` is not an ``int``.
        ValueError: ``total`` is below 1.
    """

    _total: int = attrs.field(validator=_check_total)
    _lock: Lock = attrs.field(init=False, factory=new_lock)
    _holders: dict[object, None] = attrs.field(init=False, factory=dict)
    _permits: _Permits = attrs.field(init=False)

    _KEYED: ClassVar[Literal[False]] = False

    # A written-out signature, so type checkers and the docs see ``total`` (attrs would
    # name the parameter after the private field); attrs still validates it.
    def __init__(self, total: int) -> None:
        self.__attrs_init__(total)  # pyright: ignore[reportAttributeAccessIssue]

    def __attrs_post_init__(self) -> None:
        self._permits = _Permits(self._total, self._holders)
        _process.register_fork_aware(self)

    def _after_fork_in_child(self) -> None:
        self._lock = new_lock()  # its holder may have been a thread that is not here
        permits = self._permits
        permits.forget_waiters()
        # Unlike a semaphore, the limiter knows its borrowers: the tokens of threads
        # that are not in the child come back (only the forking thread is here).
        here = threading.current_thread()
        for borrower in list(self._holders):
            if isinstance(borrower, threading.Thread) and borrower is not here:
                del self._holders[borrower]
                permits.available += 1

    @property
    def total(self) -> int:
        """The total number of tokens; set it to grow or shrink the limiter.

        Raises:
            TypeError: (on setting) the value is not an ``int``.
            ValueError: (on setting) the value is below 1.
        """
        return self._total

    @total.setter
    def total(self, value: int) -> None:
        check_int(value, "total")
        with self._lock:
            self._permits.available += value - self._total
            self._total = value
            self._permits.grant()

    @property
    def borrowed(self) -> int:
        """The number of tokens held right now."""
        return len(self._holders)

    @property
    def available(self) -> int:
        """The number of tokens free right now (0 while a shrink is being absorbed)."""
        return max(0, self._permits.available)

    def acquire(self, *, timeout: float | None = None, cancel: CancelToken | None = None) -> bool:
        """Borrow a token for the calling thread, blocking until one is free.

        Args:
            timeout: The most seconds to wait, ``None`` to wait as long as it takes.
            cancel: A token whose cancellation ends the wait with ``Cancelled``.

        Returns:
            ``True`` once the token is borrowed, ``False`` if ``timeout`` expired first.

        Raises:
            RuntimeError: The calling thread already holds or awaits a token here.
            TypeError: ``timeout`` is not a number, or ``cancel`` not a ``CancelToken``.
            ValueError: ``timeout`` is negative, NaN or infinite.
            Cancelled: ``cancel`` was cancelled before a token was borrowed.
        """
        return self.acquire_on_behalf_of(threading.current_thread(), timeout=timeout, cancel=cancel)

    def acquire_on_behalf_of(
        self, borrower: Hashable, *, timeout: float | None = None, cancel: CancelToken | None = None
    ) -> bool:
        """Borrow a token for ``borrower``, blocking until one is free.

        Args:
            borrower: Any hashable object that will give the token back, for example
                a job or a connection.
            timeout: The most seconds to wait, ``None`` to wait as long as it takes.
            cancel: A token whose cancellation ends the wait with ``Cancelled``.

        Returns:
            ``True`` once the token is borrowed, ``False`` if ``timeout`` expired first.

        Raises:
            RuntimeError: ``borrower`` already holds or awaits a token here.
            TypeError: ``borrower`` is not hashable, ``timeout`` is not a number, or
                ``cancel`` is not a ``CancelToken``.
            ValueError: ``timeout`` is negative, NaN or infinite.
            Cancelled: ``cancel`` was cancelled before a token was borrowed.
        """
        if timeout is not None or cancel is not None:
            timeout = check_wait(timeout, cancel)
        permits = self._permits
        waiter: _Waiter | None = None
        taken = False
        try:
            with self._lock:
                self._check_new_borrower(borrower)
                if permits.available >= 1 and not permits.waiters:
                    permits.available -= 1
                    self._holders[borrower] = None
                    taken = True
                    return True
                if timeout == 0:
                    return False
                waiter = _Waiter(1, borrower)
                permits.waiters.append(waiter)
            return _block(self._lock, permits, waiter, timeout, cancel)
        except BaseException:
            # A Ctrl-C anywhere in here: the caller gets no token, so none stays lent.
            with self._lock:
                if waiter is not None:
                    permits.withdraw(waiter)
                elif taken and self._holders.pop(borrower, True) is None:
                    permits.available += 1
                    permits.grant()
            raise

    def try_acquire(self) -> bool:
        """Borrow a token for the calling thread if one is free right now.

        Returns:
            ``True`` if a token was borrowed, ``False`` if none is free or others wait.

        Raises:
            RuntimeError: The calling thread already holds or awaits a token here.
        """
        return self.try_acquire_on_behalf_of(threading.current_thread())

    def try_acquire_on_behalf_of(self, borrower: Hashable) -> bool:
        """Borrow a token for ``borrower`` if one is free right now.

        Args:
            borrower: Any hashable object that will give the token back.

        Returns:
            ``True`` if a token was borrowed, ``False`` if none is free or others wait.

        Raises:
            RuntimeError: ``borrower`` already holds or awaits a token here.
            TypeError: ``borrower`` is not hashable.
        """
        permits = self._permits
        with self._lock:
            self._check_new_borrower(borrower)
            if permits.available >= 1 and not permits.waiters:
                permits.available -= 1
                self._holders[borrower] = None
                return True
            return False

    def release(self) -> None:
        """Give back the token the calling thread holds.

        Raises:
            ValueError: The calling thread holds no token here.
        """
        self.release_on_behalf_of(threading.current_thread())

    def release_on_behalf_of(self, borrower: Hashable) -> None:
        """Give back the token ``borrower`` holds, waking the next waiter.

        Args:
            borrower: The object the token was borrowed for.

        Raises:
            ValueError: ``borrower`` holds no token here (over-release); nothing changes.
            TypeError: ``borrower`` is not hashable.
        """
        with self._lock:
            if borrower not in self._holders:
                raise ValueError(f"{borrower!r} holds no token of this CapacityLimiter")
            del self._holders[borrower]
            self._permits.available += 1
            self._permits.grant()

    def statistics(self) -> CapacityLimiterStatistics:
        """Return a snapshot of the limiter's state.

        Returns:
            The total, borrowed and free tokens, the waiters and the borrowers.
        """
        with self._lock:
            return CapacityLimiterStatistics(
                total=self._total,
                borrowed=len(self._holders),
                available=max(0, self._permits.available),
                waiting=len(self._permits.waiters),
                borrowers=tuple(self._holders),
            )

    def __enter__(self) -> Self:
        self.acquire()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.release()

    def __repr__(self) -> str:
        return (
            f"<threadkit.CapacityLimiter borrowed={len(self._holders)}/{self._total}"
            f" waiting={len(self._permits.waiters)} at {id(self):#x}>"
        )

    def _check_new_borrower(self, borrower: Hashable) -> None:
        if borrower in self._holders or any(w.owner == borrower for w in self._permits.waiters):
            raise RuntimeError(
                f"{borrower!r} already holds or awaits a token of this CapacityLimiter;"
                " a borrower holds at most one"
            )

    def _guard_enter(self, key: object, timeout: float | None, cancel: CancelToken | None) -> None:
        if not self.acquire(timeout=timeout, cancel=cancel):
            raise TimeoutError(f"no token of {self!r} became free within {timeout} seconds")

    def _guard_exit(self, key: object) -> None:
        self.release()


# -- KeyedLimiter -----------------------------------------------------------------------


@final
@attrs.frozen
class KeyedLimiterStatistics:
    """A snapshot of a ``KeyedLimiter``.

    Attributes:
        limit_per_key: How many may hold the same key at once.
        keys: Keys currently tracked: those with a holder or a waiter.
        held: Permits held, over all keys.
        waiting: Threads blocked in ``acquire``, over all keys.
    """

    limit_per_key: int
    keys: int
    held: int
    waiting: int


@final
@attrs.define(eq=False, repr=False, init=False)
class KeyedLimiter(Generic[K]):
    """At most ``limit_per_key`` concurrent holders per key: per host, per tenant.

    Each key behaves like its own FIFO-fair ``Semaphore(limit_per_key)``. A key is
    only remembered while someone holds or awaits it, so memory follows the number of
    keys in use, not the number ever seen.

    For example:

    ```python
    per_host = KeyedLimiter(4)
    with per_host.hold(urlsplit(url).hostname):
        fetch(url)
    ```

    Args:
        limit_per_key: How many may hold the same key at once, an ``int`` >= 1.

    Raises:
        TypeError: ``limit_per_key`` is not an ``int``.
        ValueError: ``limit_per_key`` is below 1.
    """

    _limit_per_key: int = attrs.field(validator=_check_total)
    _lock: Lock = attrs.field(init=False, factory=new_lock)
    _entries: dict[K, _Permits] = attrs.field(init=False, factory=dict)

    _KEYED: ClassVar[Literal[True]] = True

    # A written-out signature, so type checkers and the docs see ``limit_per_key`` (attrs would
    # name the parameter after the private field); attrs still validates it.
    def __init__(self, limit_per_key: int) -> None:
        self.__attrs_init__(limit_per_key)  # pyright: ignore[reportAttributeAccessIssue]
        _process.register_fork_aware(self)

    @property
    def limit_per_key(self) -> int:
        """How many may hold the same key at once."""
        return self._limit_per_key

    def acquire(
        self, key: K, *, timeout: float | None = None, cancel: CancelToken | None = None
    ) -> bool:
        """Take a permit for ``key``, blocking while ``limit_per_key`` others hold it.

        Args:
            key: Any hashable value naming the resource, such as a host name.
            timeout: The most seconds to wait, ``None`` to wait as long as it takes.
            cancel: A token whose cancellation ends the wait with ``Cancelled``.

        Returns:
            ``True`` once the permit is taken, ``False`` if ``timeout`` expired first.

        Raises:
            TypeError: ``key`` is not hashable, ``timeout`` is not a number, or
                ``cancel`` is not a ``CancelToken``.
            ValueError: ``timeout`` is negative, NaN or infinite.
            Cancelled: ``cancel`` was cancelled before the permit was taken.
        """
        if timeout is not None or cancel is not None:
            timeout = check_wait(timeout, cancel)
        waiter: _Waiter | None = None
        permits: _Permits | None = None
        taken = False
        try:
            with self._lock:
                permits = self._entries.get(key)
                if permits is None:
                    self._entries[key] = _Permits(self._limit_per_key - 1)
                    taken = True
                    return True
                if permits.available >= 1 and not permits.waiters:
                    permits.available -= 1
                    taken = True
                    return True
                if timeout == 0:
                    return False
                waiter = _Waiter(1)
                permits.waiters.append(waiter)
            on_leave = functools.partial(self._forget_if_idle, key, permits)
            return _block(self._lock, permits, waiter, timeout, cancel, on_leave=on_leave)
        except BaseException:
            # A Ctrl-C anywhere in here: the caller gets no permit, so none stays taken.
            with self._lock:
                if waiter is not None and permits is not None:
                    permits.withdraw(waiter)
                    self._forget_if_idle(key, permits)
                elif taken:
                    self._give_back(key)
            raise

    def try_acquire(self, key: K) -> bool:
        """Take a permit for ``key`` if that is possible right now, without blocking.

        Args:
            key: Any hashable value naming the resource.

        Returns:
            ``True`` if the permit was taken, ``False`` if the key is at its limit or
            others wait for it.

        Raises:
            TypeError: ``key`` is not hashable.
        """
        with self._lock:
            permits = self._entries.get(key)
            if permits is None:
                self._entries[key] = _Permits(self._limit_per_key - 1)
                return True
            if permits.available >= 1 and not permits.waiters:
                permits.available -= 1
                return True
            return False

    def release(self, key: K) -> None:
        """Give back a permit for ``key``, waking the next waiter for that key.

        Args:
            key: The key the permit was taken for.

        Raises:
            ValueError: No permit of ``key`` is held (over-release); nothing changes.
            TypeError: ``key`` is not hashable.
        """
        with self._lock:
            permits = self._entries.get(key)
            if permits is None or permits.available >= self._limit_per_key:
                raise ValueError(f"release({key!r}) without a matching acquire: no permit is held")
            self._give_back(key)

    def _give_back(self, key: K) -> None:
        # Under self._lock: one permit of ``key`` (known to be held) comes back.
        permits = self._entries[key]
        permits.available += 1
        if permits.waiters:
            permits.grant()
        elif permits.available == self._limit_per_key:
            del self._entries[key]

    def hold(
        self, key: K, *, timeout: float | None = None, cancel: CancelToken | None = None
    ) -> Limited:
        """Return a guard holding a permit of ``key`` for a ``with`` block.

        ``with limiter.hold(key):`` is ``limited(limiter, key=key)``: it acquires on
        entry, releases on exit, and raises ``TimeoutError`` if ``timeout`` expires.

        Args:
            key: Any hashable value naming the resource.
            timeout: The most seconds to wait on entry, ``None`` for no limit.
            cancel: A token whose cancellation ends the wait with ``Cancelled``.

        Returns:
            A reusable ``Limited`` guard, also usable as a decorator.

        Raises:
            TypeError: ``timeout`` is not a number, or ``cancel`` is not a ``CancelToken``.
            ValueError: ``timeout`` is negative, NaN or infinite.
        """
        return limited(self, key=key, timeout=timeout, cancel=cancel)

    def statistics(self) -> KeyedLimiterStatistics:
        """Return a snapshot of the limiter's state.

        Returns:
            The limit, the keys in use, and the permits held and awaited over all keys.
        """
        with self._lock:
            entries = list(self._entries.values())
            return KeyedLimiterStatistics(
                limit_per_key=self._limit_per_key,
                keys=len(entries),
                held=sum(self._limit_per_key - p.available for p in entries),
                waiting=sum(len(p.waiters) for p in entries),
            )

    def __repr__(self) -> str:
        return (
            f"<threadkit.KeyedLimiter limit_per_key={self._limit_per_key}"
            f" keys={len(self._entries)} at {id(self):#x}>"
        )

    def _after_fork_in_child(self) -> None:
        self._lock = new_lock()  # its holder may have been a thread that is not here
        for key, permits in list(self._entries.items()):
            permits.forget_waiters()
            self._forget_if_idle(key, permits)

    def _forget_if_idle(self, key: K, permits: _Permits) -> None:
        # Called under self._lock after a waiter left without its permit.
        if (
            not permits.waiters
            and permits.available == self._limit_per_key
            and self._entries.get(key) is permits
        ):
            del self._entries[key]

    def _guard_enter(self, key: K, timeout: float | None, cancel: CancelToken | None) -> None:
        if not self.acquire(key, timeout=timeout, cancel=cancel):
            raise TimeoutError(f"no permit for key {key!r} became free within {timeout} seconds")

    def _guard_exit(self, key: K) -> None:
        self.release(key)
