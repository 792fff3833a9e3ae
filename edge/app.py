"""The edge: the only public door. REST/JSON in, gRPC over mTLS out.

    app = create_app()                 # configuration from the environment (edge/config.py)
    app = create_app({"EDGE_UPSTREAMS": ..., ...})   # or from a mapping, in tests

Routes come from the services' `google.api.http` annotations; the edge has no code per RPC.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping

import grpc
from flask import Flask, g, jsonify, request
from grpc_health.v1 import health_pb2, health_pb2_grpc
from werkzeug.exceptions import HTTPException

from edge import openapi
from edge.admission import PROBES, request_id
from edge.body import BodyRefused
from edge.config import EdgeConfig
from edge.oauth import oauth_blueprint
from edge.problems import HSTS, SECURITY_HEADERS, deadline_expired, from_rpc_error, problem
from edge.routes import bad_request, body_refused, register_routes
from edge.site import site_blueprint
from edge.templates import CONVERTERS
from edge.transcoding import BadRequest
from edge.upstream import Upstreams, begin_call
from observability.http import instrument_flask
from observability.logs import request_id_var
from runtime.calls import CallContext, DeadlineExpired
from runtime.clients import ServiceClients
from runtime.descriptors import load_method, load_service
from runtime.policy import declared_scopes
from runtime.tokens import jwks_over_grpc, token_verifier

_LOGGER = logging.getLogger(__name__)


def create_app(config: EdgeConfig | Mapping[str, str] | None = None) -> Flask:
    cfg = config if isinstance(config, EdgeConfig) else EdgeConfig.from_env(config)
    app = Flask(__name__, static_folder=None)
    app.config.update(MAX_CONTENT_LENGTH=cfg.max_body_bytes, TOKEN_ISSUER=cfg.verifier.issuer, REALM=cfg.realm)
    app.json.sort_keys = False  # type: ignore[attr-defined]  # Flask's default provider has it; its base class does not
    app.url_map.converters.update(CONVERTERS)

    services = [load_service(name) for name in cfg.upstreams]
    upstreams = Upstreams(ServiceClients(cfg.tls, cfg.upstreams))
    jwks_method = load_method(cfg.jwks_method)
    fetch = jwks_over_grpc(
        lambda method, request, timeout: upstreams.call(method, request, CallContext.starting_now(timeout)), jwks_method)
    verifier = token_verifier(cfg.verifier, fetch)

    routes = register_routes(app, services, upstreams, verifier)
    described = declared_scopes(services)  # scope -> what it allows, declared on each service
    scopes = sorted({s for _, policy in routes for s in policy.scopes | policy.bypass_scopes} | set(described))
    optional = {name: load_method(getattr(cfg, name)) if getattr(cfg, name) else None
                for name in ("token_method", "revoke_method", "authorize_method", "metadata_method")}
    app.register_blueprint(oauth_blueprint(
        upstreams, optional["token_method"], optional["revoke_method"], jwks_method, scopes,
        authorize_method=optional["authorize_method"], metadata_method=optional["metadata_method"]))
    app.register_blueprint(openapi.blueprint(routes, {s: described.get(s, s) for s in scopes}, cfg))
    if cfg.site_dir is not None:
        app.register_blueprint(site_blueprint(cfg.site_dir, cfg.site_path))
    _add_health(app, upstreams)
    _add_index(app, cfg)
    _add_request_handling(app, cfg.deadline_seconds)
    _add_telemetry(app, cfg)
    # Per-app resources (Flask's pattern): the gRPC channels live as long as the app, closed by close_app().
    app.extensions["edge.upstreams"] = upstreams
    return app


def close_app(app: Flask) -> None:
    """Closes the app's gRPC channels (a gunicorn worker calls it on exit)."""
    app.extensions["edge.upstreams"].close()


def _add_telemetry(app: Flask, cfg: EdgeConfig) -> None:
    """A span per request around the whole app (W3C context in from trusted callers, carried on to the
    gRPC calls), RED metrics (served on EDGE_METRICS_PORT by the gunicorn master, never on the public
    port), a JSON access line: for every answer, refusals included."""
    instrument_flask(app, untraced=(*PROBES, "/openapi.json", "/docs"), access_logger="edge.access",
                     trusted_trace_sources=cfg.server.trace_trusted_networks)


def _add_index(app: Flask, cfg: EdgeConfig) -> None:
    """`/` says where to go: the API's documentation, its OpenAPI document, the site if there is one."""
    links = {"docs": "/docs", "openapi": "/openapi.json",
             "oauth_metadata": "/.well-known/oauth-authorization-server"}
    if cfg.site_dir is not None:
        links["site"] = f"{cfg.site_path}/"

    @app.get("/")
    def index():
        return jsonify(name=cfg.api_title, links=links)


def _add_health(app: Flask, upstreams: Upstreams) -> None:
    @app.get(PROBES[0])
    def healthz():
        return jsonify(status="ok")

    @app.get(PROBES[1])
    def readyz():
        """Ready when every upstream answers grpc.health SERVING. Which one is not, and where it runs,
        goes to the log: internal addresses are not the public's business."""
        failing = {}
        for target in sorted(set(upstreams.targets().values())):
            try:
                reply = health_pb2_grpc.HealthStub(upstreams.channel(target)).Check(
                    health_pb2.HealthCheckRequest(), timeout=1)
                if reply.status != health_pb2.HealthCheckResponse.SERVING:
                    failing[target] = health_pb2.HealthCheckResponse.ServingStatus.Name(reply.status)
            except grpc.RpcError as error:
                failing[target] = error.code().name
        if failing:
            _LOGGER.warning("not ready: %s", failing)
            return jsonify(status="not ready"), 503
        return jsonify(status="ready")


def _add_request_handling(app: Flask, deadline_seconds: float) -> None:
    @app.before_request
    def begin():
        """What every request goes through before its route, in this order (a probe, only the first):
        1. its request id (the client's, if well-formed), which every log line of it carries;
        2. its deadline, from Request-Timeout or grpc-timeout (a malformed one is a 400), less the
           time it waited for a thread.
        The route then checks the token and its scopes, reads the body, checks the owner and calls
        the service (edge/routes.py). Telemetry wraps all of it (observability/http.py). A request
        that waited too long for a thread never gets here: the worker refused it (edge/admission.py)."""
        g.request_id = request_id(request.headers.get("X-Request-Id"))
        request_id_var.set(g.request_id)
        if request.path in PROBES:
            return None
        begin_call(deadline_seconds, g.request_id)
        return None

    @app.after_request
    def finish(response):
        response.headers["X-Request-Id"] = g.get("request_id", "")
        response.headers.setdefault("Cache-Control", "no-store")
        for header, value in SECURITY_HEADERS.items():
            response.headers.setdefault(header, value)
        # RFC 6797: sent only over TLS (ours, or a trusted proxy's X-Forwarded-Proto), never on plain HTTP.
        if request.scheme == "https":
            response.headers["Strict-Transport-Security"] = HSTS
        return response

    app.register_error_handler(BadRequest, bad_request)
    app.register_error_handler(BodyRefused, body_refused)
    app.register_error_handler(grpc.RpcError, from_rpc_error)
    app.register_error_handler(DeadlineExpired, deadline_expired)

    @app.errorhandler(HTTPException)
    def http_error(error: HTTPException):
        valid_methods = getattr(error, "valid_methods", None)  # set on 405s only
        headers = {"Allow": ", ".join(valid_methods)} if valid_methods else {}
        return problem(error.code or 500, error.description or error.name, headers=headers)

    @app.errorhandler(Exception)
    def unexpected(error: Exception):
        _LOGGER.exception("unhandled error on %s %s", request.method, request.path)
        return problem(500, "the server could not complete this request")
