"""Bearer token verification, shared by the edge and every service (written once).

    verifier = TokenVerifier(VerifierSettings(issuer=..., audience=...), JwksCache(fetch_keys))
    claims = verifier.verify(token)          # raises TokenError with an RFC 6750 description

Only the pinned algorithms are accepted (so `none` and HS256-with-the-public-key tricks
fail), the key comes from the JWKS by `kid` (an unknown kid refreshes the JWKS at most once
per interval), and iss, aud, exp, iat, nbf, sub and jti are checked with a small leeway.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from typing import Callable

import jwt

from runtime.settings import Env

MAX_TOKEN_BYTES = 4096


class TokenError(Exception):
    """The token is missing or not acceptable; `error` is the RFC 6750 error code
    (None when no credentials were sent at all, as RFC 6750 section 3.1 asks)."""

    def __init__(self, description: str, error: str | None = "invalid_token"):
        super().__init__(description)
        self.error = error
        self.description = description


@dataclass(frozen=True)
class Claims:
    subject: str
    scopes: frozenset[str]
    client_id: str
    token: str = field(repr=False)  # forwarded to services; never logged
    raw: dict = field(default_factory=dict, repr=False)


@dataclass(frozen=True)
class VerifierSettings:
    issuer: str
    audience: str
    algorithms: tuple[str, ...] = ("ES256",)
    leeway_seconds: int = 30
    jwks_refresh_seconds: float = 30.0

    @classmethod
    def from_env(cls, env: Env) -> "VerifierSettings":
        return cls(
            issuer=env.str("TOKEN_ISSUER", "https://shop.local"),
            audience=env.str("TOKEN_AUDIENCE", "shop-api"),
            leeway_seconds=env.int("TOKEN_LEEWAY_SECONDS", 30, minimum=0, maximum=300),
            jwks_refresh_seconds=env.float("JWKS_REFRESH_SECONDS", 30.0),
        )


class JwksCache:
    """Public keys by kid, fetched lazily; a miss refetches at most once per `min_interval` seconds,
    so a flood of tokens with made-up kids cannot turn into a flood of JWKS requests."""

    def __init__(self, fetch: Callable[[], list[dict]], min_interval: float = 30.0):
        self._fetch = fetch
        self._min_interval = min_interval
        self._keys: dict[str, jwt.PyJWK] = {}
        self._fetched_at = float("-inf")
        self._lock = threading.Lock()

    def key(self, kid: str) -> jwt.PyJWK | None:
        found = self._keys.get(kid)
        if found is not None:
            return found
        with self._lock:
            if kid not in self._keys and time.monotonic() - self._fetched_at >= self._min_interval:
                self._fetched_at = time.monotonic()
                self._keys = {k["kid"]: jwt.PyJWK(k) for k in self._fetch() if k.get("kid")}
            return self._keys.get(kid)


class TokenVerifier:
    def __init__(self, settings: VerifierSettings, keys: JwksCache):
        self._settings = settings
        self._keys = keys

    def verify(self, token: str) -> Claims:
        if not token:
            raise TokenError("missing bearer token", error=None)
        if len(token) > MAX_TOKEN_BYTES:
            raise TokenError("token too large")
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError:
            raise TokenError("malformed token") from None
        if header.get("alg") not in self._settings.algorithms:
            raise TokenError("token algorithm not accepted")
        kid = header.get("kid")
        key = self._keys.key(kid) if isinstance(kid, str) else None
        if key is None:
            raise TokenError("token signed with an unknown key")
        try:
            claims = jwt.decode(
                token, key, algorithms=list(self._settings.algorithms), audience=self._settings.audience,
                issuer=self._settings.issuer, leeway=self._settings.leeway_seconds,
                options={"require": ["exp", "iat", "iss", "aud", "sub", "jti"], "verify_iat": True},
            )
        except jwt.ExpiredSignatureError:
            raise TokenError("token expired") from None
        except jwt.PyJWTError as error:
            raise TokenError(f"token rejected: {error}") from None
        if claims["iat"] > time.time() + self._settings.leeway_seconds:
            raise TokenError("token issued in the future")
        scope = claims.get("scope", "")
        if not isinstance(scope, str) or not isinstance(claims["sub"], str) or not claims["sub"]:
            raise TokenError("token claims malformed")
        return Claims(subject=claims["sub"], scopes=frozenset(scope.split()),
                      client_id=str(claims.get("client_id", "")), token=token, raw=claims)


def bearer_token(authorization: str | None) -> str:
    """The token of an `Authorization: Bearer <token>` value; TokenError when absent or malformed."""
    if not authorization:
        raise TokenError("missing bearer token", error=None)
    scheme, _, token = authorization.strip().partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise TokenError("authorization must use the Bearer scheme")
    return token.strip()


def jwks_over_grpc(call_unary, method) -> Callable[[], list[dict]]:
    """A JWKS fetcher that calls `method` (a MethodDescriptor whose response has `keys`) with an
    empty request through call_unary(method, request, timeout) and returns the keys as JWK dicts."""
    from google.protobuf import json_format, message_factory

    def fetch() -> list[dict]:
        empty = message_factory.GetMessageClass(method.input_type)()
        response = call_unary(method, empty, 5.0)
        return json_format.MessageToDict(response, preserving_proto_field_name=True).get("keys", [])

    return fetch
