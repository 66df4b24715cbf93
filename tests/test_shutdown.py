"""GracefulShutdown: real signals in child interpreters, and the sequence in-process.

Child scripts print ``READY`` once the handlers are in place (and the work they need is
running), and print a marker when the sequence starts where a test needs to send a
second signal during it; the parent waits for those lines, never for a guessed time.
A child whose graceful path is broken would wait out ``grace=60``, so a bounded wait in
the parent catches it without any timing assertion.
"""

from __future__ import annotations

import logging
import math
import os
import queue
import signal
import subprocess
import sys
import textwrap
import threading
from collections.abc import Iterator
from concurrent.futures import Future
from pathlib import Path
from typing import IO, Any

import pytest

import threadkit
from helpers import WAIT
from threadkit import GracefulShutdown, ShutdownRequested, ShutdownSummary

ROOT = Path(__file__).resolve().parent.parent

posix_only = pytest.mark.skipif(sys.platform == "win32", reason="sends POSIX signals")
needs_sigusr1 = pytest.mark.skipif(not hasattr(signal, "SIGUSR1"), reason="needs SIGUSR1")

# Used by the in-process tests: a signal pytest does not care about.
SIGUSR1: int = getattr(signal, "SIGUSR1", 10)


# -- child interpreters ------------------------------------------------------------------


# Prepended to every child script: SIGUSR2 dumps all stacks, to diagnose a hang.
DUMP_ON_SIGUSR2 = """\
import faulthandler as _faulthandler, signal as _signal
if hasattr(_signal, "SIGUSR2"):
    _faulthandler.register(_signal.SIGUSR2)
"""


class Child:
    """A child interpreter running ``script``, whose output lines the test can await."""

    def __init__(self, script: str) -> None:
        env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
        self.proc = subprocess.Popen(
            [sys.executable, "-W", "error", "-c", DUMP_ON_SIGUSR2 + textwrap.dedent(script)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=env,
            text=True,
        )
        self.lines: queue.SimpleQueue[str | None] = queue.SimpleQueue()
        self.out: list[str] = []
        self.err: list[str] = []
        assert self.proc.stdout is not None
        assert self.proc.stderr is not None
        self.readers = [
            threading.Thread(target=self._read, args=(self.proc.stdout, self.out, True)),
            threading.Thread(target=self._read, args=(self.proc.stderr, self.err, False)),
        ]
        for reader in self.readers:
            reader.start()

    def _read(self, stream: IO[str], into: list[str], announce: bool) -> None:
        for line in stream:
            into.append(line)
            if announce:
                self.lines.put(line.rstrip("\n"))
        if announce:
            self.lines.put(None)

    def expect(self, wanted: str) -> None:
        """Wait (bounded) until the child prints the line ``wanted``."""
        while True:
            try:
                line = self.lines.get(timeout=WAIT)
            except queue.Empty:
                self._fail(f"child never printed {wanted!r}", dump=True)
            if line is None:
                self._fail(f"child ended before {wanted!r}", dump=False)
            if line == wanted:
                return

    def _fail(self, message: str, *, dump: bool) -> None:
        if dump and hasattr(signal, "SIGUSR2") and self.proc.poll() is None:
            self.kill(signal.SIGUSR2)  # every thread's stack to stderr (see DUMP_ON_SIGUSR2)
            self.proc.kill()
            self.proc.wait(timeout=WAIT)
            for reader in self.readers:
                reader.join(WAIT)
        pytest.fail(
            f"{message}\n--- stdout ---\n{''.join(self.out)}--- stderr ---\n{''.join(self.err)}"
        )

    def kill(self, signum: int) -> None:
        os.kill(self.proc.pid, signum)

    def finish(self) -> tuple[int, str, str]:
        """Wait (bounded) for the child to exit; return its status, stdout and stderr."""
        try:
            self.proc.wait(timeout=WAIT)
        except subprocess.TimeoutExpired:
            self._fail("child did not exit", dump=True)
        for reader in self.readers:
            reader.join(WAIT)
        return self.proc.returncode, "".join(self.out), "".join(self.err)

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=WAIT)
        for reader in self.readers:
            reader.join(WAIT)
        for stream in (self.proc.stdout, self.proc.stderr):
            if stream is not None:
                stream.close()


@pytest.fixture
def child() -> Iterator[Any]:
    """Start child interpreters and make sure they are gone when the test ends."""
    made: list[Child] = []

    def start(script: str) -> Child:
        made.append(Child(script))
        return made[-1]

    yield start
    for proc in made:
        proc.close()


# Child scripts write each line with one call, so lines from threads never interleave.
SAY = """
import sys

def say(text):
    sys.stdout.write(text + "\\n")
    sys.stdout.flush()
"""

BUSY_POOL = (
    SAY
    + """
import threading
import threadkit
from threadkit import GracefulShutdown

started = threading.Semaphore(0)
ran = []

class Job(threadkit.Worker[int, int]):
    def process(self, item):
        ran.append(item)
        started.release()
        self.token.wait(30)  # a running task that stops when asked
        return item

    def teardown(self):
        say(f"teardown {self.index}")

with GracefulShutdown(grace=60) as shutdown:
    pool = shutdown.register(
        threadkit.WorkerPool(worker=Job, max_workers=2, cancel_token=shutdown.token)
    )
    shutdown.add_cleanup(lambda: say(f"cleanup ran={sorted(ran)}"))
    futures = [pool.put(i) for i in range(50)]
    for _ in range(2):
        assert started.acquire(timeout=10)
    try:
        print("READY", flush=True)  # inside the try, so the signal lands in it
        for future in futures:
            future.result()
    finally:
        say("finally")
print("after the block")
"""
)


@posix_only
def test_one_sigint_during_a_busy_pool_cancels_the_queue_and_exits_130(child: Any) -> None:
    """One SIGINT: unstarted tasks never run, teardown and cleanup run, status 130."""
    proc = child(BUSY_POOL)
    proc.expect("READY")
    proc.kill(signal.SIGINT)
    code, out, err = proc.finish()
    assert code == 130, f"{out}\n{err}"
    lines = out.splitlines()
    # The watcher stops the pool as the main thread unwinds: these two orders race.
    assert lines[0] == "READY"
    assert sorted(lines[1:4]) == ["finally", "teardown 0", "teardown 1"]
    assert lines[4:] == ["cleanup ran=[0, 1]"]
    assert err == ""


HUNG_TASK = """
import atexit
import signal
import threading
import threadkit
from threadkit import GracefulShutdown

atexit.register(lambda: print("atexit", flush=True))
started = threading.Event()

def hang():
    started.set()
    threading.Event().wait()  # never returns, ignores the token

with GracefulShutdown(grace={grace}) as shutdown:
    pool = shutdown.register(threadkit.WorkerPool(1, thread_name_prefix="stuck"))
    shutdown.register(lambda: print("STOPPING", flush=True))
    future = pool.submit(hang)
    assert started.wait(10)
    print("READY", flush=True)
    future.result()
"""


@posix_only
@pytest.mark.parametrize(
    ("signum", "code"), [(signal.SIGINT, 130), (signal.SIGTERM, 143)], ids=["INT", "TERM"]
)
def test_second_signal_forces_the_exit_past_a_hung_task(child: Any, signum: int, code: int) -> None:
    """A second signal during the sequence exits at once with the code and every stack."""
    proc = child(HUNG_TASK.format(grace=60))
    proc.expect("READY")
    proc.kill(signum)
    proc.expect("STOPPING")
    proc.kill(signum)
    status, out, err = proc.finish()
    assert status == code, f"{out}\n{err}"
    assert "atexit" not in out  # the forced exit skips atexit handlers (documented)
    name = signal.Signals(signum).name
    assert f"graceful shutdown: second {name}; exiting now with status {code}" in err
    assert "Thread 'stuck_0'" in err
    assert "in hang" in err
    assert "Exception ignored" not in err
    assert "Traceback" not in err


@posix_only
def test_grace_running_out_reports_stragglers_and_still_exits_cleanly(child: Any) -> None:
    """With grace=0 a hung task is reported with its stack; atexit runs; status 130."""
    proc = child(HUNG_TASK.format(grace=0))
    proc.expect("READY")
    proc.kill(signal.SIGINT)
    code, out, err = proc.finish()
    assert code == 130, f"{out}\n{err}"
    assert out.splitlines() == ["READY", "STOPPING", "atexit"]
    assert "the grace period of 0 s ran out; 1 thread(s) still running" in err
    assert "Thread 'stuck_0' running __main__.hang for " in err
    assert "Exception ignored" not in err


SERVICE = (
    SAY
    + """
import atexit
import threadkit
from threadkit import GracefulShutdown

atexit.register(lambda: print("atexit", flush=True))

class Step(threadkit.Worker[int, int]):
    def process(self, item):
        return item + 1

    def teardown(self):
        say("teardown")

with GracefulShutdown(grace=60) as shutdown:
    pool = shutdown.register(
        threadkit.WorkerPool(worker=Step, max_workers=1, cancel_token=shutdown.token)
    )
    n = pool.put(0).result()
    try:
        print("READY", flush=True)  # inside the try, so the signal lands in it
        while True:
            n = pool.put(n).result()
    except Exception:
        say("except Exception caught it")
    finally:
        say("finally")
"""
)


@posix_only
def test_sigterm_in_a_service_loop_runs_teardown_finally_and_atexit(child: Any) -> None:
    """SIGTERM unwinds the loop past ``except Exception``; everything runs; status 143."""
    proc = child(SERVICE)
    proc.expect("READY")
    proc.kill(signal.SIGTERM)
    code, out, err = proc.finish()
    assert code == 143, f"{out}\n{err}"
    lines = out.splitlines()
    assert lines[0] == "READY"
    assert sorted(lines[1:3]) == ["finally", "teardown"]  # they race (see above)
    assert lines[3:] == ["atexit"]
    assert err == ""


SUBMIT_LOOP = """
import sys
import threading
import threadkit
from threadkit import GracefulShutdown

sys.setswitchinterval(1e-6)  # make the signal land at awkward places

def noop():
    pass

for round in range(20):
    try:
        with GracefulShutdown(grace=60) as shutdown:
            pool = shutdown.register(
                threadkit.WorkerPool(4, max_queue=8, cancel_token=shutdown.token)
            )
            # Start all four workers first: the loop then measures this module, not
            # an interrupt inside the pool's Thread.start() (a pool issue of its own).
            everyone = threading.Barrier(5)
            for _ in range(4):
                pool.submit(everyone.wait, 10)
            everyone.wait(10)
            print(f"READY {round}", flush=True)
            while True:
                pool.submit(noop)
    except SystemExit as exc:
        print(f"EXIT {round} {exc.code}", flush=True)
print("DONE", flush=True)
"""


@posix_only
def test_a_signal_during_a_tight_submit_loop_never_hangs(child: Any) -> None:
    """Twenty rounds of SIGINT into a submit loop: each round leaves promptly with 130."""
    proc = child(SUBMIT_LOOP)
    for round in range(20):
        proc.expect(f"READY {round}")
        proc.kill(signal.SIGINT)
        proc.expect(f"EXIT {round} 130")
    proc.expect("DONE")
    code, out, err = proc.finish()
    assert code == 0, f"{out}\n{err}"
    assert err == ""


CHAINED = """
import signal
from threadkit import GracefulShutdown

def previous(signum, frame):
    print(f"previous handler got {signal.Signals(signum).name}", flush=True)

signal.signal(signal.SIGTERM, previous)
try:
    with GracefulShutdown() as shutdown:
        print("READY", flush=True)
        shutdown.wait()
except SystemExit as exc:
    print(f"exit {exc.code}", flush=True)
print(f"restored {signal.getsignal(signal.SIGTERM) is previous}", flush=True)
print(f"SIGINT back to default {signal.getsignal(signal.SIGINT) is signal.default_int_handler}")
"""


@posix_only
def test_previous_handlers_are_chained_and_restored(child: Any) -> None:
    """The previous Python handler runs on the first signal and is back in place after."""
    proc = child(CHAINED)
    proc.expect("READY")
    proc.kill(signal.SIGTERM)
    code, out, err = proc.finish()
    assert code == 0, f"{out}\n{err}"
    assert out.splitlines() == [
        "READY",
        "previous handler got SIGTERM",
        "exit 143",
        "restored True",
        "SIGINT back to default True",
    ]
    assert err == ""


# -- in-process: signals raised in this (main) thread -------------------------------------


@needs_sigusr1
def test_a_signal_raises_in_the_block_and_leaving_exits_with_128_plus_n() -> None:
    """A handled signal raises ShutdownRequested in the block; leaving raises SystemExit."""
    ran: list[str] = []
    shutdown = GracefulShutdown(signals=[SIGUSR1])

    def block() -> None:
        with shutdown:
            try:
                signal.raise_signal(SIGUSR1)
            except ShutdownRequested as exc:
                ran.append(f"caught {exc.signal.name}")
                raise
            finally:
                ran.append("finally")

    with pytest.raises(SystemExit) as info:
        block()
    assert info.value.code == 128 + SIGUSR1
    assert type(info.value) is SystemExit
    assert ran == ["caught SIGUSR1", "finally"]
    assert shutdown.signal == SIGUSR1
    assert shutdown.requested
    assert shutdown.token.reason == "SIGUSR1 received"
    assert shutdown.summary is not None
    assert shutdown.summary.trigger == "SIGUSR1"
    assert shutdown.summary.exit_code == 128 + SIGUSR1


@needs_sigusr1
def test_signal_while_the_main_thread_holds_the_token_lock_does_not_deadlock() -> None:
    """The handler takes no lock: a signal inside the token's own lock still unwinds."""
    shutdown = GracefulShutdown(signals=[SIGUSR1])
    with pytest.raises(SystemExit), shutdown, shutdown.token._lock:
        signal.raise_signal(SIGUSR1)
    assert shutdown.token.cancelled


@needs_sigusr1
def test_a_signal_ignored_on_entry_stays_ignored() -> None:
    """A signal set to SIG_IGN (nohup, background job) is not taken over."""
    old = signal.signal(SIGUSR1, signal.SIG_IGN)
    try:
        with GracefulShutdown(signals=[SIGUSR1]):
            assert signal.getsignal(SIGUSR1) is signal.SIG_IGN
        assert signal.getsignal(SIGUSR1) is signal.SIG_IGN
    finally:
        signal.signal(SIGUSR1, old)


def test_handlers_are_installed_while_active_and_restored_after() -> None:
    """SIGINT and SIGTERM (and SIGHUP with hup=True) are handled only inside the block."""
    wanted = [signal.SIGINT, signal.SIGTERM]
    if hasattr(signal, "SIGHUP"):
        wanted.append(signal.SIGHUP)
    before = {signum: signal.getsignal(signum) for signum in wanted}
    shutdown = GracefulShutdown(hup=hasattr(signal, "SIGHUP"))
    assert shutdown.signals == tuple(wanted)
    with shutdown:
        installed = {signum: signal.getsignal(signum) for signum in wanted}
        assert len(set(installed.values())) == 1  # one handler for all of them
        assert not set(installed.values()) & set(before.values())
    assert {signum: signal.getsignal(signum) for signum in wanted} == before


def test_entering_outside_the_main_thread_says_how_to_fix_it() -> None:
    """Entering in another thread raises a RuntimeError that names the fix."""
    errors: list[BaseException] = []

    def enter() -> None:
        try:
            with GracefulShutdown():
                pass
        except BaseException as exc:
            errors.append(exc)

    thread = threading.Thread(target=enter)
    thread.start()
    thread.join(WAIT)
    assert len(errors) == 1
    assert isinstance(errors[0], RuntimeError)
    assert "main thread" in str(errors[0])
    assert "request()" in str(errors[0])


# -- in-process: request() and the sequence -----------------------------------------------


def test_request_from_another_thread_wakes_wait_and_leaves_normally() -> None:
    """request() from any thread cancels the token; the block is left without SystemExit."""
    with GracefulShutdown() as shutdown:
        thread = threading.Thread(target=shutdown.request, args=("deploy",))
        thread.start()
        assert shutdown.wait(WAIT)
        thread.join(WAIT)
    assert shutdown.requested
    assert shutdown.signal is None
    assert shutdown.token.reason == "deploy"
    assert shutdown.summary == ShutdownSummary(
        trigger="request",
        cancelled=0,
        stragglers=(),
        cleanups=0,
        errors=0,
        elapsed=shutdown.summary.elapsed if shutdown.summary else 0.0,
        exit_code=None,
    )


def test_request_reports_whether_it_was_the_first() -> None:
    """The first request() returns True and sets the reason; later ones return False."""
    shutdown = GracefulShutdown(signals=())
    assert not shutdown.requested
    assert shutdown.request()
    assert not shutdown.request("again")
    assert shutdown.token.reason == "shutdown requested"
    assert shutdown.wait(0)


def test_request_cancels_queued_tasks_and_lets_the_running_one_finish() -> None:
    """After request(), leaving cancels what has not started and waits for what runs."""
    started = threading.Event()
    with GracefulShutdown(signals=()) as shutdown:
        pool = shutdown.register(threadkit.WorkerPool(1, cancel_token=shutdown.token))

        def task() -> bool:
            started.set()
            token = threadkit.current_token()
            assert token is not None
            return token.wait(WAIT)

        running = pool.submit(task)
        queued = [pool.submit(task) for _ in range(5)]
        assert started.wait(WAIT)
        shutdown.request()
    assert running.result(timeout=0) is True
    assert all(future.cancelled() for future in queued)
    assert shutdown.summary is not None
    assert shutdown.summary.cancelled == 5
    assert pool.statistics().workers == 0


def test_a_block_ended_normally_drains_the_registered_pools() -> None:
    """Without a request, leaving waits for queued work, as ``with pool:`` does."""
    gate = threading.Event()
    with GracefulShutdown(signals=()) as shutdown:
        pool = shutdown.register(threadkit.WorkerPool(1))
        futures = [pool.submit(gate.wait, WAIT) for _ in range(3)]
        gate.set()
    assert [future.result(timeout=0) for future in futures] == [True, True, True]
    assert shutdown.summary is not None
    assert shutdown.summary.trigger is None
    assert not shutdown.token.cancelled


def test_cleanups_run_last_first_and_stop_callables_only_when_stopping() -> None:
    """Cleanups run LIFO on every exit; registered callables run (LIFO) only when stopping."""
    order: list[str] = []
    with GracefulShutdown(signals=()) as normal:
        normal.register(lambda: order.append("stop"))
        normal.add_cleanup(lambda: order.append("cleanup 1"))
        normal.add_cleanup(lambda: order.append("cleanup 2"))
    assert order == ["cleanup 2", "cleanup 1"]
    order.clear()
    with GracefulShutdown(signals=()) as stopping:
        stopping.register(lambda: order.append("stop 1"))
        stopping.register(lambda: order.append("stop 2"))
        stopping.add_cleanup(lambda: order.append("cleanup 1"))
        stopping.add_cleanup(lambda: order.append("cleanup 2"))
        stopping.request()
    assert order == ["stop 2", "stop 1", "cleanup 2", "cleanup 1"]


def test_a_failing_cleanup_is_logged_and_the_others_still_run(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A cleanup that raises is logged on the threadkit logger and counted; others run."""
    ran: list[int] = []

    def broken() -> None:
        raise OSError("disk gone")

    with GracefulShutdown(signals=()) as shutdown:
        shutdown.add_cleanup(lambda: ran.append(1))
        shutdown.add_cleanup(broken)
        shutdown.add_cleanup(lambda: ran.append(3))
    assert ran == [3, 1]
    assert shutdown.summary is not None
    assert shutdown.summary.errors == 1
    failures = [r for r in caplog.records if r.name == "threadkit" and r.exc_info]
    assert len(failures) == 1
    assert "broken raised" in failures[0].getMessage()


def test_an_error_in_the_block_runs_the_sequence_and_propagates_unchanged() -> None:
    """An exception leaving the block cancels the token and the queue, then propagates."""
    error = ValueError("bad input")
    gate = threading.Event()
    shutdown = GracefulShutdown(signals=())
    futures: list[Future[bool]] = []

    def block() -> None:
        with shutdown:
            pool = shutdown.register(threadkit.WorkerPool(1))
            futures.append(pool.submit(gate.wait, WAIT))
            futures.append(pool.submit(gate.wait, WAIT))
            gate.set()
            raise error

    with pytest.raises(ValueError) as info:
        block()
    running, queued = futures
    assert info.value is error
    assert shutdown.token.cancelled
    assert running.result(timeout=WAIT) is True
    assert queued.cancelled() or queued.result(timeout=0) is True
    assert shutdown.summary is not None
    assert shutdown.summary.trigger == "error"
    assert shutdown.summary.exit_code is None


def test_grace_running_out_reports_registered_threads_as_stragglers(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A registered thread still running after the grace period is reported with its stack."""
    release = threading.Event()
    thread = threading.Thread(target=release.wait, args=(WAIT,), name="slowpoke")
    thread.start()
    try:
        with GracefulShutdown(grace=0, signals=()) as shutdown:
            shutdown.register(thread)
            shutdown.request()
    finally:
        release.set()
        thread.join(WAIT)
    assert shutdown.summary is not None
    assert shutdown.summary.timed_out
    assert [s.thread_name for s in shutdown.summary.stragglers] == ["slowpoke"]
    assert any("in wait" in line for line in shutdown.summary.stragglers[0].stack)
    assert "grace period of 0 s ran out" in caplog.text


def test_log_lines_on_the_threadkit_logger(caplog: pytest.LogCaptureFixture) -> None:
    """The request, the start and the end of the sequence are logged at INFO."""
    caplog.set_level(logging.INFO, logger="threadkit")
    with GracefulShutdown(grace=3, signals=()) as shutdown:
        shutdown.add_cleanup(lambda: None)
        shutdown.request("maintenance")
    messages = [r.getMessage() for r in caplog.records if r.name == "threadkit"]
    assert messages[0] == "graceful shutdown requested: maintenance"
    assert messages[1] == (
        "graceful shutdown (request): stopping 0 pool(s) and 0 thread(s), grace 3 s"
    )
    assert messages[2].startswith("graceful shutdown (request) finished in ")
    assert messages[2].endswith(": 0 task(s) cancelled, 0 straggler(s), 1 cleanup(s), 0 error(s)")


def test_a_given_token_is_the_one_cancelled() -> None:
    """``token=`` makes a token the shutdown's own; cancelling it starts the sequence."""
    token = threadkit.CancelToken()
    with GracefulShutdown(token=token, signals=()) as shutdown:
        assert shutdown.token is token
        token.cancel("outside")
    assert shutdown.summary is not None
    assert shutdown.summary.trigger == "token"


# -- other ways in ------------------------------------------------------------------------


def test_decorator_runs_the_function_inside_the_block_once() -> None:
    """As a decorator the shutdown wraps the call; the object can be entered only once."""
    shutdown = GracefulShutdown(signals=())

    @shutdown
    def main(x: int) -> int:
        """Double it."""
        assert shutdown.token is not None
        shutdown.request()
        return 2 * x

    assert main(21) == 42
    assert main.__doc__ == "Double it."
    assert shutdown.summary is not None
    assert shutdown.summary.trigger == "request"
    with pytest.raises(RuntimeError, match="already entered"):
        main(1)


def test_run_returns_the_status_of_main() -> None:
    """run() returns what main returned, 0 for None, and lets main's errors through."""
    assert GracefulShutdown(signals=()).run(lambda: None) == 0
    assert GracefulShutdown(signals=()).run(lambda code: code, 3) == 3
    with pytest.raises(ZeroDivisionError):
        GracefulShutdown(signals=()).run(lambda: 1 // 0)


@needs_sigusr1
def test_run_returns_128_plus_n_after_a_signal() -> None:
    """run() turns the signal's SystemExit into its return value."""
    assert GracefulShutdown(signals=[SIGUSR1]).run(signal.raise_signal, SIGUSR1) == 128 + SIGUSR1


# -- bad arguments and misuse -------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "error"),
    [
        ({"grace": -1}, ValueError),
        ({"grace": math.nan}, ValueError),
        ({"grace": math.inf}, ValueError),
        ({"grace": "10"}, TypeError),
        ({"signals": [99999]}, ValueError),
        ({"signals": [getattr(signal, "SIGKILL", 9)]}, ValueError),
        ({"signals": ["SIGINT"]}, TypeError),
        ({"signals": "SIGINT"}, TypeError),
        ({"signals": [True]}, TypeError),
        ({"signals": 2}, TypeError),
        ({"hup": 1}, TypeError),
        ({"token": object()}, TypeError),
    ],
    ids=lambda value: repr(value) if not isinstance(value, type) else value.__name__,
)
def test_bad_arguments_fail_at_the_constructor(kwargs: dict[str, Any], error: type) -> None:
    """Each bad argument raises at once, naming the parameter."""
    with pytest.raises(error, match=next(iter(kwargs))):
        GracefulShutdown(**kwargs)


def test_grace_none_means_no_limit() -> None:
    """``grace=None`` is accepted and waits as long as the running tasks take."""
    assert GracefulShutdown(grace=None).grace is None


def test_register_refuses_other_objects_and_late_calls() -> None:
    """register() takes pools, threads and callables only, and nothing once leaving began."""
    shutdown = GracefulShutdown(signals=())
    with pytest.raises(TypeError, match="WorkerPool, a Thread or a callable"):
        shutdown.register(42)  # type: ignore[type-var]
    with pytest.raises(TypeError, match="callable"):
        shutdown.add_cleanup(42)  # type: ignore[arg-type]
    with shutdown:
        pass
    with pytest.raises(RuntimeError, match="being left"):
        shutdown.register(print)
    with pytest.raises(RuntimeError, match="being left"):
        shutdown.add_cleanup(print)


def test_shutdown_requested_is_a_quiet_system_exit() -> None:
    """ShutdownRequested carries 128 + n as its exit code and names its signal."""
    exc = ShutdownRequested(signal.SIGTERM)
    assert isinstance(exc, SystemExit)
    assert not isinstance(exc, Exception)
    assert exc.code == 143
    assert exc.signal is signal.SIGTERM
    assert str(exc) == "SIGTERM received"


def test_repr_shows_the_state() -> None:
    """The repr names the phase, the signals and what is registered."""
    shutdown = GracefulShutdown(grace=2, signals=[signal.SIGTERM])
    assert repr(shutdown) == (
        "<threadkit.GracefulShutdown not entered signals=SIGTERM grace=2.0"
        " pools=0 threads=0 cleanups=0>"
    )
    shutdown.request()
    assert "not entered requested" in repr(shutdown)


# -- automatic registration of pools ------------------------------------------------------


def test_a_pool_registers_with_the_innermost_running_shutdown_only() -> None:
    """A pool made in a block is the innermost running shutdown's; one made before is not."""
    with threadkit.WorkerPool(1) as outside:
        with GracefulShutdown(signals=()) as outer, GracefulShutdown(signals=()) as inner:
            pool = threadkit.WorkerPool(1)
            assert list(inner._pools.values()) == [pool]
            assert not outer._pools
            inner.request()
            assert pool.cancel_token.cancelled
            assert not outside.cancel_token.cancelled
        assert outside.submit(int, "1").result(WAIT) == 1


def test_pools_made_inside_the_block_are_registered_automatically() -> None:
    """A pool made inside the block gets the shutdown's token as its parent."""
    with GracefulShutdown(signals=()) as shutdown, threadkit.WorkerPool(1) as pool:
        shutdown.request()
        assert pool.cancel_token.cancelled


def test_a_pool_made_outside_any_block_is_not_registered() -> None:
    """Without a running block a new pool keeps a token of its own."""
    shutdown = GracefulShutdown(signals=())
    with threadkit.WorkerPool(1) as pool:
        shutdown.request()
        assert not pool.cancel_token.cancelled
    assert not shutdown._pools
