"""Process-wide state, and nothing else: what threadkit keeps for the whole process.

Everything mutable that outlives one pool or one shutdown block lives here, so a reader
finds every global in one place and the fork and exit hooks see all of it:

* ``this_thread``: the calling thread's own threadkit records (a ``threading.local``):
  ``core`` and ``record`` in a pool's worker thread, ``token`` its pool's token,
  ``task_groups`` the stack of ``TaskGroup`` blocks the thread is inside.
* The live pool engines, weakly held, which interpreter exit waits for and a forked
  child fails (``register_engine``), and the other objects a forked child must repair
  (the limiters: ``register_fork_aware``). The hooks are installed on first use.
* ``exiting``: set once interpreter exit began; pools then refuse work as the stdlib's do.
* The stack of running ``GracefulShutdown`` blocks (``push_scope`` / ``innermost_scope``),
  with the innermost of which new pools register, and whose token ``process_on`` heeds.
* The pools ``process_on`` keeps on a node, one per job (``node_pool``).
* The counters behind unique thread names, pool and task group numbers.
* ``hard_exit``: the one way threadkit ends the process without unwinding.

This module stands on ``_waiting`` alone (interpreter exit waits for workers in slices
a Ctrl-C can interrupt): the engines and scopes it holds are seen through the small
protocols below.
"""

from __future__ import annotations

import contextlib
import itertools
import logging
import os
import sys
import threading
import weakref
from collections.abc import Callable
from typing import Any, NoReturn, Protocol

from ._locks import new_lock
from ._waiting import join_interruptibly

__all__ = [
    "Engine",
    "ForkAware",
    "Scope",
    "group_numbers",
    "hard_exit",
    "innermost_scope",
    "innermost_token",
    "node_pool",
    "next_name_number",
    "pool_numbers",
    "pop_scope",
    "push_scope",
    "register_engine",
    "register_fork_aware",
    "take_node_pools",
    "this_thread",
]

logger = logging.getLogger("threadkit")


class Engine(Protocol):
    """What interpreter exit and fork need of a pool's engine."""

    @property
    def abandoned(self) -> bool:
        """A shutdown gave up waiting for this pool: exit does not wait for it either."""
        ...

    def stop_intake_at_exit(self) -> None:
        """Stop taking work; let what was accepted finish."""

    def worker_threads(self) -> list[threading.Thread]:
        """The live worker threads, to be joined."""
        ...

    def after_fork_in_child(self) -> None:
        """Fail everything the parent's pool had accepted: its threads are not here."""


class ForkAware(Protocol):
    """An object whose locks and queues of waiting threads a forked child must repair
    (a limiter: the method is private, as it is not part of the limiter's public face)."""

    def _after_fork_in_child(self) -> None:
        """Replace locks a vanished thread may hold; forget threads that are not here."""


# What a new pool needs of the innermost running ``GracefulShutdown`` block: a callable
# that registers the pool with the block and returns the token the pool's descends from.
Scope = Callable[[Any], Any]


this_thread = threading.local()
pool_numbers = itertools.count()
group_numbers = itertools.count(1)
exiting = False

_lock = new_lock()  # guards every registry below
_engines: weakref.WeakSet[Engine] = weakref.WeakSet()
_fork_aware: weakref.WeakSet[ForkAware] = weakref.WeakSet()
_hooks_installed = False
_scopes: list[tuple[Scope, Any]] = []  # (adopt, token) of each running block
# process_on's pools on this node, by job: made by the first batch that needs one and
# reused by the later ones. Its own lock, since making a pool registers its engine.
_node_lock = new_lock()
_node_pools: dict[str, Any] = {}
_name_counters: dict[str, int] = {}


def register_engine(engine: Engine) -> None:
    """Remember a live engine (weakly); install the exit and fork hooks on first use."""
    with _lock:
        _engines.add(engine)
    _install_hooks()


def register_fork_aware(thing: ForkAware) -> None:
    """Have a forked child call ``thing._after_fork_in_child()`` (held weakly).

    Without ``_lock``: every token registers, and ``WeakSet.add`` is one ``set.add`` of a
    new weak reference (atomic, on free-threaded builds too); the set is read only in a
    forked child, which has one thread.
    """
    _fork_aware.add(thing)
    _install_hooks()


def _install_hooks() -> None:
    global _hooks_installed
    if _hooks_installed:  # (a hint: the lock decides who installs them)
        return
    with _lock:
        first, _hooks_installed = not _hooks_installed, True
    if not first:
        return
    # threading's own exit hook runs before the interpreter joins non-daemon threads and
    # before atexit handlers, as the stdlib's pools need.
    register = getattr(threading, "_register_atexit", None)
    if register is not None:
        register(_at_interpreter_exit)
    else:  # pragma: no cover - every supported CPython has it
        import atexit

        atexit.register(_at_interpreter_exit)
    if hasattr(os, "register_at_fork"):
        os.register_at_fork(after_in_child=_after_fork_in_child)


def _live_engines() -> list[Engine]:
    return _alive(_engines)


def _alive(registry: weakref.WeakSet[Any]) -> list[Any]:
    with _lock:
        while True:
            try:
                return list(registry)
            except RuntimeError:  # one was collected mid-copy (no GIL)
                continue


def _at_interpreter_exit() -> None:
    """Let running and queued work finish before the interpreter exits, as the stdlib does.

    Pools whose shutdown already gave up on stragglers are not waited for; a Ctrl-C
    during this wait abandons the remaining work and exits with status 130.
    """
    global exiting
    exiting = True
    engines = _live_engines()
    threads: list[threading.Thread] = []
    try:
        for engine in engines:
            engine.stop_intake_at_exit()
        for engine in engines:
            if not engine.abandoned:
                threads += engine.worker_threads()
        for thread in threads:
            join_interruptibly(thread, None)
    except KeyboardInterrupt:
        # From the records taken before the join: an interrupted join may already report
        # a running thread as stopped (before Python 3.13).
        names = sorted(thread.name for thread in threads)
        logger.warning("interrupted at exit; abandoning running tasks in %s", ", ".join(names))
        import atexit

        atexit._run_exitfuncs()
        hard_exit(130)


def _after_fork_in_child() -> None:
    global _lock, _node_lock, _node_pools
    _lock = new_lock()  # its holder may have been a thread that is not here
    _node_lock = new_lock()
    _node_pools = {}  # the parent's pools have no threads here
    # Locks first: failing the pools' futures runs their callbacks (a task group's, a
    # token's), which take the locks of the objects repaired here.
    for thing in _alive(_fork_aware):
        thing._after_fork_in_child()
    for engine in _live_engines():
        engine.after_fork_in_child()


def push_scope(scope: Scope, token: Any) -> None:
    """Make ``scope`` (with its cancel ``token``) the innermost running shutdown block."""
    with _lock:
        _scopes.append((scope, token))


def pop_scope(scope: Scope) -> None:
    """Forget ``scope`` (the block ended); a no-op if it is not there."""
    with _lock:
        for index, (held, _) in enumerate(_scopes):
            if held == scope:
                del _scopes[index]
                break


def innermost_scope() -> Scope | None:
    """The innermost running shutdown block, if any."""
    with _lock:
        return _scopes[-1][0] if _scopes else None


def innermost_token() -> Any:
    """The cancel token of the innermost running shutdown block, or ``None``."""
    with _lock:
        return _scopes[-1][1] if _scopes else None


def node_pool(key: str, make: Callable[[], Any], stale: Any = None) -> Any:
    """This process's pool for ``key`` (``process_on``): the registered one, or one
    ``make()`` makes, in place of ``stale`` (a pool that refused work) if given."""
    with _node_lock:
        pool = _node_pools.get(key)
        if pool is None or pool is stale:
            pool = _node_pools[key] = make()
        return pool


def take_node_pools() -> list[Any]:
    """Forget every ``process_on`` pool of this process, and return them (to close)."""
    with _node_lock:
        pools = list(_node_pools.values())
        _node_pools.clear()
        return pools


def next_name_number(prefix: str) -> int:
    """The next number for a thread named after ``prefix`` (0, 1, ... per prefix)."""
    with _lock:
        number = _name_counters.get(prefix, 0)
        _name_counters[prefix] = number + 1
        return number


def hard_exit(code: int, *, flush: bool = True) -> NoReturn:
    """End the process now with ``code``: no unwinding, no atexit handlers.

    The standard streams are flushed first unless ``flush`` is false (a signal handler
    may have interrupted a write, and flushing there could raise or block).
    """
    if flush:
        for stream in (sys.stdout, sys.stderr):
            with contextlib.suppress(Exception):  # closed, None, or broken
                if stream is not None:
                    stream.flush()
    os._exit(code)
