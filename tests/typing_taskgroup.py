"""Code that mypy --strict must accept, and calls it must reject, for TaskGroup.submit.

Not collected by pytest and never run: mypy checks it with the rest of ``tests``. Each
rejected call carries ``# type: ignore[code]``; ``warn_unused_ignores`` turns an ignore that
is not needed into an error, so a call the types stop rejecting fails the type check.
"""

from __future__ import annotations

from concurrent.futures import Future, ThreadPoolExecutor

import threadkit


def fetch(url: str, *, retries: int = 0) -> bytes:
    return url.encode() * (retries + 1)


def submit_is_typed_like_the_pools() -> None:
    with threadkit.TaskGroup(limit=4) as tg:
        page: Future[bytes] = tg.submit(fetch, "https://example.org", retries=2)
        tg.submit(fetch, 42)  # type: ignore[arg-type]
        tg.submit(fetch, "u", retries="2")  # type: ignore[arg-type]
        wrong: Future[str] = tg.submit(fetch, "u")  # type: ignore[arg-type]
    del page, wrong


def any_executor_and_the_statistics() -> None:
    with ThreadPoolExecutor(2) as executor, threadkit.TaskGroup(executor, name="g") as tg:
        token: threadkit.CancelToken = tg.token
        stats: threadkit.TaskGroupStatistics = tg.statistics()
        tg.cancel("done")
    threadkit.TaskGroup(limit="4")  # type: ignore[arg-type]
    del token, stats
