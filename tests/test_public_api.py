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
