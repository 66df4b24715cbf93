"""CPython's own ThreadPoolExecutor tests, run with WorkerPool swapped in.

Each test of ``test.test_concurrent_futures`` whose test case is a ``ThreadPool*`` one
runs in its own child interpreter (``tests/cpython_suite/runner.py``) with a time limit,
so a hung test fails instead of hanging the run. ``sitecustomize`` in that directory
replaces ``concurrent.futures.ThreadPoolExecutor`` by ``WorkerPool`` in the child and in
the interpreters its tests start. Every test must pass (or be skipped by CPython's own
conditions) except those in :data:`READS_PRIVATE`, which read ThreadPoolExecutor's
internals; the docs' compatibility page lists the same table.

Run ``python tests/test_cpython_executor.py`` to print every test's outcome and time.
"""

from __future__ import annotations

import faulthandler
import os
import re
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import NamedTuple

import pytest

HERE = Path(__file__).resolve().parent
SUITE_DIR = HERE / "cpython_suite"
DOCS_PAGE = HERE.parent / "docs" / "how-to" / "migrate-from-threadpoolexecutor.md"
PER_TEST_TIMEOUT = 120.0  # seconds; the slowest (a 50-fork loop) takes a few seconds
PARALLEL = 4  # children at once: most tests wait on sleeps and child interpreters

# Tests that read ThreadPoolExecutor's private attributes in a way WorkerPool does not
# reproduce, and why. They run, and may pass or fail; they are not required to pass.
READS_PRIVATE: dict[str, str] = {
    "ThreadPoolExecutorTest.test_idle_thread_reuse": (
        "counts `_threads` right after three sequential tasks; WorkerPool may start a "
        "second thread when a task is submitted before the previous worker went idle"
    ),
}

# Tests that check text threadkit words its own way on purpose (names, logs), and why.
DIFFERS_BY_DESIGN: dict[str, str] = {
    "ThreadPoolShutdownTest.test_thread_names_default": (
        "reads `_threads` and expects default thread names `ThreadPoolExecutor-N_k`; "
        "WorkerPool's are `WorkerPool-N_k` (pass `thread_name_prefix` to choose)"
    ),
}


class Outcome(NamedTuple):
    test_id: str
    verdict: str  # "pass", "fail", "timeout", or "skip: <reason>"
    seconds: float
    output: str


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env["THREADKIT_SWAP_EXECUTOR"] = "1"
    env["PYTHONPATH"] = os.pathsep.join([str(SUITE_DIR), *filter(None, [env.get("PYTHONPATH")])])
    return env


def has_cpython_suite(python: str = sys.executable) -> bool:
    """Whether ``python`` ships ``test.test_concurrent_futures`` (pyenv 3.11/3.12 do not)."""
    probe = subprocess.run(
        [python, "-c", "import test.test_concurrent_futures"],
        capture_output=True,
        timeout=60,
        check=False,
    )
    return probe.returncode == 0


def list_tests(python: str = sys.executable) -> list[str]:
    """The ids of CPython's ThreadPool* tests on ``python``."""
    out = subprocess.run(
        [python, str(SUITE_DIR / "runner.py"), "list"],
        capture_output=True,
        text=True,
        env=_env(),
        timeout=120,
        check=True,
    ).stdout
    return [line for line in out.splitlines() if line.strip()]


def run_test(test_id: str, python: str = sys.executable) -> Outcome:
    """Run one CPython test in a child interpreter, within :data:`PER_TEST_TIMEOUT`."""
    started = time.monotonic()
    try:
        proc = subprocess.run(
            [python, str(SUITE_DIR / "runner.py"), "run", test_id],
            capture_output=True,
            text=True,
            env=_env(),
            timeout=PER_TEST_TIMEOUT,
            check=False,
        )
    except subprocess.TimeoutExpired as exc:
        output = exc.stdout if isinstance(exc.stdout, str) else ""
        return Outcome(test_id, "timeout", time.monotonic() - started, output)
    output = proc.stdout + proc.stderr
    found = re.findall(r"^VERDICT (.*)$", proc.stdout, re.MULTILINE)
    verdict = found[-1] if found and proc.returncode == 0 else "fail"
    return Outcome(test_id, verdict, time.monotonic() - started, output)


def run_all(python: str = sys.executable) -> list[Outcome]:
    """Run every ThreadPool* test, :data:`PARALLEL` children at a time."""
    ids = list_tests(python)
    with ThreadPoolExecutor(PARALLEL) as pool:
        return list(pool.map(lambda test_id: run_test(test_id, python), ids))


def _name(test_id: str) -> str:
    """``Class.test`` of a test id (the same test name can be in several classes)."""
    return ".".join(test_id.rsplit(".", 2)[-2:])


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_cpython_thread_pool_tests_pass_with_workerpool() -> None:
    """Every CPython ThreadPool* test that uses only public behaviour passes with WorkerPool."""
    if not has_cpython_suite():
        pytest.skip(f"Python {sys.version.split()[0]} here ships no test.test_concurrent_futures")
    # The suite takes a minute or two; each child has its own limit, and pytest-timeout
    # bounds the whole. Without this, faulthandler_timeout would dump every thread's
    # stack midway as if something hung.
    faulthandler.cancel_dump_traceback_later()
    outcomes = run_all()
    assert len(outcomes) >= 30, [o.test_id for o in outcomes]
    exempt = READS_PRIVATE.keys() | DIFFERS_BY_DESIGN.keys()
    bad = [
        o
        for o in outcomes
        if _name(o.test_id) not in exempt
        and not (o.verdict == "pass" or o.verdict.startswith("skip"))
    ]
    assert not bad, "\n\n".join(f"{o.test_id}: {o.verdict}\n{o.output[-3000:]}" for o in bad)


@pytest.mark.slow
def test_cpython_suite_sees_workerpool_in_child_interpreters() -> None:
    """The swap reaches the child and the grandchild interpreters CPython's tests start."""
    code = (
        "import concurrent.futures as f, subprocess, sys\n"
        "print(f.ThreadPoolExecutor.__module__, f.thread.ThreadPoolExecutor.__module__)\n"
        "sys.stdout.flush()\n"
        "subprocess.run([sys.executable, '-c', "
        "'import concurrent.futures as f; print(f.WorkerPool.__module__)'], check=True)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        env=_env(),
        timeout=60,
        check=True,
    ).stdout.split()
    assert out == ["threadkit", "threadkit", "threadkit"]


def test_docs_list_every_exempt_cpython_test() -> None:
    """The compatibility page names each CPython test that is not required to pass."""
    page = DOCS_PAGE.read_text(encoding="utf-8")
    for name in READS_PRIVATE.keys() | DIFFERS_BY_DESIGN.keys():
        assert f"`{name}`" in page, name


def main() -> int:
    """Print each test's outcome and time, and the totals."""
    python = sys.argv[1] if len(sys.argv) > 1 else sys.executable
    started = time.monotonic()
    outcomes = run_all(python)
    for o in outcomes:
        print(f"{o.verdict[:40]:40} {o.seconds:6.1f} s  {o.test_id}")
    failed = [o for o in outcomes if o.verdict in ("fail", "timeout")]
    print(
        f"{len(outcomes)} tests, {len(failed)} failed, "
        f"{time.monotonic() - started:.1f} s wall with {PARALLEL} in parallel"
    )
    for o in failed:
        print(f"\n===== {o.test_id}\n{o.output[-2500:]}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
