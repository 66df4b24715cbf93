"""``limited()`` and ``Limited``: one limiter guarding a ``with`` block or every call.

Every threadkit limiter (the semaphores in ``_sync``, the rate limiters in ``_ratelimit``)
offers the same two private methods, ``_guard_enter`` and ``_guard_exit``; a guard calls
them and knows nothing else of the limiter. The limiters sit on a higher floor and import
this module, so the types below name them only through protocols.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Hashable
from types import TracebackType
from typing import (
    Any,
    ClassVar,
    Final,
    Literal,
    ParamSpec,
    Protocol,
    Self,
    TypeVar,
    final,
    overload,
)

from ._cancel import CancelToken
from ._validate import check_timeout

__all__ = ["Limited", "limited"]

K = TypeVar("K", bound=Hashable)
K_contra = TypeVar("K_contra", contravariant=True)
P = ParamSpec("P")
T = TypeVar("T")


class PlainLimiter(Protocol):
    """A limiter without keys: ``Semaphore``, ``CapacityLimiter``, ``RateLimiter``."""

    _KEYED: ClassVar[Literal[False]]

    def _guard_enter(self, key: object, timeout: float | None, cancel: CancelToken | None) -> None:
        """Take one unit."""

    def _guard_exit(self, key: object) -> None:
        """Give it back."""


class KeyedLimiterType(Protocol[K_contra]):
    """A limiter with keys: ``KeyedLimiter``, ``KeyedRateLimiter``."""

    _KEYED: ClassVar[Literal[True]]

    def _guard_enter(
        self, key: K_contra, timeout: float | None, cancel: CancelToken | None
    ) -> None:
        """Take one unit for ``key``."""

    def _guard_exit(self, key: K_contra) -> None:
        """Give it back."""


AnyLimiter = PlainLimiter | KeyedLimiterType[Any]

_NO_KEY: Final = object()


@final
class Limited:
    """A reusable guard that passes a block or every call of a function through a limiter.

    Made by ``limited()`` (or a keyed limiter's ``hold()``). As a context manager it
    takes one permit (or rate token) on entry and gives it back on exit; as a
    decorator it does the same around every call. It keeps no per-use state, so one
    guard may be shared by any number of threads.
    """

    __slots__ = ("_cancel", "_key", "_key_of", "_limiter", "_timeout")

    def __init__(
        self,
        limiter: AnyLimiter,
        key: object,
        key_of: Callable[..., object] | None,
        timeout: float | None,
        cancel: CancelToken | None,
    ) -> None:
        self._limiter = limiter
        self._key = key
        self._key_of = key_of
        self._timeout = timeout
        self._cancel = cancel

    def __enter__(self) -> Self:
        if self._key_of is not None:
            raise TypeError(
                "a guard made with key_of= can only decorate a function;"
                " use key= (or the limiter's hold(key)) in a with statement"
            )
        self._limiter._guard_enter(self._key, self._timeout, self._cancel)
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._limiter._guard_exit(self._key)

    def __call__(self, fn: Callable[P, T], /) -> Callable[P, T]:
        """Wrap ``fn`` so that every call passes through the limiter.

        Args:
            fn: The function to guard.

        Returns:
            A function with ``fn``'s signature and metadata.

        Raises:
            TypeError: ``fn`` is not callable.
        """
        if not callable(fn):
            raise TypeError(f"limited(...) decorates a callable, got {fn!r}")
        limiter, key, key_of = self._limiter, self._key, self._key_of
        timeout, cancel = self._timeout, self._cancel

        @functools.wraps(fn)
        def guarded(*args: P.args, **kwargs: P.kwargs) -> T:
            k = key if key_of is None else key_of(*args, **kwargs)
            limiter._guard_enter(k, timeout, cancel)
            try:
                return fn(*args, **kwargs)
            finally:
                limiter._guard_exit(k)

        return guarded

    def __repr__(self) -> str:
        key = "" if self._key is _NO_KEY else f" key={self._key!r}"
        return f"<threadkit.Limited {self._limiter!r}{key}>"


@overload
def limited(
    limiter: PlainLimiter,
    /,
    *,
    timeout: float | None = None,
    cancel: CancelToken | None = None,
) -> Limited: ...
@overload
def limited(
    limiter: KeyedLimiterType[K],
    /,
    *,
    key: K,
    timeout: float | None = None,
    cancel: CancelToken | None = None,
) -> Limited: ...
@overload
def limited(
    limiter: KeyedLimiterType[K],
    /,
    *,
    key_of: Callable[..., K],
    timeout: float | None = None,
    cancel: CancelToken | None = None,
) -> Limited: ...
def limited(
    limiter: AnyLimiter,
    /,
    *,
    key: object = _NO_KEY,
    key_of: Callable[..., object] | None = None,
    timeout: float | None = None,
    cancel: CancelToken | None = None,
) -> Limited:
    """Guard a ``with`` block, or every call of a function, with a limiter.

    Works with every threadkit limiter. A semaphore or capacity limiter is held for
    the block or call and released after it, even when it raises; a rate limiter
    only spends a token on entry.

    For example:

    ```python
    sem = Semaphore(4)
    fetch = limited(sem)(fetch)                 # at most 4 fetches at once
    pool.map(limited(per_host, key_of=host_of)(fetch), urls)
    with limited(rate, timeout=5):
        call_the_api()
    ```

    Args:
        limiter: A ``Semaphore``, ``CapacityLimiter``, ``KeyedLimiter``,
            ``RateLimiter`` or ``KeyedRateLimiter``.
        key: For a keyed limiter: the key every use goes through.
        key_of: For a keyed limiter used as a decorator: called with each call's
            arguments, returns the key for that call.
        timeout: The most seconds each entry waits; when it expires, ``TimeoutError``
            is raised and the block or function does not run. ``None``: no limit.
        cancel: A token whose cancellation ends a wait with ``Cancelled``.

    Returns:
        A ``Limited`` guard, usable as a context manager and as a decorator.

    Raises:
        TypeError: ``limiter`` is not a threadkit limiter; a keyed limiter got neither
            or both of ``key`` and ``key_of``, or a plain one got either; ``timeout``
            is not a number, or ``cancel`` is not a ``CancelToken``.
        ValueError: ``timeout`` is negative, NaN or infinite.
    """
    keyed = getattr(type(limiter), "_KEYED", None)
    if keyed is None or not hasattr(limiter, "_guard_enter"):
        raise TypeError(f"limited() needs a threadkit limiter, got {limiter!r}")
    has_key = key is not _NO_KEY
    if keyed and has_key == (key_of is not None):
        raise TypeError("a keyed limiter needs exactly one of key= and key_of=")
    if not keyed and (has_key or key_of is not None):
        raise TypeError(f"{type(limiter).__name__} is not keyed: pass no key= or key_of=")
    if key_of is not None and not callable(key_of):
        raise TypeError(f"key_of must be callable, got {key_of!r}")
    seconds = check_timeout(timeout)
    if cancel is not None and not isinstance(cancel, CancelToken):
        raise TypeError(f"cancel must be a CancelToken or None, got {cancel!r}")
    return Limited(limiter, key, key_of, seconds, cancel)
