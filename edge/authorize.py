"""The OAuth2 authorization endpoint (RFC 6749 section 4.1, PKCE per RFC 7636, RFC 9207's `iss`).

    GET  /oauth2/authorize?response_type=code&client_id=..&redirect_uri=..&scope=..&state=..
                           &code_challenge=..&code_challenge_method=S256
         -> the sign-in page (after the authorization server has checked the request)
    POST /oauth2/authorize (the page's form)
         -> 303 to redirect_uri?code=..&state=..&iss=..

The edge renders the page and keeps no secrets: the authorization server (an RPC named by
OAUTH_AUTHORIZE_METHOD) checks the client, its exact redirect URI, the challenge and the
credentials, and issues the code. Errors go back to the redirect URI only when the client and
the redirect URI are valid; otherwise the page shows them (section 4.1.2.1), so the endpoint is
never an open redirector.

The page has no script and no third-party asset; its CSP allows only its own inline style (by
hash) and form posts to itself and to the client's origin; it cannot be framed. The form is
protected from cross-site posts three ways: a random token in a SameSite=Strict, HttpOnly cookie
that the form must repeat, the Origin header, and Fetch Metadata (Sec-Fetch-Site).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import html
import logging
import re
import secrets
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import grpc
from flask import Blueprint, Response, current_app, request
from google.protobuf import message_factory

from edge.body import MalformedBody, read_form
from edge.problems import NO_STORE, rpc_details
from edge.upstream import Upstreams
from runtime.failures import Failure, classify

_LOGGER = logging.getLogger(__name__)
PARAMETERS = ("response_type", "client_id", "redirect_uri", "scope", "state", "code_challenge", "code_challenge_method")
# Errors the authorization server raises only after it has found the client and its redirect URI valid.
_REDIRECTABLE = {"INVALID_REQUEST", "UNSUPPORTED_RESPONSE_TYPE", "INVALID_SCOPE", "UNAUTHORIZED_CLIENT",
                 "ACCESS_DENIED"}
# A wrong password, a deactivated account and an unknown name read the same (no account enumeration).
_SIGN_IN_FAILED = {"INVALID_CREDENTIALS", "ACCOUNT_DEACTIVATED"}
# RFC 6749 Appendix A: every authorization parameter is printable ASCII (VSCHAR; scope, the redirect
# URI and the PKCE challenge are narrower still). The length bounds what a URL carries. The OpenAPI
# document (edge/fixed_paths.py) publishes both.
PARAMETER_CHARACTERS = r"[\x20-\x7E]*"
MAX_PARAMETER = 2048
_PARAMETER = re.compile(PARAMETER_CHARACTERS)

_STYLE = """
body{font-family:system-ui,sans-serif;background:#f4f4f6;color:#1d1d24;margin:0}
main{max-width:24rem;margin:3rem auto;background:#fff;padding:2rem;border-radius:8px;box-shadow:0 1px 4px #0002}
h1{font-size:1.4rem;margin-top:0}
label{display:block;margin:1rem 0 .3rem;font-weight:600}
input{width:100%;box-sizing:border-box;padding:.6rem;border:1px solid #6b6b76;border-radius:4px;font-size:1rem}
button{margin-top:1.5rem;width:100%;padding:.7rem;border:0;border-radius:4px;background:#1f4fbf;color:#fff;font-size:1rem}
button:focus,input:focus{outline:3px solid #f5a623;outline-offset:1px}
.alert{background:#fde8e8;color:#8a1111;padding:.7rem;border-radius:4px}
.scopes{color:#4a4a55;font-size:.9rem}
""".strip()
_STYLE_HASH = base64.b64encode(hashlib.sha256(_STYLE.encode()).digest()).decode()


def _csp(form_target: str = "") -> str:
    targets = " ".join(filter(None, ["'self'", form_target]))
    return (f"default-src 'none'; style-src 'sha256-{_STYLE_HASH}'; form-action {targets}; "
            "frame-ancestors 'none'; base-uri 'none'")


def _origin(uri: str) -> str:
    parts = urlsplit(uri)
    return f"{parts.scheme}://{parts.netloc}" if parts.scheme and parts.netloc else ""


def _with_query(uri: str, values: dict[str, str]) -> str:
    """`uri` with `values` added to its query (a registered URI may carry a query of its own)."""
    parts = urlsplit(uri)
    query = parse_qsl(parts.query, keep_blank_values=True) + [(k, v) for k, v in values.items() if v]
    return urlunsplit((parts.scheme, parts.netloc, parts.path, urlencode(query), ""))


def _page(status: int, *, title: str, body: str, form_target: str = "", headers: dict | None = None) -> Response:
    document = (f'<!doctype html><html lang="en"><head><meta charset="utf-8">'
                f'<meta name="viewport" content="width=device-width, initial-scale=1">'
                f"<title>{html.escape(title)}</title><style>{_STYLE}</style></head>"
                f"<body><main>{body}</main></body></html>")
    return Response(document, status=status, mimetype="text/html", headers={
        "Content-Security-Policy": _csp(form_target), **NO_STORE,
        # Not the edge's no-referrer: under it a browser sends `Origin: null` with the form, which _same_site_post refuses.
        "Referrer-Policy": "same-origin", **(headers or {})})


def _error_page(status: int, message: str, headers: dict | None = None) -> Response:
    return _page(status, title="Sign-in error", headers=headers,
                 body=f'<h1>Sign-in cannot continue</h1><p class="alert" role="alert">{html.escape(message)}</p>')


class _Parameters(dict):
    """The request's authorization parameters; each at most once (RFC 6749 section 3.1)."""

    @classmethod
    def read(cls, source) -> _Parameters | str:
        found = cls()
        for name in PARAMETERS:
            values = source.getlist(name)
            if len(values) > 1:
                return f"{name} is given more than once"
            value = values[0] if values else ""
            if len(value) > MAX_PARAMETER or not _PARAMETER.fullmatch(value):
                return f"{name} is too long or not printable ASCII"
            found[name] = value
        return found


def authorize_blueprint(upstreams: Upstreams, method) -> Blueprint:
    bp = Blueprint("oauth2_authorize", __name__)
    request_class = message_factory.GetMessageClass(method.input_type)

    def call(params: _Parameters, **extra):
        fields = {k: v for k, v in params.items() if k != "state"}
        return upstreams.call(method, request_class(**fields, **extra))

    def redirect(params: _Parameters, values: dict[str, str]) -> Response:
        issuer = current_app.config["TOKEN_ISSUER"]
        location = _with_query(params["redirect_uri"], {**values, "state": params["state"], "iss": issuer})
        return Response(status=303, headers={"Location": location, **NO_STORE})

    def refused(params: _Parameters, error: grpc.RpcError, csrf: str = "", scope: str = "", client: str = "") -> Response:
        """What an authorization server's refusal becomes: a redirect, the page again, or an error page."""
        _violations, reason, retry_after = rpc_details(error)
        code, meaning = error.code(), classify(error)
        if meaning.failure in (Failure.RETRYABLE, Failure.OVERLOADED):
            return _error_page(503, "Sign-in is unavailable for a moment. Please try again.",
                               {"Retry-After": retry_after or "1"})
        if reason in _REDIRECTABLE:
            return redirect(params, {"error": reason.lower(), "error_description": error.details() or ""})
        if csrf and reason in _SIGN_IN_FAILED:
            return sign_in_page(params, csrf, client, scope, 400, "The username or password is not correct.")
        if csrf and meaning.failure is Failure.CLIENT_FAULT and code == grpc.StatusCode.RESOURCE_EXHAUSTED:
            return sign_in_page(params, csrf, client, scope, 429, error.details() or "Too many attempts.",
                                {"Retry-After": retry_after or "30"})
        if reason in ("INVALID_CLIENT", "INVALID_REDIRECT_URI") or code == grpc.StatusCode.INVALID_ARGUMENT:
            return _error_page(400, f"The application's sign-in request is not valid: {error.details()}")
        _LOGGER.error("authorization server failed: %s %s", code.name, error.details())
        return _error_page(500, "Sign-in could not be completed. Please try again later.")

    def sign_in_page(params: _Parameters, csrf: str, client: str, scope: str, status: int = 200,
                     message: str = "", headers: dict | None = None) -> Response:
        hidden = "".join(f'<input type="hidden" name="{name}" value="{html.escape(params[name])}">'
                         for name in PARAMETERS)
        alert = f'<p class="alert" role="alert">{html.escape(message)}</p>' if message else ""
        body = (f"<h1>Sign in to {html.escape(client or 'continue')}</h1>{alert}"
                f'<p class="scopes">It asks for: {html.escape(scope or "no scopes")}</p>'
                f'<form method="post" action="{html.escape(request.path)}">{hidden}'
                f'<input type="hidden" name="csrf" value="{html.escape(csrf)}">'
                '<label for="username">Username</label>'
                '<input id="username" name="username" autocomplete="username" required maxlength="64">'
                '<label for="password">Password</label>'
                '<input id="password" name="password" type="password" autocomplete="current-password" required maxlength="128">'
                '<button type="submit">Sign in</button></form>')
        response = _page(status, title="Sign in", body=body, form_target=_origin(params["redirect_uri"]),
                         headers=headers)
        _set_csrf_cookie(response, csrf)
        return response

    @bp.get("/oauth2/authorize")
    def show():
        params = _Parameters.read(request.args)
        if isinstance(params, str):
            return _error_page(400, params)
        try:
            checked = call(params, validate_only=True)
        except grpc.RpcError as error:
            return refused(params, error)
        return sign_in_page(params, secrets.token_urlsafe(32), checked.client_name, checked.scope)

    @bp.post("/oauth2/authorize")
    def sign_in():
        try:
            form = read_form()  # whole, or refused: never a form cut short at the size limit
        except MalformedBody as malformed:  # too large: 413 problem+json, from the app's handler
            return _error_page(400, f"The sign-in form cannot be read: {malformed}.")
        params = _Parameters.read(form)
        if isinstance(params, str):
            return _error_page(400, params)
        csrf = form.get("csrf", "")
        if not _same_site_post(csrf):
            return _error_page(403, "This sign-in form has expired or was sent from another site. "
                                    "Please go back to the application and start again.")
        try:
            checked = call(params, validate_only=True)  # the client's name, for the page if sign-in fails
        except grpc.RpcError as error:
            return refused(params, error)
        try:
            issued = call(params, username=form.get("username", ""), password=form.get("password", ""))
        except grpc.RpcError as error:
            return refused(params, error, csrf, checked.scope, checked.client_name)
        return redirect(params, {"code": issued.code})

    return bp


def _cookie_name() -> str:
    # __Host-: only set over HTTPS, for this host and path "/", so no subdomain can plant one.
    return "__Host-oauth-csrf" if request.scheme == "https" else "oauth-csrf"


def _set_csrf_cookie(response: Response, token: str) -> None:
    https = request.scheme == "https"
    response.set_cookie(_cookie_name(), token, httponly=True, samesite="Strict", secure=https,
                        path="/" if https else "/oauth2/authorize", max_age=600)


def _same_site_post(form_token: str) -> bool:
    """A form post from this site's own sign-in page: the cookie and the form carry the same token,
    and the browser says the request comes from this origin (when it says anything)."""
    cookie = request.cookies.get(_cookie_name(), "")
    if not cookie or not form_token or not hmac.compare_digest(cookie.encode(), form_token.encode()):
        return False
    if request.headers.get("Sec-Fetch-Site", "same-origin") != "same-origin":
        return False
    origin = request.headers.get("Origin")
    return origin is None or origin == request.host_url.rstrip("/")
