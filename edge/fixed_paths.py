"""OpenAPI path items of the edge's own endpoints, the ones no RPC annotation describes: the OAuth2
endpoints (edge/oauth.py, edge/authorize.py), the key set, the RFC 8414 metadata and health.

    paths = fixed_paths(token=True, revoke=True, authorize=True)   # only the endpoints configured
"""

from __future__ import annotations

from typing import Any

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
_STATUS = {"type": "object", "required": ["status"], "properties": {"status": {"type": "string"}}}


def _json(schema: dict, description: str, media: str = "application/json") -> dict:
    return {"description": description, "content": {media: {"schema": schema}}}


def _oauth_errors(*statuses: str) -> dict[str, dict]:
    texts = {"400": "the request is refused (RFC 6749 section 5.2)", "401": "client authentication failed",
             "429": "too many failed sign-ins; see Retry-After", "503": "the authorization server is unavailable"}
    return {status: _json(_OAUTH_ERROR, texts[status]) for status in statuses}


def _problem(description: str) -> dict:
    return _json({"$ref": "#/components/schemas/Problem"}, description, "application/problem+json")


def _form(properties: dict[str, str], required: list[str]) -> dict:
    schema = {"type": "object", "properties": {name: {"type": "string", "description": text}
                                               for name, text in properties.items()}, "required": required}
    return {"required": True, "content": {"application/x-www-form-urlencoded": {"schema": schema}}}


def _page(description: str) -> dict:
    return {"description": description, "content": {"text/html": {"schema": {"type": "string"}}}}


_AUTHORIZE_PARAMETERS = {
    "response_type": "`code`", "client_id": "a registered client", "redirect_uri": "one of its redirect URIs, exactly",
    "scope": "space-separated scopes (empty: all the client may ask for)", "state": "returned as given",
    "code_challenge": "BASE64URL(SHA256(code_verifier)), 43 characters", "code_challenge_method": "`S256`",
}
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
                "grant_type": "the grant", "code": "authorization_code: the code",
                "redirect_uri": "authorization_code: the redirect URI the code was issued for",
                "code_verifier": "authorization_code: the PKCE verifier", "refresh_token": "refresh_token: the token",
                "scope": "space-separated, at most what the grant allows", "client_id": "the client",
                "client_secret": "a confidential client's secret", "username": "password grant",
                "password": "password grant"}, ["grant_type"]),
            "responses": {"200": _json(_TOKENS, "tokens"), **_oauth_errors("400", "401", "429", "503"),
                          "413": _problem("the form is too large")}}}
    if revoke:
        paths["/oauth2/revoke"] = {"post": {
            "operationId": "revoke", "tags": [_TAG], "summary": "Revokes a refresh token and its family (RFC 7009)",
            "security": [], "requestBody": _form({
                "token": "the refresh token", "token_type_hint": "a hint only", "client_id": "the client it was issued to",
                "client_secret": "a confidential client's secret"}, ["token"]),
            "responses": {"200": {"description": "revoked, or unknown (not an error)"},
                          **_oauth_errors("400", "401", "503"), "413": _problem("the form is too large")}}}
    if authorize:
        parameters = [{"name": name, "in": "query", "required": False, "schema": {"type": "string"}, "description": text}
                      for name, text in _AUTHORIZE_PARAMETERS.items()]
        paths["/oauth2/authorize"] = {
            "get": {"operationId": "authorize", "tags": [_TAG], "security": [], "parameters": parameters,
                    "summary": "Authorization endpoint (RFC 6749 section 4.1, PKCE): the sign-in page",
                    "responses": {"200": _page("the sign-in page"), **_AUTHORIZE_ANSWERS}},
            "post": {"operationId": "signIn", "tags": [_TAG], "security": [],
                     "summary": "The sign-in page's form (needs the page's cookie; not for API clients)",
                     "requestBody": _form({**_AUTHORIZE_PARAMETERS, "csrf": "the page's token", "username": "",
                                           "password": ""}, []),
                     "responses": {"200": _page("the sign-in page"), **_AUTHORIZE_ANSWERS}}}
    return paths
