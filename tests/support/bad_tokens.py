"""Tokens that must be refused, each built from a real signing key so only one thing is wrong.

Used by the verifier's unit tests and by the edge's security tests, so both face the same table.
The keys are the tests' own (IssuerKey): the edge and runtime/tokens.py are tested without the
accounts service; a key of accounts' (its SigningKey has the same kid and private_pem) signs alike.
"""

from __future__ import annotations

import base64
import json
import secrets
import time
from dataclasses import dataclass
from typing import Protocol

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from jwt.algorithms import ECAlgorithm

from harness.servers import AUDIENCE, ISSUER  # what the test servers accept


class SigningKey(Protocol):
    @property
    def kid(self) -> str: ...

    @property
    def private_pem(self) -> bytes: ...


@dataclass(frozen=True)
class IssuerKey:
    """A P-256 key a token issuer signs with: its key id and its private key (PKCS#8 PEM)."""

    kid: str
    private_pem: bytes


def new_issuer_key() -> IssuerKey:
    private = ec.generate_private_key(ec.SECP256R1())
    pem = private.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption())
    return IssuerKey(kid=secrets.token_urlsafe(12), private_pem=pem)


def good_claims(subject: str = "6f1c1a38-3a4e-4c71-9a55-0d1f8c2b7e10", scope: str = "accounts.read") -> dict:
    now = int(time.time())
    return {"iss": ISSUER, "aud": AUDIENCE, "sub": subject, "iat": now, "nbf": now, "exp": now + 600,
            "jti": "j1", "scope": scope}


def sign(key: SigningKey, claims: dict, **header) -> str:
    private = serialization.load_pem_private_key(key.private_pem, password=None)
    return jwt.encode(claims, private, algorithm="ES256", headers={"kid": key.kid, "typ": "at+jwt", **header})


def _b64(data: dict) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()


def bad_tokens(key: SigningKey, subject: str, scope: str = "accounts.read") -> dict[str, str]:
    """name -> token; every one must be rejected as invalid_token."""
    claims = good_claims(subject, scope)
    now = int(time.time())
    public_pem = serialization.load_pem_private_key(key.private_pem, password=None).public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    valid = sign(key, claims)
    head, payload, signature = valid.split(".")
    without = lambda name: sign(key, {k: v for k, v in claims.items() if k != name})  # noqa: E731
    stranger = new_issuer_key()
    return {
        "alg-none": f"{_b64({'alg': 'none', 'typ': 'JWT', 'kid': key.kid})}.{payload}.",
        "hs256-with-public-key": _hs256(claims, public_pem, key.kid),
        "expired": sign(key, {**claims, "iat": now - 7200, "nbf": now - 7200, "exp": now - 3600}),
        "not-yet-valid": sign(key, {**claims, "nbf": now + 3600}),
        "issued-in-the-future": sign(key, {**claims, "iat": now + 3600}),
        "wrong-issuer": sign(key, {**claims, "iss": "https://evil.example"}),
        "issuer-prefix": sign(key, {**claims, "iss": ISSUER + ".evil.example"}),
        "wrong-audience": sign(key, {**claims, "aud": "another-api"}),
        "missing-aud": without("aud"),
        "missing-exp": without("exp"),
        "missing-sub": without("sub"),
        "tampered-payload": f"{head}.{_b64({**claims, 'scope': scope + ' accounts.admin'})}.{signature}",
        "unknown-kid": sign(stranger, claims),
        "kid-of-a-real-key-but-other-signer": sign(stranger, claims, kid=key.kid),
        "exp-as-string": sign(key, {**claims, "exp": str(now + 600)}),
        "iat-as-string": sign(key, {**claims, "iat": str(now)}),
        "nbf-as-string": sign(key, {**claims, "nbf": str(now)}),
        "exp-as-boolean": sign(key, {**claims, "exp": True}),
        "typ-missing": sign(key, claims, typ=None),
        "typ-of-an-id-token": sign(key, claims, typ="JWT"),
        "oversized": sign(key, {**claims, "pad": "x" * 5000}),
        "garbage": "not.a.jwt",
        "empty-segments": "..",
    }


def _hs256(claims: dict, secret: bytes, kid: str) -> str:
    # PyJWT refuses to HMAC with a PEM key, so build the classic confusion token by hand.
    import hashlib
    import hmac

    signing_input = f"{_b64({'alg': 'HS256', 'typ': 'JWT', 'kid': kid})}.{_b64(claims)}"
    digest = hmac.new(secret, signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{base64.urlsafe_b64encode(digest).rstrip(b'=').decode()}"


def jwks_of(*keys: SigningKey) -> list[dict]:
    """The keys' public halves as a JWKS's keys, encoded by PyJWT (not by accounts' own code)."""
    return [{**ECAlgorithm.to_jwk(serialization.load_pem_private_key(k.private_pem, password=None).public_key(),
                                  as_dict=True), "kid": k.kid, "alg": "ES256", "use": "sig"} for k in keys]
