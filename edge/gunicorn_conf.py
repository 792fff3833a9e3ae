"""Gunicorn settings for the edge (read by `python -m edge`).

Threads per worker serve concurrent requests; each worker process creates its own gRPC
channels on first use, after the fork (grpcio does not survive fork()).
"""

import os

bind = f"{os.environ.get('EDGE_HOST', '127.0.0.1')}:{os.environ.get('EDGE_PORT', '8080')}"
workers = int(os.environ.get("EDGE_WORKERS", "2"))
worker_class = "gthread"
threads = int(os.environ.get("EDGE_THREADS", "8"))
timeout = 30
graceful_timeout = 10
keepalive = 5
# Header limits: an Authorization header larger than this is refused before the app sees it.
limit_request_line = 4094
limit_request_fields = 64
limit_request_field_size = 8190
accesslog = os.environ.get("EDGE_ACCESS_LOG", "-") or None  # empty: no access log (benchmarks)
access_log_format = '{"remote": "%(h)s", "request": "%(r)s", "status": %(s)s, "bytes": %(B)s, "ms": %(M)s, "request_id": "%({x-request-id}o)s"}'
errorlog = "-"
preload_app = False
control_socket_disable = True  # several edges may run on one machine (tests)
