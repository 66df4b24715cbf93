"""The locks threadkit takes in ``with`` blocks: a Ctrl-C never leaves one held.

CPython 3.14 runs pending signal handlers right after a ``with`` statement's call to
``__enter__`` and before the block's cleanup is armed (CPython gh-148874), so a plain
``threading.Lock`` can be left held by a ``KeyboardInterrupt``. ``SignalSafeLock`` is
what ``new_lock()`` gives there. White-box: these tests import the private module.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import threading
from typing import Any

import pytest

from threadkit._locks import SignalSafeLock, new_lock

posix_only = pytest.mark.skipif(os.name != "posix", reason="needs pthread_kill")


class InterruptedAfterAcquire(SignalSafeLock):  # type: ignore[misc]
    """A handler raising at the check for signals that follows ``acquire``."""

    __slots__ = ()

    def acquire(self, blocking: bool = True, timeout: float = -1) -> bool:
        super().acquire(blocking, timeout)
        raise KeyboardInterrupt


class InterruptedInWait(SignalSafeLock):  # type: ignore[misc]
    """A handler raising while ``acquire`` waits: nothing was acquired."""

    __slots__ = ()

    def acquire(self, blocking: bool = True, timeout: float = -1) -> bool:
        raise KeyboardInterrupt


def held_elsewhere(lock: Any) -> bool:
    """Whether another thread finds ``lock`` taken (with the real ``acquire``)."""
    result: list[bool] = []
    acquire = SignalSafeLock.acquire if isinstance(lock, SignalSafeLock) else type(lock).acquire

    def probe() -> None:
        got = acquire(lock, False)
        if got:
            lock.release()
        result.append(not got)

    t = threading.Thread(target=probe)
    t.start()
    t.join(10)
    return result[0]


def test_new_lock_is_signal_safe_where_with_has_the_window() -> None:
    lock = new_lock()
    if sys.version_info >= (3, 14):
        assert isinstance(lock, SignalSafeLock)
    else:
        assert type(lock) is type(threading.Lock())


def test_a_signal_safe_lock_works_as_a_lock_and_under_a_condition() -> None:
    lock = SignalSafeLock()
    with lock:
        assert held_elsewhere(lock)
    assert not held_elsewhere(lock)
    assert lock.acquire(timeout=1)
    lock.release()
    cond = threading.Condition(lock)
    woken = threading.Event()

    def waiter() -> None:
        with cond:
            cond.wait_for(woken.is_set, timeout=10)

    t = threading.Thread(target=waiter)
    t.start()
    with cond:
        woken.set()
        cond.notify_all()
    t.join(10)
    assert not t.is_alive()
    assert not held_elsewhere(lock)


def test_an_interrupt_right_after_acquire_releases_the_lock() -> None:
    lock = InterruptedAfterAcquire()
    with pytest.raises(KeyboardInterrupt), lock:
        pytest.fail("the block must not run")  # pragma: no cover
    assert not held_elsewhere(lock)


def test_an_interrupt_in_the_wait_leaves_the_holders_lock_alone() -> None:
    """Nothing acquired, nothing released: the thread holding it keeps it."""
    lock = InterruptedInWait()
    holding = threading.Event()
    done = threading.Event()

    def holder() -> None:
        SignalSafeLock.acquire(lock)
        holding.set()
        done.wait(10)
        lock.release()

    t = threading.Thread(target=holder)
    t.start()
    assert holding.wait(10)
    with pytest.raises(KeyboardInterrupt), lock:
        pytest.fail("the block must not run")  # pragma: no cover
    assert held_elsewhere(lock)
    done.set()
    t.join(10)
    assert not held_elsewhere(lock)


STORM = """
import signal, sys, threading, time
from threadkit._locks import new_lock

stranded = 0
for _ in range(ROUNDS):
    lock = new_lock()
    go = threading.Event()

    def interrupt():
        go.wait(10)
        time.sleep(0.0002)
        signal.pthread_kill(threading.main_thread().ident, signal.SIGINT)

    t = threading.Thread(target=interrupt)
    t.start()
    try:
        go.set()
        while True:
            with lock:
                pass
    except KeyboardInterrupt:
        pass
    t.join(10)
    free = []

    def probe():
        if lock.acquire(blocking=False):
            lock.release()
            free.append(True)

    p = threading.Thread(target=probe)
    p.start()
    p.join(10)
    stranded += not free
print("stranded", stranded)
"""


@posix_only
@pytest.mark.slow
def test_a_storm_of_interrupts_into_with_blocks_strands_no_lock() -> None:
    """2,000 Ctrl-Cs into a tight ``with lock:`` loop; a plain lock on 3.14 strands ~3%."""
    script = textwrap.dedent(STORM).replace("ROUNDS", "2000")
    proc = subprocess.run(
        [sys.executable, "-c", script], check=False, capture_output=True, text=True, timeout=600
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "stranded 0"
