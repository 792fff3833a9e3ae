"""OAuth2 endpoints, translated to the authorization server's RPCs (the edge keeps no secrets).

    GET|POST /oauth2/authorize  RFC 6749 4.1 with PKCE: the sign-in page (edge/authorize.py)
    POST /oauth2/token        RFC 6749 (authorization_code, refresh_token, client_credentials, and
                              password where the authorization server enables it), form-encoded
    POST /oauth2/revoke       RFC 7009
    GET  /.well-known/jwks.json
    GET  /.well-known/oauth-authorization-server   RFC 8414
"""

from __future__ import annotations

import base64
import binascii
from urllib.parse import unquote

import grpc
from flask import Blueprint, Response, current_app, json, request
from google.protobuf import json_format, message_factory
from werkzeug.datastructures import MultiDict

from edge.authorize import authorize_blueprint
from edge.body import MalformedBody, read_form
from edge.problems import NO_STORE, oauth_error, oauth_error_from_rpc
from edge.upstream import Upstreams


def _client_credentials() -> tuple[str, str] | None:
    """client_secret_basic (RFC 6749 section 2.3.1): form-urlencoded id and secret in Basic auth."""
    header = request.headers.get("Authorization", "")
    if not header.lower().startswith("basic "):
        return None
    try:
        decoded = base64.b64decode(header[6:].strip(), validate=True).decode()
    except (binascii.Error, UnicodeDecodeError):
        return ("", "")
    client_id, _, secret = decoded.partition(":")
    return unquote(client_id), unquote(secret)


def _form_request(method, form: MultiDict[str, str], extra: dict[str, str]):
    """The RPC request built from form fields that name its fields (unknown ones are ignored, RFC 6749 3.2)."""
    message = message_factory.GetMessageClass(method.input_type)()
    fields = method.input_type.fields_by_name
    for name, value in {**form.to_dict(), **extra}.items():
        if name in fields and fields[name].type == fields[name].TYPE_STRING:
            setattr(message, name, value)
    return message


def oauth_blueprint(upstreams: Upstreams, token_method, revoke_method, jwks_method, scopes: list[str], *,
                    authorize_method=None, metadata_method=None) -> Blueprint:
    bp = Blueprint("oauth2", __name__)
    if authorize_method is not None:
        bp.register_blueprint(authorize_blueprint(upstreams, authorize_method))

    def form_call(method, required: tuple[str, ...] = ()):
        try:
            form = read_form()  # whole, or refused: never a form cut short at the size limit
        except MalformedBody as malformed:  # too large: 413 problem+json, from the app's handler
            return None, oauth_error("invalid_request", str(malformed))
        fields = method.input_type.fields_by_name
        # RFC 6749 section 3.2: no parameter twice (only the ones read: unknown ones are ignored);
        # one sent without a value is as if omitted.
        repeated = sorted(name for name, values in form.lists() if name in fields and len(values) > 1)
        if repeated:
            return None, oauth_error("invalid_request", f"{repeated[0]} is given more than once")
        missing = [name for name in required if not form.get(name)]
        if missing:
            return None, oauth_error("invalid_request", f"{missing[0]} is required")
        extra = {}
        basic = _client_credentials()
        if basic is not None:
            if "client_secret" in form:
                return None, oauth_error("invalid_request", "use one client authentication method, not two")
            extra = {"client_id": basic[0], "client_secret": basic[1]}
        try:
            return upstreams.call(method, _form_request(method, form, extra)), None
        except grpc.RpcError as error:
            return None, oauth_error_from_rpc(error)

    if token_method is not None:
        @bp.post("/oauth2/token")
        def token():
            response, failed = form_call(token_method)
            if failed:
                return failed
            body = json_format.MessageToDict(response, preserving_proto_field_name=True)
            return Response(json.dumps(body), mimetype="application/json", headers=NO_STORE)

    if revoke_method is not None:
        @bp.post("/oauth2/revoke")
        def revoke():
            _, failed = form_call(revoke_method, required=("token",))
            return failed or Response(status=200, headers=NO_STORE)

    @bp.get("/.well-known/jwks.json")
    def jwks():
        response = upstreams.call(jwks_method, message_factory.GetMessageClass(jwks_method.input_type)())
        body = json_format.MessageToDict(response, preserving_proto_field_name=True)
        return Response(json.dumps(body), mimetype="application/jwk-set+json", headers={"Cache-Control": "max-age=60"})

    @bp.get("/.well-known/oauth-authorization-server")
    def metadata():
        # Every URL is built on the configured issuer, never on the request's Host header, which
        # the client chooses (a forged Host would otherwise send clients' secrets elsewhere).
        issuer = current_app.config["TOKEN_ISSUER"]
        base = issuer.rstrip("/")
        client_auth = ["client_secret_basic", "client_secret_post", "none"]
        supported = {"grant_types_supported": ["client_credentials", "refresh_token"],
                     "response_types_supported": [], "code_challenge_methods_supported": []}
        if metadata_method is not None:  # what the authorization server's settings enable
            reply = upstreams.call(metadata_method, message_factory.GetMessageClass(metadata_method.input_type)())
            supported = json_format.MessageToDict(reply, preserving_proto_field_name=True)
        document = {
            "issuer": issuer,
            "jwks_uri": f"{base}/.well-known/jwks.json",
            # The routes' scopes, and any other the authorization server can grant (an admin scope no
            # route names yet is still one a client may be registered for).
            "scopes_supported": sorted(set(scopes) | set(supported.get("scopes_supported", []))),
            "response_types_supported": supported.get("response_types_supported", []),
            "grant_types_supported": supported.get("grant_types_supported", []),
            "token_endpoint_auth_methods_supported": client_auth,
        }
        if authorize_method is not None:
            document["authorization_endpoint"] = f"{base}/oauth2/authorize"
            document["code_challenge_methods_supported"] = supported.get("code_challenge_methods_supported", [])
            document["authorization_response_iss_parameter_supported"] = True  # RFC 9207
        if token_method is not None:
            document["token_endpoint"] = f"{base}/oauth2/token"
        if revoke_method is not None:
            document["revocation_endpoint"] = f"{base}/oauth2/revoke"
            document["revocation_endpoint_auth_methods_supported"] = client_auth
        return Response(json.dumps(document), mimetype="application/json", headers={"Cache-Control": "max-age=300"})

    return bp
