"""A bare grpcio servicer of accounts' GetAccount, the baseline accounts is measured against (bench/side_by_side.py, B).

    .venv/bin/python -m bench.bare_accounts      # with the accounts service's own environment (store, TLS files)

The same store read as accounts (its own store adapter, on the same database), answered with the same
message, under a grpcio server with the same mTLS (client certificate required) and the same number
of threads (GRPC_MAX_WORKERS). Nothing else: no token verification, caller policy, interceptors,
telemetry, metrics, validation, health or reflection. Prints `listening on 127.0.0.1:PORT` once
serving; stops on SIGTERM.
"""

from __future__ import annotations

import signal
import sys
import threading
from concurrent import futures

import grpc

from runtime.credentials import server_credentials
from services.accounts.servicer import account_to_proto
from services.accounts.store import open_store
from services.registry import server_settings
from shop.accounts.v1 import accounts_pb2_grpc


class BareAccounts(accounts_pb2_grpc.AccountsServiceServicer):
    def __init__(self, store):
        self._store = store

    def GetAccount(self, request, context):  # noqa: N802  (grpc's method name)
        account = self._store.get_account(request.id)
        if account is None:
            context.abort(grpc.StatusCode.NOT_FOUND, "no such account")
        return account_to_proto(account)


def main() -> int:
    settings = server_settings("accounts")
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=settings.max_workers))
    accounts_pb2_grpc.add_AccountsServiceServicer_to_server(BareAccounts(open_store(settings)), server)
    port = server.add_secure_port("127.0.0.1:0", server_credentials(settings.tls))
    server.start()
    print(f"bare accounts listening on 127.0.0.1:{port} (mTLS)", flush=True)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    stop.wait()
    server.stop(1).wait()
    return 0


if __name__ == "__main__":
    sys.exit(main())
