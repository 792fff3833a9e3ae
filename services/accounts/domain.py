"""Account rules: what a valid account is, how passwords are kept, when sign-in is refused.

Pure Python: no gRPC, no database. The store and the servicer are built around it.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import math
import re
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from services.common.clock import utcnow  # noqa: F401  (part of this domain's vocabulary)
from services.common.errors import DomainError, InvalidArgument, NotFound  # noqa: F401
from services.common.masks import apply_mask

ACTIVE = "ACTIVE"
DEACTIVATED = "DEACTIVATED"

PROFILE_FIELDS = ("display_name", "bio", "locale")

_COMMON_PASSWORDS = frozenset({
    "password", "password1", "password123", "123456789", "1234567890", "qwertyuiop", "iloveyou",
    "letmein123", "welcome123", "administrator", "passw0rd123", "1q2w3e4r5t", "qwerty123",
})
MAX_FAILED_LOGINS = 5
_BASE_LOCKOUT = timedelta(seconds=30)
_MAX_LOCKOUT = timedelta(minutes=15)
# Attempts older than this are forgotten (stores also expire their throttle rows after it).
THROTTLE_MEMORY = timedelta(days=1)


class AccountError(DomainError):
    """Base of the accounts domain errors; the servicer maps each kind to a gRPC status."""

    reason = "ACCOUNT_ERROR"


class AlreadyExists(AccountError):
    """A username, an e-mail address or a client id that another account or client holds."""

    reason = "ALREADY_EXISTS"


class InvalidCredentials(AccountError):
    """A sign-in or a password change whose credentials do not match (never saying which part)."""

    reason = "INVALID_CREDENTIALS"


class AccountInactive(AccountError):
    """The account is deactivated: it may not sign in, and its tokens are refused."""

    reason = "ACCOUNT_DEACTIVATED"


class AdminLockout(AccountError):
    """Deactivating this account would leave the shop with fewer administrators than it needs:
    an administrator's own account, or the last active administrator."""

    reason = "ADMIN_LOCKOUT"


class LockedOut(AccountError):
    reason = "TOO_MANY_FAILED_LOGINS"

    def __init__(self, retry_after: float):
        super().__init__(f"too many failed sign-ins; try again in {int(retry_after) + 1} s")
        self.retry_after = retry_after


@dataclass
class Account:
    id: str
    username: str
    email: str
    password_hash: str
    created_at: datetime
    updated_at: datetime
    display_name: str = ""
    bio: str = ""
    locale: str = ""
    state: str = ACTIVE
    roles: tuple[str, ...] = ("customer",)
    # Access tokens issued (iat, epoch seconds) before this are refused; 0 until sessions are first ended.
    tokens_valid_after: int = 0

    @property
    def username_key(self) -> str:
        return username_key(self.username)

    @property
    def email_key(self) -> str:
        return email_key(self.email)

    @property
    def active(self) -> bool:
        return self.state == ACTIVE

    @property
    def is_admin(self) -> bool:
        return "admin" in self.roles


def username_key(username: str) -> str:
    """Usernames are unique regardless of case: this is the form uniqueness is decided on."""
    return username.strip().casefold()


def email_key(email: str) -> str:
    return email.strip().casefold()


# --- validation -------------------------------------------------------------------------------

def password_problems(password: str, *, username: str = "", email: str = "", field_name: str = "password") -> list[tuple[str, str]]:
    """Why a password is too weak, beyond what its field declares in the proto (length, five
    different characters: checked on every request by runtime/validation.py). Length over
    composition, as NIST 800-63B advises: here, a list of common passwords and the account's own
    names. Empty when it is acceptable."""
    lowered = password.casefold()
    problems = []
    if lowered in _COMMON_PASSWORDS:
        problems.append((field_name, "is a commonly used password"))
    for part, label in ((username, "username"), (email.split("@")[0], "email")):
        if len(part) >= 3 and part.casefold() in lowered:
            problems.append((field_name, f"must not contain the {label}"))
    return problems


def registration_problems(username: str, email: str, password: str) -> list[tuple[str, str]]:
    """The rules beyond the fields' own (which the proto declares and every request is checked against)."""
    return password_problems(password, username=username, email=email)


# --- passwords --------------------------------------------------------------------------------

class PasswordHasher:
    """scrypt (memory-hard, in the standard library). The parameters travel with each hash,
    so they can be raised later without invalidating stored passwords."""

    def __init__(self, n: int = 2**14, r: int = 8, p: int = 1):
        self.n, self.r, self.p = n, r, p
        # Verified against when a username does not exist, so that case costs the same time.
        self._dummy_hash = self.hash(secrets.token_hex(16))

    def hash(self, password: str) -> str:
        salt = secrets.token_bytes(16)
        digest = self.derive(password, salt, self.n, self.r, self.p)
        return f"scrypt${self.n}${self.r}${self.p}${salt.hex()}${digest.hex()}"

    def verify(self, password: str, encoded: str | None) -> bool:
        """Constant-time check. With no stored hash it still does the work, so timing
        does not reveal whether a username exists."""
        expected_result = encoded is not None
        encoded = encoded if encoded is not None else self._dummy_hash
        try:
            scheme, n, r, p, salt, digest = encoded.split("$")
            if scheme != "scrypt":
                return False
            actual = self.derive(password, bytes.fromhex(salt), int(n), int(r), int(p))
        except ValueError:
            return False
        return hmac.compare_digest(actual, bytes.fromhex(digest)) and expected_result

    @staticmethod
    def derive(password: str, salt: bytes, n: int, r: int, p: int) -> bytes:
        """One scrypt run: the work every sign-in costs (tests count these)."""
        return hashlib.scrypt(password.encode("utf-8"), salt=salt, n=n, r=r, p=p, maxmem=256 * n * r * p, dklen=32)


# --- sign-in throttling -----------------------------------------------------------------------

@dataclass(frozen=True)
class SignInThrottle:
    """Password attempts on one username since its last success.

    Kept per username key whether or not an account has that name, so an unknown username is
    answered exactly like a real one (the same lockout after the same number of attempts)."""

    key: str
    attempts: int = 0
    locked_until: datetime | None = None
    last_attempt_at: datetime | None = None


def sign_in_key(username: str) -> str:
    """The throttle key of a username: a hash of its case-folded form, so names typed at sign-in
    (sometimes a password typed in the wrong field) are not kept in clear."""
    return hashlib.sha256(username_key(username).encode("utf-8")).hexdigest()


def next_attempt(throttle: SignInThrottle, now: datetime) -> SignInThrottle:
    """The throttle with one more attempt counted; raises LockedOut while a lock holds.

    An attempt is counted when it starts, before the password is checked, and a success clears
    the count. So parallel guesses are counted as they arrive: from the fifth attempt on, each
    one locks for 30 s, doubling up to 15 min, however many guesses run at once."""
    if throttle.locked_until and throttle.locked_until > now:
        raise LockedOut((throttle.locked_until - now).total_seconds())
    remembered = throttle.last_attempt_at is not None and now - throttle.last_attempt_at < THROTTLE_MEMORY
    attempts = throttle.attempts + 1 if remembered else 1
    locked_until = None
    if attempts >= MAX_FAILED_LOGINS:
        locked_until = now + min(_BASE_LOCKOUT * 2 ** (attempts - MAX_FAILED_LOGINS), _MAX_LOCKOUT)
    return SignInThrottle(throttle.key, attempts, locked_until, now)


# --- ending sessions ---------------------------------------------------------------------------

def tokens_cutoff(now: datetime) -> int:
    """The tokens_valid_after that ends every session open at `now`: the next whole second, since a
    token's iat is a whole second rounded down (one issued earlier in this very second must not
    survive). Tokens issued after `now` are dated from then on (token_issued_at)."""
    return math.floor(now.timestamp()) + 1


def token_issued_at(now: datetime, tokens_valid_after: int = 0) -> int:
    """The iat of a token issued at `now` for an account: now in whole seconds, but never before the
    account's tokens_valid_after, so a token issued just after its sessions were ended (within the same
    second) counts. It is then dated less than a second ahead, within every verifier's leeway for iat."""
    return max(math.floor(now.timestamp()), tokens_valid_after)


def deactivation_problem(account: Account, actor: str, other_active_admin: Callable[[], bool]) -> str | None:
    """Why `actor` (the subject of the caller's token) may not deactivate this active account, or None.
    An administrator's own account is refused, so one cannot lock oneself out by mistake; so is the
    last active administrator, whoever asks (another administrator, or a client with accounts.admin).
    `other_active_admin()` is asked only about an administrator's account, as it may read many."""
    if not account.is_admin:
        return None
    if account.id == actor:
        return "an administrator cannot deactivate its own account; another administrator can"
    if not other_active_admin():
        return "this is the last active administrator; make another one before deactivating it"
    return None


def apply_profile_changes(account: Account, changes: dict[str, str], paths: list[str], now: datetime) -> Account:
    """Returns the account with `paths` of the profile set from `changes`.

    With no paths, every non-empty field in `changes` is applied (AIP-134's implied mask).
    """
    return apply_mask(account, changes, paths, PROFILE_FIELDS, "profile", updated_at=now)


# --- OAuth2 records ---------------------------------------------------------------------------

@dataclass(frozen=True)
class OAuthClient:
    """A registered client. Confidential clients hold a secret (only its hash is kept); public
    clients (browser and native applications) have none and sign users in through the
    authorization code grant with PKCE, to one of their exact redirect URIs."""

    client_id: str
    name: str
    secret_hash: str  # "" for a public client
    scopes: tuple[str, ...]
    created_at: datetime
    redirect_uris: tuple[str, ...] = ()

    @property
    def public(self) -> bool:
        return not self.secret_hash


@dataclass(frozen=True)
class AuthorizationCode:
    """A one-time authorization code (RFC 6749 section 4.1.2), bound to the client, the redirect
    URI and the PKCE challenge it was issued for. Tokens issued from it form one refresh family,
    so a code presented twice revokes them."""

    code_id: str
    secret_hash: str
    client_id: str
    redirect_uri: str
    subject: str
    scope: str
    code_challenge: str  # BASE64URL(SHA256(verifier)); S256 is the only method
    family_id: str
    expires_at: datetime
    used: bool = False


# Kept this long after they expire, so a replayed code is still recognised (and its tokens revoked).
CODE_REPLAY_MEMORY = timedelta(minutes=10)
_VERIFIER = re.compile(r"^[A-Za-z0-9._~-]{43,128}$")  # RFC 7636 section 4.1
_CHALLENGE = re.compile(r"^[A-Za-z0-9_-]{43}$")       # BASE64URL of 32 bytes, no padding


def pkce_s256(verifier: str) -> str:
    """The S256 code challenge of a verifier (RFC 7636 section 4.2)."""
    return base64.urlsafe_b64encode(hashlib.sha256(verifier.encode("ascii")).digest()).rstrip(b"=").decode()


def valid_challenge(challenge: str) -> bool:
    return bool(_CHALLENGE.match(challenge))


def verifier_matches(verifier: str, challenge: str) -> bool:
    return bool(_VERIFIER.match(verifier)) and hmac.compare_digest(pkce_s256(verifier), challenge)


@dataclass(frozen=True)
class RefreshToken:
    """One refresh token. Each use replaces it with a new one in the same family; a second
    use of a replaced token means it leaked, and the whole family is revoked."""

    token_id: str
    family_id: str
    subject: str  # account id
    client_id: str
    scope: str
    secret_hash: str
    expires_at: datetime
    used: bool = False


@dataclass(frozen=True)
class SigningKey:
    """A token signing key. Retired keys stay published until the tokens they signed expire."""

    kid: str
    private_pem: bytes
    created_at: datetime
    retired_at: datetime | None = None
