"""Container health probe: exits 0 when the local service reports SERVING over grpc.health.

    python -m runtime.healthcheck 127.0.0.1:50051

It presents the service's own certificate (TLS_DIR / TLS_* variables), since every port requires mTLS.
"""

import os
import pathlib
import sys

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc


def main() -> int:
    target = sys.argv[1] if len(sys.argv) > 1 else "127.0.0.1:50051"
    tls_dir = pathlib.Path(os.environ.get("TLS_DIR", ".dev/pki"))
    workload = os.environ.get("HEALTHCHECK_WORKLOAD", "operator")
    ca = pathlib.Path(os.environ.get("TLS_CA_FILE", tls_dir / "ca.pem"))
    cert = pathlib.Path(os.environ.get("TLS_CERT_FILE", tls_dir / f"{workload}.pem"))
    key = pathlib.Path(os.environ.get("TLS_KEY_FILE", tls_dir / f"{workload}.key"))
    creds = grpc.ssl_channel_credentials(ca.read_bytes(), key.read_bytes(), cert.read_bytes())
    # The certificate names "localhost", so verify against that name whatever address we dial.
    options = [("grpc.ssl_target_name_override", "localhost")]
    with grpc.secure_channel(target, creds, options=options) as channel:
        try:
            response = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=3)
        except grpc.RpcError as error:
            print(f"unhealthy: {error.code().name}", file=sys.stderr)
            return 1
    serving = response.status == health_pb2.HealthCheckResponse.SERVING
    print(health_pb2.HealthCheckResponse.ServingStatus.Name(response.status))
    return 0 if serving else 1


if __name__ == "__main__":
    sys.exit(main())
