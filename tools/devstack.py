"""`make up`: every service on this machine, on the embedded store, over mTLS.

Creates the dev PKI if needed, seeds the demo OAuth2 client and admin, starts each
service as a child process, waits until each reports SERVING through grpc.health, prints
how to call them, and stops them all (by PID) on Ctrl-C or SIGTERM.
"""

from __future__ import annotations

import os
import pathlib
import signal
import subprocess
import sys
import time

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from runtime.pki import write_dev_pki

ROOT = pathlib.Path(__file__).resolve().parent.parent
PKI = ROOT / ".dev" / "pki"
DATA = ROOT / ".dev" / "data"
CREDENTIALS = ROOT / ".dev" / "demo-credentials.json"

# (name, module, port variable, default port)
SERVICES = [
    ("accounts", "services.accounts", "ACCOUNTS_PORT", 50051),
]


def _service_env(name: str, port: int) -> dict[str, str]:
    env = dict(os.environ)
    env.update({
        "GRPC_PORT": str(port), "TLS_DIR": str(PKI), "STORE": env.get("STORE", "embedded"),
        "SQLITE_PATH": str(DATA / f"{name}.sqlite3"), "PYTHONUNBUFFERED": "1",
    })
    return env


def _wait_serving(port: int, timeout: float = 30.0) -> bool:
    creds = grpc.ssl_channel_credentials(
        (PKI / "ca.pem").read_bytes(), (PKI / "operator.key").read_bytes(), (PKI / "operator.pem").read_bytes())
    deadline = time.monotonic() + timeout
    with grpc.secure_channel(f"127.0.0.1:{port}", creds) as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        while time.monotonic() < deadline:
            try:
                if stub.Check(health_pb2.HealthCheckRequest(), timeout=1).status == health_pb2.HealthCheckResponse.SERVING:
                    return True
            except grpc.RpcError:
                pass
            time.sleep(0.3)
    return False


def _banner(ports: dict[str, int]) -> str:
    tls = f"-cacert {PKI.relative_to(ROOT)}/ca.pem -cert {PKI.relative_to(ROOT)}/operator.pem -key {PKI.relative_to(ROOT)}/operator.key"
    lines = ["", "Shop is up (embedded store, mTLS everywhere):"]
    lines += [f"  {name:<9} grpc 127.0.0.1:{port}" for name, port in ports.items()]
    accounts = ports["accounts"]
    lines += [
        "",
        "Call it with grpcurl (operator certificate; grpcurl is in .venv/bin):",
        f"  .venv/bin/grpcurl {tls} 127.0.0.1:{accounts} list",
        f"  .venv/bin/grpcurl {tls} 127.0.0.1:{accounts} grpc.health.v1.Health/Check",
        f"  .venv/bin/grpcurl {tls} -d '{{\"username\":\"alice\",\"email\":\"alice@example.com\",\"password\":\"correct horse battery\"}}' \\",
        f"      127.0.0.1:{accounts} shop.accounts.v1.AccountsService/CreateAccount",
        f"  .venv/bin/grpcurl {tls} -d '{{\"grant_type\":\"password\",\"username\":\"alice\",\"password\":\"correct horse battery\"}}' \\",
        f"      127.0.0.1:{accounts} shop.accounts.v1.AccountsService/IssueToken",
        "",
        f"Demo OAuth2 client and admin credentials: {CREDENTIALS.relative_to(ROOT)} (mode 0600)",
        "Ctrl-C stops everything.",
    ]
    return "\n".join(lines)


def main() -> int:
    write_dev_pki(PKI)
    DATA.mkdir(parents=True, exist_ok=True)
    ports = {name: int(os.environ.get(var, default)) for name, _module, var, default in SERVICES}
    subprocess.run([sys.executable, "-m", "services.accounts.manage", "seed-demo", "--out", str(CREDENTIALS)],
                   env=_service_env("accounts", ports["accounts"]), check=True, cwd=ROOT)
    children: list[subprocess.Popen] = []
    stop = []
    signal.signal(signal.SIGTERM, lambda *_: stop.append(True))
    try:
        for name, module, _var, _default in SERVICES:
            children.append(subprocess.Popen([sys.executable, "-m", module], env=_service_env(name, ports[name]), cwd=ROOT))
            if not _wait_serving(ports[name]):
                print(f"{name} did not become SERVING on port {ports[name]}", file=sys.stderr)
                return 1
        print(_banner(ports), flush=True)
        while not stop and all(child.poll() is None for child in children):
            time.sleep(0.5)
        return 0 if stop else 1
    except KeyboardInterrupt:
        return 0
    finally:
        for child in children:
            if child.poll() is None:
                child.send_signal(signal.SIGTERM)
        for child in children:
            try:
                child.wait(timeout=15)
            except subprocess.TimeoutExpired:
                child.kill()


if __name__ == "__main__":
    sys.exit(main())
