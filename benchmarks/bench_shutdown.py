"""How fast a cancellation reaches 100 threads blocked in ``token.sleep(60)``.

    python benchmarks/bench_shutdown.py            # 21 rounds
    python benchmarks/bench_shutdown.py --quick    # 3 rounds (a smoke run for CI)

Each round starts 100 threads that each block in ``token.sleep(60)``, lets them all
get there (a barrier just before the call, then a short settle), and times from the
cancel to the last ``join()``. Two rows:

* ``CancelToken.cancel``: the raw wake-up.
* ``GracefulShutdown.request``: the same threads registered with a shutdown; the
  time runs from ``request()`` until the ``with`` block has been left, which includes
  the graceful sequence joining every registered thread.

The target is a median under 50 ms for both.
"""

from __future__ import annotations

import argparse
import gc
import statistics
import sys
import threading
import time
from collections.abc import Callable, Sequence

from threadkit import CancelToken, GracefulShutdown

THREADS = 100
TARGET_MS = 50.0


def _start_sleepers(token: CancelToken) -> list[threading.Thread]:
    """Start the threads and return once every one is about to block in ``sleep``."""
    ready = threading.Barrier(THREADS + 1)

    def sleeper() -> None:
        ready.wait()
        token.sleep(60)

    threads = [threading.Thread(target=sleeper, name=f"sleeper_{i}") for i in range(THREADS)]
    for thread in threads:
        thread.start()
    ready.wait(timeout=60)
    # Past the barrier each thread still has to enter the wait; a thread that had not
    # would return at once and flatter the figure, so let them all get there (this
    # settle is outside the timed part).
    time.sleep(0.05)
    return threads


def cancel_round() -> float:
    token = CancelToken()
    threads = _start_sleepers(token)
    gc.collect()
    start = time.perf_counter()
    token.cancel("benchmark")
    for thread in threads:
        thread.join()
    return time.perf_counter() - start


def request_round() -> float:
    shutdown = GracefulShutdown(signals=())
    threads = _start_sleepers(shutdown.token)
    gc.collect()
    with shutdown:
        for thread in threads:
            shutdown.register(thread)
        start = time.perf_counter()
        shutdown.request("benchmark")
    elapsed = time.perf_counter() - start
    summary = shutdown.summary
    assert summary is not None
    assert not summary.stragglers
    return elapsed


def run(rounds: int) -> list[tuple[str, float]]:
    scenarios: list[tuple[str, Callable[[], float]]] = [
        ("`CancelToken.cancel`, then join all", cancel_round),
        ("`GracefulShutdown.request`, then leave the block", request_round),
    ]
    times: dict[str, list[float]] = {name: [] for name, _ in scenarios}
    for _ in range(rounds):  # interleaved, so a noisy moment hurts both alike
        for name, scenario in scenarios:
            times[name].append(scenario())
    return [(name, statistics.median(values)) for name, values in times.items()]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="3 rounds instead of 21")
    args = parser.parse_args(argv)
    rounds = 3 if args.quick else 21
    results = run(rounds)
    print(f"{THREADS} threads blocked in token.sleep(60); median of {rounds} rounds\n")
    print("| from | to every thread joined | target |")
    print("|---|---:|---:|")
    missed = False
    for name, median in results:
        mark = "ok" if median * 1000 < TARGET_MS else "MISSED"
        missed = missed or mark == "MISSED"
        print(f"| {name} | {median * 1000:.2f} ms | < {TARGET_MS:.0f} ms ({mark}) |")
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main())
