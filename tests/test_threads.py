"""Named threads: unique names, OS-level names, renaming, snapshots and dumps."""

from __future__ import annotations

import _thread
import functools
import sys
import threading
import uuid
from collections.abc import Callable
from pathlib import Path

import attrs
import pytest

from helpers import WAIT
from threadkit import (
    ThreadSnapshot,
    _threads,
    dump_threads,
    set_os_thread_name,
    start_thread,
    thread_name,
    thread_snapshots,
    unique_name,
)

linux_only = pytest.mark.skipif(
    not sys.platform.startswith("linux"), reason="reads /proc to see the OS thread name"
)


def os_name() -> str:
    """Return the OS-level name of the calling thread, as the kernel reports it."""
    comm = Path(f"/proc/self/task/{threading.get_native_id()}/comm")
    return comm.read_bytes().rstrip(b"\n").decode("utf-8")


def fresh_prefix() -> str:
    """Return a prefix no other test used, since the counters are process-wide."""
    return f"p{uuid.uuid4().hex[:8]}"


def join(thread: threading.Thread) -> None:
    """Join a thread with the test timeout and check it ended."""
    thread.join(WAIT)
    assert not thread.is_alive()


# -- unique_name --------------------------------------------------------------------


def test_unique_name_counts_per_prefix() -> None:
    """Each prefix numbers its names from 0, independently of other prefixes."""
    a, b = fresh_prefix(), fresh_prefix()
    assert [unique_name(a) for _ in range(3)] == [f"{a}_0", f"{a}_1", f"{a}_2"]
    assert unique_name(b) == f"{b}_0"
    assert unique_name(a) == f"{a}_3"


@pytest.mark.usefixtures("fast_switching")
def test_unique_name_is_unique_across_threads() -> None:
    """Names drawn from many threads at once are all different and leave no gap."""
    prefix = fresh_prefix()
    barrier = threading.Barrier(8)
    names: list[list[str]] = [[] for _ in range(8)]

    def draw(i: int) -> None:
        barrier.wait(WAIT)
        names[i].extend(unique_name(prefix) for _ in range(500))

    threads = [threading.Thread(target=draw, args=(i,)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        join(thread)
    drawn = [name for part in names for name in part]
    assert sorted(drawn) == sorted(f"{prefix}_{n}" for n in range(4000))


@pytest.mark.parametrize(
    ("prefix", "error", "message"),
    [
        ("", ValueError, "prefix must be a non-empty str, got ''"),
        (42, TypeError, "prefix must be a non-empty str, got 42"),
        (None, TypeError, "prefix must be a non-empty str, got None"),
    ],
)
def test_unique_name_refuses_bad_prefixes(
    prefix: object, error: type[Exception], message: str
) -> None:
    """A prefix that is not a non-empty str is refused, naming the parameter."""
    with pytest.raises(error) as info:
        unique_name(prefix)  # type: ignore[arg-type]
    assert str(info.value) == message


# -- start_thread -------------------------------------------------------------------


def test_start_thread_runs_target_with_arguments() -> None:
    """The started thread calls target(*args, **kwargs) and is non-daemon by default."""
    got: list[object] = []

    def work(a: int, b: int, *, c: int) -> None:
        got.append((a, b, c))

    thread = start_thread(work, iter([1, 2]), {"c": 3})
    join(thread)
    assert got == [(1, 2, 3)]
    assert thread.daemon is False


def test_start_thread_names_from_target_or_prefix() -> None:
    """Without name=, the thread is named unique_name(prefix or the target's name)."""

    def fetch_page() -> None:
        pass

    prefix = fresh_prefix()
    by_target = start_thread(fetch_page)
    by_prefix = start_thread(fetch_page, prefix=prefix)
    by_name = start_thread(fetch_page, name="exactly this")
    for thread in (by_target, by_prefix, by_name):
        join(thread)
    assert by_target.name.startswith("fetch_page_")
    assert by_prefix.name == f"{prefix}_0"
    assert by_name.name == "exactly this"


def test_start_thread_default_names_for_odd_callables() -> None:
    """Lambdas, partials and callable objects still give readable default names."""

    def named() -> None:
        pass

    class Job:
        def __call__(self) -> None:
            pass

    threads = [
        start_thread(lambda: None),
        start_thread(functools.partial(named)),
        start_thread(Job()),
    ]
    for thread in threads:
        join(thread)
    assert [t.name.rsplit("_", 1)[0] for t in threads] == ["lambda", "named", "Job"]


def test_start_thread_daemon_flag() -> None:
    """daemon=True starts a daemon thread."""
    thread = start_thread(lambda: None, daemon=True)
    join(thread)
    assert thread.daemon is True


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"target": 42}, TypeError, "target must be callable, got 42"),
        ({"name": ""}, ValueError, "name must be a non-empty str, got ''"),
        ({"name": b"x"}, TypeError, "name must be a non-empty str"),
        ({"prefix": ""}, ValueError, "prefix must be a non-empty str, got ''"),
        ({"prefix": 3}, TypeError, "prefix must be a non-empty str, got 3"),
        ({"prefix": "a", "name": "b"}, TypeError, "prefix or name, not both"),
        ({"daemon": "yes"}, TypeError, "daemon must be a bool"),
    ],
)
def test_start_thread_refuses_bad_arguments_without_starting(
    kwargs: dict[str, object], error: type[Exception], match: str
) -> None:
    """Bad arguments raise at the call and no thread is started."""
    before = threading.active_count()
    call: dict[str, object] = {"target": lambda: None, **kwargs}
    with pytest.raises(error, match=match):
        start_thread(**call)  # type: ignore[arg-type]
    assert threading.active_count() == before


def test_exception_in_target_goes_to_excepthook(monkeypatch: pytest.MonkeyPatch) -> None:
    """An exception from target reaches threading.excepthook like in any thread."""
    seen: list[threading.ExceptHookArgs] = []
    monkeypatch.setattr(threading, "excepthook", seen.append)

    def boom() -> None:
        raise ValueError("boom")

    join(start_thread(boom))
    assert len(seen) == 1
    assert isinstance(seen[0].exc_value, ValueError)


@linux_only
def test_os_name_is_set_before_target_runs() -> None:
    """Inside the thread, the kernel already reports the thread's name."""
    prefix = fresh_prefix()
    seen: list[str] = []
    thread = start_thread(lambda: seen.append(os_name()), prefix=prefix)
    join(thread)
    assert seen == [f"{prefix}_0"]


@linux_only
def test_long_multibyte_name_is_cut_on_a_character_boundary() -> None:
    """A name over 15 bytes is cut to at most 15 bytes without splitting a character."""
    seen: list[str] = []
    name = "\u65e5\u672c\u8a9e\u306e\u540d\u524d\u3067\u3059"  # 8 chars, 3 bytes each
    join(start_thread(lambda: seen.append(os_name()), name=name))
    assert seen == [name[:5]]  # 15 bytes
    join(start_thread(lambda: seen.append(os_name()), name="\u00e9" * 10))  # 2 bytes each
    assert seen[1] == "\u00e9" * 7  # 14 bytes: the 8th would straddle the limit


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("short", b"short"),
        ("exactly15bytes!", b"exactly15bytes!"),
        ("sixteen-bytes-ab", b"sixteen-bytes-a"),
        ("\u00e9" * 8, "\u00e9".encode() * 7),
        ("abcdefghijklmn\u20ac", b"abcdefghijklmn"),
        ("\U0001f600" * 4, "\U0001f600".encode() * 3),
    ],
)
def test_truncate_keeps_whole_characters(name: str, expected: bytes) -> None:
    """The OS name is at most 15 UTF-8 bytes, cut only between characters."""
    assert _threads._truncate(name) == expected


# -- set_os_thread_name -------------------------------------------------------------


@linux_only
def test_set_os_thread_name_renames_only_the_os_thread() -> None:
    """set_os_thread_name changes the kernel's name and leaves the threading name."""
    results: list[object] = []

    def body() -> None:
        results.append(set_os_thread_name("renamed"))
        results.append(os_name())
        results.append(threading.current_thread().name)

    join(start_thread(body, name="original"))
    assert results == [True, "renamed", "original"]


def test_set_os_thread_name_returns_false_where_unsupported(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Without any way to name OS threads it returns False instead of raising."""
    monkeypatch.setattr(_threads, "_pthread", lambda: None)
    monkeypatch.setattr(_threads, "_interpreter_function", lambda name: None)
    assert set_os_thread_name("anything") is False


def test_set_os_thread_name_returns_false_on_failure(monkeypatch: pytest.MonkeyPatch) -> None:
    """A failing platform call gives False, never an exception."""

    def broken() -> tuple[Callable[..., int], Callable[..., int], Callable[[], int]]:
        raise OSError("no libc")

    monkeypatch.setattr(_threads, "_pthread", broken)
    assert set_os_thread_name("anything") is False


def test_set_os_thread_name_reports_a_nonzero_status(monkeypatch: pytest.MonkeyPatch) -> None:
    """A non-zero status from pthread_setname_np gives False."""

    def calls() -> tuple[Callable[..., int], Callable[..., int], Callable[[], int]]:
        return (lambda ident, name: 34), (lambda ident, buf, size: 0), (lambda: 1)

    monkeypatch.setattr(_threads, "_pthread", calls)
    assert set_os_thread_name("anything") is False


@pytest.mark.parametrize(("name", "error"), [("", ValueError), (7, TypeError)])
def test_set_os_thread_name_refuses_bad_names(name: object, error: type[Exception]) -> None:
    """A name that is not a non-empty str is a caller's bug and raises."""
    with pytest.raises(error, match="name must be a non-empty str"):
        set_os_thread_name(name)  # type: ignore[arg-type]


# -- thread_name --------------------------------------------------------------------


def run_in_thread(body: Callable[[], None]) -> None:
    """Run body in a fresh named thread, so renaming never touches the test's thread."""
    errors: list[BaseException] = []

    def guarded() -> None:
        try:
            body()
        except BaseException as exc:
            errors.append(exc)

    join(start_thread(guarded, name="outer"))
    if errors:
        raise errors[0]


@linux_only
def test_thread_name_renames_and_restores_both_names() -> None:
    """Inside the block both names change; afterwards both are back."""

    def body() -> None:
        set_os_thread_name("outer-os")
        with thread_name("inner"):
            assert threading.current_thread().name == "inner"
            assert os_name() == "inner"
        assert threading.current_thread().name == "outer"
        assert os_name() == "outer-os"

    run_in_thread(body)


@linux_only
def test_thread_name_restores_on_error_and_nests() -> None:
    """An exception leaving nested blocks still restores each level's names."""

    def fail_inside() -> None:
        with thread_name("level1"), thread_name("level2"):
            assert os_name() == "level2"
            raise KeyError("x")

    def body() -> None:
        with pytest.raises(KeyError):
            fail_inside()
        assert threading.current_thread().name == "outer"
        assert os_name() == "outer"

    run_in_thread(body)


def test_thread_name_without_os_support_restores_the_threading_name(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Where OS names are unsupported the threading name is still renamed and restored."""
    monkeypatch.setattr(_threads, "_pthread", lambda: None)
    monkeypatch.setattr(_threads, "_interpreter_function", lambda name: None)

    def body() -> None:
        with thread_name("inner"):
            assert threading.current_thread().name == "inner"
        assert threading.current_thread().name == "outer"

    run_in_thread(body)


@pytest.mark.parametrize(("name", "error"), [("", ValueError), (None, TypeError)])
def test_thread_name_refuses_bad_names(name: object, error: type[Exception]) -> None:
    """thread_name raises at once for a bad name and renames nothing."""
    before = threading.current_thread().name
    with pytest.raises(error, match="name must be a non-empty str"), thread_name(name):  # type: ignore[arg-type]
        pass
    assert threading.current_thread().name == before


# -- snapshots and dumps ------------------------------------------------------------


def parked_function(started: threading.Event, release: threading.Event) -> None:
    """Signal that the thread runs, then wait to be released."""
    started.set()
    release.wait(WAIT)


def test_snapshots_cover_every_thread_beyond_a_hundred() -> None:
    """All live threads appear, even far more than faulthandler's 100, with their stacks."""
    release = threading.Event()
    prefix = fresh_prefix()
    starts = [threading.Event() for _ in range(150)]
    threads = [
        start_thread(parked_function, (started, release), prefix=prefix) for started in starts
    ]
    try:
        for started in starts:
            assert started.wait(WAIT)
        snapshots = {snap.name: snap for snap in thread_snapshots()}
    finally:
        release.set()
        for thread in threads:
            join(thread)
    for thread in threads:
        snap = snapshots[thread.name]
        assert snap.ident == thread.ident
        assert snap.native_id == thread.native_id
        assert snap.daemon is False
        assert any("in parked_function" in frame for frame in snap.stack)
        assert "in wait" in snap.stack[-1]
    main = snapshots[threading.main_thread().name]
    assert "test_snapshots_cover_every_thread_beyond_a_hundred" in "".join(main.stack)


def test_snapshot_stack_is_innermost_last() -> None:
    """The last frames of a stack are the innermost calls."""
    snap = next(s for s in thread_snapshots() if s.ident == threading.get_ident())
    assert "thread_snapshots" in snap.stack[-1]
    assert "test_snapshot_stack_is_innermost_last" in snap.stack[-2]


def test_snapshots_include_threads_unknown_to_threading() -> None:
    """A thread started with _thread directly is listed under a placeholder name."""
    started = threading.Event()
    release = threading.Event()
    finished = threading.Event()
    idents: list[int] = []

    def raw() -> None:
        idents.append(threading.get_ident())
        started.set()
        release.wait(WAIT)
        finished.set()

    _thread.start_new_thread(raw, ())
    try:
        assert started.wait(WAIT)
        snapshots = thread_snapshots()
    finally:
        release.set()
        assert finished.wait(WAIT)
    snap = next(s for s in snapshots if s.ident == idents[0])
    assert snap.name == f"<thread {idents[0]}>"
    assert snap.daemon is True
    assert any("raw" in frame for frame in snap.stack)


def test_snapshot_is_frozen() -> None:
    """A ThreadSnapshot is an immutable value."""
    snap = ThreadSnapshot(name="x", ident=1, native_id=2, daemon=False, stack=())
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        snap.name = "y"  # type: ignore[misc]
    assert snap == ThreadSnapshot(name="x", ident=1, native_id=2, daemon=False, stack=())


def test_dump_renders_given_snapshots() -> None:
    """The dump shows each thread's header and stack, or says it has no Python frames."""
    snaps = [
        ThreadSnapshot(
            name="worker_0",
            ident=11,
            native_id=22,
            daemon=True,
            stack=('  File "a.py", line 1, in main', '  File "b.py", line 2, in work'),
        ),
        ThreadSnapshot(name="idle", ident=None, native_id=None, daemon=False, stack=()),
    ]
    assert dump_threads(snaps) == (
        "2 threads:\n"
        "\n"
        "Thread 'worker_0' (ident=11, native_id=22, daemon)\n"
        '  File "a.py", line 1, in main\n'
        '  File "b.py", line 2, in work\n'
        "\n"
        "Thread 'idle' (ident=None, native_id=None, non-daemon)\n"
        "  (no Python frames)\n"
    )


def test_dump_defaults_to_live_threads() -> None:
    """Without arguments the dump describes the threads running now, this one included."""
    text = dump_threads()
    assert f"Thread {threading.current_thread().name!r}" in text
    assert "test_dump_defaults_to_live_threads" in text
