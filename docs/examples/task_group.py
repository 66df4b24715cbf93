"""Run a group of tasks that succeed or fail together, with threadkit.TaskGroup.

Each part is one recipe of the how-to "Run a group of tasks that succeed or fail
together". The "downloads" are simulated, so the script needs no network.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import Future
from typing import TypeVar

import threadkit

T = TypeVar("T")


def fetch(url: str) -> str:
    """A pretend download: a short wait that stops early when the group is cancelled."""
    token = threadkit.current_token()
    assert token is not None  # inside a group's task, always
    if token.sleep(0.01):  # True: cancelled while waiting
        token.raise_if_cancelled()
    if "broken" in url:
        raise ConnectionError(f"{url}: connection reset")
    return f"<page {url}>"


# --8<-- [start:basic]
def all_pages(urls: list[str]) -> list[str]:
    pages: list[Future[str]] = []
    with threadkit.TaskGroup(limit=8, timeout=30.0) as tg:
        pages = [tg.submit(fetch, url) for url in urls]
    # Here every task has ended, and none failed (or the block would have raised).
    return [page.result() for page in pages]


# --8<-- [end:basic]


# --8<-- [start:errors]
def first_failure_stops_the_rest(urls: list[str]) -> None:
    tg = threadkit.TaskGroup(limit=2)
    try:
        with tg:
            for url in urls:
                tg.submit(fetch, url)
    except* ConnectionError as group:
        # Only the failures: the tasks the failure cancelled are not in the group.
        for exc in group.exceptions:
            print("failed:", exc)
    stats = tg.statistics()
    print(f"completed {stats.completed}, failed {stats.failed}, cancelled {stats.cancelled}")


# --8<-- [end:errors]


# --8<-- [start:cancel]
def first_answer(mirrors: list[str]) -> str:
    winner: list[str] = []
    lock = threading.Lock()

    def race(url: str) -> None:
        page = fetch(url)
        with lock:
            if not winner:
                winner.append(page)
                tg.cancel("got an answer")  # the others stop; the block ends normally

    with threadkit.TaskGroup() as tg:
        for url in mirrors:
            tg.submit(race, url)
    return winner[0]


# --8<-- [end:cancel]


# --8<-- [start:timeout]
def slow_service() -> None:
    def hang() -> None:
        token = threadkit.current_token()
        assert token is not None
        token.wait()  # until the group's deadline cancels the token
        token.raise_if_cancelled()

    try:
        with threadkit.TaskGroup(timeout=0.05) as tg:
            tg.submit(hang)
    except threadkit.TaskGroupTimeout as exc:  # a TimeoutError
        print("gave up:", exc)


# --8<-- [end:timeout]


# --8<-- [start:bounded]
def submit_bounded(
    tg: threadkit.TaskGroup, room: threadkit.Semaphore, fn: Callable[[str], T], arg: str
) -> Future[T]:
    """Submit, but first wait while ``room.total`` tasks are held or running."""
    room.acquire(cancel=tg.token)  # raises Cancelled (not a failure) if the group stops
    fut = tg.submit(fn, arg)
    fut.add_done_callback(lambda _: room.release())
    return fut


def crawl_huge_input(urls: range) -> int:
    room = threadkit.Semaphore(100)  # at most 100 tasks exist at any time
    sizes: list[int] = []
    with threadkit.TaskGroup(limit=8) as tg:
        for n in urls:  # read as places free up, not all at once
            fut = submit_bounded(tg, room, fetch, f"https://example.org/{n}")
            fut.add_done_callback(lambda f: sizes.append(len(f.result())))
    return len(sizes)


# --8<-- [end:bounded]


# --8<-- [start:nested]
def site_and_assets(site: str) -> None:
    def page_with_assets(url: str) -> None:
        fetch(url)
        # A group inside a task: cancelling the outer group reaches it, and its
        # failures arrive in the outer group as one ExceptionGroup.
        with threadkit.TaskGroup(limit=4) as assets:
            for name in ("style.css", "broken.js"):
                assets.submit(fetch, f"{url}/{name}")

    try:
        with threadkit.TaskGroup() as tg:
            tg.submit(page_with_assets, site)
    except* ConnectionError as group:
        print("nested failure:", group.exceptions[0])


# --8<-- [end:nested]


def main() -> None:
    urls = [f"https://example.org/{n}" for n in range(20)]
    print(len(all_pages(urls)), "pages")
    first_failure_stops_the_rest([*urls[:3], "https://example.org/broken", *urls[3:]])
    print("first answer:", first_answer(["https://a.example", "https://b.example"]))
    slow_service()
    print(crawl_huge_input(range(300)), "pages through a bounded group")
    site_and_assets("https://example.org")


if __name__ == "__main__":
    main()
