"""Pure-Python computing does not get faster with threads; with processes it can.

The GIL lets one thread at a time run Python bytecode, so four threads that only compute
take turns. Four processes each have their own interpreter and GIL, and run in parallel
on a machine with several cores (after a start-up cost of their own).
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable
from concurrent.futures import Executor, ProcessPoolExecutor, ThreadPoolExecutor

JOBS = 4
SIZE = 1_000_000


def sum_of_squares(n: int) -> int:
    """Compute without waiting for anything: the kind of work that holds the GIL."""
    total = 0
    for i in range(n):
        total += i * i
    return total


def timed(make_pool: Callable[[], Executor]) -> float:
    started = time.perf_counter()
    with make_pool() as pool:
        results = list(pool.map(sum_of_squares, [SIZE] * JOBS))
    assert len(set(results)) == 1
    return time.perf_counter() - started


def main() -> None:
    gil = getattr(sys, "_is_gil_enabled", lambda: True)()
    print(f"{JOBS} jobs, {os.cpu_count()} CPUs, GIL {'enabled' if gil else 'disabled'}")
    started = time.perf_counter()
    for _ in range(JOBS):
        sum_of_squares(SIZE)
    print(f"  one after another:  {(time.perf_counter() - started) * 1000:4.0f} ms")
    threads = timed(lambda: ThreadPoolExecutor(max_workers=JOBS))
    print(f"  {JOBS} threads:          {threads * 1000:4.0f} ms")
    processes = timed(lambda: ProcessPoolExecutor(max_workers=JOBS))
    print(f"  {JOBS} processes:        {processes * 1000:4.0f} ms")


if __name__ == "__main__":
    main()
