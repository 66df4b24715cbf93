"""A token bucket: 50 calls a second with bursts of 5, exact on a fake clock."""

from __future__ import annotations

import threading

from threadkit import RateLimiter


class FakeClock:
    """Time that moves only when told to, so this example runs in no time and exactly."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now

    def wait(self, event: threading.Event, seconds: float) -> None:
        # Called by the limiter to sleep: pretend the time passed.
        self.now += seconds


clock = FakeClock()
api = RateLimiter(50, burst=5, clock=clock, wait=clock.wait)

sent_at: list[float] = []
for _ in range(105):
    api.acquire(timeout=10)  # blocks (here: moves the fake clock) until a token is due
    sent_at.append(clock.now)

# The first 5 go at once (the burst); after that one every 1/50 s.
assert sent_at[:5] == [0.0] * 5
assert abs(sent_at[-1] - 100 / 50) < 1e-9
# A non-blocking try, and a bounded wait that gives up at once when it cannot make it:
assert not api.try_acquire()
assert api.acquire(timeout=0.001) is False
print(f"105 calls took {sent_at[-1]:.2f} s of (fake) time; stats: {api.statistics()}")
