"""The repository port: everything the accounts service needs from a database.

Both adapters pass the same contract tests (tests/contract). Uniqueness is decided by
the store atomically (a lightweight transaction on Cassandra, a constraint in SQLite),
never by a read followed by a write.
"""

from __future__ import annotations

import abc
from datetime import datetime

from runtime.paging import InvalidPageToken, decode_page_token, encode_page_token  # noqa: F401  (re-exported)
from runtime.tables import ms_precision  # noqa: F401  (re-exported: both stores keep milliseconds)
from services.accounts.domain import (
    Account,
    AuthorizationCode,
    OAuthClient,
    RefreshToken,
    SigningKey,
    SignInThrottle,
)


class DuplicateKey(Exception):
    """A unique key is taken; `field` says which ("username", "email", "client_id")."""

    def __init__(self, field: str):
        super().__init__(f"{field} already taken")
        self.field = field


class AccountStore(abc.ABC):
    @abc.abstractmethod
    def ping(self) -> None:
        """Raises unless the database answers a trivial query."""

    @abc.abstractmethod
    def close(self) -> None: ...

    # accounts
    @abc.abstractmethod
    def create_account(self, account: Account) -> None:
        """Inserts a new account; raises DuplicateKey("username"|"email") if either is taken by
        another account (compared case-insensitively; "username" when both are). On a duplicate
        nothing of the account remains. Creating the same account (same id, username and email)
        again succeeds, so a write retried after a lost reply is harmless."""

    @abc.abstractmethod
    def get_account(self, account_id: str) -> Account | None: ...

    @abc.abstractmethod
    def find_account_by_username(self, username: str) -> Account | None:
        """Case-insensitive lookup."""

    @abc.abstractmethod
    def save_account(self, account: Account) -> None:
        """Writes the mutable fields (profile, password hash, state, roles, updated_at) of an
        existing account. Username, email and id never change; tokens_valid_after changes only
        through end_sessions, so saving an account read earlier cannot undo it."""

    @abc.abstractmethod
    def end_sessions(self, account_id: str, tokens_valid_after: int) -> None:
        """Sets the account's tokens_valid_after (epoch seconds; access tokens issued before it are
        refused), writing nothing else. Never lowers it on SQLite; on Cassandra the last write wins,
        and later calls carry later times."""

    @abc.abstractmethod
    def list_accounts(self, page_size: int, page_token: str | None) -> tuple[list[Account], str | None]:
        """One page of accounts in a stable order and the opaque token of the next page
        (None on the last). Raises InvalidPageToken for a token it did not issue."""

    # sign-in throttling
    @abc.abstractmethod
    def count_sign_in_attempt(self, key: str, now: datetime) -> SignInThrottle:
        """Counts one password attempt on a username key and returns the throttle as stored.

        Atomic read-modify-write of `domain.next_attempt`: any number of callers, on any number
        of replicas, each count exactly once (a lost reply on Cassandra may count one twice,
        which errs towards locking). Raises LockedOut, storing nothing, while the key is locked."""

    @abc.abstractmethod
    def clear_sign_in_attempts(self, key: str) -> None:
        """Forgets the key's attempts (after a correct password)."""

    # OAuth2 clients
    @abc.abstractmethod
    def create_client(self, client: OAuthClient) -> None:
        """Raises DuplicateKey("client_id") if the id is taken by another client (another secret
        hash, name or redirect URIs); creating the same client again is a no-op."""

    @abc.abstractmethod
    def get_client(self, client_id: str) -> OAuthClient | None: ...

    # authorization codes
    @abc.abstractmethod
    def add_authorization_code(self, code: AuthorizationCode) -> None:
        """Kept until CODE_REPLAY_MEMORY after it expires, so a replay is recognised."""

    @abc.abstractmethod
    def get_authorization_code(self, code_id: str) -> AuthorizationCode | None:
        """The code, expired or not, while it is remembered; None when unknown."""

    @abc.abstractmethod
    def mark_authorization_code_used(self, code_id: str) -> bool:
        """Atomically flips `used` from false to true; False if it was already used (a replay)."""

    # refresh tokens
    @abc.abstractmethod
    def add_refresh_token(self, token: RefreshToken) -> None: ...

    @abc.abstractmethod
    def get_refresh_token(self, token_id: str) -> RefreshToken | None:
        """None when unknown or expired."""

    @abc.abstractmethod
    def mark_refresh_token_used(self, token_id: str) -> bool:
        """Atomically flips `used` from false to true; False if it was already used (a replay)."""

    @abc.abstractmethod
    def revoke_family(self, family_id: str, expires_at: datetime) -> None:
        """Marks a refresh-token family revoked; kept at least until `expires_at`."""

    @abc.abstractmethod
    def is_family_revoked(self, family_id: str) -> bool: ...

    @abc.abstractmethod
    def revoke_subject_tokens(self, subject: str) -> None:
        """Revokes every refresh-token family of an account (password change, deactivation)."""

    # signing keys
    @abc.abstractmethod
    def add_signing_key(self, key: SigningKey) -> None: ...

    @abc.abstractmethod
    def list_signing_keys(self) -> list[SigningKey]:
        """All keys, newest first."""

    @abc.abstractmethod
    def retire_signing_key(self, kid: str, retired_at: datetime) -> None: ...
