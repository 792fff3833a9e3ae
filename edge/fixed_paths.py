"""OpenAPI path items of the edge's own endpoints, the ones no RPC annotation describes: the OAuth2
endpoints (edge/oauth.py, edge/authorize.py), the key set, the RFC 8414 metadata and health.

    paths = fixed_paths(token=True, revoke=True, authorize=True)   # only the endpoints configured
"""

from __future__ import annotations

from typing import Any

from edge.authorize import MAX_PARAMETER, PARAMETER_CHARACTERS

_TAG = "OAuth 2.0 and health"
_OAUTH_ERROR = {
    "type": "object", "required": ["error"],
    "properties": {"error": {"type": "string", "description": "an RFC 6749 section 5.2 error code"},
                   "error_description": {"type": ["string", "null"]}},
}
_TOKENS = {
    "type": "object", "required": ["access_token", "token_type", "expires_in"],
    "properties": {
        "access_token": {"type": "string", "description": "a JWT (ES256) to send as `Authorization: Bearer ...`"},
        "token_type": {"type": "string", "enum": ["Bearer"]},
        "expires_in": {"type": "integer", "description": "seconds"},
        "refresh_token": {"type": "string", "description": "rotated on every use; absent for client_credentials"},
        "scope": {"type": "string"},
    },
}
# The grants as a oneOf of consts: an enum with a description per value, which generated clients
# (tests/e2e) take as a plain string.
_GRANT_TYPE = {"type": "string", "description": "the grant", "oneOf": [
    {"const": "authorization_code", "description": "a code from the authorization endpoint, with its PKCE verifier"},
    {"const": "refresh_token", "description": "a refresh token, which is rotated on every use"},
    {"const": "client_credentials", "description": "a confidential client acting for itself"},
    {"const": "password", "description": "legacy: only where the metadata's grant_types_supported lists it"}]}
_STATUS = {"type": "object", "required": ["status"], "properties": {"status": {"type": "string"}}}


def _json(schema: dict, description: str, media: str = "application/json") -> dict:
    return {"description": description, "content": {media: {"schema": schema}}}


def _oauth_errors(*statuses: str) -> dict[str, dict]:
    texts = {"400": "the request is refused (RFC 6749 section 5.2)", "401": "client authentication failed",
             "429": "too many failed sign-ins; see Retry-After", "503": "the authorization server is unavailable"}
    return {status: _json(_OAUTH_ERROR, texts[status]) for status in statuses}


def _problem(description: str) -> dict:
    return _json({"$ref": "#/components/schemas/Problem"}, description, "application/problem+json")


def _form(properties: dict[str, dict], required: list[str]) -> dict:
    # No additionalProperties: false. The edge ignores fields it does not know, as RFC 6749
    # sections 3.1 and 3.2 require of the authorization server.
    schema = {"type": "object", "properties": properties, "required": required}
    return {"required": True, "content": {"application/x-www-form-urlencoded": {"schema": schema}}}


def _string(description: str, **rules: Any) -> dict:
    return {"type": "string", "description": description, **rules}


def _page(description: str) -> dict:
    return {"description": description, "content": {"text/html": {"schema": {"type": "string"}}}}


# What edge/authorize.py lets through to the authorization server (RFC 6749 Appendix A), and what
# that server requires: the code flow, an exactly registered redirect URI and an S256 challenge.
_ASCII = {"maxLength": MAX_PARAMETER, "pattern": f"^{PARAMETER_CHARACTERS}$"}
_AUTHORIZE_PARAMETERS = {
    "response_type": _string("`code`, the only response type", enum=["code"]),
    "client_id": _string("a registered client", minLength=1, **_ASCII),
    "redirect_uri": _string("one of the client's redirect URIs, exactly", format="uri", **_ASCII),
    "scope": _string("space-separated scopes (empty: all the client may ask for)", **_ASCII),
    "state": _string("returned as given", **_ASCII),
    "code_challenge": _string("BASE64URL(SHA256(code_verifier)), 43 characters (RFC 7636 section 4.2)",
                              pattern="^[A-Za-z0-9_-]{43}$"),
    "code_challenge_method": _string("`S256`; `plain` is refused", enum=["S256"]),
}
_AUTHORIZE_REQUIRED = ["response_type", "client_id", "redirect_uri", "code_challenge", "code_challenge_method"]
_AUTHORIZE_ANSWERS = {
    "303": {"description": "to the redirect URI with `code`, `state` and `iss`, or with `error` (only once the "
                           "client and the redirect URI are valid)",
            "headers": {"Location": {"schema": {"type": "string"}}}},
    "400": _page("the request or the sign-in is not valid; shown on the page, never redirected"),
    "403": _page("the form came from another site or has expired"),
    "413": _problem("the form is too large"),
    "429": _page("too many failed sign-ins; see Retry-After"),
    "503": _page("sign-in is unavailable for a moment"),
}


def _refresh_token_links(revoke: bool) -> dict[str, dict]:
    """Where a token response's refresh token goes next: the refresh grant, and revocation."""
    issued = "$response.body#/refresh_token"
    links = {"refresh": {"operationId": "token", "description": "new tokens; the client authenticates as before",
                         "requestBody": {"grant_type": "refresh_token", "refresh_token": issued}}}
    if revoke:
        links["revoke"] = {"operationId": "revoke", "description": "ends the refresh token's family",
                           "requestBody": {"token": issued, "token_type_hint": "refresh_token"}}
    return links


def fixed_paths(*, token: bool, revoke: bool, authorize: bool) -> dict[str, dict[str, Any]]:
    paths: dict[str, dict[str, Any]] = {
        "/.well-known/jwks.json": {"get": {
            "operationId": "jwks", "tags": [_TAG], "summary": "The keys that verify access tokens (RFC 7517)",
            "security": [], "responses": {"200": _json({"type": "object", "required": ["keys"], "properties": {
                "keys": {"type": "array", "items": {"type": "object"}}}}, "the key set", "application/jwk-set+json"),
                "503": _problem("the authorization server is unavailable")}}},
        "/.well-known/oauth-authorization-server": {"get": {
            "operationId": "oauthMetadata", "tags": [_TAG], "summary": "Authorization server metadata (RFC 8414)",
            "security": [], "responses": {"200": _json({"type": "object", "required": ["issuer"], "properties": {
                "issuer": {"type": "string"}}}, "the metadata"),
                                          "503": _problem("the authorization server is unavailable")}}},
        "/healthz": {"get": {"operationId": "healthz", "tags": [_TAG], "summary": "The edge process is alive",
                             "security": [], "responses": {"200": _json(_STATUS, "alive")}}},
        "/readyz": {"get": {"operationId": "readyz", "tags": [_TAG], "security": [],
                            "summary": "Every service behind the edge answers SERVING",
                            "responses": {"200": _json(_STATUS, "ready"), "503": _json(_STATUS, "not ready")}}},
    }
    if token:
        paths["/oauth2/token"] = {"post": {
            "operationId": "token", "tags": [_TAG], "summary": "Token endpoint (RFC 6749 section 3.2)",
            "description": "Grants: authorization_code (with PKCE), refresh_token, client_credentials; password only "
                           "where the server enables it (see the metadata). Client authentication: HTTP Basic or the "
                           "form's client_id and client_secret; a public client sends client_id alone.",
            "security": [], "requestBody": _form({
                "grant_type": _GRANT_TYPE,
                "code": _string("authorization_code: the code"),
                "redirect_uri": _string("authorization_code: the redirect URI the code was issued for"),
                # Empty is as if omitted (RFC 6749 section 3.2), which the other grants allow.
                "code_verifier": _string("authorization_code: the PKCE verifier (RFC 7636 section 4.1)",
                                         pattern="^([A-Za-z0-9._~-]{43,128})?$"),
                "refresh_token": _string("refresh_token: the token"),
                "scope": _string("space-separated, at most what the grant allows"),
                "client_id": _string("the client"), "client_secret": _string("a confidential client's secret"),
                "username": _string("password grant"), "password": _string("password grant")}, ["grant_type"]),
            "responses": {"200": {**_json(_TOKENS, "tokens"), "links": _refresh_token_links(revoke)},
                          **_oauth_errors("400", "401", "429", "503"),
                          "413": _problem("the form is too large")}}}
    if revoke:
        paths["/oauth2/revoke"] = {"post": {
            "operationId": "revoke", "tags": [_TAG], "summary": "Revokes a refresh token and its family (RFC 7009)",
            "security": [], "requestBody": _form({
                "token": _string("the refresh token (an access token is not revoked: it expires on its own)",
                                 minLength=1),
                "token_type_hint": _string("`refresh_token` or `access_token`; a hint only, which the server may "
                                           "ignore (RFC 7009 section 2.1), and does"),
                "client_id": _string("the client it was issued to"),
                "client_secret": _string("a confidential client's secret")}, ["token"]),
            "responses": {"200": {"description": "revoked, or unknown (not an error)"},
                          **_oauth_errors("400", "401", "503"), "413": _problem("the form is too large")}}}
    if authorize:
        parameters = [{"name": name, "in": "query", "required": name in _AUTHORIZE_REQUIRED,
                       "description": schema["description"], "schema": schema}
                      for name, schema in _AUTHORIZE_PARAMETERS.items()]
        paths["/oauth2/authorize"] = {
            "get": {"operationId": "authorize", "tags": [_TAG], "security": [], "parameters": parameters,
                    "summary": "Authorization endpoint (RFC 6749 section 4.1, PKCE): the sign-in page",
                    "responses": {"200": _page("the sign-in page"), **_AUTHORIZE_ANSWERS}},
            "post": {"operationId": "signIn", "tags": [_TAG], "security": [],
                     "summary": "The sign-in page's form (needs the page's cookie; not for API clients)",
                     "requestBody": _form({**_AUTHORIZE_PARAMETERS,
                                           "csrf": _string("the page's token, the same as its cookie", minLength=1),
                                           "username": _string("the account's username", minLength=1),
                                           "password": _string("the account's password", minLength=1)},
                                          [*_AUTHORIZE_REQUIRED, "csrf", "username", "password"]),
                     "responses": {"200": _page("the sign-in page"), **_AUTHORIZE_ANSWERS}}}
    for operations in paths.values():  # what the HTTP server answers by itself, on every path
        for operation in operations.values():
            operation["responses"].setdefault("414", _problem("the request line (path and query) is too long"))
            operation["responses"].setdefault("431", _problem("the request headers are too large"))
    return paths
