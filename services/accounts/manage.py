"""Operator commands that act on the accounts store directly (no running service needed).

    python -m services.accounts.manage seed-demo --out .dev/demo-credentials.json

seed-demo creates, once, an OAuth2 client for the client_credentials grant and an
administrator account, and writes their secrets to a 0600 file (never to the terminal).
Running it again keeps what exists.
"""

from __future__ import annotations

import argparse
import json
import os
import pathlib
import secrets
import sys

from runtime.settings import ConfigError
from services.accounts.oauth import AuthorizationServer
from services.accounts.server import AccountsSettings
from services.accounts.service import AccountsService
from services.accounts.store import open_store

DEMO_CLIENT_SCOPES = ["catalog.read", "catalog.admin", "orders.read", "accounts.read"]


def _write_secret_file(path: pathlib.Path, content: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        json.dump(content, handle, indent=2)
    os.replace(tmp, path)


def seed_demo(out: pathlib.Path) -> str:
    settings = AccountsSettings.from_env()
    store = open_store(settings.server)
    try:
        existing = json.loads(out.read_text()) if out.exists() else {}
        client_id = existing.get("client", {}).get("client_id")
        admin_name = existing.get("admin", {}).get("username")
        if client_id and store.get_client(client_id) and admin_name and store.find_account_by_username(admin_name):
            return f"kept demo client and admin in {out}"
        accounts = AccountsService(store, settings.password_hasher())
        oauth = AuthorizationServer(store, accounts, settings.tokens)
        client, secret = oauth.register_client("demo", DEMO_CLIENT_SCOPES)
        admin_name = f"admin{secrets.token_hex(3)}"
        admin_password = secrets.token_urlsafe(18)
        accounts.register(admin_name, f"{admin_name}@example.com", admin_password, {"display_name": "Shop admin"},
                          roles=("admin",))
        _write_secret_file(out, {
            "client": {"client_id": client.client_id, "client_secret": secret, "scopes": list(client.scopes)},
            "admin": {"username": admin_name, "password": admin_password},
        })
        return f"created demo client {client.client_id} and admin {admin_name}; secrets in {out}"
    finally:
        store.close()


def main() -> int:
    parser = argparse.ArgumentParser(description="accounts operator commands")
    commands = parser.add_subparsers(dest="command", required=True)
    seed = commands.add_parser("seed-demo", help="create the demo OAuth2 client and an admin account once")
    seed.add_argument("--out", type=pathlib.Path, default=pathlib.Path(".dev/demo-credentials.json"))
    args = parser.parse_args()
    try:
        print(seed_demo(args.out))
    except ConfigError as error:
        print(f"configuration error: {error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
