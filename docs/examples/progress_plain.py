"""Show the progress of work done in threads with the plain display, which needs no package."""

from __future__ import annotations

import sys
import time
from concurrent.futures import ThreadPoolExecutor

from threadkit import make_progress


def fetch(n: int) -> int:
    time.sleep(0.005)  # stands in for a network call
    if n % 10 == 3:
        raise ConnectionError(f"item {n}: connection reset")
    return n * n


def main() -> None:
    items = list(range(40))
    progress = make_progress("plain", total=len(items), description="downloads", stream=sys.stdout)
    assert progress is not None  # "plain" always gives a display

    def job(n: int) -> int:
        # Report from the worker thread, as each item completes, in any order.
        try:
            result = fetch(n)
        except Exception:
            progress.advance(failed=True)  # a failed item is done too, and counted apart
            raise
        progress.advance()
        return result

    try:
        with ThreadPoolExecutor(max_workers=8) as executor:
            futures = [executor.submit(job, n) for n in items]
    finally:
        progress.close()  # draws the final state, once

    failed = sum(1 for future in futures if future.exception() is not None)
    assert failed == 4
    print(f"{len(items) - failed} fetched, {failed} failed")


if __name__ == "__main__":
    main()
