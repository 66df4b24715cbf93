"""Replacing ThreadPoolExecutor with WorkerPool: the same program, unchanged otherwise."""

from __future__ import annotations

import concurrent.futures as cf
import hashlib

import threadkit


def digest(n: int) -> str:
    return hashlib.sha256(str(n).encode()).hexdigest()[:8]


def main() -> None:
    # Before: with cf.ThreadPoolExecutor(max_workers=4, thread_name_prefix="hash") as pool:
    with threadkit.WorkerPool(max_workers=4, thread_name_prefix="hash") as pool:
        futures = {pool.submit(digest, n): n for n in range(8)}
        for fut in cf.as_completed(futures):
            print(futures[fut], fut.result())
        print(list(pool.map(digest, range(3))))
        print(pool.statistics())


if __name__ == "__main__":
    main()
