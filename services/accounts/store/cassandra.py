"""Cassandra adapter of the accounts store: one keyspace, tables shaped by the queries.

    accounts                      by id; listed in token order (the page token holds the last id)
    accounts_by_username/_email   case-folded key -> account id, claimed with IF NOT EXISTS
    oauth_clients                 by client_id, created with IF NOT EXISTS
    authorization_codes           by code_id, TTL until remembered no more; `used` flips like a refresh token's
    refresh_tokens                by token_id, TTL until expiry; `used` flips by IF used = false,
                                  naming the attempt that flipped it (`used_by`)
    refresh_families_by_subject   an account's families, so all can be revoked at once (TTL)
    revoked_families              by family_id (TTL)
    signing_keys                  one partition, newest first
    sign_in_throttles             by hashed username key; counted by compare-and-set (TTL)

Uniqueness of username and email uses lightweight transactions on the claim tables, so
concurrent registrations on any number of replicas agree on one winner. A claim names its
account, so a claim whose reply was lost is recognised as ours when run again, and creating
the same account twice is harmless. Refresh tokens and revocations expire with TTLs instead
of cleanup jobs. Sign-in attempts are counted by a compare-and-set on the attempt count (read at
SERIAL, then `IF attempts = ?`), retried while other replicas win, so every attempt counts.

When a coordinator dies or times out mid-statement, the outcome of a lightweight transaction is
unknown, and each one here is settled rather than passed on as an error: claims, clients and
`used_by` name their writer, so running them again recognises our own lost success; a sign-in
attempt is counted again on top of what a fresh read finds (a lost success then counts twice,
which only brings the lock closer); clearing attempts is a delete that may run twice.
"""

from __future__ import annotations

import contextlib
import logging
import time
import uuid
from datetime import UTC, datetime

from runtime import cassandra as cql
from services.accounts.domain import (
    CODE_REPLAY_MEMORY,
    THROTTLE_MEMORY,
    Account,
    AuthorizationCode,
    LockedOut,
    OAuthClient,
    RefreshToken,
    SigningKey,
    SignInThrottle,
    next_attempt,
    username_key,
)
from services.accounts.store.base import (
    AccountStore,
    DuplicateKey,
    decode_page_token,
    encode_page_token,
    ms_precision,
)
from services.accounts.store.tables import (
    ACCOUNT_NEVER_SAVED,
    ACCOUNTS,
    AUTHORIZATION_CODES,
    OAUTH_CLIENTS,
    REFRESH_TOKENS,
)

_LOGGER = logging.getLogger(__name__)
# A registration writes its account row milliseconds after its claims, within a call deadline of
# seconds: a claim this old with no account behind it belongs to a registration that died.
ORPHAN_CLAIM_SECONDS = 60

_ACCOUNTS, _CLIENTS = ACCOUNTS.cassandra, OAUTH_CLIENTS.cassandra
_CODES, _REFRESH_TOKENS = AUTHORIZATION_CODES.cassandra, REFRESH_TOKENS.cassandra
_SAVED = _ACCOUNTS.settable(without=ACCOUNT_NEVER_SAVED)
_SCHEMA = [
    """CREATE TABLE IF NOT EXISTS sign_in_throttles (
        name_key text PRIMARY KEY, attempts int, locked_until timestamp, last_attempt_at timestamp)""",
    # Claim tables: the row's existence is the uniqueness decision, taken by an LWT.
    "CREATE TABLE IF NOT EXISTS accounts_by_username (username_key text PRIMARY KEY, account_id text)",
    "CREATE TABLE IF NOT EXISTS accounts_by_email (email_key text PRIMARY KEY, account_id text)",
    "CREATE TABLE IF NOT EXISTS revoked_families (family_id text PRIMARY KEY, expires_at timestamp)",
    """CREATE TABLE IF NOT EXISTS refresh_families_by_subject (
        subject text, family_id text, expires_at timestamp, PRIMARY KEY (subject, family_id))""",
    # Few keys ever exist, so one partition holds them all, newest first.
    """CREATE TABLE IF NOT EXISTS signing_keys (
        bucket int, created_at timestamp, kid text, private_pem blob, retired_at timestamp,
        PRIMARY KEY (bucket, created_at, kid)) WITH CLUSTERING ORDER BY (created_at DESC, kid ASC)""",
]
_STATEMENTS = {
    "claim_username": cql.conditional("INSERT INTO accounts_by_username (username_key, account_id) VALUES (?, ?) IF NOT EXISTS"),
    "claim_email": cql.conditional("INSERT INTO accounts_by_email (email_key, account_id) VALUES (?, ?) IF NOT EXISTS"),
    "release_username": cql.conditional("DELETE FROM accounts_by_username WHERE username_key = ? IF account_id = ?"),
    "release_email": cql.conditional("DELETE FROM accounts_by_email WHERE email_key = ? IF account_id = ?"),
    "insert_account": cql.write(_ACCOUNTS.insert()),
    "get_account": cql.read(f"SELECT {_ACCOUNTS.columns} FROM accounts WHERE id = ?"),
    "find_username": cql.read("SELECT account_id FROM accounts_by_username WHERE username_key = ?"),
    "username_claim_age": cql.read("SELECT account_id, WRITETIME(account_id) AS written FROM accounts_by_username WHERE username_key = ?"),
    "email_claim_age": cql.read("SELECT account_id, WRITETIME(account_id) AS written FROM accounts_by_email WHERE email_key = ?"),
    "save_account": cql.write(_ACCOUNTS.update(_SAVED)),
    "end_sessions": cql.write("UPDATE accounts SET tokens_valid_after = ? WHERE id = ?"),
    "read_throttle": cql.read("SELECT attempts, locked_until, last_attempt_at FROM sign_in_throttles WHERE name_key = ?", serial=True),
    "first_attempt": cql.conditional("INSERT INTO sign_in_throttles (name_key, attempts, locked_until, last_attempt_at) VALUES (?, ?, ?, ?) "
                                     "IF NOT EXISTS USING TTL ?"),
    "next_attempt": cql.conditional("UPDATE sign_in_throttles USING TTL ? SET attempts = ?, locked_until = ?, last_attempt_at = ? "
                                    "WHERE name_key = ? IF attempts = ?"),
    "clear_attempts": cql.conditional("DELETE FROM sign_in_throttles WHERE name_key = ? IF EXISTS"),
    "first_page": cql.read(f"SELECT {_ACCOUNTS.columns} FROM accounts LIMIT ?"),
    "next_page": cql.read(f"SELECT {_ACCOUNTS.columns} FROM accounts WHERE token(id) > token(?) LIMIT ?"),
    "create_client": cql.conditional(_CLIENTS.insert(suffix=" IF NOT EXISTS")),
    "get_client": cql.read(f"SELECT {_CLIENTS.columns} FROM oauth_clients WHERE client_id = ?"),
    "add_code": cql.write(_CODES.insert(suffix=" USING TTL ?")),
    "get_code": cql.read(f"SELECT {_CODES.columns} FROM authorization_codes WHERE code_id = ?"),
    "code_used_by": cql.read("SELECT used_by FROM authorization_codes WHERE code_id = ?", serial=True),
    "use_code": cql.conditional("UPDATE authorization_codes USING TTL ? SET used = true, used_by = ? WHERE code_id = ? IF used = false"),
    "add_refresh": cql.write(_REFRESH_TOKENS.insert(suffix=" USING TTL ?")),
    "add_family": cql.write("INSERT INTO refresh_families_by_subject (subject, family_id, expires_at) "
                            "VALUES (?, ?, ?) USING TTL ?"),
    "get_refresh": cql.read(f"SELECT {_REFRESH_TOKENS.columns} FROM refresh_tokens WHERE token_id = ?"),
    "refresh_used_by": cql.read("SELECT used_by FROM refresh_tokens WHERE token_id = ?", serial=True),
    "use_refresh": cql.conditional("UPDATE refresh_tokens USING TTL ? SET used = true, used_by = ? WHERE token_id = ? IF used = false"),
    "revoke_family": cql.write("INSERT INTO revoked_families (family_id, expires_at) VALUES (?, ?) USING TTL ?"),
    "family_revoked": cql.read("SELECT family_id FROM revoked_families WHERE family_id = ?"),
    "subject_families": cql.read("SELECT family_id, expires_at FROM refresh_families_by_subject WHERE subject = ?"),
    "add_key": cql.write("INSERT INTO signing_keys (bucket, created_at, kid, private_pem, retired_at) VALUES (0, ?, ?, ?, ?)"),
    "list_keys": cql.read("SELECT created_at, kid, private_pem, retired_at FROM signing_keys WHERE bucket = 0"),
    "retire_key": cql.write("UPDATE signing_keys SET retired_at = ? WHERE bucket = 0 AND created_at = ? AND kid = ?"),
}


def _ttl(expires_at: datetime) -> int:
    return max(1, int((expires_at - datetime.now(UTC)).total_seconds()) + 1)


class CassandraAccountStore(cql.CassandraStore, AccountStore):
    TABLES = (ACCOUNTS, OAUTH_CLIENTS, AUTHORIZATION_CODES, REFRESH_TOKENS)
    SCHEMA = _SCHEMA
    STATEMENTS = _STATEMENTS

    # accounts ----------------------------------------------------------------------------------

    def _claim(self, kind: str, key: str, account_id: str) -> bool:
        """Claims a unique key for account_id. A claim older than ORPHAN_CLAIM_SECONDS whose account
        row was never written (its registration died between claim and insert) is taken over."""
        if cql.applied(self._lwt(f"claim_{kind}", key, account_id), account_id=account_id):
            return True
        holder = self._run(f"{kind}_claim_age", key).one()
        if holder is None or self._run("get_account", holder.account_id).one() is not None:
            return False
        if time.time() - holder.written / 1_000_000 < ORPHAN_CLAIM_SECONDS:
            return False  # perhaps still being registered: not ours to judge yet
        _LOGGER.warning("taking over an orphaned %s claim", kind)
        self._lwt(f"release_{kind}", key, holder.account_id)
        return cql.applied(self._lwt(f"claim_{kind}", key, account_id), account_id=account_id)

    def create_account(self, account: Account) -> None:
        a = account
        if not self._claim("username", a.username_key, a.id):
            raise DuplicateKey("username")
        try:
            email_claimed = self._claim("email", a.email_key, a.id)
        except Exception:
            # Outcome unknown even after retries: give back whatever of ours landed, then fail.
            with contextlib.suppress(Exception):
                self._lwt("release_email", a.email_key, a.id)
                self._lwt("release_username", a.username_key, a.id)
            raise
        if not email_claimed:
            # Give the username back, but only our own claim (IF account_id = ours).
            self._lwt("release_username", a.username_key, a.id)
            raise DuplicateKey("email")
        # If this write fails, the claims stay ours: creating the same account again completes it.
        self._run("insert_account", *_ACCOUNTS.values(a))

    def get_account(self, account_id: str) -> Account | None:
        row = self._run("get_account", account_id).one()
        return _ACCOUNTS.row(row) if row else None

    def find_account_by_username(self, username: str) -> Account | None:
        claim = self._run("find_username", username_key(username)).one()
        return self.get_account(claim.account_id) if claim else None

    def save_account(self, account: Account) -> None:
        self._run("save_account", *_ACCOUNTS.update_values(account, _SAVED))

    def end_sessions(self, account_id: str, tokens_valid_after: int) -> None:
        self._run("end_sessions", tokens_valid_after, account_id)

    def list_accounts(self, page_size: int, page_token: str | None) -> tuple[list[Account], str | None]:
        if page_token:
            rows = list(self._run("next_page", decode_page_token(page_token), page_size + 1))
        else:
            rows = list(self._run("first_page", page_size + 1))
        page = [_ACCOUNTS.row(r) for r in rows[:page_size]]
        return page, encode_page_token(page[-1].id) if len(rows) > page_size else None

    # sign-in throttling -----------------------------------------------------------------------

    def count_sign_in_attempt(self, key: str, now: datetime) -> SignInThrottle:
        ttl = int(THROTTLE_MEMORY.total_seconds())

        def read():
            row = self._run("read_throttle", key).one()
            return row is None, SignInThrottle(key) if row is None else SignInThrottle(
                key, row.attempts, cql.utc(row.locked_until), cql.utc(row.last_attempt_at))

        def write(read_back, counted):
            first, current = read_back
            values = (counted.attempts, ms_precision(counted.locked_until), ms_precision(counted.last_attempt_at))
            if first:
                return self._run("first_attempt", key, *values, ttl)
            return self._run("next_attempt", ttl, *values, key, current.attempts)

        # next_attempt raises LockedOut: nothing to write. An unknown outcome (Paxos under contention
        # times out, a coordinator dies) is counted again on top of what is there: if the lost write
        # did land, this attempt counts twice, which only brings the lock closer. Too many attempts
        # at once on one name refuse this one rather than let it through uncounted.
        _, counted = cql.compare_and_set(read, lambda read_back: next_attempt(read_back[1], now), write,
                                         unknown=cql.Unknown.DECIDE_AGAIN, contended=lambda: LockedOut(1.0))
        assert counted is not None  # next_attempt always counts or raises
        return counted

    def clear_sign_in_attempts(self, key: str) -> None:
        self._lwt("clear_attempts", key)  # IF EXISTS: a second run after a lost success finds nothing

    # OAuth2 clients -----------------------------------------------------------------------------

    def create_client(self, client: OAuthClient) -> None:
        c = client
        created = self._lwt("create_client", *_CLIENTS.values(c))
        # Its secret hash, name and redirect URIs identify a client: finding the same is a retry, not a clash.
        if not cql.applied(created, secret_hash=c.secret_hash, name=c.name, redirect_uris=list(c.redirect_uris) or None):
            raise DuplicateKey("client_id")

    def get_client(self, client_id: str) -> OAuthClient | None:
        row = self._run("get_client", client_id).one()
        return _CLIENTS.row(row) if row else None

    # authorization codes ------------------------------------------------------------------------

    def add_authorization_code(self, code: AuthorizationCode) -> None:
        self._run("add_code", *_CODES.values(code), _ttl(code.expires_at + CODE_REPLAY_MEMORY))

    def get_authorization_code(self, code_id: str) -> AuthorizationCode | None:
        row = self._run("get_code", code_id).one()
        return _CODES.row(row) if row else None

    def mark_authorization_code_used(self, code_id: str) -> bool:
        record = self.get_authorization_code(code_id)
        if record is None:
            return False
        return self._mark_used("use_code", "code_used_by", code_id, _ttl(record.expires_at + CODE_REPLAY_MEMORY))

    # refresh tokens -----------------------------------------------------------------------------

    def add_refresh_token(self, token: RefreshToken) -> None:
        t = token
        ttl = _ttl(t.expires_at)
        self._run("add_refresh", *_REFRESH_TOKENS.values(t), ttl)
        self._run("add_family", t.subject, t.family_id, ms_precision(t.expires_at), ttl)

    def get_refresh_token(self, token_id: str) -> RefreshToken | None:
        row = self._run("get_refresh", token_id).one()
        token = _REFRESH_TOKENS.row(row) if row else None
        return token if token is not None and token.expires_at > datetime.now(UTC) else None

    def mark_refresh_token_used(self, token_id: str) -> bool:
        # Read first for the TTL: an update without one would keep `used` (and so the row) forever.
        record = self.get_refresh_token(token_id)
        if record is None:
            return False
        return self._mark_used("use_refresh", "refresh_used_by", token_id, _ttl(record.expires_at))

    def _mark_used(self, use: str, used_by: str, key: str, ttl: int) -> bool:
        """Flips a one-time record's `used` by compare-and-set; True only for the first use."""
        # Named, so that a repeat after a lost success finds our own mark rather than a replay.
        attempt = uuid.uuid4().hex
        if self._lwt(use, ttl, attempt, key).was_applied:
            return True
        # A replay, or our own first run whose reply was lost. (A compare-and-set that was not
        # applied returns only the columns of its condition, so `used_by` is read at SERIAL.)
        spent = self._run(used_by, key).one()
        return spent is not None and spent.used_by == attempt

    def revoke_family(self, family_id: str, expires_at: datetime) -> None:
        self._run("revoke_family", family_id, ms_precision(expires_at), _ttl(expires_at))

    def is_family_revoked(self, family_id: str) -> bool:
        return self._run("family_revoked", family_id).one() is not None

    def revoke_subject_tokens(self, subject: str) -> None:
        for row in self._run("subject_families", subject):
            self.revoke_family(row.family_id, cql.utc(row.expires_at))

    # signing keys -------------------------------------------------------------------------------

    def add_signing_key(self, key: SigningKey) -> None:
        self._run("add_key", ms_precision(key.created_at), key.kid, key.private_pem, ms_precision(key.retired_at))

    def list_signing_keys(self) -> list[SigningKey]:
        return [SigningKey(kid=r.kid, private_pem=bytes(r.private_pem), created_at=cql.utc(r.created_at),
                           retired_at=cql.utc(r.retired_at)) for r in self._run("list_keys")]

    def retire_signing_key(self, kid: str, retired_at: datetime) -> None:
        for key in self.list_signing_keys():
            if key.kid == kid:
                self._run("retire_key", ms_precision(retired_at), ms_precision(key.created_at), kid)
