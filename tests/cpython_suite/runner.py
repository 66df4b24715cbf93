"""Run CPython's ThreadPoolExecutor tests against WorkerPool, in this interpreter.

    python runner.py list        print the ids of the ThreadPool* tests, one a line
    python runner.py run ID      run one test; the last line says pass, fail or skip

Started by ``tests/test_cpython_executor.py`` with this directory on ``PYTHONPATH`` and
``THREADKIT_SWAP_EXECUTOR=1``, so ``sitecustomize`` has already swapped the pool in.
"""

from __future__ import annotations

import importlib
import io
import sys
import unittest
from collections.abc import Iterator

# The modules of test.test_concurrent_futures that hold ThreadPool* test cases (3.12+:
# a package; the single module of older releases holds them all).
MODULES = (
    "test_thread_pool",
    "test_shutdown",
    "test_wait",
    "test_as_completed",
    "test_init",
)


def _module_names() -> list[str]:
    package = importlib.import_module("test.test_concurrent_futures")
    if hasattr(package, "__path__"):
        return [f"test.test_concurrent_futures.{name}" for name in MODULES]
    return ["test.test_concurrent_futures"]


def _cases(suite: unittest.TestSuite) -> Iterator[unittest.TestCase]:
    for item in suite:
        if isinstance(item, unittest.TestSuite):
            yield from _cases(item)
        else:
            yield item


def list_ids() -> list[str]:
    """Every ThreadPool* test id, in a stable order."""
    loader = unittest.TestLoader()
    ids = []
    for name in _module_names():
        module = importlib.import_module(name)
        cases = _cases(loader.loadTestsFromModule(module))
        ids += [case.id() for case in cases if type(case).__name__.startswith("ThreadPool")]
    return sorted(ids)


def run(test_id: str) -> int:
    """Run one test with its module's fixtures; print a verdict as the last line."""
    import concurrent.futures

    from test.support import script_helper

    if getattr(concurrent.futures.ThreadPoolExecutor, "__module__", "") != "threadkit":
        print("\nVERDICT fail: WorkerPool was not swapped in (sitecustomize not loaded)")
        return 0

    # Tests that start a child interpreter run it isolated (-I) unless the environment
    # is needed; say it is, so the children see PYTHONPATH and get the swap too.
    script_helper.interpreter_requires_environment = lambda: True
    suite = unittest.TestLoader().loadTestsFromName(test_id)
    stream = io.StringIO()
    result = unittest.TextTestRunner(stream=stream, verbosity=2).run(suite)
    sys.stdout.write(stream.getvalue())
    if result.errors or result.failures or result.unexpectedSuccesses:
        verdict = "fail"
    elif result.skipped and not result.testsRun - len(result.skipped):
        verdict = "skip: " + "; ".join(reason for _, reason in result.skipped)
    else:
        verdict = "pass"
    print(f"\nVERDICT {verdict}", flush=True)
    return 0


def main() -> int:
    if len(sys.argv) == 2 and sys.argv[1] == "list":
        print("\n".join(list_ids()))
        return 0
    if len(sys.argv) == 3 and sys.argv[1] == "run":
        return run(sys.argv[2])
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
