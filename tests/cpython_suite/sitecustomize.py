"""Swap threadkit.WorkerPool in for concurrent.futures.ThreadPoolExecutor at startup.

Put on ``PYTHONPATH`` only by ``tests/test_cpython_executor.py`` for the child
interpreters that run CPython's own executor tests, and inherited by the interpreters
those tests start in turn. ``WorkerPool`` is also made importable as
``concurrent.futures.WorkerPool``: tests that start a child interpreter write
``from concurrent.futures import {executor_type.__name__}`` into its script.
"""

from __future__ import annotations

import os

if os.environ.get("THREADKIT_SWAP_EXECUTOR") == "1":
    import concurrent.futures
    import concurrent.futures.thread

    import threadkit

    concurrent.futures.ThreadPoolExecutor = threadkit.WorkerPool  # type: ignore[misc]
    concurrent.futures.thread.ThreadPoolExecutor = threadkit.WorkerPool  # type: ignore[misc]
    concurrent.futures.WorkerPool = threadkit.WorkerPool  # type: ignore[attr-defined]
