"""Errors speak REST: every name a 400 mentions is one the client can send back (proto3 JSON names,
camelCase), no parser or Python internals reach the client, and what gunicorn answers by itself
(a request it cannot parse) is problem+json like everything else."""

from __future__ import annotations

import socket
from urllib.parse import urlsplit

import requests

from harness.shop import auth

PROBLEM = "application/problem+json"


def test_violations_and_mask_errors_use_the_json_names(stack):
    account = stack.register("restnames")
    token = stack.token("restnames")["access_token"]
    too_long = requests.patch(f"{stack.url}/v1/accounts/{account['id']}", json={"displayName": "x" * 65},
                              headers=auth(token), timeout=10)
    assert too_long.status_code == 400, too_long.text
    assert too_long.json()["violations"][0]["field"] == "profile.displayName"
    assert "display_name" not in too_long.text
    # Over REST the body's fields are the ones changed (the edge makes them the mask): a mask in
    # the query string is refused, saying so, and a field the profile lacks is named as JSON spells it.
    query_mask = requests.patch(f"{stack.url}/v1/accounts/{account['id']}", params={"updateMask": "displayName"},
                                json={"displayName": "Rest"}, headers=auth(token), timeout=10)
    assert query_mask.status_code == 400, query_mask.text
    assert query_mask.json()["violations"] == [{"field": "updateMask",
                                                "description": "the fields in the body are the ones changed"}]
    unknown = requests.patch(f"{stack.url}/v1/accounts/{account['id']}", json={"email": "x@example.com"},
                             headers=auth(token), timeout=10)
    assert unknown.status_code == 400 and unknown.json()["violations"][0]["field"] == "email", unknown.text
    nothing = requests.patch(f"{stack.url}/v1/accounts/{account['id']}", json={}, headers=auth(token), timeout=10)
    assert nothing.status_code == 400, nothing.text
    fixed = requests.patch(f"{stack.url}/v1/accounts/{account['id']}", json={"displayName": "Rest"},
                           headers=auth(token), timeout=10)
    assert fixed.status_code == 200 and fixed.json()["profile"]["displayName"] == "Rest", fixed.text


def test_a_field_the_server_sets_is_refused_in_a_request(stack):
    """readOnly in the document, OUTPUT_ONLY in the proto: sent back, it is a 400 naming it, not
    silently dropped (a client that thinks it set the stock learns it did not)."""
    admin = stack.token(*stack.admin)["access_token"]
    reply = requests.post(f"{stack.url}/v1/products", headers=auth(admin), timeout=10, json={
        "name": "Tea", "price": {"currencyCode": "EUR", "amountMinor": 450}, "stock": 10})
    assert reply.status_code == 400, reply.text
    assert reply.json()["violations"] == [{"field": "product.stock", "description": "is set by the server, not by a request"}]


def test_values_of_the_wrong_type_are_described_without_parser_internals(stack):
    stack.register("resttypes")
    token = stack.token("resttypes")["access_token"]
    cases = [
        ("POST", "/v1/orders", {"json": {"items": [{"productId": "p", "quantity": ""}]}}, "items[0].quantity", "whole number"),
        ("POST", "/v1/orders", {"json": {"items": [{"productId": "p", "quantity": "1.5"}]}}, "items[0].quantity", "whole number"),
        ("POST", "/v1/orders", {"json": {"items": [{"productId": "p", "quantity": "+5"}]}}, "items[0].quantity", "whole number"),
        ("POST", "/v1/orders", {"json": {"items": [{"productId": "p", "quantity": None}]}}, "items[0].quantity", "whole number"),
        ("POST", "/v1/orders", {"json": {"items": "all of them"}}, "items", "must be a list"),
        ("POST", "/v1/orders", {"json": {"items": [{"productId": 5, "quantity": 1}]}}, "items[0].productId", "string"),
        ("POST", "/v1/orders", {"json": {"items": [{"productId": None, "quantity": 1}]}}, "items[0].productId", "string"),
        # proto3 JSON's parser would read an empty list as an empty message (found by schemathesis)
        ("POST", "/v1/orders", {"json": {"items": [[]]}}, "items[0]", "must be an object"),
        ("POST", "/v1/accounts", {"json": {"username": "resttypes2", "email": "resttypes2@example.com",
                                           "password": "correct horse battery", "profile": []}}, "profile", "must be an object"),
        ("GET", "/v1/orders", {"params": {"pageSize": "abc"}}, "pageSize", "whole number"),
        ("GET", "/v1/orders", {"params": {"pageSize": "1e20"}}, "pageSize", "whole number"),
    ]
    for method, path, kwargs, field, words in cases:
        reply = requests.request(method, f"{stack.url}{path}", headers=auth(token), timeout=10, **kwargs)
        assert reply.status_code == 400 and reply.headers["Content-Type"].startswith(PROBLEM), reply.text
        violation = reply.json()["violations"][0]
        assert violation["field"] == field and words in violation["description"], (path, kwargs, reply.text)
        for internal in ("invalid literal", "int()", "Couldn't parse", "expected string or bytes", "CreateOrderRequest",
                         "Failed to parse"):
            assert internal not in reply.text, reply.text


def _raw(stack, request: bytes) -> tuple[str, dict[str, str], bytes]:
    """One raw HTTP exchange (what requests will not send): status line, headers, body."""
    address = urlsplit(stack.url)
    with socket.create_connection((address.hostname, address.port), timeout=10) as connection:
        connection.sendall(request)
        answer = b""
        while chunk := connection.recv(65536):
            answer += chunk
    head, _, body = answer.partition(b"\r\n\r\n")
    status, *lines = head.decode("latin-1").split("\r\n")
    return status, {k.lower(): v.strip() for k, _, v in (line.partition(":") for line in lines)}, body


def test_what_gunicorn_answers_by_itself_is_problem_json(stack):
    long_uri = b"GET /v1/products?q=" + b"a" * 9000 + b" HTTP/1.1\r\nHost: x\r\n\r\n"
    bad_line = b"NOT A REQUEST LINE AT ALL\r\nHost: x\r\n\r\n"
    big_header = b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: " + b"b" * 9000 + b"\r\n\r\n"
    for request, status in ((long_uri, 414), (bad_line, 400), (big_header, 431)):
        line, headers, body = _raw(stack, request)
        assert line.split(" ")[1] == str(status), line
        assert headers["content-type"] == PROBLEM
        problem = requests.models.complexjson.loads(body)
        assert problem["status"] == status and problem["detail"] and "<html" not in body.decode()
        assert b"aaaa" not in body and b"bbbb" not in body and b"NOT A REQUEST" not in body  # nothing echoed
