"""Named threads: unique names, OS-level names, and dumps of every thread's stack.

A thread's ``threading`` name is only visible inside Python. Tools that look at the
process from outside (``top -H``, ``ps -T``, ``py-spy``, ``gdb``, ``/proc``) see the
operating system's name for the thread, which CPython before 3.14 never sets. The
helpers here set both, so the pool's workers show up as ``download_3`` everywhere.
"""

from __future__ import annotations

import functools
import gc
import sys
import threading
import traceback
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from types import FrameType
from typing import Any

import attrs

from ._process import next_name_number

__all__ = [
    "ThreadSnapshot",
    "current_frames",
    "dump_threads",
    "set_os_thread_name",
    "start_thread",
    "started_anyway",
    "thread_name",
    "thread_snapshots",
    "unique_name",
]

# Linux keeps 16 bytes per thread name, the last one being the terminating NUL.
_OS_NAME_MAX_BYTES = 15


def _check_name(value: object, param: str) -> str:
    if not isinstance(value, str):
        raise TypeError(f"{param} must be a non-empty str, got {value!r}")
    if not value:
        raise ValueError(f"{param} must be a non-empty str, got {value!r}")
    return value


def unique_name(prefix: str) -> str:
    """Return ``"<prefix>_<n>"`` with the next number for ``prefix``.

    Each prefix has its own counter starting at 0, shared by the whole process, so
    two pools using the same prefix never hand out the same name.

    Args:
        prefix: The start of the name, for example ``"download"``.

    Returns:
        ``"download_0"``, then ``"download_1"``, and so on.

    Raises:
        TypeError: ``prefix`` is not a ``str``.
        ValueError: ``prefix`` is empty.
    """
    _check_name(prefix, "prefix")
    return f"{prefix}_{next_name_number(prefix)}"


def start_thread(
    target: Callable[..., object],
    args: Iterable[object] = (),
    kwargs: Mapping[str, object] | None = None,
    *,
    prefix: str | None = None,
    name: str | None = None,
    daemon: bool = False,
) -> threading.Thread:
    """Start a thread running ``target(*args, **kwargs)`` under a readable name.

    The new thread sets its OS-level name (see ``set_os_thread_name``) before it calls
    ``target``. An exception from ``target`` goes to ``threading.excepthook`` as in any
    thread.

    Args:
        target: The function the thread runs.
        args: Positional arguments for ``target``.
        kwargs: Keyword arguments for ``target``.
        prefix: Name the thread ``unique_name(prefix)``; defaults to the name of
            ``target``.
        name: Use this exact name instead; give ``prefix`` or ``name``, not both.
        daemon: Whether the thread is a daemon. Non-daemon by default, so the
            interpreter waits for it at exit instead of killing it mid-work.

    Returns:
        The started thread.

    Raises:
        TypeError: ``target`` is not callable, ``prefix`` or ``name`` is not a
            ``str``, ``daemon`` is not a ``bool``, or both ``prefix`` and ``name``
            were given.
        ValueError: ``prefix`` or ``name`` is empty.
        RuntimeError: The thread could not be started.
    """
    if not callable(target):
        raise TypeError(f"target must be callable, got {target!r}")
    if name is not None and prefix is not None:
        raise TypeError("give prefix or name, not both")
    if not isinstance(daemon, bool):
        raise TypeError(f"daemon must be a bool, got {daemon!r}")
    if name is not None:
        chosen = _check_name(name, "name")
    else:
        base = _default_prefix(target) if prefix is None else _check_name(prefix, "prefix")
        chosen = unique_name(base)
    call_args = tuple(args)
    call_kwargs = {} if kwargs is None else dict(kwargs)
    thread = threading.Thread(
        target=_run_named,
        args=(target, call_args, call_kwargs),
        name=chosen,
        daemon=daemon,
    )
    thread.start()
    return thread


def _default_prefix(target: Callable[..., object]) -> str:
    while isinstance(target, functools.partial):
        target = target.func
    name = getattr(target, "__name__", None)
    if not isinstance(name, str):
        name = type(target).__name__
    # "<lambda>" makes a poor thread name; "lambda" reads fine.
    return name.strip("<>") or "thread"


def _run_named(
    target: Callable[..., object], args: tuple[object, ...], kwargs: dict[str, Any]
) -> None:
    set_os_thread_name(threading.current_thread().name)
    target(*args, **kwargs)


# -- OS-level names -------------------------------------------------------------------


def _truncate(name: str) -> bytes:
    raw = name.encode("utf-8", "replace")
    if len(raw) <= _OS_NAME_MAX_BYTES:
        return raw
    # Dropping the incomplete tail keeps the cut on a character boundary.
    return raw[:_OS_NAME_MAX_BYTES].decode("utf-8", "ignore").encode("utf-8")


@functools.cache
def _pthread() -> tuple[Callable[..., int], Callable[..., int], Callable[[], int]] | None:
    """Return libc's (pthread_setname_np, pthread_getname_np, pthread_self), if usable."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        import ctypes

        libc = ctypes.CDLL(None)
        setname = libc.pthread_setname_np
        getname = libc.pthread_getname_np
        self_ = libc.pthread_self
    except (OSError, AttributeError, ImportError):
        return None
    self_.argtypes = []
    self_.restype = ctypes.c_ulong
    setname.argtypes = [ctypes.c_ulong, ctypes.c_char_p]
    setname.restype = ctypes.c_int
    getname.argtypes = [ctypes.c_ulong, ctypes.c_char_p, ctypes.c_size_t]
    getname.restype = ctypes.c_int
    return setname, getname, self_


def _interpreter_function(name: str) -> Callable[..., Any] | None:
    # Python 3.14 names OS threads itself (_thread.set_name, _thread._get_name) on
    # platforms this module has no ctypes code for.
    import _thread

    fn = getattr(_thread, name, None)
    return fn if callable(fn) else None


def set_os_thread_name(name: str) -> bool:
    """Set the operating system's name of the calling thread, as far as it can.

    The name is cut to 15 UTF-8 bytes, the Linux limit, never in the middle of a
    character. This is what ``top -H``, ``ps -T``, ``py-spy`` and debuggers show.
    It does not change ``threading.current_thread().name``.

    Args:
        name: The new name.

    Returns:
        ``True`` if the name was set; ``False`` where the platform does not support it
        or the call failed. It never raises for platform reasons.

    Raises:
        TypeError: ``name`` is not a ``str``.
        ValueError: ``name`` is empty.
    """
    _check_name(name, "name")
    raw = _truncate(name)
    try:
        calls = _pthread()
        if calls is not None:
            setname, _, self_ = calls
            return setname(self_(), raw) == 0
        interpreter_set_name = _interpreter_function("set_name")
        if interpreter_set_name is not None:
            interpreter_set_name(raw.decode("utf-8"))
            return True
    except Exception:
        return False
    return False


def _get_os_thread_name() -> bytes | None:
    """Return the calling thread's OS-level name, or None where it cannot be read."""
    try:
        calls = _pthread()
        if calls is not None:
            import ctypes

            _, getname, self_ = calls
            buffer = ctypes.create_string_buffer(_OS_NAME_MAX_BYTES + 1)
            if getname(self_(), buffer, len(buffer)) != 0:
                return None
            return buffer.value
        interpreter_get_name = _interpreter_function("_get_name")
        if interpreter_get_name is not None:
            name = interpreter_get_name()
            return name.encode("utf-8", "replace") if isinstance(name, str) else None
    except Exception:
        return None
    return None


def _restore_os_thread_name(raw: bytes) -> None:
    # Put back exactly what was there, even a name set_os_thread_name would refuse.
    try:
        calls = _pthread()
        if calls is not None:
            setname, _, self_ = calls
            setname(self_(), raw)
            return
        interpreter_set_name = _interpreter_function("set_name")
        if interpreter_set_name is not None:
            interpreter_set_name(raw.decode("utf-8", "replace"))
    except Exception:
        pass


@contextmanager
def thread_name(name: str) -> Iterator[None]:
    """Rename the calling thread for the duration of a ``with`` block.

    Both the ``threading`` name and the OS-level name change, and both are put back
    when the block ends, also when it raises. Blocks may nest.

    For example:

    ```python
    with thread_name("import-orders"):
        run_import()
    ```

    Args:
        name: The name while the block runs.

    Yields:
        Nothing.

    Raises:
        TypeError: ``name`` is not a ``str``.
        ValueError: ``name`` is empty.
    """
    _check_name(name, "name")
    thread = threading.current_thread()
    old_name = thread.name
    old_os_name = _get_os_thread_name()
    thread.name = name
    set_os_thread_name(name)
    try:
        yield
    finally:
        thread.name = old_name
        if old_os_name is not None:
            _restore_os_thread_name(old_os_name)
        else:
            # The old OS name could not be read; the old threading name is the best
            # guess of what it was.
            set_os_thread_name(old_name)


# -- snapshots ------------------------------------------------------------------------


@attrs.frozen
class ThreadSnapshot:
    """One thread's name, ids and Python stack at the moment it was taken.

    Attributes:
        name: The ``threading`` name, or ``"<thread IDENT>"`` for a thread started
            without the ``threading`` module.
        ident: ``threading.get_ident()`` of the thread.
        native_id: The operating system's thread id (the ``TID`` of ``top -H``), or
            ``None`` if unknown.
        daemon: Whether the thread is a daemon thread.
        stack: The formatted frames, outermost first and innermost last; empty when
            the thread was not running Python code.
    """

    name: str
    ident: int | None
    native_id: int | None
    daemon: bool
    stack: tuple[str, ...]


def current_frames() -> dict[int, FrameType]:
    """``sys._current_frames()``, made safe from the garbage collector on Python 3.11.

    On 3.11 the call can deadlock the process when a collection runs inside it (CPython
    gh-106883: it holds the runtime's head lock while the collector's callbacks wait for
    the GIL another thread holds while it waits for that lock). Collection is paused for
    the call there; later versions do not need it.
    """
    if sys.version_info >= (3, 12):
        frames = sys._current_frames()
    else:
        enabled = gc.isenabled()
        gc.disable()
        try:
            frames = sys._current_frames()
        finally:
            if enabled:
                gc.enable()
    # The calling thread's stack as its caller sees it, as if it had called the sys one.
    frames[threading.get_ident()] = sys._getframe(1)
    return frames


def thread_snapshots() -> list[ThreadSnapshot]:
    """Return a snapshot of every live thread with its current Python stack.

    Unlike ``faulthandler``, there is no limit on the number of threads. Threads
    started with ``_thread`` directly, which ``threading`` does not list, are
    included too.

    Returns:
        One ``ThreadSnapshot`` per thread, in ``threading.enumerate()`` order followed
        by the unlisted threads.
    """
    threads = threading.enumerate()
    frames = current_frames()
    try:
        snapshots: list[ThreadSnapshot] = []
        listed: set[int] = set()
        for thread in threads:
            ident = thread.ident
            if ident is not None:
                listed.add(ident)
            frame = frames.get(ident) if ident is not None else None
            snapshots.append(
                ThreadSnapshot(
                    name=thread.name,
                    ident=ident,
                    native_id=thread.native_id,
                    daemon=thread.daemon,
                    stack=_format_stack(frame),
                )
            )
        for ident, frame in frames.items():
            if ident not in listed:
                snapshots.append(
                    ThreadSnapshot(
                        name=f"<thread {ident}>",
                        ident=ident,
                        native_id=None,
                        # Threads the threading module does not know about never
                        # hold up interpreter exit, which is what daemon means.
                        daemon=True,
                        stack=_format_stack(frame),
                    )
                )
        return snapshots
    finally:
        # Frames keep their locals alive; drop them as soon as they are formatted.
        del frames


def _format_stack(frame: FrameType | None) -> tuple[str, ...]:
    if frame is None:
        return ()
    return tuple(entry.rstrip("\n") for entry in traceback.format_stack(frame))


def dump_threads(snapshots: Iterable[ThreadSnapshot] | None = None) -> str:
    """Return a readable report of threads and their stacks, for logs and bug reports.

    Args:
        snapshots: The threads to describe; by default ``thread_snapshots()`` now.

    Returns:
        A multi-line string: a header per thread with its name and ids, then its
        stack, innermost frame last.
    """
    taken = thread_snapshots() if snapshots is None else list(snapshots)
    lines = [f"{len(taken)} thread{'' if len(taken) == 1 else 's'}:"]
    for snap in taken:
        kind = "daemon" if snap.daemon else "non-daemon"
        lines.append("")
        lines.append(
            f"Thread {snap.name!r} (ident={snap.ident}, native_id={snap.native_id}, {kind})"
        )
        if snap.stack:
            lines.extend(snap.stack)
        else:
            lines.append("  (no Python frames)")
    return "\n".join(lines) + "\n"


def started_anyway(thread: threading.Thread) -> bool:
    """After ``thread.start()`` raised: is the thread running (or about to) anyway?

    ``Thread.start`` registers the thread in ``threading._limbo``, creates it, then waits
    for it to signal that it started; a failure to create it removes it from ``_limbo``.
    An interrupt during the wait leaves a thread that runs. (An interrupt before the
    creation also leaves it in ``_limbo``: the bounded wait on its start tells them apart.)
    """
    if thread.ident is not None:
        return True
    if thread not in getattr(threading, "_limbo", {}):
        return False
    started = getattr(thread, "_started", None)
    return started is None or bool(started.wait(1.0))
