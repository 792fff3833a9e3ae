"""Domain errors every service raises the same way; each servicer maps them to gRPC statuses.

An error carries `violations` ([(field, description)]) for google.rpc.BadRequest and a
stable `reason` for google.rpc.ErrorInfo. Standard library only: domains import this.
"""

from __future__ import annotations


class DomainError(Exception):
    reason = "DOMAIN_ERROR"

    def __init__(self, message: str, violations: list[tuple[str, str]] | None = None):
        super().__init__(message)
        self.violations = violations or []


class InvalidArgument(DomainError):
    reason = "INVALID_ARGUMENT"

    def __init__(self, violations: list[tuple[str, str]]):
        super().__init__("; ".join(f"{f}: {d}" for f, d in violations), violations)


class NotFound(DomainError):
    reason = "NOT_FOUND"
