"""Global test guards: no test may leave threads behind, and every wait is bounded."""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Iterator

import pytest

# How long a finished test may take to let its threads exit before it is failed.
THREAD_EXIT_GRACE = 5.0


@pytest.fixture(autouse=True)
def no_leftover_threads() -> Iterator[None]:
    """Fail any test that leaves a thread running after it ends."""
    before = set(threading.enumerate())
    yield
    deadline = time.monotonic() + THREAD_EXIT_GRACE
    leftover = [t for t in threading.enumerate() if t not in before and t.is_alive()]
    for thread in leftover:
        thread.join(max(0.0, deadline - time.monotonic()))
    alive = [t.name for t in leftover if t.is_alive()]
    if alive:
        pytest.fail(f"test left threads running: {alive}")


@pytest.fixture
def fast_switching() -> Iterator[None]:
    """Switch threads as often as the interpreter allows, so races show up."""
    old = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    try:
        yield
    finally:
        sys.setswitchinterval(old)
