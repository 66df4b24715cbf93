"""The doubler on ``concurrent.futures``: named threads, results and errors come back.

``thread_name_prefix`` names the pool's threads; each ``Future`` carries its task's
result or exception back to the thread that asks for it.
"""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor


def double(number: int) -> tuple[str, int]:
    """Return the name of the thread that did the work, and ``number`` doubled."""
    if number < 0:
        raise ValueError(f"cannot double a negative number: {number}")
    return threading.current_thread().name, number * 2


def main() -> None:
    numbers = [1, 2, -3, 4]
    with ThreadPoolExecutor(max_workers=2, thread_name_prefix="doubler") as pool:
        futures = {number: pool.submit(double, number) for number in numbers}
    # Leaving the with block waited for every task, so each future is done.
    for number, future in futures.items():
        try:
            name, doubled = future.result()
        except ValueError as exc:
            print(f"{number}: failed: {exc}")
        else:
            print(f"{number}: {name} doubled it to {doubled}")


if __name__ == "__main__":
    main()
