"""Gunicorn settings for the edge (read by `python -m edge`).

Threads per worker serve concurrent requests; each worker process creates its own gRPC
channels on first use, after the fork (grpcio does not survive fork()).

HTTPS: with EDGE_TLS_CERT_FILE and EDGE_TLS_KEY_FILE (PEM) the edge serves only TLS on EDGE_PORT
(Python's server defaults: TLS 1.2 or newer); plain HTTP there is refused. Without them it serves
plain HTTP, for a TLS proxy or ingress in front; FORWARDED_ALLOW_IPS names the proxies whose
X-Forwarded-Proto is believed.
"""

import os
import shutil
import ssl
import tempfile

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
# The app writes its own JSON access log (with trace and request ids); EDGE_ACCESS_LOG=- adds gunicorn's.
accesslog = os.environ.get("EDGE_ACCESS_LOG") or None
access_log_format = '{"remote": "%(h)s", "request": "%(r)s", "status": %(s)s, "bytes": %(B)s, "ms": %(M)s, "request_id": "%({x-request-id}o)s"}'
errorlog = "-"


def _tls_files() -> tuple[str | None, str | None]:
    """The certificate and key, checked here so a bad pair stops the start with the variable's name."""
    cert, key = os.environ.get("EDGE_TLS_CERT_FILE") or None, os.environ.get("EDGE_TLS_KEY_FILE") or None
    if bool(cert) != bool(key):
        raise SystemExit("edge: configuration error: set both EDGE_TLS_CERT_FILE and EDGE_TLS_KEY_FILE, or neither")
    if cert:
        try:
            ssl.create_default_context(ssl.Purpose.CLIENT_AUTH).load_cert_chain(cert, key)
        except (OSError, ssl.SSLError) as error:
            raise SystemExit(f"edge: configuration error: EDGE_TLS_CERT_FILE/EDGE_TLS_KEY_FILE ({cert}, {key}): {error}")
    return cert, key


certfile, keyfile = _tls_files()

preload_app = False
control_socket_disable = True  # several edges may run on one machine (tests)

# Every worker counts into files in one directory; the master serves /metrics on EDGE_METRICS_PORT, adding them
# up (prometheus_client multiprocess), so metrics are never on the public port.
# Set before any worker imports prometheus_client.
_OWN_METRICS_DIR = None
if not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
    _OWN_METRICS_DIR = os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix="edge-metrics-")
os.makedirs(os.environ["PROMETHEUS_MULTIPROC_DIR"], exist_ok=True)


def post_fork(server, worker):
    """Telemetry starts in each worker, after the fork: its span exporter thread must be the worker's own."""
    from edge.config import EdgeConfig
    from observability import setup_telemetry

    setup_telemetry(EdgeConfig.from_env().telemetry)


def when_ready(server):
    from edge.config import EdgeConfig
    from observability.metrics import serve_multiprocess_metrics

    config = EdgeConfig.from_env()
    if config.metrics_port:
        serve_multiprocess_metrics(config.metrics_port, config.metrics_host)
        server.log.info("metrics on http://%s:%d/metrics", config.metrics_host, config.metrics_port)


def worker_exit(server, worker):
    """Closes the worker's gRPC channels (the app keeps them in app.extensions)."""
    from edge.app import close_app

    if getattr(worker, "wsgi", None) is not None:
        close_app(worker.wsgi)


def child_exit(server, worker):
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(worker.pid)


def on_exit(server):
    if _OWN_METRICS_DIR:  # only the directory this config made
        shutil.rmtree(_OWN_METRICS_DIR, ignore_errors=True)
