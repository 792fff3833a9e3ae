"""Routes generated from a test proto with every binding form, over real HTTP to a real gRPC service."""

import grpc
import pytest
import requests

from edge.app import create_app
from harness import servers
from tests.support.bad_tokens import bad_tokens, good_claims, new_issuer_key, sign
from tests.support.echo_service import echo_server
from tests.support.http import serve

KEY = new_issuer_key()
OWNER = "6f1c1a38-3a4e-4c71-9a55-0d1f8c2b7e10"


@pytest.fixture(scope="module")
def echo(pki_dir, tmp_path_factory):
    with echo_server(pki_dir, tmp_path_factory.mktemp("echo"), KEY) as server:
        yield server


@pytest.fixture(scope="module")
def edge(echo, pki_dir):
    app = create_app({
        "EDGE_UPSTREAMS": f"edgetest.v1.EchoService=127.0.0.1:{echo.port}", "TLS_DIR": str(pki_dir),
        "JWKS_METHOD": "/edgetest.v1.EchoService/Keys", "TOKEN_ISSUER": "https://shop.local", "TOKEN_AUDIENCE": "shop-api",
        "EDGE_MAX_BODY_BYTES": "2048", "EDGE_REALM": "shop",
    })
    with serve(app) as base:
        yield base


def test_path_variable_and_typed_query_parameters_fill_the_request(edge):
    reply = requests.get(f"{edge}/v1/things/t1", params={"count": "7", "big": "9007199254740993", "flag": "true",
                                                         "tags": ["a", "b"], "detail.note": "n", "color": "RED",
                                                         "when": "2026-01-02T03:04:05Z", "mask": "name,count"})
    assert reply.status_code == 200, reply.text
    body = reply.json()
    assert (body["id"], body["count"], body["big"], body["flag"], body["tags"]) == ("t1", 7, "9007199254740993", True, ["a", "b"])
    assert (body["detail"]["note"], body["color"], body["when"], body["mask"]) == ("n", "RED", "2026-01-02T03:04:05Z", "name,count")


def test_proto_field_names_are_accepted_in_the_query_too(edge):
    assert requests.get(f"{edge}/v1/things/t1", params={"detail.level": "3"}).json()["detail"]["level"] == 3


def test_multi_segment_template_binds_the_whole_name(edge):
    reply = requests.get(f"{edge}/v1/shelves/s1/books/b2")
    assert reply.status_code == 200 and reply.json()["name"] == "shelves/s1/books/b2"
    assert requests.get(f"{edge}/v1/shelves/s1/books").status_code == 404


def test_body_star_fills_the_message_and_rejects_query_parameters(edge):
    reply = requests.post(f"{edge}/v1/things", json={"name": "n", "labels": {"k": "v"}, "detail": {"level": 2}})
    assert reply.status_code == 200 and reply.json()["labels"] == {"k": "v"} and reply.json()["detail"]["level"] == 2
    extra = requests.post(f"{edge}/v1/things?name=x", json={})
    assert extra.status_code == 400 and extra.json()["violations"][0]["field"] == "name"


def test_body_field_binds_one_field_and_the_rest_comes_from_path_and_query(edge):
    reply = requests.patch(f"{edge}/v1/things/t9?name=q", json={"note": "hello", "level": 4})
    assert reply.status_code == 200
    assert reply.json()["id"] == "t9" and reply.json()["name"] == "q" and reply.json()["detail"] == {"note": "hello", "level": 4}


def test_custom_verb_is_routed_and_the_path_wins_only_when_the_body_agrees(edge):
    assert requests.post(f"{edge}/v1/things/t3:do", json={"name": "x"}).json()["id"] == "t3"
    assert requests.post(f"{edge}/v1/things/t3:do", json={"id": "t3"}).status_code == 200
    assert requests.post(f"{edge}/v1/things/t3:do", json={"id": "other"}).status_code == 400


def test_additional_bindings_reach_the_same_method(edge):
    assert requests.get(f"{edge}/v1/things", params={"name": "a"}).json()["name"] == "a"
    assert requests.get(f"{edge}/v1/search/abc").json()["name"] == "abc"


def test_response_body_returns_only_that_field(edge):
    assert requests.get(f"{edge}/v1/things/t1/detail", params={"detail.note": "only"}).json() == {"note": "only", "level": 0}


def test_methods_the_edge_may_not_call_are_not_published(edge):
    assert requests.get(f"{edge}/v1/hidden").status_code == 404


@pytest.mark.parametrize("call, field", [
    (lambda e: requests.get(f"{e}/v1/things/t1", params={"nope": "1"}), "nope"),
    (lambda e: requests.get(f"{e}/v1/things/t1", params={"count": "many"}), "count"),
    (lambda e: requests.get(f"{e}/v1/things/t1", params={"flag": "yes"}), "flag"),
    (lambda e: requests.get(f"{e}/v1/things/t1", params={"count": ["1", "2"]}), "count"),
    (lambda e: requests.get(f"{e}/v1/things/t1", params={"detail": "x"}), "detail"),
    (lambda e: requests.post(f"{e}/v1/things", json={"name": "n", "unknown": 1}), "unknown"),
    (lambda e: requests.post(f"{e}/v1/things", json={"count": "lots"}), "count"),
    (lambda e: requests.post(f"{e}/v1/things", json={"color": "PURPLE"}), "color"),
    (lambda e: requests.post(f"{e}/v1/things", json=["not", "an", "object"]), "body"),
    (lambda e: requests.post(f"{e}/v1/things", data="{broken", headers={"Content-Type": "application/json"}), "body"),
    (lambda e: requests.patch(f"{e}/v1/things/t1", json={"level": {"deep": 1}}), "detail.level"),
], ids=["unknown-query", "bad-int", "bad-bool", "repeated-scalar", "message-in-query", "unknown-json",
        "bad-json-type", "bad-enum", "non-object", "malformed-json", "bad-nested-type"])
def test_bad_input_is_a_400_problem_naming_the_field(edge, echo, call, field):
    before = len(echo.calls)
    reply = call(edge)
    assert reply.status_code == 400, reply.text
    assert reply.headers["Content-Type"] == "application/problem+json"
    problem = reply.json()
    assert problem["status"] == 400 and problem["request_id"] == reply.headers["X-Request-Id"]
    assert field in {v["field"] for v in problem["violations"]}
    assert len(echo.calls) == before  # refused at the edge, before any gRPC call


def test_oversized_body_is_413_and_wrong_media_type_is_415(edge):
    assert requests.post(f"{edge}/v1/things", json={"name": "x" * 5000}).status_code == 413
    assert requests.post(f"{edge}/v1/things", data="name=x", headers={"Content-Type": "text/plain"}).status_code == 415


def test_deadline_headers_are_validated(edge):
    assert requests.get(f"{edge}/v1/things/t1", headers={"Request-Timeout": "2.5"}).status_code == 200
    assert requests.get(f"{edge}/v1/things/t1", headers={"grpc-timeout": "500m"}).status_code == 200
    for bad in ({"Request-Timeout": "soon"}, {"Request-Timeout": "-1"}, {"grpc-timeout": "5x"}):
        assert requests.get(f"{edge}/v1/things/t1", headers=bad).status_code == 400
        assert requests.get(f"{edge}/healthz", headers=bad).status_code == 200  # a probe takes no deadline


# Written out here, not read from runtime/failures.py, so that a change of the table shows in this test.
_HTTP_STATUS = {"CANCELLED": 499, "UNKNOWN": 500, "INVALID_ARGUMENT": 400, "DEADLINE_EXCEEDED": 504, "NOT_FOUND": 404,
                "ALREADY_EXISTS": 409, "PERMISSION_DENIED": 403, "FAILED_PRECONDITION": 409, "ABORTED": 409,
                "OUT_OF_RANGE": 400, "UNIMPLEMENTED": 501, "INTERNAL": 500, "UNAVAILABLE": 503, "DATA_LOSS": 500,
                "UNAUTHENTICATED": 401,
                # Without an ErrorInfo, RESOURCE_EXHAUSTED is grpc's own concurrency limit: the service's
                # overload, not the client's quota (tests/integration/test_failures.py).
                "RESOURCE_EXHAUSTED": 503}


@pytest.mark.parametrize("code", [c for c in grpc.StatusCode if c != grpc.StatusCode.OK], ids=lambda c: c.name)
def test_every_grpc_status_without_a_message_becomes_its_http_problem(edge, code):
    """A service may fail with any code and no message (CANCELLED among them): the edge answers the
    status of the one failure classification, as problem+json, and says to retry where retrying helps."""
    reply = requests.get(f"{edge}/v1/things/t1", params={"name": f"status:{code.name}"})
    expected = _HTTP_STATUS[code.name]
    assert reply.status_code == expected and reply.headers["Content-Type"] == "application/problem+json"
    assert reply.json()["code"] == code.name and reply.json()["title"]
    assert ("Retry-After" in reply.headers) == (expected in (429, 503))


def test_request_id_is_echoed_or_generated(edge):
    assert requests.get(f"{edge}/v1/things/t1", headers={"X-Request-Id": "abc-123"}).headers["X-Request-Id"] == "abc-123"
    generated = requests.get(f"{edge}/v1/things/t1", headers={"X-Request-Id": "bad id with spaces"}).headers["X-Request-Id"]
    assert generated and " " not in generated


# --- tokens: every bad token is a 401 that never reaches the service --------------------------------

def test_a_valid_token_with_the_scope_reaches_the_service_for_its_owner(edge):
    token = sign(KEY, good_claims(OWNER, "test.read"))
    assert requests.get(f"{edge}/v1/secrets/{OWNER}", headers={"Authorization": f"Bearer {token}"}).status_code == 200


@pytest.mark.parametrize("name", sorted(bad_tokens(KEY, OWNER, "test.read")))
def test_bad_tokens_get_401_with_a_bearer_challenge_and_never_reach_the_service(edge, echo, name):
    before = len(echo.calls)
    token = bad_tokens(KEY, OWNER, "test.read")[name]
    reply = requests.get(f"{edge}/v1/secrets/{OWNER}", headers={"Authorization": f"Bearer {token}"})
    assert reply.status_code == 401, reply.text
    assert reply.headers["WWW-Authenticate"].startswith('Bearer realm="shop", error="invalid_token"')
    assert [c for c in echo.calls[before:] if c != "Keys"] == []


@pytest.mark.parametrize("name", sorted(bad_tokens(KEY, OWNER, "test.read")))
def test_bad_tokens_sent_straight_to_a_service_are_unauthenticated(echo, pki_dir, name):
    """The services verify tokens with the same code as the edge: a caller holding a certificate
    but not a good token gets UNAUTHENTICATED (never UNKNOWN, which a claim of the wrong type gave)."""
    get_secret = lambda channel: channel.unary_unary("/edgetest.v1.EchoService/GetSecret")  # noqa: E731
    with servers.channel(pki_dir, echo.port, "edge") as channel, pytest.raises(grpc.RpcError) as refused:
        get_secret(channel)(b"", timeout=10, metadata=servers.bearer(bad_tokens(KEY, OWNER, "test.read")[name]))
    assert refused.value.code() == grpc.StatusCode.UNAUTHENTICATED, refused.value.details()


@pytest.mark.parametrize("header", [None, "Basic dXNlcjpwYXNz", "Bearer", "Bearer " + "x" * 9000])
def test_missing_or_malformed_authorization_is_401(edge, header):
    reply = requests.get(f"{edge}/v1/secrets/{OWNER}", headers={"Authorization": header} if header else {})
    assert reply.status_code in (401, 431) and reply.status_code != 500


def test_missing_scope_is_403_insufficient_scope_and_another_users_resource_is_403(edge, echo):
    wrong_scope = sign(KEY, good_claims(OWNER, "test.write"))
    reply = requests.get(f"{edge}/v1/secrets/{OWNER}", headers={"Authorization": f"Bearer {wrong_scope}"})
    assert reply.status_code == 403 and 'error="insufficient_scope"' in reply.headers["WWW-Authenticate"]
    assert 'scope="test.read"' in reply.headers["WWW-Authenticate"]
    someone_else = sign(KEY, good_claims(OWNER, "test.read"))
    assert requests.get(f"{edge}/v1/secrets/other-id", headers={"Authorization": f"Bearer {someone_else}"}).status_code == 403
    admin = sign(KEY, good_claims("admin", "test.read test.admin"))
    assert requests.get(f"{edge}/v1/secrets/other-id", headers={"Authorization": f"Bearer {admin}"}).status_code == 200
