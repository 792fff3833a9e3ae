"""The edge's gunicorn worker: gthread, plus how long each request waited for a thread.

    worker_class = "edge.worker.QueueTimingWorker"        (edge/gunicorn_conf.py)

gunicorn's gthread worker accepts connections as fast as they come (up to worker_connections) and
hands every request to a thread pool whose queue has no bound: when requests arrive faster than the
threads finish them, they wait there, unseen by the app, until their clients give up. This worker notes
when each request joined that queue (its head was complete) and, when a thread takes it, measures the
wait: a request that waited past EDGE_MAX_QUEUE_MS is answered 503 right there, from the head the event
loop read (a request without a body) or once gunicorn parsed it (any other), before the WSGI environ or
the app exist (edge/admission.py says what the answer is); the app gets the wait of the others in the
WSGI environ under QUEUE_WAIT (seconds), which their deadline counts.
This module imports no more than gunicorn: the master loads it before it forks (the worker process
loads edge.admission).

It also shares connections between workers. Every gthread worker polls the one listening socket and
whichever wakes first accepts, so a burst of new keep-alive connections (a load balancer's pool, a
benchmark's clients) could all land on one worker and stay there, leaving the others idle. A worker
that already holds a connection per thread steps back from the listener for PAUSE_SECONDS after each
accept, so the next connections go to a worker with room. Once it holds four connections per thread
it accepts freely again: by then every worker is full (many clients, or overload), pacing would only
leave connections in the kernel's backlog, and admission control answers what waits too long. With
one worker there is no one to step back for.

Slow clients do not hold its threads: the TLS handshake and the request head are taken by the event
loop, within EDGE_HEADER_TIMEOUT_SECONDS, before a connection joins the pool's queue (edge/intake.py).
The queue wait counts from there, so it measures the server's backlog, not the client's speed.

Its answers name no server software: gunicorn writes `Server: gunicorn` into every response head it
frames and has no setting to leave it out, so the worker process drops that line (`_without_server`).
"""

from __future__ import annotations

import errno
import json
import selectors
import threading
import time
from functools import partial
from typing import Any

from gunicorn import util
from gunicorn.http import wsgi
from gunicorn.workers.gthread import STOP_KEEPALIVE_LINGER, ThreadWorker

from edge.intake import IntakeConn, Progress, TlsContexts, simple_head

QUEUE_WAIT = "edge.queue_wait_seconds"  # WSGI environ key: seconds the request waited for a thread
PAUSE_SECONDS = 0.01  # how long a worker that holds a connection per thread leaves new ones to the others
_PACED_UP_TO = 4  # x threads: a worker holding this many connections accepts freely again (overload)


# What gunicorn answers by itself, before the app runs (a request it cannot parse), in the client's terms.
_SERVER_MADE = {
    400: "the request is not valid HTTP/1.1",
    403: "the request was refused",
    414: "the request line (method, path and query) is too long",
    417: "the expectation in the Expect header cannot be met",
    431: "the request's header fields are too large",
    500: "the server could not complete this request",
    501: "the request's transfer coding is not supported",
}


def write_problem(sock, status_int: int, reason: str, mesg: str) -> None:
    """gunicorn's own error answers as application/problem+json (RFC 9457), like every answer the
    app makes, instead of its HTML page; its message, which echoes the request, is not sent."""
    body = json.dumps({"type": "about:blank", "title": reason, "status": status_int,
                       "detail": _SERVER_MADE.get(status_int, reason.lower())}).encode()
    head = (f"HTTP/1.1 {status_int} {reason}\r\nConnection: close\r\nContent-Type: application/problem+json\r\n"
            f"Content-Length: {len(body)}\r\nCache-Control: no-store\r\nX-Content-Type-Options: nosniff\r\n\r\n")
    util.write_nonblock(sock, head.encode("latin-1") + body)


_GUNICORN_HEAD = wsgi.Response.default_headers  # the status line, Server, Date and Connection


def _without_server(response) -> list[str]:
    """gunicorn's response head without its Server line: naming the software only helps someone who
    looks for its known flaws."""
    return [line for line in _GUNICORN_HEAD(response) if not line.lower().startswith("server:")]


def _header(req, name: str) -> str | None:
    """A request header's value (gunicorn keeps names upper-case), or None."""
    return next((value for key, value in req.headers if key == name), None)


class QueueTimingWorker(ThreadWorker):
    wsgi: Any  # the WSGI callable gunicorn serves (set by load_wsgi)
    # Seconds a connection has to deliver its request head (TLS handshake included); edge/gunicorn_conf.py
    # sets it from EDGE_HEADER_TIMEOUT_SECONDS before the workers are forked.
    header_timeout_seconds = 10.0
    # A request that waited longer than this for a thread is refused (0: never); from EDGE_MAX_QUEUE_MS.
    max_queue_seconds = 0.0
    admission: Any = None  # edge.admission.Admission, made in the worker process
    _tls: TlsContexts | None = None

    def init_process(self):
        # gunicorn writes its error answers with util.write_error; in this worker process, ours.
        util.write_error = write_problem
        wsgi.Response.default_headers = _without_server
        self._tls = TlsContexts(self.cfg) if self.cfg.is_ssl else None  # built here: cfg is final by now
        from edge.admission import Admission  # in the worker only: it loads Flask and the metrics

        self.admission = Admission(self.max_queue_seconds, tls=self.cfg.is_ssl)
        super().init_process()

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._taken = threading.local()  # per pool thread: how long the request it now serves waited
        self.served_app: Any = None  # the app itself; self.wsgi is the app behind the timing wrapper
        self._paused_until = 0.0  # monotonic time until which this worker leaves new connections to others
        self._intake: set[IntakeConn] = set()  # connections whose request head the event loop is reading

    def accept(self, listener):
        try:
            client_sock, client_addr = listener.accept()
        except OSError as error:
            if error.errno not in (errno.EAGAIN, errno.ECONNABORTED, errno.EWOULDBLOCK):
                raise
            return
        self.nr_conns += 1
        tls = self._tls.current() if self._tls is not None else None
        deadline = time.monotonic() + self.header_timeout_seconds
        self._take_in(IntakeConn(self.cfg, client_sock, client_addr, listener.getsockname(), tls, deadline))
        if self.cfg.workers > 1 and self.cfg.threads <= self.nr_conns < _PACED_UP_TO * self.cfg.threads:
            self._paused_until = time.monotonic() + PAUSE_SECONDS
            self.set_accept_enabled(False)

    def on_client_socket_readable(self, conn, client):
        """A kept-alive connection's next request began: its head is read by the loop too."""
        self.poller.unregister(client)
        self.keepalived_conns.remove(conn)
        conn.deadline = time.monotonic() + self.header_timeout_seconds
        self._take_in(conn)

    def _take_in(self, conn: IntakeConn) -> None:
        self._progress(conn, conn.advance())

    def _progress(self, conn: IntakeConn, progress: Progress) -> None:
        watched = conn in self._intake
        if progress is Progress.WAITING:
            if not watched:
                self._intake.add(conn)
                self.poller.register(conn.sock, selectors.EVENT_READ, partial(self._on_intake_readable, conn))
            return
        if watched:
            self._intake.discard(conn)
            self.poller.unregister(conn.sock)
        if progress is Progress.READY:
            self.enqueue_req(conn)  # the thread that takes it refuses it, or hands the head to gunicorn's parser
        else:
            self._drop(conn)

    def _on_intake_readable(self, conn: IntakeConn, client) -> None:
        self._progress(conn, conn.advance())

    def _drop(self, conn: IntakeConn) -> None:
        self.nr_conns -= 1
        conn.close()

    def murder_pending(self):
        """Also closes the connections that did not deliver their request head in time. A stopping
        worker gives those it is reading at most gunicorn's linger, as it does kept-alive ones."""
        super().murder_pending()
        now = time.monotonic()
        if not self.alive:
            for conn in self._intake:
                conn.deadline = min(conn.deadline, now + STOP_KEEPALIVE_LINGER)
        for conn in [c for c in self._intake if c.deadline <= now]:
            self._intake.discard(conn)
            self.poller.unregister(conn.sock)
            self._drop(conn)

    def set_accept_enabled(self, enabled):
        if enabled and time.monotonic() < self._paused_until:
            return  # run() asks again on its next turn; wait_for_and_dispatch_events keeps that turn short
        super().set_accept_enabled(enabled)

    def wait_for_and_dispatch_events(self, timeout):
        paused_for = self._paused_until - time.monotonic()
        super().wait_for_and_dispatch_events(min(timeout, paused_for) if paused_for > 0 else timeout)

    def enqueue_req(self, conn):
        conn.queued_at = time.monotonic()
        super().enqueue_req(conn)

    def handle(self, conn):
        queued_at = getattr(conn, "queued_at", None)
        wait = None if queued_at is None else time.monotonic() - queued_at
        if wait is not None and self.admission is not None:
            self.admission.waited(wait)
            if isinstance(conn, IntakeConn) and conn.head and self.admission.over_budget(wait):
                refused = self._refuse_simple(conn, wait)
                if refused is not None:
                    return refused
        if isinstance(conn, IntakeConn) and conn.head:
            conn.hand_over()
        self._taken.wait = wait
        try:
            return super().handle(conn)
        finally:
            self._taken.wait = None

    def _refuse_simple(self, conn: IntakeConn, wait: float) -> bool | None:
        """Refuses a request without a body from the head the event loop read, before gunicorn parses
        it (a third of a refusal's cost); None when it is not that simple or not to be refused (a probe).
        Returns whether the connection is kept."""
        head = simple_head(bytes(conn.head))
        if head is None:
            return None
        keep_alive = head.keep_alive and self._may_keep_alive()
        answer = self.admission.refusal(head.method, head.path, head.request_id, wait, keep_alive)
        if answer is None:
            return None
        conn.head.clear()
        conn.init()  # the parser a kept connection's next request is read with
        try:
            conn.sock.setblocking(True)
            conn.sock.sendall(answer)
        except OSError:
            return False
        return keep_alive

    def _may_keep_alive(self) -> bool:
        return bool(self.alive and self.cfg.keepalive and len(self.keepalived_conns) < self.max_keepalived)

    def handle_request(self, req, conn):
        """A request that waited too long for this thread is refused here, with its head parsed and
        nothing else done (edge/admission.py); gunicorn then drains a body it carried, as for any
        answer that keeps the connection."""
        wait = getattr(self._taken, "wait", None)
        if wait is not None and self.admission is not None:
            keep_alive = self._may_keep_alive() and not req.should_close()
            answer = self.admission.refusal(req.method, req.path, _header(req, "X-REQUEST-ID"), wait, keep_alive)
            if answer is not None:
                self._taken.wait = None
                conn.sock.sendall(answer)
                return keep_alive
        return super().handle_request(req, conn)

    def load_wsgi(self):
        super().load_wsgi()
        app, taken = self.wsgi, self._taken
        self.served_app = app

        def timed(environ, start_response):
            wait = getattr(taken, "wait", None)
            if wait is not None:
                environ[QUEUE_WAIT] = wait
                taken.wait = None  # the wait belongs to this request only
            return app(environ, start_response)

        self.wsgi = timed
