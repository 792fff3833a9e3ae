"""A WSGI app on a real HTTP socket (127.0.0.1, free port) for the length of a `with` block."""

from __future__ import annotations

import contextlib
import threading

from werkzeug.serving import make_server


@contextlib.contextmanager
def serve(app):
    """Yields the base URL, e.g. "http://127.0.0.1:43117"."""
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        thread.join(10)
