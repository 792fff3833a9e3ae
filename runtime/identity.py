"""The caller's workload identity, from the SPIFFE URI SAN of its client certificate."""

from __future__ import annotations

import grpc

_SPIFFE_KEYS = ("peer_spiffe_id", "x509_subject_alternative_name")


def spiffe_id(trust_domain: str, workload: str) -> str:
    return f"spiffe://{trust_domain}/{workload}"


def peer_spiffe_ids(context: grpc.ServicerContext) -> list[str]:
    """Every spiffe:// URI the peer's verified certificate carries (empty without mTLS)."""
    auth = context.auth_context() or {}
    ids = []
    for key in _SPIFFE_KEYS:
        for raw in auth.get(key, ()):
            value = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else str(raw)
            if value.startswith("spiffe://") and value not in ids:
                ids.append(value)
    return ids


def peer_workload(context: grpc.ServicerContext, trust_domain: str) -> str | None:
    """The workload name of the caller in our trust domain, or None if it has none.

    A certificate with several SPIFFE ids is ambiguous and gets no identity at all.
    """
    prefix = f"spiffe://{trust_domain}/"
    ours = [i for i in peer_spiffe_ids(context) if i.startswith(prefix)]
    if len(ours) != 1:
        return None
    workload = ours[0][len(prefix):]
    return workload if workload and "/" not in workload else None
