"""threadkit in thirty seconds: the ThreadPoolExecutor you know, plus a lazy, bounded map."""

from __future__ import annotations

import itertools
import threading
import time

import threadkit


def fetch(page: int) -> str:
    """Pretend to download a page: wait the way a network call waits, then answer."""
    time.sleep(0.02)
    return f"page {page} fetched by {threading.current_thread().name}"


def main() -> None:
    # The constructor and methods of concurrent.futures.ThreadPoolExecutor...
    with threadkit.WorkerPool(max_workers=8, thread_name_prefix="fetch") as pool:
        print(pool.submit(fetch, 0).result())
        # ...and a map that reads its input as you consume the results, with at most 16
        # calls in flight: an endless input is fine. Closing it cancels what is left.
        with pool.map(fetch, itertools.count(1), buffersize=16) as pages:
            for page in itertools.islice(pages, 20):
                print(page)


if __name__ == "__main__":
    main()
