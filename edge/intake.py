"""Connection intake: a request thread gets a connection only with a whole request head in hand.

gunicorn's gthread worker hands a new connection to a pool thread at once, and that thread then does
the TLS handshake and reads the request head with a blocking socket: with 2 workers x 8 threads,
sixteen clients that stall inside the handshake or send one header line a second hold every thread,
and nobody else is answered until they leave (idle TCP connections did the same for 5 s each).

Here the worker's event loop does that part for every connection, without blocking: the TLS handshake
(`ssl` with do_handshake_on_connect=False on a non-blocking socket), then reading until the blank line
that ends the request head, for a new connection and for each next request on a kept-alive one. Only
then does the connection join the thread pool's queue, with the bytes read so far given back to
gunicorn's parser. A connection that has not delivered its head `header_timeout` seconds after it
arrived (or, kept alive, after its next request began) is closed; one kept alive sends nothing is
closed after gunicorn's keepalive setting as before.

The TLS context is built once per worker (and again when the certificate file changes), not per
connection as gunicorn does; gunicorn's `ssl_context` hook (edge/gunicorn_conf.py) still shapes it.

What is read here is only the head; a request body is read by the thread that serves the request.
"""

from __future__ import annotations

import enum
import os
import socket
import ssl
from typing import NamedTuple

from gunicorn import http, sock
from gunicorn.workers.gthread import TConn

_READ_SIZE = 16 * 1024
# A head larger than this is handed on as it is: gunicorn's parser answers 431 or 414 by its own limits.
_MAX_HEAD_BYTES = 64 * 1024


class SimpleHead(NamedTuple):
    method: str
    path: str
    request_id: str | None  # the X-Request-Id header as sent
    keep_alive: bool  # HTTP/1.1 without "Connection: close"


def simple_head(head: bytes) -> SimpleHead | None:
    """What a refusal needs of a request whose head is all that was read and that has no body, in plain
    HTTP/1.x syntax; None for anything else (a body, pipelined bytes, an odd line), which gunicorn's
    parser then reads as it reads every request (edge/worker.py)."""
    end = head.find(b"\r\n\r\n")
    if end < 0 or end + 4 != len(head):
        return None
    lines = head[:end].split(b"\r\n")
    request_line = lines[0].split(b" ")
    if len(request_line) != 3 or request_line[2] not in (b"HTTP/1.1", b"HTTP/1.0") or not request_line[1].startswith(b"/"):
        return None
    keep_alive, request_id = request_line[2] == b"HTTP/1.1", None
    for line in lines[1:]:
        name, colon, value = line.partition(b":")
        if not colon or not name or name != name.strip() or not name.isascii():
            return None
        name, value = name.lower(), value.strip()
        if name == b"transfer-encoding" or (name == b"content-length" and value != b"0"):
            return None
        if name == b"connection" and b"close" in value.lower():
            keep_alive = False
        elif name == b"x-request-id":
            request_id = value.decode("latin-1")
    path = request_line[1].split(b"?", 1)[0].decode("latin-1")
    return SimpleHead(request_line[0].decode("latin-1"), path, request_id, keep_alive)


class Progress(enum.Enum):
    WAITING = "waiting"  # the head is not complete yet: keep watching the socket
    READY = "ready"      # a whole head (or more than any head may be) is buffered: queue it for a thread
    CLOSED = "closed"    # the client left, or its TLS failed: close the connection


class TlsContexts:
    """The server TLS context of one worker, rebuilt when the certificate or key file changes."""

    def __init__(self, cfg):
        self._cfg = cfg
        self._stamp: tuple[float, ...] = ()
        self._context: ssl.SSLContext | None = None

    def current(self) -> ssl.SSLContext:
        stamp = tuple(os.stat(path).st_mtime for path in (self._cfg.certfile, self._cfg.keyfile))
        if self._context is None or stamp != self._stamp:
            self._context, self._stamp = sock.ssl_context(self._cfg), stamp
        return self._context


class IntakeConn(TConn):
    """A connection whose TLS handshake and request head are taken by the event loop (see the module)."""

    sock: socket.socket | ssl.SSLSocket  # gunicorn's TConn sets these without annotations
    initialized: bool

    def __init__(self, cfg, client_sock: socket.socket, client, server, tls: ssl.SSLContext | None, deadline: float):
        super().__init__(cfg, client_sock, client, server)  # leaves the socket non-blocking
        self.head = bytearray()
        self.deadline = deadline  # time.monotonic() by which the head must be complete
        self.handshake_done = tls is None
        if tls is not None:
            self.sock = tls.wrap_socket(self.sock, server_side=True, do_handshake_on_connect=False,
                                        suppress_ragged_eofs=cfg.suppress_ragged_eofs)

    def init(self):
        """Called by the pool thread: the handshake is done, so only the parser is made."""
        if self.initialized:
            return
        self.initialized = True
        self.sock.setblocking(True)
        self.parser = http.get_parser(self.cfg, self.sock, self.client)

    def hand_over(self) -> None:
        """Gives the head read so far to the parser that will read the request from the socket."""
        if self.parser is None:
            self.init()
        self.parser.unreader.unread(bytes(self.head))
        self.head.clear()
        self.data_ready = True  # gunicorn's handle() must not wait for bytes the loop already has

    def advance(self) -> Progress:
        """Does what can be done without blocking: the handshake, then reading the head."""
        if not self.handshake_done:
            assert isinstance(self.sock, ssl.SSLSocket)
            try:
                self.sock.do_handshake()
            except (ssl.SSLWantReadError, ssl.SSLWantWriteError):
                return Progress.WAITING
            except (ssl.SSLError, OSError):
                return Progress.CLOSED  # not TLS, or a handshake that failed: nothing to answer
            self.handshake_done = True
        while True:
            try:
                chunk = self.sock.recv(_READ_SIZE)
            except (ssl.SSLWantReadError, ssl.SSLWantWriteError, BlockingIOError, InterruptedError):
                return Progress.WAITING
            except (ssl.SSLError, OSError):
                return Progress.CLOSED
            if not chunk:
                return Progress.CLOSED  # the client left before finishing its request
            self.head += chunk
            if b"\r\n\r\n" in self.head or b"\n\n" in self.head or len(self.head) > _MAX_HEAD_BYTES:
                return Progress.READY
