"""Start many calls at the same instant, to test what a store or service decides under a race."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


def race(count: int, attempt: Callable[[int], T], timeout: float = 60) -> list[T]:
    """Runs attempt(0..count-1) on `count` threads released together; returns their outcomes."""
    barrier = threading.Barrier(count)
    outcomes: list[T] = []
    lock = threading.Lock()

    def run(i: int) -> None:
        barrier.wait()
        outcome = attempt(i)
        with lock:
            outcomes.append(outcome)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout)
    return outcomes
