"""CancelToken: cancelling, deadlines, parent and child tokens, callbacks and waits."""

from __future__ import annotations

import contextvars
import functools
import gc
import logging
import math
import os
import pickle
import selectors
import signal
import subprocess
import sys
import textwrap
import threading
import time
import weakref
from collections.abc import Callable
from pathlib import Path

import pytest
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule

from helpers import WAIT, FakeClock
from threadkit import (
    Cancelled,
    CancelToken,
    DeadlineExceeded,
    ThreadkitError,
    WorkerPool,
    _cancel,
    current_token,
)

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> FakeClock:
    """Drive every token deadline with a fake clock."""
    fake = FakeClock()
    monkeypatch.setattr(_cancel, "_clock", fake)
    return fake


def run_threads(count: int, target: Callable[[int], object]) -> None:
    """Run ``target(i)`` in ``count`` threads released together, and join them."""
    barrier = threading.Barrier(count)

    def body(i: int) -> None:
        barrier.wait(WAIT)
        target(i)

    threads = [threading.Thread(target=body, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(WAIT)
    assert not any(thread.is_alive() for thread in threads)


# -- cancelling ---------------------------------------------------------------------


def test_new_token_is_active() -> None:
    """A fresh token without a timeout is active, has no reason and no deadline."""
    token = CancelToken()
    assert not token.cancelled
    assert token.reason is None
    assert token.deadline is None
    assert token.remaining() is None
    token.raise_if_cancelled()


def test_cancel_returns_true_only_the_first_time() -> None:
    """Only the call that cancels returns True, and the first reason stays."""
    token = CancelToken()
    assert token.cancel("first") is True
    assert token.cancel("second") is False
    assert token.cancelled
    assert token.reason == "first"


def test_cancel_without_reason_leaves_reason_none() -> None:
    """Cancelling without a reason cancels with the reason None."""
    token = CancelToken()
    token.cancel()
    assert token.cancelled
    assert token.reason is None


@pytest.mark.usefixtures("fast_switching")
def test_concurrent_cancels_have_exactly_one_winner() -> None:
    """Of many threads cancelling at once, exactly one gets True and sets the reason."""
    for _ in range(20):
        token = CancelToken()
        wins: list[int] = []

        def cancel(i: int, token: CancelToken = token, wins: list[int] = wins) -> None:
            if token.cancel(i):
                wins.append(i)

        run_threads(8, cancel)
        assert len(wins) == 1
        assert token.reason == wins[0]


def test_raise_if_cancelled_raises_cancelled_with_the_reason() -> None:
    """raise_if_cancelled raises Cancelled carrying the token's reason."""
    token = CancelToken()
    reason = object()
    token.cancel(reason)
    with pytest.raises(Cancelled) as info:
        token.raise_if_cancelled()
    assert info.value.reason is reason
    assert isinstance(info.value, ThreadkitError)


def test_cancelled_error_message_and_pickling() -> None:
    """Cancelled says why in its message and survives pickling with its reason."""
    assert str(Cancelled()) == "cancelled"
    assert str(Cancelled("shutting down")) == "cancelled: shutting down"
    assert str(Cancelled(DeadlineExceeded)) == "cancelled: deadline exceeded"
    copy = pickle.loads(pickle.dumps(Cancelled("stop")))
    assert isinstance(copy, Cancelled)
    assert copy.reason == "stop"


def test_deadline_exceeded_is_a_singleton_with_a_clear_repr() -> None:
    """DeadlineExceeded keeps its identity through pickling and reads clearly."""
    assert pickle.loads(pickle.dumps(DeadlineExceeded)) is DeadlineExceeded
    assert repr(DeadlineExceeded) == "DeadlineExceeded"
    assert str(DeadlineExceeded) == "deadline exceeded"


def test_token_cannot_be_subclassed() -> None:
    """CancelToken is final."""
    with pytest.raises(TypeError, match="final"):
        type("Sub", (CancelToken,), {})


@pytest.mark.parametrize("parent", [42, "token", object()])
def test_parent_must_be_a_token(parent: object) -> None:
    """A parent that is not a CancelToken is refused at construction."""
    with pytest.raises(TypeError, match="parent must be a CancelToken or None"):
        CancelToken(parent)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("value", "error"),
    [(-1, ValueError), (math.nan, ValueError), (math.inf, ValueError), (True, TypeError)],
)
def test_bad_timeouts_are_refused_everywhere(value: object, error: type[Exception]) -> None:
    """The constructor, child, wait and sleep apply the one timeout rule."""
    token = CancelToken()
    with pytest.raises(error, match="timeout"):
        CancelToken(timeout=value)  # type: ignore[arg-type]
    with pytest.raises(error, match="timeout"):
        token.child(timeout=value)  # type: ignore[arg-type]
    with pytest.raises(error, match="timeout"):
        token.wait(value)  # type: ignore[arg-type]
    with pytest.raises(error, match="seconds"):
        token.sleep(value)  # type: ignore[arg-type]


def test_sleep_requires_a_number() -> None:
    """sleep(None) is refused: sleeping forever is spelled wait()."""
    with pytest.raises(TypeError, match="seconds must be a number"):
        CancelToken().sleep(None)  # type: ignore[arg-type]


def test_repr_shows_live_state() -> None:
    """The repr says whether the token is active, its reason, callbacks and children."""
    token = CancelToken()
    child = token.child()
    token.add_callback(lambda _: None)
    assert "active" in repr(token)
    assert "callbacks=1" in repr(token)
    assert "children=1" in repr(token)
    token.cancel("stop")
    assert "cancelled reason='stop'" in repr(token)
    assert "callbacks=0 children=0" in repr(token)
    assert "cancelled" in repr(child)


def test_repr_survives_a_reason_with_a_broken_repr() -> None:
    """A reason whose repr raises does not break the token's repr."""

    class Broken:
        def __repr__(self) -> str:
            raise RuntimeError("no repr")

    token = CancelToken()
    token.cancel(Broken())
    assert "failing repr" in repr(token)


# -- waiting ------------------------------------------------------------------------


def test_wait_returns_at_once_when_cancelled() -> None:
    """wait and sleep return True at once on a cancelled token."""
    token = CancelToken()
    token.cancel()
    assert token.wait() is True
    assert token.wait(0) is True
    assert token.sleep(3600) is True


def test_wait_times_out_on_an_active_token() -> None:
    """wait returns False when its timeout expires and the token stays active."""
    token = CancelToken()
    assert token.wait(0) is False
    assert token.wait(0.01) is False
    assert not token.cancelled


def test_sleep_returns_false_after_the_full_time() -> None:
    """sleep returns False when the whole time passed without cancellation."""
    token = CancelToken()
    start = time.monotonic()
    assert token.sleep(0.02) is False
    assert time.monotonic() - start >= 0.02


@pytest.mark.parametrize("method", ["wait", "sleep"])
def test_cancel_from_another_thread_wakes_a_long_wait(method: str) -> None:
    """A sleep(60) or wait() in one thread returns True soon after another thread cancels."""
    token = CancelToken()
    started = threading.Event()
    results: list[bool] = []

    def waiter() -> None:
        started.set()
        results.append(token.sleep(60) if method == "sleep" else token.wait())

    thread = threading.Thread(target=waiter)
    start = time.monotonic()
    thread.start()
    assert started.wait(WAIT)
    token.cancel("wake up")
    thread.join(WAIT)
    assert not thread.is_alive()
    assert results == [True]
    assert time.monotonic() - start < WAIT


def test_polling_loop_stops_when_cancelled() -> None:
    """The ``while not token.sleep(...)`` idiom stops as soon as the token is cancelled."""
    token = CancelToken()
    polls = threading.Semaphore(0)
    rounds = 0

    def poller() -> None:
        nonlocal rounds
        while not token.sleep(0.001):
            rounds += 1
            polls.release()

    thread = threading.Thread(target=poller)
    thread.start()
    for _ in range(3):
        assert polls.acquire(timeout=WAIT)
    token.cancel()
    thread.join(WAIT)
    assert not thread.is_alive()
    assert rounds >= 3


# -- deadlines ----------------------------------------------------------------------


def test_deadline_cancels_lazily_on_observation(clock: FakeClock) -> None:
    """A token past its deadline is cancelled with DeadlineExceeded when first observed."""
    token = CancelToken(timeout=5)
    assert token.deadline == 1005.0
    assert token.remaining() == 5.0
    clock.advance(4.5)
    assert token.wait(0) is False
    assert token.remaining() == 0.5
    clock.advance(0.5)
    assert token.remaining() == 0.0
    assert token.cancelled
    assert token.reason is DeadlineExceeded
    with pytest.raises(Cancelled) as info:
        token.raise_if_cancelled()
    assert info.value.reason is DeadlineExceeded


@pytest.mark.parametrize(
    "observe",
    [
        lambda t: t.cancelled,
        lambda t: t.reason,
        lambda t: t.remaining(),
        lambda t: t.wait(0),
        lambda t: t.sleep(0),
        lambda t: t.child(),
        lambda t: t.add_callback(lambda _: None),
    ],
)
def test_every_observation_notices_a_passed_deadline(
    clock: FakeClock, observe: Callable[[CancelToken], object]
) -> None:
    """Every reading or blocking call cancels a token whose deadline has passed."""
    token = CancelToken(timeout=1)
    ran: list[object] = []
    token.add_callback(lambda t: ran.append(t.reason))
    clock.advance(1)
    observe(token)
    assert ran == [DeadlineExceeded]


def test_repr_does_not_fire_a_passed_deadline(clock: FakeClock) -> None:
    """A repr reports a passed deadline without cancelling the token or running callbacks."""
    token = CancelToken(timeout=1)
    ran: list[object] = []
    token.add_callback(ran.append)
    clock.advance(2)
    assert "deadline passed" in repr(token)
    assert ran == []
    assert token.cancelled
    assert ran == [token]


def test_explicit_cancel_keeps_the_deadline(clock: FakeClock) -> None:
    """Cancelling before the deadline keeps the given reason and the remaining time."""
    token = CancelToken(timeout=10)
    token.cancel("early")
    clock.advance(20)
    assert token.reason == "early"
    assert token.remaining() == 0.0


def test_zero_timeout_starts_cancelled(clock: FakeClock) -> None:
    """A token with timeout=0 is cancelled by its deadline at the first look."""
    token = CancelToken(timeout=0)
    assert token.cancelled
    assert token.reason is DeadlineExceeded


@pytest.mark.parametrize("method", ["wait", "sleep"])
def test_waits_end_at_the_deadline(method: str) -> None:
    """wait and a long sleep return True on time when the deadline passes, with no timer thread."""
    token = CancelToken(timeout=0.05)
    before = threading.active_count()
    start = time.monotonic()
    result = token.sleep(60) if method == "sleep" else token.wait(WAIT)
    assert result is True
    assert time.monotonic() - start < WAIT
    assert token.reason is DeadlineExceeded
    assert threading.active_count() == before


def test_wait_timeout_shorter_than_deadline_returns_false() -> None:
    """A wait whose timeout ends before the deadline returns False."""
    token = CancelToken(timeout=3600)
    assert token.wait(0.01) is False
    assert not token.cancelled


# -- parents and children -----------------------------------------------------------


def test_cancelling_a_parent_cancels_descendants_with_its_reason() -> None:
    """Children and grandchildren are cancelled with the parent's reason."""
    parent = CancelToken()
    child = parent.child()
    grandchild = child.child()
    other = CancelToken(parent)
    parent.cancel("stop")
    for token in (child, grandchild, other):
        assert token.cancelled
        assert token.reason == "stop"


def test_cancelling_a_child_leaves_parent_and_siblings_alone() -> None:
    """Cancellation never travels up the tree or sideways."""
    parent = CancelToken()
    child = parent.child()
    sibling = parent.child()
    grandchild = child.child()
    child.cancel("child only")
    assert grandchild.reason == "child only"
    assert not parent.cancelled
    assert not sibling.cancelled


def test_descendant_already_cancelled_keeps_its_reason() -> None:
    """A child cancelled earlier keeps its own reason when the parent is cancelled."""
    parent = CancelToken()
    child = parent.child()
    child.cancel("mine")
    parent.cancel("parent's")
    assert child.reason == "mine"


def test_child_of_cancelled_parent_starts_cancelled() -> None:
    """A child made from a cancelled parent is cancelled with the parent's reason."""
    parent = CancelToken()
    parent.cancel("gone")
    child = parent.child(timeout=100)
    assert child.cancelled
    assert child.reason == "gone"
    ran: list[CancelToken] = []
    child.add_callback(ran.append)
    assert ran == [child]


def test_child_of_parent_past_its_deadline_starts_cancelled(clock: FakeClock) -> None:
    """A child made after the parent's deadline is cancelled with DeadlineExceeded."""
    parent = CancelToken(timeout=1)
    clock.advance(1)
    child = CancelToken(parent)
    assert child.reason is DeadlineExceeded
    assert parent.reason is DeadlineExceeded


def test_child_deadline_is_the_earliest_of_its_own_and_ancestors(clock: FakeClock) -> None:
    """A child's deadline is the earliest of its timeout and every ancestor's."""
    root = CancelToken(timeout=10)
    middle = root.child()
    assert middle.deadline == 1010.0
    assert middle.child(timeout=5).deadline == 1005.0
    assert middle.child(timeout=50).deadline == 1010.0
    assert CancelToken(timeout=7).child().deadline == 1007.0


def test_child_deadline_passing_does_not_cancel_the_parent(clock: FakeClock) -> None:
    """A child's own deadline cancels the child only."""
    parent = CancelToken(timeout=10)
    child = parent.child(timeout=1)
    clock.advance(2)
    assert child.reason is DeadlineExceeded
    assert not parent.cancelled


def test_child_notices_the_parent_deadline_itself(clock: FakeClock) -> None:
    """A child past its parent's deadline cancels itself even if nobody looked at the parent."""
    parent = CancelToken(timeout=1)
    child = parent.child()
    clock.advance(1)
    assert child.reason is DeadlineExceeded
    assert parent.reason is DeadlineExceeded


def test_parent_does_not_keep_children_alive() -> None:
    """A child nobody references is collected even though its parent lives."""
    parent = CancelToken()
    child = parent.child()
    ref = weakref.ref(child)
    del child
    gc.collect()
    assert ref() is None
    assert "children=0" in repr(parent)


def test_child_does_not_keep_parent_alive() -> None:
    """A parent nobody references is collected while its child lives on."""
    parent = CancelToken(timeout=3600)
    child = parent.child()
    ref = weakref.ref(parent)
    del parent
    gc.collect()
    assert ref() is None
    assert not child.cancelled
    assert child.deadline is not None
    child.cancel()
    assert child.cancelled


def test_many_short_lived_children_do_not_pile_up() -> None:
    """A long-lived parent holds nothing for children that were collected."""
    parent = CancelToken()
    for _ in range(100_000):
        parent.child().add_callback(lambda _: None)
    assert len(parent._node.children) == 0


def test_cancel_reaches_descendants_of_a_collected_token() -> None:
    """A grandchild is still cancelled by the root when nobody kept the middle token."""
    root = CancelToken()
    grandchild = root.child().child()
    gc.collect()
    root.cancel("through a ghost")
    assert grandchild.reason == "through a ghost"


def test_collected_middle_tokens_are_pruned_with_their_last_descendant() -> None:
    """Once the descendants of a collected token are gone, its parent holds nothing for it."""
    root = CancelToken()
    for _ in range(10_000):
        root.child().child().child().add_callback(lambda _: None)
    gc.collect()
    assert len(root._node.children) == 0
    leaf = root.child().child().child()
    assert len(root._node.children) == 1
    leaf.cancel()
    assert len(root._node.children) == 0


def test_collected_middle_token_does_not_keep_parent_alive() -> None:
    """A grandchild keeps neither its collected parent nor its grandparent alive."""
    root = CancelToken()
    root.add_callback(lambda _: None)
    grandchild = root.child().child()
    ref = weakref.ref(root)
    del root
    gc.collect()
    assert ref() is None
    assert not grandchild.cancelled


def test_cancelled_child_is_dropped_by_its_parent() -> None:
    """A child cancelled on its own no longer appears among its parent's children."""
    parent = CancelToken()
    kept = [parent.child() for _ in range(3)]
    kept[1].cancel()
    assert "children=2" in repr(parent)
    parent.cancel()
    assert all(token.cancelled for token in kept)


def test_deep_chain_cancels_without_recursion_error() -> None:
    """Cancelling the root of a very deep chain reaches the last token."""
    tokens = [CancelToken()]
    for _ in range(sys.getrecursionlimit() * 3):
        tokens.append(tokens[-1].child())
    tokens[0].cancel("deep")
    assert tokens[-1].reason == "deep"


@pytest.mark.usefixtures("fast_switching")
def test_children_made_while_parent_is_cancelled_all_end_cancelled() -> None:
    """A child created concurrently with the parent's cancel is never left active."""
    for _ in range(20):
        parent = CancelToken()
        children: list[CancelToken] = []

        def work(
            i: int, parent: CancelToken = parent, children: list[CancelToken] = children
        ) -> None:
            if i == 0:
                parent.cancel("race")
            else:
                children.extend(parent.child() for _ in range(20))

        run_threads(4, work)
        assert all(child.reason == "race" for child in children)


# -- callbacks ----------------------------------------------------------------------


def test_callbacks_run_once_in_registration_order() -> None:
    """Callbacks get the token, run once, in the order they were added."""
    token = CancelToken()
    calls: list[tuple[str, CancelToken]] = []
    token.add_callback(lambda t: calls.append(("a", t)))
    token.add_callback(lambda t: calls.append(("b", t)))
    token.cancel()
    token.cancel()
    assert calls == [("a", token), ("b", token)]


def test_callback_added_after_cancel_runs_at_once_in_the_caller() -> None:
    """add_callback on a cancelled token runs the callback now, in the calling thread."""
    token = CancelToken()
    token.cancel()
    threads: list[threading.Thread] = []
    unregister = token.add_callback(lambda _: threads.append(threading.current_thread()))
    assert threads == [threading.current_thread()]
    unregister()


def test_callbacks_run_in_the_cancelling_thread() -> None:
    """A callback runs in the thread that calls cancel."""
    token = CancelToken()
    seen: list[threading.Thread] = []
    token.add_callback(lambda _: seen.append(threading.current_thread()))
    thread = threading.Thread(target=token.cancel)
    thread.start()
    thread.join(WAIT)
    assert seen == [thread]


def test_unregister_stops_the_callback_and_is_idempotent() -> None:
    """An unregistered callback does not run, and unregistering twice is harmless."""
    token = CancelToken()
    ran: list[str] = []
    unregister = token.add_callback(lambda _: ran.append("no"))
    token.add_callback(lambda _: ran.append("yes"))
    unregister()
    unregister()
    token.cancel()
    unregister()
    assert ran == ["yes"]
    assert "callbacks=0" in repr(token)


def test_unregister_does_not_keep_the_token_alive() -> None:
    """Holding the unregister function does not keep the token alive."""
    token = CancelToken()
    unregister = token.add_callback(lambda _: None)
    ref = weakref.ref(token)
    del token
    gc.collect()
    assert ref() is None
    unregister()


def test_callback_can_unregister_a_later_callback() -> None:
    """A callback that unregisters one not yet run prevents it from running."""
    token = CancelToken()
    ran: list[str] = []
    unregister_second: list[Callable[[], None]] = []
    token.add_callback(lambda _: unregister_second[0]())
    unregister_second.append(token.add_callback(lambda _: ran.append("second")))
    token.cancel()
    assert ran == []


def test_callback_may_use_the_token_freely() -> None:
    """A callback can read, cancel, wait on and add callbacks to its token without deadlock."""
    token = CancelToken()
    seen: list[object] = []

    def callback(t: CancelToken) -> None:
        seen.append(t.reason)
        seen.append(t.cancel("again"))
        seen.append(t.wait(WAIT))
        t.add_callback(lambda inner: seen.append("nested"))
        seen.append(repr(t).startswith("<threadkit.CancelToken cancelled"))

    token.add_callback(callback)
    thread = threading.Thread(target=token.cancel, args=("first",))
    thread.start()
    thread.join(WAIT)
    assert not thread.is_alive()
    assert seen == ["first", False, True, "nested", True]


def test_raising_callback_is_logged_and_others_still_run(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A failing callback is logged on "threadkit"; later callbacks and children are unaffected."""
    token = CancelToken()
    child = token.child()
    ran: list[str] = []

    def bad(_: CancelToken) -> None:
        raise ValueError("callback broke")

    def exits(_: CancelToken) -> None:
        raise SystemExit(3)

    token.add_callback(bad)
    token.add_callback(exits)
    token.add_callback(lambda _: ran.append("parent"))
    child.add_callback(lambda _: ran.append("child"))
    with caplog.at_level(logging.ERROR, logger="threadkit"):
        assert token.cancel() is True
    assert ran == ["parent", "child"]
    records = [r for r in caplog.records if r.name == "threadkit"]
    assert len(records) == 2
    assert records[0].exc_info is not None
    assert isinstance(records[0].exc_info[1], ValueError)
    assert "bad" in records[0].getMessage()


def test_raising_callback_added_late_is_logged_not_raised(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A callback that runs at once in add_callback and raises is logged, not propagated."""
    token = CancelToken()
    token.cancel()

    def bad(_: CancelToken) -> None:
        raise RuntimeError("late")

    with caplog.at_level(logging.ERROR, logger="threadkit"):
        token.add_callback(bad)
    assert any(r.name == "threadkit" for r in caplog.records)


def test_keyboard_interrupt_in_callback_is_raised_after_all_ran() -> None:
    """Ctrl-C raised inside a callback is not swallowed, but only after every callback ran."""
    token = CancelToken()
    child = token.child()
    ran: list[str] = []

    def interrupted(_: CancelToken) -> None:
        raise KeyboardInterrupt

    token.add_callback(interrupted)
    token.add_callback(lambda _: ran.append("after"))
    child.add_callback(lambda _: ran.append("child"))
    with pytest.raises(KeyboardInterrupt):
        token.cancel()
    assert ran == ["after", "child"]
    assert token.cancelled
    assert child.cancelled


def test_descendants_are_cancelled_before_any_callback_runs() -> None:
    """When the first callback runs, every descendant already reports cancelled."""
    parent = CancelToken()
    grandchild = parent.child().child()
    seen: list[bool] = []
    parent.add_callback(lambda _: seen.append(grandchild.cancelled))
    parent.cancel()
    assert seen == [True]


def test_add_callback_refuses_non_callables() -> None:
    """add_callback raises TypeError at once for something that cannot be called."""
    with pytest.raises(TypeError, match="fn must be callable"):
        CancelToken().add_callback(42)  # type: ignore[arg-type]


def test_cancel_releases_callbacks() -> None:
    """After cancel the token holds no reference to the callbacks it ran."""

    class Callback:
        def __call__(self, token: CancelToken) -> None:
            pass

    token = CancelToken()
    callback = Callback()
    token.add_callback(callback)
    ref = weakref.ref(callback)
    del callback
    token.cancel()
    gc.collect()
    assert ref() is None


@pytest.mark.usefixtures("fast_switching")
def test_callbacks_added_while_cancelling_run_exactly_once() -> None:
    """Each callback added concurrently with cancel runs exactly once, never zero or twice."""
    for _ in range(20):
        token = CancelToken()
        counts = [0] * 30
        lock = threading.Lock()

        def bump_for(
            i: int, _: CancelToken, counts: list[int] = counts, lock: threading.Lock = lock
        ) -> None:
            with lock:
                counts[i] += 1

        def work(i: int, token: CancelToken = token) -> None:
            if i == 0:
                token.cancel()
            else:
                for j in range(10):
                    token.add_callback(functools.partial(bump_for, (i - 1) * 10 + j))

        run_threads(4, work)
        assert counts == [1] * 30


# -- current_token ------------------------------------------------------------------


def test_current_token_is_none_outside_a_task() -> None:
    """Outside a pool task there is no current token."""
    assert current_token() is None


def test_current_token_follows_the_context() -> None:
    """current_token returns what the pool set in the task's context, only there."""
    with WorkerPool(1) as pool:
        seen = pool.submit(current_token).result(WAIT)
        ctx = contextvars.copy_context()
        assert pool.submit(ctx.run, current_token).result(WAIT) is pool.cancel_token
    assert seen is pool.cancel_token
    assert current_token() is None
    assert ctx.run(current_token) is None  # the submitter's context was left alone


# -- a state machine over token trees -----------------------------------------------


class TokenTree(RuleBasedStateMachine):
    """Random trees of tokens, cancels and callbacks keep the tree invariants."""

    def __init__(self) -> None:
        super().__init__()
        self.tokens: list[CancelToken] = [CancelToken()]
        self.parents: dict[int, int | None] = {0: None}
        self.calls: dict[int, int] = {}
        self.registered: list[int] = []

    @rule(data=st.data())
    def make_child(self, data: st.DataObject) -> None:
        parent = data.draw(st.integers(0, len(self.tokens) - 1))
        self.tokens.append(self.tokens[parent].child())
        self.parents[len(self.tokens) - 1] = parent

    @rule(data=st.data(), reason=st.sampled_from(["a", "b", None]))
    def cancel(self, data: st.DataObject, reason: str | None) -> None:
        index = data.draw(st.integers(0, len(self.tokens) - 1))
        was = self.tokens[index].cancelled
        assert self.tokens[index].cancel(reason) is (not was)

    @rule(data=st.data())
    def add_callback(self, data: st.DataObject) -> None:
        index = data.draw(st.integers(0, len(self.tokens) - 1))
        self.calls[index] = self.calls.get(index, 0)
        self.registered.append(index)

        def bump(_: CancelToken, index: int = index) -> None:
            self.calls[index] += 1

        self.tokens[index].add_callback(bump)

    @invariant()
    def children_follow_parents(self) -> None:
        for index, parent in self.parents.items():
            if parent is not None and self.tokens[parent].cancelled:
                assert self.tokens[index].cancelled

    @invariant()
    def callbacks_ran_once_per_registration_when_cancelled(self) -> None:
        for index, count in self.calls.items():
            expected = self.registered.count(index) if self.tokens[index].cancelled else 0
            assert count == expected


TestTokenTree = TokenTree.TestCase
TestTokenTree.settings = settings(max_examples=50, stateful_step_count=30, deadline=None)


# -- Ctrl-C -------------------------------------------------------------------------

CTRL_C_SCRIPT = """
import sys
from threadkit import CancelToken

token = CancelToken(timeout={timeout})
print("READY", flush=True)
{call}
print("NOT INTERRUPTED", flush=True)
"""


@pytest.mark.skipif(sys.platform == "win32", reason="SIGINT to a child needs POSIX")
@pytest.mark.parametrize(
    ("timeout", "call"),
    [
        ("None", "token.wait()"),
        ("None", "token.sleep(60)"),
        ("3600", "token.wait(60)"),
    ],
)
def test_ctrl_c_interrupts_waits_in_the_main_thread(timeout: str, call: str) -> None:
    """SIGINT reaches a main thread blocked in wait or sleep and ends it with KeyboardInterrupt."""
    script = textwrap.dedent(CTRL_C_SCRIPT).format(timeout=timeout, call=call)
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    with subprocess.Popen(
        [sys.executable, "-c", script],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
        text=True,
    ) as proc:
        try:
            assert proc.stdout is not None
            with selectors.DefaultSelector() as selector:
                selector.register(proc.stdout, selectors.EVENT_READ)
                assert selector.select(WAIT), "child never printed READY"
            assert proc.stdout.readline().strip() == "READY"
            start = time.monotonic()
            proc.send_signal(signal.SIGINT)
            out, err = proc.communicate(timeout=WAIT)
            assert time.monotonic() - start < WAIT
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.communicate()
    assert proc.returncode != 0
    assert "KeyboardInterrupt" in err
    assert "NOT INTERRUPTED" not in out
