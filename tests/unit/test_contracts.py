"""Rules every contract in proto/ keeps, checked on the generated descriptors."""

import pytest
from google.api import annotations_pb2

from access.v1 import access_pb2
from runtime.policy import policy_of
from shop.accounts.v1 import accounts_pb2
from shop.catalog.v1 import catalog_pb2
from shop.orders.v1 import orders_pb2

METHODS = [m for module, name in ((accounts_pb2, "AccountsService"), (catalog_pb2, "CatalogService"),
                                  (orders_pb2, "OrdersService"))
           for m in module.DESCRIPTOR.services_by_name[name].methods]


# The authorization server's RPCs the edge serves as /oauth2/* (RFC 6749 form posts and redirects):
# no REST route duplicates them, so a token is issued or revoked through one door only.
OAUTH_ENDPOINTS = {"Authorize", "IssueToken", "RevokeToken", "GetServerMetadata"}


@pytest.mark.parametrize("method", METHODS, ids=[m.full_name for m in METHODS])
def test_every_rpc_is_reachable_over_rest_and_names_who_may_call_it(method):
    routed = method.GetOptions().HasExtension(annotations_pb2.http)
    assert routed == (method.name not in OAUTH_ENDPOINTS), "a google.api.http annotation, except the OAuth endpoints"
    policy = policy_of(method)
    assert policy.callers, "an (access.v1.policy) with at least one caller"
    assert not policy.owner_field or policy.owner_field in method.input_type.fields_by_name


def test_reads_are_marked_safe_to_retry_and_creates_are_not():
    levels = {m.name: m.GetOptions().idempotency_level for m in METHODS}
    assert levels["GetAccount"] == levels["GetProduct"] == levels["ListMyOrders"] == 1  # NO_SIDE_EFFECTS
    assert levels["CreateOrder"] == levels["CreateAccount"] == 0  # not retried by the channel


def test_every_scope_a_policy_names_is_declared_once_with_a_description():
    """A scope is declared by the service it belongs to (orders.write by orders) and may be
    required by others too (catalog's ReserveStock wants the user's orders.write)."""
    from runtime.policy import declared_scopes

    services = {m.containing_service.full_name: m.containing_service for m in METHODS}.values()
    declared = declared_scopes(services)
    assert sum(len(s.GetOptions().Extensions[access_pb2.scopes].scopes) for s in services) == len(declared)
    for method in METHODS:
        policy = policy_of(method)
        for scope in policy.scopes | policy.bypass_scopes:
            assert declared.get(scope), f"{method.full_name}: scope {scope} is not declared on any service"


def test_any_service_means_every_workload_but_the_edge_and_the_operator_unless_they_are_named():
    jwks = policy_of(accounts_pb2.DESCRIPTOR.services_by_name["AccountsService"].methods_by_name["GetJwks"])
    standing = policy_of(accounts_pb2.DESCRIPTOR.services_by_name["AccountsService"].methods_by_name["GetAccountStanding"])
    for service in ("catalog", "orders", "reviews"):  # a service added later needs no edit in accounts.proto
        assert jwks.allows(service) and standing.allows(service), service
    assert jwks.allows("edge") and jwks.allows("operator")
    assert not standing.allows("edge") and not standing.allows("operator") and not standing.allows("")
