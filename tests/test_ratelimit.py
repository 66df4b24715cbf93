"""RateLimiter and KeyedRateLimiter: exact token-bucket arithmetic on a fake clock."""

from __future__ import annotations

import math
import time
from typing import Any

import pytest

from helpers import WAIT, FakeClock, Runner
from threadkit import Cancelled, CancelToken, DeadlineExceeded, KeyedRateLimiter, RateLimiter

# -- test doubles ---------------------------------------------------------------------------
# (test_sync.py and test_ratelimit.py each carry these: mypy's configuration does not let
# test modules import one another.)


def make(rate: float = 10, burst: int = 1) -> tuple[RateLimiter, FakeClock]:
    clock = FakeClock()
    return RateLimiter(rate, burst, clock=clock, wait=clock.wait), clock


def take_all(limiter: RateLimiter) -> int:
    count = 0
    while limiter.try_acquire():
        count += 1
    return count


def test_burst_then_one_token_per_interval() -> None:
    """A full bucket gives ``burst`` at once, then a token every 1/rate seconds, up to burst."""
    limiter, clock = make(rate=10, burst=5)
    assert take_all(limiter) == 5
    clock.advance(0.1)
    assert take_all(limiter) == 1
    clock.advance(0.05)
    assert take_all(limiter) == 0
    clock.advance(0.05)
    assert take_all(limiter) == 1
    clock.advance(100)
    assert take_all(limiter) == 5
    assert limiter.statistics().acquired == 12


def test_long_run_grants_exactly_rate_times_time_plus_burst() -> None:
    """Over ~1,500 fake seconds in uneven steps, grants equal burst + rate * elapsed (floored).

    No step is long enough to overfill the bucket, so no token is lost to the cap.
    """
    limiter, clock = make(rate=7, burst=3)
    granted = take_all(limiter)
    elapsed = 0.0
    for step in [0.013, 0.2, 0.0007, 0.27] * 3000:
        clock.advance(step)
        elapsed += step
        granted += take_all(limiter)
    assert granted == 3 + math.floor(7 * elapsed + 1e-6)


def test_weighted_acquire_takes_n_tokens() -> None:
    """acquire(n) and try_acquire(n) take n tokens at once, and n above burst is refused."""
    limiter, clock = make(rate=4, burst=4)
    assert limiter.try_acquire(3)
    assert not limiter.try_acquire(2)
    assert limiter.acquire(1, timeout=0)
    clock.advance(0.5)
    assert limiter.try_acquire(2)
    with pytest.raises(ValueError, match=r"n must be an int <= burst \(4\), got 5"):
        limiter.acquire(5)
    with pytest.raises(ValueError, match="n must be an int >= 1, got 0"):
        limiter.try_acquire(0)
    with pytest.raises(TypeError, match=r"n must be an int >= 1, got 1\.0"):
        limiter.acquire(1.0)  # type: ignore[arg-type]


def test_acquire_refuses_at_once_when_tokens_come_too_late() -> None:
    """When tokens are due after the timeout, acquire returns False without sleeping or taking."""
    limiter, clock = make(rate=10, burst=1)
    assert limiter.try_acquire()
    assert limiter.acquire(timeout=0.05) is False
    stats = limiter.statistics()
    assert (stats.waiting, stats.acquired) == (0, 1)
    clock.advance(0.1)
    assert limiter.try_acquire()


def test_acquire_sleeps_until_its_tokens_are_due() -> None:
    """A waiter sleeps for exactly the missing tokens' worth of time and not a moment less."""
    limiter, clock = make(rate=10, burst=2)
    assert take_all(limiter) == 2
    runner = Runner(lambda: limiter.acquire(2, timeout=0.2))
    clock.wait_for_sleepers(1)
    clock.advance(0.15)
    clock.wait_for_sleepers(1)
    assert not runner.done.is_set()
    clock.advance(0.05)
    assert runner.join() is True
    assert limiter.statistics().tokens == 0


def test_waiters_are_served_in_arrival_order() -> None:
    """A large request made first is served before a small one made after it."""
    limiter, clock = make(rate=10, burst=2)
    assert take_all(limiter) == 2
    big = Runner(lambda: limiter.acquire(2, timeout=WAIT))
    clock.wait_for_sleepers(1)
    small = Runner(lambda: limiter.acquire(1, timeout=WAIT))
    clock.wait_for_sleepers(2)
    assert not limiter.try_acquire()
    clock.advance(0.2)
    assert big.join() is True
    clock.wait_for_sleepers(1)
    assert not small.done.is_set()
    clock.advance(0.1)
    assert small.join() is True


def test_cancelled_waiter_hands_its_slot_to_those_behind() -> None:
    """Cancelling the middle of three waiters moves the last one up by the tokens it gave back."""
    limiter, clock = make(rate=10, burst=1)
    assert limiter.try_acquire()
    token = CancelToken()
    first = Runner(lambda: limiter.acquire(timeout=WAIT))
    clock.wait_for_sleepers(1)
    middle = Runner(lambda: limiter.acquire(cancel=token))
    clock.wait_for_sleepers(2)
    last = Runner(lambda: limiter.acquire(timeout=WAIT))
    clock.wait_for_sleepers(3)
    token.cancel()
    with pytest.raises(Cancelled):
        middle.join()
    clock.wait_for_sleepers(2)
    clock.advance(0.2)
    assert first.join() is True
    assert last.join() is True
    assert limiter.statistics().acquired == 3
    assert not limiter.try_acquire()


def test_rate_limiter_never_grants_faster_than_rate_on_the_real_clock() -> None:
    """With the real clock, n + 1 grants at rate r take at least n / r seconds."""
    limiter = RateLimiter(200)
    started = time.monotonic()
    for _ in range(11):
        assert limiter.acquire(timeout=WAIT)
    assert time.monotonic() - started >= 10 / 200 - 1e-3


def test_token_deadline_ends_a_rate_wait_on_the_real_clock() -> None:
    """A token deadline wakes a sleeping waiter with Cancelled and hands its tokens back."""
    limiter = RateLimiter(0.01)
    assert limiter.acquire()
    with pytest.raises(Cancelled) as info:
        limiter.acquire(cancel=CancelToken(timeout=0.02))
    assert info.value.reason is DeadlineExceeded
    stats = limiter.statistics()
    assert (stats.waiting, stats.acquired) == (0, 1)


@pytest.mark.parametrize(
    ("rate", "error", "message"),
    [
        (0, ValueError, "rate must be a finite number > 0 (tokens per second), got 0"),
        (-1.5, ValueError, "got -1.5"),
        (math.nan, ValueError, "got nan"),
        (math.inf, ValueError, "got inf"),
        ("10", TypeError, "rate must be a number > 0 (tokens per second), got '10'"),
        (True, TypeError, "got True"),
    ],
)
def test_bad_rates_are_refused(rate: object, error: type[Exception], message: str) -> None:
    """A rate that is not a finite number > 0 fails at construction, naming rate."""
    for cls in (RateLimiter, KeyedRateLimiter):
        with pytest.raises(error) as info:
            cls(rate)  # type: ignore[arg-type]
        assert message in str(info.value)


@pytest.mark.parametrize("burst", [0, -1, 1.5, None])
def test_bad_bursts_are_refused(burst: object) -> None:
    """A burst that is not an int >= 1 fails at construction, naming burst."""
    for cls in (RateLimiter, KeyedRateLimiter):
        with pytest.raises((TypeError, ValueError), match="burst must be an int >= 1"):
            cls(1, burst)  # type: ignore[arg-type]


def test_clock_and_wait_must_be_callable() -> None:
    """A clock or wait that cannot be called is a TypeError at construction."""
    bad: Any = 3.0
    with pytest.raises(TypeError, match="clock must be callable"):
        RateLimiter(1, clock=bad)
    with pytest.raises(TypeError, match="wait must be callable"):
        KeyedRateLimiter(1, wait=bad)


def test_repr_and_statistics_show_live_state() -> None:
    """The repr and statistics report rate, burst, tokens, sleepers and grants."""
    limiter, clock = make(rate=2, burst=3)
    assert "rate=2/s burst=3 waiting=0 acquired=0" in repr(limiter)
    assert limiter.try_acquire(2)
    clock.advance(0.25)
    stats = limiter.statistics()
    assert (stats.rate, stats.burst, stats.tokens, stats.waiting, stats.acquired) == (
        2.0,
        3,
        1.5,
        0,
        2,
    )
    assert "acquired=2" in repr(limiter)


# -- KeyedRateLimiter ---------------------------------------------------------------------


def test_keyed_rate_limiter_buckets_are_independent() -> None:
    """Each key has its own full bucket; spending one key's tokens leaves the others alone."""
    clock = FakeClock()
    keyed: KeyedRateLimiter[str] = KeyedRateLimiter(1, burst=2, clock=clock, wait=clock.wait)
    assert keyed.try_acquire("a", 2)
    assert not keyed.try_acquire("a")
    assert keyed.try_acquire("b")
    assert keyed.acquire("b", timeout=0)
    assert not keyed.try_acquire("b")
    clock.advance(1)
    assert keyed.try_acquire("a")
    assert keyed.statistics().acquired == 5


def test_keyed_rate_limiter_forgets_refilled_buckets_but_not_sleepers() -> None:
    """Buckets that refilled are dropped as new keys arrive; a bucket with a sleeper is kept."""
    clock = FakeClock()
    keyed: KeyedRateLimiter[str] = KeyedRateLimiter(10, burst=10, clock=clock, wait=clock.wait)
    assert keyed.try_acquire("slow", 10)
    sleeper = Runner(lambda: keyed.acquire("slow", 10, timeout=WAIT))  # due in 1 s
    clock.wait_for_sleepers(1)
    for i in range(3000):
        assert keyed.try_acquire(f"old-{i}")
    assert keyed.statistics().keys == 3001
    clock.advance(0.1)  # every old bucket is full again
    for round_ in range(8):
        for i in range(1000):
            assert keyed.try_acquire(f"new-{round_}-{i}")
        # The round's buckets are full again after 0.1 s; "slow" is due at 1.0 s.
        clock.advance(0.1)
    clock.wait_for_sleepers(1)
    stats = keyed.statistics()
    # At most twice the buckets in use (one round's, and "slow") survive the sweeps.
    assert stats.keys <= 2 * 1001
    assert stats.waiting == 1
    clock.advance(0.2)
    assert sleeper.join() is True
