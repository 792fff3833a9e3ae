"""Access policies read from the `(access.v1.policy)` method option in the descriptors.

The policy lives in the .proto next to the method; nothing here knows any service.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from google.protobuf import descriptor as _descriptor

from access.v1 import access_pb2
from runtime.workloads import EDGE, OPERATOR

# In `callers`: every service of the system, that is every workload of the trust domain except
# the edge and the operator (named where they may call).
ANY_SERVICE = "*"


@dataclass(frozen=True)
class MethodPolicy:
    """Who may call one RPC: caller workloads, and what the end user's token must carry."""

    full_method: str  # "/package.Service/Method", as gRPC names it on the wire
    scopes: frozenset[str]
    callers: frozenset[str]
    owner_field: str
    bypass_scopes: frozenset[str]

    @property
    def needs_token(self) -> bool:
        return bool(self.scopes)

    def allows(self, caller: str | None) -> bool:
        """Whether the workload `caller` (from its certificate; None or "" for none) may call the method."""
        if not caller:
            return False
        return caller in self.callers or (ANY_SERVICE in self.callers and caller not in (EDGE, OPERATOR))


def policy_of(method: _descriptor.MethodDescriptor) -> MethodPolicy:
    """The method's declared policy; a method without one gets an empty (deny-all) policy."""
    options = method.GetOptions()
    declared = options.Extensions[access_pb2.policy]
    return MethodPolicy(
        full_method=f"/{method.containing_service.full_name}/{method.name}",
        scopes=frozenset(declared.scopes),
        callers=frozenset(declared.callers),
        owner_field=declared.owner_field,
        bypass_scopes=frozenset(declared.bypass_scopes),
    )


def policies_for(services: Iterable[_descriptor.ServiceDescriptor]) -> dict[str, MethodPolicy]:
    """Policies of every method of the given services, keyed by full method name."""
    return {p.full_method: p for s in services for p in map(policy_of, s.methods)}


def declared_scopes(services: Iterable[_descriptor.ServiceDescriptor]) -> dict[str, str]:
    """Scope -> description, from each service's `(access.v1.scopes)` option."""
    found: dict[str, str] = {}
    for service in services:
        for scope in service.GetOptions().Extensions[access_pb2.scopes].scopes:
            found.setdefault(scope.name, scope.description)
    return found


@dataclass(frozen=True)
class Grants:
    """The OAuth2 scopes a system's services declare (name -> description), and the roles whose
    accounts may be granted each (`granted_to` beside each scope in the protos)."""

    scopes: Mapping[str, str]
    by_role: Mapping[str, frozenset[str]]

    def for_roles(self, roles: Iterable[str]) -> frozenset[str]:
        """What an account with these roles may be granted."""
        return frozenset(scope for role in roles for scope in self.by_role.get(role, ()))


def grants_of(services: Iterable[_descriptor.ServiceDescriptor]) -> Grants:
    """The scopes and role grants every one of `services` declares, merged."""
    services = list(services)
    by_role: dict[str, set[str]] = {}
    for service in services:
        for scope in service.GetOptions().Extensions[access_pb2.scopes].scopes:
            for role in scope.granted_to:
                by_role.setdefault(role, set()).add(scope.name)
    return Grants(scopes=declared_scopes(services), by_role={role: frozenset(s) for role, s in by_role.items()})
