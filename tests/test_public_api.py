"""The public face of the package: exports, names and metadata."""

from __future__ import annotations
import __future__

import re

import threadkit


def test_all_matches_public_names() -> None:
    """``__all__`` lists exactly the public names the package defines."""
    public = {
        name
        for name, value in vars(threadkit).items()
        if not name.startswith("_") and not isinstance(value, __future__._Feature)
    }
    assert sorted(threadkit.__all__) == threadkit.__all__
    assert set(threadkit.__all__) - {"__version__"} == public


def test_exports_say_threadkit_in_their_module() -> None:
    """Every exported class or function reports ``threadkit`` as its module."""
    for name in threadkit.__all__:
        obj = getattr(threadkit, name)
        if callable(obj):
            assert obj.__module__ == "threadkit", name


def test_version_is_pep440() -> None:
    """``__version__`` is a PEP 440 version string."""
    assert re.fullmatch(r"\d+\.\d+\.\d+((a|b|rc)\d+)?(\.dev\d+)?", threadkit.__version__)


def test_errors_keep_stdlib_compatibility() -> None:
    """The errors subclass what the standard library raises in the same situations."""
    from concurrent.futures import BrokenExecutor
    from concurrent.futures.thread import BrokenThreadPool

    assert issubclass(threadkit.PoolShutDown, RuntimeError)
    assert issubclass(threadkit.BrokenPool, BrokenThreadPool)
    assert issubclass(threadkit.BrokenPool, BrokenExecutor)
    assert issubclass(threadkit.SubmitTimeout, TimeoutError)
    assert issubclass(threadkit.SubmitTimeout, threadkit.QueueFull)
    assert issubclass(threadkit.TaskGroupTimeout, TimeoutError)
    assert issubclass(threadkit.TaskGroupTimeout, threadkit.ThreadkitError)


def test_reports_and_statistics_are_the_exported_frozen_types() -> None:
    """Each statistics() and report returns the exported frozen value type it documents."""
    import attrs

    with threadkit.WorkerPool(1) as pool:
        pool.submit(int).result(10)
        stats = pool.statistics()
        snapshots = pool.worker_snapshots()
    report = pool.shutdown_now()
    values: list[tuple[object, type]] = [
        (stats, threadkit.PoolStatistics),
        (report, threadkit.ShutdownReport),
        (threadkit.Semaphore(2).statistics(), threadkit.SemaphoreStatistics),
        (threadkit.CapacityLimiter(2).statistics(), threadkit.CapacityLimiterStatistics),
        (threadkit.KeyedLimiter(2).statistics(), threadkit.KeyedLimiterStatistics),
        (threadkit.RateLimiter(10).statistics(), threadkit.RateLimiterStatistics),
        (threadkit.KeyedRateLimiter(10).statistics(), threadkit.KeyedRateLimiterStatistics),
        (threadkit.TaskGroup().statistics(), threadkit.TaskGroupStatistics),
    ]
    values += [(snap, threadkit.WorkerSnapshot) for snap in snapshots]
    values += [(snap, threadkit.ThreadSnapshot) for snap in threadkit.thread_snapshots()]
    for value, cls in values:
        assert type(value) is cls
        assert attrs.has(cls)
        assert attrs.fields(cls)  # a value with fields, not an empty shell
        field = attrs.fields(cls)[0].name
        try:
            setattr(value, field, None)
        except attrs.exceptions.FrozenInstanceError:
            pass
        else:
            raise AssertionError(f"{cls.__name__} is not frozen")
    assert isinstance(threadkit.limited(threadkit.Semaphore(1)), threadkit.Limited)
    with threadkit.WorkerPool(1) as other:
        assert isinstance(other.map(abs, []), threadkit.MapIterator)


def test_the_asyncio_bridge_is_on_the_pool_and_amap_returns_the_exported_type() -> None:
    """run/run_process/amap/aprocess exist on WorkerPool; amap gives an AsyncMapIterator."""
    import asyncio

    for name in ("run", "run_process", "amap", "aprocess"):
        assert callable(getattr(threadkit.WorkerPool, name)), name
    with threadkit.WorkerPool(1) as pool:
        iterator = pool.amap(abs, [])
        assert type(iterator) is threadkit.AsyncMapIterator
        assert repr(threadkit.AsyncMapIterator).startswith("<class 'threadkit.")

        async def drain() -> list[int]:
            return [x async for x in iterator]

        assert asyncio.run(drain()) == []


def test_process_on_is_exported_and_imports_no_cluster_library() -> None:
    """process_on and its iterator are public; importing threadkit loads no Dask."""
    import subprocess
    import sys

    assert callable(threadkit.process_on)
    assert threadkit.NodeIterator.__module__ == "threadkit"
    assert callable(threadkit.close_node_pools)
    code = "import sys, threadkit; print(sorted({'dask', 'distributed'} & set(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
