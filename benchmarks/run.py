"""Benchmarks: threadkit against the standard library, side by side in one process.

    python benchmarks/run.py            # the full run (a few minutes)
    python benchmarks/run.py --quick    # a smoke run for CI (seconds; figures not meaningful)

A scenario with a target prints "(target met)" or "(target MISSED)" beside its figure,
and the run ends with one line listing every missed target; it exits 1 if any was missed.

Each scenario runs every implementation in turn, round after round (interleaved, so a
noisy neighbour hurts all of them alike), and reports the median time of each and its
ratio to ThreadPoolExecutor. Peak memory is measured in child processes, one per
implementation, from ``ru_maxrss``.
"""

from __future__ import annotations

import argparse
import concurrent.futures as cf
import gc
import queue
import statistics
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Callable
from multiprocessing.pool import ThreadPool
from typing import Any

import threadkit

Runner = Callable[[], float]


def noop(x: object = None) -> object:
    return x


def timed(fn: Callable[[], object]) -> float:
    gc.collect()
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


# -- scenario 1: submit + wait -----------------------------------------------------------


class EveryEventHooks(threadkit.PoolHooks):
    """Hooks that watch all five events and do nothing: the whole cost of being watched."""

    def task_submitted(self, event: threadkit.TaskEvent) -> None:
        pass

    def task_started(self, event: threadkit.TaskEvent) -> None:
        pass

    def task_finished(self, event: threadkit.TaskEvent) -> None:
        pass

    def task_failed(self, event: threadkit.TaskEvent) -> None:
        pass

    def task_cancelled(self, event: threadkit.TaskEvent) -> None:
        pass


def submit_wait(make: Callable[[], Any], n: int) -> Runner:
    def run() -> float:
        with make() as pool:
            return timed(lambda: cf.wait([pool.submit(noop) for _ in range(n)]))

    return run


def threadpool_apply(n: int, workers: int) -> Runner:
    def run() -> float:
        with ThreadPool(workers) as pool:

            def body() -> None:
                results = [pool.apply_async(noop) for _ in range(n)]
                for r in results:
                    r.wait()

            return timed(body)

    return run


# -- scenario 2: map ------------------------------------------------------------------


def mapping(make: Callable[[], Any], n: int, **kwargs: Any) -> Runner:
    def run() -> float:
        with make() as pool:
            return timed(lambda: sum(1 for _ in pool.map(noop, range(n), **kwargs)))

    return run


def threadpool_imap(n: int, workers: int) -> Runner:
    def run() -> float:
        with ThreadPool(workers) as pool:
            return timed(lambda: sum(1 for _ in pool.imap(noop, range(n), chunksize=1)))

    return run


def raw_simplequeue(n: int, workers: int) -> Runner:
    """The floor: hand items to threads through a SimpleQueue and collect the results."""

    def run() -> float:
        tasks: queue.SimpleQueue[int | None] = queue.SimpleQueue()
        results: queue.SimpleQueue[object] = queue.SimpleQueue()

        def worker() -> None:
            get, put = tasks.get, results.put
            while (item := get()) is not None:
                put(noop(item))

        threads = [threading.Thread(target=worker) for _ in range(workers)]
        for t in threads:
            t.start()

        def body() -> None:
            for i in range(n):
                tasks.put(i)
            for _ in range(n):
                results.get()

        elapsed = timed(body)
        for _ in threads:
            tasks.put(None)
        for t in threads:
            t.join()
        return elapsed

    return run


# -- scenario 3: many sleeping tasks ------------------------------------------------------


def sleepers(make: Callable[[], Any], n: int, *, warm: bool) -> Runner:
    """n tasks of sleep(0.01) on 200 workers; warm: all 200 threads run before the clock.

    The warm-up holds each task at a barrier until 200 are running, so it really starts
    200 threads (200 plain sleeps start fewer: early finishers take later tasks).
    """

    def run() -> float:
        with make() as pool:
            if warm:
                barrier = threading.Barrier(200, timeout=30)
                cf.wait([pool.submit(barrier.wait) for _ in range(200)])
            return timed(lambda: cf.wait([pool.submit(time.sleep, 0.01) for _ in range(n)]))

    return run


def bare_threads(n: int) -> Runner:
    """The machine's ceiling: 200 started threads, no pool, take n sleeps from a list."""

    def run() -> float:
        go = threading.Event()
        done = threading.Event()
        counts = {"claimed": 0, "finished": 0}
        lock = threading.Lock()

        def sleeper() -> None:
            go.wait()
            while True:
                with lock:
                    if counts["claimed"] == n:
                        return
                    counts["claimed"] += 1
                time.sleep(0.01)
                with lock:
                    counts["finished"] += 1
                    if counts["finished"] == n:
                        done.set()

        threads = [threading.Thread(target=sleeper) for _ in range(200)]
        for t in threads:
            t.start()
        start = time.perf_counter()
        go.set()
        done.wait()
        elapsed = time.perf_counter() - start
        for t in threads:
            t.join()
        return elapsed

    return run


# -- scenario 4: peak memory of a lazy map over a huge input --------------------------------

RSS_SCRIPT = """
import resource, sys, concurrent.futures as cf, threadkit
n = {n}
def noop(x): return x
source = (i for i in range(n))
if {kind!r} == "threadkit":
    with threadkit.WorkerPool(4) as pool:
        for _ in pool.map(noop, source, buffersize=64):
            pass
else:
    with cf.ThreadPoolExecutor(4) as pool:
        for _ in pool.map(noop, source):
            pass
# ru_maxrss survives execve on Linux (a child would report its parent's peak); VmHWM
# belongs to this process's own address space.
try:
    with open("/proc/self/status") as status:
        print(next(int(line.split()[1]) for line in status if line.startswith("VmHWM:")))
except OSError:
    print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
"""


def peak_rss_mib(kind: str, n: int) -> float:
    out = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(RSS_SCRIPT.format(n=n, kind=kind))],
        capture_output=True,
        text=True,
        check=True,
        timeout=1800,
    )
    return int(out.stdout.strip()) / 1024


# -- scenario: one slow item in an ordered, bounded window -----------------------------


def slow_item(i: int, every: int, slow: float, fast: float) -> int:
    """Most items take ``fast`` seconds; every ``every``-th takes ``slow`` (a retried
    connection: a server with a short listen backlog drops it, the client waits 1 s)."""
    time.sleep(slow if i % every == every // 3 else fast)
    return i


def ordered_with_a_slow_item(
    kind: str, n: int, *, workers: int, every: int, slow: float, fast: float
) -> Runner:
    def job(i: int) -> int:
        return slow_item(i, every, slow, fast)

    class Job(threadkit.Worker[int, int]):
        def process(self, i: int) -> int:
            return job(i)

    def run() -> float:
        if kind == "tpe":
            with cf.ThreadPoolExecutor(workers) as tpe:
                return timed(lambda: list(tpe.map(job, range(n))))
        with threadkit.WorkerPool(workers, worker=Job) as pool:
            if kind == "auto":
                return timed(lambda: list(pool.process(range(n))))
            if kind == "unordered":
                return timed(lambda: list(pool.process(range(n), ordered=False)))
            return timed(lambda: list(pool.process(range(n), buffersize=2 * workers)))

    return run


# -- the harness ---------------------------------------------------------------------------


def mark(ratio: float, target: float, what: str, misses: list[str]) -> str:
    """``(target met)``, or ``(target MISSED)`` with ``what`` added to ``misses``."""
    if ratio <= target:
        return f"(target: within {target:g}x, met)"
    misses.append(f"{what}: {ratio:.2f}x, target {target:g}x")
    return f"(target: within {target:g}x, MISSED)"


def compare(rounds: int, runners: dict[str, Runner]) -> dict[str, float]:
    """The median time of each runner over ``rounds`` rounds, interleaved.

    Each round runs every runner once, in an order rotated by one each round, so no
    runner always goes first (after a quiet pause) or right after the same other one.
    """
    samples: dict[str, list[float]] = {name: [] for name in runners}
    order = list(runners)
    for round_ in range(rounds):
        shift = round_ % len(order)
        for name in order[shift:] + order[:shift]:
            samples[name].append(runners[name]())
    return {name: statistics.median(values) for name, values in samples.items()}


def table(title: str, medians: dict[str, float], baseline: str, note: str = "") -> str:
    lines = [
        f"### {title}",
        "",
        "| implementation | median s | speed vs baseline |",
        "|---|---:|---:|",
    ]
    base = medians[baseline]
    for name, value in medians.items():
        lines.append(f"| {name} | {value:.4f} | {base / value:.2f}x |")
    if note:
        lines += ["", note]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a smoke run: tiny sizes, one round")
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--no-rss", action="store_true", help="skip the peak-memory children")
    opts = parser.parse_args(argv)
    quick = opts.quick
    rounds = 1 if quick else opts.rounds
    n = 2_000 if quick else 50_000
    workers = 4
    tpe = lambda: cf.ThreadPoolExecutor(workers)  # noqa: E731
    tk = lambda: threadkit.WorkerPool(workers)  # noqa: E731
    print(f"Python {sys.version.split()[0]}, threadkit {threadkit.__version__}, {rounds} rounds")
    print()
    misses: list[str] = []

    medians = compare(
        rounds,
        {
            "ThreadPoolExecutor": submit_wait(tpe, n),
            "threadkit.WorkerPool": submit_wait(tk, n),
            "threadkit, hooks=PoolHooks()": submit_wait(
                lambda: threadkit.WorkerPool(workers, hooks=threadkit.PoolHooks()), n
            ),
            "threadkit, all five hooks (pass)": submit_wait(
                lambda: threadkit.WorkerPool(workers, hooks=EveryEventHooks()), n
            ),
            "ThreadPool.apply_async": threadpool_apply(n, workers),
        },
    )
    print(table(f"submit + wait, {n} no-op tasks, 4 workers", medians, "ThreadPoolExecutor"))
    plain = medians["threadkit.WorkerPool"]
    watched = medians["threadkit, all five hooks (pass)"] / plain
    print(
        "hooks cost: PoolHooks() "
        f"{medians['threadkit, hooks=PoolHooks()'] / plain:.2f}x, all five events watched "
        f"{watched:.2f}x the time without hooks "
        f"{mark(watched, 1.25, 'all five hooks watched', misses)}\n"
    )

    medians = compare(
        rounds,
        {
            "ThreadPoolExecutor.map": mapping(tpe, n),
            "threadkit map": mapping(tk, n),
            "ThreadPool.imap (chunksize 1)": threadpool_imap(n, workers),
            "threadkit map (chunksize 64)": mapping(tk, n, chunksize=64),
            "raw SimpleQueue hand-off": raw_simplequeue(n, workers),
        },
    )
    print(table(f"map over {n} no-op items, 4 workers", medians, "ThreadPoolExecutor.map"))
    ratio = medians["threadkit map (chunksize 64)"] / medians["raw SimpleQueue hand-off"]
    print(f"threadkit map (chunksize 64) takes {ratio:.2f}x the raw hand-off's time\n")

    sleeping = 200 if quick else 2_000
    ideal = sleeping / 200 * 0.01
    tpe200 = lambda: cf.ThreadPoolExecutor(200)  # noqa: E731
    tk200 = lambda: threadkit.WorkerPool(200)  # noqa: E731
    for warm in (True, False):
        runners = {
            "ThreadPoolExecutor": sleepers(tpe200, sleeping, warm=warm),
            "threadkit.WorkerPool": sleepers(tk200, sleeping, warm=warm),
        }
        if warm:
            runners["200 bare threads, no pool (ceiling)"] = bare_threads(sleeping)
        medians = compare(rounds, runners)
        state = "threads already started" if warm else "cold pool: thread start included"
        print(
            table(
                f"{sleeping} x sleep(0.01) on 200 workers, {state} (ideal {ideal:.3f} s)",
                medians,
                "ThreadPoolExecutor",
                note=", ".join(f"{k}: {ideal / v:.0%} of ideal" for k, v in medians.items()),
            )
        )

    one = statistics.median(timed(lambda: time.sleep(0.01)) for _ in range(5 if quick else 50))
    print(
        f"time.sleep(0.01) itself takes {one * 1e3:.2f} ms here, so {sleeping // 200} rounds "
        f"of it cannot beat {0.01 / one:.0%} of ideal.\n"
    )

    n_slow, every = (40, 10) if quick else (200, 25)
    slow = 0.2 if quick else 1.0
    slow_case: dict[str, Any] = {"workers": 8, "every": every, "slow": slow, "fast": 0.005}
    medians = compare(
        rounds,
        {
            "ThreadPoolExecutor.map": ordered_with_a_slow_item("tpe", n_slow, **slow_case),
            "threadkit process() (default window)": ordered_with_a_slow_item(
                "auto", n_slow, **slow_case
            ),
            "threadkit process(buffersize=16)": ordered_with_a_slow_item(
                "strict", n_slow, **slow_case
            ),
            "threadkit process(ordered=False)": ordered_with_a_slow_item(
                "unordered", n_slow, **slow_case
            ),
        },
    )
    ratio = medians["threadkit process() (default window)"] / medians["ThreadPoolExecutor.map"]
    print(
        table(
            f"{n_slow} items on 8 workers, every {every}th takes {slow:g} s, the rest 5 ms,"
            " results in order",
            medians,
            "ThreadPoolExecutor.map",
            note=f"process() takes {ratio:.2f}x ThreadPoolExecutor.map's time "
            f"{mark(ratio, 1.25, 'ordered process with a slow item', misses)}; a strict "
            "window (buffersize=16) stalls behind each slow item.",
        )
    )

    if not opts.no_rss:
        size = 20_000 if quick else 1_000_000
        lines = [f"### peak RSS, map over a {size}-item generator", "", "| run | peak RSS |"]
        lines.append("|---|---:|")
        lines.append(
            f"| threadkit map(buffersize=64) | {peak_rss_mib('threadkit', size):.0f} MiB |"
        )
        if not quick:
            lines.append(
                f"| ThreadPoolExecutor.map (eager) | {peak_rss_mib('tpe', size):.0f} MiB |"
            )
        print("\n".join(lines) + "\n")

    for name, extra in _side_benchmarks():
        if extra(["--quick"] if quick else []):
            misses.append(f"{name}: see its table above")
    if misses:
        print(f"targets MISSED ({len(misses)}): " + "; ".join(misses))
        return 1
    print("targets: all met")
    return 0


def _side_benchmarks() -> list[tuple[str, Callable[[list[str]], object]]]:
    """The limiter and shutdown benchmarks that live beside this file."""
    import importlib
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).parent))
    found: list[tuple[str, Callable[[list[str]], object]]] = []
    for name in ("bench_sync", "bench_shutdown", "bench_aio", "bench_taskgroup"):
        try:
            module = importlib.import_module(name)
        except ImportError:
            continue
        found.append((name, module.main))
    return found


if __name__ == "__main__":
    sys.exit(main())
