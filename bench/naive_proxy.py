"""A naive REST-to-gRPC proxy of one call, the baseline the edge is measured against (bench/side_by_side.py, N).

    NAIVE_ACCOUNTS_TARGET=127.0.0.1:PORT TLS_DIR=... TOKEN_ISSUER=... TOKEN_AUDIENCE=... \\
        gunicorn -k gthread -w 2 --threads 8 bench.naive_proxy:app

What someone would write with the same libraries and nothing else: Flask routes GET /v1/accounts/<id>,
PyJWT verifies the ES256 bearer token on every request (key from accounts' GetJwks, fetched once per
process), the scope and owner rule of GetAccount is checked by hand, and grpcio calls accounts over
mTLS with the edge's workload certificate, forwarding the token (accounts verifies it again, as behind
the edge). The answer is the message as JSON. No telemetry, metrics, access log, admission control,
deadline handling, problem+json or request id: the edge's features are what it costs above this.
"""

from __future__ import annotations

import os
import pathlib
import threading

import grpc
import jwt
from flask import Flask, jsonify, request
from google.protobuf import json_format

from shop.accounts.v1 import accounts_pb2, accounts_pb2_grpc

app = Flask(__name__)
_state: dict = {}
_lock = threading.Lock()


def _accounts() -> tuple[accounts_pb2_grpc.AccountsServiceStub, dict]:
    """The stub and the signing keys by kid, made once per worker process (after gunicorn's fork)."""
    with _lock:
        if not _state:
            pki = pathlib.Path(os.environ["TLS_DIR"])
            credentials = grpc.ssl_channel_credentials((pki / "ca.pem").read_bytes(), (pki / "edge.key").read_bytes(),
                                                       (pki / "edge.pem").read_bytes())
            channel = grpc.secure_channel(os.environ["NAIVE_ACCOUNTS_TARGET"], credentials,
                                          options=[("grpc.ssl_target_name_override", "localhost")])
            stub = accounts_pb2_grpc.AccountsServiceStub(channel)
            keys = stub.GetJwks(accounts_pb2.GetJwksRequest(), timeout=10).keys
            _state.update(stub=stub, keys={key.kid: jwt.PyJWK(json_format.MessageToDict(key, preserving_proto_field_name=True))
                                           for key in keys})
        return _state["stub"], _state["keys"]


@app.get("/v1/accounts/<account_id>")
def get_account(account_id: str):
    stub, keys = _accounts()
    header = request.headers.get("Authorization", "")
    if not header.startswith("Bearer "):
        return jsonify(error="missing token"), 401
    token = header[len("Bearer "):]
    try:
        key = keys[jwt.get_unverified_header(token)["kid"]]
        claims = jwt.decode(token, key, algorithms=["ES256"], audience=os.environ["TOKEN_AUDIENCE"],
                            issuer=os.environ["TOKEN_ISSUER"])
    except (jwt.InvalidTokenError, KeyError):
        return jsonify(error="invalid token"), 401
    scopes = claims.get("scope", "").split()
    if "accounts.read" not in scopes:
        return jsonify(error="insufficient scope"), 403
    if claims["sub"] != account_id and "accounts.admin" not in scopes:
        return jsonify(error="not yours"), 403
    try:
        reply = stub.GetAccount(accounts_pb2.GetAccountRequest(id=account_id), timeout=10,
                                metadata=[("authorization", header)])
    except grpc.RpcError as error:
        return jsonify(error=error.code().name), 502
    return jsonify(json_format.MessageToDict(reply))
