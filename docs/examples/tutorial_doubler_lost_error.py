"""A thread that raises dies alone: the main thread carries on and the script exits 0.

``double`` refuses negative numbers. The thread that gets -3 raises ``ValueError``;
Python prints its traceback on stderr (through ``threading.excepthook``), ``join()``
returns as if nothing happened, and the result of that thread is simply missing.
"""

from __future__ import annotations

import threading


def double(number: int, results: dict[int, int]) -> None:
    """Double ``number`` into ``results``; negative numbers are refused."""
    if number < 0:
        raise ValueError(f"cannot double a negative number: {number}")
    results[number] = number * 2


def main() -> None:
    results: dict[int, int] = {}
    threads = [
        threading.Thread(target=double, args=(number, results), name=f"doubler-{index}")
        for index, number in enumerate([1, 2, -3, 4], start=1)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()  # returns normally, also for the thread that raised
    print(f"results: {dict(sorted(results.items()))}")
    print("the main thread never learned that doubling -3 failed")


if __name__ == "__main__":
    main()
