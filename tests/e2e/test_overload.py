"""Overload at the real edge (gunicorn with the edge's worker, one process of two threads, in front of a
service that takes 0.3 s a call): a burst far beyond what it can serve gets the requests that waited
past EDGE_MAX_QUEUE_MS refused at once with 503 + Retry-After, the others served, probes answered; with
the budget off or the load within capacity nothing is refused."""

from __future__ import annotations

import contextlib
import re
import threading
import time

import pytest
import requests

from tests.support.bad_tokens import new_issuer_key
from tests.support.echo_edge import echo_edge
from tests.support.echo_service import echo_server

SLOW_S = 0.3  # each upstream call takes this long
THREADS = 2
BURST = 24  # twelve rounds of two threads: served in turn, the last answer would come after 3.6 s
IN_TURN_S = BURST / THREADS * SLOW_S  # the least time the whole burst takes when served in turn


@pytest.fixture(scope="module")
def echo(pki_dir, tmp_path_factory):
    with echo_server(pki_dir, tmp_path_factory.mktemp("echo"), new_issuer_key()) as server:
        yield server


@contextlib.contextmanager
def _edge(echo, pki_dir, max_queue_ms: str):
    """The edge, one process of THREADS threads, with that budget; yields (url, metrics url)."""
    with echo_edge(echo, pki_dir, EDGE_THREADS=str(THREADS), EDGE_MAX_QUEUE_MS=max_queue_ms) as (url, metrics_url, _):
        yield url, metrics_url


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
        # Sooner than the burst served in turn could possibly end (BURST / THREADS rounds of SLOW_S, on any
        # machine: load only makes serving slower): it was refused on its way in, not after waiting its turn.
        assert seconds < IN_TURN_S, seconds
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
        assert max(seconds for _, seconds in burst) > IN_TURN_S - SLOW_S  # the queueing the budget cuts short
        assert _shed_count(metrics_url) == 0
