"""process_on: a Worker job over nodes (a WorkerPool double, processes, a Dask cluster)."""

from __future__ import annotations

import functools
import itertools
import os
import pickle
import signal
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import BrokenExecutor, Executor, Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path
from typing import Any

import pytest

import distribute_jobs as jobs
import threadkit
from conftest import THREAD_EXIT_GRACE
from helpers import WAIT

TESTS = str(Path(__file__).resolve().parent)


# Threads that a Dask cluster (and the multiprocessing queues of its nanny) start and
# keep for as long as the cluster lives, made lazily during a test: not the test's doing.
CLUSTER_THREADS = ("QueueFeederThread", "AsyncProcess ", "Dask", "TCP-Executor", "IO loop")


@pytest.fixture(autouse=True)
def no_leftover_threads() -> Iterator[None]:
    """As conftest's guard, except for the threads a running Dask cluster keeps."""
    before = set(threading.enumerate())
    yield
    deadline = time.monotonic() + THREAD_EXIT_GRACE
    leftover = [
        t
        for t in threading.enumerate()
        if t not in before and t.is_alive() and not t.name.startswith(CLUSTER_THREADS)
    ]
    for thread in leftover:
        thread.join(max(0.0, deadline - time.monotonic()))
    alive = [t.name for t in leftover if t.is_alive()]
    if alive:
        pytest.fail(f"test left threads running: {alive}")


@pytest.fixture(autouse=True)
def no_node_pools_left() -> Iterator[None]:
    """Shut down the node pools a test made in this process (their threads must end)."""
    yield
    threadkit.close_node_pools(timeout=WAIT)


@pytest.fixture
def nodes() -> Iterator[threadkit.WorkerPool]:
    """Two in-process 'nodes': a WorkerPool is an Executor too (the test double)."""
    with threadkit.WorkerPool(2, thread_name_prefix="node") as pool:
        yield pool


def counted(n: int | None, reads: list[int]) -> Iterator[int]:
    """Yield 0, 1, ... (``n`` items, or endlessly), recording each read."""
    for i in itertools.count() if n is None else range(n):
        reads.append(i)
        yield i


class Gated(threadkit.Worker[int, int]):
    """Blocks every item until the test opens ``gate``; reports when one started."""

    started = threading.Event()
    gate = threading.Event()

    def process(self, item: int) -> int:
        Gated.started.set()
        assert Gated.gate.wait(WAIT), "gate never opened"
        return item


@pytest.fixture
def gated() -> Iterator[type[Gated]]:
    Gated.started.clear()
    Gated.gate.clear()
    yield Gated
    Gated.gate.set()


class FailFirst(Executor):
    """An executor whose first ``failures`` batches are lost as a whole (a dead node)."""

    def __init__(self, inner: Executor, failures: int) -> None:
        self.inner = inner
        self.failures = failures
        self.submits = 0

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Future[Any]:
        self.submits += 1
        if self.failures:
            self.failures -= 1
            lost: Future[Any] = Future()
            lost.set_exception(BrokenExecutor("node lost"))
            return lost
        return self.inner.submit(fn, *args, **kwargs)


# -- in process: the behaviour, with a WorkerPool as the nodes --------------------------


def test_results_come_in_input_order(nodes: threadkit.WorkerPool) -> None:
    """Ordered results match the input, across many small batches."""
    out = list(threadkit.process_on(nodes, jobs.Double, range(1000), threads=4, chunksize=7))
    assert out == [2 * i for i in range(1000)]


def test_unordered_yields_every_result_once(nodes: threadkit.WorkerPool) -> None:
    """ordered=False yields each item's result exactly once."""
    it = threadkit.process_on(
        nodes, jobs.Double, range(500), threads=3, chunksize=10, ordered=False
    )
    assert sorted(it) == [2 * i for i in range(500)]


@pytest.mark.usefixtures("fast_switching")
@pytest.mark.parametrize("ordered", [True, False])
@pytest.mark.parametrize(("chunksize", "buffersize"), [(1, 1), (3, 2), (7, 5), (50, 1)])
def test_every_window_and_batch_size_yields_each_result_once(
    nodes: threadkit.WorkerPool, chunksize: int, buffersize: int, ordered: bool
) -> None:
    """Any chunksize/buffersize, ordered or not, with threads switching fast: all once."""
    it = threadkit.process_on(
        nodes,
        jobs.Double,
        iter(range(301)),
        threads=3,
        chunksize=chunksize,
        buffersize=buffersize,
        ordered=ordered,
    )
    out = list(it)
    expected = [2 * i for i in range(301)]
    assert (out if ordered else sorted(out)) == expected


def test_empty_input_yields_nothing(nodes: threadkit.WorkerPool) -> None:
    """No items: no batch is submitted and iteration stops at once."""
    assert list(threadkit.process_on(nodes, jobs.Double, [], threads=2)) == []
    assert nodes.statistics().submitted == 0


def test_node_pool_is_reused_across_batches_and_calls(nodes: threadkit.WorkerPool) -> None:
    """setup runs once per node thread, not once per batch, and teardown at close."""
    jobs.setups.clear()
    jobs.teardowns.clear()
    for _ in range(3):
        out = list(threadkit.process_on(nodes, jobs.Double, range(200), threads=2, chunksize=5))
        assert len(out) == 200
    assert 1 <= len(jobs.setups) <= 2  # one node process here: one pool of 2 threads
    assert threadkit.close_node_pools(timeout=WAIT) == 1
    assert sorted(jobs.teardowns) == sorted(jobs.setups)


def test_item_failure_is_raised_at_its_turn(nodes: threadkit.WorkerPool) -> None:
    """An item's exception is raised after the results before it, as process() does."""
    items = [*range(25), jobs.BAD, *range(25, 50)]
    it = threadkit.process_on(nodes, jobs.Double, items, threads=2, chunksize=10)
    got: list[int] = []
    with pytest.raises(ValueError, match="-1") as info:
        got.extend(it)
    assert got == [2 * i for i in range(25)]
    assert type(info.value) is ValueError
    assert list(it) == []  # the iteration is over


def test_unpicklable_item_exception_becomes_a_described_error(
    nodes: threadkit.WorkerPool,
) -> None:
    """An exception that cannot travel back is replaced by a RuntimeError naming it."""
    it = threadkit.process_on(nodes, jobs.RaisesUnpicklable, [1], threads=1)
    with pytest.raises(RuntimeError, match="Unpicklable"):
        next(it)


def test_failing_setup_fails_the_items_with_broken_pool(nodes: threadkit.WorkerPool) -> None:
    """A job whose setup fails on the node: its items fail with BrokenPool."""
    it = threadkit.process_on(nodes, jobs.FailingSetup, range(10), threads=2, chunksize=5)
    with pytest.raises(threadkit.BrokenPool) as info:
        next(it)
    assert isinstance(info.value.__cause__, OSError)


def test_input_is_read_lazily_with_bounded_batches_in_flight(
    nodes: threadkit.WorkerPool,
) -> None:
    """An endless input: only buffersize batches are read ahead of the consumer."""
    reads: list[int] = []
    it = threadkit.process_on(
        nodes, jobs.Double, counted(None, reads), threads=2, chunksize=10, buffersize=3
    )
    assert len(reads) == 30  # the first window is submitted at the call
    for expected, value in zip(range(100), it, strict=False):
        assert value == 2 * expected
        assert len(reads) <= 100 + 30 + 10
    it.close()
    read = len(reads)
    assert list(it) == []
    assert len(reads) == read  # closing stops reading input


def test_close_cancels_batches_not_started(gated: type[Gated]) -> None:
    """close() cancels every submitted batch that has not started and reads no more."""
    reads: list[int] = []
    with threadkit.WorkerPool(1) as one_node:
        it = threadkit.process_on(
            one_node, gated, counted(100, reads), threads=1, chunksize=1, buffersize=4
        )
        assert gated.started.wait(WAIT)
        it.close()
        gated.gate.set()
    assert reads == [0, 1, 2, 3]
    assert one_node.statistics().cancelled == 3
    assert one_node.statistics().completed == 1


def test_dropping_the_iterator_cancels_batches_not_started(gated: type[Gated]) -> None:
    """An iterator nobody references any more cancels its unstarted batches."""
    with threadkit.WorkerPool(1) as one_node:
        it = threadkit.process_on(one_node, gated, range(100), threads=1, chunksize=1, buffersize=4)
        assert gated.started.wait(WAIT)
        del it
        gated.gate.set()
    assert one_node.statistics().cancelled == 3


def test_cancel_token_stops_a_waiting_consumer(gated: type[Gated]) -> None:
    """Cancelling the token wakes the consumer with Cancelled and cancels the backlog."""
    token = threadkit.CancelToken()
    with threadkit.WorkerPool(1) as one_node:
        it = threadkit.process_on(
            one_node, gated, range(100), threads=1, chunksize=1, buffersize=4, cancel_token=token
        )
        assert gated.started.wait(WAIT)
        threading.Timer(0.01, token.cancel, args=("stop",)).start()
        with pytest.raises(threadkit.Cancelled):
            next(it)
        gated.gate.set()
    assert one_node.statistics().cancelled == 3


def test_graceful_shutdown_request_stops_the_run(gated: type[Gated]) -> None:
    """Inside a GracefulShutdown block, request() stops process_on like a local pool."""
    with threadkit.WorkerPool(1) as one_node, threadkit.GracefulShutdown(signals=()) as shutdown:
        it = threadkit.process_on(one_node, gated, range(100), threads=1, chunksize=1, buffersize=4)
        assert gated.started.wait(WAIT)
        shutdown.request()
        with pytest.raises(threadkit.Cancelled):
            next(it)
        gated.gate.set()
    assert one_node.statistics().cancelled == 3


def test_timeout_raises_timeout_error(gated: type[Gated]) -> None:
    """A run that outlives its timeout raises TimeoutError and cancels the backlog."""
    with threadkit.WorkerPool(1) as one_node:
        it = threadkit.process_on(
            one_node, gated, range(10), threads=1, chunksize=1, buffersize=2, timeout=0.05
        )
        with pytest.raises(TimeoutError):
            next(it)
        gated.gate.set()
    assert one_node.statistics().cancelled == 1


def test_progress_counts_every_item_across_nodes(nodes: threadkit.WorkerPool) -> None:
    """The progress callback ends at the number of items, with the total once known."""
    seen: list[tuple[int, int | None]] = []
    lock = threading.Lock()

    def record(done: int, total: int | None) -> None:
        with lock:
            seen.append((done, total))

    it = threadkit.process_on(
        nodes, jobs.Double, iter(range(250)), threads=2, chunksize=20, progress=record
    )
    assert len(list(it)) == 250
    assert seen[-1] == (250, 250)


def test_a_batch_lost_as_a_whole_fails_its_items(nodes: threadkit.WorkerPool) -> None:
    """retries=0: a lost batch's items fail with the executor's error at their turn."""
    flaky = FailFirst(nodes, failures=1)
    it = threadkit.process_on(flaky, jobs.Double, range(30), threads=2, chunksize=10)
    with pytest.raises(BrokenExecutor, match="node lost"):
        next(it)


def test_retries_resubmit_a_lost_batch(nodes: threadkit.WorkerPool) -> None:
    """retries=2: two lost tries of a batch are resubmitted; every result comes back."""
    flaky = FailFirst(nodes, failures=2)
    it = threadkit.process_on(flaky, jobs.Double, range(30), threads=2, chunksize=10, retries=2)
    assert list(it) == [2 * i for i in range(30)]
    assert flaky.submits == 5
    assert "retried=2" in repr(it)


def test_a_failing_input_raises_after_the_items_in_flight(nodes: threadkit.WorkerPool) -> None:
    """An input that raises: what was read is still yielded, then the error."""

    def broken() -> Iterator[int]:
        yield from range(15)
        raise LookupError("input broke")

    it = threadkit.process_on(nodes, jobs.Double, broken(), threads=2, chunksize=10)
    got: list[int] = []
    with pytest.raises(LookupError, match="input broke"):
        got.extend(it)
    assert got == [2 * i for i in range(10)]


def test_submit_error_on_the_first_batch_is_raised_at_the_call() -> None:
    """A shut-down executor: process_on raises what its submit raised."""
    pool = threadkit.WorkerPool(1)
    pool.shutdown()
    with pytest.raises(threadkit.PoolShutDown):
        threadkit.process_on(pool, jobs.Double, range(3), threads=1)


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"threads": 0}, ValueError, "threads must be an int >= 1"),
        ({"threads": 1.5}, TypeError, "threads must be an int"),
        ({"chunksize": 0}, ValueError, "chunksize"),
        ({"buffersize": 0}, ValueError, "buffersize"),
        ({"retries": -1}, ValueError, "retries"),
        ({"timeout": -1}, ValueError, "timeout"),
        ({"idle_timeout": float("nan")}, ValueError, "idle_timeout"),
        ({"cancel_token": "no"}, TypeError, "cancel_token"),
    ],
)
def test_bad_arguments_fail_at_the_call(
    nodes: threadkit.WorkerPool, kwargs: dict[str, Any], error: type[Exception], match: str
) -> None:
    """Each bad argument raises at the call, naming the parameter; nothing is submitted."""
    with pytest.raises(error, match=match):
        threadkit.process_on(nodes, jobs.Double, range(3), **kwargs)
    assert nodes.statistics().submitted == 0


def test_outer_must_be_an_executor() -> None:
    """A non-Executor outer level is refused with a TypeError that says what fits."""
    with pytest.raises(TypeError, match=r"nodes must be a concurrent\.futures\.Executor"):
        threadkit.process_on("tcp://scheduler:8786", jobs.Double, range(3))  # type: ignore[arg-type]


def test_unpicklable_job_is_refused_with_a_clear_error(nodes: threadkit.WorkerPool) -> None:
    """A job class defined in a function cannot reach a node: TypeError at the call."""

    class Local(threadkit.Worker[int, int]):
        def process(self, item: int) -> int:
            return item

    with pytest.raises(TypeError, match="worker must be picklable") as info:
        threadkit.process_on(nodes, Local, range(3))
    assert isinstance(info.value.__cause__, (pickle.PicklingError, AttributeError, TypeError))


# -- processes: ProcessPoolExecutor as the nodes ------------------------------------------


@pytest.fixture
def processes() -> Iterator[ProcessPoolExecutor]:
    """Two node processes (per test: the executor's threads must end with the test)."""
    with ProcessPoolExecutor(2) as pool:
        yield pool


@pytest.mark.slow
def test_processes_run_the_job_on_several_nodes(processes: ProcessPoolExecutor) -> None:
    """With processes as nodes, results come back in order from the node threads."""
    out = list(threadkit.process_on(processes, jobs.Where, range(2000), threads=4, chunksize=50))
    assert [item for item, _, _ in out] == list(range(2000))
    assert os.getpid() not in {pid for _, pid, _ in out}
    assert all(name.startswith("node-") for _, _, name in out)


@pytest.mark.slow
def test_processes_report_item_failures(processes: ProcessPoolExecutor) -> None:
    """An item's exception crosses the process boundary and is raised at its turn."""
    items = [*range(120), jobs.BAD, *range(10)]
    got: list[int] = []
    with pytest.raises(ValueError, match="-1"):
        got.extend(threadkit.process_on(processes, jobs.Double, items, threads=2, chunksize=25))
    assert got == [2 * i for i in range(120)]


@pytest.mark.slow
def test_processes_close_early_stops_input() -> None:
    """Leaving the loop early closes the run: input reading stops at the window."""
    reads: list[int] = []
    with ProcessPoolExecutor(2) as pool:
        with threadkit.process_on(
            pool, jobs.Double, counted(None, reads), threads=2, chunksize=10, buffersize=4
        ) as it:
            assert next(it) == 0
        read = len(reads)
        assert read <= 10 * (4 + 1)
    assert len(reads) == read


@pytest.mark.slow
def test_a_killed_node_process_fails_only_its_batches() -> None:
    """A node process killed mid-run: results before it are yielded, then its error."""
    items = [*range(40), jobs.KILL, *range(40)]
    got: list[int] = []
    with ProcessPoolExecutor(2) as pool:
        it = threadkit.process_on(pool, jobs.Double, items, threads=2, chunksize=20, buffersize=1)
        with pytest.raises(BrokenProcessPool):
            got.extend(it)
    assert got == [2 * i for i in range(40)]


@pytest.mark.slow
def test_node_threads_tear_down_when_the_node_process_exits(tmp_path: Path) -> None:
    """Every node thread whose setup ran runs its teardown when its process exits."""
    job = functools.partial(jobs.Recorded, str(tmp_path))
    with ProcessPoolExecutor(2) as pool:
        out = list(threadkit.process_on(pool, job, range(400), threads=3, chunksize=20))
    assert out == list(range(400))
    names = [path.name for path in tmp_path.iterdir()]
    setups = sorted(name.removeprefix("setup-") for name in names if name.startswith("setup-"))
    ends = sorted(name.removeprefix("teardown-") for name in names if name.startswith("teardown-"))
    assert setups
    assert ends == setups


@pytest.mark.slow
def test_ctrl_c_cancels_the_batches_not_started() -> None:
    """SIGINT inside ``with process_on(...)``: KeyboardInterrupt, unstarted batches cancelled."""
    code = textwrap.dedent(
        """
        import signal
        import threading
        import threadkit

        signal.signal(signal.SIGINT, signal.default_int_handler)  # not SIG_IGN if inherited

        started, gate = threading.Event(), threading.Event()

        class Stuck(threadkit.Worker[int, int]):
            def process(self, item):
                started.set()
                gate.wait(30)
                return item

        with threadkit.WorkerPool(1) as nodes:
            try:
                with threadkit.process_on(
                    nodes, Stuck, range(100), threads=1, chunksize=1, buffersize=4
                ) as results:
                    started.wait(30)
                    print("READY", flush=True)
                    for _ in results:
                        pass
            except KeyboardInterrupt:
                print("interrupted", flush=True)
            gate.set()
        print(nodes.statistics().cancelled, nodes.statistics().completed, flush=True)
        threadkit.close_node_pools()
        """
    )
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([TESTS, *sys.path])}
    child = subprocess.Popen(
        [sys.executable, "-c", code], stdout=subprocess.PIPE, text=True, env=env
    )
    try:
        assert child.stdout is not None
        assert child.stdout.readline().strip() == "READY"
        child.send_signal(signal.SIGINT)
        out, _ = child.communicate(timeout=WAIT)
    finally:
        if child.poll() is None:
            child.kill()
            child.wait(WAIT)
    assert out.split() == ["interrupted", "3", "1"]
    assert child.returncode == 0


@pytest.mark.slow
def test_driver_memory_stays_flat_over_a_million_items() -> None:
    """The driver's peak RSS grows by a few MB at most from 100,000 to 1,000,000 items."""
    code = textwrap.dedent(
        """
        import sys
        from concurrent.futures import ProcessPoolExecutor
        import threadkit
        import distribute_jobs

        def peak_kib():
            with open("/proc/self/status") as status:
                return next(int(l.split()[1]) for l in status if l.startswith("VmHWM:"))

        if __name__ == "__main__":
            with ProcessPoolExecutor(2) as nodes:
                it = threadkit.process_on(
                    nodes, distribute_jobs.Double, iter(range(1_000_000)),
                    threads=2, chunksize=2000,
                )
                for n, value in enumerate(it, 1):
                    if n == 100_000:
                        early = peak_kib()
                print(early, peak_kib(), n, flush=True)
        """
    )
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([TESTS, *sys.path])}
    done = subprocess.run(
        [sys.executable, "-c", code],
        check=False,
        capture_output=True,
        text=True,
        env=env,
        timeout=240,
    )
    assert done.returncode == 0, done.stderr
    early, late, n = map(int, done.stdout.split())
    assert n == 1_000_000
    # Holding the million results (or inputs) would take over 35 MB.
    assert late - early < 4 * 1024, (early, late)


# -- a Dask cluster: distributed.LocalCluster with two worker processes --------------------


@pytest.fixture(scope="module")
def cluster() -> Iterator[Any]:
    """A LocalCluster of two worker processes on 127.0.0.1, and a client to it."""
    distributed = pytest.importorskip(
        "distributed", reason="distributed (the 'cluster' extra) is not installed here"
    )
    with (
        distributed.LocalCluster(
            n_workers=2,
            threads_per_worker=1,
            processes=True,
            host="127.0.0.1",
            dashboard_address=":0",
        ) as local,
        distributed.Client(local) as client,
    ):
        yield client


@pytest.mark.slow
def test_cluster_runs_the_job_in_order(cluster: Any) -> None:
    """On a Dask cluster, results come back in input order from worker processes."""
    with cluster.get_executor() as nodes:
        out = list(threadkit.process_on(nodes, jobs.Where, range(3000), threads=4, chunksize=100))
    assert [item for item, _, _ in out] == list(range(3000))
    assert os.getpid() not in {pid for _, pid, _ in out}


@pytest.mark.slow
def test_cluster_unordered_and_item_failures(cluster: Any) -> None:
    """Unordered runs yield everything; an item's failure is raised from the cluster."""
    with cluster.get_executor() as nodes:
        it = threadkit.process_on(nodes, jobs.Double, range(500), threads=2, ordered=False)
        assert sorted(it) == [2 * i for i in range(500)]
        items = [*range(300), jobs.BAD, *range(300)]
        got: list[int] = []
        with pytest.raises(ValueError, match="-1"):
            got.extend(threadkit.process_on(nodes, jobs.Double, items, threads=2, chunksize=50))
    assert got == [2 * i for i in range(300)]


@pytest.mark.slow
def test_cluster_reschedules_the_batches_of_a_killed_worker(cluster: Any, tmp_path: Path) -> None:
    """A worker process killed mid-run: Dask reruns its batch elsewhere; nothing is lost."""
    job = functools.partial(jobs.KillOnce, str(tmp_path / "killed"))
    with cluster.get_executor() as nodes:
        out = list(threadkit.process_on(nodes, job, range(400), threads=2, chunksize=50))
    assert (tmp_path / "killed").exists()  # a node did die
    assert out == list(range(400))
    cluster.wait_for_workers(2, timeout=WAIT)


@pytest.mark.slow
def test_cluster_takes_a_job_that_only_cloudpickle_can_send(cluster: Any) -> None:
    """Dask sends jobs with cloudpickle, so a job class made in a function runs there."""

    class Local(threadkit.Worker[int, int]):
        def process(self, item: int) -> int:
            return item + 1

    with cluster.get_executor() as nodes:
        assert list(threadkit.process_on(nodes, Local, range(50), threads=2)) == list(range(1, 51))


@pytest.mark.slow
def test_cluster_never_merges_the_batches_of_two_runs(cluster: Any, tmp_path: Path) -> None:
    """Two runs of the same items at once, pure=True: Dask runs the job for each."""
    job = functools.partial(jobs.Touch, str(tmp_path))
    with cluster.get_executor(pure=True) as nodes:
        first = threadkit.process_on(nodes, job, range(40), chunksize=10, buffersize=4)
        second = threadkit.process_on(nodes, job, range(40), chunksize=10, buffersize=4)
        assert list(first) == list(second) == list(range(40))
    assert len(list(tmp_path.iterdir())) == 80


@pytest.mark.slow
def test_cluster_close_cancels_batches_not_started(cluster: Any) -> None:
    """Closing early on a cluster stops reading input after the window."""
    reads: list[int] = []
    with cluster.get_executor() as nodes:
        with threadkit.process_on(
            nodes, jobs.Double, counted(None, reads), threads=2, chunksize=10, buffersize=4
        ) as it:
            assert next(it) == 0
        read = len(reads)
    assert read <= 10 * (4 + 1)
    assert len(reads) == read


@pytest.mark.slow
def test_the_how_to_example_runs_on_a_dask_cluster() -> None:
    """docs/examples/process_on_nodes.py --dask counts the same words on a cluster."""
    pytest.importorskip("distributed", reason="distributed (the 'cluster' extra) is not installed")
    script = Path(TESTS).parent / "docs" / "examples" / "process_on_nodes.py"
    done = subprocess.run(
        [sys.executable, "-W", "error", str(script), "--dask"],
        check=False,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert "dask: 279988 words" in done.stdout
