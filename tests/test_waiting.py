"""The waits threadkit does: interruptible on the main thread, and honouring any timeout.

A timeout the argument checks accept (any finite number >= 0) must be one every wait
honours; C-level waits refuse more than ``threading.TIMEOUT_MAX`` with OverflowError, so
the helpers clamp. Waits in other threads are not sliced, so they are tested there.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable
from typing import Any

from helpers import WAIT
from threadkit import CancelToken
from threadkit._waiting import (
    MAIN_SLICE,
    acquire_interruptibly,
    get_interruptibly,
    join_interruptibly,
    wait_slice,
)

HUGE = 1e10  # beyond threading.TIMEOUT_MAX on every platform


def in_a_thread(fn: Callable[[], Any]) -> Any:
    """Run ``fn`` in a new (non-main) thread; return its result or raise its error."""
    outcome: list[Any] = []

    def body() -> None:
        try:
            outcome.append(("ok", fn()))
        except BaseException as exc:
            outcome.append(("error", exc))

    thread = threading.Thread(target=body)
    thread.start()
    thread.join(WAIT)
    assert outcome, "the wait never ended"
    kind, value = outcome[0]
    if kind == "error":
        raise value
    return value


def test_a_huge_timeout_is_honoured_by_every_wait_off_the_main_thread() -> None:
    """Queue get, lock acquire and thread join take a 1e10 s timeout without overflowing."""
    items: queue.SimpleQueue[int] = queue.SimpleQueue()
    items.put(7)
    assert in_a_thread(lambda: get_interruptibly(items.get, HUGE)) == 7
    assert in_a_thread(lambda: acquire_interruptibly(threading.Lock(), HUGE)) is True
    done = threading.Event()
    runner = threading.Thread(target=done.wait, args=(WAIT,))
    runner.start()

    def join_then_report() -> bool:
        threading.Timer(0.0, done.set).start()  # ends the runner once the join is under way
        join_interruptibly(runner, HUGE)
        return runner.is_alive()

    assert in_a_thread(join_then_report) is False
    assert in_a_thread(lambda: wait_slice(HUGE)) == threading.TIMEOUT_MAX
    assert wait_slice(HUGE) == MAIN_SLICE  # on the main thread: a slice


def test_a_cancel_token_waits_a_huge_timeout_in_a_thread() -> None:
    """CancelToken.wait(1e10) in a worker thread ends when the token is cancelled."""
    token = CancelToken()
    token.cancel()
    assert in_a_thread(lambda: token.wait(HUGE)) is True
