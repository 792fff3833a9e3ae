"""The one failure classification (runtime/failures.py) on real calls: every code has its meaning, and
a service's overload is never answered as the client's fault.

A real echo service over mTLS that serves one call at a time and queues none (GRPC_MAX_WORKERS=1,
GRPC_MAX_QUEUED_CALLS=0): while one call sleeps there, grpc itself refuses the next with
RESOURCE_EXHAUSTED "Concurrent RPC limit exceeded!" and no details. That is overload (503, retry),
not a quota of the caller's (429), at the REST edge and at the OAuth token endpoint alike.
"""

from __future__ import annotations

import threading
import time

import grpc
import pytest

from edge.app import create_app
from edge.problems import oauth_error_from_rpc
from harness import servers
from observability.rpc import SERVER_FAULTS
from runtime.failures import CODES, OVERLOAD, Failure, classify
from tests.support.bad_tokens import new_issuer_key
from tests.support.echo_service import echo_server

KEY = new_issuer_key()


def test_every_code_has_a_meaning_and_its_5xx_codes_are_the_failed_server_spans():
    assert set(CODES) == set(grpc.StatusCode) - {grpc.StatusCode.OK}
    assert {code for code, meaning in CODES.items() if meaning.server_failed} == SERVER_FAULTS
    assert {m.failure for m in CODES.values()} == {Failure.CLIENT_FAULT, Failure.RETRYABLE, Failure.SERVER_FAULT}


@pytest.fixture(scope="module")
def one_at_a_time(pki_dir, tmp_path_factory):
    with echo_server(pki_dir, tmp_path_factory.mktemp("echo"), KEY, GRPC_MAX_WORKERS="1", GRPC_MAX_QUEUED_CALLS="0") as echo:
        import edgetest.v1.echo_pb2 as echo_pb2  # compiled by echo_server

        echo.echo_pb2 = echo_pb2
        yield echo


@pytest.fixture(scope="module")
def edge(one_at_a_time, pki_dir):
    return create_app({
        "EDGE_UPSTREAMS": f"edgetest.v1.EchoService=127.0.0.1:{one_at_a_time.port}", "TLS_DIR": str(pki_dir),
        "JWKS_METHOD": "/edgetest.v1.EchoService/Keys", "TOKEN_ISSUER": "https://shop.local", "TOKEN_AUDIENCE": "shop-api"})


def _busy(echo, send_slow) -> threading.Thread:
    """Starts a slow call (send_slow) in a thread and returns once the service is serving it. The slot
    may be taken for a moment by another call (the edge fetches its signing keys in the background):
    then the slow call is refused too, and is sent again."""
    for _ in range(10):
        before = len(echo.calls)
        slow = threading.Thread(target=send_slow, daemon=True)
        slow.start()
        ends = time.monotonic() + 30
        while len(echo.calls) == before and slow.is_alive():  # the service counts a call as it starts serving it
            assert time.monotonic() < ends, "the slow call neither reached the service nor was refused"
            time.sleep(0.01)
        if len(echo.calls) > before and echo.calls[-1] != "Keys":
            return slow
        slow.join(20)
    raise AssertionError("the slow call never got the service's one slot")


def test_grpcs_own_concurrency_limit_is_overload_and_the_token_endpoint_says_so(one_at_a_time, pki_dir, edge):
    pb = one_at_a_time.echo_pb2
    with servers.channel(pki_dir, one_at_a_time.port) as channel:
        get = channel.unary_unary("/edgetest.v1.EchoService/GetThing", request_serializer=pb.Thing.SerializeToString,
                                  response_deserializer=pb.Thing.FromString)
        slow = _busy(one_at_a_time, lambda: get(pb.Thing(id="t1", name="sleep:2"), timeout=20))
        with pytest.raises(grpc.RpcError) as refused:
            get(pb.Thing(id="t2"), timeout=10)
        slow.join(20)
    assert refused.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED and classify(refused.value) == OVERLOAD
    with edge.test_request_context("/oauth2/token", method="POST"):
        answer = oauth_error_from_rpc(refused.value)  # what /oauth2/token said as 429 invalid_grant before
    assert answer.status_code == 503 and answer.get_json()["error"] == "temporarily_unavailable"
    assert answer.headers["Retry-After"] == "1"


def test_the_edge_answers_a_services_overload_with_503_overloaded(one_at_a_time, edge):
    client = edge.test_client()
    slow = _busy(one_at_a_time, lambda: client.get("/v1/things/t1", query_string={"name": "sleep:2"}))
    reply = client.get("/v1/things/t2")
    slow.join(20)
    assert reply.status_code == 503 and reply.headers["Content-Type"] == "application/problem+json"
    assert reply.get_json()["reason"] == "OVERLOADED" and reply.get_json()["code"] == "RESOURCE_EXHAUSTED"
    assert reply.headers["Retry-After"] == "1"
