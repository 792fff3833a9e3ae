"""Operator commands that act on the accounts store directly (no running service needed).

    python -m services.accounts.manage seed-demo --out .dev/demo-credentials.json \
        [--storefront-redirect-uri https://127.0.0.1:8080/shop/]
    python -m services.accounts.manage register-client --name Storefront --client-id shop-web \
        --public --redirect-uri https://shop.example.com/shop/ --scope catalog.read --scope orders.write

seed-demo creates, once, an OAuth2 client for the client_credentials grant and an
administrator account, and writes their secrets to a 0600 file (never to the terminal);
with --storefront-redirect-uri also the storefront's public client `shop-web`. Running it
again keeps what exists, and reactivates the demo administrator if it was deactivated (so `make
up` always leaves a way in). register-client registers one client (a confidential client's
secret is printed once: it is not stored).
"""

from __future__ import annotations

import argparse
import json
import os
import pathlib
import secrets
import sys

from runtime.validation import violations
from services.accounts.domain import Account
from services.accounts.oauth import AuthorizationServer
from services.accounts.server import AccountsSettings
from services.accounts.service import AccountsService
from services.accounts.store import open_store
from services.common.commands import run_command
from services.common.errors import InvalidArgument
from shop.accounts.v1 import accounts_pb2 as pb

DEMO_CLIENT_SCOPES = ["catalog.read", "catalog.admin", "orders.read", "accounts.read"]
STOREFRONT_CLIENT_ID = "shop-web"  # web/shop/index.html names it
STOREFRONT_SCOPES = ["accounts.read", "catalog.read", "orders.read", "orders.write"]


def _write_secret_file(path: pathlib.Path, content: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        json.dump(content, handle, indent=2)
    os.replace(tmp, path)


def _storefront_client(oauth: AuthorizationServer, store, redirect_uri: str) -> str:
    """The storefront's public client, registered for redirect_uri once."""
    client = store.get_client(STOREFRONT_CLIENT_ID)
    if client is None:
        _check_client("Storefront", list(STOREFRONT_SCOPES), STOREFRONT_CLIENT_ID, True, [redirect_uri])
        oauth.register_client("Storefront", STOREFRONT_SCOPES, client_id=STOREFRONT_CLIENT_ID, public=True,
                              redirect_uris=(redirect_uri,))
        return f"registered the storefront's public client {STOREFRONT_CLIENT_ID} for {redirect_uri}"
    if redirect_uri not in client.redirect_uris:
        return (f"warning: client {STOREFRONT_CLIENT_ID} redirects to {', '.join(client.redirect_uris)}, not "
                f"{redirect_uri}; sign-in from the storefront fails until the dev data is reset (.dev/data)")
    return f"kept the storefront's public client {STOREFRONT_CLIENT_ID}"


def seed_demo(out: pathlib.Path, storefront_redirect_uri: str = "") -> str:
    settings = AccountsSettings.from_env()
    store = open_store(settings.server)
    try:
        accounts = AccountsService(store, settings.password_hasher())
        oauth = AuthorizationServer(store, accounts, settings.tokens)
        said = [_storefront_client(oauth, store, storefront_redirect_uri)] if storefront_redirect_uri else []
        existing = json.loads(out.read_text()) if out.exists() else {}
        client_id = existing.get("client", {}).get("client_id")
        admin_name = existing.get("admin", {}).get("username")
        admin = store.find_account_by_username(admin_name) if admin_name else None
        if client_id and store.get_client(client_id) and admin:
            return "\n".join([f"kept demo client and admin in {out}", *_heal(accounts, admin), *said])
        client, secret = oauth.register_client("demo", DEMO_CLIENT_SCOPES)
        admin_name = f"admin{secrets.token_hex(3)}"
        admin_password = secrets.token_urlsafe(18)
        accounts.register(admin_name, f"{admin_name}@example.com", admin_password, {"display_name": "Shop admin"},
                          roles=("admin",))
        _write_secret_file(out, {
            "client": {"client_id": client.client_id, "client_secret": secret, "scopes": list(client.scopes)},
            "admin": {"username": admin_name, "password": admin_password},
        })
        return "\n".join([f"created demo client {client.client_id} and admin {admin_name}; secrets in {out}", *said])
    finally:
        store.close()


def _heal(accounts: AccountsService, admin: Account) -> list[str]:
    """`make up` always leaves a way in: a demo administrator found deactivated is reactivated."""
    if admin.active:
        return []
    accounts.reactivate(admin.id)
    return [f"reactivated the demo admin {admin.username}, which had been deactivated"]


def _check_client(name: str, scopes: list[str], client_id: str, public: bool, redirect_uris: list[str]) -> None:
    """The rules CreateClient's fields declare, as every request over gRPC is checked against them."""
    request = pb.CreateClientRequest(name=name, scopes=scopes, client_id=client_id, redirect_uris=redirect_uris,
                                     client_type=pb.PUBLIC if public else pb.CONFIDENTIAL)
    problems = violations(request)
    if problems:
        raise InvalidArgument(problems)


def register_client(name: str, scopes: list[str], client_id: str, public: bool, redirect_uris: list[str]) -> str:
    _check_client(name, scopes, client_id, public, redirect_uris)
    settings = AccountsSettings.from_env()
    store = open_store(settings.server)
    try:
        oauth = AuthorizationServer(store, AccountsService(store, settings.password_hasher()), settings.tokens)
        client, secret = oauth.register_client(name, scopes, client_id=client_id, public=public,
                                               redirect_uris=tuple(redirect_uris))
    finally:
        store.close()
    kind = "public" if client.public else "confidential"
    lines = [f"registered {kind} client {client.client_id} ({', '.join(client.scopes)})"]
    lines += [f"  redirect URI {uri}" for uri in client.redirect_uris]
    if secret:
        lines.append(f"  client secret (shown once, not stored): {secret}")
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description="accounts operator commands")
    commands = parser.add_subparsers(dest="command", required=True)
    seed = commands.add_parser("seed-demo", help="create the demo OAuth2 client and an admin account once")
    seed.add_argument("--out", type=pathlib.Path, default=pathlib.Path(".dev/demo-credentials.json"))
    seed.add_argument("--storefront-redirect-uri", default="", help="also register the storefront's public client")
    register = commands.add_parser("register-client", help="register an OAuth2 client")
    register.add_argument("--name", required=True)
    register.add_argument("--scope", action="append", required=True, dest="scopes")
    register.add_argument("--client-id", default="", help="the id to give it (default: a random one)")
    register.add_argument("--public", action="store_true", help="a browser or native application: no secret, PKCE")
    register.add_argument("--redirect-uri", action="append", default=[], dest="redirect_uris")
    return run_command(parser, lambda args: seed_demo(args.out, args.storefront_redirect_uri)
                       if args.command == "seed-demo"
                       else register_client(args.name, args.scopes, args.client_id, args.public, args.redirect_uris))


if __name__ == "__main__":
    sys.exit(main())
