"""Progress displays: exact counts from many threads, exact lines on fake time, make_progress."""

from __future__ import annotations

import io
import logging
import re
import sys
import threading
from collections.abc import Callable, Iterable, Iterator, Sized
from concurrent.futures import ThreadPoolExecutor, wait
from typing import Any

import pytest

from helpers import WAIT, FakeClock
from threadkit._progress import (
    CallbackProgress,
    PlainProgress,
    Progress,
    ProgressArg,
    ProgressStatistics,
    _format_duration,
    _format_rate,
    _Reporter,
    _tqdm_class,
    make_progress,
)


class TtyStream(io.StringIO):
    """A text stream that says it is a terminal."""

    def isatty(self) -> bool:
        return True


class Recorder:
    """A ``fn(done, total)`` callback that records its calls and checks they never overlap."""

    def __init__(self, fail_on_call: int | None = None) -> None:
        self.calls: list[tuple[int, int | None]] = []
        self.fail_on_call = fail_on_call
        self._inside = 0
        self._lock = threading.Lock()
        self.overlapped = False

    def __call__(self, done: int, total: int | None) -> None:
        with self._lock:
            self._inside += 1
            self.overlapped |= self._inside > 1
        try:
            self.calls.append((done, total))
            if len(self.calls) == self.fail_on_call:
                raise RuntimeError("the callback broke")
        finally:
            with self._lock:
                self._inside -= 1


def fake_map(
    fn: Callable[[int], object], items: Iterable[int], progress: Progress, workers: int = 4
) -> None:
    """Run ``fn`` over ``items`` as a pool will: advance from the worker threads as items
    complete, and ``set_total`` once a generator is used up.
    """

    def job(item: int) -> None:
        try:
            fn(item)
        except Exception:
            progress.advance(failed=True)
        else:
            progress.advance()

    with ThreadPoolExecutor(workers) as executor:
        futures = [executor.submit(job, item) for item in items]
        if not isinstance(items, Sized):
            progress.set_total(len(futures))
        done, _ = wait(futures, timeout=WAIT)
        assert len(done) == len(futures)
    progress.close()


def fail_on_multiples_of_4(item: int) -> None:
    if item % 4 == 0:
        raise ValueError(item)


@pytest.fixture
def no_extras(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Make ``import tqdm`` and ``import rich`` fail, whether or not they are installed."""
    for name in list(sys.modules):  # submodules too: another test may have imported them
        if name.split(".")[0] in ("tqdm", "rich"):
            monkeypatch.setitem(sys.modules, name, None)
    monkeypatch.setitem(sys.modules, "tqdm", None)
    monkeypatch.setitem(sys.modules, "rich", None)
    _tqdm_class.cache_clear()
    yield
    _tqdm_class.cache_clear()


# -- totals and counts ------------------------------------------------------------------


def test_known_length_counts_every_item_against_the_total() -> None:
    """A list gives its length as the total from the start, and the last call is (10, 10)."""
    recorder = Recorder()
    progress = make_progress(recorder, total=10)
    assert isinstance(progress, CallbackProgress)
    fake_map(fail_on_multiples_of_4, list(range(10)), progress)
    assert progress.statistics() == ProgressStatistics(done=10, failed=3, total=10)
    assert recorder.calls[-1] == (10, 10)
    assert all(total == 10 for _, total in recorder.calls)


def test_generator_total_is_unknown_until_the_input_is_used_up() -> None:
    """A generator reports ``total=None`` until set_total gives its length, then (n, n)."""
    recorder = Recorder()
    first_done = threading.Event()

    def items() -> Iterator[int]:
        yield 0
        assert first_done.wait(WAIT)  # so one item completes while the length is unknown
        yield from range(1, 7)

    progress = make_progress(recorder, total=None)
    assert progress is not None

    def job(item: int) -> None:
        progress.advance()
        if item == 0:
            first_done.set()

    with ThreadPoolExecutor(2) as executor:
        futures = [executor.submit(job, item) for item in items()]
        progress.set_total(len(futures))
        assert len(wait(futures, timeout=WAIT).done) == 7
    progress.close()

    assert recorder.calls[0] == (1, None)
    assert recorder.calls[-1] == (7, 7)
    totals = [total for _, total in recorder.calls]
    assert totals == sorted(totals, key=lambda total: total is not None)  # None, ..., 7, ...
    assert [done for done, _ in recorder.calls] == sorted(done for done, _ in recorder.calls)


def test_generator_through_fake_map_ends_with_the_learned_total() -> None:
    """A generator run on a pool ends with statistics that know the total it learned."""
    progress = make_progress("plain", total=None, stream=io.StringIO())
    assert isinstance(progress, PlainProgress)
    fake_map(fail_on_multiples_of_4, (i for i in range(9)), progress)
    assert progress.statistics() == ProgressStatistics(done=9, failed=3, total=9)


# -- the plain display, not on a terminal ------------------------------------------------


def test_log_lines_at_each_ten_percent_step_and_a_final_line() -> None:
    """Off a terminal, a whole line is written per 10 % step and one on close, without \\r."""
    clock = FakeClock()
    stream = io.StringIO()
    progress = PlainProgress(10, description="downloads", stream=stream, clock=clock)
    assert stream.getvalue() == ""  # nothing before the first step
    for item in range(10):
        clock.advance(0.5)
        progress.advance(failed=item in (2, 6))
    clock.advance(0.2)
    progress.close()
    assert stream.getvalue().splitlines() == [
        "downloads  [##------------------]  1/10  10%  2.0/s  ETA 5s",
        "downloads  [####----------------]  2/10  20%  2.0/s  ETA 4s",
        "downloads  [######--------------]  3/10  30%  2.0/s  ETA 4s  1 failed",
        "downloads  [########------------]  4/10  40%  2.0/s  ETA 3s  1 failed",
        "downloads  [##########----------]  5/10  50%  2.0/s  ETA 3s  1 failed",
        "downloads  [############--------]  6/10  60%  2.0/s  ETA 2s  1 failed",
        "downloads  [##############------]  7/10  70%  2.0/s  ETA 2s  2 failed",
        "downloads  [################----]  8/10  80%  2.0/s  ETA 1s  2 failed",
        "downloads  [##################--]  9/10  90%  2.0/s  ETA 1s  2 failed",
        "downloads  [####################]  10/10  100%  1.9/s  in 5s  2 failed",
    ]
    assert "\r" not in stream.getvalue()


def test_log_lines_between_steps_wait_for_log_interval() -> None:
    """Within a 10 % step, a line is written only after log_interval seconds, and only if
    something changed; a jump over several steps writes one line.
    """
    clock = FakeClock()
    stream = io.StringIO()
    progress = PlainProgress(1000, stream=stream, clock=clock, log_interval=30)
    for _ in range(7):  # 10 s apart: lines at 30 s and 60 s
        clock.advance(10)
        progress.advance()
    assert len(stream.getvalue().splitlines()) == 2
    clock.advance(100)
    assert len(stream.getvalue().splitlines()) == 2  # no thread writes on its own
    progress.set_total(1000)  # the next call writes what changed since the last line
    progress.set_total(1000)  # and not twice
    progress.advance(500)  # crosses five steps at once: one line
    progress.close()
    assert stream.getvalue().splitlines() == [
        "[--------------------]  3/1000  0%  0.10/s  ETA 2h46m",
        "[--------------------]  6/1000  0%  0.10/s  ETA 2h45m",
        "[--------------------]  7/1000  0%  0.04/s  ETA 6h41m",
        "[##########----------]  507/1000  50%  3.0/s  ETA 2m45s",
        "[##########----------]  507/1000  50%  3.0/s  in 2m50s",
    ]


def test_unknown_total_shows_count_and_rate_without_a_bar() -> None:
    """With no total, lines show how many are done and the rate, on the log interval."""
    clock = FakeClock()
    stream = io.StringIO()
    progress = PlainProgress(description="rows", stream=stream, clock=clock, log_interval=30)
    for _ in range(4):
        clock.advance(20)
        progress.advance(50)
    progress.close()
    assert stream.getvalue().splitlines() == [
        "rows  100 done  2.5/s",
        "rows  200 done  2.5/s",
        "rows  200 done  2.5/s  in 1m20s",
    ]


def test_empty_run_writes_one_full_line_on_close() -> None:
    """A run of zero items shows a full bar at 100 % when it closes."""
    stream = io.StringIO()
    PlainProgress(0, stream=stream, clock=FakeClock()).close()
    assert stream.getvalue() == "[####################]  0/0  100%  in 0s\n"


# -- the plain display, on a terminal -----------------------------------------------------


def test_terminal_line_is_redrawn_at_most_every_min_interval_and_on_close() -> None:
    """On a terminal, the bar is drawn at once, redrawn with \\r at most every 0.1 s, and
    drawn a last time, with a newline, on close.
    """
    clock = FakeClock()
    stream = TtyStream()
    progress = PlainProgress(4, description="job", stream=stream, clock=clock)
    assert stream.getvalue() == "\rjob  [--------------------]  0/4  0%"
    clock.advance(0.05)
    progress.advance()  # too soon after the first draw
    assert stream.getvalue().count("\r") == 1
    clock.advance(0.2)
    progress.advance(failed=True)
    clock.advance(0.25)
    progress.advance()
    clock.advance(0.05)
    progress.advance()  # too soon again: only close shows 4/4
    clock.advance(1.45)
    progress.close()
    frames = stream.getvalue().split("\r")[1:]
    assert frames == [
        "job  [--------------------]  0/4  0%",
        "job  [##########----------]  2/4  50%  8.0/s  ETA 0s  1 failed",
        "job  [###############-----]  3/4  75%  6.0/s  ETA 0s  1 failed",
        "job  [####################]  4/4  100%  2.0/s  in 2s  1 failed\n",
    ]


def test_terminal_line_cuts_the_description_to_the_terminal_width(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A description too long for the terminal is shortened, so the numbers stay on one row."""
    monkeypatch.setenv("COLUMNS", "50")
    stream = TtyStream()
    progress = PlainProgress(3, description="x" * 60, stream=stream, clock=FakeClock())
    progress.close()
    last = stream.getvalue().split("\r")[-1].rstrip("\n")
    assert last == "xxxxxx...  [--------------------]  0/3  0%  in 0s"
    assert len(last) == 49


# -- make_progress -----------------------------------------------------------------------


def test_automatic_mode_is_off_when_the_stream_is_not_a_terminal(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """``progress=None`` gives no display for a file or a pipe, nor for a redirected stderr."""
    assert make_progress(None, total=3, stream=io.StringIO()) is None
    monkeypatch.setattr(sys, "stderr", io.StringIO())
    assert make_progress(None, total=3) is None
    monkeypatch.setattr(sys, "stderr", None)
    assert make_progress(None, total=3) is None


@pytest.mark.usefixtures("no_extras")
def test_automatic_mode_shows_a_bar_on_a_terminal() -> None:
    """``progress=None`` on a terminal gives the best display, plain when nothing else exists."""
    stream = TtyStream()
    progress = make_progress(None, total=3, description="auto", stream=stream)
    assert isinstance(progress, PlainProgress)
    progress.advance(3)
    progress.close()
    final = stream.getvalue().split("\r")[-1]
    assert final.startswith("auto  [####################]  3/3  100%")
    assert final.endswith("\n")


@pytest.mark.usefixtures("no_extras")
def test_true_falls_back_to_plain_and_false_gives_none() -> None:
    """``True`` on a terminal shows plain without extras, none off one; ``False`` none."""
    assert make_progress(True, total=2, stream=io.StringIO()) is None
    stream = TtyStream()
    progress = make_progress(True, total=2, stream=stream)
    assert isinstance(progress, PlainProgress)
    progress.advance(2)
    progress.close()
    assert "2/2  100%" in stream.getvalue()
    assert make_progress(False, total=2, stream=TtyStream()) is None


@pytest.mark.usefixtures("no_extras")
@pytest.mark.parametrize(
    ("name", "hint"), [("tqdm", "pip install 'threadkit[progress]'"), ("rich", "pip install rich")]
)
def test_missing_renderer_raises_import_error_saying_what_to_install(name: str, hint: str) -> None:
    """Asking for tqdm or rich when it is missing raises ImportError naming the install."""
    arg: ProgressArg = "tqdm" if name == "tqdm" else "rich"
    with pytest.raises(ImportError, match=re.escape(hint)):
        make_progress(arg, total=1)


def test_progress_object_is_used_as_is_and_told_the_total() -> None:
    """An object with set_total, advance and close comes back unchanged, knowing the total."""

    class Mine:
        def __init__(self) -> None:
            self.totals: list[int | None] = []

        def set_total(self, total: int | None) -> None:
            self.totals.append(total)

        def advance(self, n: int = 1, *, failed: bool = False) -> None:
            pass

        def close(self) -> None:
            pass

    mine = Mine()
    assert make_progress(mine, total=5) is mine
    assert mine.totals == [5]


@pytest.mark.parametrize(
    ("arg", "error", "message"),
    [
        (42, TypeError, "progress must be None, a bool"),
        (object(), TypeError, "progress must be None, a bool"),
        (PlainProgress, TypeError, "not the class PlainProgress: pass an instance"),
        ("fancy", ValueError, "progress must be 'plain', 'tqdm' or 'rich'"),
    ],
)
def test_bad_progress_argument_is_refused_naming_the_parameter(
    arg: Any, error: type[Exception], message: str
) -> None:
    """Anything make_progress cannot use fails at once, with ``progress`` named."""
    with pytest.raises(error, match=re.escape(message)):
        make_progress(arg, total=1)


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"total": -1}, ValueError, "total must be None or an int >= 0, got -1"),
        ({"total": 1.5}, TypeError, "total must be None or an int >= 0, got 1.5"),
        ({"total": True}, TypeError, "total must be None or an int >= 0, got True"),
        ({"total": 1, "description": 3}, TypeError, "description must be a str, got 3"),
    ],
)
def test_bad_total_or_description_is_refused(
    kwargs: dict[str, Any], error: type[Exception], message: str
) -> None:
    """A total that is not None or an int >= 0, or a description that is not a str, fails."""
    with pytest.raises(error, match=re.escape(message)):
        make_progress("plain", stream=io.StringIO(), **kwargs)


def test_bad_advance_count_is_refused() -> None:
    """advance(n) takes an int >= 0 only, and a refused call counts nothing."""
    progress = CallbackProgress(Recorder(), total=3)
    with pytest.raises(ValueError, match=re.escape("n must be an int >= 0, got -1")):
        progress.advance(-1)
    with pytest.raises(TypeError, match=re.escape("n must be an int >= 0, got 1.0")):
        progress.advance(1.0)  # type: ignore[arg-type]
    assert progress.statistics().done == 0


# -- every implementation: exact counts from many threads --------------------------------

THREADS = 16
PER_THREAD = 300


def make_plain_log() -> _Reporter:
    return PlainProgress(THREADS * PER_THREAD, stream=io.StringIO(), clock=FakeClock())


def make_plain_terminal() -> _Reporter:
    return PlainProgress(THREADS * PER_THREAD, stream=TtyStream())


def make_callback() -> _Reporter:
    return CallbackProgress(Recorder(), THREADS * PER_THREAD)


def make_tqdm() -> _Reporter:
    pytest.importorskip("tqdm")
    progress = make_progress("tqdm", total=THREADS * PER_THREAD, stream=io.StringIO())
    assert isinstance(progress, _Reporter)
    return progress


def make_rich() -> _Reporter:
    pytest.importorskip("rich")
    progress = make_progress("rich", total=THREADS * PER_THREAD, stream=io.StringIO())
    assert isinstance(progress, _Reporter)
    return progress


@pytest.mark.usefixtures("fast_switching")
@pytest.mark.parametrize(
    "factory",
    [make_plain_log, make_plain_terminal, make_callback, make_tqdm, make_rich],
    ids=["plain-log", "plain-terminal", "callback", "tqdm", "rich"],
)
def test_concurrent_advances_sum_exactly(factory: Callable[[], _Reporter]) -> None:
    """Advances from 16 threads released together by a Barrier add up to the exact count."""
    progress = factory()
    barrier = threading.Barrier(THREADS)

    def body(index: int) -> None:
        barrier.wait(WAIT)
        for step in range(PER_THREAD):
            progress.advance(failed=(index + step) % 10 == 0)

    threads = [threading.Thread(target=body, args=(i,)) for i in range(THREADS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(WAIT)
        assert not thread.is_alive()
    progress.close()
    assert progress.statistics() == ProgressStatistics(
        done=THREADS * PER_THREAD, failed=THREADS * PER_THREAD // 10, total=THREADS * PER_THREAD
    )


@pytest.mark.usefixtures("fast_switching")
def test_callback_is_never_called_concurrently_and_never_goes_backwards() -> None:
    """From many threads, the callback's calls never overlap, counts only grow, and the
    last call has the final count.
    """
    recorder = Recorder()
    progress = CallbackProgress(recorder, total=THREADS * PER_THREAD)
    barrier = threading.Barrier(THREADS)

    def body() -> None:
        barrier.wait(WAIT)
        for _ in range(PER_THREAD):
            progress.advance()

    threads = [threading.Thread(target=body) for _ in range(THREADS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(WAIT)
        assert not thread.is_alive()
    progress.close()
    assert not recorder.overlapped
    dones = [done for done, _ in recorder.calls]
    assert dones == sorted(set(dones))
    assert recorder.calls[-1] == (THREADS * PER_THREAD, THREADS * PER_THREAD)


# -- failures of the display never reach the pool ----------------------------------------


def test_callback_error_is_logged_once_and_the_callback_disabled(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A callback that raises is logged once with its traceback and never called again,
    while counting goes on.
    """
    recorder = Recorder(fail_on_call=2)
    progress = make_progress(recorder, total=5)
    assert isinstance(progress, CallbackProgress)
    with caplog.at_level(logging.ERROR, logger="threadkit"):
        for _ in range(5):
            progress.advance()
        progress.close()
    assert recorder.calls == [(1, 5), (2, 5)]
    assert progress.statistics().done == 5
    records = [r for r in caplog.records if r.name == "threadkit"]
    assert len(records) == 1
    assert "progress callback" in records[0].getMessage()
    assert "will not be called again" in records[0].getMessage()
    assert records[0].exc_info is not None
    assert isinstance(records[0].exc_info[1], RuntimeError)


def test_stream_error_is_logged_once_and_drawing_stops(caplog: pytest.LogCaptureFixture) -> None:
    """A stream that cannot be written to is logged once; advance and close never raise."""
    stream = io.StringIO()
    progress = PlainProgress(2, stream=stream, clock=FakeClock())
    stream.close()
    with caplog.at_level(logging.ERROR, logger="threadkit"):
        progress.advance()
        progress.advance()
        progress.close()
    assert len([r for r in caplog.records if r.name == "threadkit"]) == 1
    assert progress.statistics().done == 2


def test_close_is_idempotent_and_nothing_is_drawn_after_it() -> None:
    """A second close does nothing, and an advance after close counts but draws nothing."""
    stream = io.StringIO()
    progress = PlainProgress(1, stream=stream, clock=FakeClock())
    progress.advance()
    progress.close()
    written = stream.getvalue()
    progress.close()
    progress.advance()
    assert stream.getvalue() == written
    assert repr(progress) == "<PlainProgress 2/1 done, 0 failed, closed>"


def test_repr_shows_live_counts() -> None:
    """The repr shows done, total (when known), failed and whether it is closed."""
    progress = CallbackProgress(Recorder())
    progress.advance(3, failed=True)
    assert repr(progress) == "<CallbackProgress 3 done, 3 failed, open>"


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(0, "0s"), (0.4, "0s"), (59.4, "59s"), (59.6, "1m00s"), (65, "1m05s"), (3725, "1h02m")],
)
def test_durations_are_short_and_rounded(seconds: float, text: str) -> None:
    """Durations read as 59s, 1m05s or 1h02m, rounded to the nearest second."""
    assert _format_duration(seconds) == text


@pytest.mark.parametrize(("rate", "text"), [(0.05, "0.05/s"), (12.34, "12.3/s"), (456.7, "457/s")])
def test_rates_keep_three_significant_figures_or_so(rate: float, text: str) -> None:
    """Rates show two decimals below 1/s, one below 100/s, none above."""
    assert _format_rate(rate) == text


# -- the optional adapters --------------------------------------------------------------


def test_tqdm_adapter_shows_the_final_count_and_failures() -> None:
    """The tqdm display ends at n/n with the failures in its postfix, and leaves no thread."""
    pytest.importorskip("tqdm")
    stream = io.StringIO()
    progress = make_progress("tqdm", total=8, description="tq", stream=stream)
    assert progress is not None
    fake_map(fail_on_multiples_of_4, list(range(8)), progress)
    final = stream.getvalue().split("\r")[-1]
    assert final.startswith("tq: 100%")
    assert "8/8" in final
    assert "2 failed" in final


def test_tqdm_adapter_learns_a_generator_total() -> None:
    """The tqdm display of a generator ends showing the total learned at its end."""
    pytest.importorskip("tqdm")
    stream = io.StringIO()
    progress = make_progress("tqdm", total=None, stream=stream)
    assert progress is not None
    fake_map(fail_on_multiples_of_4, (i for i in range(5)), progress)
    assert "5/5" in stream.getvalue().split("\r")[-1]


def test_rich_adapter_shows_the_final_count_and_failures() -> None:
    """The rich display ends at n/n with the failures, and leaves no thread."""
    pytest.importorskip("rich")
    stream = io.StringIO()
    progress = make_progress("rich", total=8, description="rc", stream=stream)
    assert progress is not None
    fake_map(fail_on_multiples_of_4, list(range(8)), progress)
    output = stream.getvalue()
    assert "rc" in output
    assert "8/8" in output
    assert "2 failed" in output


def test_true_prefers_rich_then_tqdm() -> None:
    """``True`` on a terminal picks rich when installed, else tqdm, else plain."""
    stream = TtyStream()
    progress = make_progress(True, total=1, stream=stream)
    assert progress is not None
    progress.close()
    try:
        import rich  # noqa: F401
    except ImportError:
        pass
    else:
        assert type(progress).__name__ == "RichProgress"
        return
    try:
        import tqdm  # noqa: F401
    except ImportError:
        assert type(progress).__name__ == "PlainProgress"
    else:
        assert type(progress).__name__ == "TqdmProgress"
