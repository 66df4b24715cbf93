"""``threadkit demo``: download generated files three ways and compare the wall times.

The files come from a ``DemoServer`` started in this process on 127.0.0.1, so the demo
needs no internet. Each run downloads every file of the server's manifest, checks its
size and SHA-256 digest and writes it into its own folder of a temporary directory:

- ``serial``: one thread, one reused HTTP connection;
- ``ThreadPoolExecutor``: the standard library pool, one connection per file (the
  executor has no per-thread teardown hook to close a reused one);
- ``threadkit WorkerPool``: a ``Worker`` subclass that opens one connection per thread
  in ``setup`` and closes it in ``teardown``.

Ctrl-C stops the run in progress, cancels the downloads that have not started, skips
the runs still to come, removes the temporary files (unless ``--keep``) and exits 130.
"""

from __future__ import annotations

import argparse
import collections
import functools
import hashlib
import http.client
import json
import math
import posixpath
import re
import shutil
import sys
import tempfile
import textwrap
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor, as_completed
from pathlib import Path
from typing import Any, TextIO

import attrs

import threadkit

from ._demo_server import (
    MAX_FILE_SIZE,
    MAX_FILES,
    MAX_LATENCY,
    MAX_TOTAL_SIZE,
    DemoFile,
    DemoServer,
    block_interrupts_in_this_thread,
)

__all__ = [
    "DemoError",
    "DemoOptions",
    "RunResult",
    "add_arguments",
    "fetch",
    "format_table",
    "options_from",
    "run_demo",
    "run_serial",
    "run_thread_pool",
    "run_threadkit",
]

DEFAULT_FILES = 60
DEFAULT_SIZE = 64 * 1024
DEFAULT_LATENCY = 0.05
DEFAULT_WORKERS = 8
MAX_WORKERS = 256
# Seconds a download may stall (on top of the server's latency) before it fails; this
# bounds how long a graceful stop waits for the downloads already running.
STALL_TIMEOUT = 10.0
# The manifest of MAX_FILES entries is well under this.
MAX_MANIFEST_SIZE = 4 * 2**20
EXIT_INTERRUPTED = 130

_SIZE = re.compile(r"(\d{1,12})\s*(b|k|kb|kib|m|mb|mib)?", re.IGNORECASE)
_UNITS = {
    "": 1,
    "b": 1,
    "k": 2**10,
    "kb": 2**10,
    "kib": 2**10,
    "m": 2**20,
    "mb": 2**20,
    "mib": 2**20,
}


class DemoError(Exception):
    """Raised when a download fails: a bad status, or a size or digest that does not match."""


@attrs.frozen
class DemoOptions:
    """The demo's settings, already checked by the command line parser."""

    files: int = DEFAULT_FILES
    size: int = DEFAULT_SIZE
    latency: float = DEFAULT_LATENCY
    workers: int = DEFAULT_WORKERS
    keep: bool = False


@attrs.frozen
class RunResult:
    """What one way of downloading achieved: a row of the table."""

    mode: str
    workers: int
    files: int
    nbytes: int
    seconds: float
    connections: int


@attrs.frozen
class _Target:
    """Where to download from and how long a download may stall."""

    host: str
    port: int
    manifest: tuple[DemoFile, ...]
    timeout: float

    def connect(self) -> http.client.HTTPConnection:
        # HTTPConnection connects on its first request, and again after close().
        return http.client.HTTPConnection(self.host, self.port, timeout=self.timeout)


@attrs.define(eq=False)
class _Progress:
    """A progress line on a terminal: tqdm's when it is installed, a plain one otherwise.

    Only the main thread calls it. On a stream that is not a terminal it draws nothing.
    """

    label: str
    total: int
    stream: TextIO
    _bar: Any = attrs.field(init=False, default=None)
    _enabled: bool = attrs.field(init=False, default=False)
    _done: int = attrs.field(init=False, default=0)

    def __attrs_post_init__(self) -> None:
        try:
            self._enabled = self.stream.isatty()
        except (AttributeError, ValueError):  # a closed or minimal stream
            self._enabled = False
        if not self._enabled:
            return
        try:
            from tqdm import tqdm
        except ImportError:
            self._draw("")
        else:
            self._bar = tqdm(
                total=self.total, desc=self.label, unit="file", file=self.stream, leave=False
            )

    def advance(self, note: str) -> None:
        self._done += 1
        if self._bar is not None:
            self._bar.set_postfix_str(note, refresh=False)
            self._bar.update(1)
        elif self._enabled:
            self._draw(note)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None
        elif self._enabled:
            self.stream.write("\r\x1b[K")
            self.stream.flush()
        self._enabled = False

    def _draw(self, note: str) -> None:
        width = 30
        filled = width * self._done // max(1, self.total)
        bar = "#" * filled + "." * (width - filled)
        self.stream.write(f"\r\x1b[K{self.label} [{bar}] {self._done}/{self.total} {note}")
        self.stream.flush()


@attrs.define(eq=False)
class _RunState:
    """The run in progress: what the Ctrl-C message and the progress line report.

    ``record`` is called from the downloading threads; everything else from the main
    thread.
    """

    mode: str
    total: int
    progress: _Progress
    done: int = 0
    cancelled: int = 0
    finished_late: int = 0
    _lock: threading.Lock = attrs.field(init=False, factory=threading.Lock)
    _per_thread: collections.Counter[str] = attrs.field(init=False, factory=collections.Counter)
    _last: str = attrs.field(init=False, default="")

    def record(self, thread_name: str) -> None:
        """Note that the thread ``thread_name`` has written a file."""
        with self._lock:
            self._per_thread[thread_name] += 1
            self._last = thread_name

    def file_done(self) -> None:
        """Count a finished file and move the progress line on."""
        self.done += 1
        with self._lock:
            last = self._last
        self.progress.advance(last)

    def per_thread(self) -> dict[str, int]:
        """Return how many files each thread wrote, by thread name."""
        with self._lock:
            return dict(sorted(self._per_thread.items()))


def fetch(conn: http.client.HTTPConnection, entry: DemoFile, dest: Path) -> int:
    """Download one file on ``conn``, check it against ``entry`` and write it into ``dest``.

    The connection stays usable for the next request unless the server refused this one.

    Args:
        conn: The connection to send the request on.
        entry: The file's manifest entry: path, size and SHA-256 digest.
        dest: The folder to write the file into.

    Returns:
        The number of bytes written.

    Raises:
        DemoError: The answer was not 200 or its size or digest does not match.
        OSError: The connection or the file system failed.
    """
    conn.request("GET", entry.path)
    response = conn.getresponse()
    if response.status != 200 or response.length != entry.size:
        conn.close()  # the body is left unread, so the connection cannot be reused
        raise DemoError(
            f"{entry.path}: HTTP {response.status} with {response.length} bytes, "
            f"expected 200 with {entry.size}"
        )
    body = response.read()
    if len(body) != entry.size:
        raise DemoError(f"{entry.path}: got {len(body)} bytes, expected {entry.size}")
    if hashlib.sha256(body).hexdigest() != entry.sha256:
        raise DemoError(f"{entry.path}: SHA-256 digest does not match the manifest")
    (dest / posixpath.basename(entry.path)).write_bytes(body)
    return len(body)


def _load_manifest(host: str, port: int, timeout: float) -> tuple[DemoFile, ...]:
    conn = http.client.HTTPConnection(host, port, timeout=timeout)
    try:
        conn.request("GET", "/manifest.json")
        response = conn.getresponse()
        if response.status != 200:
            raise DemoError(f"/manifest.json: HTTP {response.status}")
        data = json.loads(response.read(MAX_MANIFEST_SIZE))
    finally:
        conn.close()
    return tuple(
        DemoFile(path=str(item["path"]), size=int(item["size"]), sha256=str(item["sha256"]))
        for item in data["files"]
    )


def run_serial(target: _Target, dest: Path, state: _RunState) -> int:
    """Download every file one after the other on one reused connection.

    Returns:
        The number of bytes written.
    """
    total = 0
    name = threading.current_thread().name
    conn = target.connect()
    try:
        for entry in target.manifest:
            total += fetch(conn, entry, dest)
            state.record(name)
            state.file_done()
    finally:
        conn.close()
    return total


def run_thread_pool(target: _Target, dest: Path, state: _RunState, workers: int) -> int:
    """Download every file with a ``concurrent.futures.ThreadPoolExecutor``.

    Each download opens and closes its own connection: the executor can set up per-thread
    state with ``initializer`` but has no hook to close it when a thread exits.

    Returns:
        The number of bytes written.
    """

    def download(entry: DemoFile) -> int:
        conn = target.connect()
        try:
            written = fetch(conn, entry, dest)
        finally:
            conn.close()
        state.record(threading.current_thread().name)
        return written

    total = 0
    executor = ThreadPoolExecutor(
        max_workers=workers,
        thread_name_prefix="executor",
        initializer=block_interrupts_in_this_thread,  # so Ctrl-C reaches the main thread
    )
    futures: list[Future[int]] = []
    try:
        futures.extend(executor.submit(download, entry) for entry in target.manifest)
        for future in as_completed(futures):
            total += future.result()
            state.file_done()
    except BaseException:
        # Ctrl-C or a failed download: drop what has not started and let the running
        # downloads finish (each is bounded by the connection timeout).
        state.cancelled = sum(1 for future in futures if future.cancel())
        executor.shutdown(wait=True)
        state.finished_late = (
            sum(1 for future in futures if not future.cancelled() and future.exception() is None)
            - state.done
        )
        raise
    executor.shutdown(wait=True)
    return total


def run_threadkit(target: _Target, dest: Path, state: _RunState, workers: int) -> int:
    """Download every file with a ``threadkit.WorkerPool`` of ``Download`` workers.

    Each worker thread opens one connection in ``setup``, reuses it for every file it
    downloads and closes it in ``teardown``.

    Returns:
        The number of bytes written.
    """

    class Download(threadkit.Worker[str, int]):
        """Downloads files on a connection of its own, opened once per thread."""

        def __init__(self, target: _Target, dest: Path, state: _RunState) -> None:
            super().__init__()
            self._target = target
            self._dest = dest
            self._state = state
            self._entries = {entry.path: entry for entry in target.manifest}
            self._conn: http.client.HTTPConnection | None = None

        def setup(self) -> None:
            self._conn = self._target.connect()

        def process(self, path: str) -> int:
            assert self._conn is not None, "setup() runs before process()"
            written = fetch(self._conn, self._entries[path], self._dest)
            self._state.record(self.name)
            return written

        def teardown(self) -> None:
            if self._conn is not None:
                self._conn.close()

    total = 0
    paths = [entry.path for entry in target.manifest]
    factory = functools.partial(Download, target, dest, state)
    pool = threadkit.WorkerPool(max_workers=workers, thread_name_prefix="download", worker=factory)
    try:
        # Leaving the with block on Ctrl-C cancels what has not started and gives the
        # running downloads a short grace period.
        with pool:
            for written in pool.process(paths, ordered=False):
                total += written
                state.file_done()
    finally:
        stats = pool.statistics()
        state.cancelled = stats.cancelled
        state.finished_late = max(0, stats.completed - state.done)
    return total


@attrs.frozen
class _Mode:
    name: str
    folder: str
    run: Callable[[_Target, Path, _RunState, int], int]
    pooled: bool = True


def _run_serial_mode(target: _Target, dest: Path, state: _RunState, workers: int) -> int:
    return run_serial(target, dest, state)


def _modes() -> list[_Mode]:
    modes = [
        _Mode("serial", "serial", _run_serial_mode, pooled=False),
        _Mode("ThreadPoolExecutor", "threadpool", run_thread_pool),
    ]
    modes.append(_Mode("threadkit WorkerPool", "threadkit", run_threadkit))
    return modes


def format_table(results: Sequence[RunResult]) -> str:
    """Return the results as a plain-text table, with the speed-up over the first row.

    Args:
        results: The rows, the baseline first.

    Returns:
        The table, one line per row after a header, without a final newline.
    """
    lines = [
        f"{'mode':<22}{'workers':>8}{'connections':>13}{'wall time':>11}"
        f"{'files/s':>10}{'MB/s':>9}{'speed-up':>10}"
    ]
    baseline = results[0].seconds if results else 0.0
    for row in results:
        seconds = max(row.seconds, 1e-9)
        lines.append(
            f"{row.mode:<22}{row.workers:>8}{row.connections:>13}{row.seconds:>9.2f} s"
            f"{row.files / seconds:>10.1f}{row.nbytes / seconds / 1e6:>9.2f}"
            f"{baseline / seconds:>9.1f}x"
        )
    return "\n".join(lines)


def _describe_interrupt(state: _RunState | None, skipped: list[str], kept: Path | None) -> str:
    parts = []
    if state is not None:
        parts.append(f"stopped the {state.mode} run after {state.done} of {state.total} files")
        if state.cancelled:
            parts.append(f"{state.cancelled} cancelled before they started")
        if state.finished_late:
            parts.append(f"{state.finished_late} already running were allowed to finish")
        left = state.total - state.done - state.cancelled - state.finished_late
        if left:
            parts.append(f"{left} not downloaded")
    if skipped:
        parts.append("not run: " + ", ".join(skipped))
    parts.append(f"files kept in {kept}" if kept else "temporary files removed")
    return "interrupted: " + "; ".join(parts)


def run_demo(options: DemoOptions, out: TextIO | None = None, err: TextIO | None = None) -> int:
    """Run the demo: start the server, download three ways, print the table.

    Args:
        options: The checked settings.
        out: Where the table goes; standard output by default.
        err: Where progress and errors go; standard error by default.

    Returns:
        The exit status: 0 on success, 1 if a download failed, 130 after Ctrl-C.
    """
    out = sys.stdout if out is None else out
    stderr: TextIO = sys.stderr  # typed TextIO | Any, which would widen err to TextIO | None
    err = stderr if err is None else err
    modes = _modes()
    results: list[RunResult] = []
    state: _RunState | None = None
    workdir = Path(tempfile.mkdtemp(prefix="threadkit-demo-"))
    try:
        with DemoServer(files=options.files, size=options.size, latency=options.latency) as srv:
            timeout = options.latency + STALL_TIMEOUT
            target = _Target(
                srv.host, srv.port, _load_manifest(srv.host, srv.port, timeout), timeout
            )
            print(
                f"threadkit demo: {options.files} files of {options.size:,} bytes, "
                f"{options.latency * 1000:g} ms latency per file, {options.workers} workers, "
                f"server on {srv.host}:{srv.port}",
                file=out,
                flush=True,
            )
            for index, mode in enumerate(modes):
                workers = options.workers if mode.pooled else 1
                dest = workdir / mode.folder
                dest.mkdir()
                total = len(target.manifest)
                state = _RunState(mode.name, total, _Progress(mode.name, total, err))
                before = srv.statistics().connections_accepted
                started = time.perf_counter()
                try:
                    nbytes = mode.run(target, dest, state, workers)
                except KeyboardInterrupt:
                    state.progress.close()
                    skipped = [later.name for later in modes[index + 1 :]]
                    kept = workdir if options.keep else None
                    print(_describe_interrupt(state, skipped, kept), file=err, flush=True)
                    return EXIT_INTERRUPTED
                finally:
                    state.progress.close()
                seconds = time.perf_counter() - started
                connections = srv.statistics().connections_accepted - before
                results.append(
                    RunResult(mode.name, workers, state.done, nbytes, seconds, connections)
                )
    except KeyboardInterrupt:
        kept = workdir if options.keep else None
        print(_describe_interrupt(None, [m.name for m in modes], kept), file=err, flush=True)
        return EXIT_INTERRUPTED
    except (DemoError, OSError, http.client.HTTPException) as exc:
        print(f"threadkit demo: error: {exc}", file=err, flush=True)
        return 1
    finally:
        if not options.keep:
            shutil.rmtree(workdir, ignore_errors=True)
    print(file=out)
    print(format_table(results), file=out)
    if state is not None and state.mode.startswith("threadkit"):
        names = ", ".join(f"{name}: {count}" for name, count in state.per_thread().items())
        print(file=out)
        print(textwrap.fill(f"Files per threadkit worker thread: {names}", width=88), file=out)
    where = f"kept in {workdir}" if options.keep else "removed (use --keep to keep them)"
    print(f"\ndownloaded files {where}", file=out, flush=True)
    return 0


# Command line: each value is checked where it is parsed, so a bad one gives argparse's
# one-line error and exit status 2.


def _int_between(low: int, high: int) -> Callable[[str], int]:
    def parse(text: str) -> int:
        try:
            value = int(text.strip())
        except ValueError:
            value = low - 1
        if not low <= value <= high:
            raise argparse.ArgumentTypeError(
                f"must be a whole number from {low} to {high}, got {text!r}"
            )
        return value

    return parse


def _size(text: str) -> int:
    match = _SIZE.fullmatch(text.strip())
    value = int(match[1]) * _UNITS[(match[2] or "").lower()] if match else 0
    if not 1 <= value <= MAX_FILE_SIZE:
        raise argparse.ArgumentTypeError(
            f"must be a size from 1 byte to {MAX_FILE_SIZE // 2**20} MiB "
            f"(e.g. 65536, 64K, 1M), got {text!r}"
        )
    return value


def _latency(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not 0 <= value <= MAX_LATENCY:  # also refuses NaN
        raise argparse.ArgumentTypeError(
            f"must be a number of seconds from 0 to {MAX_LATENCY:g}, got {text!r}"
        )
    return value


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the demo's options to ``parser``.

    Args:
        parser: The ``demo`` sub-command's parser.
    """
    parser.add_argument(
        "--files",
        type=_int_between(1, MAX_FILES),
        default=DEFAULT_FILES,
        metavar="N",
        help=f"how many files to download (default {DEFAULT_FILES})",
    )
    parser.add_argument(
        "--size",
        type=_size,
        default=DEFAULT_SIZE,
        metavar="BYTES",
        help=f"size of each file, e.g. 65536, 64K or 1M (default {DEFAULT_SIZE // 1024}K)",
    )
    parser.add_argument(
        "--latency",
        type=_latency,
        default=DEFAULT_LATENCY,
        metavar="SECONDS",
        help=f"server delay before each file (default {DEFAULT_LATENCY:g})",
    )
    parser.add_argument(
        "--workers",
        type=_int_between(1, MAX_WORKERS),
        default=DEFAULT_WORKERS,
        metavar="N",
        help=f"threads for the pooled runs (default {DEFAULT_WORKERS})",
    )
    parser.add_argument(
        "--keep",
        action="store_true",
        help="keep the downloaded files and print where they are",
    )


def options_from(parser: argparse.ArgumentParser, args: argparse.Namespace) -> DemoOptions:
    """Build ``DemoOptions`` from parsed arguments, checking the rules that span options.

    Args:
        parser: The parser, whose ``error`` reports a bad combination (exit status 2).
        args: What ``parser.parse_args`` returned.

    Returns:
        The settings for ``run_demo``.
    """
    if args.files * args.size > MAX_TOTAL_SIZE:
        parser.error(
            f"--files times --size must be at most {MAX_TOTAL_SIZE // 2**20} MiB, "
            f"got {args.files * args.size / 2**20:.0f} MiB"
        )
    return DemoOptions(
        files=args.files,
        size=args.size,
        latency=args.latency,
        workers=args.workers,
        keep=args.keep,
    )
