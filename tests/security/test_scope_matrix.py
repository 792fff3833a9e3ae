"""Every route the edge generates, against tokens with and without the scopes its method declares.

The matrix is built from the same descriptors the edge reads, so a new RPC joins it by itself.
"""

import pytest
import requests

from edge.transcoding import bindings_of
from harness.servers import PASSWORD
from runtime.policy import policy_of
from shop.accounts.v1 import accounts_pb2
from shop.catalog.v1 import catalog_pb2
from shop.orders.v1 import orders_pb2

SERVICES = [accounts_pb2.DESCRIPTOR.services_by_name["AccountsService"],
            catalog_pb2.DESCRIPTOR.services_by_name["CatalogService"],
            orders_pb2.DESCRIPTOR.services_by_name["OrdersService"]]
ROUTES = [(b, policy_of(b.method)) for s in SERVICES for b in bindings_of(s) if "edge" in policy_of(b.method).callers]
SCOPED = [(b, p) for b, p in ROUTES if p.scopes]
CUSTOMER_SCOPES = frozenset({"accounts.read", "accounts.write", "catalog.read", "orders.read", "orders.write"})
ALL_SCOPES = "accounts.read accounts.write accounts.admin catalog.read catalog.admin orders.read orders.write orders.admin"


def _url(stack, binding, owner_id):
    path = binding.template.openapi_path
    for field in binding.template.variables.values():
        path = path.replace("{" + field + "}", owner_id)
    return stack.url + path


def _call(stack, binding, token, owner_id):
    body = {} if binding.body else None
    return requests.request(binding.http_method, _url(stack, binding, owner_id), json=body,
                            headers={"Authorization": f"Bearer {token}"}, timeout=10)


def _malformed_call(stack, binding, token, owner_id):
    """The same call with a body that is not JSON, or a query parameter no field has: a 400 once read."""
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    if binding.body:
        return requests.request(binding.http_method, _url(stack, binding, owner_id), data='{"broken',
                                headers=headers, timeout=10)
    return requests.request(binding.http_method, _url(stack, binding, owner_id), params={"noSuchField": "1"},
                            headers=headers, timeout=10)


@pytest.fixture(scope="module")
def admin(stack):
    issued = stack.token(*stack.admin)
    page = requests.get(f"{stack.url}/v1/accounts", params={"pageSize": 100},
                        headers={"Authorization": f"Bearer {issued['access_token']}"}, timeout=10).json()
    return next(a for a in page["accounts"] if a["username"] == stack.admin[0])["id"]


_users = iter(range(10_000))


def _principal(stack, policy):
    """Who exercises a route: a fresh customer on their own account when a customer's scopes
    suffice (so deactivating it harms nobody), otherwise the administrator."""
    if policy.scopes <= CUSTOMER_SCOPES:
        name = f"matrix{next(_users)}"
        account = stack.register(name)
        return (name, PASSWORD), account["id"], CUSTOMER_SCOPES
    return stack.admin, None, frozenset(ALL_SCOPES.split())


@pytest.mark.parametrize("binding, policy", SCOPED, ids=[f"{b.http_method} {b.template.openapi_path}" for b, _ in SCOPED])
def test_each_required_scope_is_enforced(stack, admin, binding, policy):
    credentials, subject, scopes = _principal(stack, policy)
    subject = subject or admin
    for missing in sorted(policy.scopes):
        narrowed = " ".join(sorted(scopes - {missing}))
        token = stack.token(*credentials, scope=narrowed)["access_token"]
        reply = _call(stack, binding, token, subject)
        assert reply.status_code == 403, (missing, reply.text)
        assert 'error="insufficient_scope"' in reply.headers["WWW-Authenticate"] and missing in reply.headers["WWW-Authenticate"]
        # Scopes come before the body: a token without them learns nothing from a malformed request.
        assert _malformed_call(stack, binding, token, subject).status_code == 403, missing
    allowed = _call(stack, binding, stack.token(*credentials)["access_token"], subject)
    assert allowed.status_code not in (401, 403), allowed.text


@pytest.mark.parametrize("binding, policy", SCOPED, ids=[f"{b.http_method} {b.template.openapi_path}" for b, _ in SCOPED])
def test_routes_refuse_requests_without_a_token(stack, binding, policy):
    reply = requests.request(binding.http_method, _url(stack, binding, "6f1c1a38-3a4e-4c71-9a55-0d1f8c2b7e10"), timeout=10)
    assert reply.status_code == 401 and reply.headers["WWW-Authenticate"] == 'Bearer realm="shop"'


OWNED = [(b, p) for b, p in SCOPED if p.owner_field]


@pytest.mark.parametrize("binding, policy", OWNED, ids=[f"{b.http_method} {b.template.openapi_path}" for b, _ in OWNED])
def test_a_user_cannot_act_on_another_users_account(stack, admin, binding, policy):
    (name, password), _own_id, _ = _principal(stack, policy)
    intruder = stack.token(name, password)["access_token"]
    reply = _call(stack, binding, intruder, admin)  # the admin's account, not the intruder's
    assert reply.status_code == 403 and reply.json()["reason"] == "NOT_OWNER"
