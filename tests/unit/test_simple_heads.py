"""edge/intake.simple_head: the requests the edge's worker may refuse from the head its event loop read,
without gunicorn's parser (edge/worker.py), and everything it leaves to that parser."""

import pytest

from edge.intake import SimpleHead, simple_head


def test_a_get_with_its_request_id():
    head = b"GET /v1/things/t1?name=x HTTP/1.1\r\nHost: edge\r\nX-Request-Id: abc-1\r\n\r\n"
    assert simple_head(head) == SimpleHead("GET", "/v1/things/t1", "abc-1", True)


@pytest.mark.parametrize(("head", "keep_alive"), [
    (b"GET / HTTP/1.1\r\nConnection: close\r\n\r\n", False),
    (b"GET / HTTP/1.1\r\nconnection: Keep-Alive, Close\r\n\r\n", False),
    (b"GET / HTTP/1.0\r\n\r\n", False),
    (b"GET / HTTP/1.1\r\nContent-Length: 0\r\n\r\n", True),
])
def test_whether_the_connection_may_be_kept(head, keep_alive):
    assert simple_head(head).keep_alive is keep_alive


@pytest.mark.parametrize("head", [
    b"POST /v1/things HTTP/1.1\r\nContent-Length: 5\r\n\r\n",          # a body to drain
    b"POST /v1/things HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n",  # a body of unknown length
    b"GET /a HTTP/1.1\r\n\r\nGET /b HTTP/1.1\r\n\r\n",                   # a pipelined request after it
    b"POST /v1/things HTTP/1.1\r\nContent-Length: 2\r\n\r\n{}",         # the body already read
    b"GET /a HTTP/1.1\r\nHost: edge\r\n",                               # not a whole head
    b"GET http://edge/a HTTP/1.1\r\n\r\n",                              # absolute form
    b"GET /a HTTP/2.0\r\n\r\n",
    b"GET  /a HTTP/1.1\r\n\r\n",
    b"GET /a HTTP/1.1\r\nContent-Length : 5\r\n\r\n",                   # space before the colon
    b"GET /a HTTP/1.1\r\nno colon here\r\n\r\n",
    b"GET /a HTTP/1.1\n\n",                                             # bare line feeds
])
def test_anything_else_is_left_to_gunicorns_parser(head):
    assert simple_head(head) is None
