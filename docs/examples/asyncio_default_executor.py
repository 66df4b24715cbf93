"""WorkerPool as asyncio's default executor, bounded on the async side.

``asyncio.to_thread`` and ``loop.run_in_executor(None, ...)`` submit from the event
loop's own thread. The pool's queue stays unbounded; an ``asyncio.Semaphore`` keeps the
number of calls in flight at the pool's size, so coroutines wait (without blocking the
loop) instead of piling work up.
"""

from __future__ import annotations

import asyncio
import time

import threadkit


def blocking_io(n: int) -> int:
    time.sleep(0.01)  # stands for a blocking client call
    return n * n


async def main() -> None:
    loop = asyncio.get_running_loop()
    pool = threadkit.WorkerPool(4, thread_name_prefix="io")
    loop.set_default_executor(pool)
    in_flight = asyncio.Semaphore(pool.max_workers)

    async def call(n: int) -> int:
        async with in_flight:  # waits in the loop, never in a thread
            return await asyncio.to_thread(blocking_io, n)

    results = await asyncio.gather(*(call(n) for n in range(20)))
    print(results[:5], "...", pool.statistics().completed, "calls")
    # asyncio.run() shuts the default executor down (waiting for it) when main returns.


if __name__ == "__main__":
    asyncio.run(main())
