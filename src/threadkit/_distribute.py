"""process_on: one Worker job over many nodes, each node a pool of threads.

The outer level is any ``concurrent.futures.Executor`` (a ``ProcessPoolExecutor``,
Dask's ``Client.get_executor()``, a ``WorkerPool``); its workers are the *nodes*. The
driver cuts the input into batches of ``chunksize`` items and submits
``run_batch`` for each; a node runs every item of its batch in a local
``WorkerPool(worker=job, max_workers=threads)`` and sends back one outcome per item.

Guarantees:
    * Input is read in the consumer's thread only, one batch at a time, with at most
      ``buffersize`` batches submitted and not yet handed out: the driver holds at most
      ``buffersize * chunksize`` items, whatever the input's length.
    * Every item read ends, for the consumer, as its value, its own exception (raised at
      its turn, as ``WorkerPool.process`` does), or the exception that ended its whole
      batch (the node died, the executor broke, the batch could not be pickled).
    * A batch that fails as a whole is resubmitted up to ``retries`` times; items that
      raised on a node are never retried (that is the job's business).
    * Closing the iterator, an error raised from it, Ctrl-C while it waits, its timeout,
      or the cancel token stop the input and cancel every batch not yet started.
      Batches already running on a node finish there; their results are dropped.

The node side keeps one pool per job in a process-wide registry (the section marked
"process-wide state" below), so a Worker's ``setup`` runs once per thread per node and
stays warm across batches, not once per batch.
"""

from __future__ import annotations

import functools
import hashlib
import itertools
import os
import pickle
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import CancelledError, Executor, Future
from queue import Empty, SimpleQueue
from typing import Any, Final, Generic, final

import attrs

from . import _process
from ._cancel import CancelToken
from ._errors import BrokenPool, PoolShutDown
from ._pool import WorkerPool
from ._process import innermost_token, node_pool, take_node_pools
from ._progress import Progress, ProgressArg, make_progress
from ._reports import describe_callable
from ._validate import check_int, check_timeout
from ._waiting import get_interruptibly
from ._worker import In, Out, Worker

__all__ = ["NodeIterator", "close_node_pools", "process_on", "run_batch"]

#: Items per batch when ``chunksize`` is not given: large enough that a node's threads
#: stay busy between two round trips, small enough that a lost batch costs little.
DEFAULT_CHUNKSIZE: Final = 100
#: Seconds an idle thread of a node's pool lives between batches (``idle_timeout``).
DEFAULT_IDLE_TIMEOUT: Final = 60.0

# What a node sends back for one batch: every item's value (``None`` where it failed)
# and, when some failed, what each of those failed with, by position in the batch.
BatchOutcome = tuple[list[Any], dict[int, BaseException] | None]


@attrs.frozen
class NodeJob:
    """What a node needs to run a batch: the job, its pool's size, and a registry key.

    ``key`` names the job's pool in each node's registry: a digest of the pickled job and
    the settings, so batches of the same job (from one ``process_on`` call or several)
    share one pool per node, while different jobs never do.
    """

    key: str
    worker: Callable[[], Worker[Any, Any]]
    threads: int | None
    idle_timeout: float | None


# -- the pools that run batches on this node ---------------------------------------------
#
# One WorkerPool per NodeJob.key in each node process, made by the first batch that
# needs it and reused by the later ones, so a Worker keeps its connection warm between
# batches. Its threads retire after ``idle_timeout`` idle seconds (their teardown runs
# then); the pools themselves shut down at the node's interpreter exit through
# WorkerPool's own exit hook (which multiprocessing children and Dask workers run too),
# or at close_node_pools(). A broken pool (a failed setup) is replaced by the next batch.
# The registry is process-wide state, so it lives in ``_process`` (``node_pool``), which
# also empties it in a forked child: the parent's threads do not exist there.


def _node_pool(job: NodeJob, stale: WorkerPool[Any, Any] | None = None) -> WorkerPool[Any, Any]:
    """This process's pool for ``job``: the registered one, or a new one in place of
    ``stale`` (a pool that refused work because it broke or was shut down)."""

    def make() -> WorkerPool[Any, Any]:
        return WorkerPool(
            max_workers=job.threads,
            thread_name_prefix=f"node-{_job_name(job.worker)}",
            worker=job.worker,
            idle_timeout=job.idle_timeout,
        )

    pool: WorkerPool[Any, Any] = node_pool(job.key, make, stale)
    return pool


def _active_token() -> CancelToken | None:
    """The token of the innermost running ``GracefulShutdown`` block, or ``None``."""
    token: CancelToken | None = innermost_token()
    return token


def _job_name(worker: object) -> str:
    """A short name for a job's threads: its class's name, also through a partial."""
    while isinstance(worker, functools.partial):
        worker = worker.func
    name = getattr(worker, "__qualname__", None)
    return name if isinstance(name, str) else type(worker).__qualname__


def _put_all(
    pool: WorkerPool[Any, Any], items: list[Any]
) -> tuple[list[Future[Any]], BaseException | None]:
    futures: list[Future[Any]] = []
    for item in items:
        try:
            futures.append(pool.put(item))
        except (BrokenPool, PoolShutDown) as exc:  # a setup failed, or close_node_pools()
            return futures, exc
        except RuntimeError as exc:
            if not _process.exiting:
                raise
            return futures, exc  # the interpreter is exiting (ThreadPoolExecutor's error)
    return futures, None


def close_node_pools(timeout: float | None = None) -> int:
    """Shut down the node pools that ``process_on`` keeps in this process.

    Every thread's ``teardown`` runs. Call it on each node to release their connections
    before the node exits (with Dask: ``client.run(threadkit.close_node_pools)``); the
    next batch that reaches the node makes a new pool.

    Args:
        timeout: The most seconds to wait for each pool's threads; ``None`` waits as long
            as their running items take.

    Returns:
        How many pools were shut down.

    Raises:
        ValueError: ``timeout`` is negative or NaN.
    """
    seconds = check_timeout(timeout)
    pools: list[WorkerPool[Any, Any]] = take_node_pools()
    for pool in pools:
        pool.shutdown(wait=True, timeout=seconds)
    return len(pools)


def run_batch(job: NodeJob, batch: str, items: list[Any]) -> BatchOutcome:
    """Run ``job``'s ``process`` on every item of one batch; this runs on a node.

    ``batch`` (the run's random id and the batch's number) is unused here: it makes
    every batch a different call, so an executor that names tasks by their arguments
    (Dask with ``pure=True``) never merges two batches or hands back a cached result
    instead of running the job again.

    Returns:
        Every item's value (``None`` for a failed item) and, if some failed, a dict from
        an item's position to its exception. An exception that cannot be pickled back
        to the driver is replaced by a ``RuntimeError`` that describes it.
    """
    del batch
    pool = _node_pool(job)
    futures, refused = _put_all(pool, items)
    if refused is not None and not futures:
        # The registered pool was already broken or shut down: one new pool per batch
        # at most, so a setup that always fails fails each batch once, not forever.
        futures, refused = _put_all(_node_pool(job, stale=pool), items)
    values: list[Any] = []
    errors: dict[int, BaseException] = {}
    for position, fut in enumerate(futures):
        try:
            # Raises only if this wait itself is interrupted (a Ctrl-C sent to the whole
            # process group reaches a ProcessPoolExecutor's workers too): that ends the
            # batch, it is not an item's failure.
            error = fut.exception()
        except CancelledError as exc:
            error = exc
        if error is None:
            values.append(fut.result())
        else:
            values.append(None)
            errors[position] = _picklable(error)
    if refused is not None:
        for position in range(len(futures), len(items)):
            values.append(None)
            errors[position] = refused
    return values, errors or None


def _picklable(exc: BaseException) -> BaseException:
    try:
        pickle.dumps(exc)
    except Exception as why:
        return RuntimeError(
            f"the item raised {type(exc).__qualname__}: {exc!r}, which could not be"
            f" sent back from the node ({why!r})"
        )
    return exc


# -- the driver -----------------------------------------------------------------------


def _parallelism(nodes: Executor) -> int:
    """How many batches ``nodes`` runs at once, as far as it tells; else the CPU count."""
    workers = getattr(nodes, "_max_workers", None)  # the stdlib executors, WorkerPool
    if isinstance(workers, int) and not isinstance(workers, bool) and workers >= 1:
        return workers
    client = getattr(nodes, "_client", None)  # distributed's ClientExecutor
    nthreads: Any = getattr(client, "nthreads", None)
    if callable(nthreads):
        try:
            counts: Any = nthreads()  # {worker address: threads}
            total = sum(counts.values())
        except Exception:
            total = 0
        if isinstance(total, int) and total >= 1:
            return total
    return os.cpu_count() or 1


def _job_key(worker: Callable[[], Worker[Any, Any]], nodes: Executor, extra: str) -> str:
    """A registry key for ``worker``; raise a clear error if it cannot reach a node."""
    try:
        data = pickle.dumps(worker)
    except Exception as exc:
        if getattr(nodes, "_client", None) is not None:
            # Dask sends functions with cloudpickle, which also takes classes defined in
            # __main__ or in a function; the key then holds for this call only.
            try:
                import cloudpickle

                data = cloudpickle.dumps(worker) + os.urandom(16)
            except Exception:
                pass
            else:
                return hashlib.blake2b(data + extra.encode(), digest_size=16).hexdigest()
        raise TypeError(
            f"worker must be picklable to be sent to the nodes (a class defined at the top"
            f" level of an importable module), got {worker!r}: {exc}"
        ) from exc
    return hashlib.blake2b(data + extra.encode(), digest_size=16).hexdigest()


@final
class _Flight:
    """One submitted batch: its number, its items (kept for a retry) and its future."""

    __slots__ = ("batch", "future", "items", "tries")

    def __init__(self, batch: int, items: list[Any]) -> None:
        self.batch = batch
        self.items = items
        self.tries = 0
        self.future: Future[BatchOutcome] | None = None


def _raise_item_error(error: BaseException | type[CancelledError]) -> None:
    if isinstance(error, StopIteration):
        raise RuntimeError("Worker.process raised StopIteration") from error
    raise error


@final
class NodeIterator(Generic[Out]):
    """The iterator returned by ``process_on``.

    Iterate it for the results; call ``close`` (or leave a ``with`` block) to stop
    reading input and cancel the batches that have not started. It must be used from
    one thread at a time.
    """

    # Results that can be handed out wait in ``_ready`` as plain values; ``__next__``
    # pops them with one C call. Everything else happens in ``_next_slow``: topping up
    # the batches in flight, waiting for one to finish (done-callbacks put it on
    # ``_done``), retrying it or placing its outcomes (in order through ``_stash``).

    __slots__ = (
        "__weakref__",
        "_chunksize",
        "_closed",
        "_deadline",
        "_done",
        "_error",
        "_feed_error",
        "_flights",
        "_inputs",
        "_job",
        "_next_batch",
        "_nodes",
        "_open",
        "_ordered",
        "_progress",
        "_read",
        "_ready",
        "_retried",
        "_retries",
        "_run",
        "_stash",
        "_token",
        "_unregister",
        "_want",
        "_window",
    )

    def __init__(
        self,
        nodes: Executor,
        job: NodeJob,
        inputs: Iterator[Any],
        *,
        chunksize: int,
        window: int,
        ordered: bool,
        retries: int,
        deadline: float | None,
        progress: Progress | None,
        token: CancelToken | None,
    ) -> None:
        self._nodes = nodes
        self._job = job
        self._inputs: Iterator[Any] | None = inputs
        self._chunksize = chunksize
        self._window = window
        self._ordered = ordered
        self._retries = retries
        self._deadline = deadline
        self._progress = progress
        self._token = token
        self._ready: deque[Any] = deque()
        self._error: BaseException | type[CancelledError] | None = None
        self._feed_error: BaseException | None = None
        self._flights: dict[int, _Flight] = {}
        self._stash: dict[int, BatchOutcome] = {}
        # Done-callbacks run in the executor's threads; they only put here.
        self._done: SimpleQueue[tuple[_Flight, Future[BatchOutcome]] | None] = SimpleQueue()
        self._next_batch = 0
        self._want = 0  # ordered: the batch to hand out next
        self._open = 0  # batches submitted and not yet handed to ``_ready``
        self._read = 0  # items read from the input
        self._retried = 0
        self._run = os.urandom(8).hex()
        self._closed = False
        self._unregister: Callable[[], None] | None = None
        if token is not None:
            wake = self._done.put
            self._unregister = token.add_callback(lambda _: wake(None))
        try:
            self._top_up()
            if not self._flights:
                # Nothing could be submitted: the executor's refusal (a shut-down or
                # broken executor) or the input's error is raised at the call.
                error = self._pop_feed_error()
                if error is not None:
                    raise error
        except BaseException:
            self.close()
            raise

    # -- reading results ---------------------------------------------------------------

    def __iter__(self) -> NodeIterator[Out]:
        return self

    def __enter__(self) -> NodeIterator[Out]:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __next__(self) -> Out:
        ready = self._ready
        if ready:
            return ready.popleft()  # type: ignore[no-any-return]
        return self._next_slow()

    def _next_slow(self) -> Out:
        try:
            return self._wait_for_ready()
        except StopIteration:
            raise
        except BaseException:
            # Whatever ends the wait (an item's error, the input's, a timeout, the token,
            # a Ctrl-C landing on any line of it): no more input, no more batches.
            self.close()
            raise

    def _wait_for_ready(self) -> Out:
        ready = self._ready
        while not ready:
            error = self._error
            if error is not None:
                _raise_item_error(error)
            if self._closed:
                raise StopIteration
            if self._token is not None:
                self._token.raise_if_cancelled()
            self._top_up()
            if not self._flights:
                feed_error = self._pop_feed_error()
                self.close()
                if feed_error is not None:
                    raise feed_error
                raise StopIteration
            self._wait_one()
        return ready.popleft()  # type: ignore[no-any-return]

    def _top_up(self) -> None:
        """Read and submit batches until ``window`` are open or the input ends."""
        while self._inputs is not None and self._open < self._window and self._error is None:
            try:
                items = list(itertools.islice(self._inputs, self._chunksize))
            except Exception as exc:
                # As WorkerPool.process: what is in flight is still handed out; the
                # input's error is raised after it.
                self._end_inputs()
                self._feed_error = exc
                return
            if not items:
                self._end_inputs()
                return
            self._read += len(items)
            flight = _Flight(self._next_batch, items)
            self._next_batch += 1
            try:
                self._submit(flight)
            except Exception as exc:
                self._end_inputs()
                self._feed_error = exc
                return
            self._flights[flight.batch] = flight
            self._open += 1

    def _pop_feed_error(self) -> BaseException | None:
        error, self._feed_error = self._feed_error, None
        return error

    def _submit(self, flight: _Flight) -> None:
        fut = self._nodes.submit(run_batch, self._job, f"{self._run}-{flight.batch}", flight.items)
        flight.tries += 1
        flight.future = fut
        put = self._done.put
        fut.add_done_callback(lambda done: put((flight, done)))

    def _end_inputs(self) -> None:
        self._inputs = None
        self._call_progress("set_total", self._read)

    def _wait_one(self) -> None:
        """Wait for one batch to finish; retry it, or place its outcomes."""
        deadline = self._deadline
        timeout = None if deadline is None else max(0.0, deadline - time.monotonic())
        try:
            got = get_interruptibly(self._done.get, timeout)
        except Empty:
            raise TimeoutError("process_on results were not ready before the timeout") from None
        if got is None:  # the token was cancelled
            if self._token is not None:
                self._token.raise_if_cancelled()
            return
        flight, fut = got
        if flight.future is not fut or self._flights.get(flight.batch) is not flight:
            return  # a superseded try, or a batch of a closed run
        if fut.cancelled():
            # Someone else cancelled it (the executor shut down with cancel_futures).
            outcome = _failed(len(flight.items), CancelledError())
        else:
            exc = fut.exception()
            if exc is None:
                outcome = fut.result()
            elif flight.tries <= self._retries:
                try:
                    self._submit(flight)
                except Exception as again:
                    outcome = _failed(len(flight.items), again)
                else:
                    self._retried += 1
                    return
            else:
                outcome = _failed(len(flight.items), exc)
        del self._flights[flight.batch]
        # The future's done-callback holds the flight: break that cycle now, so the
        # batch's items and results are freed at once rather than by a later full
        # garbage collection (which would let the driver's memory creep up).
        flight.future = None
        flight.items = []
        values, errors = outcome
        failed = 0 if errors is None else len(errors)
        if len(values) - failed:
            self._call_progress("advance", len(values) - failed)
        if failed:
            self._call_progress("advance", failed, failed=True)
        if not self._ordered:
            self._take(outcome)
            return
        self._stash[flight.batch] = outcome
        while self._error is None and self._want in self._stash:
            self._take(self._stash.pop(self._want))

    def _take(self, outcome: BatchOutcome) -> None:
        values, errors = outcome
        self._open -= 1
        self._want += 1
        if errors is None:
            self._ready.extend(values)
            return
        first = min(errors)
        self._ready.extend(values[:first])
        self._error = errors[first]

    def _call_progress(self, method: str, *args: Any, **kwargs: Any) -> None:
        progress = self._progress
        if progress is None:
            return
        try:
            getattr(progress, method)(*args, **kwargs)
        except Exception:
            import logging

            logging.getLogger("threadkit").exception(
                "progress display %r failed; it is turned off", progress
            )
            self._progress = None

    # -- stopping ------------------------------------------------------------------------

    def close(self) -> None:
        """Stop: read no more input and cancel every batch that has not started.

        Batches already running on a node finish there; their results are dropped.
        """
        if self._closed:
            return
        self._closed = True
        self._inputs = None
        flights = list(self._flights.values())
        self._flights.clear()
        self._stash.clear()
        self._ready.clear()
        self._error = None
        for flight in flights:
            if flight.future is not None:
                flight.future.cancel()
                flight.future = None
            flight.items = []
        unregister, self._unregister = self._unregister, None
        if unregister is not None:
            unregister()
        self._call_progress("close")
        self._progress = None

    def __del__(self) -> None:
        # Like a generator: dropping the iterator cancels what has not started.
        if not getattr(self, "_closed", True):
            self.close()

    def __repr__(self) -> str:
        state = "closed" if self._closed else "open"
        return (
            f"<threadkit.NodeIterator {state} in_flight={len(self._flights)}"
            f" read={self._read} retried={self._retried}>"
        )


def _failed(size: int, error: BaseException) -> BatchOutcome:
    return [None] * size, dict.fromkeys(range(size), error)


def process_on(
    nodes: Executor,
    worker: Callable[[], Worker[In, Out]],
    items: Iterable[In],
    *,
    threads: int | None = None,
    chunksize: int = DEFAULT_CHUNKSIZE,
    ordered: bool = True,
    buffersize: int | None = None,
    retries: int = 0,
    timeout: float | None = None,
    progress: ProgressArg = False,
    idle_timeout: float | None = DEFAULT_IDLE_TIMEOUT,
    cancel_token: CancelToken | None = None,
) -> NodeIterator[Out]:
    """Run a Worker job over many nodes, each a pool of threads; lazy and bounded.

    ``WorkerPool(worker=job).process(items)`` on one more level: the items are cut into
    batches of ``chunksize``, each batch is submitted to ``nodes`` (any
    ``concurrent.futures.Executor``: a ``ProcessPoolExecutor`` for many cores, Dask's
    ``Client.get_executor()`` for a cluster), and on the node it runs in a
    ``WorkerPool(worker=job, max_workers=threads)`` that stays alive between batches, so
    each thread's ``setup`` runs once per node and its connection stays warm.

    Args:
        nodes: The executor whose workers are the nodes. It is not shut down here.
        worker: The job: a ``Worker`` subclass (or a zero-argument callable making
            one) that can be pickled, that is, defined at the top level of a module the
            nodes can import (Dask also takes one from ``__main__``).
        items: The items, any iterable (an endless generator is fine); each must be
            picklable, and so must every result.
        threads: Threads of each node's pool (``None``: WorkerPool's default).
        chunksize: Items per batch, that is per round trip to a node.
        ordered: Yield results in input order (``True``) or batch by batch as batches
            complete.
        buffersize: The most batches submitted and not yet handed out; the driver holds
            at most ``buffersize * chunksize`` items. ``None``: twice the executor's
            parallelism (its worker count, or Dask's total threads; else the CPU count).
        retries: How many times a batch that failed as a whole (its node died, the
            executor lost it) is submitted again. Its items may then run twice.
        timeout: Seconds, from this call, that the whole iteration may take.
        progress: A progress bar over all the items, as for ``WorkerPool.map``; it
            advances a batch at a time, as batches come back.
        idle_timeout: Seconds a node's thread stays idle between batches before it
            exits and runs its ``teardown``; ``None`` keeps it until the node exits or
            ``close_node_pools``.
        cancel_token: Stop when this token is cancelled (raising ``Cancelled``).
            By default, the token of the running ``GracefulShutdown`` block, if any.

    Returns:
        An iterator of results. An item's exception, or the exception that ended its
        batch, is raised at that item's turn and ends the iteration; closing it early
        stops reading input and cancels the batches that have not started.

    Raises:
        TypeError: ``nodes`` is not an Executor, ``worker`` is not callable or cannot be
            pickled, or an argument has the wrong type.
        ValueError: ``threads``, ``chunksize`` or ``buffersize`` is below 1, ``retries``
            is negative, or a bad timeout.
        Exception: What ``nodes.submit`` raised for the first batch (a shut-down
            executor's ``RuntimeError``, for instance).

    For example:

    ```python
    with ProcessPoolExecutor(4) as nodes:
        for page in threadkit.process_on(nodes, Fetch, urls, threads=32):
            ...
    ```
    """
    if not isinstance(nodes, Executor):
        raise TypeError(
            f"nodes must be a concurrent.futures.Executor (a ProcessPoolExecutor, Dask's"
            f" client.get_executor(), a WorkerPool), got {nodes!r}"
        )
    if not callable(worker):
        raise TypeError(
            f"worker must be a Worker subclass or a callable making one, got {worker!r}"
        )
    if threads is not None:
        check_int(threads, "threads")
    check_int(chunksize, "chunksize")
    if buffersize is not None:
        check_int(buffersize, "buffersize")
    check_int(retries, "retries", minimum=0)
    seconds = check_timeout(timeout)
    idle = check_timeout(idle_timeout, "idle_timeout")
    if cancel_token is not None and not isinstance(cancel_token, CancelToken):
        raise TypeError(f"cancel_token must be a CancelToken, got {cancel_token!r}")
    inputs = iter(items)
    key = _job_key(worker, nodes, f"|{threads}|{idle}")
    job = NodeJob(key, worker, threads, idle)
    total = len(items) if hasattr(items, "__len__") else None  # type: ignore[arg-type]
    shown = None
    if progress is not False:
        shown = make_progress(
            None if progress is True else progress,
            total=total,
            description=describe_callable(worker),
        )
    return NodeIterator(
        nodes,
        job,
        inputs,
        chunksize=chunksize,
        window=buffersize if buffersize is not None else 2 * _parallelism(nodes),
        ordered=ordered,
        retries=retries,
        deadline=None if seconds is None else time.monotonic() + seconds,
        progress=shown,
        token=cancel_token if cancel_token is not None else _active_token(),
    )
