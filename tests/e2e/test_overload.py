"""Overload at the real edge (gunicorn with the edge's worker, one process of two threads, in front of a
service that takes 0.3 s a call): a burst far beyond what it can serve gets the requests that waited
past EDGE_MAX_QUEUE_MS refused at once with 503 + Retry-After, the others served, probes answered; with
the budget off or the load within capacity nothing is refused."""

from __future__ import annotations

import contextlib
import os
import re
import threading
import time

import pytest
import requests

from services.accounts.domain import utcnow
from services.accounts.oauth import new_signing_key
from tests.support import servers
from tests.support.echo_service import echo_server

SLOW_S = 0.3  # each upstream call takes this long
THREADS = 2
BURST = 24  # twelve rounds of two threads: served in turn, the last answer would come after 3.6 s


@pytest.fixture(scope="module")
def pki_dir(tmp_path_factory):
    return servers.write_test_pki(tmp_path_factory.mktemp("pki"))


@pytest.fixture(scope="module")
def echo(pki_dir, tmp_path_factory):
    with echo_server(pki_dir, tmp_path_factory.mktemp("echo"), new_signing_key(utcnow())) as server:
        yield server


@contextlib.contextmanager
def _edge(echo, pki_dir, max_queue_ms: str, workers: int = 1, running: list | None = None, threads: int = THREADS):
    """`python -m edge` as an operator runs it, on a free port; yields (url, metrics url). The process
    is appended to `running` if given."""
    metrics_port = servers.free_port()
    edge = servers.ServiceProcess("edge", {
        "EDGE_PORT": "0", "EDGE_WORKERS": str(workers), "EDGE_THREADS": str(threads), "EDGE_MAX_QUEUE_MS": max_queue_ms,
        "EDGE_METRICS_PORT": str(metrics_port), "TLS_DIR": str(pki_dir),
        "EDGE_UPSTREAMS": f"edgetest.v1.EchoService=127.0.0.1:{echo.port}", "JWKS_METHOD": "/edgetest.v1.EchoService/Keys",
        "TOKEN_ISSUER": servers.ISSUER, "TOKEN_AUDIENCE": servers.AUDIENCE,
        "PYTHONPATH": os.pathsep.join(filter(None, [str(echo.gen_dir), os.environ.get("PYTHONPATH")])),
    })
    if running is not None:
        running.append(edge)
    try:
        url = f"http://127.0.0.1:{edge.port}"
        assert requests.get(f"{url}/v1/things/warm", timeout=30).status_code == 200  # channel open, worker warm
        yield url, f"http://127.0.0.1:{metrics_port}/metrics"
        assert "Traceback" not in "".join(edge.lines), "".join(edge.lines[-30:])
    finally:
        assert edge.stop() == 0


@pytest.fixture(scope="module")
def budgeted(echo, pki_dir):
    with _edge(echo, pki_dir, "100") as running:
        yield running


def _shed_count(metrics_url: str) -> float:
    found = re.search(r"^http_server_requests_shed_total (\S+)$", requests.get(metrics_url, timeout=10).text, re.M)
    return float(found.group(1)) if found else 0.0


def _at_once(calls: list) -> list[tuple[requests.Response, float]]:
    """Runs every call on its own thread and connection, released together; (reply, seconds) each, in order."""
    results: list = [None] * len(calls)
    start = threading.Barrier(len(calls))

    def run(index: int) -> None:
        start.wait(30)
        began = time.monotonic()
        reply = calls[index]()
        results[index] = (reply, time.monotonic() - began)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(calls))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert all(results), "a client thread did not finish"
    return results


def _slow(url: str, index: int):
    return lambda: requests.get(f"{url}/v1/things/t{index}", params={"name": f"sleep:{SLOW_S}"}, timeout=30)


def _probe_later(url: str, path: str):
    """A probe that arrives once the burst has filled the queue, so it waits past the budget too."""
    def call():
        time.sleep(0.1)
        return requests.get(f"{url}{path}", timeout=30)
    return call


def test_a_burst_beyond_capacity_is_partly_refused_at_once_and_the_rest_is_served(budgeted):
    url, metrics_url = budgeted
    shed_before = _shed_count(metrics_url)
    probes = [_probe_later(url, path) for path in ("/healthz", "/readyz", "/healthz", "/readyz")]
    results = _at_once([_slow(url, i) for i in range(BURST)] + probes)
    burst, probed = results[:BURST], results[BURST:]

    assert {reply.status_code for reply, _ in burst} <= {200, 503}, [r.text for r, _ in burst]
    served = [(i, reply) for i, (reply, _) in enumerate(burst) if reply.status_code == 200]
    refused = [(reply, seconds) for reply, seconds in burst if reply.status_code == 503]
    assert len(served) >= THREADS and len(refused) >= BURST // 2, [r.status_code for r, _ in burst]
    assert all(reply.json()["id"] == f"t{i}" for i, reply in served)
    for reply, seconds in refused:
        assert reply.headers["Content-Type"] == "application/problem+json" and int(reply.headers["Retry-After"]) >= 1
        assert reply.json()["reason"] == "OVERLOADED" and reply.json()["request_id"] == reply.headers["X-Request-Id"]
        assert seconds < 2.0, seconds  # about one upstream call, not the 3.6 s of waiting in turn
    assert [reply.status_code for reply, _ in probed] == [200] * len(probes)
    assert _shed_count(metrics_url) - shed_before == len(refused)


def test_load_within_capacity_is_never_refused(budgeted):
    url, metrics_url = budgeted
    shed_before = _shed_count(metrics_url)

    def client(offset: int):
        def calls():
            with requests.Session() as session:  # one client, one request at a time
                return [session.get(f"{url}/v1/things/c{offset + n}", params={"name": f"sleep:{SLOW_S / 3}"},
                                    timeout=30).status_code for n in range(5)]
        return calls

    results = _at_once([client(0), client(100)])  # as many clients as threads
    assert [statuses for statuses, _ in results] == [[200] * 5, [200] * 5]
    assert _shed_count(metrics_url) == shed_before


def test_without_a_budget_the_same_burst_waits_in_turn_and_nothing_is_refused(echo, pki_dir):
    with _edge(echo, pki_dir, "0") as (url, metrics_url):
        burst = _at_once([_slow(url, i) for i in range(BURST)])
        assert [reply.status_code for reply, _ in burst] == [200] * BURST
        assert max(seconds for _, seconds in burst) > 1.5  # the queueing the budget cuts short
        assert _shed_count(metrics_url) == 0


def _established_sockets_by_worker(master_pid: int, port: int) -> dict[int, int]:
    """How many connections to `port` each worker of the gunicorn master holds (from /proc)."""
    inodes = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with contextlib.suppress(FileNotFoundError), open(table) as lines:
            for line in list(lines)[1:]:
                fields = line.split()
                if int(fields[1].rsplit(":", 1)[1], 16) == port and fields[3] == "01":  # ESTABLISHED
                    inodes.add(fields[9])
    with open(f"/proc/{master_pid}/task/{master_pid}/children") as children:
        workers = [int(pid) for pid in children.read().split()]
    held = {}
    for pid in workers:
        fds = (os.readlink(f"/proc/{pid}/fd/{fd}") for fd in os.listdir(f"/proc/{pid}/fd"))
        held[pid] = sum(1 for target in fds if target.startswith("socket:[") and target[8:-1] in inodes)
    return held


def test_a_burst_of_new_keep_alive_connections_is_shared_between_the_workers(echo, pki_dir):
    """gthread lets whichever worker wakes first accept; without stepping back, one worker could take
    every connection of a burst and keep it (keep-alive) while the other idles."""
    running: list = []
    with _edge(echo, pki_dir, "0", workers=2, running=running, threads=4) as (url, _):
        port = int(url.rsplit(":", 1)[1])
        sessions = [requests.Session() for _ in range(16)]
        try:
            replies = _at_once([lambda session=session: session.get(f"{url}/healthz", timeout=30) for session in sessions])
            assert [reply.status_code for reply, _ in replies] == [200] * 16
            held = _established_sockets_by_worker(running[0].process.pid, port)  # kept alive for 5 s
            assert sum(held.values()) == 16 and len(held) == 2, held
            assert min(held.values()) >= 4, f"one worker took the burst: {held}"
        finally:
            for session in sessions:
                session.close()
