"""threadkit: run I/O jobs concurrently with threads.

The public names live here; the code lives in private modules named for one idea each.
"""

from __future__ import annotations

from ._aio import AsyncMapIterator as AsyncMapIterator
from ._cancel import CancelToken as CancelToken
from ._cancel import DeadlineExceeded as DeadlineExceeded
from ._cancel import current_token as current_token
from ._distribute import NodeIterator as NodeIterator
from ._distribute import close_node_pools as close_node_pools
from ._distribute import process_on as process_on
from ._errors import BrokenPool as BrokenPool
from ._errors import Cancelled as Cancelled
from ._errors import PoolShutDown as PoolShutDown
from ._errors import QueueFull as QueueFull
from ._errors import ShutdownRequested as ShutdownRequested
from ._errors import SubmitTimeout as SubmitTimeout
from ._errors import TaskGroupTimeout as TaskGroupTimeout
from ._errors import ThreadkitError as ThreadkitError
from ._hooks import PoolHooks as PoolHooks
from ._limited import Limited as Limited
from ._limited import limited as limited
from ._map import MapIterator as MapIterator
from ._pool import WorkerPool as WorkerPool
from ._progress import Progress as Progress
from ._progress import make_progress as make_progress
from ._ratelimit import KeyedRateLimiter as KeyedRateLimiter
from ._ratelimit import KeyedRateLimiterStatistics as KeyedRateLimiterStatistics
from ._ratelimit import RateLimiter as RateLimiter
from ._ratelimit import RateLimiterStatistics as RateLimiterStatistics
from ._reports import DroppedTask as DroppedTask
from ._reports import PoolStatistics as PoolStatistics
from ._reports import ShutdownReport as ShutdownReport
from ._reports import TaskEvent as TaskEvent
from ._reports import WorkerSnapshot as WorkerSnapshot
from ._shutdown import GracefulShutdown as GracefulShutdown
from ._shutdown import ShutdownSummary as ShutdownSummary
from ._sync import CapacityLimiter as CapacityLimiter
from ._sync import CapacityLimiterStatistics as CapacityLimiterStatistics
from ._sync import KeyedLimiter as KeyedLimiter
from ._sync import KeyedLimiterStatistics as KeyedLimiterStatistics
from ._sync import Semaphore as Semaphore
from ._sync import SemaphoreStatistics as SemaphoreStatistics
from ._taskgroup import TaskGroup as TaskGroup
from ._taskgroup import TaskGroupStatistics as TaskGroupStatistics
from ._threads import ThreadSnapshot as ThreadSnapshot
from ._threads import dump_threads as dump_threads
from ._threads import set_os_thread_name as set_os_thread_name
from ._threads import start_thread as start_thread
from ._threads import thread_name as thread_name
from ._threads import thread_snapshots as thread_snapshots
from ._threads import unique_name as unique_name
from ._version import __version__ as __version__
from ._worker import Worker as Worker

__all__ = [
    "AsyncMapIterator",
    "BrokenPool",
    "CancelToken",
    "Cancelled",
    "CapacityLimiter",
    "CapacityLimiterStatistics",
    "DeadlineExceeded",
    "DroppedTask",
    "GracefulShutdown",
    "KeyedLimiter",
    "KeyedLimiterStatistics",
    "KeyedRateLimiter",
    "KeyedRateLimiterStatistics",
    "Limited",
    "MapIterator",
    "NodeIterator",
    "PoolHooks",
    "PoolShutDown",
    "PoolStatistics",
    "Progress",
    "QueueFull",
    "RateLimiter",
    "RateLimiterStatistics",
    "Semaphore",
    "SemaphoreStatistics",
    "ShutdownReport",
    "ShutdownRequested",
    "ShutdownSummary",
    "SubmitTimeout",
    "TaskEvent",
    "TaskGroup",
    "TaskGroupStatistics",
    "TaskGroupTimeout",
    "ThreadSnapshot",
    "ThreadkitError",
    "Worker",
    "WorkerPool",
    "WorkerSnapshot",
    "__version__",
    "close_node_pools",
    "current_token",
    "dump_threads",
    "limited",
    "make_progress",
    "process_on",
    "set_os_thread_name",
    "start_thread",
    "thread_name",
    "thread_snapshots",
    "unique_name",
]


def _fix_module_names() -> None:
    # Reprs, tracebacks and the docs should say threadkit.X, not threadkit._pool.X.
    for name in __all__:
        obj = globals()[name]
        if getattr(obj, "__module__", "").startswith("threadkit."):
            obj.__module__ = "threadkit"


_fix_module_names()
del _fix_module_names
