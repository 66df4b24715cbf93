"""WorkerPool scenarios that need a whole interpreter: exit, fork and Ctrl-C.

Each test runs a script in a child interpreter. Scripts that get a signal print ``READY``
at the moment the main thread enters the wait under test (found with a profile hook on
the C call that blocks), so the parent never signals too early; everything the parent
does has a timeout.
"""

from __future__ import annotations

import os
import selectors
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from helpers import INTERRUPTED_AT

ROOT = Path(__file__).resolve().parents[1]
WAIT = 20.0  # generous: a child interpreter starts and imports threadkit

posix_only = pytest.mark.skipif(sys.platform == "win32", reason="needs POSIX signals")


def child_env() -> dict[str, str]:
    """The environment of a child interpreter that imports threadkit from this checkout."""
    path = os.pathsep.join(filter(None, [str(ROOT / "src"), os.environ.get("PYTHONPATH")]))
    return {**os.environ, "PYTHONPATH": path, "PYTHONDONTWRITEBYTECODE": "1"}


def run_script(script: str, timeout: float = WAIT) -> subprocess.CompletedProcess[str]:
    """Run ``script`` in a child interpreter and return what it did."""
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(script)],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=child_env(),
        check=False,
    )


def run_and_interrupt(script: str) -> subprocess.CompletedProcess[str]:
    """Run ``script``, send it one SIGINT once it prints READY, and return what it did."""
    with subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(script)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=child_env(),
    ) as proc:
        try:
            assert proc.stdout is not None
            with selectors.DefaultSelector() as selector:
                selector.register(proc.stdout, selectors.EVENT_READ)
                assert selector.select(WAIT), "the child never printed READY"
            line = proc.stdout.readline()
            assert line.strip() == "READY", line
            proc.send_signal(signal.SIGINT)
            out, err = proc.communicate(timeout=WAIT)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.communicate()
    return subprocess.CompletedProcess(proc.args, proc.returncode, line + out, err)


# Prints READY when the main thread makes the blocking C call named in BLOCKING_CALLS
# from a Python function named in BLOCKING_FRAMES.
READY_WHEN_BLOCKED = """
import sys

def _ready_when_blocked(frame, event, arg):
    if (
        event == "c_call"
        and getattr(arg, "__name__", "") in BLOCKING_CALLS
        and frame.f_code.co_name in BLOCKING_FRAMES
        and all(name in frame.f_locals for name in NEEDED_LOCALS)
    ):
        sys.setprofile(None)
        print("READY", flush=True)

def announce_when_blocked():
    sys.setprofile(_ready_when_blocked)
"""


# -- interpreter exit ---------------------------------------------------------------------


@pytest.mark.parametrize("executor", ["concurrent.futures.ThreadPoolExecutor", "WorkerPool"])
def test_interpreter_exit_finishes_running_and_queued_work(executor: str) -> None:
    """A script ending without shutdown still runs its running and queued tasks, as the stdlib."""
    result = run_script(
        f"""
        import atexit, threading
        import concurrent.futures
        from threadkit import WorkerPool

        pool = {executor}(2)
        exiting = threading.Event()
        lock = threading.Lock()
        done = []

        def task(i):
            if i < 2:
                assert exiting.wait(10)  # still running when the interpreter exits
            with lock:
                done.append(i)

        for i in range(10):
            pool.submit(task, i)
        # Runs at interpreter exit just before the pools' own exit wait (the threading
        # exit hooks run newest first), so tasks 0 and 1 are running and 2..9 queued then.
        threading._register_atexit(exiting.set)
        atexit.register(lambda: print("DONE", sorted(done), flush=True))
        """
    )
    assert result.returncode == 0, result.stderr
    assert "DONE [0, 1, 2, 3, 4, 5, 6, 7, 8, 9]" in result.stdout
    assert "Exception ignored" not in result.stderr


@pytest.mark.parametrize("executor", ["concurrent.futures.ThreadPoolExecutor", "WorkerPool"])
def test_submit_after_interpreter_shutdown_raises_the_stdlib_error(executor: str) -> None:
    """At exit, submit raises the stdlib's own RuntimeError: same type, same printed words."""
    result = run_script(
        f"""
        import atexit
        import concurrent.futures
        from threadkit import PoolShutDown, WorkerPool

        @atexit.register
        def late():
            try:
                pool.submit(print, "never")
            except RuntimeError as exc:
                print("TYPE", type(exc).__name__, isinstance(exc, PoolShutDown), flush=True)
                raise

        pool = {executor}(2)
        pool.submit(int, 42).result()
        """
    )
    assert "TYPE RuntimeError False" in result.stdout
    assert "never" not in result.stdout
    # The stdlib pool says "after shutdown" here (its workers flag it at exit) and
    # "after interpreter shutdown" elsewhere; CPython's own test reads this prefix.
    assert "RuntimeError: cannot schedule new futures after" in result.stderr


# For child scripts that fork: wait for the forked child, at most 15 s, and print how it
# ended ("CHILD EXIT <code>", or "CHILD HUNG" after killing it, so no child outlives the
# test).
REPORT_CHILD = """
import os, time

def report_child(pid):
    deadline = time.monotonic() + 15
    while True:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            print("CHILD EXIT", os.waitstatus_to_exitcode(status), flush=True)
            return
        if time.monotonic() > deadline:
            os.kill(pid, 9)
            os.waitpid(pid, 0)
            print("CHILD HUNG", flush=True)
            return
        time.sleep(0.02)
"""


# -- fork ---------------------------------------------------------------------------------


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_a_pool_inherited_across_fork_refuses_work_clearly() -> None:
    """After a fork the child's inherited pool raises BrokenPool on submit and map."""
    result = run_script(
        """
        import os, sys, warnings
        warnings.simplefilter("ignore", DeprecationWarning)  # fork with threads running
        import threadkit

        pool = threadkit.WorkerPool(2, max_queue=4)
        assert pool.submit(pow, 2, 5).result(10) == 32
        pid = os.fork()
        if pid == 0:
            code = 0
            for call in (lambda: pool.submit(pow, 2, 6), lambda: pool.map(abs, [1])):
                try:
                    call()
                except threadkit.BrokenPool as exc:
                    print("CHILD REFUSED:", exc, flush=True)
                else:
                    print("CHILD ACCEPTED", flush=True)
                    code = 3
            print("CHILD SHUTDOWN", pool.shutdown(wait=True, timeout=5).timed_out, flush=True)
            sys.stdout.flush()
            os._exit(code)
        _, status = os.waitpid(pid, 0)
        print("CHILD EXIT", os.waitstatus_to_exitcode(status), flush=True)
        print("PARENT", pool.submit(pow, 2, 7).result(10), flush=True)
        pool.shutdown()
        """
    )
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "CHILD ACCEPTED" not in out
    assert out.count("CHILD REFUSED:") == 2
    assert "os.fork()" in out  # the message says what happened
    assert "CHILD SHUTDOWN False" in out
    assert "CHILD EXIT 0" in out
    assert "PARENT 128" in out


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_a_forked_child_that_exits_normally_does_not_hang() -> None:
    """A forked child that returns normally (running the exit hooks) exits 0 at once."""
    result = run_script(
        """
        import os, warnings
        warnings.simplefilter("ignore", DeprecationWarning)
        import threadkit

        pool = threadkit.WorkerPool(2)
        assert pool.submit(abs, -1).result(10) == 1
        pid = os.fork()
        if pid == 0:
            raise SystemExit(0)  # the child's interpreter exit runs the pool's exit hook
        _, status = os.waitpid(pid, 0)
        print("CHILD EXIT", os.waitstatus_to_exitcode(status), flush=True)
        pool.shutdown()
        """
    )
    assert result.returncode == 0, result.stderr
    assert "CHILD EXIT 0" in result.stdout


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_futures_pending_at_fork_fail_in_the_child() -> None:
    """In a forked child, futures the pool had accepted fail with BrokenPool instead of hanging."""
    result = run_script(
        """
        import os, sys, threading, warnings
        import concurrent.futures as cf
        warnings.simplefilter("ignore", DeprecationWarning)
        import threadkit

        pool = threadkit.WorkerPool(1)
        started, gate = threading.Event(), threading.Event()
        running = pool.submit(lambda: (started.set(), gate.wait(10)))
        assert started.wait(10)
        queued = pool.submit(abs, -1)
        pid = os.fork()
        if pid == 0:
            done, pending = cf.wait([running, queued], timeout=0)
            kinds = sorted(type(f.exception(0)).__name__ for f in done)
            print("CHILD PENDING", len(pending), "DONE", kinds, flush=True)
            os._exit(0)
        os.waitpid(pid, 0)
        gate.set()
        pool.shutdown()
        """
    )
    assert result.returncode == 0, result.stderr
    assert "CHILD PENDING 0 DONE ['BrokenPool', 'BrokenPool']" in result.stdout


# -- Ctrl-C ---------------------------------------------------------------------------------


@posix_only
def test_one_ctrl_c_inside_with_cancels_the_backlog_and_leaves_within_the_grace() -> None:
    """SIGINT in `with pool:` cancels the queue and leaves after shutdown_grace, not the backlog."""
    result = run_and_interrupt(
        READY_WHEN_BLOCKED
        + """
import atexit, threading, time
from threadkit import WorkerPool

BLOCKING_CALLS, BLOCKING_FRAMES, NEEDED_LOCALS = ("acquire",), ("wait",), ("saved_state",)
ran = []
started, release = threading.Event(), threading.Event()

def hang():
    started.set()
    release.wait(30)  # never released: only the grace bounds the wait for it

atexit.register(lambda: print("QUEUED RAN", len(ran), flush=True))
pool = WorkerPool(1, shutdown_grace=0.2)
futures = []
interrupted = None
try:
    with pool:
        pool.submit(hang)
        futures = [pool.submit(ran.append, i) for i in range(200)]
        assert started.wait(10)
        announce_when_blocked()
        try:
            # In slices: a SIGINT landing after READY but before a C-level wait starts
            # would otherwise be seen only when that wait ends (30 s later).
            for _ in range(300):
                threading.Event().wait(0.1)
        except KeyboardInterrupt:
            interrupted = time.monotonic()
            raise
finally:
    if interrupted is not None:
        print("LEFT WITH AFTER %.3f" % (time.monotonic() - interrupted), flush=True)
    print("CANCELLED", sum(f.cancelled() for f in futures), flush=True)
"""
    )
    # An unhandled KeyboardInterrupt ends CPython by re-raising SIGINT on itself.
    assert result.returncode == -signal.SIGINT, result.stderr
    assert "KeyboardInterrupt" in result.stderr
    assert "Traceback" in result.stderr
    assert "Exception ignored" not in result.stderr
    assert "CANCELLED 200" in result.stdout
    assert "QUEUED RAN 0" in result.stdout
    left_after = float(result.stdout.split("LEFT WITH AFTER ")[1].split()[0])
    assert 0.2 <= left_after < 2.0


BLOCKED_CALL_SCRIPT = (
    READY_WHEN_BLOCKED
    + """
import threading, time
import concurrent.futures as cf
from threadkit import WorkerPool

WHAT = {what!r}
if WHAT == "result":
    BLOCKING_CALLS, BLOCKING_FRAMES, NEEDED_LOCALS = ("acquire",), ("wait",), ("saved_state",)
else:
    BLOCKING_CALLS = ("get",)
    BLOCKING_FRAMES = ("_fill", "_take", "_block", "get_interruptibly")
    NEEDED_LOCALS = ()

started, release = threading.Event(), threading.Event()

def hold(value=None):
    started.set()
    assert release.wait(10)
    return value

pool = WorkerPool(1, max_queue=2)
futures = [pool.submit(hold)]
assert started.wait(10)
if WHAT == "submit":
    futures += [pool.submit(int, "1"), pool.submit(int, "2")]  # the queue is full
announce_when_blocked()
began = time.monotonic()
try:
    if WHAT == "result":
        futures[0].result()
    elif WHAT == "map":
        for _ in pool.map(hold, range(5)):
            pass
    else:
        futures.append(pool.submit(int, "3"))
    print("NOT INTERRUPTED", flush=True)
except KeyboardInterrupt:
    print("INTERRUPTED AFTER %.3f" % (time.monotonic() - began), flush=True)
release.set()
assert not cf.wait(futures, timeout=10).not_done
print("FREE PLACES", pool._core.places.free(), flush=True)
report = pool.shutdown(wait=True, timeout=10)
stats = pool.statistics()
print("ADDS UP", stats.submitted == stats.completed + stats.failed + stats.cancelled, flush=True)
print("STRAGGLERS", len(report.stragglers), "SUBMITTED", stats.submitted, flush=True)
"""
)


@posix_only
@pytest.mark.parametrize(
    ("what", "submitted"),
    [("result", 1), ("map", 6), ("submit", 3)],
    ids=["future.result", "map-iteration", "submit-on-full-queue"],
)
def test_ctrl_c_interrupts_a_blocked_main_thread_promptly(what: str, submitted: int) -> None:
    """SIGINT raises KeyboardInterrupt promptly in result(), map iteration and a blocked submit."""
    result = run_and_interrupt(BLOCKED_CALL_SCRIPT.format(what=what))
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "NOT INTERRUPTED" not in out
    took = float(out.split("INTERRUPTED AFTER ")[1].split()[0])
    assert took < 2.0
    assert "FREE PLACES 2" in out  # the interrupted submit took no queue place
    assert "ADDS UP True" in out  # nothing stranded: every accepted item is accounted for
    assert f"STRAGGLERS 0 SUBMITTED {submitted}" in out


HUNG_AT_EXIT_SCRIPT = (
    READY_WHEN_BLOCKED
    + """
import atexit, threading
from threadkit import WorkerPool

# Thread.join waits in _wait_for_tstate_lock's lock.acquire before 3.13, in the C
# _ThreadHandle.join called from Thread.join since.
BLOCKING_CALLS = ("acquire", "join")
BLOCKING_FRAMES = ("_wait_for_tstate_lock", "join")
NEEDED_LOCALS = ()
pool = WorkerPool(1, "hung")
started = threading.Event()

def hang():
    started.set()
    threading.Event().wait(60)

pool.submit(hang)
assert started.wait(10)
pool.submit(int)  # queued behind the hung task
atexit.register(lambda: print("ATEXIT RAN", flush=True))
# The threading exit hooks run newest first: this one runs just before the pool's wait.
threading._register_atexit(announce_when_blocked)
"""
)


@posix_only
def test_ctrl_c_during_the_exit_wait_for_a_hung_task_exits_130() -> None:
    """SIGINT while exit waits for a hung task exits with 130, runs atexit and prints no noise."""
    result = run_and_interrupt(HUNG_AT_EXIT_SCRIPT)
    assert result.returncode == 130, result.stderr
    assert "ATEXIT RAN" in result.stdout
    assert "Exception ignored" not in result.stderr
    assert "Traceback" not in result.stderr


@posix_only
def test_ctrl_c_during_the_exit_wait_names_the_abandoned_workers() -> None:
    """The warning logged when Ctrl-C abandons a hung task at exit names its worker."""
    result = run_and_interrupt(HUNG_AT_EXIT_SCRIPT)
    assert result.returncode == 130, result.stderr
    assert "hung_0" in result.stderr


@pytest.mark.slow
def test_abandoned_maps_collected_by_ordinary_allocations_do_not_deadlock() -> None:
    """Abandoned started maps in reference cycles never hang whenever the collector runs."""
    result = run_script(
        """
        import faulthandler, sys, threading
        from threadkit import WorkerPool

        faulthandler.dump_traceback_later(3, exit=True)  # a deadlock ends the child
        pool = WorkerPool(1)
        gate = threading.Event()

        def work(i):
            if i:
                gate.wait(10)
            return i

        pool.submit(work, 1)  # holds the only worker

        class Holder:
            pass

        for _ in range(20000):
            holder = Holder()
            holder.cycle = holder
            holder.results = pool.map(work, range(3))
            holder.results._started = True  # as after a first next()
            del holder
            pool.statistics()  # allocates under the pool's lock
        faulthandler.cancel_dump_traceback_later()
        print("NO DEADLOCK", flush=True)
        gate.set()
        pool.shutdown()
        """
    )
    assert "NO DEADLOCK" in result.stdout, result.stderr[-2000:]


@pytest.mark.slow
@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_every_future_resolves_in_children_forked_while_threads_submit() -> None:
    """Forks while two threads submit non-stop (tasks, caller_runs tasks, a map): in each
    child, every future that submit had returned before the fork resolves.

    Regression: a task a worker had just taken from the queue, or had been handed, lived
    only in that worker's frame, which the child does not have; it stayed pending.
    """
    result = run_script(
        """
        import os, sys, threading, warnings
        import concurrent.futures as cf
        warnings.simplefilter("ignore", DeprecationWarning)  # fork with threads running
        import threadkit

        pool = threadkit.WorkerPool(3, max_queue=8, overflow="caller_runs")
        futures = []
        stop = threading.Event()

        def submitter():
            while not stop.is_set():
                futures.append(pool.submit(abs, -1))

        def mapper():
            while not stop.is_set():
                for _ in pool.map(abs, range(20), buffersize=4):
                    pass

        threads = [threading.Thread(target=submitter) for _ in range(2)]
        threads.append(threading.Thread(target=mapper))
        for thread in threads:
            thread.start()
        stuck = 0
        for _ in range(40):
            seen = list(futures[-2000:])  # what submit had returned so far
            pid = os.fork()
            if pid == 0:
                _, not_done = cf.wait(seen, timeout=5)
                os._exit(min(len(not_done), 100))
            _, status = os.waitpid(pid, 0)
            stuck += os.waitstatus_to_exitcode(status)
        stop.set()
        for thread in threads:
            thread.join(10)
        pool.shutdown()
        print("STUCK", stuck, flush=True)
        """,
        timeout=240,
    )
    assert result.returncode == 0, result.stderr
    assert "STUCK 0" in result.stdout, result.stdout


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_limiters_tokens_and_groups_inherited_across_fork_neither_hang_nor_lose_permits() -> None:
    """At the fork, other threads hold each limiter's lock (and a cancel token's) or wait
    in its acquire. In the child those threads do not exist: no call hangs on the lock
    they held, and no permit or token goes to a waiter that is not there.

    White-box for the lock: nothing public holds a limiter's lock for long, so a thread
    takes ``_lock`` itself, as a thread inside ``acquire`` would for a moment.
    """
    result = run_script(
        REPORT_CHILD
        + textwrap.dedent(
            """
        import os, sys, threading, time, warnings
        warnings.simplefilter("ignore", DeprecationWarning)  # fork with threads running
        import threadkit

        now = [0.0]
        clock = lambda: now[0]
        wait = lambda event, delay: event.wait(0.05)  # the clock is the test's: poll it
        sem = threadkit.Semaphore(1)
        cap = threadkit.CapacityLimiter(2)
        keyed = threadkit.KeyedLimiter(1)
        rate = threadkit.RateLimiter(1.0, 1, clock=clock, wait=wait)
        keyed_rate = threadkit.KeyedRateLimiter(1.0, 1, clock=clock, wait=wait)
        token = threadkit.CancelToken()
        token.wait(0)  # makes its event
        unregister = token.add_callback(lambda token: print("CALLBACK RAN", flush=True))
        group = threadkit.TaskGroup()
        shutdown = threadkit.GracefulShutdown()
        release = threading.Event()
        ready = threading.Barrier(9)

        def hold_lock(lock):
            with lock:
                ready.wait(10)
                release.wait(10)

        # The semaphore and the keyed limiter: main holds the only permit, a thread waits.
        sem.acquire()
        keyed.acquire("k")
        threads = [
            threading.Thread(target=sem.acquire),
            threading.Thread(target=keyed.acquire, args=("k",)),
            # The capacity limiter: a thread borrows a token and keeps it.
            threading.Thread(target=lambda: (cap.acquire(), release.wait(10), cap.release())),
            # The rate limiters: main took the token, a thread sleeps on a reservation.
            threading.Thread(target=lambda: (rate.acquire(), None)),
            threading.Thread(target=lambda: (keyed_rate.acquire("k"), None)),
        ]
        rate.acquire()
        keyed_rate.acquire("k")
        for thread in threads:
            thread.start()
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and not (
            sem.statistics().waiting == 1
            and keyed.statistics().waiting == 1
            and cap.statistics().borrowed == 1
            and rate.statistics().waiting == 1
            and keyed_rate.statistics().waiting == 1
        ):
            time.sleep(0.01)
        # And a thread holds each limiter's lock, and a token's, a group's and a block's.
        holders = [
            threading.Thread(target=hold_lock, args=(lock,))
            for lock in (
                sem._lock, cap._lock, keyed._lock, rate._engine.lock, keyed_rate._engine.lock,
                token._lock, group._lock, shutdown._lock,
            )
        ]
        for holder in holders:
            holder.start()
        ready.wait(10)
        pid = os.fork()
        if pid == 0:
            sem.release()
            keyed.release("k")
            now[0] += 1.0
            unregister()
            token.cancel("in the child")
            shutdown.add_cleanup(print)
            group.cancel("in the child")
            print("CHILD", sem.try_acquire(), keyed.try_acquire("k"), cap.available,
                  rate.try_acquire(), keyed_rate.try_acquire("k"), token.wait(0), flush=True)
            os._exit(0)
        report_child(pid)
        release.set()
        sem.release()
        keyed.release("k")
        now[0] += 10.0
        for thread in threads + holders:
            thread.join(10)
        print("PARENT", all(not t.is_alive() for t in threads + holders), flush=True)
        """
        ),
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert "CHILD True True 2 True True True" in result.stdout, result.stdout
    assert "CALLBACK RAN" not in result.stdout
    assert "CHILD EXIT 0" in result.stdout
    assert "PARENT True" in result.stdout


SUBMIT_AT_EVERY_POINT = (
    r"""
import sys, threading, time
import threadkit

PATHS = tuple(f"threadkit/{name}.py" for name in (
    "_core", "_pool", "_threads", "_worker", "_futures", "_tasks", "_process", "_locks"
))

"""
    + INTERRUPTED_AT
    + r"""
problems = []

def scenario(name, make, prepare):
    for k in range(1, 400):
        pool = make()
        prepare(pool)
        ran = threading.Event()
        kind, _ = interrupted_at(k, lambda: pool.submit(ran.set))
        report = pool.shutdown(wait=True, timeout=10)
        s = pool.statistics()
        if report.timed_out:
            problems.append(f"{name} at point {k}: shutdown timed out")
        if s.submitted != s.completed + s.failed + s.cancelled or s.queued or s.busy:
            problems.append(f"{name} at point {k}: {s}")
        if kind == "returned":
            if not ran.is_set():
                problems.append(f"{name} at point {k}: accepted, never ran")
            return k

def warm_idle(pool):
    pool.submit(abs, 1).result()
    deadline = time.monotonic() + 10
    while pool.statistics().idle == 0 and time.monotonic() < deadline:
        time.sleep(0.001)

def busy(pool):
    started = threading.Barrier(2)
    pool.submit(lambda: (started.wait(10), time.sleep(0.05)))
    started.wait(10)

def full(pool):
    busy(pool)
    pool.submit(abs, 1)  # takes the one queue place

points = [
    scenario("start a worker", lambda: threadkit.WorkerPool(2), lambda p: None),
    scenario("hand to an idle worker", lambda: threadkit.WorkerPool(2), warm_idle),
    scenario("queue", lambda: threadkit.WorkerPool(1), busy),
    scenario("bounded, start", lambda: threadkit.WorkerPool(2, max_queue=2), lambda p: None),
    scenario("bounded, queue", lambda: threadkit.WorkerPool(1, max_queue=2), busy),
    scenario(
        "bounded, full: runs in the caller",
        lambda: threadkit.WorkerPool(1, max_queue=1, overflow="caller_runs"),
        full,
    ),
]
print("POINTS", points, flush=True)
print("PROBLEMS", problems, flush=True)
"""
)


@pytest.mark.skipif(
    sys.version_info >= (3, 12),
    reason="the profile hook's c_return events stand for the points a signal handler can"
    " run only before 3.12 (sys.monitoring reports them elsewhere)",
)
def test_a_ctrl_c_at_any_point_of_submit_keeps_the_books_and_the_exit() -> None:
    """A KeyboardInterrupt raised at each point of ``submit`` where a signal handler could
    run (injected by a profile hook, in a child interpreter), on every path a task takes
    into the pool: afterwards the pool shuts down promptly and its statistics add up.

    Regression: an interrupt right after a task was queued, or after a worker was
    started for it, left ``submitted`` short (``submitted=1 completed=2``), and one after
    the start left a worker the shutdown did not wait for.
    """
    result = run_script(SUBMIT_AT_EVERY_POINT, timeout=300)
    assert result.returncode == 0, result.stderr
    assert "PROBLEMS []" in result.stdout, result.stdout
    assert "None" not in result.stdout.split("POINTS")[1].splitlines()[0], result.stdout


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_a_task_group_open_at_fork_ends_in_the_child() -> None:
    """Forked inside two TaskGroup blocks, one whose task runs in a pool thread (no
    limit) and one with a task held by ``limit`` while another thread holds the group's
    lock: in the child both blocks end, raising the pool's ``BrokenPool``.

    Regression: the running task's future, and the held one's, never ended in the child
    (the block waited forever), and failing the pool's futures in the fork hook took the
    group's lock before it was made anew.
    """
    result = run_script(
        REPORT_CHILD
        + textwrap.dedent(
            """
        import os, threading, time, warnings
        warnings.simplefilter("ignore", DeprecationWarning)  # fork with threads running
        import threadkit

        release, running, locked = threading.Event(), threading.Barrier(3), threading.Event()
        task = lambda: (running.wait(10), release.wait(10))
        plain = threadkit.TaskGroup(threadkit.WorkerPool(1))
        limited = threadkit.TaskGroup(threadkit.WorkerPool(1), limit=1)
        plain.__enter__()
        limited.__enter__()
        plain.submit(task)
        limited.submit(task)
        limited.submit(abs, 1)  # held by the group until the first one ends
        running.wait(10)

        def hold():
            with limited._lock:
                locked.set()
                release.wait(10)

        holder = threading.Thread(target=hold)
        holder.start()
        locked.wait(10)
        pid = os.fork()
        if pid == 0:
            for name, group in (("plain", plain), ("limited", limited)):
                try:
                    group.__exit__(None, None, None)
                except ExceptionGroup as eg:
                    print("CHILD", name, [type(e).__name__ for e in eg.exceptions], flush=True)
            os._exit(0)
        report_child(pid)
        release.set()
        holder.join(10)
        limited.__exit__(None, None, None)
        plain.__exit__(None, None, None)
        print("PARENT DONE", flush=True)
        """
        ),
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "CHILD plain ['BrokenPool']" in out, out
    assert "CHILD limited ['BrokenPool']" in out, out
    assert "CHILD EXIT 0" in out
    assert "PARENT DONE" in out
