"""Code that mypy --strict and pyright must accept, and calls they must reject: Worker, put.

Not collected by pytest and never run: mypy checks it with the rest of ``tests``. Each
rejected call carries ``# type: ignore[code]``; ``warn_unused_ignores`` turns an ignore that
is not needed into an error, so a call the types stop rejecting fails the type check.
"""

from __future__ import annotations

import functools
from collections.abc import Iterator
from concurrent.futures import Future

import threadkit


class Fetch(threadkit.Worker[str, bytes]):
    def process(self, url: str) -> bytes:
        return url.encode()


class Prefixed(threadkit.Worker[str, bytes]):
    def __init__(self, prefix: bytes) -> None:
        self.prefix = prefix

    def process(self, url: str) -> bytes:
        return self.prefix + url.encode()


def put_and_process_carry_the_worker_types() -> None:
    with threadkit.WorkerPool(worker=Fetch, max_workers=2) as pool:
        body: Future[bytes] = pool.put("http://example.org/")
        bodies: Iterator[bytes] = pool.process(["a", "b"], ordered=False)
        first: bytes = next(bodies)
        plain: Future[int] = pool.submit(len, "also plain functions")
        del body, first, plain


def a_partial_is_a_worker_factory() -> None:
    with threadkit.WorkerPool(worker=functools.partial(Prefixed, b">")) as pool:
        body: Future[bytes] = pool.put("x")
        pool.put(b"x")  # type: ignore[arg-type]
        del body


def wrong_types_are_rejected() -> None:
    with threadkit.WorkerPool(worker=Fetch) as pool:
        pool.put(1)  # type: ignore[arg-type]
        pool.process([1, 2])  # type: ignore[list-item]
        text: Future[str] = pool.put("x")  # type: ignore[assignment]
        del text


class Wrong(threadkit.Worker[str, bytes]):
    def process(self, url: int) -> bytes:  # type: ignore[override]
        return bytes(url)


def process_on_carries_the_worker_types() -> None:
    from concurrent.futures import ProcessPoolExecutor

    with ProcessPoolExecutor(2) as nodes:
        bodies: Iterator[bytes] = threadkit.process_on(nodes, Fetch, ["a", "b"], threads=4)
        prefixed: threadkit.NodeIterator[bytes] = threadkit.process_on(
            nodes, functools.partial(Prefixed, b">"), ["a"]
        )
        threadkit.process_on(nodes, Fetch, [1, 2])  # type: ignore[arg-type]
        text: Iterator[str] = threadkit.process_on(nodes, Fetch, ["a"])  # type: ignore[arg-type]
        del bodies, prefixed, text
