"""A real gRPC service for edge tests, built from tests/protos at test time.

Each method answers with its own request, so an HTTP test sees exactly which fields the
edge set (or, given name "status:<CODE>", fails with that gRPC status and no message; given name
"sleep:<seconds>", answers after that long, at most 5 s: a slow service); `Keys` publishes a test
signing key so tokens can be minted in the test.
"""

from __future__ import annotations

import contextlib
import importlib
import pathlib
import sys
import threading
import time

import grpc
from google.protobuf import json_format

from harness import servers
from runtime.interceptors import token_check
from runtime.server import ServiceServer
from runtime.settings import ServerSettings
from runtime.tokens import VerifierSettings, token_verifier
from tests.support.bad_tokens import AUDIENCE, ISSUER, jwks_of

PROTOS = pathlib.Path(__file__).resolve().parent.parent / "protos"


def compile_echo_proto(out_dir: pathlib.Path):
    """Compiles the test proto into out_dir, puts it on sys.path and returns the _pb2 module."""
    from grpc_tools import protoc

    from tools.genproto import include_dirs  # the same include path as `make proto`

    includes = [PROTOS, *include_dirs()]
    args = ["protoc", *(f"-I{d}" for d in includes), f"--python_out={out_dir}", "edgetest/v1/echo.proto"]
    if protoc.main(args) != 0:
        raise RuntimeError("could not compile tests/protos/edgetest/v1/echo.proto")
    sys.path.insert(0, str(out_dir))
    return importlib.import_module("edgetest.v1.echo_pb2")


class EchoServer:
    """Serves every EchoService method over mTLS and counts the calls that reach it."""

    def __init__(self, echo_pb2, settings, signing_key):
        self.calls: list[str] = []
        self._lock = threading.Lock()
        self._key = signing_key
        service = echo_pb2.DESCRIPTOR.services_by_name["EchoService"]
        handlers = {m.name: self._handler(m, echo_pb2) for m in service.methods}
        verifier = token_verifier(VerifierSettings(issuer=ISSUER, audience=AUDIENCE, jwks_refresh_seconds=0),
                                  lambda: jwks_of(self._key))
        self.server = ServiceServer(
            settings, descriptors=[service],
            register=lambda s: s.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(service.full_name, handlers),)),
            ready_check=lambda: None, checks=(token_check(verifier),))
        self.port = self.server.port

    def _handler(self, method, echo_pb2):
        request_class = getattr(echo_pb2, method.input_type.name)
        response_class = getattr(echo_pb2, method.output_type.name)

        def answer(request, context):
            with self._lock:
                self.calls.append(method.name)
            if method.name == "Keys":
                return json_format.ParseDict({"keys": jwks_of(self._key)}, echo_pb2.KeySet())
            if getattr(request, "name", "").startswith("status:"):  # "status:CANCELLED": fail with that code
                context.abort(grpc.StatusCode[request.name.removeprefix("status:")], "")
            if getattr(request, "name", "").startswith("sleep:"):  # "sleep:0.3": a slow answer
                time.sleep(min(float(request.name.removeprefix("sleep:")), 5.0))
            return request

        return grpc.unary_unary_rpc_method_handler(
            answer, request_deserializer=request_class.FromString, response_serializer=response_class.SerializeToString)


@contextlib.contextmanager
def echo_server(pki_dir: pathlib.Path, work_dir: pathlib.Path, signing_key, **settings: str):
    """An EchoServer over mTLS on a free port (presenting the catalog workload's certificate) until the
    block ends, with more server `settings` (GRPC_MAX_WORKERS=...) if given. Its generated code is in
    `server.gen_dir`: an edge in another process needs it on PYTHONPATH."""
    gen_dir = work_dir / "gen"
    gen_dir.mkdir()
    echo_pb2 = compile_echo_proto(gen_dir)
    env = servers.service_env("echo", pki_dir, work_dir,
                              TLS_CERT_FILE=str(pki_dir / "catalog.pem"), TLS_KEY_FILE=str(pki_dir / "catalog.key"), **settings)
    server = EchoServer(echo_pb2, ServerSettings.from_env("echo", 0, env), signing_key)
    server.gen_dir = gen_dir
    server.server.start()
    try:
        servers.wait_serving(pki_dir, server.port)
        yield server
    finally:
        server.server.stop(0).wait(10)
