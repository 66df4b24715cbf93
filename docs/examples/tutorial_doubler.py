"""Five threads, each doubling one number and printing the name of the thread doing it."""

from __future__ import annotations

import threading


def double(number: int) -> None:
    """Double ``number`` and say which thread did it."""
    name = threading.current_thread().name
    print(f"{name}: {number} doubled is {number * 2}")


def main() -> None:
    threads = [
        threading.Thread(target=double, args=(number,), name=f"doubler-{number}")
        for number in range(1, 6)
    ]
    for thread in threads:
        thread.start()
    # join() waits until a thread has finished; without it, main() could return first.
    for thread in threads:
        thread.join()
    print(f"{threading.current_thread().name}: all {len(threads)} threads have finished")


if __name__ == "__main__":
    main()
