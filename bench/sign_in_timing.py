"""Does the time of a failed sign-in tell whether a username exists? Measured, not asserted.

    .venv/bin/python -m bench.sign_in_timing [--names 12]

Starts one accounts server in this process (real mTLS, the production scrypt cost N=2^14, the
embedded store in a temporary directory), registers --names accounts, then signs in with a wrong
password as each of them and as as many unknown names, MAX_FAILED_LOGINS + 2 times each, over
gRPC from this process, a real and an unknown name in turn. Prints the latency of checked attempts and of attempts refused by the
lock, for real and unknown names, and the ratio of their medians. Everything stays on 127.0.0.1
and stops by itself.
"""

from __future__ import annotations

import argparse
import pathlib
import statistics
import sys
import tempfile
import time

ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "gen")]

import grpc  # noqa: E402

from harness import servers  # noqa: E402
from services.accounts.domain import MAX_FAILED_LOGINS  # noqa: E402
from services.accounts.server import AccountsSettings, create_server  # noqa: E402
from shop.accounts.v1 import accounts_pb2 as pb  # noqa: E402
from shop.accounts.v1 import accounts_pb2_grpc  # noqa: E402


def _attempt(stub, username: str) -> tuple[str, float]:
    """One wrong-password sign-in: whether the lock refused it, and how long it took."""
    started = time.perf_counter()
    code = servers.status_of(stub.IssueToken, pb.IssueTokenRequest(
        grant_type="password", username=username, password="wrong password!!"), timeout=10)
    elapsed = time.perf_counter() - started
    return "locked" if code == grpc.StatusCode.RESOURCE_EXHAUSTED else "checked", elapsed


def _row(label: str, samples: list[float]) -> str:
    if not samples:
        return f"{label:<22} n=  0  (never answered so)"
    ordered = sorted(samples)
    p90 = ordered[int(0.9 * (len(ordered) - 1))]
    return f"{label:<22} n={len(samples):>3}  median {statistics.median(samples) * 1000:7.2f} ms  p90 {p90 * 1000:7.2f} ms"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--names", type=int, default=12)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        pki_dir = servers.write_test_pki(pathlib.Path(scratch) / "pki")
        env = servers.service_env("accounts", pki_dir, pathlib.Path(scratch), PASSWORD_SCRYPT_LOG2_N="14")
        with (servers.in_process(create_server, AccountsSettings.from_env(env), pki_dir) as port,
              servers.channel(pki_dir, port, "edge") as channel):
            stub = accounts_pb2_grpc.AccountsServiceStub(channel)
            real = [f"timed{i}" for i in range(args.names)]
            for name in real:
                stub.CreateAccount(pb.CreateAccountRequest(username=name, email=f"{name}@example.com",
                                                           password=servers.PASSWORD), timeout=10)
            results = {"real": {"checked": [], "locked": []}, "unknown": {"checked": [], "locked": []}}
            # Real and unknown attempts alternate, so drift in the machine's load touches both alike,
            # and which goes first swaps from name to name (the one after a full hash runs colder).
            for i, name in enumerate(real):
                pair = [("real", name), ("unknown", f"ghost{name}")]
                for _ in range(MAX_FAILED_LOGINS + 2):
                    for kind, username in pair if i % 2 else reversed(pair):
                        outcome, elapsed = _attempt(stub, username)
                        results[kind][outcome].append(elapsed)
    for outcome in ("checked", "locked"):
        for kind in ("real", "unknown"):
            print(_row(f"{kind} name, {outcome}", results[kind][outcome]))
        if results["unknown"][outcome] and results["real"][outcome]:
            ratio = statistics.median(results["unknown"][outcome]) / statistics.median(results["real"][outcome])
            print(f"{'':<22} unknown/real median ratio {ratio:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
