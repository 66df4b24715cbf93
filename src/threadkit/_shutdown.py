"""GracefulShutdown: stop a threaded program well on Ctrl-C, SIGTERM or request.

Threads cannot be killed, so stopping is cooperative. A ``GracefulShutdown`` around the
main program turns the first SIGINT or SIGTERM (or a ``request()``) into one orderly
sequence, and a second signal into a prompt, explained exit.

How a signal is handled, and why:

* **The handler only records.** Python runs signal handlers in the main thread between
  two bytecodes, possibly while that thread holds a lock inside threadkit, ``logging``
  or the user's code. A handler that takes a lock or shuts a pool down can deadlock the
  very thread it interrupted. So the handler writes plain attributes, writes one byte to
  a pipe (``os.write``, which takes no lock), calls the previous Python handler on the
  first signal, and raises ``KeyboardInterrupt`` (SIGINT) or ``ShutdownRequested``
  (other signals), exactly as the default SIGINT handler does. A main thread blocked in
  ``time.sleep``, ``Future.result()`` or a loop over results unwinds at once, running
  its ``finally`` blocks, into ``__exit__``.
* **An interrupt is never lost.** A handler can run inside a ``__del__`` method or a
  weakref callback (the garbage collector runs them between any two bytecodes), where
  Python prints "Exception ignored" and drops the exception. While the block runs, a
  chained ``sys.unraisablehook`` recognises the very interrupt the handler raised,
  prints nothing, and has the watcher send the signal to the main thread again
  (``signal.pthread_kill``), so it is raised again once the finalizer has returned.
  That second delivery does not count as a second signal.
* **A watcher thread does what a handler must not.** Each active ``GracefulShutdown``
  has one idle daemon thread blocked reading that pipe. On the first signal it stops
  the registered pools' intake and cancels their queued tasks, then cancels ``token``
  (in that order, so no queued task starts in between), so worker threads waiting on
  the token wake even when the main thread is slow to unwind or swallowed the
  interrupt; raising in the main thread and cancelling from ``__exit__`` alone would
  depend on the main thread getting there. On a second
  signal, or any signal once the sequence has begun, it logs every thread's stack and
  calls ``os._exit``: everything that takes locks runs in an ordinary thread, never in
  the handler. A third signal makes the handler call ``os._exit`` itself.
* **The sequence runs in ``__exit__``**, in the main thread, in normal context: stop
  intake on the registered pools and cancel their queued tasks; cancel the token; call
  the registered stop callables; give running tasks ``grace`` seconds (Worker teardowns
  run as their threads end); report the stragglers; run the cleanup callbacks, last
  registered first; restore the previous handlers; then leave with ``SystemExit(128 +
  signal number)`` (130 for SIGINT, 143 for SIGTERM), which prints nothing and lets
  ``finally`` blocks and ``atexit`` handlers run. Each step is idempotent, so it does
  not matter what the watcher did already.

The forced exit (second signal) skips ``finally`` blocks and ``atexit`` handlers: it is
the "stop now" the user asked for, and either could be what hangs. It flushes
``sys.stdout`` and ``sys.stderr`` first, and exits with the code of the first signal.

A signal whose disposition is ``SIG_IGN`` when the block is entered (``nohup``, a
background job without job control) is left ignored, as Python itself leaves SIGINT.
"""

from __future__ import annotations

import _thread
import contextlib
import functools
import itertools
import logging
import os
import signal
import sys
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
from ._reports import WorkerSnapshot
from ._threads import dump_threads, start_thread, thread_snapshots
from ._validate import check_timeout

if TYPE_CHECKING:
    from types import FrameType, TracebackType
    from typing import Self

    from ._pool import WorkerPool

__all__ = ["GracefulShutdown", "ShutdownSummary", "active_token", "adopt_pool"]

logger = logging.getLogger("threadkit")

P = ParamSpec("P")
R = TypeVar("R")
Registrable = TypeVar(
    "Registrable", bound="WorkerPool[Any, Any] | threading.Thread | Callable[[], object]"
)

# Phases. A first signal raises in _BODY and _LEAVING (except in the frames that run the
# leaving, which pick it up themselves); from _STOPPING on, any signal forces the exit.
_NEW: Final = "not entered"
_ENTERING: Final = "entering"
_BODY: Final = "active"
_LEAVING: Final = "leaving"  # the block ended; waiting for pools, or about to stop
_STOPPING: Final = "stopping"  # the graceful sequence (or the final cleanups) runs
_DONE: Final = "done"

# Bytes the handler (and the unraisable hook) write to the watcher's pipe.
_WAKE_STOP: Final = 0
_WAKE_CANCEL: Final = 1
_WAKE_FORCE: Final = 2
_WAKE_REDELIVER: Final = 3

# How long leaving the block waits for the watcher to finish running token callbacks.
_WATCHER_JOIN_TIMEOUT: Final = 5.0

_UNCATCHABLE: Final = frozenset(
    getattr(signal, name) for name in ("SIGKILL", "SIGSTOP") if hasattr(signal, name)
)

# The GracefulShutdowns whose blocks are running, innermost last; pools made meanwhile
# register with the innermost (see adopt_pool).
_active_lock = threading.Lock()
_active: list[GracefulShutdown] = []


@attrs.frozen
class ShutdownSummary:
    """What a :class:`GracefulShutdown` did when its block was left.

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
    """Stop the main program gracefully on SIGINT, SIGTERM or :meth:`request`.

    Use it around the main program, as a context manager, a decorator or with
    :meth:`run`. While the block runs, SIGINT and SIGTERM (and SIGHUP with
    ``hup=True``) raise ``KeyboardInterrupt`` or :class:`ShutdownRequested` in the main
    thread and cancel :attr:`token`. Leaving the block then runs the graceful sequence:
    stop the registered pools' intake, cancel their queued tasks, give running tasks
    ``grace`` seconds, run cleanups (last registered first), and exit with status 130
    (SIGINT) or 143 (SIGTERM). A second signal exits at once with the same status,
    after logging every thread's stack.

    Example::

        with threadkit.GracefulShutdown(grace=5) as shutdown:
            pool = shutdown.register(threadkit.WorkerPool(8, cancel_token=shutdown.token))
            for result in pool.map(fetch, urls):
                save(result)

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
        * After :meth:`request` (no signal) the block is left normally: no
          ``SystemExit``.

    A ``GracefulShutdown`` is entered once; make a new one for each run.

    Args:
        grace: Seconds the running tasks get to finish once the sequence starts;
            ``None`` waits as long as they take (a second signal still ends it).
        signals: The signals to handle; any catchable ones (``()`` for none, leaving
            only :meth:`request`).
        hup: Also handle SIGHUP (where it exists).
        token: Use this token as :attr:`token` instead of a new one.

    Raises:
        TypeError: ``grace`` is not a number, a signal is not an ``int``, ``hup`` is
            not a ``bool`` or ``token`` is not a ``CancelToken``.
        ValueError: ``grace`` is negative, NaN or infinite, a signal is unknown or
            cannot be caught, or ``hup=True`` where SIGHUP does not exist.
    """

    __slots__ = (
        "__weakref__",
        "_cleanups",
        "_count",
        "_exit",
        "_forcing",
        "_grace",
        "_handler",
        "_interrupt",
        "_keys",
        "_lock",
        "_phase",
        "_pools",
        "_previous",
        "_previous_hook",
        "_reason",
        "_redeliver",
        "_requested",
        "_signal",
        "_signals",
        "_stoppers",
        "_summary",
        "_threads",
        "_token",
        "_unraisable",
        "_wake_r",
        "_wake_w",
        "_watcher",
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
        chosen = _check_signals(signals)
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
        self._lock = threading.Lock()
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
        # Written by the signal handler (main thread) and read by the watcher.
        self._signal: int | None = None
        self._count = 0
        self._forcing = False
        self._requested = False
        self._reason: object = None
        self._previous: dict[int, Any] = {}
        self._handler = self._on_signal  # one bound method, so the restore can compare
        self._interrupt: BaseException | None = None  # the last one the handler raised
        self._redeliver = False
        self._unraisable = self._on_unraisable
        self._previous_hook: Callable[[Any], object] | None = None
        self._wake_r = -1
        self._wake_w = -1
        self._watcher: threading.Thread | None = None
        self._summary: ShutdownSummary | None = None
        self._exit: SystemExit | None = None

    # -- state ---------------------------------------------------------------------

    @property
    def token(self) -> CancelToken:
        """The token cancelled on the first signal, on :meth:`request` and when leaving.

        Give it to pools (``WorkerPool(cancel_token=shutdown.token)``) and check it in
        loops (``while not shutdown.token.sleep(5): poll()``) so work stops promptly.
        """
        return self._token

    @property
    def requested(self) -> bool:
        """Whether a signal arrived, :meth:`request` was called or the token is cancelled."""
        return self._signal is not None or self._requested or self._token.cancelled

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
        signum = self._signal
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

        * A :class:`WorkerPool` stops taking work and its queued tasks are cancelled;
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
        from ._pool import WorkerPool

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
        return target

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

    def _add_pool(self, pool: WorkerPool[Any, Any]) -> None:
        with self._lock:
            self._remember(self._pools, pool)

    def _remember(self, held: weakref.WeakValueDictionary[int, Any], target: object) -> None:
        """Hold ``target`` weakly, once: registering it again changes nothing (lock held)."""
        if not any(value is target for value in held.values()):
            held[next(self._keys)] = target

    # -- requesting ----------------------------------------------------------------

    def request(self, reason: object = None) -> bool:
        """Ask for the graceful sequence, from any thread, as a first signal would.

        Cancels :attr:`token` at once, so everything waiting on it wakes. It does not
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
        self._phase = _ENTERING
        if self._signals:
            self._start_watcher()
        try:
            for signum in self._signals:
                previous = signal.getsignal(signum)
                if previous is signal.SIG_IGN:
                    logger.debug("%s is ignored in this process; leaving it ignored", signum.name)
                    continue
                self._previous[signum] = previous
                signal.signal(signum, self._handler)
            if self._previous:
                self._previous_hook = sys.unraisablehook
                sys.unraisablehook = self._unraisable
        except BaseException:
            self._stop_watcher()
            self._restore()
            self._phase = _DONE
            raise
        with _active_lock:
            _active.append(self)
        # Nothing below checks for signals before the return (no call, no backward
        # jump), so a signal lands either before this test or in the body.
        self._phase = _BODY
        if self._signal is not None:
            self._interrupted_while_entering()
        return self

    def _interrupted_while_entering(self) -> NoReturn:
        # A signal arrived while the handlers went in: it was recorded, not raised.
        # Act as if it had interrupted the first line of the block.
        signum = self._signal
        assert signum is not None
        interrupt = _interrupt_for(signum)
        try:
            raise interrupt
        except BaseException as exc:
            self.__exit__(type(exc), exc, exc.__traceback__)
            raise

    # -- the signal handler --------------------------------------------------------

    def _on_signal(self, signum: int, frame: FrameType | None) -> None:
        # Runs in the main thread between two bytecodes, maybe while it holds any lock.
        # Attribute writes, os.write and raise only: see the module docstring.
        if self._redeliver:
            # The interrupt raised for this signal was dropped (see _on_unraisable).
            self._redeliver = False
            self._raise_in_body(signum, frame)
            return
        self._count += 1
        if self._signal is None:
            self._signal = signum
        if self._count > 1 or self._phase in (_STOPPING, _DONE):
            if self._forcing or self._wake_w < 0:
                # The watcher had its chance (or there is none): exit from here.
                os._exit(_exit_code(self._signal))
            self._forcing = True
            self._wake(_WAKE_FORCE)
            return
        self._wake(_WAKE_CANCEL)
        previous = self._previous.get(signum)
        if callable(previous) and previous is not signal.default_int_handler:
            previous(signum, frame)
        self._raise_in_body(signum, frame)

    def _raise_in_body(self, signum: int, frame: FrameType | None) -> None:
        code = None if frame is None else frame.f_code
        if code in _HOOK_CODES and self._phase in (_BODY, _LEAVING):
            # Raised here, it would be dropped like the one being re-delivered: ask
            # the watcher for one more delivery instead.
            self._redeliver = True
            self._wake(_WAKE_REDELIVER)
            return
        # In the frames of __exit__ and _leave the signal is picked up there instead of
        # raised, so leaving cannot be cut short before it has begun.
        if self._phase in (_BODY, _LEAVING) and code not in _LEAVING_CODES:
            interrupt = _interrupt_for(signum)
            self._interrupt = interrupt
            raise interrupt

    def _on_unraisable(self, unraisable: Any) -> None:
        # sys.unraisablehook while the block runs: called (in any thread) for an
        # exception Python had to drop, such as one raised in a __del__ method.
        signum = self._signal
        if (
            unraisable.exc_value is not None
            and unraisable.exc_value is self._interrupt
            and signum is not None
            and self._phase in (_BODY, _LEAVING)
        ):
            # Raising again from here would be dropped too: the watcher re-sends it.
            self._redeliver = True
            self._wake(_WAKE_REDELIVER)
            return
        hook = self._previous_hook or sys.__unraisablehook__
        hook(unraisable)

    def _wake(self, what: int) -> None:
        fd = self._wake_w
        if fd >= 0:
            with contextlib.suppress(OSError):
                os.write(fd, bytes((what,)))

    # -- the watcher thread --------------------------------------------------------

    def _start_watcher(self) -> None:
        read_fd, write_fd = os.pipe()
        with contextlib.suppress(OSError):  # pipes cannot be non-blocking on 3.11 Windows
            os.set_blocking(write_fd, False)
        try:
            self._watcher = start_thread(
                self._watch, (read_fd,), prefix="threadkit_shutdown", daemon=True
            )
        except BaseException:
            os.close(read_fd)
            os.close(write_fd)
            raise
        self._wake_r = read_fd
        self._wake_w = write_fd

    def _watch(self, read_fd: int) -> None:
        while True:
            try:
                data = os.read(read_fd, 64)
            except OSError:
                return
            if not data:
                return
            if _WAKE_FORCE in data:
                self._force_exit()
            if _WAKE_CANCEL in data:
                try:
                    self._stop_intake(self._registered_pools())
                    self._token.cancel(_signal_reason(self._signal))
                except BaseException:
                    logger.exception("stopping on %s failed", _signal_name(self._signal))
            if _WAKE_REDELIVER in data:
                _redeliver(self._signal)
            if _WAKE_STOP in data:
                return

    def _stop_watcher(self) -> None:
        thread, self._watcher = self._watcher, None
        write_fd, self._wake_w = self._wake_w, -1
        read_fd, self._wake_r = self._wake_r, -1
        if thread is None:
            return
        with contextlib.suppress(OSError):
            os.write(write_fd, bytes((_WAKE_STOP,)))
        thread.join(_WATCHER_JOIN_TIMEOUT)
        os.close(write_fd)
        if thread.is_alive():
            # Still running a token callback; its read end stays open for it.
            logger.warning(
                "the shutdown watcher is still running token callbacks after %s s",
                _WATCHER_JOIN_TIMEOUT,
            )
        else:
            os.close(read_fd)

    def _force_exit(self) -> NoReturn:
        code = _exit_code(self._signal)
        try:
            name = _signal_name(self._signal)
            why = f"second {name}" if self._count > 1 else f"{name} while stopping"
            me = threading.get_ident()
            report = dump_threads([s for s in thread_snapshots() if s.ident != me])
            logger.error(
                "graceful shutdown: %s; exiting now with status %d without waiting. %s",
                why,
                code,
                report.rstrip(),
            )
        except BaseException:  # nothing may stop the exit
            pass
        finally:
            _flush_std_streams()
            os._exit(code)

    # -- leaving -------------------------------------------------------------------

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        # First: from here on a first signal starts the graceful sequence (see _leave).
        self._phase = _LEAVING
        with _active_lock:
            if self in _active:
                _active.remove(self)
        started = time.monotonic()
        try:
            summary, outcome = self._leave(exc, started)
        finally:
            # The watcher first: a re-delivery it sent reaches our handler (which
            # ignores it now), not the previous one.
            self._stop_watcher()
            self._restore()
            self._phase = _DONE
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
        if exc is None and self._signal is None and not self.requested:
            errors = 0
            try:
                # Checked again inside the try: a signal that landed in this frame
                # since the test above was recorded, not raised.
                if self._signal is None:
                    errors = self._drain()
            except BaseException as err:  # a signal during the drain, or a real error
                exc = err
            self._phase = _STOPPING
            if exc is None and self._signal is None:
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
                thread.join()
        return errors

    def _graceful(
        self, exc: BaseException | None, started: float
    ) -> tuple[ShutdownSummary, BaseException | None]:
        self._phase = _STOPPING
        signum = self._signal
        reason: object
        if signum is not None:
            trigger = _signal_name(signum)
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
            "graceful shutdown (%s): stopping %d pool(s) and %d thread(s), grace %s s",
            trigger,
            len(pools),
            len(threads),
            grace,
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
                "graceful shutdown (%s): the grace period of %s s ran out; %d thread(s) "
                "still running:\n%s",
                trigger,
                grace,
                len(stragglers),
                _format_stragglers(stragglers),
            )
        run, failed = self._run_cleanups()
        ours = exc is None or _is_our_exit(exc, signum, self._token)
        exit_code = _exit_code(signum) if signum is not None and ours else None
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
            "graceful shutdown (%s) finished in %.3f s: %d task(s) cancelled, "
            "%d straggler(s), %d cleanup(s), %d error(s)%s",
            trigger,
            summary.elapsed,
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
            _flush_std_streams()
            os._exit(exit_code)
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

    def _restore(self) -> None:
        if self._previous_hook is not None:
            if sys.unraisablehook == self._unraisable:
                sys.unraisablehook = self._previous_hook
            self._previous_hook = None
        for signum, previous in self._previous.items():
            try:
                if signal.getsignal(signum) != self._handler:
                    logger.debug(
                        "the %s handler was replaced inside the block; leaving it",
                        _signal_name(signum),
                    )
                    continue
                # None means a handler installed from C, which Python cannot put back.
                signal.signal(signum, signal.SIG_DFL if previous is None else previous)
            except (OSError, ValueError, TypeError):
                logger.exception("restoring the %s handler failed", _signal_name(signum))
        self._previous.clear()

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
        if self._signal is not None:
            state += f" signal={_signal_name(self._signal)}"
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
# The frames of the unraisable hook, where a raise would be dropped too.
_HOOK_CODES: Final = frozenset(
    {GracefulShutdown._on_unraisable.__code__, GracefulShutdown._wake.__code__}
)


def adopt_pool(pool: WorkerPool[Any, Any]) -> CancelToken | None:
    """Register a pool being made with the innermost running GracefulShutdown.

    ``WorkerPool.__init__`` calls this, so pools made inside the block are stopped by
    its sequence without an explicit ``register``.

    Args:
        pool: The new pool.

    Returns:
        That shutdown's token, to be the parent of the pool's token, or ``None`` when
        no GracefulShutdown block is running.
    """
    with _active_lock:
        shutdown = _active[-1] if _active else None
    if shutdown is None:
        return None
    shutdown._add_pool(pool)
    return shutdown.token


def active_token() -> CancelToken | None:
    """The token of the innermost running GracefulShutdown block, or ``None``.

    For work that is not a pool made in the block (``process_on`` over other
    executors) but must stop with it all the same.
    """
    with _active_lock:
        return _active[-1].token if _active else None


# -- helpers ------------------------------------------------------------------------------


def _check_signals(signals: Iterable[int]) -> list[Signals]:
    if isinstance(signals, (str, bytes)):
        raise TypeError(f"signals must be an iterable of signal numbers, got {signals!r}")
    try:
        items = list(signals)
    except TypeError:
        raise TypeError(f"signals must be an iterable of signal numbers, got {signals!r}") from None
    chosen: list[Signals] = []
    for item in items:
        if isinstance(item, bool) or not isinstance(item, int):
            raise TypeError(f"signals must hold signal numbers (ints), got {item!r}")
        try:
            signum = Signals(item)
        except ValueError:
            raise ValueError(f"signals: {item!r} is not a signal on this platform") from None
        if signum in _UNCATCHABLE:
            raise ValueError(f"signals: {signum.name} cannot be caught")
        if signum not in chosen:
            chosen.append(signum)
    return chosen


def _interrupt_for(signum: int) -> BaseException:
    if signum == signal.SIGINT:
        return KeyboardInterrupt()
    return ShutdownRequested(signum)


def _signal_name(signum: int | None) -> str:
    if signum is None:
        return "no signal"
    try:
        return Signals(signum).name
    except ValueError:
        return f"signal {signum}"


def _signal_reason(signum: int | None) -> str:
    return f"{_signal_name(signum)} received"


def _exit_code(signum: int | None) -> int:
    # The shell's convention for "ended by signal N"; 1 if no signal is known.
    return 1 if signum is None else 128 + signum


def _is_our_exit(exc: BaseException, signum: int | None, token: CancelToken) -> bool:
    """Whether ``exc`` is the unwinding a handled signal caused (not a user error)."""
    if signum is None:
        return False
    # The interrupt itself, or what follows from stopping the pools when the block
    # went on after it (it caught the interrupt, or it was raised in a finalizer).
    if isinstance(exc, (KeyboardInterrupt, ShutdownRequested, PoolShutDown, CancelledError)):
        return True
    if isinstance(exc, SystemExit):  # an inner GracefulShutdown's exit
        return exc.code == _exit_code(signum)
    return isinstance(exc, Cancelled) and token.cancelled and exc.reason == token.reason


def _redeliver(signum: int | None) -> None:
    """Send ``signum`` to the main thread again (from the watcher)."""
    if signum is None:
        return
    main = threading.main_thread().ident
    try:
        if hasattr(signal, "pthread_kill") and main is not None:
            signal.pthread_kill(main, signum)  # also ends a blocking call there
        else:
            _thread.interrupt_main(Signals(signum))
    except (OSError, ValueError):
        logger.exception("re-delivering %s to the main thread failed", _signal_name(signum))


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
        thread.join(_remaining(deadline))
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
            doing += f" for {straggler.running_for:.1f} s"
        lines.append(f"Thread {straggler.thread_name!r}{doing}:")
        lines.extend(entry.rstrip("\n") for entry in straggler.stack)
    return "\n".join(lines)


def _call_logged(fn: Callable[[], object], what: str) -> int:
    """Call ``fn``; log what it raises. Return 1 if it raised, else 0."""
    try:
        fn()
    except BaseException:
        logger.exception("%s %s raised", what, getattr(fn, "__qualname__", repr(fn)))
        return 1
    return 0


def _flush_std_streams() -> None:
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):  # closed, None, or broken
            if stream is not None:
                stream.flush()
