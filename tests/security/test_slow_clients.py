"""Slow clients cannot starve the edge (docs/security.md).

A real HTTPS edge (gunicorn, 2 workers x 8 threads) in front of a real gRPC service. For a minute,
100 TLS clients go slowly (half stall inside the handshake, half finish it and then trickle one
header line a second) and 100 more TCP connections send nothing at all; each reconnects as soon as
the edge drops it. Meanwhile one authenticated GET a second must be answered, nearly always within a
second. A connection that does not deliver its request head in time is closed: each kind of slow
client sees that happen.
"""

from __future__ import annotations

import multiprocessing
import os
import socket
import ssl
import threading
import time

import pytest
import requests

from harness import servers
from tests.support.bad_tokens import good_claims, new_issuer_key, sign
from tests.support.echo_service import echo_server

KEY = new_issuer_key()
OWNER = "0f8fad5b-d9cb-469f-a165-70867728950e"
HOLD_SECONDS = 60
# 99 % of the probes within 1 s. Measured beside four busy loops: the slowest 0.24 s (a worker's first
# request), the others at most 30 ms; starved, the edge answered no probe at all (docs/security.md row 30).
ANSWER_SECONDS = 1.0
HEADER_TIMEOUT_SECONDS = 10  # the edge's EDGE_HEADER_TIMEOUT_SECONDS in this test
SLOW_TLS, IDLE = 100, 100


@pytest.fixture(scope="module")
def https_edge(pki_dir, tmp_path_factory):
    with echo_server(pki_dir, tmp_path_factory.mktemp("echo"), KEY) as echo:
        edge = servers.ServiceProcess("edge", {
            "EDGE_PORT": "0", "EDGE_WORKERS": "2", "EDGE_THREADS": "8", "TLS_DIR": str(pki_dir),
            "EDGE_TLS_CERT_FILE": str(pki_dir / "edge.pem"), "EDGE_TLS_KEY_FILE": str(pki_dir / "edge.key"),
            "EDGE_HEADER_TIMEOUT_SECONDS": str(HEADER_TIMEOUT_SECONDS),
            "EDGE_UPSTREAMS": f"edgetest.v1.EchoService=127.0.0.1:{echo.port}",
            "JWKS_METHOD": "/edgetest.v1.EchoService/Keys",
            "TOKEN_ISSUER": servers.ISSUER, "TOKEN_AUDIENCE": servers.AUDIENCE,
            "PYTHONPATH": os.pathsep.join(filter(None, [str(echo.gen_dir), os.environ.get("PYTHONPATH")])),
        })
        try:
            # Each worker loads the app after gunicorn says it listens (about a second, longer under load);
            # a connection that arrives meanwhile waits in the kernel's backlog. That is start-up, not the
            # slow clients: the probe's minute begins once both workers serve.
            edge.wait_for_lines(r"worker \d+ serving", count=2)
            yield edge.port, str(pki_dir / "ca.pem")
            assert "Traceback" not in "".join(edge.lines), "".join(edge.lines[-30:])
        finally:
            assert edge.stop() == 0


class SlowClient(threading.Thread):
    """One slow client, connecting again whenever the edge closes it; counts those closes."""

    def __init__(self, port: int, kind: str, ca: str, stop: threading.Event):
        super().__init__(daemon=True)
        self.port, self.kind, self.stop = port, kind, stop
        self.context = ssl.create_default_context(cafile=ca)
        self.closed_by_edge = 0

    def run(self) -> None:
        while not self.stop.is_set():
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=HOLD_SECONDS) as raw:
                    self._be_slow(raw)
                self.closed_by_edge += 1
            except OSError:  # refused or reset: also the edge letting go; try again shortly
                self.closed_by_edge += 1
                self.stop.wait(0.2)

    def _be_slow(self, raw: socket.socket) -> None:
        if self.kind == "idle":
            self._until_closed(raw)
        elif self.kind == "handshake":
            raw.sendall(b"\x16\x03\x01\x02\x00\x01")  # the first bytes of a ClientHello, and no more
            self._until_closed(raw)
        else:
            with self.context.wrap_socket(raw, server_hostname="localhost") as tls:
                tls.sendall(f"GET /v1/secrets/{OWNER} HTTP/1.1\r\nHost: localhost\r\n".encode())
                for n in range(HOLD_SECONDS):
                    if self.stop.wait(1.0):
                        return
                    tls.sendall(f"X-Slow-{n}: still typing\r\n".encode())  # raises once the edge closed it

    def _until_closed(self, sock: socket.socket) -> None:
        # Wakes rarely: this process also serves the probe's gRPC calls (the echo service), and two
        # hundred clients polling often would slow it more than the edge is being tested for.
        sock.settimeout(5.0)
        while not self.stop.is_set():
            try:
                if not sock.recv(1024):
                    return
            except TimeoutError:
                continue


def _crowd(port: int, ca: str, stop, closes) -> None:
    """The slow clients, in a process of their own (so that two hundred threads reconnecting at once do
    not slow the probe and the echo service, which share the test's process); puts how often the
    edge closed each kind into `closes` when `stop` is set."""
    clients = [SlowClient(port, kind, ca, stop) for kind, count in
               (("handshake", SLOW_TLS // 2), ("headers", SLOW_TLS // 2), ("idle", IDLE)) for _ in range(count)]
    for client in clients:
        client.start()
    stop.wait()
    for client in clients:
        client.join(10)
    closes.put({kind: [c.closed_by_edge for c in clients if c.kind == kind] for kind in ("handshake", "headers", "idle")})


def test_slow_tls_clients_and_idle_connections_do_not_starve_the_edge(https_edge):
    port, ca = https_edge
    token = sign(KEY, good_claims(OWNER, "test.read"))
    spawn = multiprocessing.get_context("spawn")  # not fork: this process runs gRPC threads
    stop, closes = spawn.Event(), spawn.Queue()
    crowd = spawn.Process(target=_crowd, args=(port, ca, stop, closes), daemon=True)
    crowd.start()
    answered_in_time, probes, misses = 0, 0, []
    # The probe is a monitoring client: one kept-alive connection (gunicorn keeps it 5 s; a probe a
    # second reuses it), so each probe is a request that needs a thread, and a new connection only
    # when the edge closed the old one.
    probe = requests.Session()
    try:
        ends = time.monotonic() + HOLD_SECONDS
        while time.monotonic() < ends:
            began = time.monotonic()
            probes += 1
            try:
                reply = probe.get(f"https://127.0.0.1:{port}/v1/secrets/{OWNER}", verify=ca, timeout=ANSWER_SECONDS,
                                  headers={"Authorization": f"Bearer {token}"})
                outcome = reply.status_code
            except requests.RequestException as error:
                outcome = type(error).__name__
            took = time.monotonic() - began
            if outcome == 200 and took <= ANSWER_SECONDS:
                answered_in_time += 1
            else:
                misses.append(f"{outcome} after {took:.2f} s")
            time.sleep(max(0.0, 1.0 - (time.monotonic() - began)))
    finally:
        probe.close()
        stop.set()
        closed = closes.get(timeout=60)
        crowd.join(10)
    assert answered_in_time >= 0.99 * probes, f"{answered_in_time} of {probes} probes answered within {ANSWER_SECONDS} s: {misses}"
    # Each kind held its connection until the edge's header timeout closed it, then came back.
    assert all(sum(counts) >= len(counts) for counts in closed.values()), closed
