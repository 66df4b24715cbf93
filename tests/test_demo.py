"""The demo: its embedded HTTP server and the ``threadkit demo`` command line."""

from __future__ import annotations

import contextlib
import hashlib
import http.client
import json
import math
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

import threadkit
from helpers import WAIT
from threadkit import _demo, _demo_server
from threadkit.__main__ import main
from threadkit._demo_server import MAX_FILE_SIZE, MAX_FILES, DemoFile, DemoServer, file_content


@pytest.fixture
def server() -> Iterator[DemoServer]:
    """A running server with four 1000-byte files and no latency."""
    with DemoServer(files=4, size=1000) as running:
        yield running


def _get(conn: http.client.HTTPConnection, path: str) -> tuple[int, bytes]:
    conn.request("GET", path)
    response = conn.getresponse()
    return response.status, response.read()


def _connect(server: DemoServer) -> http.client.HTTPConnection:
    return http.client.HTTPConnection(server.host, server.port, timeout=WAIT)


# -- the server -----------------------------------------------------------------------


def test_manifest_lists_every_file_with_size_and_digest(server: DemoServer) -> None:
    """``/manifest.json`` lists each file's path, size and the SHA-256 of its content."""
    conn = _connect(server)
    try:
        status, body = _get(conn, "/manifest.json")
    finally:
        conn.close()
    assert status == 200
    entries = json.loads(body)["files"]
    assert [entry["path"] for entry in entries] == [f"/files/{i}.bin" for i in range(4)]
    for index, entry in enumerate(entries):
        assert entry["size"] == 1000
        assert entry["sha256"] == hashlib.sha256(file_content(index, 1000)).hexdigest()
    assert tuple(DemoFile(**entry) for entry in entries) == server.manifest


def test_files_match_their_manifest_entries(server: DemoServer) -> None:
    """Every served file has the size and SHA-256 digest its manifest entry promises."""
    conn = _connect(server)
    try:
        for entry in server.manifest:
            status, body = _get(conn, entry.path)
            assert status == 200
            assert len(body) == entry.size
            assert hashlib.sha256(body).hexdigest() == entry.sha256
    finally:
        conn.close()


def test_file_content_is_deterministic() -> None:
    """The same file number always has the same bytes, and different numbers differ."""
    assert file_content(3, 500) == file_content(3, 500)
    assert file_content(3, 500) != file_content(4, 500)
    assert len(file_content(3, 500)) == 500


def test_keep_alive_connection_is_reused(server: DemoServer) -> None:
    """One HTTP/1.1 connection carries many requests: the server accepts it only once."""
    conn = _connect(server)
    try:
        _get(conn, "/manifest.json")
        sock = conn.sock
        for entry in server.manifest:
            status, _ = _get(conn, entry.path)
            assert status == 200
            assert conn.sock is sock
    finally:
        conn.close()
    stats = server.statistics()
    assert stats.connections_accepted == 1
    assert stats.requests == 1 + len(server.manifest)


def test_unknown_path_is_404_and_keeps_the_connection(server: DemoServer) -> None:
    """An unknown path gets a 404 and the connection stays usable."""
    conn = _connect(server)
    try:
        for path in ["/nope", "/files/4.bin", "/files/x.bin", "/files/0.bin/.."]:
            assert _get(conn, path)[0] == 404
        assert _get(conn, "/files/0.bin")[0] == 200
    finally:
        conn.close()
    assert server.statistics().connections_accepted == 1


def test_stopping_closes_idle_connections_and_joins_threads() -> None:
    """Leaving the block closes a client's idle keep-alive connection and joins every thread."""
    with DemoServer(files=1, size=10) as server:
        conn = _connect(server)
        assert _get(conn, "/files/0.bin")[0] == 200
        assert server.statistics().connections_open == 1
    try:
        alive = [t.name for t in threading.enumerate() if t.name.startswith("threadkit-demo")]
        assert alive == []
        assert server.statistics().connections_open == 0
        with pytest.raises((http.client.HTTPException, OSError)):
            _get(conn, "/files/0.bin")
    finally:
        conn.close()


def test_stopping_cuts_the_latency_wait_short() -> None:
    """A request waiting out its latency is answered 503 at once when the server stops."""
    with ThreadPoolExecutor(max_workers=1) as client:
        with DemoServer(files=1, size=10, latency=10.0) as server:
            conn = _connect(server)
            answer = client.submit(_get, conn, "/files/0.bin")
            assert server.wait_for_requests(1, timeout=WAIT)
        try:
            status, _ = answer.result(timeout=WAIT)
        finally:
            conn.close()
    assert status == 503


@pytest.mark.parametrize(
    ("kwargs", "error"),
    [
        ({"files": 0, "size": 1}, ValueError),
        ({"files": 1.5, "size": 1}, TypeError),
        ({"files": True, "size": 1}, TypeError),
        ({"files": MAX_FILES + 1, "size": 1}, ValueError),
        ({"files": 1, "size": 0}, ValueError),
        ({"files": 1, "size": MAX_FILE_SIZE + 1}, ValueError),
        ({"files": MAX_FILES, "size": MAX_FILE_SIZE}, ValueError),
        ({"files": 1, "size": 1, "latency": -1}, ValueError),
        ({"files": 1, "size": 1, "latency": math.nan}, ValueError),
        ({"files": 1, "size": 1, "latency": 10.5}, ValueError),
        ({"files": 1, "size": 1, "latency": "1"}, TypeError),
    ],
)
def test_server_refuses_bad_arguments(kwargs: dict[str, object], error: type[Exception]) -> None:
    """Out-of-range or wrongly typed settings raise at construction, naming the parameter."""
    with pytest.raises(error, match=r"^(files|size|latency)"):
        DemoServer(**kwargs)  # type: ignore[arg-type]


def test_server_is_used_once() -> None:
    """A server cannot be entered twice, and tells you so when used outside its block."""
    server = DemoServer(files=1, size=1)
    with pytest.raises(RuntimeError, match="not running"):
        _ = server.port
    with server, pytest.raises(RuntimeError, match="only once"):
        server.__enter__()


# -- the command line -----------------------------------------------------------------


@pytest.mark.parametrize(
    "args",
    [
        ["--files", "0"],
        ["--files", "x"],
        ["--files", "1.5"],
        ["--files", str(MAX_FILES + 1)],
        ["--size", "0"],
        ["--size", "-1"],
        ["--size", "1x"],
        ["--size", "65M"],
        ["--latency", "-0.1"],
        ["--latency", "nan"],
        ["--latency", "inf"],
        ["--latency", "soon"],
        ["--workers", "0"],
        ["--workers", "1000"],
        ["--files", "10000", "--size", "1M"],
        ["--bogus"],
        ["extra"],
    ],
)
def test_bad_values_exit_2_with_one_line_error(
    args: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    """A bad option value prints exactly one error line on stderr and exits with status 2."""
    assert main(["demo", *args]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    lines = captured.err.splitlines()
    assert len(lines) == 1, lines
    assert re.match(r"threadkit( demo)?: error: .+ \(see --help\)$", lines[0]), lines[0]


def test_missing_command_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    """``threadkit`` without a command is a usage error."""
    assert main([]) == 2
    assert capsys.readouterr().err.startswith("threadkit: error: ")


def test_help_exits_0(capsys: pytest.CaptureFixture[str]) -> None:
    """``threadkit demo --help`` lists the options and exits with status 0."""
    assert main(["demo", "--help"]) == 0
    out = capsys.readouterr().out
    for option in ["--files", "--size", "--latency", "--workers", "--keep"]:
        assert option in out


SMALL_RUN = ["demo", "--files", "8", "--size", "4K", "--latency", "0.001", "--workers", "4"]


@pytest.fixture
def tmpdir_for_demo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Make the demo create its temporary directory inside ``tmp_path``."""
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    return tmp_path


def test_small_run_prints_the_table_and_removes_its_files(
    tmpdir_for_demo: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A small run exits 0, prints a row per mode, and leaves no files behind."""
    assert main(SMALL_RUN) == 0
    out = capsys.readouterr().out
    assert "8 files of 4,096 bytes" in out
    assert "wall time" in out
    rows = {line.split("  ")[0] for line in out.splitlines()}
    assert {"serial", "ThreadPoolExecutor"} <= rows
    assert ("threadkit WorkerPool" in rows) == hasattr(threadkit, "WorkerPool")
    assert list(tmpdir_for_demo.iterdir()) == []


def test_keep_leaves_the_verified_files(
    tmpdir_for_demo: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """With ``--keep`` every mode's folder holds every file, with the served content."""
    assert main([*SMALL_RUN, "--keep"]) == 0
    (workdir,) = tmpdir_for_demo.iterdir()
    assert str(workdir) in capsys.readouterr().out
    folders = sorted(path.name for path in workdir.iterdir())
    expected = ["serial", "threadpool"] + (
        ["threadkit"] if hasattr(threadkit, "WorkerPool") else []
    )
    assert folders == sorted(expected)
    for folder in folders:
        for index in range(8):
            assert (workdir / folder / f"{index}.bin").read_bytes() == file_content(index, 4096)


def test_failed_download_exits_1(
    tmpdir_for_demo: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A file whose digest does not match fails the demo with one error line and status 1."""
    real_fetch = _demo.fetch

    def corrupting_fetch(conn: http.client.HTTPConnection, entry: DemoFile, dest: Path) -> int:
        return real_fetch(conn, DemoFile(entry.path, entry.size, "0" * 64), dest)

    monkeypatch.setattr(_demo, "fetch", corrupting_fetch)
    assert main(SMALL_RUN) == 1
    err = capsys.readouterr().err
    assert "SHA-256 digest does not match" in err
    assert list(tmpdir_for_demo.iterdir()) == []


def test_interrupt_in_serial_run_reports_and_cleans_up(
    tmpdir_for_demo: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Ctrl-C during the serial run exits 130, says what was not run, and removes the files."""
    real_fetch = _demo.fetch
    calls = 0

    def interrupted_fetch(conn: http.client.HTTPConnection, entry: DemoFile, dest: Path) -> int:
        nonlocal calls
        calls += 1
        if calls == 3:
            raise KeyboardInterrupt
        return real_fetch(conn, entry, dest)

    monkeypatch.setattr(_demo, "fetch", interrupted_fetch)
    assert main(SMALL_RUN) == 130
    err = capsys.readouterr().err
    assert "interrupted: stopped the serial run after 2 of 8 files" in err
    assert "not run: ThreadPoolExecutor" in err
    assert list(tmpdir_for_demo.iterdir()) == []


def test_interrupt_in_executor_run_cancels_what_has_not_started(
    tmpdir_for_demo: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Ctrl-C during the executor run cancels queued files and lets the running one finish."""
    real_fetch = _demo.fetch
    second_started = threading.Event()
    release = threading.Event()

    def gated_fetch(conn: http.client.HTTPConnection, entry: DemoFile, dest: Path) -> int:
        if threading.current_thread().name.startswith("executor") and entry.path != "/files/0.bin":
            second_started.set()
            assert release.wait(WAIT)
        return real_fetch(conn, entry, dest)

    class ReleasingExecutor(ThreadPoolExecutor):
        def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
            release.set()  # only after the demo has cancelled what had not started
            super().shutdown(wait, cancel_futures=cancel_futures)

    real_file_done = _demo._RunState.file_done

    def interrupting_file_done(self: _demo._RunState) -> None:
        real_file_done(self)
        if self.mode == "ThreadPoolExecutor":
            assert second_started.wait(WAIT)
            raise KeyboardInterrupt

    monkeypatch.setattr(_demo, "fetch", gated_fetch)
    monkeypatch.setattr(_demo, "ThreadPoolExecutor", ReleasingExecutor)
    monkeypatch.setattr(_demo._RunState, "file_done", interrupting_file_done)
    assert main([*SMALL_RUN[:-1], "1"]) == 130
    err = capsys.readouterr().err
    assert (
        "stopped the ThreadPoolExecutor run after 1 of 8 files; 6 cancelled before they "
        "started; 1 already running were allowed to finish" in err
    )
    assert list(tmpdir_for_demo.iterdir()) == []


@pytest.mark.skipif(os.name != "posix", reason="sends SIGINT")
def test_ctrl_c_in_a_child_interpreter_exits_130(tmp_path: Path) -> None:
    """A real SIGINT stops the demo promptly with status 130 and a report, leaving no files."""
    # The child makes sure SIGINT raises KeyboardInterrupt even if this process was
    # started with SIGINT ignored (as background jobs of a shell are).
    code = (
        "import signal, sys; signal.signal(signal.SIGINT, signal.default_int_handler); "
        "from threadkit.__main__ import main; sys.exit(main(sys.argv[1:]))"
    )
    child = subprocess.Popen(
        [sys.executable, "-c", code, "demo", "--files", "4", "--latency", "10"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "TMPDIR": str(tmp_path)},
    )
    try:
        assert child.stdout is not None
        assert child.stdout.readline().startswith("threadkit demo:")  # READY: serving
        child.send_signal(signal.SIGINT)
        _, err = child.communicate(timeout=WAIT)
    finally:
        if child.poll() is None:
            child.kill()
            child.communicate(timeout=WAIT)
    assert child.returncode == 130, err
    assert err.splitlines()[-1].startswith("interrupted: ")
    assert "Traceback" not in err
    assert list(tmp_path.iterdir()) == []


def _status_of(port: int, path: str) -> int:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=WAIT)
    try:
        conn.request("GET", path)
        response = conn.getresponse()
        response.read()
        return response.status
    finally:
        conn.close()


def test_silent_clients_filling_every_place_do_not_stop_others(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """With every connection place held by clients that send nothing, a normal request is
    still answered: it takes the place of the one that waited longest for its head."""
    monkeypatch.setattr(_demo_server, "MAX_CONNECTIONS", 8)
    with DemoServer(files=2, size=16) as server:
        silent = [socket.create_connection(("127.0.0.1", server.port)) for _ in range(8)]
        try:
            for _ in range(int(WAIT / 0.01)):
                if server.statistics().connections_open == 8:
                    break
                threading.Event().wait(0.01)
            assert _status_of(server.port, "/manifest.json") == 200
            assert _status_of(server.port, "/files/1.bin") == 200
            stats = server.statistics()
            assert stats.connections_evicted >= 1
            assert stats.connections_refused == 0
        finally:
            for sock in silent:
                sock.close()


def test_a_client_dripping_its_head_is_cut_off(monkeypatch: pytest.MonkeyPatch) -> None:
    """A client that sends its request head a byte at a time, never finishing it, is
    closed once HEAD_TIMEOUT has passed, although no single read ever times out."""
    monkeypatch.setattr(_demo_server, "HEAD_TIMEOUT", 0.5)
    with (
        DemoServer(files=1, size=16) as server,
        socket.create_connection(("127.0.0.1", server.port)) as sock,
    ):
        sock.settimeout(0.05)
        closed = False
        for byte in b"GET /manifest.json HTTP/1.1\r\nX-Slow: " + b"a" * 1000:
            try:
                sock.sendall(bytes([byte]))
                closed = sock.recv(1) == b""  # the server hung up
            except TimeoutError:
                continue  # still open: send the next byte
            except OSError:
                closed = True
            if closed:
                break
        assert closed, "the server never closed the dripping connection"
        assert server.statistics().connections_evicted == 1
        assert _status_of(server.port, "/manifest.json") == 200


@pytest.mark.slow
def test_the_server_keeps_serving_under_a_slow_client_attack() -> None:
    """200 attacking connections (100 silent, 100 dripping a header byte at a time) do
    not stop normal requests made meanwhile from being answered."""
    stop = threading.Event()
    attackers: list[socket.socket] = []

    def drip(sock: socket.socket) -> None:
        with contextlib.suppress(OSError):
            sock.sendall(b"GET /files/0.bin HTTP/1.1\r\n")
            while not stop.wait(0.5):
                sock.sendall(b"X")

    with DemoServer(files=2, size=64) as server:
        threads = []
        try:
            for index in range(200):
                sock = socket.create_connection(("127.0.0.1", server.port))
                attackers.append(sock)
                if index % 2:
                    thread = threading.Thread(target=drip, args=(sock,))
                    thread.start()
                    threads.append(thread)
            statuses = []
            for _ in range(10):
                statuses.append(_status_of(server.port, "/files/1.bin"))
                stop.wait(0.2)
            assert statuses == [200] * 10
        finally:
            stop.set()
            for sock in attackers:
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)
                sock.close()
            for thread in threads:
                thread.join(WAIT)
