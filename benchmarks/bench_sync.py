#!/usr/bin/env python3
"""Benchmark threadkit's semaphores and rate limiter against the standard library.

    python benchmarks/bench_sync.py [--quick]

Two measurements:

1. Uncontended acquire + release, threadkit's ``Semaphore``/``CapacityLimiter``
   against ``threading.Semaphore`` and ``threading.BoundedSemaphore``. The contenders
   run interleaved, round after round, in one process, and the table gives the median
   time per pair and the median ratio to ``threading.Semaphore`` (target: <= 2x).
2. Rate-limiter accuracy: 50 threads compete for a ``RateLimiter(1000)`` for 10 s of
   real time (1 s with ``--quick``); the achieved rate must be within 1% of 1000/s.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "src"))

from threadkit import CapacityLimiter, RateLimiter, Semaphore


def _pair_loop(acquire: Callable[[], object], release: Callable[[], object], n: int) -> float:
    started = time.perf_counter()
    for _ in range(n):
        acquire()
        release()
    return (time.perf_counter() - started) / n


def _with_loop(lock: threading.Semaphore | Semaphore, n: int) -> float:
    started = time.perf_counter()
    for _ in range(n):
        with lock:
            pass
    return (time.perf_counter() - started) / n


def uncontended(rounds: int, n: int) -> list[tuple[str, float, float]]:
    """Return (name, median seconds per acquire+release, median ratio to the stdlib)."""
    std = threading.Semaphore(4)
    bounded = threading.BoundedSemaphore(4)
    ours = Semaphore(4)
    cap = CapacityLimiter(4)
    contenders: dict[str, Callable[[], float]] = {
        "threading.Semaphore acquire/release": lambda: _pair_loop(std.acquire, std.release, n),
        "threading.BoundedSemaphore acquire/release": lambda: _pair_loop(
            bounded.acquire, bounded.release, n
        ),
        "threadkit.Semaphore acquire/release": lambda: _pair_loop(ours.acquire, ours.release, n),
        "threading.Semaphore with-block": lambda: _with_loop(std, n),
        "threadkit.Semaphore with-block": lambda: _with_loop(ours, n),
        "threadkit.CapacityLimiter acquire/release": lambda: _pair_loop(
            cap.acquire, cap.release, n
        ),
    }
    times: dict[str, list[float]] = {name: [] for name in contenders}
    ratios: dict[str, list[float]] = {name: [] for name in contenders}
    for _ in range(rounds):
        this_round = {name: run() for name, run in contenders.items()}
        baseline = this_round["threading.Semaphore acquire/release"]
        with_baseline = this_round["threading.Semaphore with-block"]
        for name, seconds in this_round.items():
            times[name].append(seconds)
            base = with_baseline if "with-block" in name else baseline
            ratios[name].append(seconds / base)
    return [
        (name, statistics.median(times[name]), statistics.median(ratios[name]))
        for name in contenders
    ]


def rate_accuracy(rate: float, threads: int, seconds: float) -> tuple[int, float, float]:
    """Run ``threads`` threads against one limiter; return (grants, achieved rate, error %)."""
    limiter = RateLimiter(rate, burst=1)
    stop = threading.Event()
    start = threading.Barrier(threads + 1)
    counts = [0] * threads

    def compete(index: int) -> None:
        start.wait()
        while limiter.acquire(timeout=1.0):
            if stop.is_set():
                return  # granted after the window closed: not counted
            counts[index] += 1

    workers = [threading.Thread(target=compete, args=(i,)) for i in range(threads)]
    for worker in workers:
        worker.start()
    start.wait()
    began = time.monotonic()
    stop.wait(seconds)
    stop.set()
    elapsed = time.monotonic() - began
    for worker in workers:
        worker.join(10)
    grants = sum(counts)
    # The bucket starts with one token (the burst), which is not part of the rate.
    achieved = (grants - 1) / elapsed
    return grants, achieved, 100 * (achieved - rate) / rate


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmarks and print markdown tables; return 0 if the targets are met.

    Args:
        argv: Command-line arguments without the program name; ``--quick`` shortens
            every run.

    Returns:
        0 when acquire+release is within 2x of ``threading.Semaphore`` and the rate is
        within 1% of its target, else 1.
    """
    parser = argparse.ArgumentParser(prog="bench_sync.py", description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="short runs (about 2 s in all)")
    opts = parser.parse_args(argv)
    rounds, n, seconds = (5, 20_000, 1.0) if opts.quick else (15, 100_000, 10.0)

    print(f"## Uncontended acquire + release ({rounds} interleaved rounds of {n:,})\n")
    print("| contender | median ns/pair | median ratio to threading.Semaphore |")
    print("|---|---:|---:|")
    ok = True
    for name, per_pair, ratio in uncontended(rounds, n):
        print(f"| {name} | {per_pair * 1e9:.0f} | {ratio:.2f}x |")
        if name.startswith("threadkit") and ratio > 2.0:
            ok = False

    rate, threads = 1000.0, 50
    grants, achieved, error = rate_accuracy(rate, threads, seconds)
    print(f"\n## RateLimiter({rate:g}/s), {threads} threads, {seconds:g} s of real time\n")
    print("| grants | achieved rate | error |")
    print("|---:|---:|---:|")
    print(f"| {grants:,} | {achieved:.1f}/s | {error:+.2f}% |")
    if abs(error) > 1.0:
        ok = False
    print(f"\ntargets {'met' if ok else 'MISSED'}: <= 2x threading.Semaphore; rate within 1%")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
