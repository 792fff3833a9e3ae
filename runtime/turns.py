"""Group commit by key: one write at a time per key in this process, carrying every change queued meanwhile.

    turns = Turns(out_of_time=lambda: TimeoutError("..."), most=32)
    result = turns.take(key, change, write_all)   # write_all(changes) -> {change: result}

Many threads changing one hot row by compare-and-set (a lightweight transaction) mostly lose to
each other: each lost round is a Paxos round paid for nothing, and the row serializes anyway. Here
the first thread to arrive for a key writes; the changes other threads queue for that key while it
does are written together in the next turn, by whichever of their threads takes it, in one
compare-and-set. A key's changes go out in the order they arrived, and at most `most` at a time.

A change that may not share a write (`alone=True`: its unknown outcome could not be settled for the
others) is written by itself in its turn. A thread waits for its turn no longer than the call it
serves has time (runtime.calls.served, less `answer_margin`); a change still queued then is taken out, never written
later behind its caller's back, and `out_of_time()` is raised. A write that
fails fails every change it carried with the same error, except a write refused before anything
was sent (NoTimeLeft: the turn's own caller ran out of time): the others go back to the queue.
"""

from __future__ import annotations

import dataclasses
import threading
import time
from collections.abc import Callable, Hashable
from typing import Any, Generic, TypeVar

from runtime.calls import served

Key = TypeVar("Key", bound=Hashable)
_NOT_YET = object()


@dataclasses.dataclass(eq=False)
class Change:
    """One caller's change in a key's queue: what `write_all` decides with, and what it came to."""

    decide: Any
    alone: bool = False
    result: Any = _NOT_YET
    error: BaseException | None = None

    @property
    def done(self) -> bool:
        return self.result is not _NOT_YET or self.error is not None


class _Queue:
    def __init__(self, lock: threading.Lock):
        self.waiting: list[Change] = []
        self.busy = False
        self.turn_over = threading.Condition(lock)


class Turns(Generic[Key]):
    def __init__(self, out_of_time: Callable[[], BaseException], most: int = 32, *,
                 requeue: tuple[type[BaseException], ...] = (), answer_margin: float = 0.0):
        self._out_of_time = out_of_time  # raised for a change whose caller's time ran out in the queue
        self._answer_margin = answer_margin  # a caller stops waiting this long before its deadline, to answer
        self._most = most
        self._requeue = requeue  # errors a turn's write raised before sending anything: the others wait again
        self._lock = threading.Lock()
        self._queues: dict[Key, _Queue] = {}

    def take(self, key: Key, change: Change, write_all: Callable[[list[Change]], dict[Change, Any]]) -> Any:
        """Queues `change` for `key`, waits until it is written (by this thread or another) and
        returns its result, or raises its error. write_all(changes) writes them together and returns
        each one's result."""
        with self._lock:
            queue = self._queues.get(key) or self._queues.setdefault(key, _Queue(self._lock))
            queue.waiting.append(change)
            while queue.busy and not change.done:
                # Still queued: wait as long as the call has time. Taken into the turn being written:
                # that write decides it, so wait for its end whatever the time.
                queued = change in queue.waiting
                if not queue.turn_over.wait(self._time_left() if queued else None) and change in queue.waiting:
                    queue.waiting.remove(change)
                    self._forget_if_idle(key, queue)
                    raise self._out_of_time()
            if not change.done:
                group = self._group(queue.waiting, change)
                queue.busy = True
        if change.done:
            return self._outcome(change)
        failed: BaseException | None = None
        try:
            results = write_all(group)
        except self._requeue as error:
            with self._lock:  # nothing was sent: the others are written in a later turn
                queue.waiting[:0] = [other for other in group if other is not change]
                change.error = error
                self._end_turn(key, queue)
            raise
        except BaseException as error:
            results, failed = {}, error
        with self._lock:
            for member in group:
                if failed is not None:
                    member.error = failed
                else:
                    member.result = results[member]
            self._end_turn(key, queue)
        return self._outcome(change)

    def _group(self, waiting: list[Change], change: Change) -> list[Change]:
        """The changes this turn writes, taken out of the queue in the order they came: `change` alone
        when it must be, else the oldest that may share a write, up to `most`, `change` among them."""
        if change.alone:
            group = [change]
        else:
            shared = [other for other in waiting if not other.alone]
            group = shared[:self._most]
            if change not in group:
                group = [*shared[:self._most - 1], change]
        taken = {id(member) for member in group}
        waiting[:] = [other for other in waiting if id(other) not in taken]
        return group

    def _end_turn(self, key: Key, queue: _Queue) -> None:
        queue.busy = False
        queue.turn_over.notify_all()
        self._forget_if_idle(key, queue)

    def _forget_if_idle(self, key: Key, queue: _Queue) -> None:
        if not queue.busy and not queue.waiting and self._queues.get(key) is queue:
            del self._queues[key]

    def queued(self, key: Key) -> int:
        """How many changes to `key` wait for a turn (not counting those being written)."""
        with self._lock:
            queue = self._queues.get(key)
            return len(queue.waiting) if queue else 0

    def _time_left(self) -> float | None:
        call = served()
        return None if call is None else max(0.0, call.deadline - time.monotonic() - self._answer_margin)

    @staticmethod
    def _outcome(change: Change) -> Any:
        if change.error is not None:
            raise change.error
        return change.result
