"""`python -m edge` as an operator runs it (gunicorn with the edge's worker), in front of the echo service."""

from __future__ import annotations

import contextlib
import os

import requests

from harness import servers


@contextlib.contextmanager
def echo_edge(echo, pki_dir, **settings: str):
    """The edge on a free port with `settings` (EDGE_THREADS=..., EDGE_MAX_QUEUE_MS=...) added; yields
    (url, metrics url, process). Warmed by one request (its channel open, its worker loaded); on the way
    out, its output must hold no traceback and it must exit cleanly."""
    metrics_port = servers.free_port()
    edge = servers.ServiceProcess("edge", {
        "EDGE_PORT": "0", "EDGE_WORKERS": "1", "EDGE_METRICS_PORT": str(metrics_port), "TLS_DIR": str(pki_dir),
        "EDGE_UPSTREAMS": f"edgetest.v1.EchoService=127.0.0.1:{echo.port}", "JWKS_METHOD": "/edgetest.v1.EchoService/Keys",
        "TOKEN_ISSUER": servers.ISSUER, "TOKEN_AUDIENCE": servers.AUDIENCE,
        "PYTHONPATH": os.pathsep.join(filter(None, [str(echo.gen_dir), os.environ.get("PYTHONPATH")])),
        **settings,
    })
    try:
        url = f"http://127.0.0.1:{edge.port}"
        assert requests.get(f"{url}/v1/things/warm", timeout=30).status_code == 200
        yield url, f"http://127.0.0.1:{metrics_port}/metrics", edge
        assert "Traceback" not in "".join(edge.lines), "".join(edge.lines[-30:])
    finally:
        assert edge.stop() == 0
