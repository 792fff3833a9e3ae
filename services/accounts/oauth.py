"""The OAuth2 authorization server: grants, signed access tokens, refresh-token rotation, JWKS.

People sign in through the authorization code grant with PKCE (RFC 6749 section 4.1, RFC 7636,
as OAuth 2.1 and RFC 9700 require): `authorize` checks the client, its exact redirect URI and
the S256 challenge, signs the user in and hands out a one-time code that lives 60 s; the token
endpoint exchanges it once, for the client, redirect URI and verifier it was issued for. A code
presented a second time revokes the tokens issued from it. The password grant is legacy, off
unless settings enable it (the dev walk-through does).

Access tokens are JWTs signed with ES256 and carry `kid`, so verifiers pick the key from
the JWKS. Refresh tokens are opaque `<id>.<secret>` strings; only a hash of the secret is
stored. Each refresh replaces the token (rotation); presenting a replaced token again
revokes its whole family, since only a thief would hold an old one.

A refresh token belongs to the client that authenticated when it was issued, or to no client
(a password grant without client credentials). Refreshing or revoking it takes that same
client's authentication (RFC 6749 section 6, RFC 7009 section 2.1); a token of no client is
refreshed or revoked by presenting it alone.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
import secrets
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Protocol, TypeVar

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from runtime.policy import Grants
from services.accounts import domain
from services.accounts.domain import AccountError, OAuthClient, RefreshToken, SigningKey
from services.accounts.service import AccountsService
from services.accounts.store.base import AccountStore, DuplicateKey
from services.registry import scope_grants

_LOGGER = logging.getLogger(__name__)


class _Hashed(Protocol):
    @property
    def secret_hash(self) -> str: ...


R = TypeVar("R", bound=_Hashed)
ALGORITHM = "ES256"
GRANT_TYPES = ("authorization_code", "refresh_token", "client_credentials", "password")
RESPONSE_TYPES = ("code",)
CHALLENGE_METHODS = ("S256",)


class OAuthError(AccountError):
    """An RFC 6749 error; `reason` is its error code in upper case (INVALID_GRANT, ...)."""

    def __init__(self, error: str, description: str):
        super().__init__(description)
        self.error = error
        self.reason = error.upper()


class InvalidGrant(OAuthError):
    def __init__(self, description: str):
        super().__init__("invalid_grant", description)


class InvalidClient(OAuthError):
    def __init__(self, description: str = "client authentication failed"):
        super().__init__("invalid_client", description)


class InvalidRedirectUri(OAuthError):
    """The redirect URI is not one the client registered. Like an unknown client, it is shown to
    the user and never redirected to (RFC 6749 section 4.1.2.1): it could be anyone's."""

    def __init__(self, description: str = "redirect_uri is not registered for this client"):
        super().__init__("invalid_request", description)
        self.reason = "INVALID_REDIRECT_URI"


@dataclass(frozen=True)
class TokenSettings:
    issuer: str
    audience: str
    access_ttl: timedelta = timedelta(minutes=15)
    refresh_ttl: timedelta = timedelta(days=30)
    code_ttl: timedelta = timedelta(seconds=60)
    # The legacy password grant (RFC 9700 section 2.4: must not be used); for dev walk-throughs only.
    password_grant: bool = False

    @property
    def grant_types(self) -> tuple[str, ...]:
        return tuple(g for g in GRANT_TYPES if g != "password" or self.password_grant)


@dataclass(frozen=True)
class IssuedTokens:
    access_token: str
    expires_in: int
    scope: str
    refresh_token: str = ""


def _sha256(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def _new_credential() -> tuple[str, str, str]:
    """A one-time credential (refresh token, authorization code) `<id>.<secret>`: its id, the hash
    of its secret (all that is stored) and the whole, handed out once."""
    record_id, secret = secrets.token_urlsafe(16), secrets.token_urlsafe(32)
    return record_id, _sha256(secret), f"{record_id}.{secret}"


def _find(presented: str, get: Callable[[str], R | None]) -> R | None:
    """The stored record of a presented `<id>.<secret>`, if its secret matches (in constant time)."""
    record_id, _, secret = presented.partition(".")
    if not record_id or not secret or len(presented) > 200:
        return None
    record = get(record_id)
    if record is None or not hmac.compare_digest(_sha256(secret), record.secret_hash):
        return None
    return record


def _b64(value: int) -> str:
    return base64.urlsafe_b64encode(value.to_bytes(32, "big")).rstrip(b"=").decode()


def _private_key(key: SigningKey) -> ec.EllipticCurvePrivateKey:
    private = serialization.load_pem_private_key(key.private_pem, password=None)
    if not isinstance(private, ec.EllipticCurvePrivateKey):
        raise ValueError(f"signing key {key.kid} is not an EC key ({ALGORITHM} needs P-256)")
    return private


def public_jwk(key: SigningKey) -> dict[str, str]:
    """The public half of a signing key as a JWK."""
    numbers = _private_key(key).public_key().public_numbers()
    return {"kty": "EC", "crv": "P-256", "x": _b64(numbers.x), "y": _b64(numbers.y),
            "kid": key.kid, "alg": ALGORITHM, "use": "sig"}


def new_signing_key(now) -> SigningKey:
    """A fresh P-256 key whose kid is its RFC 7638 thumbprint."""
    private = ec.generate_private_key(ec.SECP256R1())
    numbers = private.public_key().public_numbers()
    canonical = json.dumps({"crv": "P-256", "kty": "EC", "x": _b64(numbers.x), "y": _b64(numbers.y)},
                           separators=(",", ":"), sort_keys=True)
    kid = base64.urlsafe_b64encode(hashlib.sha256(canonical.encode()).digest()).rstrip(b"=").decode()
    pem = private.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption())
    return SigningKey(kid=kid, private_pem=pem, created_at=now)


def _granted_scope(requested: str, allowed: frozenset[str]) -> str:
    """The scopes to put in a token: what was asked for (all allowed if nothing), never more."""
    asked = set(requested.split()) if requested.strip() else set(allowed)
    if not asked <= allowed:
        raise OAuthError("invalid_scope", f"scope not allowed: {' '.join(sorted(asked - allowed))}")
    return " ".join(sorted(asked))


class AuthorizationServer:
    def __init__(self, store: AccountStore, accounts: AccountsService, settings: TokenSettings,
                 clock: Callable = domain.utcnow, grants: Grants | None = None):
        """`grants`: the scopes the system's services declare and which roles may be granted each
        (declared beside the protos' policies); by default those of services/workloads.toml's services."""
        self._store = store
        self._accounts = accounts
        self._settings = settings
        self._clock = clock
        self._grants = grants if grants is not None else scope_grants()

    @property
    def scopes_supported(self) -> list[str]:
        return sorted(self._grants.scopes)

    @property
    def grant_types(self) -> tuple[str, ...]:
        return self._settings.grant_types

    # --- keys ---------------------------------------------------------------------------------

    def ensure_signing_key(self) -> SigningKey:
        """The key to sign with; creates and persists one on first start."""
        current = [k for k in self._store.list_signing_keys() if k.retired_at is None]
        if current:
            return current[0]
        key = new_signing_key(self._clock())
        self._store.add_signing_key(key)
        _LOGGER.info("created signing key %s", key.kid)
        return key

    def rotate_signing_key(self) -> list[dict[str, str]]:
        """Signs with a new key from now on; old keys stay published until their tokens expire."""
        now = self._clock()
        for key in self._store.list_signing_keys():
            if key.retired_at is None:
                self._store.retire_signing_key(key.kid, now)
        self._store.add_signing_key(new_signing_key(now))
        return self.jwks()

    def jwks(self) -> list[dict[str, str]]:
        """Every key whose tokens may still be valid, newest first."""
        cutoff = self._clock() - self._settings.access_ttl
        return [public_jwk(k) for k in self._store.list_signing_keys()
                if k.retired_at is None or k.retired_at > cutoff]

    # --- grants -------------------------------------------------------------------------------

    def issue(self, grant_type: str, *, username="", password="", client_id="", client_secret="",
              refresh_token="", scope="", code="", redirect_uri="", code_verifier="") -> IssuedTokens:
        grants = self._settings.grant_types
        if grant_type not in grants:
            if not grant_type:
                raise OAuthError("invalid_request", "grant_type is required")
            raise OAuthError("unsupported_grant_type", f"grant_type must be one of {', '.join(grants)}")
        client = self._authenticate_client(client_id, client_secret)
        if grant_type == "authorization_code":
            return self._code_grant(code, redirect_uri, code_verifier, client)
        if grant_type == "password":
            return self._password_grant(username, password, scope, client)
        if grant_type == "client_credentials":
            return self._client_credentials_grant(client, scope)
        return self._refresh_grant(refresh_token, scope, client)

    def _authenticate_client(self, client_id: str, client_secret: str) -> OAuthClient | None:
        """The client proven by its id and secret, or a public client named by its id alone; None
        when neither was sent. InvalidClient when they are wrong, in constant time."""
        if not client_id and not client_secret:
            return None
        client = self._store.get_client(client_id) if client_id else None
        if client is not None and client.public:
            if client_secret:
                raise InvalidClient("a public client has no secret")
            return client
        expected = client.secret_hash if client else _sha256(secrets.token_hex(16))
        if not hmac.compare_digest(_sha256(client_secret), expected) or client is None:
            raise InvalidClient()
        return client

    # --- authorization code with PKCE -----------------------------------------------------------

    def check_authorization_request(self, *, response_type: str, client_id: str, redirect_uri: str, scope: str,
                                    code_challenge: str, code_challenge_method: str) -> tuple[OAuthClient, str]:
        """The client and the scopes asked for, when the request may go on to sign-in.

        InvalidClient and InvalidRedirectUri are shown to the user, never redirected; every other
        error is sent back to the (valid) redirect URI (RFC 6749 section 4.1.2.1)."""
        client = self._store.get_client(client_id) if client_id else None
        if client is None:
            raise InvalidClient("unknown client_id")
        if not redirect_uri or redirect_uri not in client.redirect_uris:
            raise InvalidRedirectUri()
        if response_type not in RESPONSE_TYPES:
            raise OAuthError("unsupported_response_type", "response_type must be code")
        if not code_challenge:
            raise OAuthError("invalid_request", "code_challenge is required (PKCE, RFC 7636)")
        if code_challenge_method not in CHALLENGE_METHODS:
            raise OAuthError("invalid_request", "code_challenge_method must be S256")
        if not domain.valid_challenge(code_challenge):
            raise OAuthError("invalid_request", "code_challenge must be 43 characters of BASE64URL")
        return client, _granted_scope(scope, frozenset(client.scopes))

    def authorize(self, *, username: str, password: str, **request: str) -> tuple[str, str]:
        """Signs the user in and returns a one-time code and the granted scopes. Credentials are
        checked with the rules of every sign-in (InvalidCredentials, LockedOut, AccountInactive)."""
        client, asked = self.check_authorization_request(**request)
        if not username or not password:
            raise domain.InvalidCredentials("username and password are required")
        account = self._accounts.authenticate(username, password)
        # The user's roles may allow fewer scopes than the client asks for: the token says which.
        granted = " ".join(sorted(set(asked.split()) & self._grants.for_roles(account.roles)))
        if not granted:
            raise OAuthError("invalid_scope", "this account may not grant any of the scopes asked for")
        code_id, secret_hash, code = _new_credential()
        self._store.add_authorization_code(domain.AuthorizationCode(
            code_id=code_id, secret_hash=secret_hash, client_id=client.client_id,
            redirect_uri=request["redirect_uri"], subject=account.id, scope=granted,
            code_challenge=request["code_challenge"], family_id=uuid.uuid4().hex,
            expires_at=self._clock() + self._settings.code_ttl))
        return code, granted

    def _code_grant(self, presented: str, redirect_uri: str, verifier: str, client: OAuthClient | None) -> IssuedTokens:
        invalid = InvalidGrant("authorization code is invalid, expired or already used")
        if client is None:
            raise InvalidClient("client_id is required")
        record = _find(presented, self._store.get_authorization_code)
        if record is None:
            raise invalid
        if record.client_id != client.client_id or record.redirect_uri != redirect_uri:
            raise invalid  # another client's code, or sent back to another URI
        if not verifier:
            raise OAuthError("invalid_request", "code_verifier is required (PKCE, RFC 7636)")
        if not domain.verifier_matches(verifier, record.code_challenge):
            raise InvalidGrant("code_verifier does not match the code_challenge")
        if not self._store.mark_authorization_code_used(record.code_id):
            # A second exchange: the code leaked. End whatever the first one issued (RFC 6749 4.1.2).
            self._store.revoke_family(record.family_id, self._clock() + self._settings.refresh_ttl)
            _LOGGER.warning("authorization code replay; family %s revoked", record.family_id)
            raise invalid
        if record.expires_at <= self._clock():
            raise invalid
        account = self._store.get_account(record.subject)
        if account is None or not account.active:
            raise invalid
        return self._tokens(account, record.scope, client_id=client.client_id, family_id=record.family_id)

    def _password_grant(self, username: str, password: str, scope: str, client: OAuthClient | None) -> IssuedTokens:
        if not username or not password:
            raise OAuthError("invalid_request", "username and password are required")
        try:
            account = self._accounts.authenticate(username, password)
        except (domain.InvalidCredentials, domain.AccountInactive):
            raise InvalidGrant("invalid username or password") from None
        allowed = self._grants.for_roles(account.roles)
        allowed = allowed & frozenset(client.scopes) if client else allowed
        granted = _granted_scope(scope, allowed)
        family = uuid.uuid4().hex
        return self._tokens(account, granted, client_id=client.client_id if client else "", family_id=family)

    def _client_credentials_grant(self, client: OAuthClient | None, scope: str) -> IssuedTokens:
        if client is None:
            raise InvalidClient()
        if client.public:
            raise OAuthError("unauthorized_client", "a public client cannot use client_credentials")
        granted = _granted_scope(scope, frozenset(client.scopes))
        access, expires_in = self._sign(client.client_id, granted, client_id=client.client_id)
        return IssuedTokens(access_token=access, expires_in=expires_in, scope=granted)

    def _refresh_grant(self, presented: str, scope: str, client: OAuthClient | None) -> IssuedTokens:
        invalid = InvalidGrant("refresh token is invalid, expired or revoked")
        record = self._find_refresh_token(presented)
        if record is None or self._store.is_family_revoked(record.family_id):
            raise invalid
        if record.client_id and client is None:
            raise InvalidClient("the client this token was issued to must authenticate")
        if record.client_id != (client.client_id if client else ""):
            raise invalid  # issued to another client (RFC 6749 section 5.2); not spent, so not burnt
        if not self._store.mark_refresh_token_used(record.token_id):
            # A replaced token came back: someone else holds this family. End it.
            self._store.revoke_family(record.family_id, record.expires_at)
            _LOGGER.warning("refresh token reuse detected; family %s revoked", record.family_id)
            raise invalid
        account = self._store.get_account(record.subject)
        if account is None or not account.active:
            raise invalid
        granted = _granted_scope(scope or record.scope, frozenset(record.scope.split()))
        return self._tokens(account, granted, client_id=record.client_id, family_id=record.family_id)

    def revoke(self, token: str, *, client_id: str = "", client_secret: str = "") -> None:
        """RFC 7009: revokes a refresh token's family, if the token's own client authenticated (or
        it has no client and none authenticated). Access tokens expire on their own (they are
        short-lived and verified without a call here); unknown tokens are ignored."""
        client = self._authenticate_client(client_id, client_secret)
        record = self._find_refresh_token(token)
        if record is None:
            return
        if record.client_id != (client.client_id if client else ""):
            raise InvalidClient("the token was not issued to this client")
        self._store.revoke_family(record.family_id, record.expires_at)

    def register_client(self, name: str, scopes: list[str], *, client_id: str = "", public: bool = False,
                        redirect_uris: tuple[str, ...] = ()) -> tuple[OAuthClient, str]:
        """Creates a client and returns it with its secret ("" for a public client), which is not
        stored and not shown again. The arguments follow CreateClientRequest's declared rules
        (checked on every request; manage.py checks them too)."""
        unknown = [(f"scopes[{i}]", f"must be a scope this server grants, not {scope!r}")
                   for i, scope in enumerate(scopes) if scope not in self._grants.scopes]
        if unknown:
            raise domain.InvalidArgument(unknown)
        secret = "" if public else secrets.token_urlsafe(32)
        client = OAuthClient(client_id=client_id or f"client-{secrets.token_hex(8)}", name=name,
                             secret_hash=_sha256(secret) if secret else "", scopes=tuple(sorted(set(scopes))),
                             created_at=self._clock(), redirect_uris=tuple(dict.fromkeys(redirect_uris)))
        try:
            self._store.create_client(client)
        except DuplicateKey:  # a chosen id that is taken, or 64 random bits colliding: never overwrite
            raise domain.AlreadyExists(f"client_id {client.client_id!r} is taken") from None
        return client, secret

    # --- helpers ------------------------------------------------------------------------------

    def _find_refresh_token(self, presented: str) -> RefreshToken | None:
        return _find(presented, self._store.get_refresh_token)

    def _tokens(self, account: domain.Account, scope: str, *, client_id: str, family_id: str) -> IssuedTokens:
        access, expires_in = self._sign(account.id, scope, client_id=client_id, not_before=account.tokens_valid_after)
        token_id, secret_hash, refresh_token = _new_credential()
        self._store.add_refresh_token(RefreshToken(
            token_id=token_id, family_id=family_id, subject=account.id, client_id=client_id, scope=scope,
            secret_hash=secret_hash, expires_at=self._clock() + self._settings.refresh_ttl))
        return IssuedTokens(access_token=access, expires_in=expires_in, scope=scope, refresh_token=refresh_token)

    def _sign(self, subject: str, scope: str, *, client_id: str, not_before: int = 0) -> tuple[str, int]:
        """An access token; its iat is never before `not_before`, the account's tokens_valid_after."""
        key = self.ensure_signing_key()
        now = self._clock()
        ttl = int(self._settings.access_ttl.total_seconds())
        claims = {"iss": self._settings.issuer, "aud": self._settings.audience, "sub": subject,
                  "iat": domain.token_issued_at(now, not_before), "nbf": int(now.timestamp()),
                  "exp": int(now.timestamp()) + ttl,
                  "jti": uuid.uuid4().hex, "scope": scope}
        if client_id:
            claims["client_id"] = client_id
        return jwt.encode(claims, _private_key(key), algorithm=ALGORITHM, headers={"kid": key.kid, "typ": "at+jwt"}), ttl
