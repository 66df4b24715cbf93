"""Code that both mypy --strict and pyright (strict) must accept, and calls they must reject.

Not collected by pytest and never run. Each rejected call carries ``# type: ignore[code]``:
mypy's ``warn_unused_ignores`` and pyright's ``reportUnnecessaryTypeIgnoreComment`` (on
for this file) turn an ignore that is not needed into an error, so a call that the types
stop rejecting fails the type check.
"""

# pyright: strict, reportUnnecessaryTypeIgnoreComment=true

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from concurrent.futures import Future

import threadkit


def limiters_take_their_documented_keywords() -> None:
    threadkit.Semaphore(3)
    threadkit.Semaphore(total=3)
    threadkit.CapacityLimiter(total=3)
    threadkit.KeyedLimiter[str](limit_per_key=2)
    threadkit.RateLimiter(10, burst=2)
    threadkit.RateLimiter(rate=10, burst=2, clock=time.monotonic)
    threadkit.KeyedRateLimiter[str](5, burst=5, wait=lambda event, seconds: event.wait(seconds))


def limiters_reject_the_private_field_names() -> None:
    threadkit.RateLimiter(_rate=10)  # type: ignore[call-arg]
    threadkit.Semaphore(_total=3)  # type: ignore[call-arg]


class Fetch(threadkit.Worker[str, bytes]):
    """An override names its parameter as it likes: the base's is positional-only."""

    def process(self, path: str) -> bytes:
        return path.encode()

    def on_error(self, path: str, error: Exception) -> None:
        del path, error


def a_worker_pool_carries_its_types() -> None:
    with threadkit.WorkerPool(worker=Fetch, max_workers=2) as pool:
        body: Future[bytes] = pool.put("/")
        bodies: Iterator[bytes] = pool.process(["/a", "/b"])
        del body, bodies


def a_plain_pool_has_no_process() -> None:
    with threadkit.WorkerPool(2) as plain:
        sizes: Future[int] = plain.submit(len, "plain functions are fine")
        plain.process(["a"])  # type: ignore[list-item]
        plain.put("a")  # type: ignore[arg-type]
        del sizes


def a_bare_annotation_takes_any_pool(pool: threadkit.WorkerPool) -> None:
    del pool


def both_kinds_of_pool_fit_a_bare_annotation() -> None:
    with threadkit.WorkerPool(2) as plain, threadkit.WorkerPool(2, worker=Fetch) as fetch:
        a_bare_annotation_takes_any_pool(plain)
        a_bare_annotation_takes_any_pool(fetch)


def an_event_wait_is_a_limiter_wait(event: threading.Event, seconds: float) -> object:
    return event.wait(seconds)


def a_users_own_bar_is_a_progress_argument() -> None:
    from rich.progress import Progress as RichProgress
    from tqdm import tqdm

    with threadkit.WorkerPool(2) as pool:
        pool.map(abs, [1], progress=tqdm(desc="pages"))
        pool.map(abs, [1], progress=RichProgress())
        pool.map(abs, [1], progress=True)
        pool.map(abs, [1], progress=42)  # type: ignore[arg-type]
