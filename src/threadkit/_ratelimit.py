"""Token-bucket rate limiters, plain and keyed, with an injectable clock.

A bucket holds up to ``burst`` tokens and refills at ``rate`` tokens a second. A
caller that finds too few tokens does not poll: it *reserves* its tokens, driving the
bucket into debt, and sleeps until the moment the debt is paid off (Go's
``rate.Limiter`` works the same way). Reservations are made under one lock in arrival
order, so waiters are served first come, first served, and the late wake-up of one
sleeper never costs the next one its slot: over any long run the grants stay within
``rate * seconds + burst``.

A caller leaving before its moment (``Cancelled``, ``KeyboardInterrupt``) hands its
tokens back and everyone who reserved after it moves up by that much, exactly as if
it had never asked. A ``timeout`` never makes anyone wait in vain: when the tokens
would be due later than that, ``acquire`` returns ``False`` at once.

Time comes from ``clock`` and sleeping is done by ``wait``, both injectable, so tests
can run a limiter on fake time and be exact.
"""

from __future__ import annotations

import math
import threading
import time
from collections import deque
from collections.abc import Callable, Hashable, Iterable
from numbers import Real
from typing import Any, ClassVar, Final, Generic, Literal, TypeVar, final

import attrs

from . import _process
from ._cancel import CancelToken, check_wait
from ._limited import Limited, limited
from ._locks import new_lock
from ._validate import check_int
from ._waiting import wait_slice

__all__ = [
    "KeyedRateLimiter",
    "KeyedRateLimiterStatistics",
    "RateLimiter",
    "RateLimiterStatistics",
]

K = TypeVar("K", bound=Hashable)

# Float slack when comparing tokens and times, so that a fake clock advanced by exactly
# the computed wait (0.1 + 0.2 ...) grants what arithmetic on paper would.
_EPSILON: Final = 1e-9
# A keyed limiter sweeps out idle buckets when it holds this many, or twice as many
# as survived the last sweep: memory stays proportional to the keys in use.
_MIN_SWEEP: Final = 1024


def _to_rate(value: float) -> float:
    raw: object = value  # typed float for callers, but checked as anything at runtime
    if isinstance(raw, bool) or not isinstance(raw, Real):
        raise TypeError(f"rate must be a number > 0 (tokens per second), got {value!r}")
    rate = float(raw)
    if not (rate > 0 and math.isfinite(rate)):
        raise ValueError(f"rate must be a finite number > 0 (tokens per second), got {value!r}")
    return rate


def _to_burst(value: int) -> int:
    return check_int(value, "burst")


def _check_callable(_instance: object, attribute: attrs.Attribute[Any], value: object) -> None:
    if value is not None and not callable(value):
        raise TypeError(f"{attribute.name.lstrip('_')} must be callable, got {value!r}")


def _event_wait(event: threading.Event, seconds: float) -> object:
    # threading.Event.wait refuses timeouts beyond TIMEOUT_MAX; a debt of years is fine.
    return event.wait(wait_slice(seconds))  # waking early is harmless


class _Reservation:
    """Tokens promised to one sleeping caller, due at ``ready_at`` on the clock."""

    __slots__ = ("event", "n", "ready_at")

    def __init__(self, n: int, ready_at: float) -> None:
        self.n = n
        self.ready_at = ready_at
        self.event = threading.Event()


class _Bucket:
    """Tokens of one bucket; every method must be called under the owner's lock.

    Invariants:
        - ``tokens`` is negative while reservations are outstanding: it is their debt.
        - ``sleepers`` holds the outstanding reservations in arrival order, so their
          ``ready_at`` times never decrease along it, and the last one is due when the
          debt is paid off: ``last.ready_at == stamp - tokens / rate``.
    """

    __slots__ = ("sleepers", "stamp", "tokens")

    def __init__(self, tokens: float, stamp: float) -> None:
        self.tokens = tokens
        self.stamp = stamp
        self.sleepers: deque[_Reservation] = deque()

    def refill(self, now: float, rate: float, burst: int) -> None:
        if now > self.stamp:
            self.tokens = min(float(burst), self.tokens + (now - self.stamp) * rate)
            self.stamp = now

    def is_idle(self, now: float, rate: float, burst: int) -> bool:
        """True if the bucket is full by ``now``: indistinguishable from a new one."""
        return not self.sleepers and self.tokens + (now - self.stamp) * rate >= burst - _EPSILON


class _Engine:
    """The parameters and the acquire logic shared by both rate limiters."""

    __slots__ = ("acquired", "burst", "clock", "lock", "rate", "wait")

    def __init__(
        self,
        rate: float,
        burst: int,
        clock: Callable[[], float],
        wait: Callable[[threading.Event, float], object] | None,
    ) -> None:
        self.rate = rate
        self.burst = burst
        self.clock = clock
        self.wait = _event_wait if wait is None else wait
        self.lock = new_lock()
        self.acquired = 0

    def check_n(self, n: int) -> None:
        if type(n) is not int or n < 1:
            check_int(n, "n")
        if n > self.burst:
            raise ValueError(f"n must be an int <= burst ({self.burst}), got {n}")

    def try_take(self, bucket: _Bucket, n: int, now: float) -> bool:
        """Take ``n`` tokens if they are there (call under ``lock``)."""
        bucket.refill(now, self.rate, self.burst)
        if bucket.tokens >= n - _EPSILON:
            bucket.tokens -= n
            self.acquired += n
            return True
        return False

    def reserve(
        self, bucket: _Bucket, n: int, now: float, timeout: float | None
    ) -> _Reservation | None:
        """Reserve ``n`` tokens (call under ``lock``, right after ``try_take`` failed).

        Returns the reservation, or ``None`` (nothing reserved) when its tokens would
        be due more than ``timeout`` seconds from now.
        """
        delay = (n - bucket.tokens) / self.rate
        if timeout is not None and delay > timeout + _EPSILON:
            return None
        bucket.tokens -= n
        reservation = _Reservation(n, now + delay)
        bucket.sleepers.append(reservation)
        return reservation

    def sleep_until_due(
        self, bucket: _Bucket, reservation: _Reservation, cancel: CancelToken | None
    ) -> None:
        """Sleep until ``reservation`` is due; call with ``lock`` not held."""
        event = reservation.event
        unregister: Callable[[], None] | None = None
        try:
            if cancel is not None:
                unregister = cancel.add_callback(lambda _token: event.set())
            while True:
                with self.lock:
                    # Cleared before looking, so a wake-up that lands from here on is
                    # kept; ready_at moves earlier when someone ahead of us gives up.
                    event.clear()
                    delay = reservation.ready_at - self.clock()
                if delay <= _EPSILON:
                    break
                if cancel is not None:
                    # Both calls may run callbacks, so never under our lock.
                    cancel.raise_if_cancelled()
                    left = cancel.remaining()
                    if left is not None:
                        delay = min(delay, left)
                self.wait(event, delay)
        except BaseException:
            with self.lock:
                self._give_back(bucket, reservation)
            raise
        finally:
            if unregister is not None:
                unregister()
        with self.lock:
            bucket.sleepers.remove(reservation)
            self.acquired += reservation.n

    def after_fork_in_child(self, buckets: Iterable[_Bucket]) -> None:
        """In a forked child: a new lock, and the sleepers' tokens back (their threads are
        not here; only the forking thread is, and it was not sleeping)."""
        self.lock = new_lock()
        for bucket in buckets:
            while bucket.sleepers:
                self._give_back(bucket, bucket.sleepers[-1])

    def _give_back(self, bucket: _Bucket, reservation: _Reservation) -> None:
        # As if the reservation had never been made: the debt shrinks by its tokens and
        # everyone who reserved after it is due n / rate seconds earlier.
        sleepers = bucket.sleepers
        index = sleepers.index(reservation)
        del sleepers[index]
        bucket.refill(self.clock(), self.rate, self.burst)
        bucket.tokens = min(float(self.burst), bucket.tokens + reservation.n)
        shift = reservation.n / self.rate
        for later in list(sleepers)[index:]:
            later.ready_at -= shift
            later.event.set()


def _timeout_error(limiter: object, timeout: float | None) -> TimeoutError:
    return TimeoutError(f"{limiter!r} had no token for the next {timeout} seconds")


# -- RateLimiter ------------------------------------------------------------------------


@final
@attrs.frozen
class RateLimiterStatistics:
    """A snapshot of a ``RateLimiter``.

    Attributes:
        rate: Tokens added per second.
        burst: The most tokens the bucket holds.
        tokens: Tokens in the bucket right now (0 while sleepers are owed tokens).
        waiting: Callers asleep in ``acquire`` until their tokens are due.
        acquired: Tokens handed out since the limiter was made.
    """

    rate: float
    burst: int
    tokens: float
    waiting: int
    acquired: int


@final
@attrs.define(eq=False, repr=False, init=False)
class RateLimiter:
    """A thread-safe token bucket: at most ``rate`` acquisitions a second on average.

    Up to ``burst`` tokens may be taken at once after a quiet spell; after that
    acquisitions are spaced ``1 / rate`` seconds apart. Waiters are served in arrival
    order.

    For example:

    ```python
    api = RateLimiter(10)              # 10 requests a second
    for item in items:
        api.acquire()
        post(item)
    ```

    Args:
        rate: Tokens added per second, a finite number > 0 (``0.5`` is one every two
            seconds).
        burst: The most tokens the bucket holds, an ``int`` >= 1. The bucket starts full.
        clock: Returns the current time in seconds; ``time.monotonic`` by default.
            Inject a fake one, together with ``wait``, to test on fake time.
        wait: Called as ``wait(event, seconds)`` to sleep: it must return once
            ``event`` is set, or after ``seconds`` of ``clock`` time, whichever comes
            first. Returning early is harmless: the limiter checks the clock again.
            By default ``event.wait(seconds)``.

    Raises:
        TypeError: ``rate`` is not a number, ``burst`` is not an ``int``, or ``clock``
            or ``wait`` is not callable.
        ValueError: ``rate`` is not > 0 or not finite, or ``burst`` is below 1.
    """

    _rate: float = attrs.field(converter=_to_rate)
    _burst: int = attrs.field(default=1, converter=_to_burst)
    _clock: Callable[[], float] = attrs.field(
        default=time.monotonic, kw_only=True, validator=_check_callable
    )
    _wait: Callable[[threading.Event, float], object] | None = attrs.field(
        default=None, kw_only=True, validator=_check_callable
    )
    _engine: _Engine = attrs.field(init=False)
    _bucket: _Bucket = attrs.field(init=False)

    _KEYED: ClassVar[Literal[False]] = False

    # A written-out signature, so type checkers and the docs see the public names (attrs
    # would name the parameters after the private fields); attrs still converts them.
    def __init__(
        self,
        rate: float,
        burst: int = 1,
        *,
        clock: Callable[[], float] = time.monotonic,
        wait: Callable[[threading.Event, float], object] | None = None,
    ) -> None:
        self.__attrs_init__(  # pyright: ignore[reportAttributeAccessIssue]
            rate, burst, clock=clock, wait=wait
        )

    def __attrs_post_init__(self) -> None:
        self._engine = _Engine(self._rate, self._burst, self._clock, self._wait)
        self._bucket = _Bucket(float(self._burst), self._clock())
        _process.register_fork_aware(self)

    def _after_fork_in_child(self) -> None:
        self._engine.after_fork_in_child([self._bucket])

    @property
    def rate(self) -> float:
        """Tokens added per second."""
        return self._rate

    @property
    def burst(self) -> int:
        """The most tokens the bucket holds."""
        return self._burst

    def acquire(
        self, n: int = 1, *, timeout: float | None = None, cancel: CancelToken | None = None
    ) -> bool:
        """Take ``n`` tokens, sleeping until they are due.

        If the tokens would only be due more than ``timeout`` seconds from now, returns
        ``False`` at once, without sleeping and without taking anything.

        Args:
            n: How many tokens to take at once, an ``int`` from 1 to ``burst``.
            timeout: The most seconds to wait, ``None`` to wait as long as it takes.
            cancel: A token whose cancellation ends the wait with ``Cancelled``.

        Returns:
            ``True`` once the tokens are taken, ``False`` if they could not be had
            within ``timeout``.

        Raises:
            TypeError: ``n`` is not an ``int``, ``timeout`` is not a number, or
                ``cancel`` is not a ``CancelToken``.
            ValueError: ``n`` is below 1 or above ``burst``, or ``timeout`` is
                negative, NaN or infinite.
            Cancelled: ``cancel`` was cancelled before the tokens were due; they are
                given back (see the module notes).
        """
        engine = self._engine
        engine.check_n(n)
        if timeout is not None or cancel is not None:
            timeout = check_wait(timeout, cancel)
        with engine.lock:
            now = engine.clock()
            if engine.try_take(self._bucket, n, now):
                return True
            reserved = engine.reserve(self._bucket, n, now, timeout)
        if reserved is None:
            return False
        engine.sleep_until_due(self._bucket, reserved, cancel)
        return True

    def try_acquire(self, n: int = 1) -> bool:
        """Take ``n`` tokens if the bucket has them right now, without sleeping.

        Args:
            n: How many tokens to take, an ``int`` from 1 to ``burst``.

        Returns:
            ``True`` if the tokens were taken; ``False`` if too few are there, which
            is always the case while others sleep waiting for theirs.

        Raises:
            TypeError: ``n`` is not an ``int``.
            ValueError: ``n`` is below 1 or above ``burst``.
        """
        engine = self._engine
        engine.check_n(n)
        with engine.lock:
            return engine.try_take(self._bucket, n, engine.clock())

    def statistics(self) -> RateLimiterStatistics:
        """Return a snapshot of the limiter's state.

        Returns:
            The rate and burst, the tokens in the bucket now, the sleepers, and the
            tokens handed out so far.
        """
        engine = self._engine
        with engine.lock:
            bucket = self._bucket
            bucket.refill(engine.clock(), engine.rate, engine.burst)
            return RateLimiterStatistics(
                rate=engine.rate,
                burst=engine.burst,
                tokens=max(0.0, bucket.tokens),
                waiting=len(bucket.sleepers),
                acquired=engine.acquired,
            )

    def __repr__(self) -> str:
        bucket = self._bucket
        return (
            f"<threadkit.RateLimiter rate={self._rate:g}/s burst={self._burst}"
            f" waiting={len(bucket.sleepers)} acquired={self._engine.acquired} at {id(self):#x}>"
        )

    def _guard_enter(self, key: object, timeout: float | None, cancel: CancelToken | None) -> None:
        if not self.acquire(timeout=timeout, cancel=cancel):
            raise _timeout_error(self, timeout)

    def _guard_exit(self, key: object) -> None:
        pass  # tokens are spent, not returned


# -- KeyedRateLimiter -------------------------------------------------------------------


@final
@attrs.frozen
class KeyedRateLimiterStatistics:
    """A snapshot of a ``KeyedRateLimiter``.

    Attributes:
        rate: Tokens added per second to each key's bucket.
        burst: The most tokens each bucket holds.
        keys: Buckets currently remembered (idle full ones are dropped from time to time).
        waiting: Callers asleep in ``acquire``, over all keys.
        acquired: Tokens handed out since the limiter was made, over all keys.
    """

    rate: float
    burst: int
    keys: int
    waiting: int
    acquired: int


@final
@attrs.define(eq=False, repr=False, init=False)
class KeyedRateLimiter(Generic[K]):
    """A token bucket per key: at most ``rate`` acquisitions a second for each key.

    Each key (a host, a tenant, an API key) gets its own ``RateLimiter``-like bucket,
    made on first use. Buckets that have refilled and have no sleepers are dropped
    from time to time, so a million distinct keys do not pile up in memory.

    For example:

    ```python
    per_host = KeyedRateLimiter(5, burst=5)
    per_host.acquire(urlsplit(url).hostname)
    fetch(url)
    ```

    Args:
        rate: Tokens added per second to each bucket, a finite number > 0.
        burst: The most tokens each bucket holds, an ``int`` >= 1; new buckets are full.
        clock: Returns the current time in seconds; ``time.monotonic`` by default.
        wait: Called as ``wait(event, seconds)`` to sleep; see ``RateLimiter``.

    Raises:
        TypeError: ``rate`` is not a number, ``burst`` is not an ``int``, or ``clock``
            or ``wait`` is not callable.
        ValueError: ``rate`` is not > 0 or not finite, or ``burst`` is below 1.
    """

    _rate: float = attrs.field(converter=_to_rate)
    _burst: int = attrs.field(default=1, converter=_to_burst)
    _clock: Callable[[], float] = attrs.field(
        default=time.monotonic, kw_only=True, validator=_check_callable
    )
    _wait: Callable[[threading.Event, float], object] | None = attrs.field(
        default=None, kw_only=True, validator=_check_callable
    )
    _engine: _Engine = attrs.field(init=False)
    _buckets: dict[K, _Bucket] = attrs.field(init=False, factory=dict)
    _sweep_at: int = attrs.field(init=False, default=_MIN_SWEEP)

    _KEYED: ClassVar[Literal[True]] = True

    # A written-out signature, so type checkers and the docs see the public names (attrs
    # would name the parameters after the private fields); attrs still converts them.
    def __init__(
        self,
        rate: float,
        burst: int = 1,
        *,
        clock: Callable[[], float] = time.monotonic,
        wait: Callable[[threading.Event, float], object] | None = None,
    ) -> None:
        self.__attrs_init__(  # pyright: ignore[reportAttributeAccessIssue]
            rate, burst, clock=clock, wait=wait
        )

    def __attrs_post_init__(self) -> None:
        self._engine = _Engine(self._rate, self._burst, self._clock, self._wait)
        _process.register_fork_aware(self)

    def _after_fork_in_child(self) -> None:
        self._engine.after_fork_in_child(list(self._buckets.values()))

    @property
    def rate(self) -> float:
        """Tokens added per second to each key's bucket."""
        return self._rate

    @property
    def burst(self) -> int:
        """The most tokens each bucket holds."""
        return self._burst

    def acquire(
        self,
        key: K,
        n: int = 1,
        *,
        timeout: float | None = None,
        cancel: CancelToken | None = None,
    ) -> bool:
        """Take ``n`` tokens from ``key``'s bucket, sleeping until they are due.

        Args:
            key: Any hashable value naming the rate-limited party.
            n: How many tokens to take at once, an ``int`` from 1 to ``burst``.
            timeout: The most seconds to wait, ``None`` to wait as long as it takes;
                ``False`` is returned at once if the tokens are due later than that.
            cancel: A token whose cancellation ends the wait with ``Cancelled``.

        Returns:
            ``True`` once the tokens are taken, ``False`` if they could not be had
            within ``timeout``.

        Raises:
            TypeError: ``key`` is not hashable, ``n`` is not an ``int``, ``timeout``
                is not a number, or ``cancel`` is not a ``CancelToken``.
            ValueError: ``n`` is below 1 or above ``burst``, or ``timeout`` is
                negative, NaN or infinite.
            Cancelled: ``cancel`` was cancelled before the tokens were due.
        """
        engine = self._engine
        engine.check_n(n)
        if timeout is not None or cancel is not None:
            timeout = check_wait(timeout, cancel)
        with engine.lock:
            now = engine.clock()
            bucket = self._bucket(key, now)
            if engine.try_take(bucket, n, now):
                return True
            reserved = engine.reserve(bucket, n, now, timeout)
        if reserved is None:
            return False
        engine.sleep_until_due(bucket, reserved, cancel)
        return True

    def try_acquire(self, key: K, n: int = 1) -> bool:
        """Take ``n`` tokens from ``key``'s bucket if it has them right now.

        Args:
            key: Any hashable value naming the rate-limited party.
            n: How many tokens to take, an ``int`` from 1 to ``burst``.

        Returns:
            ``True`` if the tokens were taken, ``False`` if too few are there.

        Raises:
            TypeError: ``key`` is not hashable or ``n`` is not an ``int``.
            ValueError: ``n`` is below 1 or above ``burst``.
        """
        engine = self._engine
        engine.check_n(n)
        with engine.lock:
            now = engine.clock()
            return engine.try_take(self._bucket(key, now), n, now)

    def hold(
        self, key: K, *, timeout: float | None = None, cancel: CancelToken | None = None
    ) -> Limited:
        """Return a guard that spends a token of ``key`` on entering a ``with`` block.

        Args:
            key: Any hashable value naming the rate-limited party.
            timeout: The most seconds to wait on entry; ``TimeoutError`` after that.
            cancel: A token whose cancellation ends the wait with ``Cancelled``.

        Returns:
            A reusable ``Limited`` guard, also usable as a decorator.

        Raises:
            TypeError: ``timeout`` is not a number, or ``cancel`` is not a ``CancelToken``.
            ValueError: ``timeout`` is negative, NaN or infinite.
        """
        return limited(self, key=key, timeout=timeout, cancel=cancel)

    def statistics(self) -> KeyedRateLimiterStatistics:
        """Return a snapshot of the limiter's state.

        Returns:
            The rate and burst, the buckets remembered, the sleepers and the tokens
            handed out so far.
        """
        engine = self._engine
        with engine.lock:
            return KeyedRateLimiterStatistics(
                rate=engine.rate,
                burst=engine.burst,
                keys=len(self._buckets),
                waiting=sum(len(b.sleepers) for b in self._buckets.values()),
                acquired=engine.acquired,
            )

    def __repr__(self) -> str:
        return (
            f"<threadkit.KeyedRateLimiter rate={self._rate:g}/s burst={self._burst}"
            f" keys={len(self._buckets)} acquired={self._engine.acquired} at {id(self):#x}>"
        )

    def _bucket(self, key: K, now: float) -> _Bucket:
        # Called under the engine's lock.
        bucket = self._buckets.get(key)
        if bucket is None:
            if len(self._buckets) >= self._sweep_at:
                self._sweep(now)
            bucket = self._buckets[key] = _Bucket(float(self._burst), now)
        return bucket

    def _sweep(self, now: float) -> None:
        # Amortised O(1) per new key: a sweep of n buckets happens only after n/2 were
        # added since the last one. A dropped bucket was full, so it is exactly what a
        # new one would be; a sleeper's bucket is never dropped (it is in debt).
        rate, burst = self._rate, self._burst
        self._buckets = {k: b for k, b in self._buckets.items() if not b.is_idle(now, rate, burst)}
        self._sweep_at = max(_MIN_SWEEP, 2 * len(self._buckets))

    def _guard_enter(self, key: K, timeout: float | None, cancel: CancelToken | None) -> None:
        if not self.acquire(key, timeout=timeout, cancel=cancel):
            raise _timeout_error(self, timeout)

    def _guard_exit(self, key: K) -> None:
        pass  # tokens are spent, not returned
