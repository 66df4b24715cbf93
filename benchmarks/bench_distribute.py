#!/usr/bin/env python3
"""Benchmark process_on: nodes of threads against one process's threads.

    python benchmarks/bench_distribute.py [--quick] [--rounds N]

Two measurements, each contender run in turn round after round (interleaved, so a noisy
neighbour hurts all alike) on executors made and warmed up once; the table gives the
median time and the speed against the named baseline.

1. I/O-like job (``time.sleep(0.01)`` per item, CPU-light): ``process_on`` over a
   ``ProcessPoolExecutor`` of 2 nodes x 32 threads against 1 node x 32 threads. Twice
   the threads in flight: the target is near 2x.
2. GIL-bound job (pure-Python parsing of an 8 KB page per item, only the URL
   crossing to the node): one process's threads
   (``WorkerPool(4).process``, the baseline, and ``ThreadPoolExecutor(4).map``) against
   ``process_on`` over 2 node processes and the stdlib's
   ``ProcessPoolExecutor(2).map(chunksize=...)``. On 2 cores the target is near 2x.

Not part of ``benchmarks/run.py --quick``: it starts processes and sleeps on purpose.
"""

from __future__ import annotations

import argparse
import concurrent.futures as cf
import statistics
import sys
import time
from collections.abc import Callable

import threadkit

SLEEP = 0.01
THREADS = 32


class Sleep(threadkit.Worker[int, int]):
    """An I/O stand-in: 10 ms of waiting per item, no CPU."""

    def process(self, item: int) -> int:
        time.sleep(SLEEP)
        return item


# A fetched page as a node would hold it: 400 "key=value" fields, about 8 KB.
PAGE = ",".join(f"field{i}=value {i}" for i in range(400))


def parse(url: str) -> int:
    """Pure-Python parsing that holds the GIL: split the page into key/value pairs.

    As in a crawler, only the URL travels to the node; the page is the node's own.
    """
    fields = {}
    for part in PAGE.split(","):
        key, _, value = part.partition("=")
        fields[key.strip()] = value.strip().upper()
    return sum(len(value) for value in fields.values()) + len(url)


class Parse(threadkit.Worker[str, int]):
    """The parsing step as a Worker."""

    def process(self, item: str) -> int:
        return parse(item)


def timed(fn: Callable[[], object]) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def compare(rounds: int, runners: dict[str, Callable[[], object]]) -> dict[str, float]:
    samples: dict[str, list[float]] = {name: [] for name in runners}
    for run in runners.values():  # warm-up: node processes and their pools start here
        run()
    for _ in range(rounds):
        for name, run in runners.items():
            samples[name].append(timed(run))
    return {name: statistics.median(values) for name, values in samples.items()}


def table(title: str, medians: dict[str, float], baseline: str) -> str:
    lines = [
        f"### {title}",
        "",
        "| implementation | median s | speed vs baseline |",
        "|---|---:|---:|",
    ]
    base = medians[baseline]
    for name, value in medians.items():
        lines.append(f"| {name} | {value:.3f} | {base / value:.2f}x |")
    return "\n".join(lines) + "\n"


def drain(iterator: object) -> None:
    for _ in iterator:  # type: ignore[attr-defined]
        pass


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="tiny sizes, one round")
    parser.add_argument("--rounds", type=int, default=5)
    opts = parser.parse_args(argv)
    rounds = 1 if opts.quick else opts.rounds
    print(f"Python {sys.version.split()[0]}, threadkit {threadkit.__version__}, {rounds} rounds")
    print()

    n = 640 if opts.quick else 6_400
    chunk = 128
    with cf.ProcessPoolExecutor(1) as one, cf.ProcessPoolExecutor(2) as two:
        medians = compare(
            rounds,
            {
                "1 node x 32 threads": lambda: drain(
                    threadkit.process_on(one, Sleep, range(n), threads=THREADS, chunksize=chunk)
                ),
                "2 nodes x 32 threads": lambda: drain(
                    threadkit.process_on(two, Sleep, range(n), threads=THREADS, chunksize=chunk)
                ),
            },
        )
    print(
        table(
            f"sleep 10 ms per item, {n} items, ProcessPoolExecutor nodes, chunksize={chunk}",
            medians,
            "1 node x 32 threads",
        )
    )

    n = 400 if opts.quick else 4_000
    chunk = 100
    lines = [f"https://example.org/page/{i}" for i in range(n)]
    with (
        threadkit.WorkerPool(4, worker=Parse) as local,
        cf.ThreadPoolExecutor(4) as tpe,
        cf.ProcessPoolExecutor(2) as nodes,
    ):
        medians = compare(
            rounds,
            {
                "WorkerPool(4).process (threads)": lambda: drain(local.process(lines)),
                "ThreadPoolExecutor(4).map": lambda: drain(tpe.map(parse, lines)),
                "ProcessPoolExecutor(2).map(chunksize)": lambda: drain(
                    nodes.map(parse, lines, chunksize=chunk)
                ),
                "process_on(2 processes x 2 threads)": lambda: drain(
                    threadkit.process_on(nodes, Parse, lines, threads=2, chunksize=chunk)
                ),
            },
        )
    print(
        table(
            f"GIL-bound parsing, {n} pages, 2 node processes, chunksize={chunk}",
            medians,
            "WorkerPool(4).process (threads)",
        )
    )
    threadkit.close_node_pools()
    return 0


if __name__ == "__main__":
    sys.exit(main())
