"""Every task of a pool passes through a limiter: one line, ``limited(limiter)(fn)``."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

from threadkit import Semaphore, limited

db_slots = Semaphore(3)  # the database allows 3 connections
running = 0
peak = 0
lock = threading.Lock()


def query(n: int) -> int:
    global running, peak
    with lock:
        running += 1
        peak = max(peak, running)
    # ... talk to the database ...
    with lock:
        running -= 1
    return n * n


with ThreadPoolExecutor(max_workers=10) as pool:
    results = list(pool.map(limited(db_slots)(query), range(100)))  # the one-liner

assert results == [n * n for n in range(100)]
assert peak <= 3
print(f"100 queries on 10 threads, at most {peak} at a time; {db_slots!r}")
