"""Deactivated means deactivated, everywhere (Hardening 3, items 4 and 5): a deactivated account's token
is refused by orders and catalog too, ending an account's sessions refuses its earlier access tokens,
and administrators cannot lock the shop out.

accounts, catalog and orders run in this process over real mTLS, so the clock their standing caches
read is injected (time moves when a test says so, nothing sleeps); the edge is the real gunicorn process.
"""

from __future__ import annotations

import pytest
import requests

from harness import servers
from harness.servers import PASSWORD
from harness.shop import make_product, order, stock_of
from harness.stack import Stack
from services.accounts.server import AccountsSettings
from services.accounts.server import create_server as create_accounts_server
from services.catalog.server import CatalogSettings
from services.catalog.server import create_server as create_catalog_server
from services.orders.server import OrdersSettings
from services.orders.server import create_server as create_orders_server

WINDOW = 5.0  # ACCOUNT_ACTIVE_CHECK_SECONDS, the default every service runs with here
NEW_PASSWORD = "another long passphrase"
_SERVERS = {
    "accounts": (AccountsSettings.from_env, create_accounts_server),
    "catalog": (CatalogSettings.from_env, create_catalog_server),
    "orders": (OrdersSettings.from_env, create_orders_server),
}


class Ticks:
    """The monotonic clock of every service's standing cache; moves only when a test advances it."""

    def __init__(self):
        self.now = 0.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


class _InProcess:
    """A service's server running in this process, stopped as Stack stops a process."""

    def __init__(self, server, port: int):
        self._server, self.port = server, port

    def stop(self) -> int:
        self._server.stop(0).wait(10)
        return 0


class ClockedStack(Stack):
    """The stack with its services in this process, all reading one injected clock for standings."""

    def __init__(self, pki_dir, data_dir, clock: Ticks):
        self.clock = clock
        super().__init__(pki_dir, data_dir)

    def _start(self, service, *, fault=None, **overrides):
        load_settings, create_server = _SERVERS[service]
        server, port = create_server(load_settings(self.env(service, **overrides)), standing_clock=self.clock)
        server.start()
        started = self._track(_InProcess(server, port))
        servers.wait_serving(self.pki_dir, port)
        return started


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    running = ClockedStack(servers.write_test_pki(tmp_path_factory.mktemp("pki")), tmp_path_factory.mktemp("data"),
                           Ticks())
    yield running
    running.stop()


def _call(stack, method: str, path: str, token: str, **kwargs) -> requests.Response:
    return requests.request(method, f"{stack.url}{path}", headers={"Authorization": f"Bearer {token}"},
                            timeout=10, **kwargs)


def _customer(stack, name: str) -> tuple[str, dict]:
    """A new customer's account id and tokens (access and refresh)."""
    return stack.register(name)["id"], stack.token(name)


def _refused(reply: requests.Response, status: int, reason: str) -> bool:
    return reply.status_code == status and reply.json().get("reason") == reason


def test_a_deactivated_accounts_token_can_no_longer_read_or_cancel_orders_nor_read_the_catalog(stack):
    product = make_product(stack, stock=5)
    account, issued = _customer(stack, "leaver")
    token = issued["access_token"]
    placed = order(stack, token, product).json()
    assert placed["status"] == "CONFIRMED"  # orders and catalog have seen the account active
    assert _call(stack, "POST", f"/v1/accounts/{account}:deactivate", token, json={}).status_code == 200
    stack.clock.advance(WINDOW)
    replies = {
        "list orders": _call(stack, "GET", "/v1/orders", token),
        "read an order": _call(stack, "GET", f"/v1/orders/{placed['id']}", token),
        "cancel an order": _call(stack, "POST", f"/v1/orders/{placed['id']}:cancel", token, json={}),
        "order again": order(stack, token, product),
        "read a product": _call(stack, "GET", f"/v1/products/{product}", token),
        "list products": _call(stack, "GET", "/v1/products", token),
    }
    assert {what: (r.status_code, r.json().get("reason")) for what, r in replies.items()} == dict.fromkeys(
        replies, (403, "ACCOUNT_DEACTIVATED"))
    admin = stack.token(*stack.admin)["access_token"]
    assert _call(stack, "GET", f"/v1/orders/{placed['id']}", admin).json()["status"] == "CONFIRMED"
    assert stock_of(stack, product, admin) == 4


@pytest.mark.parametrize("ending", ["signOutEverywhere", "changePassword"])
def test_ending_sessions_refuses_earlier_access_and_refresh_tokens_and_later_ones_work_at_once(stack, ending):
    account, issued = _customer(stack, f"ending{ending.lower()}")
    token = issued["access_token"]
    assert _call(stack, "GET", "/v1/orders", token).status_code == 200
    assert _call(stack, "GET", "/v1/products", token).status_code == 200
    body = {"currentPassword": PASSWORD, "newPassword": NEW_PASSWORD} if ending == "changePassword" else {}
    assert _call(stack, "POST", f"/v1/accounts/{account}:{ending}", token, json=body).status_code == 200
    # accounts made the change, so it refuses the token at once; orders and catalog within the window.
    at_accounts = _call(stack, "GET", f"/v1/accounts/{account}", token)
    assert _refused(at_accounts, 401, "TOKEN_REVOKED"), at_accounts.text
    assert 'error="invalid_token"' in at_accounts.headers["WWW-Authenticate"]
    refreshed = requests.post(f"{stack.url}/oauth2/token", timeout=10,
                              data={"grant_type": "refresh_token", "refresh_token": issued["refresh_token"]})
    assert refreshed.status_code == 400 and refreshed.json()["error"] == "invalid_grant"
    stack.clock.advance(WINDOW)
    for path in ("/v1/orders", "/v1/products"):
        assert _refused(_call(stack, "GET", path, token), 401, "TOKEN_REVOKED"), path
    # Signed in again, within the same second as the change: the new token counts everywhere.
    fresh = stack.token(f"ending{ending.lower()}", NEW_PASSWORD if ending == "changePassword" else PASSWORD)["access_token"]
    for path in (f"/v1/accounts/{account}", "/v1/orders", "/v1/products"):
        assert _call(stack, "GET", path, fresh).status_code == 200, path


def _machine_client(stack, scopes: str) -> str:
    """An access token of a new client_credentials client: the client acts as itself, for no account."""
    admin = stack.token(*stack.admin)["access_token"]
    created = _call(stack, "POST", "/v1/clients", admin, json={"name": "robot", "scopes": scopes.split()}).json()
    issued = requests.post(f"{stack.url}/oauth2/token", timeout=10, data={
        "grant_type": "client_credentials", "client_id": created["clientId"],
        "client_secret": created["clientSecret"]})
    assert issued.status_code == 200, issued.text
    return issued.json()["access_token"]


def test_a_client_acting_as_itself_needs_no_account(stack):
    token = _machine_client(stack, "catalog.read orders.read")
    assert _call(stack, "GET", "/v1/products", token).status_code == 200
    assert _call(stack, "GET", "/v1/orders", token).json().get("orders", []) == []


def test_administrators_cannot_lock_the_shop_out_and_a_reactivated_account_starts_afresh(stack):
    admin = stack.token(*stack.admin)["access_token"]
    me = next(a["id"] for a in _call(stack, "GET", "/v1/accounts", admin, params={"pageSize": 100}).json()["accounts"]
              if a["username"] == stack.admin[0])
    refused = _call(stack, "POST", f"/v1/accounts/{me}:deactivate", admin, json={})
    assert _refused(refused, 409, "ADMIN_LOCKOUT") and "own account" in refused.json()["detail"], refused.text
    # A client with accounts.admin is no administrator: the stack's admin is the last active one.
    robot = _machine_client(stack, "accounts.admin accounts.write")
    refused = _call(stack, "POST", f"/v1/accounts/{me}:deactivate", robot, json={})
    assert _refused(refused, 409, "ADMIN_LOCKOUT") and "last active administrator" in refused.json()["detail"]
    assert _call(stack, "GET", "/v1/accounts", admin).status_code == 200

    deputy_name, _ = servers.create_admin(stack.env("accounts"), "deputy")
    before = stack.token(deputy_name)["access_token"]
    deputy = _call(stack, "GET", "/v1/accounts", admin, params={"pageSize": 100}).json()["accounts"]
    deputy = next(a["id"] for a in deputy if a["username"] == deputy_name)
    assert _call(stack, "POST", f"/v1/accounts/{deputy}:deactivate", robot, json={}).json()["state"] == "DEACTIVATED"
    reactivated = _call(stack, "POST", f"/v1/accounts/{deputy}:reactivate", admin, json={})
    assert reactivated.status_code == 200 and reactivated.json()["state"] == "ACTIVE", reactivated.text
    # Reactivation does not bring back what the deactivation ended.
    assert _refused(_call(stack, "GET", f"/v1/accounts/{deputy}", before), 401, "TOKEN_REVOKED")
    after = stack.token(deputy_name)["access_token"]
    assert _call(stack, "GET", f"/v1/accounts/{deputy}", after).status_code == 200
    assert _call(stack, "POST", f"/v1/accounts/{deputy}:reactivate", robot, json={}).status_code == 200  # idempotent


def test_reactivation_is_for_administrators_and_the_standing_has_no_public_route(stack):
    account, issued = _customer(stack, "curious")
    reply = _call(stack, "POST", f"/v1/accounts/{account}:reactivate", issued["access_token"], json={})
    assert reply.status_code == 403 and 'scope="accounts.admin"' in reply.headers["WWW-Authenticate"]
    assert _call(stack, "GET", f"/v1/accounts/{account}/standing", issued["access_token"]).status_code == 404
