"""A lean HTTP/1.1 load client for the benchmarks: asyncio protocols over keep-alive connections to 127.0.0.1.

    outcomes = asyncio.run(open_loop(port, next_request, rate=50, seconds=60))         # a fixed arrival rate
    outcomes = asyncio.run(closed_loop(port, next_request, concurrency=4, seconds=10))  # N clients in turn

`next_request(n)` returns the n-th Request. The open loop sends on schedule whether or not earlier
answers came back, as independent users do, so an overloaded server shows as waits, refusals and
timeouts rather than as a slower client. No task or future per request, only a protocol per connection
and a sweep for timeouts: about 50 us of CPU per request, so one process can offer a thousand requests
a second on the cores the servers use (a `requests` call costs ten times that).
"""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import Callable
from dataclasses import dataclass

_IDLE_S = 2.0  # a connection idle longer is not reused: the server closes it after its keep-alive (gunicorn: 5 s)
_SWEEP_S = 0.05


@dataclass(frozen=True)
class Request:
    kind: str  # what it is, for the report: "GET product", "POST order", ...
    method: str
    path: str
    headers: tuple[tuple[str, str], ...] = ()
    body: bytes = b""

    def encode(self, port: int) -> bytes:
        lines = [f"{self.method} {self.path} HTTP/1.1", f"Host: 127.0.0.1:{port}",
                 *(f"{name}: {value}" for name, value in self.headers)]
        if self.method in ("POST", "PUT", "PATCH"):
            lines += ["Content-Type: application/json", f"Content-Length: {len(self.body)}"]
        return ("\r\n".join(lines) + "\r\n\r\n").encode() + self.body


@dataclass(frozen=True)
class Outcome:
    kind: str
    # The HTTP status, or: "timeout" (no answer in time, connecting included), "not sent" (the client was
    # at its connection limit), "closed" (the server closed the connection before answering), an error's name.
    status: int | str
    seconds: float
    retry_after: bool  # the answer carried Retry-After
    sent_at: float  # time.monotonic()


class _Connection(asyncio.Protocol):
    def __init__(self, client: _Client):
        self.client = client
        self.transport: asyncio.Transport | None = None
        self.buffer = bytearray()
        self.kind: str | None = None  # the request in flight on it
        self.raw = b""
        self.sent_at = self.idle_since = 0.0
        self.closed = False

    def send(self, kind: str, raw: bytes) -> None:
        self.kind, self.raw, self.sent_at = kind, raw, time.monotonic()
        if self.transport is not None:
            self.transport.write(raw)

    def connection_made(self, transport) -> None:
        self.transport = transport
        if self.closed:
            transport.close()
        elif self.kind is not None:
            transport.write(self.raw)

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        end = self.buffer.find(b"\r\n\r\n")
        if end < 0 or self.kind is None:
            return
        lines = self.buffer[:end].decode("latin-1").split("\r\n")
        headers = {}
        for line in lines[1:]:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        total = end + 4 + int(headers.get("content-length") or 0)
        if len(self.buffer) < total:
            return
        del self.buffer[:total]
        self.client.finished(self, int(lines[0].split()[1]), "retry-after" in headers,
                             headers.get("connection", "").lower() != "close")

    def connection_lost(self, error) -> None:
        if self.kind is not None:
            self.client.finished(self, "closed" if error is None else type(error).__name__, False, False)
        self.client.drop(self)


class _Client:
    def __init__(self, port: int, timeout: float, max_connections: int):
        self._port, self._timeout, self._max = port, timeout, max_connections
        self._loop = asyncio.get_running_loop()
        self._idle: list[_Connection] = []
        self.in_flight: set[_Connection] = set()
        self.open = 0
        self.outcomes: list[Outcome] = []
        self.on_finished: Callable[[], None] = lambda: None

    def send(self, request: Request) -> None:
        connection = self._idle_connection()
        if connection is None:
            if self.open >= self._max:
                self.outcomes.append(Outcome(request.kind, "not sent", 0.0, False, time.monotonic()))
                return
            connection = self._connect()
        connection.send(request.kind, request.encode(self._port))
        self.in_flight.add(connection)

    def _idle_connection(self) -> _Connection | None:
        now = time.monotonic()
        while self._idle:
            connection = self._idle.pop()
            if not connection.closed and now - connection.idle_since < _IDLE_S:
                return connection
            self.drop(connection)
        return None

    def _connect(self) -> _Connection:
        connection = _Connection(self)
        self.open += 1

        def failed(task: asyncio.Task) -> None:
            error = None if task.cancelled() else task.exception()
            if error is not None and not connection.closed:
                self.finished(connection, type(error).__name__, False, False)

        self._loop.create_task(self._loop.create_connection(lambda: connection, "127.0.0.1", self._port)
                               ).add_done_callback(failed)
        return connection

    def finished(self, connection: _Connection, status: int | str, retry_after: bool, reusable: bool) -> None:
        self.outcomes.append(Outcome(connection.kind, status, time.monotonic() - connection.sent_at, retry_after,
                                     connection.sent_at))
        connection.kind = None
        self.in_flight.discard(connection)
        if reusable:
            connection.idle_since = time.monotonic()
            self._idle.append(connection)
        else:
            self.drop(connection)
        self.on_finished()

    def drop(self, connection: _Connection) -> None:
        if not connection.closed:
            connection.closed = True
            self.open -= 1
            if connection.transport is not None:
                connection.transport.close()

    def sweep(self) -> None:
        """Gives up on requests unanswered for longer than the timeout."""
        now = time.monotonic()
        for connection in [c for c in self.in_flight if now - c.sent_at > self._timeout]:
            self.finished(connection, "timeout", False, False)

    async def drain(self) -> None:
        """Waits for every request in flight to be answered or given up (bounded by the timeout)."""
        while self.in_flight:
            self.sweep()
            await asyncio.sleep(_SWEEP_S)

    def close(self) -> None:
        for connection in self._idle:
            self.drop(connection)
        self._idle.clear()


async def open_loop(port: int, next_request: Callable[[int], Request], rate: float, seconds: float, *,
                    timeout: float = 10.0, max_connections: int = 4000) -> list[Outcome]:
    """Sends `rate` requests a second for `seconds`, each on schedule; returns when every one is answered
    or given up (at most `timeout` after the last was sent)."""
    client = _Client(port, timeout, max_connections)
    started, sent = time.monotonic(), 0
    while (elapsed := time.monotonic() - started) < seconds:
        while sent < int(elapsed * rate) + 1:
            client.send(next_request(sent))
            sent += 1
        client.sweep()
        await asyncio.sleep(min(0.005, 1 / rate))
    await client.drain()
    client.close()
    return client.outcomes


async def closed_loop(port: int, next_request: Callable[[int], Request], concurrency: int, seconds: float, *,
                      timeout: float = 10.0) -> list[Outcome]:
    """`concurrency` clients, each sending its next request when its last one is answered, for `seconds`."""
    client = _Client(port, timeout, concurrency)
    numbers, deadline = itertools.count(), time.monotonic() + seconds

    def next_one() -> None:
        if time.monotonic() < deadline:
            client.send(next_request(next(numbers)))

    client.on_finished = next_one
    for _ in range(concurrency):
        next_one()
    while time.monotonic() < deadline:
        client.sweep()
        await asyncio.sleep(_SWEEP_S)
    await client.drain()
    client.close()
    return client.outcomes
