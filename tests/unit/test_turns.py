"""runtime/turns.py with real threads: changes to one key queued while a write is on it go out
together in the next write, in the order they came; a change that must go alone does; a caller
out of time leaves the queue unwritten; a failed write fails what it carried, or gives it back."""

from __future__ import annotations

import threading
import time

import pytest

from runtime.calls import CallContext, serving
from runtime.turns import Change, Turns

WAIT = 10.0  # the longest any step here may take before the test fails


class OutOfTime(Exception):
    pass


class NotSent(Exception):
    pass


class Row:
    """A key's writes: each group written, in turn; the first write holds until `let_go` is set,
    so the changes that arrive meanwhile queue behind it."""

    def __init__(self, turns: Turns, key: str = "row"):
        self.turns, self.key = turns, key
        self.groups: list[list[str]] = []
        self.writing = threading.Event()
        self.let_go = threading.Event()
        self.fail: dict[str, BaseException] = {}  # a write carrying the change of this name raises this

    def write_all(self, group: list[Change]) -> dict[Change, str]:
        names = [change.decide for change in group]
        if not self.groups:
            self.writing.set()
            assert self.let_go.wait(WAIT)
        for name in names:
            if name in self.fail:
                raise self.fail.pop(name)
        self.groups.append(names)
        return {change: f"wrote {change.decide}" for change in group}

    def start(self, name: str, *, alone: bool = False, call: CallContext | None = None) -> dict:
        """Takes a turn for `name` on its own thread; returns where its result or error will be."""
        outcome: dict = {}

        def run():
            try:
                if call is None:
                    outcome["result"] = self.turns.take(self.key, Change(name, alone), self.write_all)
                else:
                    with serving(call):
                        outcome["result"] = self.turns.take(self.key, Change(name, alone), self.write_all)
            except Exception as error:  # the test looks at it
                outcome["error"] = error
        outcome["thread"] = threading.Thread(target=run)
        outcome["thread"].start()
        return outcome

    def queue_behind_first(self, *names: str, alone: tuple[str, ...] = ()) -> list[dict]:
        """The first change writing (and held), then each of `names` queued behind it in turn."""
        first = self.start("first")
        assert self.writing.wait(WAIT)
        started = [first]
        for count, name in enumerate(names, start=1):
            started.append(self.start(name, alone=name in alone))
            self.wait_until_queued(count)
        return started

    def wait_until_queued(self, count: int) -> None:
        deadline = time.monotonic() + WAIT
        while self.turns.queued(self.key) < count:
            assert time.monotonic() < deadline, f"{count} changes never queued"
            time.sleep(0.001)

    @staticmethod
    def finish(started: list[dict]) -> None:
        for outcome in started:
            outcome["thread"].join(WAIT)
            assert not outcome["thread"].is_alive()


def turns(most: int = 32) -> Turns:
    return Turns(lambda: OutOfTime("no time left"), most, requeue=(NotSent,))


def test_changes_queued_during_a_write_go_out_together_in_the_order_they_came():
    row = Row(turns())
    started = row.queue_behind_first("b", "c", "d")
    row.let_go.set()
    row.finish(started)
    assert row.groups == [["first"], ["b", "c", "d"]]
    assert [outcome["result"] for outcome in started] == ["wrote first", "wrote b", "wrote c", "wrote d"]
    assert row.turns.queued(row.key) == 0


def test_other_keys_do_not_wait():
    row = Row(turns())
    started = row.queue_behind_first()
    other = Row(row.turns, key="other row")
    other.let_go.set()
    other.groups.append([])  # its writes do not hold
    assert other.turns.take("other row", Change("x"), other.write_all) == "wrote x"
    row.let_go.set()
    row.finish(started)


def test_a_change_that_must_go_alone_does_and_no_write_carries_more_than_most():
    row = Row(turns(most=2))
    started = row.queue_behind_first("b", "alone", "c", "d", "e", alone=("alone",))
    row.let_go.set()
    row.finish(started)
    assert ["alone"] in row.groups
    assert all(len(group) <= 2 for group in row.groups)
    assert sorted(name for group in row.groups for name in group) == ["alone", "b", "c", "d", "e", "first"]
    assert all("error" not in outcome for outcome in started)


def test_a_caller_out_of_time_leaves_the_queue_and_is_never_written():
    row = Row(turns())
    started = row.queue_behind_first("b")
    late = row.start("late", call=CallContext.starting_now(0.2))
    late["thread"].join(WAIT)
    assert isinstance(late["error"], OutOfTime)
    row.let_go.set()
    row.finish(started)
    assert row.groups == [["first"], ["b"]]


def test_a_failed_write_fails_every_change_it_carried():
    row = Row(turns())
    row.fail["b"] = RuntimeError("the store is down")
    started = row.queue_behind_first("b", "c")
    row.let_go.set()
    row.finish(started)
    assert [str(outcome.get("error")) for outcome in started[1:]] == ["the store is down"] * 2
    assert row.groups == [["first"]]


def test_a_write_refused_before_sending_gives_the_others_back_to_the_queue():
    row = Row(turns())
    row.fail["b"] = NotSent("the turn's own caller had no time left")
    started = row.queue_behind_first("b", "c")
    row.let_go.set()
    row.finish(started)
    # The thread whose turn it was gets the error; the other change is written in a turn of its own.
    refused = [outcome for outcome in started[1:] if "error" in outcome]
    assert len(refused) == 1 and isinstance(refused[0]["error"], NotSent)
    written = [outcome["result"] for outcome in started[1:] if "result" in outcome]
    assert len(written) == 1
    assert row.groups == [["first"], [written[0].removeprefix("wrote ")]]


@pytest.mark.parametrize("threads", [16])
def test_many_threads_each_get_their_own_result(threads):
    row = Row(turns(most=4))
    row.let_go.set()
    started = [row.start(f"t{i}") for i in range(threads)]
    row.finish(started)
    assert [outcome["result"] for outcome in started] == [f"wrote t{i}" for i in range(threads)]
    assert sorted(name for group in row.groups for name in group) == sorted(f"t{i}" for i in range(threads))
