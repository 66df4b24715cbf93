"""Progress displays for map runs: the ``Progress`` protocol, its renderers, ``make_progress``.

A pool reports to a ``Progress`` from its worker threads: ``set_total`` when it
learns how many items there are, ``advance`` as each item completes (in completion
order, from any thread), and ``close`` once at the end. ``make_progress()`` turns the
``progress=`` argument a user gave into one, or into ``None`` so that a run without a
display pays nothing.

The implementations here:

* ``PlainProgress`` needs nothing. On a terminal it redraws one line with ``\\r``,
  at most every ``min_interval`` seconds; elsewhere (log files, CI) it writes whole
  lines, one per 10 % step and at most one per ``log_interval`` seconds otherwise, so
  logs stay readable. It never starts a thread.
* ``TqdmProgress`` and ``RichProgress`` are thin adapters over those optional
  packages.
* ``CallbackProgress`` calls a user's ``fn(done, total)``.

They share one engine, ``_Reporter``: counts live under a small lock, and the
display is drawn by whichever calling thread finds no drawing in progress, so a worker
thread never waits for a terminal, a file or a slow callback.
"""

from __future__ import annotations

import functools
import logging
import shutil
import sys
import time
from collections.abc import Callable
from typing import Any, Final, Literal, Protocol, TextIO, TypeAlias, final, runtime_checkable

import attrs

from ._locks import new_lock
from ._validate import check_int, check_timeout

__all__ = [
    "check_progress",
    "CallbackProgress",
    "PlainProgress",
    "Progress",
    "ProgressArg",
    "ProgressStatistics",
    "RichProgress",
    "TqdmProgress",
    "make_progress",
]

logger = logging.getLogger("threadkit")

# Characters between the brackets of a plain bar.
_BAR_WIDTH: Final = 20
# Redraws of a terminal line and of a rich display: at most ten a second.
_MIN_INTERVAL: Final = 0.1
# A plain display that is not a terminal writes a line at least this far apart, unless
# a 10 % step was crossed; 30 s keeps a CI log short and still shows that work moves.
_LOG_INTERVAL: Final = 30.0
# What the ImportErrors say, so a user can fix the environment from the message alone.
_NEEDS_TQDM: Final = "progress='tqdm' needs tqdm: pip install 'threadkit[progress]'"
_NEEDS_RICH: Final = "progress='rich' needs rich: pip install rich"


@runtime_checkable
class Progress(Protocol):
    """What a pool reports the progress of a run to.

    Implement it to send progress anywhere (a GUI, a metrics system, a web page) and
    pass the object as ``progress=``. A pool calls every method from its worker
    threads, so each must be thread-safe; none of them should block for long, because
    a worker waits for the call to return before it takes its next item.
    """

    def set_total(self, total: int | None) -> None:
        """Set how many items the run has.

        Args:
            total: The number of items, or ``None`` while it is unknown (the input is a
                generator). A lazy run calls this again as it learns more.
        """

    def advance(self, n: int = 1, *, failed: bool = False) -> None:
        """Count ``n`` more items as completed.

        Called as items complete, from worker threads, not in the order the items were
        submitted.

        Args:
            n: How many items completed.
            failed: True when they raised; failed items count as completed too.
        """

    def close(self) -> None:
        """Show the final state and release the display; a second call does nothing."""


class TqdmBar(Protocol):
    """The part of a ``tqdm`` bar threadkit drives, when you pass your own bar."""

    def update(self, n: float | None = ..., /) -> object: ...

    def refresh(self) -> object: ...

    def close(self) -> object: ...


class RichBar(Protocol):
    """The part of a ``rich.progress.Progress`` threadkit drives, when you pass your own."""

    def add_task(self, description: str, /, *, total: float | None = ...) -> Any: ...

    def update(self, task_id: Any, /, *, completed: float | None = ...) -> object: ...

    def refresh(self) -> object: ...

    def start(self) -> object: ...

    def stop(self) -> object: ...


#: What ``progress=`` accepts; see ``make_progress()`` for what each value means.
ProgressArg: TypeAlias = (
    bool
    | Literal["plain", "tqdm", "rich"]
    | Callable[[int, int | None], object]
    | Progress
    | TqdmBar
    | RichBar
    | None
)


@attrs.frozen
class ProgressStatistics:
    """The counts a progress display holds at one moment.

    Attributes:
        done: Items completed, failed ones included.
        failed: Items among ``done`` that raised.
        total: Items in the run, or ``None`` while that is unknown.
    """

    done: int
    failed: int
    total: int | None


def _check_total(total: object) -> int | None:
    if total is None:
        return None
    if isinstance(total, bool) or not isinstance(total, int):
        raise TypeError(f"total must be None or an int >= 0, got {total!r}")
    if total < 0:
        raise ValueError(f"total must be None or an int >= 0, got {total!r}")
    return total


def _check_seconds(value: float, name: str) -> float:
    seconds = check_timeout(value, name)
    if seconds is None:
        raise TypeError(f"{name} must be a number >= 0, got None")
    return seconds


def _isatty(stream: object) -> bool:
    isatty = getattr(stream, "isatty", None)
    if isatty is None:
        return False
    try:
        return bool(isatty())
    except (ValueError, OSError):  # a closed or detached stream
        return False


class _Reporter:
    """The engine of the built-in displays: exact counts, and one drawing at a time.

    Subclasses implement ``_render`` (draw a snapshot) and may override ``_release``
    (free the display after the final drawing).

    Guarantees:
        * Counts are exact: ``advance`` adds under ``_lock``, from any thread.
        * ``_render`` runs only under ``_render_lock``, so never in two threads at once,
          and each call gets a snapshot taken inside that lock, so the counts it sees
          never go backwards.
        * A caller never waits for another thread's drawing: if one is in progress, it
          returns at once and a later drawing shows its item. ``close`` is the one call
          that waits, so the final state is always drawn.
        * After ``close``, nothing is drawn again; ``close`` itself runs once.
        * A ``_render`` that raises is logged once, with its traceback, and drawing
          stops for good; counting goes on and no exception reaches the caller.
    """

    __slots__ = ("_broken", "_closed", "_done", "_failed", "_lock", "_render_lock", "_total")

    def __init__(self, total: int | None) -> None:
        self._total = _check_total(total)
        self._done = 0
        self._failed = 0
        self._closed = False
        self._broken = False
        self._lock = new_lock()  # guards the counts and _closed
        self._render_lock = new_lock()  # held while drawing; guards _broken

    def set_total(self, total: int | None) -> None:
        """Set how many items the run has (``None``: unknown).

        Raises:
            TypeError: ``total`` is not ``None`` or an ``int``.
            ValueError: ``total`` is negative.
        """
        checked = _check_total(total)
        with self._lock:
            self._total = checked
        self._refresh()

    def advance(self, n: int = 1, *, failed: bool = False) -> None:
        """Count ``n`` more items as completed, and as failed too when ``failed``.

        Raises:
            TypeError: ``n`` is not an ``int``.
            ValueError: ``n`` is negative.
        """
        if type(n) is not int or n < 0:
            check_int(n, "n", minimum=0)
        with self._lock:
            self._done += n
            if failed:
                self._failed += n
        self._refresh()

    def close(self) -> None:
        """Draw the final state and release the display; later calls do nothing."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
        with self._render_lock:
            self._draw(final=True)
            try:
                self._release()
            except Exception:
                logger.exception("closing %r failed", self)

    def statistics(self) -> ProgressStatistics:
        """Return the counts as they are now."""
        with self._lock:
            return ProgressStatistics(self._done, self._failed, self._total)

    def __repr__(self) -> str:
        with self._lock:
            done, failed, total, closed = self._done, self._failed, self._total, self._closed
        of = "" if total is None else f"/{total}"
        return (
            f"<{type(self).__name__} {done}{of} done, {failed} failed,"
            f" {'closed' if closed else 'open'}>"
        )

    def _refresh(self) -> None:
        if not self._render_lock.acquire(blocking=False):
            return  # someone is drawing; a later drawing (at the latest close's) shows us
        try:
            with self._lock:
                if self._closed:
                    return
            self._draw(final=False)
        finally:
            self._render_lock.release()

    def _draw(self, *, final: bool) -> None:
        # Called with _render_lock held.
        if self._broken:
            return
        try:
            self._render(self.statistics(), final=final)
        except Exception:
            self._broken = True
            logger.exception("%s", self._failure_message())

    def _render(self, stats: ProgressStatistics, *, final: bool) -> None:
        raise NotImplementedError

    def _release(self) -> None:
        """Free what the display holds; called once, after the final ``_render``."""

    def _failure_message(self) -> str:
        return f"{type(self).__name__} failed to draw; progress is no longer shown"


def _format_duration(seconds: float) -> str:
    whole = int(seconds + 0.5)
    if whole < 60:
        return f"{whole}s"
    if whole < 3600:
        return f"{whole // 60}m{whole % 60:02d}s"
    return f"{whole // 3600}h{whole % 3600 // 60:02d}m"


def _format_rate(per_second: float) -> str:
    if per_second >= 100:
        return f"{per_second:.0f}/s"
    if per_second >= 1:
        return f"{per_second:.1f}/s"
    return f"{per_second:.2f}/s"


def _format_counts(stats: ProgressStatistics, elapsed: float, *, final: bool) -> str:
    """The line of a plain display after its description, for example
    ``[###########---------]  57/100  57%  12.3/s  ETA 3s  2 failed``.
    """
    done, total = stats.done, stats.total
    parts: list[str] = []
    if total is None:
        parts.append(f"{done} done")
    else:
        # Integer arithmetic: 57 of 100 must show 57 %, never 56 from 0.57 * 100.
        shown = min(done, total)
        filled = _BAR_WIDTH if total == 0 else shown * _BAR_WIDTH // total
        percent = 100 if total == 0 else shown * 100 // total
        bar = "#" * filled + "-" * (_BAR_WIDTH - filled)
        parts += [f"[{bar}]", f"{done}/{total}", f"{percent}%"]
    if done and elapsed > 0:
        parts.append(_format_rate(done / elapsed))
    if final:
        parts.append(f"in {_format_duration(elapsed)}")
    elif total is not None and 0 < done < total and elapsed > 0:
        parts.append(f"ETA {_format_duration((total - done) * elapsed / done)}")
    if stats.failed:
        parts.append(f"{stats.failed} failed")
    return "  ".join(parts)


@final
class PlainProgress(_Reporter):
    """A progress display that writes text to a stream and needs no other package.

    On a terminal (``stream.isatty()`` is true) it keeps one line up to date, redrawn
    with ``\\r`` at most every ``min_interval`` seconds, and ends it with a newline on
    ``close``:

    ```python
    downloads  [###########---------]  57/100  57%  12.3/s  ETA 3s  2 failed
    ```

    Anywhere else (a log file, CI) it writes whole lines without ``\\r``: one each time
    the run crosses a 10 % step, one after ``log_interval`` seconds without a line if
    anything changed, and a final line on ``close``, which shows the time taken
    (``in 8s``) instead of the ETA. With an unknown total it shows the count and the
    rate, without a bar.

    It draws from the threads that call it and never starts one, and time comes from
    ``clock``, so tests can drive it exactly.

    Args:
        total: The number of items, or ``None`` while unknown.
        description: Shown at the start of the line.
        stream: Where to write; ``sys.stderr`` when ``None``. If that is ``None`` too
            (``pythonw``), nothing is written.
        clock: Returns the time in seconds; only differences are used.
        min_interval: Least time between two redraws of a terminal line.
        log_interval: Least time between two lines that no 10 % step asked for.

    Raises:
        TypeError: An argument has the wrong type.
        ValueError: ``total``, ``min_interval`` or ``log_interval`` is negative (or
            NaN or infinite).
    """

    __slots__ = (
        "_clock",
        "_columns",
        "_description",
        "_drawn_at",
        "_line_length",
        "_log_interval",
        "_min_interval",
        "_start",
        "_step",
        "_stream",
        "_tty",
        "_written",
    )

    def __init__(
        self,
        total: int | None = None,
        *,
        description: str = "",
        stream: TextIO | None = None,
        clock: Callable[[], float] = time.monotonic,
        min_interval: float = _MIN_INTERVAL,
        log_interval: float = _LOG_INTERVAL,
    ) -> None:
        super().__init__(total)
        if not isinstance(description, str):
            raise TypeError(f"description must be a str, got {description!r}")
        if not callable(clock):
            raise TypeError(f"clock must be callable, got {clock!r}")
        self._description = description
        self._stream = sys.stderr if stream is None else stream
        self._tty = _isatty(self._stream)
        self._clock = clock
        self._min_interval = _check_seconds(min_interval, "min_interval")
        self._log_interval = _check_seconds(log_interval, "log_interval")
        self._columns = shutil.get_terminal_size().columns if self._tty else 0
        self._start = clock()
        # Terminal: when the line was last drawn (never yet, so the first draw is
        # immediate). Otherwise: when the last line was written (none yet: the start).
        self._drawn_at = float("-inf") if self._tty else self._start
        self._line_length = 0  # terminal: length of the line on screen, to blank it out
        self._step = 0  # not a terminal: the last 10 % step written
        self._written: ProgressStatistics | None = None  # counts of the last line written
        self._refresh()  # a terminal shows the bar at once, before the first item is done

    def _render(self, stats: ProgressStatistics, *, final: bool) -> None:
        stream = self._stream
        if stream is None:
            return
        now = self._clock()
        if self._tty:
            if not final and now - self._drawn_at < self._min_interval:
                return
            line = self._line(stats, now, final=final)
            padding = " " * max(0, self._line_length - len(line))
            self._line_length = len(line)
            end = "\n" if final else ""
            stream.write(f"\r{line}{padding}{end}")
        else:
            step = 0
            if stats.total:
                step = min(stats.done, stats.total) * 10 // stats.total
            if not final:
                # The 100 % line is left to close, which always writes the last line.
                crossed = self._step < step < 10
                quiet_for = now - self._drawn_at
                if not crossed and (quiet_for < self._log_interval or stats == self._written):
                    return
            self._step = max(self._step, step)
            self._written = stats
            stream.write(self._line(stats, now, final=final) + "\n")
        self._drawn_at = now
        stream.flush()

    def _line(self, stats: ProgressStatistics, now: float, *, final: bool) -> str:
        counts = _format_counts(stats, max(0.0, now - self._start), final=final)
        description = self._description
        if self._tty:
            # A line wider than the terminal wraps, and \r then redraws only its last
            # row: cut the description (never the numbers) to fit.
            room = self._columns - 1 - len(counts) - 2
            if len(description) > room:
                description = description[: room - 3] + "..." if room > 3 else ""
        return f"{description}  {counts}" if description else counts


@final
class CallbackProgress(_Reporter):
    """Reports progress by calling ``fn(done, total)``.

    ``fn`` is never called from two threads at once, and the counts it gets never go
    backwards. It is called when ``done`` or ``total`` changed; when items complete
    faster than ``fn`` returns, the intermediate counts are skipped, and the last call
    (made by ``close`` at the latest) has the final counts. If ``fn`` raises, the error
    is logged once on the ``threadkit`` logger and ``fn`` is not called again; the run
    goes on.

    Args:
        fn: Called with the number of completed items (failed ones included) and the
            total (``None`` while unknown).
        total: The number of items, or ``None`` while unknown.

    Raises:
        TypeError: ``fn`` is not callable, or ``total`` is not ``None`` or an ``int``.
        ValueError: ``total`` is negative.
    """

    __slots__ = ("_called_with", "_fn")

    def __init__(self, fn: Callable[[int, int | None], object], total: int | None = None) -> None:
        super().__init__(total)
        if not callable(fn):
            raise TypeError(f"fn must be callable, got {fn!r}")
        self._fn = fn
        self._called_with: tuple[int, int | None] | None = None

    def _render(self, stats: ProgressStatistics, *, final: bool) -> None:
        args = (stats.done, stats.total)
        if args != self._called_with:
            self._called_with = args
            self._fn(*args)

    def _failure_message(self) -> str:
        return f"progress callback {self._fn!r} raised; it will not be called again"


@functools.cache
def _tqdm_class() -> Any:
    try:
        from tqdm import tqdm
    except ImportError as exc:
        raise ImportError(_NEEDS_TQDM) from exc
    # tqdm starts a monitor thread per process unless monitor_interval is 0; a library
    # must not leave a thread behind, and we never need the monitor's corrections.
    return type("_ThreadkitTqdm", (tqdm,), {"monitor_interval": 0})


@final
class TqdmProgress(_Reporter):
    """Shows progress with a ``tqdm`` bar (install the ``progress`` extra).

    tqdm limits its own redraws; failed items show as a ``2 failed`` postfix.

    Args:
        total: The number of items, or ``None`` while unknown.
        description: The bar's description.
        stream: Where to write; ``sys.stderr`` when ``None``.
        bar: A ``tqdm`` bar of your own to drive instead of a new one (its description,
            format and file are yours; its ``total`` is set when the run knows it). It
            is closed when the run ends.

    Raises:
        ImportError: tqdm is not installed.
    """

    __slots__ = ("_bar", "_shown")

    def __init__(
        self,
        total: int | None = None,
        *,
        description: str = "",
        stream: TextIO | None = None,
        bar: TqdmBar | None = None,
    ) -> None:
        super().__init__(total)
        if bar is None:
            tqdm_class = _tqdm_class()
            bar = tqdm_class(total=self._total, desc=description or None, file=stream)
            shown_total = self._total
        else:
            shown_total = getattr(bar, "total", None)
        self._bar: Any = bar
        self._shown = ProgressStatistics(0, 0, shown_total)

    def _render(self, stats: ProgressStatistics, *, final: bool) -> None:
        bar, shown = self._bar, self._shown
        if stats.total is None and shown.total is not None:
            stats = attrs.evolve(stats, total=shown.total)  # a user's bar keeps its total
        self._shown = stats
        if stats.total != shown.total:
            bar.total = stats.total
        if stats.failed != shown.failed:
            bar.set_postfix_str(f"{stats.failed} failed", refresh=False)
        if stats.done != shown.done:
            bar.update(stats.done - shown.done)  # tqdm decides whether to redraw
        elif stats != shown:
            bar.refresh()

    def _release(self) -> None:
        self._bar.close()


@final
class RichProgress(_Reporter):
    """Shows progress with a ``rich`` progress display (``pip install rich``).

    It refreshes from the calling threads, at most ten times a second, and starts no
    thread; it leaves ``sys.stdout`` and ``sys.stderr`` alone, so ``print`` calls made
    during the run are not redirected above the bar.

    Args:
        total: The number of items, or ``None`` while unknown.
        description: Shown before the bar (as text, not rich markup).
        stream: Where to write; ``sys.stderr`` when ``None``.
        bar: A ``rich.progress.Progress`` of your own: the run adds a task to it. It is
            started if it was not (and then stopped when the run ends); one you started
            yourself (``with Progress() as bar:``) is left running.

    Raises:
        ImportError: rich is not installed.
    """

    __slots__ = ("_bar", "_drawn_at", "_owned", "_task")

    def __init__(
        self,
        total: int | None = None,
        *,
        description: str = "",
        stream: TextIO | None = None,
        bar: RichBar | None = None,
    ) -> None:
        if bar is not None:
            super().__init__(total)
            user: Any = bar  # a rich Progress, whose add_task takes fields such as failed
            self._bar: Any = user
            self._task = user.add_task(description, total=self._total, failed="")
            self._drawn_at = time.monotonic()
            live = getattr(bar, "live", None)
            self._owned = not getattr(live, "is_started", False)
            if self._owned:
                bar.start()
            return
        try:
            from rich.console import Console
            from rich.progress import (
                BarColumn,
                MofNCompleteColumn,
                TaskProgressColumn,
                TextColumn,
                TimeRemainingColumn,
            )
            from rich.progress import Progress as Display
        except ImportError as exc:
            raise ImportError(_NEEDS_RICH) from exc
        super().__init__(total)
        self._bar = Display(
            TextColumn("{task.description}", markup=False),
            BarColumn(),
            MofNCompleteColumn(),
            TaskProgressColumn(),
            TimeRemainingColumn(),
            TextColumn("{task.fields[failed]}", style="red", markup=False),
            console=Console(file=stream, stderr=True),  # stderr applies when file is None
            auto_refresh=False,
            redirect_stdout=False,
            redirect_stderr=False,
        )
        self._task = self._bar.add_task(description, total=self._total, failed="")
        self._drawn_at = time.monotonic()
        self._owned = True
        self._bar.start()

    def _render(self, stats: ProgressStatistics, *, final: bool) -> None:
        # rich reads total=None as "unchanged", so a total cannot go back to unknown.
        failed = f"{stats.failed} failed" if stats.failed else ""
        self._bar.update(self._task, completed=stats.done, total=stats.total, failed=failed)
        now = time.monotonic()
        if final or now - self._drawn_at >= _MIN_INTERVAL:
            self._drawn_at = now
            self._bar.refresh()

    def _release(self) -> None:
        if self._owned:
            self._bar.stop()
        else:
            self._bar.refresh()


def _best(total: int | None, description: str, stream: TextIO | None) -> Progress:
    try:
        return RichProgress(total, description=description, stream=stream)
    except ImportError:
        pass
    try:
        return TqdmProgress(total, description=description, stream=stream)
    except ImportError:
        return PlainProgress(total, description=description, stream=stream)


def make_progress(
    arg: ProgressArg,
    *,
    total: int | None,
    description: str = "",
    stream: TextIO | None = None,
) -> Progress | None:
    """Turn a ``progress=`` argument into a ``Progress``, or ``None`` for no display.

    What ``arg`` means:

    * ``True`` (or ``None``): the best display installed (rich, else tqdm, else plain)
      when ``stream`` is a terminal, and no display otherwise, so that output piped to
      a file or run in CI costs nothing. ``progress=True`` means the same for a pool.
    * ``False``: no display.
    * ``"plain"``, ``"tqdm"`` or ``"rich"``: that display, terminal or not.
    * A ``tqdm`` bar or a ``rich.progress.Progress`` of your own (``tqdm(desc="pages")``):
      that bar, driven by the run (see ``TqdmProgress`` and ``RichProgress``).
    * A callable ``fn(done, total)``: a ``CallbackProgress`` calling it.
    * An object with ``set_total``, ``advance`` and ``close`` (a ``Progress``): that
      object, after ``arg.set_total(total)``.

    Args:
        arg: The ``progress=`` argument.
        total: The number of items, or ``None`` while unknown.
        description: Shown at the start of a display's line.
        stream: Where a display writes; ``sys.stderr`` when ``None``.

    Returns:
        The progress to report to, or ``None`` when nothing should be shown.

    Raises:
        TypeError: ``arg`` is none of the above (``progress`` is named in the message),
            or ``total`` or ``description`` has the wrong type.
        ValueError: ``arg`` is a string other than the three names, or ``total`` is
            negative.
        ImportError: ``arg`` names tqdm or rich and it is not installed.

    For example:

    ```python
    progress = make_progress(True, total=len(paths), description="resize")
    for path in paths:  # a pool does this in its worker threads
        resize(path)
        progress.advance()
    progress.close()
    ```
    """
    total = _check_total(total)
    if not isinstance(description, str):
        raise TypeError(f"description must be a str, got {description!r}")
    value: object = arg  # typed for callers, checked as anything here
    check_progress(value)
    if value is None or value is True:
        shown = _isatty(sys.stderr if stream is None else stream)
        return _best(total, description, stream) if shown else None
    if value is False:
        return None
    if isinstance(value, str):  # one of the three names (checked above)
        if value == "plain":
            return PlainProgress(total, description=description, stream=stream)
        if value == "tqdm":
            return TqdmProgress(total, description=description, stream=stream)
        return RichProgress(total, description=description, stream=stream)
    if isinstance(value, Progress):
        value.set_total(total)
        return value
    if _made_by(value, "tqdm"):
        return TqdmProgress(total, description=description, bar=value)  # type: ignore[arg-type]
    if _made_by(value, "rich"):
        return RichProgress(total, description=description, bar=value)  # type: ignore[arg-type]
    return CallbackProgress(value, total)  # type: ignore[arg-type]  # (callable: checked)


def check_progress(value: object) -> None:
    """Raise what ``make_progress`` would for a ``progress=`` value it cannot use.

    Pools call it before they read any input, so a typo fails at once, not after a
    whole iterable was consumed.

    Raises:
        ValueError: An unknown name.
        TypeError: A class instead of a bar, or an object of no supported kind.
    """
    if value is None or isinstance(value, bool):
        return
    if isinstance(value, str):
        if value in ("plain", "tqdm", "rich"):
            return
        raise ValueError(f"progress must be 'plain', 'tqdm' or 'rich' as a string, got {value!r}")
    if isinstance(value, type):
        raise TypeError(
            f"progress must be a bar object, not the class {value.__qualname__}: pass an"
            f" instance ({value.__qualname__}(...)), or a name such as 'tqdm' or 'rich'"
        )
    if (
        isinstance(value, Progress)
        or _made_by(value, "tqdm")
        or _made_by(value, "rich")
        or callable(value)
    ):
        return
    raise TypeError(
        "progress must be None, a bool, 'plain', 'tqdm', 'rich', a tqdm bar, a"
        " rich.progress.Progress, a callable fn(done, total) or an object with set_total,"
        f" advance and close, got {value!r}"
    )


def _made_by(value: object, package: str) -> bool:
    """Whether ``value`` is a bar of ``package`` (tqdm, or rich's ``Progress``)."""
    for cls in type(value).__mro__:
        module = getattr(cls, "__module__", "") or ""
        if package == "tqdm" and module.split(".")[0] == "tqdm":
            return True
        if package == "rich" and module == "rich.progress" and cls.__name__ == "Progress":
            return True
    return False
