"""GracefulShutdown: stop a threaded program well on Ctrl-C, SIGTERM or request.

Threads cannot be killed, so stopping is cooperative. A ``GracefulShutdown`` around the
main program turns the first SIGINT or SIGTERM (or a ``request()``) into one orderly
sequence, and a second signal into a prompt, explained exit.

The signals themselves are handled by a ``SignalRelay`` (``_signals``): its handler only
records and raises, its watcher thread stops the registered pools and cancels the token
on the first signal, and forces the exit on a second. This module holds the rest: the
registry of pools, threads and callbacks, and the leaving sequence.

**The sequence runs in ``__exit__``**, in the main thread, in normal context: stop intake
on the registered pools and cancel their queued tasks; cancel the token; call the
registered stop callables; give running tasks ``grace`` seconds (Worker teardowns run as
their threads end); report the stragglers; run the cleanup callbacks, last registered
first; restore the previous handlers; then leave with ``SystemExit(128 + signal number)``
(130 for SIGINT, 143 for SIGTERM), which prints nothing and lets ``finally`` blocks and
``atexit`` handlers run. Each step is idempotent, so it does not matter what the watcher
did already.

The forced exit (second signal) skips ``finally`` blocks and ``atexit`` handlers: it is
the "stop now" the user asked for, and either could be what hangs. It flushes
``sys.stdout`` and ``sys.stderr`` first, and exits with the code of the first signal.

Phases, set by ``_enter_phase`` (inlined once in ``__enter__``), which also tells the relay
what a signal does:
``not entered`` -> ``entering`` -> ``active`` (the body) -> ``leaving`` (waiting for
pools, or about to stop) -> ``stopping`` (the sequence or the final cleanups) -> ``done``.
A first signal raises while ``active`` and ``leaving`` (except in the frames that run the
leaving, which pick it up themselves); from ``stopping`` on, any signal forces the exit.
"""

from __future__ import annotations

import contextlib
import functools
import itertools
import logging
import signal
import threading
import time
import weakref
from collections.abc import Callable, Iterable
from concurrent.futures import CancelledError
from signal import Signals
from typing import TYPE_CHECKING, Any, Final, NoReturn, ParamSpec, TypeVar, final

import attrs

from ._cancel import CancelToken
from ._errors import Cancelled, PoolShutDown, ShutdownRequested
from ._locks import new_lock
from ._pool import WorkerPool
from ._process import hard_exit, pop_scope, push_scope, register_fork_aware
from ._reports import WorkerSnapshot, describe_callable
from ._signals import (
    FORCE,
    RAISE,
    RECORD,
    SignalRelay,
    check_signals,
    interrupt_for,
    signal_name,
)
from ._signals import exit_code as signal_exit_code
from ._text import format_seconds
from ._threads import thread_snapshots
from ._validate import check_timeout
from ._waiting import join_interruptibly

if TYPE_CHECKING:
    from types import TracebackType
    from typing import Self


__all__ = ["GracefulShutdown", "ShutdownSummary"]

logger = logging.getLogger("threadkit")

P = ParamSpec("P")
R = TypeVar("R")
Registrable = TypeVar(
    "Registrable", bound="WorkerPool[Any, Any] | threading.Thread | Callable[[], object]"
)

_NEW: Final = "not entered"
_ENTERING: Final = "entering"
_BODY: Final = "active"
_LEAVING: Final = "leaving"  # the block ended; waiting for pools, or about to stop
_STOPPING: Final = "stopping"  # the graceful sequence (or the final cleanups) runs
_DONE: Final = "done"

# What the relay does with a first signal in each phase.
_STAGES: Final = {
    _NEW: RECORD,
    _ENTERING: RECORD,
    _BODY: RAISE,
    _LEAVING: RAISE,
    _STOPPING: FORCE,
    _DONE: FORCE,
}


@attrs.frozen
class ShutdownSummary:
    """What a ``GracefulShutdown`` did when its block was left.

    Attributes:
        trigger: What started the graceful sequence: a signal name (``"SIGINT"``,
            ``"SIGTERM"``, ...), ``"request"``, ``"token"`` (the token was cancelled
            some other way), ``"error"`` (an exception left the block), or ``None``
            when the block ended normally and no sequence ran.
        cancelled: Tasks of the registered pools cancelled before they started (the
            pools' ``statistics().cancelled``, whoever cancelled them).
        stragglers: Threads still running when the grace period ran out.
        cleanups: Cleanup callbacks that were run.
        errors: Stop callables, cleanups and pool shutdowns that raised (each logged).
        elapsed: Seconds spent leaving the block.
        exit_code: The status the process exits with (130 after SIGINT, 143 after
            SIGTERM), or ``None`` when the block was left normally or by an exception.
    """

    trigger: str | None
    cancelled: int
    stragglers: tuple[WorkerSnapshot, ...]
    cleanups: int
    errors: int
    elapsed: float
    exit_code: int | None

    @property
    def timed_out(self) -> bool:
        """``True`` if some thread was still running when the grace period ran out."""
        return bool(self.stragglers)


@final
class GracefulShutdown:
    """Stop the main program gracefully on SIGINT, SIGTERM or ``request()``.

    Use it around the main program, as a context manager, a decorator or with
    ``run()``. While the block runs, SIGINT and SIGTERM (and SIGHUP with
    ``hup=True``) raise ``KeyboardInterrupt`` or ``ShutdownRequested`` in the main
    thread and cancel ``token``. Leaving the block then runs the graceful sequence:
    stop the registered pools' intake, cancel their queued tasks, give running tasks
    ``grace`` seconds, run cleanups (last registered first), and exit with status 130
    (SIGINT) or 143 (SIGTERM). A second signal exits at once with the same status,
    after logging every thread's stack.

    For example:

    ```python
    with threadkit.GracefulShutdown(grace=5) as shutdown:
        pool = shutdown.register(threadkit.WorkerPool(8, cancel_token=shutdown.token))
        for result in pool.map(fetch, urls):
            save(result)
    ```

    Guarantees:
        * The signal handler takes no lock and calls into no pool (see the module
          documentation); everything else runs in the main thread or the watcher.
        * The previous handlers are back in place when the block is left, whatever way.
        * Leaving the block never swallows an exception. After a signal, the interrupt
          it raised (or a ``Cancelled`` from this token) becomes ``SystemExit``; any
          other exception propagates unchanged after the sequence.
        * A block left normally, with no signal and no request, shuts the registered
          pools down as ``with pool:`` does (queued work finishes) and runs cleanups.
          A signal during that wait switches to the graceful sequence.
        * After ``request()`` (no signal) the block is left normally: no
          ``SystemExit``.

    A ``GracefulShutdown`` is entered once; make a new one for each run.

    Args:
        grace: Seconds the running tasks get to finish once the sequence starts;
            ``None`` waits as long as they take (a second signal still ends it).
        signals: The signals to handle; any catchable ones (``()`` for none, leaving
            only ``request()``).
        hup: Also handle SIGHUP (where it exists).
        token: Use this token as ``token`` instead of a new one.

    Raises:
        TypeError: ``grace`` is not a number, a signal is not an ``int``, ``hup`` is
            not a ``bool`` or ``token`` is not a ``CancelToken``.
        ValueError: ``grace`` is negative, NaN or infinite, a signal is unknown or
            cannot be caught, or ``hup=True`` where SIGHUP does not exist.
    """

    __slots__ = (
        "__weakref__",
        "_cleanups",
        "_exit",
        "_grace",
        "_keys",
        "_lock",
        "_phase",
        "_pools",
        "_reason",
        "_relay",
        "_requested",
        "_signals",
        "_stoppers",
        "_summary",
        "_threads",
        "_token",
    )

    def __init__(
        self,
        *,
        grace: float | None = 10.0,
        signals: Iterable[int] = (signal.SIGINT, signal.SIGTERM),
        hup: bool = False,
        token: CancelToken | None = None,
    ) -> None:
        self._grace = check_timeout(grace, "grace")
        if not isinstance(hup, bool):
            raise TypeError(f"hup must be a bool, got {hup!r}")
        chosen = check_signals(signals)
        if hup:
            sighup = getattr(signal, "SIGHUP", None)
            if sighup is None:
                raise ValueError("hup=True, but SIGHUP does not exist on this platform")
            if sighup not in chosen:
                chosen.append(Signals(sighup))
        self._signals: tuple[Signals, ...] = tuple(chosen)
        if token is not None and not isinstance(token, CancelToken):
            raise TypeError(f"token must be a CancelToken or None, got {token!r}")
        self._token = CancelToken() if token is None else token
        self._lock = new_lock()
        register_fork_aware(self)
        self._keys = itertools.count()
        # Pools and threads are held weakly: a service making short-lived pools inside
        # the block must not pile them up here. Dicts keep registration order.
        self._pools: weakref.WeakValueDictionary[int, WorkerPool[Any, Any]] = (
            weakref.WeakValueDictionary()
        )
        self._threads: weakref.WeakValueDictionary[int, threading.Thread] = (
            weakref.WeakValueDictionary()
        )
        self._stoppers: list[Callable[[], object]] = []
        self._cleanups: list[Callable[[], object]] = []
        self._phase: str = _NEW
        self._requested = False
        self._reason: object = None
        self._relay = SignalRelay(
            self._signals, on_first=self._on_first_signal, quiet_codes=_LEAVING_CODES
        )
        self._summary: ShutdownSummary | None = None
        self._exit: SystemExit | None = None

    # -- state ---------------------------------------------------------------------

    @property
    def token(self) -> CancelToken:
        """The token cancelled on the first signal, on ``request()`` and when leaving.

        Give it to pools (``WorkerPool(cancel_token=shutdown.token)``) and check it in
        loops (``while not shutdown.token.sleep(5): poll()``) so work stops promptly.
        """
        return self._token

    @property
    def requested(self) -> bool:
        """Whether a signal arrived, ``request()`` was called or the token is cancelled."""
        return self._relay.signal is not None or self._requested or self._token.cancelled

    @property
    def summary(self) -> ShutdownSummary | None:
        """What leaving the block did; ``None`` until it has been left."""
        return self._summary

    @property
    def grace(self) -> float | None:
        """The seconds running tasks get once the graceful sequence starts."""
        return self._grace

    @property
    def signals(self) -> tuple[Signals, ...]:
        """The signals handled while the block runs."""
        return self._signals

    # Defined after every annotation that names the signal module's types.
    @property
    def signal(self) -> Signals | None:
        """The first handled signal that arrived, or ``None``."""
        signum = self._relay.signal
        return None if signum is None else Signals(signum)

    def wait(self, timeout: float | None = None) -> bool:
        """Block until a shutdown is requested (the token is cancelled) or ``timeout`` passes.

        In the main thread a handled signal interrupts the wait by raising, like any
        other blocking call in the block.

        Args:
            timeout: The most seconds to wait; ``None`` waits until requested.

        Returns:
            ``True`` if a shutdown was requested, ``False`` if the timeout expired.

        Raises:
            TypeError: ``timeout`` is not a number.
            ValueError: ``timeout`` is negative, NaN or infinite.
        """
        return self._token.wait(timeout)

    # -- registering ---------------------------------------------------------------

    def register(self, target: Registrable) -> Registrable:
        """Have the graceful sequence stop ``target``; return ``target``.

        * A ``WorkerPool`` stops taking work and its queued tasks are cancelled;
          its running tasks get the grace period; a block left normally waits for it
          as ``with pool:`` does. Held weakly.
        * A ``threading.Thread`` is joined within the grace period (and reported if
          still running). Held weakly.
        * Any other callable is called with no arguments when the sequence starts,
          last registered first, to stop some intake of yours (``server.shutdown``).
          It is not called when the block ends normally.

        Pools made while the block runs are registered by ``WorkerPool`` itself;
        registering a pool or thread a second time changes nothing.

        Args:
            target: A pool, a thread or a callable.

        Returns:
            ``target``, so ``pool = shutdown.register(WorkerPool(...))`` works.

        Raises:
            TypeError: ``target`` is none of these.
            RuntimeError: The block is already being left.
        """
        with self._lock:
            self._check_open("register")
            if isinstance(target, WorkerPool):
                self._remember(self._pools, target)
            elif isinstance(target, threading.Thread):
                self._remember(self._threads, target)
            elif callable(target):
                self._stoppers.append(target)
            else:
                raise TypeError(
                    f"register() needs a WorkerPool, a Thread or a callable, got {target!r}"
                )
        return target  # pyright: ignore[reportReturnType] (narrowed by isinstance above)

    def add_cleanup(self, fn: Callable[[], object]) -> Callable[[], object]:
        """Run ``fn()`` when the block is left, after the pools are shut down.

        Cleanups run on every way out (normal end, error, request, first signal, but
        not the forced exit), last added first, in the main thread. One that raises
        is logged and the others still run.

        Args:
            fn: Called with no arguments.

        Returns:
            ``fn``, so this works as a decorator.

        Raises:
            TypeError: ``fn`` is not callable.
            RuntimeError: The block is already being left.
        """
        if not callable(fn):
            raise TypeError(f"add_cleanup() needs a callable, got {fn!r}")
        with self._lock:
            self._check_open("add_cleanup")
            self._cleanups.append(fn)
        return fn

    def _check_open(self, method: str) -> None:
        if self._phase in (_STOPPING, _DONE):
            raise RuntimeError(
                f"{method}() called while the GracefulShutdown block is being left "
                f"({self._phase}); register everything before the sequence starts"
            )

    def _adopt_pool(self, pool: WorkerPool[Any, Any]) -> CancelToken:
        """Register a pool being made inside the running block; return its parent token.

        ``WorkerPool.__init__`` calls this (found through ``_process.innermost_scope``), so
        pools made inside the block are stopped by its sequence without ``register``.
        """
        with self._lock:
            self._remember(self._pools, pool)
        return self._token

    def _remember(self, held: weakref.WeakValueDictionary[int, Any], target: object) -> None:
        """Hold ``target`` weakly, once: registering it again changes nothing (lock held)."""
        if not any(value is target for value in held.values()):
            held[next(self._keys)] = target

    # -- requesting ----------------------------------------------------------------

    def request(self, reason: object = None) -> bool:
        """Ask for the graceful sequence, from any thread, as a first signal would.

        Cancels ``token`` at once, so everything waiting on it wakes. It does not
        interrupt the main thread: the block should notice (``shutdown.wait()``,
        ``token.sleep``, ``token.raise_if_cancelled()``) and end; leaving it runs the
        sequence, and then the program continues after the block (no ``SystemExit``).
        Not for use in a signal handler: this object handles signals itself.

        Args:
            reason: Why; becomes the token's ``reason`` (``"shutdown requested"`` if
                ``None``).

        Returns:
            ``True`` if this call made the request, ``False`` if one was already made.
        """
        with self._lock:
            if self._requested:
                return False
            self._requested = True
            self._reason = "shutdown requested" if reason is None else reason
        logger.info("graceful shutdown requested: %s", self._reason)
        self._token.cancel(self._reason)
        return True

    # -- entering ------------------------------------------------------------------

    def _after_fork_in_child(self) -> None:
        # A thread that held the lock at the fork is not in the child.
        self._lock = new_lock()

    def __enter__(self) -> Self:
        if threading.current_thread() is not threading.main_thread():
            raise RuntimeError(
                "GracefulShutdown must be entered in the main thread, because Python runs "
                "signal handlers only there: put it around the program's main function, "
                "and call shutdown.request() from other threads"
            )
        if self._phase is not _NEW:
            raise RuntimeError(
                f"this GracefulShutdown was already entered ({self._phase}); "
                "make a new one for each run"
            )
        self._enter_phase(_ENTERING)
        try:
            self._relay.install()
        except BaseException:
            self._enter_phase(_DONE)
            raise
        push_scope(self._adopt_pool, self._token)
        # Nothing below checks for signals before the return (no call, no backward
        # jump), so a signal lands either before this test or in the body.
        self._phase = _BODY
        self._relay.stage = RAISE  # (the two writes of _enter_phase, inlined: see above)
        if self._relay.signal is not None:
            self._interrupted_while_entering()
        return self

    def _interrupted_while_entering(self) -> NoReturn:
        # A signal arrived while the handlers went in: it was recorded, not raised.
        # Act as if it had interrupted the first line of the block.
        signum = self._relay.signal
        assert signum is not None
        interrupt = interrupt_for(signum)
        try:
            raise interrupt
        except BaseException as exc:
            self.__exit__(type(exc), exc, exc.__traceback__)
            raise

    def _enter_phase(self, phase: str) -> None:
        """Move to ``phase``; the relay learns what a signal does from now on."""
        self._phase = phase
        self._relay.stage = _STAGES[phase]

    def _on_first_signal(self, signum: int) -> None:
        # In the relay's watcher thread: stop what can be stopped without the main thread.
        self._stop_intake(self._registered_pools())
        self._token.cancel(_signal_reason(signum))

    # -- leaving -------------------------------------------------------------------

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        # First: from here on a first signal starts the graceful sequence (see _leave).
        # While the block's scope is forgotten it is only recorded, as while entering,
        # and _leave picks it up: raised inside pop_scope's lock it would escape the
        # block as a bare KeyboardInterrupt before the leaving has begun. (The writes of
        # _enter_phase, inlined: a call would be a frame where a signal is raised.)
        self._phase = _LEAVING
        self._relay.stage = RECORD
        pop_scope(self._adopt_pool)
        self._relay.stage = _STAGES[_LEAVING]
        started = time.monotonic()
        try:
            summary, outcome = self._leave(exc, started)
        finally:
            self._relay.uninstall()
            self._enter_phase(_DONE)
        self._summary = summary
        if summary.exit_code is not None:
            self._exit = SystemExit(summary.exit_code)
            raise self._exit from None
        if outcome is not exc:
            assert outcome is not None
            raise outcome

    def _leave(
        self, exc: BaseException | None, started: float
    ) -> tuple[ShutdownSummary, BaseException | None]:
        """Run the drain or the graceful sequence; return the summary and what to raise."""
        if exc is None and self._relay.signal is None and not self.requested:
            errors = 0
            try:
                # Checked again inside the try: a signal that landed in this frame
                # since the test above was recorded, not raised.
                if self._relay.signal is None:
                    errors = self._drain()
            except BaseException as err:  # a signal during the drain, or a real error
                exc = err
            self._enter_phase(_STOPPING)
            if exc is None and self._relay.signal is None:
                run, failed = self._run_cleanups()
                summary = ShutdownSummary(
                    trigger=None,
                    cancelled=self._cancelled_count(),
                    stragglers=(),
                    cleanups=run,
                    errors=errors + failed,
                    elapsed=time.monotonic() - started,
                    exit_code=None,
                )
                logger.debug("GracefulShutdown block ended normally: %s", summary)
                return summary, None
        return self._graceful(exc, started)

    def _registered_pools(self) -> list[WorkerPool[Any, Any]]:
        """The live registered pools, last registered first."""
        with self._lock:
            return list(reversed(list(self._pools.values())))

    def _registered_threads(self) -> list[threading.Thread]:
        with self._lock:
            return list(reversed(list(self._threads.values())))

    @staticmethod
    def _stop_intake(pools: list[WorkerPool[Any, Any]]) -> int:
        """Stop the pools' intake and cancel their queued tasks; return the errors."""
        errors = 0
        for pool in pools:
            try:
                pool.shutdown(wait=False, cancel_futures=True)
            except Exception:
                errors += 1
                logger.exception("shutting down %r failed", pool)
        return errors

    def _drain(self) -> int:
        """Wait for the registered pools and threads as a normal end of the block does."""
        errors = 0
        for pool in self._registered_pools():
            try:
                pool.shutdown(wait=True)
            except Exception:
                errors += 1
                logger.exception("shutting down %r failed", pool)
        me = threading.current_thread()
        for thread in self._registered_threads():
            if thread is not me and thread.ident is not None:
                join_interruptibly(thread, None)
        return errors

    def _graceful(
        self, exc: BaseException | None, started: float
    ) -> tuple[ShutdownSummary, BaseException | None]:
        self._enter_phase(_STOPPING)
        signum = self._relay.signal
        reason: object
        if signum is not None:
            trigger = signal_name(signum)
            reason = _signal_reason(signum)
        elif self._requested:
            trigger = "request"
            reason = self._reason
        elif self._token.cancelled:
            trigger = "token"
            reason = self._token.reason
        else:
            trigger = "error"
            reason = f"{type(exc).__name__} left the GracefulShutdown block"
        grace = self._grace
        deadline = None if grace is None else started + grace
        pools = self._registered_pools()
        threads = self._registered_threads()
        logger.info(
            "graceful shutdown (%s): stopping %d pool(s) and %d thread(s), grace %s",
            trigger,
            len(pools),
            len(threads),
            format_seconds(grace),
        )
        # Intake first, then the token: a worker whose task stops on the token must
        # find the queue already emptied, not start the next task.
        errors = self._stop_intake(pools)
        try:
            self._token.cancel(reason)
        except KeyboardInterrupt:
            errors += 1
            logger.exception("a cancel callback of the shutdown token raised")
        with self._lock:
            stoppers = list(reversed(self._stoppers))
        for stop in stoppers:
            errors += _call_logged(stop, "stop callable")
        stragglers: list[WorkerSnapshot] = []
        for pool in pools:
            try:
                report = pool.shutdown(wait=True, timeout=_remaining(deadline))
            except Exception:
                errors += 1
                logger.exception("shutting down %r failed", pool)
            else:
                stragglers.extend(report.stragglers)
        late = _join_threads(threads, deadline)
        stragglers.extend(_thread_stragglers(late))
        if stragglers:
            logger.warning(
                "graceful shutdown (%s): the grace period of %s ran out; %d thread(s) "
                "still running:\n%s",
                trigger,
                format_seconds(grace),
                len(stragglers),
                _format_stragglers(stragglers),
            )
        run, failed = self._run_cleanups()
        ours = exc is None or _is_our_exit(exc, signum, self._token)
        exit_code = signal_exit_code(signum) if signum is not None and ours else None
        summary = ShutdownSummary(
            trigger=trigger,
            cancelled=self._cancelled_count(),
            stragglers=tuple(stragglers),
            cleanups=run,
            errors=errors + failed,
            elapsed=time.monotonic() - started,
            exit_code=exit_code,
        )
        logger.info(
            "graceful shutdown (%s) finished in %s: %d task(s) cancelled, "
            "%d straggler(s), %d cleanup(s), %d error(s)%s",
            trigger,
            format_seconds(summary.elapsed),
            summary.cancelled,
            len(summary.stragglers),
            summary.cleanups,
            summary.errors,
            "" if exit_code is None else f"; exiting with status {exit_code}",
        )
        if exit_code is not None and any(not thread.daemon for thread in late):
            # Interpreter exit would wait for these threads forever.
            logger.warning(
                "graceful shutdown: non-daemon threads are still running; exiting with "
                "status %d without running atexit handlers",
                exit_code,
            )
            hard_exit(exit_code)
        return summary, None if ours else exc

    def _run_cleanups(self) -> tuple[int, int]:
        with self._lock:
            cleanups = list(reversed(self._cleanups))
        failed = sum(_call_logged(fn, "cleanup") for fn in cleanups)
        return len(cleanups), failed

    def _cancelled_count(self) -> int:
        total = 0
        for pool in self._registered_pools():
            with contextlib.suppress(Exception):
                total += pool.statistics().cancelled
        return total

    # -- other ways in -------------------------------------------------------------

    def __call__(self, fn: Callable[P, R]) -> Callable[P, R]:
        """Use the shutdown as a decorator: ``fn`` runs inside the block.

        Args:
            fn: The main function.

        Returns:
            A function that runs ``fn`` inside ``with self:``; it can run once.

        Raises:
            TypeError: ``fn`` is not callable.
        """
        if not callable(fn):
            raise TypeError(f"GracefulShutdown decorates a callable, got {fn!r}")

        @functools.wraps(fn)
        def run_inside(*args: P.args, **kwargs: P.kwargs) -> R:
            with self:
                return fn(*args, **kwargs)

        return run_inside

    def run(self, main: Callable[P, int | None], /, *args: P.args, **kwargs: P.kwargs) -> int:
        """Run ``main(*args, **kwargs)`` inside the block and return an exit status.

        Made for ``sys.exit(GracefulShutdown().run(main))``.

        Args:
            main: The main function; it may return an exit status.
            *args: Its positional arguments.
            **kwargs: Its keyword arguments.

        Returns:
            128 plus the signal number after a signal (130 for SIGINT, 143 for
            SIGTERM), else what ``main`` returned, ``None`` counting as 0.

        Raises:
            BaseException: Whatever ``main`` raised, other than the signal's interrupt.
        """
        try:
            with self:
                result = main(*args, **kwargs)
        except SystemExit as exc:
            if exc is self._exit and isinstance(exc.code, int):
                return exc.code
            raise
        return 0 if result is None else result

    def __repr__(self) -> str:
        names = ",".join(s.name for s in self._signals) or "none"
        state = self._phase
        if self._relay.signal is not None:
            state += f" signal={signal_name(self._relay.signal)}"
        elif self._requested:
            state += " requested"
        return (
            f"<threadkit.GracefulShutdown {state} signals={names} grace={self._grace}"
            f" pools={len(self._pools)} threads={len(self._threads)}"
            f" cleanups={len(self._cleanups)}>"
        )


# The frames in which the handler records a first signal instead of raising it.
_LEAVING_CODES: Final = frozenset(
    {GracefulShutdown.__exit__.__code__, GracefulShutdown._leave.__code__}
)


# -- helpers ------------------------------------------------------------------------------


def _signal_reason(signum: int | None) -> str:
    return f"{signal_name(signum)} received"


def _is_our_exit(exc: BaseException, signum: int | None, token: CancelToken) -> bool:
    """Whether ``exc`` is the unwinding a handled signal caused (not a user error)."""
    if signum is None:
        return False
    # The interrupt itself, or what follows from stopping the pools when the block
    # went on after it (it caught the interrupt, or it was raised in a finalizer).
    if isinstance(exc, (KeyboardInterrupt, ShutdownRequested, PoolShutDown, CancelledError)):
        return True
    if isinstance(exc, SystemExit):  # an inner GracefulShutdown's exit
        return exc.code == signal_exit_code(signum)
    return isinstance(exc, Cancelled) and token.cancelled and exc.reason == token.reason


def _remaining(deadline: float | None) -> float | None:
    return None if deadline is None else max(0.0, deadline - time.monotonic())


def _join_threads(
    threads: list[threading.Thread], deadline: float | None
) -> list[threading.Thread]:
    """Join ``threads`` until ``deadline``; return those still running."""
    me = threading.current_thread()
    late: list[threading.Thread] = []
    for thread in threads:
        if thread is me or thread.ident is None:  # never started
            continue
        join_interruptibly(thread, _remaining(deadline))
        if thread.is_alive():
            late.append(thread)
    return late


def _thread_stragglers(late: list[threading.Thread]) -> list[WorkerSnapshot]:
    if not late:
        return []
    stacks = {snap.ident: snap.stack for snap in thread_snapshots()}
    return [WorkerSnapshot(t.name, None, None, stacks.get(t.ident, ())) for t in late]


def _format_stragglers(stragglers: list[WorkerSnapshot]) -> str:
    lines: list[str] = []
    for straggler in stragglers:
        doing = "" if straggler.task is None else f" running {straggler.task}"
        if straggler.running_for is not None:
            doing += f" for {format_seconds(straggler.running_for)}"
        lines.append(f"Thread {straggler.thread_name!r}{doing}:")
        lines.extend(entry.rstrip("\n") for entry in straggler.stack)
    return "\n".join(lines)


def _call_logged(fn: Callable[[], object], what: str) -> int:
    """Call ``fn``; log what it raises. Return 1 if it raised, else 0."""
    try:
        fn()
    except BaseException:
        logger.exception("%s %s raised", what, describe_callable(fn))
        return 1
    return 0
