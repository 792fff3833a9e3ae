"""Health over mTLS: one function for every caller that asks "is this service SERVING?".

    python -m runtime.healthcheck 127.0.0.1:50051     # container probe: exit 0 when SERVING

The probe presents a certificate from TLS_DIR (HEALTHCHECK_WORKLOAD's, "operator" by default),
since every gRPC port requires mTLS; health is open to any workload of the CA.
"""

from __future__ import annotations

import os
import pathlib
import sys

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from runtime.credentials import channel_credentials
from runtime.settings import TlsFiles


def status(target: str, tls: TlsFiles, timeout: float = 3.0) -> str:
    """The service's grpc.health status name ("SERVING", "NOT_SERVING", ...) or the call's error code."""
    # Dev certificates name "localhost": verify against that name whatever address is dialled.
    options = [("grpc.ssl_target_name_override", "localhost")]
    with grpc.secure_channel(target, channel_credentials(tls), options=options) as channel:
        try:
            reply = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=timeout)
        except grpc.RpcError as error:
            return error.code().name
    return health_pb2.HealthCheckResponse.ServingStatus.Name(reply.status)


def probe_tls(tls_dir: pathlib.Path, workload: str) -> TlsFiles:
    return TlsFiles(ca=pathlib.Path(os.environ.get("TLS_CA_FILE", tls_dir / "ca.pem")),
                    cert=pathlib.Path(os.environ.get("TLS_CERT_FILE", tls_dir / f"{workload}.pem")),
                    key=pathlib.Path(os.environ.get("TLS_KEY_FILE", tls_dir / f"{workload}.key")))


def main() -> int:
    target = sys.argv[1] if len(sys.argv) > 1 else "127.0.0.1:50051"
    tls = probe_tls(pathlib.Path(os.environ.get("TLS_DIR", ".dev/pki")), os.environ.get("HEALTHCHECK_WORKLOAD", "operator"))
    result = status(target, tls)
    print(result, file=sys.stdout if result == "SERVING" else sys.stderr)
    return 0 if result == "SERVING" else 1


if __name__ == "__main__":
    sys.exit(main())
