"""Admission control in the real edge (gunicorn with the edge's worker, one thread) in front of a real
service: a request that waited past EDGE_MAX_QUEUE_MS for the thread is refused by the worker with a
503 problem before any token check, route or upstream call; probes never are; the connection stays
usable; the refusal is logged and counted.

A wait is made for real: the one thread serves a call the echo service answers after HOLD_S, and the
request under test is sent once that call has reached the service, so it waits for the thread far past
the budget. tests/e2e/test_overload.py makes bursts of such waits."""

from __future__ import annotations

import re
import socket
import threading
import time

import pytest
import requests

from edge.app import create_app
from edge.problems import SECURITY_HEADERS
from edge.worker import QUEUE_WAIT
from tests.support.bad_tokens import new_issuer_key
from tests.support.echo_edge import echo_edge
from tests.support.echo_service import echo_server
from tests.support.process_logs import json_lines

HOLD_S = 1.0  # the call that holds the edge's only thread
BUDGET_MS = "100"


@pytest.fixture(scope="module")
def echo(pki_dir, tmp_path_factory):
    with echo_server(pki_dir, tmp_path_factory.mktemp("echo"), new_issuer_key()) as server:
        yield server


@pytest.fixture(scope="module")
def edge(echo, pki_dir):
    with echo_edge(echo, pki_dir, EDGE_THREADS="1", EDGE_MAX_QUEUE_MS=BUDGET_MS) as running:
        yield running


class Raw:
    """One HTTP/1.1 connection to the edge, driven byte by byte, so a test sees what happens to it."""

    def __init__(self, url: str):
        host, port = url.removeprefix("http://").split(":")
        self.sock = socket.create_connection((host, int(port)), timeout=10)
        self._buffer = b""

    def send(self, head: str, body: bytes = b"") -> None:
        self.sock.sendall(head.replace("\n", "\r\n").encode() + b"\r\n" + body)

    def response(self, head_only: bool = False) -> tuple[int, dict[str, str], bytes]:
        while b"\r\n\r\n" not in self._buffer:
            self._read()
        head, self._buffer = self._buffer.split(b"\r\n\r\n", 1)
        lines = head.decode("latin-1").split("\r\n")
        headers = {name.lower(): value.strip() for name, value in (line.split(":", 1) for line in lines[1:])}
        length = 0 if head_only else int(headers.get("content-length", "0"))
        while len(self._buffer) < length:
            self._read()
        body, self._buffer = self._buffer[:length], self._buffer[length:]
        return int(lines[0].split()[1]), headers, body

    def closed_by_server(self) -> bool:
        try:
            return self.sock.recv(1) == b""
        except ConnectionResetError:
            return True

    def _read(self) -> None:
        chunk = self.sock.recv(65536)
        if not chunk:
            raise ConnectionError("the edge closed the connection")
        self._buffer += chunk

    def exchange(self, head: str, body: bytes = b"", head_only: bool = False) -> tuple[int, dict[str, str], bytes]:
        self.send(head, body)
        return self.response(head_only)

    def __enter__(self) -> Raw:
        return self

    def __exit__(self, *_) -> None:
        self.sock.close()


def _while_the_thread_is_held(url: str, then, echo):
    """Runs `then()` once a call that holds the edge's only thread for HOLD_S has reached the echo service
    (so the thread is surely taken, however loaded the machine); returns (what then() returned, the
    holding call's status)."""
    held: list[int] = []
    calls = len(echo.calls)
    holder = threading.Thread(target=lambda: held.append(
        requests.get(f"{url}/v1/things/holder", params={"name": f"sleep:{HOLD_S}"}, timeout=30).status_code))
    holder.start()
    deadline = time.monotonic() + 10
    while len(echo.calls) == calls and time.monotonic() < deadline:
        time.sleep(0.01)
    assert len(echo.calls) > calls, "the holding call did not reach the service"
    try:
        return then(), held
    finally:
        holder.join(30)


def test_a_request_that_waited_past_the_budget_is_a_503_problem_from_the_worker(edge, echo):
    url, _, _ = edge
    before = len(echo.calls)
    with requests.Session() as client:
        reply, held = _while_the_thread_is_held(url, lambda: client.get(
            f"{url}/v1/things/t1", params={"name": "late"}, headers={"X-Request-Id": "late-1"}, timeout=30), echo)
    assert held == [200]
    assert reply.status_code == 503 and reply.headers["Content-Type"] == "application/problem+json"
    assert reply.headers["Retry-After"] == "1" and reply.headers["X-Request-Id"] == "late-1"
    assert reply.headers["Cache-Control"] == "no-store"
    assert {name: reply.headers.get(name) for name in SECURITY_HEADERS} == SECURITY_HEADERS  # as on every answer
    assert "Server" not in reply.headers and "Strict-Transport-Security" not in reply.headers  # plain HTTP
    assert reply.json() == {"type": "about:blank", "title": "Service Unavailable", "status": 503,
                            "detail": "the server is too busy to take this request now; retry later",
                            "instance": "/v1/things/t1", "request_id": "late-1", "reason": "OVERLOADED"}
    assert echo.calls[before:] == ["GetThing"]  # the holding call's: the service never saw the refused one


def test_it_is_refused_before_the_token_or_the_route_is_looked_at(edge, echo):
    url, _, _ = edge
    for path in ("/v1/secrets/someone", "/no/such/route"):  # 401 and 404 when admitted
        reply, _ = _while_the_thread_is_held(url, lambda path=path: requests.get(url + path, timeout=30), echo)
        assert reply.status_code == 503 and reply.json()["instance"] == path
        assert re.fullmatch(r"[0-9a-f]{32}", reply.headers["X-Request-Id"]) and reply.json()["request_id"] == reply.headers["X-Request-Id"]
    assert requests.get(f"{url}/v1/secrets/someone", timeout=30).status_code == 401  # nothing waited


@pytest.mark.parametrize("path", ["/healthz", "/readyz"])
def test_health_probes_are_never_refused(edge, path, echo):
    url, _, _ = edge
    reply, _ = _while_the_thread_is_held(url, lambda: requests.get(url + path, timeout=30), echo)
    assert reply.status_code == 200


def test_the_connection_stays_usable_after_a_refused_request_with_a_body(edge, echo):
    """The body the refused request carried is drained, so the next request on the same connection is
    read from its own first byte."""
    url, _, _ = edge
    body, before = b'{"id": "posted", "name": "refused"}', len(echo.calls)
    with Raw(url) as raw:
        (status, headers, _), _ = _while_the_thread_is_held(url, lambda: raw.exchange(
            f"POST /v1/things HTTP/1.1\nHost: edge\nContent-Type: application/json\nContent-Length: {len(body)}\n", body), echo)
        assert status == 503 and headers["connection"] == "keep-alive"
        status, _, answer = raw.exchange("GET /v1/things/after?name=next HTTP/1.1\nHost: edge\n")
        assert status == 200 and b'"after"' in answer
        assert echo.calls[before:] == ["GetThing", "GetThing"]  # the holder and the next one: nothing created


def test_a_refused_head_request_is_answered_with_the_head_alone(edge, echo):
    url, _, _ = edge
    with Raw(url) as raw:
        (status, headers, _), _ = _while_the_thread_is_held(
            url, lambda: raw.exchange("HEAD /v1/things/t5 HTTP/1.1\nHost: edge\n", head_only=True), echo)
        assert status == 503 and int(headers["content-length"]) > 0 and headers["connection"] == "keep-alive"
        # no stray body bytes came before this answer
        status, _, answer = raw.exchange("GET /v1/things/after-head HTTP/1.1\nHost: edge\n")
        assert status == 200 and b'"after-head"' in answer


def test_pipelined_requests_are_each_answered_in_order(edge, echo):
    """Two requests sent at once while the thread is held: whatever each gets, the answers come in order
    and the connection goes on."""
    url, _, _ = edge
    with Raw(url) as raw:
        def pipelined():
            raw.sock.sendall(b"GET /v1/things/p1 HTTP/1.1\r\nHost: edge\r\nX-Request-Id: pipe-1\r\n\r\n"
                             b"GET /v1/things/p2 HTTP/1.1\r\nHost: edge\r\nX-Request-Id: pipe-2\r\n\r\n")
            return [raw.response(), raw.response()]

        answers, _ = _while_the_thread_is_held(url, pipelined, echo)
        assert [headers["x-request-id"] for _, headers, _ in answers] == ["pipe-1", "pipe-2"]
        assert answers[0][0] == 503 and answers[1][0] in (200, 503)
        assert raw.exchange("GET /v1/things/p3 HTTP/1.1\nHost: edge\n")[0] == 200


def test_a_client_that_asked_to_close_gets_its_refusal_and_the_connection_closed(edge, echo):
    url, _, _ = edge
    with Raw(url) as raw:
        (status, headers, _), _ = _while_the_thread_is_held(
            url, lambda: raw.exchange("GET /v1/things/t2 HTTP/1.1\nHost: edge\nConnection: close\n"), echo)
        assert status == 503 and headers["connection"] == "close"
        assert raw.closed_by_server()


def _metric(metrics_url: str, name: str, **labels: str) -> float:
    """A sample of the edge's /metrics, whatever order its labels are written in."""
    wanted = {f'{key}="{value}"' for key, value in labels.items()}
    for line in requests.get(metrics_url, timeout=10).text.splitlines():
        sample, _, value = line.rpartition(" ")
        base, _, given = sample.partition("{")
        if base == name and wanted == (set(given.rstrip("}").split(",")) if given else set()):
            return float(value)
    return 0.0


def test_a_refused_request_is_counted_and_the_refusals_are_reported(edge, echo):
    """No span and no access line of its own (an overloaded edge must not spend itself on writing about
    each refusal), but its RED metric under the route "(refused)", the shed counter, its wait in the
    histogram, and a warning that counts the refusals and names the latest."""
    url, metrics_url, process = edge
    counted = {"refused": ("http_server_requests_total", {"route": "(refused)", "method": "GET", "status": "503"}),
               "shed": ("http_server_requests_shed_total", {}), "waits": ("http_server_queue_wait_seconds_count", {})}
    before = {key: _metric(metrics_url, name, **labels) for key, (name, labels) in counted.items()}
    reply, _ = _while_the_thread_is_held(url, lambda: requests.get(
        f"{url}/v1/things/t3", headers={"X-Request-Id": "late-3"}, timeout=30), echo)
    assert reply.status_code == 503
    after = {key: _metric(metrics_url, name, **labels) for key, (name, labels) in counted.items()}
    assert (after["refused"] - before["refused"], after["shed"] - before["shed"]) == (1, 1)
    assert after["waits"] - before["waits"] == 2  # the holding request's wait too: every request's is observed
    assert not [e for e in json_lines(process) if e.get("request_id") == "late-3"]
    reports = [e["message"] for e in json_lines(process) if e.get("logger") == "edge.admission"]
    assert reports and all(re.match(r"overloaded: refused \d+ request\(s\) that waited over 100 ms", m) for m in reports)


def test_a_budget_of_zero_turns_refusing_off(echo, pki_dir):
    with echo_edge(echo, pki_dir, EDGE_THREADS="1", EDGE_MAX_QUEUE_MS="0") as (url, _, _):
        reply, _ = _while_the_thread_is_held(url, lambda: requests.get(f"{url}/v1/things/t4", timeout=30), echo)
        assert reply.status_code == 200


def test_the_time_a_request_waited_for_a_thread_counts_against_its_deadline(echo, pki_dir):
    """The wait the worker measured (given here in the environ, so each case is exact) is spent from
    the request's deadline before the first call."""
    edge = create_app({
        "EDGE_UPSTREAMS": f"edgetest.v1.EchoService=127.0.0.1:{echo.port}", "TLS_DIR": str(pki_dir),
        "JWKS_METHOD": "/edgetest.v1.EchoService/Keys", "TOKEN_ISSUER": "https://shop.local",
        "TOKEN_AUDIENCE": "shop-api"}).test_client()

    def waited(seconds: float) -> dict:
        return {"environ_overrides": {QUEUE_WAIT: seconds}}

    slow = {"query_string": {"name": "sleep:0.2"}, "headers": {"Request-Timeout": "0.5"}}
    assert edge.get("/v1/things/t1", **slow, **waited(0.1)).status_code == 200
    before = len(echo.calls)
    late = edge.get("/v1/things/t1", **slow, **waited(0.4))  # 0.1 s left for a 0.2 s answer
    assert late.status_code == 504 and late.get_json()["status"] == 504
    assert len(echo.calls) == before + 1  # it was called, with the deadline that was left
    spent = edge.get("/v1/things/t1", **slow, **waited(0.6))  # nothing left: not even called
    assert spent.status_code == 504 and len(echo.calls) == before + 1
