"""Call blocking code from asyncio: await a pool, and let a cancellation reach the thread."""

from __future__ import annotations

import asyncio
import contextvars

import threadkit

request_id: contextvars.ContextVar[str] = contextvars.ContextVar("request_id", default="-")


def fetch(page: int) -> str:
    """A blocking call that checks its token, so a cancelled request stops it early."""
    token = threadkit.current_token()
    assert token is not None
    for _ in range(5):  # five 20 ms chunks of "network I/O"
        if token.sleep(0.02):
            return f"page {page} abandoned: {token.reason}"
    return f"page {page} for request {request_id.get()}"


async def main() -> None:
    with threadkit.WorkerPool(4, shutdown_grace=1.0) as pool:
        # 1. Await one job; the task's context variables reach the thread.
        request_id.set("r-1")
        print(await pool.run(fetch, 1))

        # 2. A timeout cancels the running job through its token; the await returns
        #    (with TimeoutError) only once the job has let go of its thread.
        try:
            async with asyncio.timeout(0.03):
                await pool.run(fetch, 2)
        except TimeoutError:
            print(f"timed out; busy threads afterwards: {pool.statistics().busy}")

        # 3. A lazy, bounded map; leaving the loop early cancels what has not started.
        async with pool.amap(fetch, range(100), buffersize=8) as pages:
            async for page in pages:
                print(page)
                break
        stats = pool.statistics()
        print(f"after break: busy={stats.busy}, submitted={stats.submitted}")


if __name__ == "__main__":
    asyncio.run(main())
