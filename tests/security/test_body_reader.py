"""Request bodies sent chunked, over a raw socket to the real edge under gunicorn (Hardening 3, item 2).

Every body, JSON or form, is read whole by one reader (edge/body.py) or refused: one past the size
limit is 413 and nothing is done with it; chunked framing that does not parse is 400, and the edge
logs no stack trace for it. requests cannot send broken framing, so these tests write HTTP by hand.
"""

from __future__ import annotations

import contextlib
import json
import socket
import threading
import time
import uuid
from dataclasses import dataclass

import pytest
import requests

FORM = "application/x-www-form-urlencoded"


@dataclass
class Reply:
    status: int
    headers: dict[str, str]  # lower-case names
    body: bytes

    def json(self):
        return json.loads(self.body)


def _chunked(body: bytes, size: int = 8192) -> bytes:
    """`body` in chunks of `size` bytes, then the last chunk and an empty trailer section."""
    pieces = [body[start:start + size] for start in range(0, len(body), size)]
    return b"".join(b"%x\r\n%s\r\n" % (len(piece), piece) for piece in pieces) + b"0\r\n\r\n"


def _post_chunked(stack, path: str, content_type: str, framed_body: bytes, request_id: str = "") -> Reply:
    """POSTs `framed_body` (already chunk-framed, rightly or not) and reads the answer. The body is sent
    from another thread while this one reads: the edge may answer (and stop reading) before it ends."""
    head = (f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: {content_type}\r\n"
            f"Transfer-Encoding: chunked\r\nConnection: close\r\n"
            + (f"X-Request-Id: {request_id}\r\n" if request_id else "") + "\r\n").encode()
    with socket.create_connection(("127.0.0.1", stack.edge.port), timeout=30) as sock:
        sender = threading.Thread(target=_send_ignoring_close, args=(sock, head + framed_body), daemon=True)
        sender.start()
        reply = _read_reply(sock)
        sender.join(30)
    return reply


def _send_ignoring_close(sock: socket.socket, data: bytes) -> None:
    # The edge may answer and close before taking it all: the answer is what counts.
    with contextlib.suppress(OSError):
        sock.sendall(data)


def _read_reply(sock: socket.socket) -> Reply:
    received = b""
    while b"\r\n\r\n" not in received:
        data = sock.recv(65536)
        assert data, f"the connection closed before an answer: {received!r}"
        received += data
    head, _, body = received.partition(b"\r\n\r\n")
    status_line, *lines = head.decode("latin-1").split("\r\n")
    headers = {name.strip().lower(): value.strip() for name, _, value in (line.partition(":") for line in lines)}
    length = int(headers.get("content-length", "-1"))
    while len(body) < length or length < 0:
        data = sock.recv(65536)
        if not data:
            break
        body += data
    return Reply(int(status_line.split()[1]), headers, body)


def _confidential_client(stack) -> tuple[str, str]:
    admin = stack.token(*stack.admin)["access_token"]
    created = requests.post(f"{stack.url}/v1/clients", headers={"Authorization": f"Bearer {admin}"}, timeout=10,
                            json={"name": f"padded-{uuid.uuid4().hex[:8]}", "scopes": ["accounts.read"]})
    assert created.status_code == 200, created.text
    return created.json()["clientId"], created.json()["clientSecret"]


def _is_problem(reply: Reply, status: int) -> dict:
    assert reply.status == status, reply.body[:500]
    assert reply.headers["content-type"] == "application/problem+json"
    return reply.json()


def test_a_client_credentials_form_padded_past_the_limit_is_413_and_issues_no_token(stack):
    client_id, secret = _confidential_client(stack)
    form = f"grant_type=client_credentials&client_id={client_id}&client_secret={secret}"
    whole = _post_chunked(stack, "/oauth2/token", FORM, _chunked(form.encode()))
    assert whole.status == 200 and "access_token" in whole.json(), whole.body  # the client is good
    # The same form padded to 70 KB with a parameter the endpoint ignores, the secret repeated at the end.
    padded = f"{form}&padding={'x' * 70_000}&client_secret={secret}".encode()
    reply = _post_chunked(stack, "/oauth2/token", FORM, _chunked(padded))
    assert _is_problem(reply, 413)["status"] == 413
    assert b"access_token" not in reply.body


def test_a_revocation_form_of_200_kb_is_413(stack):
    client_id, secret = _confidential_client(stack)
    form = f"client_id={client_id}&client_secret={secret}&token={'t' * 200_000}".encode()
    _is_problem(_post_chunked(stack, "/oauth2/revoke", FORM, _chunked(form)), 413)


def test_a_form_at_the_limit_is_read_whole_and_one_byte_more_is_413(stack):
    """64 KiB is EDGE_MAX_BODY_BYTES' default; the one required parameter comes last."""
    def form(size: int) -> bytes:
        return b"padding=" + b"x" * (size - len(b"padding=") - len(b"&token=abc")) + b"&token=abc"

    at_limit = _post_chunked(stack, "/oauth2/revoke", FORM, _chunked(form(65536), 1000))
    assert at_limit.status == 200, at_limit.body  # the token was found: an unknown token is revoked quietly
    _is_problem(_post_chunked(stack, "/oauth2/revoke", FORM, _chunked(form(65537), 1000)), 413)


BAD_FRAMING = {
    "bad chunk extension": b"5\r\nabcde\r\n5;=oops\r\nfghij\r\n0\r\n\r\n",
    "negative chunk size": b"5\r\nabcde\r\n-5\r\nfghij\r\n0\r\n\r\n",
    "chunk size not hex": b"5\r\nabcde\r\nzz\r\nfghij\r\n0\r\n\r\n",
}
# Each endpoint that reads a body, and how it answers a 400: (path, content type, answer's media type).
BODY_ENDPOINTS = {
    "rest": ("/v1/accounts", "application/json", "application/problem+json"),
    "token": ("/oauth2/token", FORM, "application/json"),
    "revoke": ("/oauth2/revoke", FORM, "application/json"),
    "sign-in": ("/oauth2/authorize", FORM, "text/html"),
}


@pytest.mark.parametrize("framing", BAD_FRAMING.values(), ids=BAD_FRAMING.keys())
@pytest.mark.parametrize("endpoint", BODY_ENDPOINTS.values(), ids=BODY_ENDPOINTS.keys())
def test_malformed_chunk_framing_is_400_without_a_stack_trace(stack, endpoint, framing):
    path, content_type, answer_type = endpoint
    request_id = f"framing-{uuid.uuid4().hex}"
    logged = len(stack.edge.lines)
    reply = _post_chunked(stack, path, content_type, framing, request_id)
    assert reply.status == 400, reply.body[:500]
    assert reply.headers["content-type"].split(";")[0] == answer_type
    if answer_type == "application/json":
        assert reply.json()["error"] == "invalid_request"
    lines = _edge_lines_until(stack, logged, request_id)
    assert not [line for line in lines if "Traceback" in line], "".join(lines)


def _edge_lines_until(stack, start: int, request_id: str, timeout: float = 10) -> list[str]:
    """The edge's log lines from `start` up to the access line of the request `request_id`
    (written after anything else the request logs)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        lines = stack.edge.lines[start:]
        if any(request_id in line and "edge.access" in line for line in lines):
            return lines
        time.sleep(0.05)
    raise AssertionError(f"no access line for {request_id}:\n" + "".join(stack.edge.lines[start:]))
