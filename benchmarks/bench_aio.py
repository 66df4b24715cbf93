"""The asyncio bridge against ``asyncio.to_thread``, side by side in one process.

    python benchmarks/bench_aio.py            # 9 rounds
    python benchmarks/bench_aio.py --quick    # 1 round, smaller (a smoke run for CI)

Two measurements:

* Throughput: 20,000 short jobs awaited at once (``asyncio.gather``) from one event
  loop, 4 worker threads everywhere: ``asyncio.to_thread`` on a 4-thread
  ``ThreadPoolExecutor`` as the loop's default executor (the baseline), the same
  with a ``WorkerPool`` as the default executor, ``await pool.run(...)``, and
  ``async for`` over ``pool.amap(..., buffersize=64)``. Target: ``pool.run`` faster
  than ``asyncio.to_thread``.
* Cancellation: 100 tasks each await a job that blocks in ``token.sleep`` on its own
  thread; once all 100 block, the time from cancelling the 100 tasks to all of them
  being done with every thread idle. Target: under 50 ms. For comparison,
  ``asyncio.to_thread`` with jobs that sleep 0.5 s: cancelling the tasks does not stop
  the threads, which stay busy until the jobs end.
"""

from __future__ import annotations

import argparse
import asyncio
import concurrent.futures as cf
import gc
import statistics
import sys
import threading
import time
from collections.abc import Callable, Coroutine, Sequence
from typing import Any

import threadkit

WORKERS = 4
CANCELLED_TASKS = 100
TARGET_MS = 50.0


def noop() -> None:
    return None


def noop_item(x: int) -> int:
    return x


# -- throughput ------------------------------------------------------------------------


def _timed(
    make_executor: Callable[[], Any], body: Callable[[Any], Coroutine[Any, Any, object]]
) -> float:
    executor = make_executor()

    async def main() -> float:
        asyncio.get_running_loop().set_default_executor(executor)
        gc.collect()
        start = time.perf_counter()
        await body(executor)
        return time.perf_counter() - start

    try:
        return asyncio.run(main())
    finally:
        executor.shutdown(wait=True)


def throughput(n: int) -> dict[str, Callable[[], float]]:
    def tpe() -> cf.ThreadPoolExecutor:
        return cf.ThreadPoolExecutor(WORKERS)

    def pool() -> threadkit.WorkerPool[Any, Any]:
        return threadkit.WorkerPool(WORKERS)

    async def to_thread(_: object) -> None:
        await asyncio.gather(*(asyncio.to_thread(noop) for _ in range(n)))

    async def run(executor: threadkit.WorkerPool[Any, Any]) -> None:
        await asyncio.gather(*(executor.run(noop) for _ in range(n)))

    async def amap(executor: threadkit.WorkerPool[Any, Any]) -> None:
        async for _ in executor.amap(noop_item, range(n), buffersize=64):
            pass

    return {
        "asyncio.to_thread (ThreadPoolExecutor default)": lambda: _timed(tpe, to_thread),
        "asyncio.to_thread (WorkerPool as default)": lambda: _timed(pool, to_thread),
        "await pool.run(fn)": lambda: _timed(pool, run),
        "async for pool.amap(fn, buffersize=64)": lambda: _timed(pool, amap),
    }


# -- cancellation ------------------------------------------------------------------------


def cancel_threadkit() -> float:
    """Seconds from cancelling 100 tasks awaiting blocked jobs to every thread idle."""
    blocked = threading.Barrier(CANCELLED_TASKS + 1)

    def job() -> None:
        token = threadkit.current_token()
        assert token is not None
        blocked.wait()
        token.sleep(60)

    async def main(pool: threadkit.WorkerPool[Any, Any]) -> float:
        tasks = [asyncio.create_task(pool.run(job)) for _ in range(CANCELLED_TASKS)]
        await asyncio.to_thread(blocked.wait, 60)
        await asyncio.sleep(0.05)  # past the barrier, let every job enter its sleep
        gc.collect()
        start = time.perf_counter()
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        # Every job has returned; its worker clears its record a moment later.
        while pool.statistics().busy:
            await asyncio.sleep(0.0002)
        return time.perf_counter() - start

    with threadkit.WorkerPool(CANCELLED_TASKS) as pool:
        return asyncio.run(main(pool))


def cancel_to_thread(job_seconds: float) -> float:
    """The same with asyncio.to_thread: seconds until the threads are idle again."""
    blocked = threading.Barrier(CANCELLED_TASKS + 1)
    idle = threading.Semaphore(0)

    def job() -> None:
        blocked.wait()
        time.sleep(job_seconds)
        idle.release()

    async def main() -> float:
        loop = asyncio.get_running_loop()
        loop.set_default_executor(cf.ThreadPoolExecutor(CANCELLED_TASKS + 1))
        tasks = [asyncio.create_task(asyncio.to_thread(job)) for _ in range(CANCELLED_TASKS)]
        await asyncio.to_thread(blocked.wait, 60)
        await asyncio.sleep(0.05)
        start = time.perf_counter()
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        for _ in range(CANCELLED_TASKS):
            await asyncio.to_thread(idle.acquire, True, 60)
        return time.perf_counter() - start

    return asyncio.run(main())


# -- the report ------------------------------------------------------------------------


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="1 round, 2,000 jobs")
    args = parser.parse_args(argv)
    rounds = 1 if args.quick else 9
    n = 2_000 if args.quick else 20_000

    runners = throughput(n)
    samples: dict[str, list[float]] = {name: [] for name in runners}
    for _ in range(rounds):  # interleaved, so a noisy moment hurts all alike
        for name, runner in runners.items():
            samples[name].append(runner())
    medians = {name: statistics.median(values) for name, values in samples.items()}
    base = medians["asyncio.to_thread (ThreadPoolExecutor default)"]
    print(f"### asyncio: {n} no-op jobs awaited at once, {WORKERS} threads, median of {rounds}")
    print()
    print("| implementation | median s | speed vs to_thread |")
    print("|---|---:|---:|")
    for name, value in medians.items():
        print(f"| {name} | {value:.4f} | {base / value:.2f}x |")
    print()

    cancel_rounds = 3 if args.quick else 15
    tk = statistics.median(cancel_threadkit() for _ in range(cancel_rounds))
    job_seconds = 0.5
    stdlib = cancel_to_thread(job_seconds)
    mark = "ok" if tk * 1000 < TARGET_MS else "MISSED"
    print(f"### cancelling {CANCELLED_TASKS} tasks whose jobs are running")
    print()
    print("| bridge | cancel to every thread idle | target |")
    print("|---|---:|---:|")
    print(
        f"| `await pool.run` (job in `token.sleep(60)`), median of {cancel_rounds} "
        f"| {tk * 1000:.2f} ms | < {TARGET_MS:.0f} ms ({mark}) |"
    )
    print(
        f"| `asyncio.to_thread` (job in `time.sleep({job_seconds})`), one round "
        f"| {stdlib * 1000:.0f} ms | the job's own length |"
    )
    print()
    return 0


if __name__ == "__main__":
    sys.exit(main())
