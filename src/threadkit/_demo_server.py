"""The demo's HTTP server: generated files on 127.0.0.1, so the demo needs no internet.

``DemoServer`` serves ``files`` deterministic files of ``size`` bytes at
``/files/<i>.bin`` and their sizes and SHA-256 digests at ``/manifest.json``. Each file
request waits ``latency`` seconds first, to stand in for a remote server. It speaks
HTTP/1.1 with keep-alive, so a client can reuse one connection for many files.

Guarantees:
    - Bounded: at most ``MAX_CONNECTIONS`` connections are open at once; a client gets
      ``HEAD_TIMEOUT`` seconds in all to send a request's line and headers (waiting for
      it on an idle keep-alive connection included), however slowly it drips them in;
      the sizes and the latency are capped.
    - Serving goes on under a slow-client attack: when every place is taken, a new
      connection closes the one that has waited longest for its request head (counted as
      evicted); only when every open connection is being answered is it refused.
    - Leaving the ``with`` block stops accepting, wakes requests waiting out their
      latency, closes the open connections and joins every thread the server started,
      each join with a timeout.
    - Nothing is printed: request logs and connection errors go to the
      ``threadkit.demo`` logger.
"""

from __future__ import annotations

import contextlib
import hashlib
import http.server
import json
import logging
import random
import re
import signal
import socket
import threading
import time
from types import TracebackType
from typing import Any, Self

import attrs

__all__ = [
    "DemoFile",
    "DemoServer",
    "ServerStatistics",
    "block_interrupts_in_this_thread",
    "file_content",
]

logger = logging.getLogger("threadkit.demo")

MAX_FILES = 10_000
MAX_FILE_SIZE = 64 * 2**20
MAX_TOTAL_SIZE = 2**30
MAX_LATENCY = 10.0
MAX_CONNECTIONS = 128
# Seconds a keep-alive connection may wait for its next request before it is closed.
IDLE_TIMEOUT = 10.0
# The most seconds a connection may take to deliver a request head, from the moment the
# server starts waiting for it.
HEAD_TIMEOUT = 10.0
# Seconds leaving the ``with`` block may wait for each thread of the server.
STOP_TIMEOUT = 5.0
# How often the accept loop checks for shutdown; bounds how long stopping takes.
POLL_INTERVAL = 0.05

_FILE_PATH = re.compile(r"/files/(\d{1,5})\.bin")


def block_interrupts_in_this_thread() -> None:
    """Leave SIGINT and SIGTERM to the main thread (POSIX; a no-op elsewhere).

    The kernel may deliver a process-wide signal to any thread that does not block it.
    Python then runs the handler in the main thread, but only once that thread next
    checks: if it sits in a blocking call such as a socket read, the signal did not
    interrupt that call and Ctrl-C seems to do nothing until the call times out.
    Threads that block these signals leave the main thread as the only one to receive
    them, so its blocking call is interrupted at once. Threads started by this thread
    inherit the mask.
    """
    if hasattr(signal, "pthread_sigmask"):
        signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT, signal.SIGTERM})


def file_content(index: int, size: int) -> bytes:
    """Return the bytes of demo file number ``index``: the same for every run.

    Args:
        index: The file's number, from 0.
        size: How many bytes to generate.

    Returns:
        ``size`` pseudo-random bytes seeded by ``index``.
    """
    return random.Random(index).randbytes(size)


@attrs.frozen
class DemoFile:
    """One served file as the manifest describes it."""

    path: str
    size: int
    sha256: str


@attrs.frozen
class ServerStatistics:
    """Counters of a ``DemoServer``, for the demo's table and for tests."""

    connections_accepted: int
    connections_open: int
    connections_refused: int
    connections_evicted: int
    requests: int


@attrs.define(eq=False)
class _State:
    """What the request handlers share with the server that owns them."""

    manifest: tuple[DemoFile, ...]
    manifest_json: bytes
    size: int
    latency: float
    stopping: threading.Event = attrs.field(init=False, factory=threading.Event)
    lock: threading.Condition = attrs.field(init=False, factory=threading.Condition)
    connections: dict[socket.socket, threading.Thread] = attrs.field(init=False, factory=dict)
    # Connections waiting for a request head, with when the wait began (oldest first).
    waiting: dict[socket.socket, float] = attrs.field(init=False, factory=dict)
    # Connections shut down for taking too long (or to make room); still closing.
    evicting: set[socket.socket] = attrs.field(init=False, factory=set)
    accepted: int = attrs.field(init=False, default=0)
    refused: int = attrs.field(init=False, default=0)
    evicted: int = attrs.field(init=False, default=0)
    requests: int = attrs.field(init=False, default=0)


class _HTTPServer(http.server.ThreadingHTTPServer):
    # A connection thread is a daemon so a stuck client can never hold up interpreter
    # exit, and the server joins its threads itself (with a timeout) instead of letting
    # server_close() join them without one.
    daemon_threads = True
    block_on_close = False
    # socketserver's default listen backlog is 5: eight workers opening their
    # connections at once overflow it, and a dropped SYN is retried only after a second.
    request_queue_size = 128

    def __init__(self, state: _State) -> None:
        self.state = state
        super().__init__(("127.0.0.1", 0), _Handler)

    def process_request(self, request: Any, client_address: Any) -> None:
        state = self.state
        with state.lock:
            if len(state.connections) - len(state.evicting) >= MAX_CONNECTIONS:
                # Full: make room by closing the connection that has waited longest for
                # a request head (a slow or silent client), if there is one.
                oldest = next((s for s in state.waiting if s not in state.evicting), None)
                if oldest is not None:
                    self._evict(oldest)
            if (
                state.stopping.is_set()
                or len(state.connections) - len(state.evicting) >= MAX_CONNECTIONS
            ):
                state.refused += 1
                self.shutdown_request(request)
                return
            state.accepted += 1
            thread = threading.Thread(
                target=self.process_request_thread,
                args=(request, client_address),
                name=f"threadkit-demo-connection-{state.accepted}",
                daemon=True,
            )
            state.connections[request] = thread
            try:
                thread.start()
            except BaseException:
                del state.connections[request]
                self.shutdown_request(request)
                raise

    def process_request_thread(self, request: Any, client_address: Any) -> None:
        try:
            super().process_request_thread(request, client_address)
        finally:
            with self.state.lock:
                del self.state.connections[request]
                self.state.waiting.pop(request, None)
                self.state.evicting.discard(request)
                self.state.lock.notify_all()

    def _evict(self, sock: socket.socket) -> None:
        """Close a connection waiting for its request head (state lock held)."""
        self.state.evicting.add(sock)
        self.state.evicted += 1
        with contextlib.suppress(OSError):  # already closed by its handler
            sock.shutdown(socket.SHUT_RDWR)

    def service_actions(self) -> None:
        # Called by serve_forever() every POLL_INTERVAL: close the connections whose
        # request head is overdue (a client dripping bytes never trips a read timeout).
        state = self.state
        late = time.monotonic() - HEAD_TIMEOUT
        with state.lock:
            for sock, since in list(state.waiting.items()):
                if since > late:
                    break  # oldest first: the rest are younger
                if sock not in state.evicting:
                    self._evict(sock)

    def handle_error(self, request: Any, client_address: Any) -> None:
        # A client that hangs up mid-response is routine for a demo; anything else is a bug.
        logger.debug("error while serving %s", client_address, exc_info=True)


def _serve(httpd: _HTTPServer) -> None:
    # The connection threads are started from this one, so they inherit the mask.
    block_interrupts_in_this_thread()
    httpd.serve_forever(poll_interval=POLL_INTERVAL)


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "threadkit-demo"
    timeout = IDLE_TIMEOUT
    # The headers and the body go out in two writes; with Nagle's algorithm the body can
    # wait for the client's delayed ACK of the headers (tens of milliseconds per file).
    disable_nagle_algorithm = True
    server: _HTTPServer  # pyright: ignore[reportIncompatibleVariableOverride]

    def handle_one_request(self) -> None:
        state = self.server.state
        with state.lock:  # from now on the head is awaited (see service_actions)
            state.waiting[self.connection] = time.monotonic()
        try:
            super().handle_one_request()
        finally:
            with state.lock:
                state.waiting.pop(self.connection, None)

    def parse_request(self) -> bool:
        parsed = super().parse_request()  # reads the headers
        with self.server.state.lock:  # the head has arrived
            self.server.state.waiting.pop(self.connection, None)
        return parsed

    def do_GET(self) -> None:
        state = self.server.state
        with state.lock:
            state.requests += 1
            state.lock.notify_all()
        if self.path == "/manifest.json":
            self._reply(200, state.manifest_json, "application/json")
            return
        match = _FILE_PATH.fullmatch(self.path)
        if match is None or int(match[1]) >= len(state.manifest):
            self._reply(404, b"not found\n", "text/plain")
            return
        if state.stopping.wait(state.latency):
            self.close_connection = True
            self._reply(503, b"server is stopping\n", "text/plain")
            return
        self._reply(200, file_content(int(match[1]), state.size), "application/octet-stream")

    def _reply(self, status: int, body: bytes, content_type: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        if self.close_connection:
            self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        logger.debug("%s %s", self.address_string(), format % args)


@attrs.define(eq=False)
class DemoServer:
    """An HTTP server on 127.0.0.1 (a free port) serving generated files.

    Use it as a context manager: entering starts it on a thread named
    ``threadkit-demo-server``; leaving stops it and joins its threads.

    Args:
        files: How many files to serve, 1 to 10,000.
        size: The size of each file in bytes, 1 to 64 MiB; ``files * size`` at most 1 GiB.
        latency: Seconds each file request waits before the answer, 0 to 10.

    Raises:
        TypeError: An argument has the wrong type.
        ValueError: An argument is out of range.
    """

    files: int
    size: int
    latency: float = 0.0
    _state: _State | None = attrs.field(init=False, default=None)
    _httpd: _HTTPServer | None = attrs.field(init=False, default=None)
    _thread: threading.Thread | None = attrs.field(init=False, default=None)

    def __attrs_post_init__(self) -> None:
        for name in ("files", "size"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int):
                raise TypeError(f"{name} must be an int >= 1, got {value!r}")
            if value < 1:
                raise ValueError(f"{name} must be an int >= 1, got {value!r}")
        if isinstance(self.latency, bool) or not isinstance(self.latency, int | float):
            raise TypeError(f"latency must be a number >= 0, got {self.latency!r}")
        latency = float(self.latency)
        if not latency >= 0:  # also refuses NaN
            raise ValueError(f"latency must be a number >= 0, got {self.latency!r}")
        if self.files > MAX_FILES:
            raise ValueError(f"files must be at most {MAX_FILES}, got {self.files}")
        if self.size > MAX_FILE_SIZE:
            raise ValueError(f"size must be at most {MAX_FILE_SIZE} bytes, got {self.size}")
        if self.files * self.size > MAX_TOTAL_SIZE:
            raise ValueError(
                f"files * size must be at most {MAX_TOTAL_SIZE} bytes, got {self.files * self.size}"
            )
        if latency > MAX_LATENCY:  # also refuses infinity
            raise ValueError(f"latency must be at most {MAX_LATENCY} seconds, got {latency}")
        self.latency = latency

    @property
    def host(self) -> str:
        """The address the server listens on: always ``127.0.0.1``."""
        return "127.0.0.1"

    @property
    def port(self) -> int:
        """The port the server listens on, chosen by the operating system.

        Raises:
            RuntimeError: The server is not running.
        """
        return int(self._running().server_address[1])

    @property
    def manifest(self) -> tuple[DemoFile, ...]:
        """The served files, in order.

        Raises:
            RuntimeError: The server is not running.
        """
        self._running()
        assert self._state is not None
        return self._state.manifest

    def statistics(self) -> ServerStatistics:
        """Return the connection and request counters so far.

        Raises:
            RuntimeError: The server has never been started.
        """
        state = self._state
        if state is None:
            raise RuntimeError("the DemoServer has not been started; use it in a with block")
        with state.lock:
            return ServerStatistics(
                connections_accepted=state.accepted,
                connections_open=len(state.connections),
                connections_refused=state.refused,
                connections_evicted=state.evicted,
                requests=state.requests,
            )

    def __enter__(self) -> Self:
        if self._state is not None:
            raise RuntimeError("a DemoServer can be started only once")
        manifest = tuple(
            DemoFile(
                path=f"/files/{index}.bin",
                size=self.size,
                sha256=hashlib.sha256(file_content(index, self.size)).hexdigest(),
            )
            for index in range(self.files)
        )
        manifest_json = json.dumps({"files": [attrs.asdict(entry) for entry in manifest]})
        self._state = _State(
            manifest=manifest,
            manifest_json=manifest_json.encode(),
            size=self.size,
            latency=self.latency,
        )
        self._httpd = _HTTPServer(self._state)
        self._thread = threading.Thread(
            target=_serve, args=(self._httpd,), name="threadkit-demo-server"
        )
        try:
            self._thread.start()
        except BaseException:
            self._httpd.server_close()
            self._thread = None
            raise
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def stop(self) -> None:
        """Stop serving, close open connections and join the server's threads.

        Safe to call more than once. Each thread is given ``STOP_TIMEOUT`` seconds.
        """
        state, httpd, thread = self._state, self._httpd, self._thread
        if state is None or httpd is None:
            return
        state.stopping.set()
        if thread is not None:
            # shutdown() has no timeout, but serve_forever() notices it within
            # POLL_INTERVAL, and only the thread we started runs serve_forever().
            httpd.shutdown()
            thread.join(STOP_TIMEOUT)
            self._thread = None
        deadline = time.monotonic() + STOP_TIMEOUT
        with state.lock:
            connections = dict(state.connections)
        # Closing the read side wakes a handler waiting for the next request on an idle
        # keep-alive connection, and still lets a handler that is answering finish.
        self._shut_connections(connections, socket.SHUT_RD)
        with state.lock:
            drained = state.lock.wait_for(
                lambda: not state.connections, timeout=max(0.0, deadline - time.monotonic()) / 2
            )
        if not drained:  # a client that does not read its answer: cut it off
            self._shut_connections(connections, socket.SHUT_RDWR)
        for connection_thread in connections.values():
            connection_thread.join(max(0.0, deadline - time.monotonic()))
        httpd.server_close()
        self._httpd = None
        if any(t.is_alive() for t in connections.values()):
            logger.warning("demo server: a connection thread did not stop in time")

    def wait_for_requests(self, count: int, timeout: float) -> bool:
        """Block until the server has received at least ``count`` requests.

        Args:
            count: How many requests to wait for, counted since the server started.
            timeout: The most seconds to wait.

        Returns:
            ``True`` if the count was reached, ``False`` if the timeout expired.

        Raises:
            RuntimeError: The server has never been started.
        """
        state = self._state
        if state is None:
            raise RuntimeError("the DemoServer has not been started; use it in a with block")
        with state.lock:
            return state.lock.wait_for(lambda: state.requests >= count, timeout=timeout)

    @staticmethod
    def _shut_connections(connections: dict[socket.socket, threading.Thread], how: int) -> None:
        for sock in connections:
            with contextlib.suppress(OSError):  # already closed by its handler
                sock.shutdown(how)

    def _running(self) -> _HTTPServer:
        if self._httpd is None:
            raise RuntimeError("the DemoServer is not running; use it in a with block")
        return self._httpd
