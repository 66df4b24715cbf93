"""threadkit: run I/O jobs concurrently with threads.

The public names live here; the code lives in private modules named for one idea each.
"""

from __future__ import annotations

from ._errors import BrokenPool as BrokenPool
from ._errors import PoolShutDown as PoolShutDown
from ._errors import QueueFull as QueueFull
from ._errors import SubmitTimeout as SubmitTimeout
from ._errors import ThreadkitError as ThreadkitError
from ._version import __version__ as __version__

__all__ = [
    "BrokenPool",
    "PoolShutDown",
    "QueueFull",
    "SubmitTimeout",
    "ThreadkitError",
    "__version__",
]


def _fix_module_names() -> None:
    # Reprs, tracebacks and the docs should say threadkit.X, not threadkit._pool.X.
    for name in __all__:
        obj = globals()[name]
        if getattr(obj, "__module__", "").startswith("threadkit."):
            obj.__module__ = "threadkit"


_fix_module_names()
del _fix_module_names
