"""TaskGroup under races: a Hypothesis state machine over one group's whole life.

Each example enters one group (on its own pool, a shared ``WorkerPool`` or a
``ThreadPoolExecutor``; with or without ``limit`` and ``timeout``), then runs random
submits (plain, failing, gated, nested groups, tasks that submit more), cancels of the
group and of single futures, and leaves the block. The thread switch interval is at its
minimum. When the block is left it checks:

* every future handed out (by the group and by the nested groups) is done;
* no task can start once a cancellation of the group has completed: when ``cancel()``
  returns, and when a failed task's future is resolved (the group is cancelled before
  that), every future the group handed out is running, done or cancelled, none pending;
* every task ran at most once, and a cancelled future's task never ran;
* the exit raised exactly the failures: the exception group (or the cause of the
  ``TaskGroupTimeout``) holds the very exceptions of the futures that failed, and
  nothing is raised when none failed;
* no thread of the group is left, and the statistics add up.
"""

from __future__ import annotations

import collections
import concurrent.futures as cf
import threading
from typing import Any

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    precondition,
    rule,
    run_state_machine_as_test,
)

import threadkit
from helpers import WAIT
from threadkit import Cancelled, TaskGroup, TaskGroupTimeout, WorkerPool


class GroupMachine(RuleBasedStateMachine):
    """Random operations on one TaskGroup keep RESOLVE, NOLOSS and the group's rules."""

    def __init__(self) -> None:
        super().__init__()
        self.group: TaskGroup | None = None
        self.pool: cf.Executor | None = None
        self.lock = threading.Lock()
        self.ids = iter(range(1_000_000))
        self.runs: collections.Counter[Any] = collections.Counter()
        self.futures: dict[Any, cf.Future[Any]] = {}  # every future handed out, by task id
        self.late_starts: list[Any] = []  # tasks still to start after a completed cancel
        self.gates: list[threading.Event] = []
        self.timeout: float | None = None
        self.issued: list[int] = []  # ids of the tasks the rules submitted, in order

    # -- set-up --------------------------------------------------------------------------

    @initialize(
        pool_kind=st.sampled_from(["own", "worker_pool", "executor"]),
        limit=st.none() | st.integers(1, 3),
        timeout=st.sampled_from([None, None, None, 0.0, 0.02]),
    )
    def enter(self, pool_kind: str, limit: int | None, timeout: float | None) -> None:
        if pool_kind == "worker_pool":
            self.pool = WorkerPool(3, "machine")
        elif pool_kind == "executor":
            self.pool = cf.ThreadPoolExecutor(3, "machine")
        self.timeout = timeout
        self.group = TaskGroup(self.pool, limit=limit, timeout=timeout, name="machine-group")
        self.group.__enter__()

    @property
    def tg(self) -> TaskGroup:
        assert self.group is not None
        return self.group

    # -- task bodies -----------------------------------------------------------------------

    def started(self, task_id: Any) -> None:
        with self.lock:
            self.runs[task_id] += 1

    def nothing_pending(self, where: str) -> None:
        """Once a cancellation completed, no task of the group may be left to start."""
        with self.lock:
            outer = [
                (key, fut)
                for key, fut in self.futures.items()
                if isinstance(key, int) or key[1] == "child"
            ]
        pending = [key for key, fut in outer if not (fut.running() or fut.done())]
        if pending:
            with self.lock:
                self.late_starts.append((where, pending))

    def plain(self, task_id: Any, fails: bool) -> Any:
        self.started(task_id)
        if fails:
            raise ValueError(task_id)
        return task_id

    def gated(self, task_id: Any, gate: threading.Event) -> Any:
        self.started(task_id)
        token = threadkit.current_token()
        assert token is not None
        unregister = token.add_callback(lambda _: gate.set())
        try:
            gate.wait(WAIT)
        finally:
            unregister()
        token.raise_if_cancelled()
        return task_id

    def nested(self, task_id: Any, plan: list[bool]) -> Any:
        self.started(task_id)
        with TaskGroup(name="machine-inner") as inner:
            for j, fails in enumerate(plan):
                key = (task_id, j)
                self._keep(key, inner.submit(self.plain, key, fails))
        return task_id

    def spawner(self, task_id: Any, fails: bool) -> Any:
        self.started(task_id)
        key = (task_id, "child")
        self._keep(key, self.tg.submit(self.plain, key, fails))
        return task_id

    def _keep(self, key: Any, fut: cf.Future[Any]) -> None:
        with self.lock:
            self.futures[key] = fut
            if isinstance(key, int):
                self.issued.append(key)
        fut.add_done_callback(self._note_failure)

    def _note_failure(self, fut: cf.Future[Any]) -> None:
        # A task failure cancels its group before its future is resolved; for a task of
        # the outer group, every later start is a bug.
        if fut.cancelled():
            return
        exc = fut.exception(0)
        if isinstance(exc, ValueError) and not isinstance(exc.args[0], tuple):
            self.nothing_pending("after a failure")

    # -- rules ---------------------------------------------------------------------------

    @rule(fails=st.booleans())
    def submit_plain(self, fails: bool) -> None:
        task_id = next(self.ids)
        self._keep(task_id, self.tg.submit(self.plain, task_id, fails))

    @rule()
    def submit_gated(self) -> None:
        gate = threading.Event()
        self.gates.append(gate)
        task_id = next(self.ids)
        self._keep(task_id, self.tg.submit(self.gated, task_id, gate))

    @precondition(lambda self: bool(self.gates))
    @rule(data=st.data())
    def open_gate(self, data: st.DataObject) -> None:
        data.draw(st.sampled_from(self.gates)).set()

    @rule(plan=st.lists(st.booleans(), max_size=3))
    def submit_nested(self, plan: list[bool]) -> None:
        task_id = next(self.ids)
        self._keep(task_id, self.tg.submit(self.nested, task_id, plan))

    @rule(fails=st.booleans())
    def submit_spawner(self, fails: bool) -> None:
        task_id = next(self.ids)
        self._keep(task_id, self.tg.submit(self.spawner, task_id, fails))

    @rule()
    def cancel_group(self) -> None:
        self.tg.cancel("machine")
        self.nothing_pending("after cancel()")

    @precondition(lambda self: bool(self.issued))
    @rule(data=st.data())
    def cancel_a_future(self, data: st.DataObject) -> None:
        # Drawn from the ids the rules issued, never from what threads added: Hypothesis
        # must see the same choices when it replays an example.
        with self.lock:
            fut = self.futures[data.draw(st.sampled_from(self.issued))]
        if fut.cancel():
            assert fut in cf.wait([fut], timeout=0).done

    @rule()
    def statistics_add_up(self) -> None:
        s = self.tg.statistics()
        total = s.completed + s.failed + s.cancelled + s.held + s.waiting + s.running
        assert s.submitted >= s.completed + s.failed + s.cancelled
        assert min(s.held, s.waiting, s.running) >= 0
        # Exact only when quiescent (as documented): a task may start or end between the
        # snapshot's reads, and count once as waiting or running and once as ended.
        assert total == s.submitted or s.running > 0 or s.waiting > 0
        if s.limit is not None:
            assert s.running <= s.limit

    # -- leaving -------------------------------------------------------------------------

    def teardown(self) -> None:
        if self.group is None:
            return
        tg = self.group
        for gate in self.gates:
            gate.set()
        raised: BaseException | None = None
        try:
            tg.__exit__(None, None, None)
        except BaseException as exc:
            raised = exc
        try:
            self.check(tg, raised)
        finally:
            if self.pool is not None:
                self.pool.shutdown(wait=True)

    def check(self, tg: TaskGroup, raised: BaseException | None) -> None:
        futures = dict(self.futures)
        # RESOLVE
        assert not cf.wait(list(futures.values()), timeout=0).not_done
        # Nothing left to start after a completed cancellation; each task at most once; a
        # cancelled one never.
        assert not self.late_starts, self.late_starts
        for key, fut in futures.items():
            assert self.runs[key] <= 1, key
            if fut.cancelled():
                assert self.runs[key] == 0, key
        # Exactly the failures of the outer group's tasks.
        token = tg.token
        failures = []
        for key, fut in futures.items():
            if (isinstance(key, tuple) and key[1] != "child") or fut.cancelled():
                continue
            exc = fut.exception(0)
            if exc is None:
                continue
            if isinstance(exc, Cancelled) and (
                exc.reason is token.reason
                or (exc.reason is threadkit.DeadlineExceeded and token.remaining() == 0.0)
            ):
                continue
            failures.append(exc)
        group: BaseException | None = raised
        if isinstance(raised, TaskGroupTimeout):
            assert self.timeout is not None
            assert token.reason is threadkit.DeadlineExceeded
            group = raised.__cause__
        if failures:
            assert isinstance(group, ExceptionGroup), repr(raised)
            assert sorted(map(id, group.exceptions)) == sorted(map(id, failures))
        else:
            assert group is None, repr(raised)
        # No thread of the group left; the statistics add up.
        names = [t.name for t in threading.enumerate() if t.name.startswith("machine-group")]
        assert not names, names
        s = tg.statistics()
        assert s.state == "closed"
        assert (s.held, s.waiting, s.running) == (0, 0, 0)
        assert s.submitted == s.completed + s.failed + s.cancelled
        assert s.failed == len(failures)


MACHINE_SETTINGS = settings(
    max_examples=40,
    stateful_step_count=12,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)


def test_taskgroup_state_machine(fast_switching: None) -> None:
    """Random group lives keep RESOLVE, no start after cancel, and exactly the failures."""
    run_state_machine_as_test(GroupMachine, settings=MACHINE_SETTINGS)


@pytest.mark.slow
def test_taskgroup_state_machine_long(fast_switching: None) -> None:
    """The same state machine, with many more and longer examples."""
    run_state_machine_as_test(
        GroupMachine,
        settings=settings(MACHINE_SETTINGS, max_examples=400, stateful_step_count=30),
    )
