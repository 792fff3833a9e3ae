"""Bearer token verification, shared by the edge and every service (written once).

    verifier = TokenVerifier(VerifierSettings(issuer=..., audience=...), JwksCache(fetch_keys))
    claims = verifier.verify(token)          # raises TokenError with an RFC 6750 description

Only the pinned algorithms are accepted (so `none` and HS256-with-the-public-key tricks
fail), the key comes from the JWKS by `kid` (see JwksCache for when the set is fetched), and
iss, aud, exp, iat, nbf, sub and jti are checked with a small leeway.

A token that verified is remembered (keyed by the whole token, so nothing forged can match it) until
it expires, or until its key is no longer the one the JWKS publishes for its kid: the same token on
the next request costs a dictionary lookup instead of an ES256 verification.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import jwt

from runtime.lru import LruCache
from runtime.settings import Env

_LOGGER = logging.getLogger(__name__)
MAX_TOKEN_BYTES = 4096
# RFC 9068 section 2.1: an access token says what it is, so an ID token or any other JWT signed by
# the same key is not taken for one.
ACCESS_TOKEN_TYPES = ("at+jwt", "application/at+jwt")
_NUMERIC_DATES = ("exp", "iat", "nbf")  # RFC 7519 section 2: JSON numbers, never strings


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
    jwks_refresh_seconds: float = 30.0  # how often the key set is fetched again (JwksCache)
    cache_size: int = 10_000  # verified tokens remembered (0: verify every time)

    @classmethod
    def from_env(cls, env: Env) -> VerifierSettings:
        return cls(
            issuer=env.str("TOKEN_ISSUER"),
            audience=env.str("TOKEN_AUDIENCE"),
            leeway_seconds=env.int("TOKEN_LEEWAY_SECONDS", 30, minimum=0, maximum=300),
            jwks_refresh_seconds=env.float("JWKS_REFRESH_SECONDS", 30.0),
            cache_size=env.int("TOKEN_CACHE_SIZE", 10_000, minimum=0, maximum=1_000_000),
        )


class JwksCache:
    """Public keys by kid, as the JWKS publishes them.

    - The whole set is fetched again every `refresh_seconds` and replaces the old one, so a key
      that left the JWKS (retired, or withdrawn after a leak) stops verifying after that refresh.
    - A kid the set lacks is fetched at once, so a key rotated in verifies from its first token;
      but at most one such fetch per `miss_interval` seconds, so a flood of made-up kids cannot
      turn into a flood of JWKS requests.
    - One fetch runs at a time; others wait for it, or keep the current set while it is refreshed.
    - If a refresh fails, the current set keeps verifying for `stale_seconds` more (a restart of the
      key server is not an outage), retried at most once per `miss_interval`; after that nothing
      verifies until a fetch succeeds (fail closed).
    """

    def __init__(self, fetch: Callable[[], list[dict]], refresh_seconds: float = 30.0, *, miss_interval: float = 1.0,
                 stale_seconds: float = 300.0, clock: Callable[[], float] = time.monotonic):
        self._fetch = fetch
        self._refresh_seconds = refresh_seconds
        self._miss_interval = miss_interval
        self._stale_seconds = stale_seconds
        self._clock = clock
        self._keys: dict[str, jwt.PyJWK] = {}
        self._sources: dict[str, dict] = {}  # the JWK each key was made from
        self._fetched_at = self._tried_at = self._missed_at = float("-inf")
        self._lock = threading.Lock()

    def key(self, kid: str) -> jwt.PyJWK | None:
        asked_at = self._clock()
        age = asked_at - self._fetched_at
        if age >= self._refresh_seconds:
            # Only a set too old to trust makes callers wait; otherwise it serves while one refreshes.
            self._refresh(wait=age >= self._refresh_seconds + self._stale_seconds)
        found = self._trusted().get(kid)
        if found is None:
            self._fetch_missing(kid, asked_at)
            found = self._trusted().get(kid)
        return found

    def _trusted(self) -> dict[str, jwt.PyJWK]:
        fresh_enough = self._clock() - self._fetched_at < self._refresh_seconds + self._stale_seconds
        return self._keys if fresh_enough else {}

    def _refresh(self, wait: bool) -> None:
        if not self._lock.acquire(blocking=wait):
            return  # another thread is fetching
        try:
            now = self._clock()
            if now - self._fetched_at < self._refresh_seconds or now - self._tried_at < self._miss_interval:
                return  # fetched while we waited, or failing: not again so soon
            self._replace_keys(now)
        finally:
            self._lock.release()

    def _fetch_missing(self, kid: str, asked_at: float) -> None:
        with self._lock:
            now = self._clock()
            if kid in self._keys or self._fetched_at >= asked_at or now - self._missed_at < self._miss_interval:
                return  # already here, fetched since the token arrived, or fetched for a miss just now
            self._missed_at = now
            self._replace_keys(now)

    def _replace_keys(self, now: float) -> None:
        """Fetches the set (under the lock). A failure is logged while the current set is still
        trusted, raised otherwise."""
        self._tried_at = now
        try:
            published = self._fetch()
        except Exception as error:
            if not self._trusted():
                raise
            _LOGGER.warning("JWKS fetch failed (%s); keys fetched %.0f s ago still verify", error, now - self._fetched_at)
            return
        keys, sources = {}, {}
        for jwk in published:
            kid = jwk.get("kid")
            if not kid:
                continue
            if self._sources.get(kid) == jwk:
                keys[kid], sources[kid] = self._keys[kid], jwk  # unchanged: the same object, so what it verified stays valid
                continue
            try:
                keys[kid], sources[kid] = jwt.PyJWK(jwk), jwk
            except jwt.PyJWKError as error:  # one unusable entry does not void the others
                _LOGGER.warning("JWKS entry %s skipped: %s", kid, error)
        self._keys, self._sources, self._fetched_at = keys, sources, now


@dataclass(frozen=True)
class _Verified:
    claims: Claims
    key: jwt.PyJWK  # the key that verified it: valid only while the JWKS still publishes this very key
    kid: str
    good_until: float  # time.time() past which the token has expired (exp plus the leeway)


class TokenVerifier:
    """`clock` is the wall clock in seconds since the epoch (what exp, nbf and iat count); every time
    decision is made against it, so a test moves time instead of waiting for it."""

    def __init__(self, settings: VerifierSettings, keys: JwksCache, *, clock: Callable[[], float] = time.time):
        self._settings = settings
        self._keys = keys
        self._clock = clock
        self._verified = LruCache[str, _Verified](settings.cache_size)

    def verify(self, token: str) -> Claims:
        if not token:
            raise TokenError("missing bearer token", error=None)
        if len(token) > MAX_TOKEN_BYTES:
            raise TokenError("token too large")
        known = self._verified.get(token)
        if known is not None:
            if self._clock() <= known.good_until and self._keys.key(known.kid) is known.key:
                return known.claims
            self._verified.drop(token)  # expired, or its key left the JWKS: verify again (and fail)
        claims, kid, key = self._verify_signed(token)
        self._verified.put(token, _Verified(claims, key, kid, claims.raw["exp"] + self._settings.leeway_seconds))
        return claims

    def _check_dates(self, claims: dict) -> None:
        """exp, nbf and iat as RFC 7519 defines them (JSON numbers of seconds; PyJWT would take the
        string "9999999999" and let it break every comparison after), within the leeway."""
        for name in _NUMERIC_DATES:
            value = claims.get(name)
            if name in claims and (isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value)):
                raise TokenError(f"token claim {name} must be a number of seconds")
        now, leeway = self._clock(), self._settings.leeway_seconds
        if claims["exp"] <= now - leeway:
            raise TokenError("token expired")
        if claims.get("nbf", now) > now + leeway:
            raise TokenError("token not yet valid")
        if claims["iat"] > now + leeway:
            raise TokenError("token issued in the future")

    def _verify_signed(self, token: str) -> tuple[Claims, str, jwt.PyJWK]:
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError:
            raise TokenError("malformed token") from None
        if header.get("alg") not in self._settings.algorithms:
            raise TokenError("token algorithm not accepted")
        if not isinstance(header.get("typ"), str) or header["typ"].lower() not in ACCESS_TOKEN_TYPES:
            raise TokenError("not an access token (typ must be at+jwt)")
        kid = header.get("kid")
        if not isinstance(kid, str) or (key := self._keys.key(kid)) is None:
            raise TokenError("token signed with an unknown key")
        try:
            # The dates are checked below, against our clock and with their types checked first.
            claims = jwt.decode(
                token, key, algorithms=list(self._settings.algorithms), audience=self._settings.audience,
                issuer=self._settings.issuer,
                options={"require": ["exp", "iat", "iss", "aud", "sub", "jti"], "verify_exp": False,
                         "verify_nbf": False, "verify_iat": False},
            )
        except jwt.PyJWTError as error:
            raise TokenError(f"token rejected: {error}") from None
        self._check_dates(claims)
        scope = claims.get("scope", "")
        if not isinstance(scope, str) or not isinstance(claims["sub"], str) or not claims["sub"]:
            raise TokenError("token claims malformed")
        return Claims(subject=claims["sub"], scopes=frozenset(scope.split()),
                      client_id=str(claims.get("client_id", "")), token=token, raw=claims), kid, key


def bearer_token(authorization: str | None) -> str:
    """The token of an `Authorization: Bearer <token>` value; TokenError when absent or malformed."""
    if not authorization:
        raise TokenError("missing bearer token", error=None)
    scheme, _, token = authorization.strip().partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise TokenError("authorization must use the Bearer scheme")
    return token.strip()


def token_verifier(settings: VerifierSettings, fetch_jwks: Callable[[], list[dict]], *,
                   wall_clock: Callable[[], float] = time.time, clock: Callable[[], float] = time.monotonic) -> TokenVerifier:
    """The one way a process builds its verifier: keys from `fetch_jwks` (a JWKS RPC, or the issuer's
    own keys), refreshed as the settings say. `wall_clock` is what exp, nbf and iat are checked
    against, `clock` times the key cache; a test injects both instead of sleeping."""
    return TokenVerifier(settings, JwksCache(fetch_jwks, settings.jwks_refresh_seconds, clock=clock), clock=wall_clock)


def jwks_over_grpc(call_unary, method) -> Callable[[], list[dict]]:
    """A JWKS fetcher that calls `method` (a MethodDescriptor whose response has `keys`) with an
    empty request through call_unary(method, request, timeout) and returns the keys as JWK dicts."""
    from google.protobuf import json_format, message_factory

    def fetch() -> list[dict]:
        empty = message_factory.GetMessageClass(method.input_type)()
        response = call_unary(method, empty, 5.0)
        return json_format.MessageToDict(response, preserving_proto_field_name=True).get("keys", [])

    return fetch
