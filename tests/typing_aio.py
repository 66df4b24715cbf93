"""Code that mypy --strict must accept, and calls it must reject, for the asyncio bridge.

Not collected by pytest and never run: mypy checks it with the rest of ``tests``. Each
rejected call carries ``# type: ignore[code]``; ``warn_unused_ignores`` turns an ignore that
is not needed into an error, so a call the types stop rejecting fails the type check.
"""

from __future__ import annotations

from typing import Any

import threadkit


class Fetch(threadkit.Worker[str, bytes]):
    def process(self, url: str) -> bytes:
        return url.encode()


def scale(x: int, factor: float = 2.0) -> float:
    return x * factor


async def run_is_typed_like_submit(pool: threadkit.WorkerPool[Any, Any]) -> None:
    value: float = await pool.run(scale, 3, factor=1.5)
    await pool.run(scale, "3")  # type: ignore[arg-type]
    await pool.run(scale, 3, fact=1.5)  # type: ignore[call-arg]
    text: str = await pool.run(scale, 3)  # type: ignore[arg-type]
    del value, text


async def amap_yields_the_functions_result(pool: threadkit.WorkerPool[Any, Any]) -> None:
    results: threadkit.AsyncMapIterator[float] = pool.amap(scale, [1, 2], buffersize=4)
    async for result in results:
        total: float = result
        del total


async def worker_pools_carry_their_types() -> None:
    with threadkit.WorkerPool(worker=Fetch) as pool:
        body: bytes = await pool.run_process("http://example.org/")
        await pool.run_process(1)  # type: ignore[arg-type]
        async for chunk in pool.aprocess(["a", "b"]):
            data: bytes = chunk
            del data
        del body
