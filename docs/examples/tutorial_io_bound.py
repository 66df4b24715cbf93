"""Waiting on I/O overlaps across threads: eight 40 ms waits take about 40 ms, not 320 ms.

``time.sleep`` stands in for a network call: like a socket read, it releases the GIL
while it waits, so the other threads run in the meantime.
"""

from __future__ import annotations

import threading
import time

CALLS = 8
WAIT = 0.04


def fake_request() -> None:
    """Wait the way a network call waits: blocked in the operating system, not computing."""
    time.sleep(WAIT)


def one_after_another() -> float:
    started = time.perf_counter()
    for _ in range(CALLS):
        fake_request()
    return time.perf_counter() - started


def all_at_once() -> float:
    started = time.perf_counter()
    threads = [threading.Thread(target=fake_request, name=f"io-{n}") for n in range(CALLS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return time.perf_counter() - started


def main() -> None:
    print(f"{CALLS} waits of {WAIT * 1000:.0f} ms")
    print(f"  one after another: {one_after_another() * 1000:4.0f} ms")
    print(f"  one thread each:   {all_at_once() * 1000:4.0f} ms")


if __name__ == "__main__":
    main()
