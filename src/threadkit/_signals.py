"""The signal relay under ``GracefulShutdown``: handlers, the watcher thread, re-delivery.

Python runs signal handlers in the main thread between two bytecodes, possibly while that
thread holds a lock inside threadkit, ``logging`` or the user's code. So the relay splits
the work three ways, and its owner (``GracefulShutdown``) tells it what to do through one
attribute and one callback:

* **The handler only records.** It writes plain attributes, writes one byte to a pipe
  (``os.write``, which takes no lock), calls the previous Python handler on the first
  signal, and raises the signal's interrupt (``KeyboardInterrupt`` for SIGINT,
  ``ShutdownRequested`` for others) when the owner's ``stage`` is ``RAISE``, except in
  the owner's ``quiet_codes`` frames, which pick the signal up themselves. In stage
  ``FORCE``, or on a second signal, it asks the watcher for the forced exit; on a third
  it exits itself.
* **An interrupt is never lost.** A handler can run inside a ``__del__`` method or a
  weakref callback, where Python prints "Exception ignored" and drops the exception. A
  chained ``sys.unraisablehook`` recognises the very interrupt the handler raised, prints
  nothing, and has the watcher send the signal to the main thread again
  (``signal.pthread_kill``), so it is raised again once the finalizer has returned. That
  second delivery does not count as a second signal.
* **The watcher thread does what a handler must not.** It blocks reading the pipe. On the
  first signal it calls the owner's ``on_first`` (stop the pools, cancel the token), in
  an ordinary thread, so workers waiting on the token wake even when the main thread is
  slow to unwind. On a forced exit it logs every thread's stack and calls ``hard_exit``.

A signal whose disposition is ``SIG_IGN`` when the relay is installed (``nohup``, a
background job without job control) is left ignored, as Python itself leaves SIGINT.
"""

from __future__ import annotations

import _thread
import contextlib
import logging
import os
import signal
import sys
import threading
from collections.abc import Callable, Iterable
from signal import Signals
from typing import TYPE_CHECKING, Any, Final

from ._errors import ShutdownRequested
from ._process import hard_exit
from ._text import format_seconds
from ._threads import dump_threads, start_thread, thread_snapshots

if TYPE_CHECKING:
    from types import CodeType, FrameType

__all__ = [
    "FORCE",
    "RAISE",
    "RECORD",
    "SignalRelay",
    "check_signals",
    "exit_code",
    "interrupt_for",
    "signal_name",
]

logger = logging.getLogger("threadkit")

# What the handler does with a first signal, as the owner's stage says.
RECORD: Final = "record"  # only record it (the owner is not yet, or no longer, running)
RAISE: Final = "raise"  # raise the interrupt in the main thread
FORCE: Final = "force"  # any signal forces the exit (the owner is stopping)

# Bytes the handler (and the unraisable hook) write to the watcher's pipe.
_WAKE_STOP: Final = 0
_WAKE_FIRST: Final = 1
_WAKE_FORCE: Final = 2
_WAKE_REDELIVER: Final = 3

# How long uninstalling waits for the watcher to finish the owner's callback.
_WATCHER_JOIN_TIMEOUT: Final = 5.0

_UNCATCHABLE: Final = frozenset(
    getattr(signal, name) for name in ("SIGKILL", "SIGSTOP") if hasattr(signal, name)
)


class SignalRelay:
    """Handlers for a set of signals that record them and relay them to an owner.

    Args:
        signals: The signals to handle (checked with ``check_signals``).
        on_first: Called with the signal number, in the watcher thread, on the first
            signal; what it raises is logged.
        quiet_codes: Code objects of the owner's frames in which a first signal is only
            recorded, never raised (the frames that run the owner's leaving sequence).
    """

    __slots__ = (
        "_forcing",
        "_handler",
        "_on_first",
        "_previous",
        "_previous_hook",
        "_quiet_codes",
        "_redeliver",
        "_unraisable",
        "_wake_r",
        "_wake_w",
        "_watcher",
        "count",
        "interrupt",
        "signal",
        "signals",
        "stage",
    )

    def __init__(
        self,
        signals: tuple[Signals, ...],
        *,
        on_first: Callable[[int], object],
        quiet_codes: frozenset[CodeType],
    ) -> None:
        self.signals = signals
        self._on_first = on_first
        self._quiet_codes = quiet_codes
        self.stage: str = RECORD  # set by the owner only
        # Written by the handler (main thread), read by the watcher and the owner.
        self.signal: int | None = None  # the first signal
        self.count = 0
        self.interrupt: BaseException | None = None  # the last one the handler raised
        self._forcing = False
        self._redeliver = False
        self._previous: dict[int, Any] = {}
        self._handler = self._on_signal  # one bound method, so uninstall can compare
        self._unraisable = self._on_unraisable
        self._previous_hook: Callable[[Any], object] | None = None
        self._wake_r = -1
        self._wake_w = -1
        self._watcher: threading.Thread | None = None

    # -- installing and removing ---------------------------------------------------

    def install(self) -> None:
        """Start the watcher, install the handlers and the unraisable hook (main thread).

        On failure everything installed so far is removed again before the error goes on.
        """
        if self.signals:
            self._start_watcher()
        try:
            for signum in self.signals:
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
            self.uninstall()
            raise

    def uninstall(self) -> None:
        """Stop the watcher, then put the previous handlers and hook back.

        The watcher goes first: a re-delivery it sent reaches this relay's handler (which
        only records it by then), not the previous one.
        """
        self._stop_watcher()
        if self._previous_hook is not None:
            if sys.unraisablehook == self._unraisable:
                sys.unraisablehook = self._previous_hook
            self._previous_hook = None
        for signum, previous in self._previous.items():
            try:
                if signal.getsignal(signum) != self._handler:
                    logger.debug(
                        "the %s handler was replaced inside the block; leaving it",
                        signal_name(signum),
                    )
                    continue
                # None means a handler installed from C, which Python cannot put back.
                signal.signal(signum, signal.SIG_DFL if previous is None else previous)
            except (OSError, ValueError, TypeError):
                logger.exception("restoring the %s handler failed", signal_name(signum))
        self._previous.clear()

    # -- the signal handler --------------------------------------------------------

    def _on_signal(self, signum: int, frame: FrameType | None) -> None:
        # Runs in the main thread between two bytecodes, maybe while it holds any lock.
        # Attribute writes, os.write and raise only: see the module docstring.
        if self._redeliver:
            # The interrupt raised for this signal was dropped (see _on_unraisable).
            self._redeliver = False
            self._raise(signum, frame)
            return
        self.count += 1
        if self.signal is None:
            self.signal = signum
        if self.count > 1 or self.stage == FORCE:
            if self._forcing or self._wake_w < 0:
                # The watcher had its chance (or there is none): exit from here.
                hard_exit(exit_code(self.signal), flush=False)
            self._forcing = True
            self._wake(_WAKE_FORCE)
            return
        self._wake(_WAKE_FIRST)
        previous = self._previous.get(signum)
        if callable(previous) and previous is not signal.default_int_handler:
            previous(signum, frame)
        self._raise(signum, frame)

    def _raise(self, signum: int, frame: FrameType | None) -> None:
        code = None if frame is None else frame.f_code
        if code in _HOOK_CODES and self.stage == RAISE:
            # Raised here, it would be dropped like the one being re-delivered: ask
            # the watcher for one more delivery instead.
            self._redeliver = True
            self._wake(_WAKE_REDELIVER)
            return
        # In the owner's quiet frames the signal is picked up there instead of raised,
        # so its leaving cannot be cut short before it has begun.
        if self.stage == RAISE and code not in self._quiet_codes:
            interrupt = interrupt_for(signum)
            self.interrupt = interrupt
            raise interrupt

    def _on_unraisable(self, unraisable: Any) -> None:
        # sys.unraisablehook while installed: called (in any thread) for an exception
        # Python had to drop, such as one raised in a __del__ method.
        signum = self.signal
        if (
            unraisable.exc_value is not None
            and unraisable.exc_value is self.interrupt
            and signum is not None
            and self.stage == RAISE
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
            if _WAKE_FIRST in data and self.signal is not None:
                try:
                    self._on_first(self.signal)
                except BaseException:
                    logger.exception("stopping on %s failed", signal_name(self.signal))
            if _WAKE_REDELIVER in data:
                _redeliver(self.signal)
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
            # Still running the owner's callback; its read end stays open for it.
            logger.warning(
                "the shutdown watcher is still running token callbacks after %s",
                format_seconds(_WATCHER_JOIN_TIMEOUT),
            )
        else:
            os.close(read_fd)

    def _force_exit(self) -> None:
        code = exit_code(self.signal)
        try:
            name = signal_name(self.signal)
            why = f"second {name}" if self.count > 1 else f"{name} while stopping"
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
            hard_exit(code)


# The frames of the unraisable hook, where a raise would be dropped too.
_HOOK_CODES: Final = frozenset({SignalRelay._on_unraisable.__code__, SignalRelay._wake.__code__})


def check_signals(signals: Iterable[int]) -> list[Signals]:
    """The distinct catchable signals in ``signals``, in order.

    Raises:
        TypeError: ``signals`` is not an iterable of ints.
        ValueError: A signal is unknown here or cannot be caught.
    """
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


def interrupt_for(signum: int) -> BaseException:
    """The exception a signal raises in the main thread."""
    if signum == signal.SIGINT:
        return KeyboardInterrupt()
    return ShutdownRequested(signum)


def signal_name(signum: int | None) -> str:
    """``"SIGINT"`` and the like, for messages."""
    if signum is None:
        return "no signal"
    try:
        return Signals(signum).name
    except ValueError:
        return f"signal {signum}"


def exit_code(signum: int | None) -> int:
    """The shell's convention for "ended by signal N"; 1 if no signal is known."""
    return 1 if signum is None else 128 + signum


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
        logger.exception("re-delivering %s to the main thread failed", signal_name(signum))
