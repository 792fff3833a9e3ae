"""Steady, bounded load through the edge for fault tests: a few client threads, until told to stop.

    with Load(lambda i: requests.get(url, timeout=30), threads=4) as load:
        ...break something...
    assert load.failures() == []

Each outcome is the HTTP status, or the exception's name if no answer came back.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

import requests


class Load:
    def __init__(self, request: Callable[[int], requests.Response], threads: int = 4, max_seconds: float = 120):
        self._request = request
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self.outcomes: list[tuple[float, str, int | str]] = []  # (when, what, status or error)
        self._deadline = time.monotonic() + max_seconds  # stops by itself, whatever the test does
        self._threads = [threading.Thread(target=self._run, args=(i,), daemon=True) for i in range(threads)]

    def _run(self, worker: int) -> None:
        n = worker
        while not self._stop.is_set() and time.monotonic() < self._deadline:
            started = time.monotonic()
            try:
                reply = self._request(n)
                outcome: int | str = reply.status_code
                what = f"{reply.request.method} {reply.request.path_url.split('?')[0]}"
                if reply.status_code >= 400:
                    what += f" {reply.text[:200]}"
            except requests.RequestException as error:
                outcome, what = type(error).__name__, str(error)[:200]
            with self._lock:
                self.outcomes.append((started, what, outcome))
            n += len(self._threads)

    def count(self) -> int:
        with self._lock:
            return len(self.outcomes)

    def failures(self, ok: Callable[[int | str], bool] = lambda status: status == 200) -> list:
        with self._lock:
            return [(what, status) for _, what, status in self.outcomes if not ok(status)]

    def wait_for(self, count: int, timeout: float = 30) -> None:
        """Waits until `count` more requests have been answered (so the load is really running)."""
        target, deadline = self.count() + count, time.monotonic() + timeout
        while self.count() < target:
            if time.monotonic() > deadline:
                raise TimeoutError(f"load stalled at {self.count()} requests")
            time.sleep(0.05)

    def __enter__(self) -> Load:
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(60)
