"""The engine against an earlier build of itself, side by side in one process.

    python benchmarks/bench_engine.py                  # against the build before issue 12
    python benchmarks/bench_engine.py --baseline REV   # against any git revision
    python benchmarks/bench_engine.py --quick          # a smoke run (figures not meaningful)

The baseline's ``src/threadkit`` is taken from git into a temporary folder and imported
under another name (``threadkit_baseline``), so both builds run in the same interpreter,
round after round, interleaved: a noisy neighbour hurts both alike. Each scenario prints
the median time of each build and the ratio (baseline time / this build's time, so above
1 means this build is faster), plus the peak thread count of bursts of quick tasks.
"""

from __future__ import annotations

import argparse
import concurrent.futures as cf
import importlib
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from run import compare, noop, timed

import threadkit

ROOT = Path(__file__).resolve().parent.parent
# The last commit before the floor plan and the exact hand-off (issue 12).
DEFAULT_BASELINE = "469bb97"


def load_baseline(rev: str, into: Path) -> Any:
    """Import ``src/threadkit`` as of ``rev`` as the package ``threadkit_baseline``."""
    package = into / "threadkit_baseline"
    package.mkdir()
    listing = subprocess.run(
        ["git", "ls-tree", "--name-only", f"{rev}:src/threadkit"],
        cwd=ROOT,
        check=True,
        capture_output=True,
        text=True,
    ).stdout.split()
    for name in listing:
        if name.endswith(".py"):
            text = subprocess.run(
                ["git", "show", f"{rev}:src/threadkit/{name}"],
                cwd=ROOT,
                check=True,
                capture_output=True,
                text=True,
            ).stdout
            (package / name).write_text(text)
    sys.path.insert(0, str(into))
    return importlib.import_module("threadkit_baseline")


def submit_wait(pool_type: Any, n: int) -> Callable[[], float]:
    def run() -> float:
        with pool_type(4) as pool:
            return timed(lambda: cf.wait([pool.submit(noop) for _ in range(n)]))

    return run


def mapping(pool_type: Any, n: int) -> Callable[[], float]:
    def run() -> float:
        with pool_type(4) as pool:
            return timed(lambda: sum(1 for _ in pool.map(noop, range(n))))

    return run


def sleepers(pool_type: Any, n: int) -> Callable[[], float]:
    """``n`` tasks of ``sleep(0.01)`` on a cold pool of 200 workers."""

    def run() -> float:
        with pool_type(200) as pool:
            return timed(lambda: cf.wait([pool.submit(time.sleep, 0.01) for _ in range(n)]))

    return run


def peak_threads(pool_type: Any, bursts: int, size: int) -> Callable[[], float]:
    """The most threads a 2,000-thread pool runs over bursts of quick tasks."""

    def run() -> float:
        base = threading.active_count()
        peak = 0
        with pool_type(2000) as pool:
            for _ in range(bursts):
                cf.wait([pool.submit(noop) for _ in range(size)])
                peak = max(peak, threading.active_count() - base)
        return float(peak)

    return run


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--baseline", default=DEFAULT_BASELINE, help="a git revision")
    parser.add_argument("--rounds", type=int, default=9)
    parser.add_argument("--quick", action="store_true")
    opts = parser.parse_args(argv)
    rounds = 1 if opts.quick else opts.rounds
    n = 2_000 if opts.quick else 50_000
    sleeps = 200 if opts.quick else 2_000
    with tempfile.TemporaryDirectory() as tmp:
        base = load_baseline(opts.baseline, Path(tmp))
        builds = {"baseline": base.WorkerPool, "this build": threadkit.WorkerPool}
        print(f"Python {sys.version.split()[0]}, baseline {opts.baseline}, {rounds} rounds\n")
        print("| scenario | baseline | this build | baseline / this build |")
        print("|---|---:|---:|---:|")
        scenarios: dict[str, Callable[[Any], Callable[[], float]]] = {
            f"submit + wait, {n} no-op tasks, 4 workers (s)": lambda t: submit_wait(t, n),
            f"map, {n} no-op items, 4 workers (s)": lambda t: mapping(t, n),
            f"{sleeps} x sleep(0.01), 200 workers, cold (s)": lambda t: sleepers(t, sleeps),
        }
        for title, make in scenarios.items():
            medians = compare(rounds, {name: make(t) for name, t in builds.items()})
            before, after = medians["baseline"], medians["this build"]
            print(f"| {title} | {before:.4f} | {after:.4f} | {before / after:.2f}x |")
        bursts = {
            **{name: peak_threads(t, 30, 300) for name, t in builds.items()},
            "ThreadPoolExecutor": peak_threads(cf.ThreadPoolExecutor, 30, 300),
        }
        peaks = compare(max(1, rounds // 3), bursts)
        print(
            "| peak threads, 30 bursts of 300 no-op tasks, max_workers=2000"
            f" (ThreadPoolExecutor: {peaks['ThreadPoolExecutor']:.0f}) |"
            f" {peaks['baseline']:.0f} | {peaks['this build']:.0f} | |"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
