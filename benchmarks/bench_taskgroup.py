"""What a TaskGroup costs per task, and how fast its first failure ends the block.

    python benchmarks/bench_taskgroup.py            # 15 rounds
    python benchmarks/bench_taskgroup.py --quick    # 3 small rounds (a smoke run for CI)

Two measurements, each interleaved round by round with its baseline so a noisy moment
hurts all rows alike:

* **Per-task overhead.** ``n`` no-op tasks submitted and waited for on one warm
  ``WorkerPool(4)``: ``pool.submit`` then ``concurrent.futures.wait`` (the baseline),
  against the same tasks through ``TaskGroup(pool)`` (submit in the block, the exit
  waits), and with ``limit`` (reported, no target). Target: the group without limit
  within 1.3x of the pool.
* **From the first failure to the exit raising.** 100 cooperative tasks of the group
  block in ``current_token().wait(60)``; once they all wait, one more task raises. The
  time runs from the moment it raises until ``with`` has raised the ExceptionGroup,
  which includes cancelling the 100 tasks and waiting for each to end. Target: a
  median under 50 ms.
"""

from __future__ import annotations

import argparse
import concurrent.futures as cf
import gc
import statistics
import sys
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

import threadkit

OVERHEAD_TARGET = 1.3
FAILURE_TARGET_MS = 50.0
RUNNING = 100
TARGETED = "`TaskGroup(pool)`: `tg.submit`, exit waits"


def noop() -> None:
    return None


def timed(fn: Callable[[], object]) -> float:
    gc.collect()
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def pool_submit(pool: threadkit.WorkerPool[Any, Any], n: int) -> float:
    return timed(lambda: cf.wait([pool.submit(noop) for _ in range(n)]))


def group_submit(pool: threadkit.WorkerPool[Any, Any], n: int, limit: int | None) -> float:
    def body() -> None:
        with threadkit.TaskGroup(pool, limit=limit) as tg:
            for _ in range(n):
                tg.submit(noop)

    return timed(body)


BASELINE = "`pool.submit` + `wait` (baseline)"


def overhead(rounds: int, n: int) -> dict[str, tuple[float, float]]:
    """For each way of running ``n`` no-op tasks: median seconds per task, and the
    median over rounds of its ratio to the baseline in the same round (a noisy moment
    slows both rows of a round, so it cancels out of that round's ratio)."""
    rows: dict[str, Callable[[threadkit.WorkerPool[Any, Any]], float]] = {
        BASELINE: lambda pool: pool_submit(pool, n),
        TARGETED: lambda pool: group_submit(pool, n, None),
        "`TaskGroup(pool, limit=4)`": lambda pool: group_submit(pool, n, 4),
    }
    samples: dict[str, list[float]] = {name: [] for name in rows}
    with threadkit.WorkerPool(4) as pool:
        pool_submit(pool, n)  # start the threads before the clock
        for _ in range(rounds):
            for name, run in rows.items():
                samples[name].append(run(pool) / n)
    base = samples[BASELINE]
    return {
        name: (
            statistics.median(values),
            statistics.median(v / b for v, b in zip(values, base, strict=True)),
        )
        for name, values in samples.items()
    }


def failure_round() -> float:
    """Seconds from a task raising to the exit raising, with RUNNING tasks to stop."""
    waiting = threading.Barrier(RUNNING + 1, timeout=60)
    raised_at: list[float] = []

    def cooperative() -> None:
        token = threadkit.current_token()
        assert token is not None
        waiting.wait()
        token.wait(60)
        token.raise_if_cancelled()

    def failing() -> None:
        raised_at.append(time.perf_counter())
        raise ValueError("first failure")

    with threadkit.WorkerPool(RUNNING + 1) as pool:
        # Warm: every thread started before the round.
        warm = threading.Barrier(RUNNING + 1, timeout=60)
        cf.wait([pool.submit(warm.wait) for _ in range(RUNNING + 1)])
        gc.collect()
        try:
            with threadkit.TaskGroup(pool) as tg:
                for _ in range(RUNNING):
                    tg.submit(cooperative)
                waiting.wait()
                # Past the barrier each task still has to enter its wait; let them all
                # get there (outside the timed part), or the figure is flattered.
                time.sleep(0.05)
                tg.submit(failing)
        except ExceptionGroup:
            left = time.perf_counter()
        else:
            raise AssertionError("the group did not raise")
        stats = tg.statistics()
        assert (stats.failed, stats.cancelled) == (1, RUNNING), stats
    return left - raised_at[0]


def main(argv: Sequence[str] | None = None) -> int:
    """Run both measurements and print markdown tables; return 0 if the targets are met.

    Args:
        argv: Command-line arguments without the program name; ``--quick`` shortens
            every run.

    Returns:
        0 when the group is within 1.3x of the pool per task and the failure reaches the
        exit in under 50 ms (median), else 1.
    """
    parser = argparse.ArgumentParser(prog="bench_taskgroup.py", description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="3 small rounds")
    opts = parser.parse_args(argv)
    rounds, n = (3, 2_000) if opts.quick else (15, 20_000)

    medians = overhead(rounds, n)
    print(f"## TaskGroup per-task overhead: {n:,} no-op tasks on a warm WorkerPool(4)\n")
    print(f"{rounds} interleaved rounds; the ratio is the median of each round's ratio\n")
    print("| way | median µs per task | median ratio to pool.submit | target |")
    print("|---|---:|---:|---:|")
    ok = True
    for name, (value, ratio) in medians.items():
        if name == TARGETED:
            met = ratio <= OVERHEAD_TARGET
            ok = ok and met
            verdict = "quick run: not judged" if opts.quick else ("ok" if met else "MISSED")
            target = f"<= {OVERHEAD_TARGET}x ({verdict})"
        else:
            target = ""
        print(f"| {name} | {value * 1e6:.2f} | {ratio:.2f}x | {target} |")
    print(
        "\nWith `limit`, a task held by the group is handed to the pool later, by the "
        "worker whose task ended: one more queue and a lock per task (no target).\n"
    )

    times = [failure_round() for _ in range(rounds)]
    median = statistics.median(times)
    met = median * 1000 < FAILURE_TARGET_MS
    ok = ok and met
    verdict = "quick run: not judged" if opts.quick else ("ok" if met else "MISSED")
    print(f"## From the first failure to the exit raising, {RUNNING} running tasks\n")
    print(f"{RUNNING} tasks blocked in current_token().wait(60); {rounds} rounds\n")
    print("| median | worst | target |")
    print("|---:|---:|---:|")
    print(
        f"| {median * 1000:.2f} ms | {max(times) * 1000:.2f} ms "
        f"| < {FAILURE_TARGET_MS:.0f} ms ({verdict}) |"
    )
    print()
    # A quick run is a smoke test: too few tasks and rounds for the figures to mean much.
    return 0 if ok or opts.quick else 1


if __name__ == "__main__":
    sys.exit(main())
