"""The end-user half of a method's access policy: scopes and ownership, checked against token claims.

Used by the edge before it calls a service and by each service's interceptor again (defense
in depth), so both apply exactly the same rule.
"""

from __future__ import annotations

from google.protobuf.message import Message

from runtime.policy import MethodPolicy
from runtime.tokens import Claims


class AccessDenied(Exception):
    """The token is valid but does not allow this call. `reason` says why, for the caller."""

    def __init__(self, description: str, reason: str, missing_scopes: frozenset[str] = frozenset()):
        super().__init__(description)
        self.reason = reason
        self.missing_scopes = missing_scopes


def field_value(message: Message, path: str) -> str:
    """The value at a dotted field path of a request ("id", "account.id"); "" when unset."""
    value: object = message
    for name in path.split("."):
        value = getattr(value, name, "")
    return str(value)


def authorize(policy: MethodPolicy, claims: Claims, request: Message | None) -> None:
    """Raises AccessDenied unless the token carries the method's scopes and, for a method acting
    on one account, belongs to that account or carries a bypass scope."""
    missing = policy.scopes - claims.scopes
    if missing:
        raise AccessDenied(f"token lacks scope {' '.join(sorted(missing))}", "INSUFFICIENT_SCOPE", frozenset(missing))
    if (policy.owner_field and request is not None and not (claims.scopes & policy.bypass_scopes)
            and field_value(request, policy.owner_field) != claims.subject):
        raise AccessDenied("this resource belongs to another account", "NOT_OWNER")
