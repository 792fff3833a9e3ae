"""One Flask URL rule per `google.api.http` binding, generated from the descriptors at start.

Each generated view does the same steps, in this order, for any RPC: verify the bearer token, check
the method's scopes (before the body is read: a token without them gets 403 whatever it sent), read
the body and build the request message, apply the owner rule, check the fields' rules, call the
service with the request's deadline, and return the response as proto3 JSON. No view is written per
RPC. What runs before every view is in edge/app.py (`begin`).
"""

from __future__ import annotations

import logging

from flask import Flask, g, jsonify, request

from edge import auth, problems
from edge.body import BodyRefused, read_body
from edge.problems import problem
from edge.transcoding import BadRequest, Binding, bindings_of, build_request, response_json
from edge.upstream import Upstreams
from observability.tracing import mark_user
from runtime.access import AccessDenied, authorize
from runtime.policy import MethodPolicy, policy_of
from runtime.tokens import TokenError, TokenVerifier
from runtime.validation import describe, violations

_LOGGER = logging.getLogger(__name__)


def _is_json(content_type: str) -> bool:
    return content_type.split(";")[0].strip().lower() in ("application/json", "") or content_type.endswith("+json")


def _view(binding: Binding, policy: MethodPolicy, upstreams: Upstreams, verifier: TokenVerifier):
    def view(**path_args):
        g.rest_names = binding.rest_names  # errors from here on name fields as the client sends them
        claims = None
        if policy.needs_token:
            try:
                claims = auth.verify_request(verifier)
            except TokenError as error:
                return problems.unauthorized(error)
            mark_user(claims.subject)
            try:
                authorize(policy, claims, None)  # the scopes; the owner needs the request, read below
            except AccessDenied as denied:
                return problems.forbidden(denied)
        raw_body = read_body()
        if binding.body and raw_body.strip() and not _is_json(request.content_type or ""):
            return problem(415, "request body must be application/json")
        message = build_request(binding, path_args, request.args.lists(), raw_body, request.headers)
        if claims is not None:
            try:
                authorize(policy, claims, message)
            except AccessDenied as denied:
                return problems.forbidden(denied)
        invalid = violations(message)
        if invalid:
            raise BadRequest(describe(invalid), invalid)
        response = upstreams.call(binding.method, message, g.call.with_token(claims.token if claims else None))
        return jsonify(response_json(binding, response))

    return view


def register_routes(app: Flask, services, upstreams: Upstreams, verifier: TokenVerifier,
                    workload: str = "edge") -> list[tuple[Binding, MethodPolicy]]:
    """Adds a rule per binding of every method the edge's workload may call; returns what it added."""
    added = []
    for service in services:
        for binding in bindings_of(service):
            policy = policy_of(binding.method)
            if workload not in policy.callers:
                continue  # the service would refuse the edge anyway: do not publish the route
            endpoint = f"{binding.full_method}#{binding.http_method} {binding.template.rule}"
            app.add_url_rule(binding.template.rule, endpoint=endpoint, methods=[binding.http_method],
                             view_func=_view(binding, policy, upstreams, verifier))
            added.append((binding, policy))
    _LOGGER.info("edge serves %d routes", len(added))
    return added


def bad_request(error: BadRequest):
    return problem(400, str(error), violations=error.violations)


def body_refused(error: BodyRefused):
    """A body too large (413), or one that cannot be read (400), as problem+json: the REST routes' answer,
    and every endpoint's to a body over the limit."""
    return problem(error.status, str(error))
