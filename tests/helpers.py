"""Test helpers shared by several test modules (importable: tests/ is on the path)."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

# The one timeout every deterministic wait in the tests uses.
WAIT = 10.0

# Source of ``interrupted_at(k, fn)`` for child scripts that define ``PATHS`` (file name
# endings) and import ``sys``: it runs ``fn`` with a KeyboardInterrupt raised at the k-th
# place in those files where a signal handler could run (entering a Python function, or
# right after a call into C returned), and returns ("interrupted", None) or
# ("returned", value). Before 3.12 only: later, profile events come from sys.monitoring
# and no longer stand for those places.
INTERRUPTED_AT = r"""
def interrupted_at(k, fn):
    count = 0
    def profiler(frame, event, arg):
        nonlocal count
        if event in ("call", "c_return") and frame.f_code.co_filename.endswith(PATHS):
            count += 1
            if count == k:
                raise KeyboardInterrupt
    sys.setprofile(profiler)
    try:
        return ("returned", fn())
    except KeyboardInterrupt:
        return ("interrupted", None)
    finally:
        sys.setprofile(None)
"""


class Gate:
    """A task body that reports when it starts and blocks until the test opens it."""

    def __init__(self) -> None:
        self.started = threading.Event()
        self.opened = threading.Event()

    def __call__(self, value: Any = None) -> Any:
        self.started.set()
        assert self.opened.wait(WAIT), "gate never opened"
        return value

    def open(self) -> None:
        self.opened.set()


class FakeClock:
    """Time that moves only when a test calls ``advance``: a rate limiter's clock and wait.

    Pass ``clock=fake, wait=fake.wait`` to a rate limiter. A sleeping waiter registers
    its wake-up time here; ``advance`` wakes exactly those whose time has come, so tests
    are exact and never sleep for real.
    """

    def __init__(self, start: float = 1000.0) -> None:
        self._cond = threading.Condition()
        self._now = start
        self._sleepers: dict[threading.Event, float] = {}

    def __call__(self) -> float:
        with self._cond:
            return self._now

    def wait(self, event: threading.Event, seconds: float) -> bool:
        """Sleep until ``event`` is set or the fake time has moved ``seconds`` on."""
        with self._cond:
            self._sleepers[event] = self._now + seconds
            self._cond.notify_all()
        try:
            return event.wait(WAIT)
        finally:
            with self._cond:
                self._sleepers.pop(event, None)
                self._cond.notify_all()

    def advance(self, seconds: float) -> None:
        """Move time on by ``seconds`` and wake the sleepers that are due."""
        with self._cond:
            self._now += seconds
            for event, due in self._sleepers.items():
                if due <= self._now + 1e-9:
                    event.set()

    @property
    def sleepers(self) -> int:
        """How many threads sleep in ``wait`` right now."""
        with self._cond:
            return len(self._sleepers)

    def wait_for_sleepers(self, count: int) -> None:
        """Block until exactly ``count`` threads sleep in ``wait``."""
        with self._cond:
            assert self._cond.wait_for(lambda: len(self._sleepers) == count, WAIT), (
                f"expected {count} sleepers, have {len(self._sleepers)}"
            )


class Runner:
    """Run ``fn`` in a thread and keep what it returned or raised."""

    def __init__(self, fn: Callable[[], object], name: str = "limiter-test") -> None:
        self.result: object = None
        self.error: BaseException | None = None
        self.done = threading.Event()
        self._fn = fn
        self.thread = threading.Thread(target=self._run, name=name)
        self.thread.start()

    def _run(self) -> None:
        try:
            self.result = self._fn()
        except BaseException as exc:
            self.error = exc
        finally:
            self.done.set()

    def join(self) -> object:
        """Wait for the thread; return its result or raise what it raised."""
        self.thread.join(WAIT)
        assert not self.thread.is_alive(), "the thread did not finish in time"
        if self.error is not None:
            raise self.error
        return self.result


def handoff_holds(pool: Any) -> bool:
    """The engine's hand-off invariant, read under its lock: an entry waits in the task
    queue only while no worker is idle and the pool is at ``max_workers`` (or the pool
    is no longer running, when nothing is handed any more)."""
    core = pool._core
    with core.lock:
        if core.state != "running" or core.tasks.empty():
            return True
        return not core.idlers and core.alive == core.max_workers
