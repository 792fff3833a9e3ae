"""Gunicorn settings for the edge (read by `python -m edge`), from EdgeServerSettings (edge/config.py).

The gunicorn master reads only the serving part of the edge's configuration, once, when it loads this
file: `python -m edge` has already checked the whole of it, and the same settings also serve apps
that are not the edge (bench/bare_app.py). A bad value stops the start with the variable's name.

Threads per worker serve concurrent requests; each worker process creates its own gRPC
channels on first use, after the fork (grpcio does not survive fork()). The worker class is
gunicorn's gthread worker that also tells the app how long each request waited for a thread, so an
overloaded edge answers 503 at once instead of queueing requests to their timeouts (edge/admission.py).

HTTPS: with EDGE_TLS_CERT_FILE and EDGE_TLS_KEY_FILE (PEM) the edge serves only TLS on EDGE_PORT, with
Mozilla's "intermediate" profile (edge/tls.py, applied by the ssl_context hook below); plain HTTP there
is refused. Without them it serves plain HTTP, for a TLS proxy or ingress in front;
FORWARDED_ALLOW_IPS names the proxies whose X-Forwarded-Proto is believed.
"""

import os
import shutil
import ssl
import tempfile

from edge.config import EdgeServerSettings
from edge.tls import intermediate
from edge.worker import QueueTimingWorker
from runtime.settings import ConfigError, Env


def _settings() -> EdgeServerSettings:
    try:
        return EdgeServerSettings.from_env(Env())
    except ConfigError as error:
        raise SystemExit(f"edge: configuration error: {error}") from None


SETTINGS = _settings()

bind = f"{SETTINGS.host}:{SETTINGS.port}"
workers = SETTINGS.workers
worker_class = "edge.worker.QueueTimingWorker"
QueueTimingWorker.header_timeout_seconds = SETTINGS.header_timeout_seconds  # read by the forked workers
QueueTimingWorker.max_queue_seconds = SETTINGS.max_queue_seconds
threads = SETTINGS.threads
timeout = 30
graceful_timeout = 10
keepalive = 5
# Header limits: an Authorization header larger than this is refused before the app sees it.
limit_request_line = 4094
limit_request_fields = 64
limit_request_field_size = 8190
# The app writes its own JSON access log (with trace and request ids); EDGE_ACCESS_LOG=- adds gunicorn's.
accesslog = SETTINGS.access_log
access_log_format = '{"remote": "%(h)s", "request": "%(r)s", "status": %(s)s, "bytes": %(B)s, "ms": %(M)s, "request_id": "%({x-request-id}o)s"}'
errorlog = "-"
certfile = str(SETTINGS.tls_cert_file) if SETTINGS.tls_cert_file else None
keyfile = str(SETTINGS.tls_key_file) if SETTINGS.tls_key_file else None


def ssl_context(config, default_ssl_context_factory):
    """gunicorn builds a server context for each connection; this narrows it to the edge's profile."""
    return intermediate(default_ssl_context_factory())


if certfile:
    try:  # once, at start: a Python whose ssl cannot take the profile stops here, not at each handshake
        intermediate(ssl.create_default_context(ssl.Purpose.CLIENT_AUTH))
    except RuntimeError as error:
        raise SystemExit(f"edge: cannot serve TLS with the intermediate profile: {error}") from None

preload_app = False
control_socket_disable = True  # several edges may run on one machine (tests)

# Every worker counts into files in one directory; the master serves /metrics on EDGE_METRICS_PORT, adding them
# up (prometheus_client multiprocess), so metrics are never on the public port.
# Set before any worker imports prometheus_client. (The multiprocess library's own variable, not a setting of ours.)
_OWN_METRICS_DIR = None
if not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
    _OWN_METRICS_DIR = os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix="edge-metrics-")
os.makedirs(os.environ["PROMETHEUS_MULTIPROC_DIR"], exist_ok=True)


def post_fork(server, worker):
    """Telemetry starts in each worker, after the fork: its span exporter thread must be the worker's own."""
    from observability import setup_telemetry

    setup_telemetry(SETTINGS.telemetry)


def post_worker_init(worker):
    """Said once the worker has loaded the app and is about to take connections: gunicorn's own lines
    (Listening at, Booting worker) come before the app is loaded, which takes about a second."""
    worker.log.info("worker %s serving", worker.pid)


def when_ready(server):
    from observability.metrics import serve_multiprocess_metrics

    if SETTINGS.metrics_port:
        serve_multiprocess_metrics(SETTINGS.metrics_port, SETTINGS.metrics_host)
        server.log.info("metrics on http://%s:%d/metrics", SETTINGS.metrics_host, SETTINGS.metrics_port)


def worker_exit(server, worker):
    """Closes the edge app's gRPC channels (the app keeps them in app.extensions)."""
    from edge.app import close_app

    app = getattr(worker, "served_app", None)
    if app is not None and "edge.upstreams" in getattr(app, "extensions", {}):
        close_app(app)


def child_exit(server, worker):
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(worker.pid)


def on_exit(server):
    if _OWN_METRICS_DIR:  # only the directory this config made
        shutil.rmtree(_OWN_METRICS_DIR, ignore_errors=True)
