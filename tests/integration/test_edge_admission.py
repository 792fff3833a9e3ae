"""Admission control in the real edge app, calling a real service: a request that waited too long for a
thread is refused with a 503 problem before any token check or upstream call; probes never are.

The wait is what edge.worker.QueueTimingWorker puts in the WSGI environ; here it is given directly, so
each case is exact. tests/e2e/test_overload.py makes real waits under gunicorn."""

import pytest

from edge.app import create_app
from edge.worker import QUEUE_WAIT
from tests.support.bad_tokens import new_issuer_key
from tests.support.echo_service import echo_server


@pytest.fixture(scope="module")
def echo(pki_dir, tmp_path_factory):
    with echo_server(pki_dir, tmp_path_factory.mktemp("echo"), new_issuer_key()) as server:
        yield server


def _client(echo, pki_dir, **env):
    return create_app({
        "EDGE_UPSTREAMS": f"edgetest.v1.EchoService=127.0.0.1:{echo.port}", "TLS_DIR": str(pki_dir),
        "JWKS_METHOD": "/edgetest.v1.EchoService/Keys", "TOKEN_ISSUER": "https://shop.local", "TOKEN_AUDIENCE": "shop-api",
        **env}).test_client()


@pytest.fixture(scope="module")
def edge(echo, pki_dir):
    return _client(echo, pki_dir, EDGE_MAX_QUEUE_MS="100")


def _waited(seconds: float) -> dict:
    return {"environ_overrides": {QUEUE_WAIT: seconds}}


def test_a_request_that_waited_past_the_budget_is_a_503_problem_with_retry_after(edge, echo):
    before = len(echo.calls)
    reply = edge.get("/v1/things/t1", headers={"X-Request-Id": "late-1"}, **_waited(0.25))
    assert reply.status_code == 503 and reply.headers["Content-Type"] == "application/problem+json"
    assert reply.headers["Retry-After"] == "1" and reply.headers["X-Request-Id"] == "late-1"
    body = reply.get_json()
    assert (body["status"], body["reason"], body["request_id"]) == (503, "OVERLOADED", "late-1")
    assert len(echo.calls) == before  # refused at the edge: the service never saw it


def test_it_is_refused_before_the_token_is_looked_at(edge):
    assert edge.get("/v1/secrets/someone", **_waited(0.25)).status_code == 503  # no token: 401 if it had been admitted
    assert edge.get("/v1/secrets/someone", **_waited(0.01)).status_code == 401


def test_requests_within_the_budget_or_without_a_measured_wait_are_served(edge):
    assert edge.get("/v1/things/t1", **_waited(0.05)).status_code == 200
    assert edge.get("/v1/things/t1").status_code == 200  # a server that does not measure (werkzeug) is never refused


@pytest.mark.parametrize("path", ["/healthz", "/readyz"])
def test_health_probes_are_never_refused(edge, path):
    assert edge.get(path, **_waited(30.0)).status_code == 200


def test_a_budget_of_zero_turns_refusing_off(echo, pki_dir):
    # (a wait within the 10 s default deadline: a longer one would have spent it, see below)
    assert _client(echo, pki_dir, EDGE_MAX_QUEUE_MS="0").get("/v1/things/t1", **_waited(5.0)).status_code == 200


def test_the_time_a_request_waited_for_a_thread_counts_against_its_deadline(echo, pki_dir):
    edge = _client(echo, pki_dir, EDGE_MAX_QUEUE_MS="0")  # nothing refused: only the deadline decides
    slow = {"query_string": {"name": "sleep:0.2"}, "headers": {"Request-Timeout": "0.5"}}
    assert edge.get("/v1/things/t1", **slow, **_waited(0.1)).status_code == 200
    before = len(echo.calls)
    late = edge.get("/v1/things/t1", **slow, **_waited(0.4))  # 0.1 s left for a 0.2 s answer
    assert late.status_code == 504 and late.get_json()["status"] == 504
    assert len(echo.calls) == before + 1  # it was called, with the deadline that was left
    spent = edge.get("/v1/things/t1", **slow, **_waited(0.6))  # nothing left: not even called
    assert spent.status_code == 504 and len(echo.calls) == before + 1


def test_a_refused_request_is_logged_and_counted_like_any_other(edge, caplog):
    """Telemetry wraps the app (observability/http.py): the refusal, made before any route runs, has
    its access line and its metric (and its span), the answers an overloaded edge most needs seen."""
    from prometheus_client import REGISTRY

    def refused_so_far() -> float:
        return REGISTRY.get_sample_value("http_server_requests_total",
                                         {"route": "/v1/things/<seg:id>", "method": "GET", "status": "503"}) or 0.0

    before = refused_so_far()
    with caplog.at_level("INFO", logger="edge.access"):
        assert edge.get("/v1/things/t1", headers={"X-Request-Id": "late-2"}, **_waited(0.25)).status_code == 503
    assert [r.http["status"] for r in caplog.records if r.name == "edge.access"] == [503]
    assert refused_so_far() == before + 1
