"""The caller's workload identity, from the SPIFFE URI SAN of its client certificate, and the
checks its certificate must pass beyond what the TLS handshake verifies."""

from __future__ import annotations

import functools
from collections.abc import Mapping
from typing import cast

import grpc
from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, ed448, ed25519, rsa

MIN_RSA_BITS = 2048
_STRONG_CURVES = (ec.SECP256R1, ec.SECP384R1, ec.SECP521R1)
_STRONG_KEYS = (rsa.RSAPublicKey, ec.EllipticCurvePublicKey, ed25519.Ed25519PublicKey, ed448.Ed448PublicKey)
_STRONG_DIGESTS = (hashes.SHA256, hashes.SHA384, hashes.SHA512)

_SPIFFE_KEYS = ("peer_spiffe_id", "x509_subject_alternative_name")


def spiffe_id(trust_domain: str, workload: str) -> str:
    return f"spiffe://{trust_domain}/{workload}"


def peer_spiffe_ids(context: grpc.ServicerContext) -> list[str]:
    """Every spiffe:// URI the peer's verified certificate carries (empty without mTLS)."""
    auth = cast("Mapping[str, list[bytes]]", context.auth_context() or {})  # types-grpcio says str -> bytes
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


def peer_certificate_problem(context: grpc.ServicerContext) -> str | None:
    """Why the peer's certificate is refused although the handshake accepted it, or None.

    BoringSSL (inside grpc) verifies the chain up to the CA and the dates, but it accepts a leaf
    that is itself a CA, RSA keys under 2048 bits, SHA-1 signatures, and (the CA being a trust
    anchor, whose path length it does not apply) certificates issued by an intermediate CA that
    the peer presents with its own. Python's grpc has no hook into the handshake, so these are
    checked here, on every call, from the certificate the handshake recorded."""
    auth = cast("Mapping[str, list[bytes]]", context.auth_context() or {})  # types-grpcio says str -> bytes
    leaf = b"".join(auth.get("x509_pem_cert", ()))
    if not leaf:
        return "no client certificate"
    return certificate_problem(leaf, b"".join(auth.get("x509_pem_cert_chain", ())))


@functools.lru_cache(maxsize=256)  # few peers, many calls: each certificate is judged once
def certificate_problem(leaf_pem: bytes, chain_pem: bytes = b"") -> str | None:
    """Why a workload certificate (and the chain presented with it) is not acceptable, or None."""
    try:
        leaf = x509.load_pem_x509_certificate(leaf_pem)
        presented = x509.load_pem_x509_certificates(chain_pem) if chain_pem.strip() else []
    except ValueError:
        return "the certificate cannot be read"
    if _is_ca(leaf):
        return "a CA certificate cannot identify a workload"
    weakness = _weakness(leaf)
    if weakness:
        return weakness
    if any(_is_ca(cert) and cert.issuer != cert.subject for cert in presented):
        return "issued by an intermediate CA; workload certificates come from the CA itself"
    return None


def _is_ca(cert: x509.Certificate) -> bool:
    try:
        return cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    except x509.ExtensionNotFound:
        return False


def _weakness(cert: x509.Certificate) -> str | None:
    key = cert.public_key()
    if not isinstance(key, _STRONG_KEYS):
        return f"{type(key).__name__} keys are not accepted"
    if isinstance(key, rsa.RSAPublicKey) and key.key_size < MIN_RSA_BITS:
        return f"an RSA key of {key.key_size} bits is too weak (at least {MIN_RSA_BITS})"
    if isinstance(key, ec.EllipticCurvePublicKey) and not isinstance(key.curve, _STRONG_CURVES):
        return f"the curve {key.curve.name} is not accepted"
    try:
        digest = cert.signature_hash_algorithm  # None for Ed25519 and Ed448, which hash internally
    except UnsupportedAlgorithm:
        return "the signature algorithm is not supported"
    if digest is not None and not isinstance(digest, _STRONG_DIGESTS):
        return f"a {digest.name.upper()} signature is too weak"
    return None
