"""The edge's gunicorn worker: gthread, plus how long each request waited for a thread.

    worker_class = "edge.worker.QueueTimingWorker"        (edge/gunicorn_conf.py)

gunicorn's gthread worker accepts connections as fast as they come (up to worker_connections) and
hands every request to a thread pool whose queue has no bound: when requests arrive faster than the
threads finish them, they wait there, unseen by the app, until their clients give up. This worker notes
when each request joined that queue (its connection was accepted, or a kept-alive connection became
readable) and, when a thread takes it, gives the app the wait in the WSGI environ under QUEUE_WAIT
(seconds). edge/admission.py decides what to do with it. This module imports no more than gunicorn:
the master loads it before it forks.

The wait ends when a thread takes the connection, before the TLS handshake and before the thread
waits for a slow client's first bytes: it measures the server's backlog, not the client's speed.
"""

from __future__ import annotations

import threading
import time
from typing import Any

from gunicorn.workers.gthread import ThreadWorker

QUEUE_WAIT = "edge.queue_wait_seconds"  # WSGI environ key: seconds the request waited for a thread


class QueueTimingWorker(ThreadWorker):
    wsgi: Any  # the WSGI callable gunicorn serves (set by load_wsgi)

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._taken = threading.local()  # per pool thread: how long the request it now serves waited
        self.served_app: Any = None  # the app itself; self.wsgi is the app behind the timing wrapper

    def enqueue_req(self, conn):
        conn.queued_at = time.monotonic()
        super().enqueue_req(conn)

    def handle(self, conn):
        queued_at = getattr(conn, "queued_at", None)
        self._taken.wait = None if queued_at is None else time.monotonic() - queued_at
        try:
            return super().handle(conn)
        finally:
            self._taken.wait = None

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
