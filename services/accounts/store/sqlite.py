"""Embedded adapter of the accounts store: SQLite from the standard library.

Uniqueness lives in UNIQUE constraints on the case-folded username and email, so two
concurrent registrations cannot both pass; everything a use case writes together is
written in one transaction. Creating the same account or client again (a retried write)
is a no-op, as on Cassandra.
"""

from __future__ import annotations

import sqlite3
from datetime import datetime

from runtime.sqlite import SqliteStore, Transaction, from_ms, from_ms_or_none, now_ms, to_ms
from services.accounts import domain
from services.accounts.store.base import (
    AccountStore,
    DuplicateKey,
    decode_page_token,
    encode_page_token,
)
from services.accounts.store.tables import (
    ACCOUNT_NEVER_SAVED,
    ACCOUNTS,
    AUTHORIZATION_CODES,
    OAUTH_CLIENTS,
    REFRESH_TOKENS,
)

_ACCOUNTS, _CLIENTS = ACCOUNTS.sqlite, OAUTH_CLIENTS.sqlite
_CODES, _REFRESH_TOKENS = AUTHORIZATION_CODES.sqlite, REFRESH_TOKENS.sqlite
_SAVED = _ACCOUNTS.settable(without=ACCOUNT_NEVER_SAVED)
# What makes a client the same client again (a retried create), as stored.
_CLIENT_IDENTITY = ("secret_hash", "name", "redirect_uris")
_SCHEMA = [
    """CREATE TABLE IF NOT EXISTS sign_in_throttles (
        name_key TEXT PRIMARY KEY, attempts INTEGER NOT NULL, locked_until INTEGER, last_attempt_at INTEGER NOT NULL)""",
    "CREATE INDEX IF NOT EXISTS sign_in_throttles_by_age ON sign_in_throttles (last_attempt_at)",
    "CREATE INDEX IF NOT EXISTS refresh_tokens_by_subject ON refresh_tokens (subject)",
    """CREATE TABLE IF NOT EXISTS revoked_families (family_id TEXT PRIMARY KEY, expires_at INTEGER NOT NULL)""",
    """CREATE TABLE IF NOT EXISTS signing_keys (
        kid TEXT PRIMARY KEY, private_pem BLOB NOT NULL, created_at INTEGER NOT NULL, retired_at INTEGER)""",
]
# Columns of an older schema (sign-in counters lived on the account); dropped from existing files at open.
_LEGACY_ACCOUNT_COLUMNS = ("failed_logins", "locked_until")


def _holder(conn: Transaction, key_column: str, key: str) -> str | None:
    """Id of the account holding a unique key (username_key or email_key), if any."""
    row = conn.execute(f"SELECT id FROM accounts WHERE {key_column} = ?", (key,)).fetchone()
    return row["id"] if row else None


class SqliteAccountStore(SqliteStore, AccountStore):
    TABLES = (ACCOUNTS, OAUTH_CLIENTS, AUTHORIZATION_CODES, REFRESH_TOKENS)
    SCHEMA = _SCHEMA

    @classmethod
    def open(cls, path: str):
        store = super().open(path)
        with store._db.transaction() as conn:
            present = {row["name"] for row in conn.execute("PRAGMA table_info(accounts)")}
            for column in _LEGACY_ACCOUNT_COLUMNS:
                if column in present:
                    conn.execute(f"ALTER TABLE accounts DROP COLUMN {column}")
        return store

    # accounts ----------------------------------------------------------------------------------

    def create_account(self, account: domain.Account) -> None:
        a = account
        with self._db.transaction() as conn:
            try:
                conn.execute(_ACCOUNTS.insert(), _ACCOUNTS.values(a))
            except sqlite3.IntegrityError:
                # Decided by lookups in the same transaction, not by SQLite's message: when both are
                # taken the username is reported, as on Cassandra (which claims it first).
                by_username = _holder(conn, "username_key", a.username_key)
                by_email = _holder(conn, "email_key", a.email_key)
                if by_username == by_email == a.id:
                    return  # this very account, written before: a retry
                if by_username or by_email:
                    raise DuplicateKey("username" if by_username else "email") from None
                raise  # only the id clashed: a bug, not a client's fault

    def get_account(self, account_id: str) -> domain.Account | None:
        rows = self._db.query(f"SELECT {_ACCOUNTS.columns} FROM accounts WHERE id = ?", (account_id,))
        return _ACCOUNTS.row(rows[0]) if rows else None

    def find_account_by_username(self, username: str) -> domain.Account | None:
        rows = self._db.query(f"SELECT {_ACCOUNTS.columns} FROM accounts WHERE username_key = ?",
                              (domain.username_key(username),))
        return _ACCOUNTS.row(rows[0]) if rows else None

    def save_account(self, account: domain.Account) -> None:
        self._db.execute(_ACCOUNTS.update(_SAVED), _ACCOUNTS.update_values(account, _SAVED))

    def end_sessions(self, account_id: str, tokens_valid_after: int) -> None:
        self._db.execute("UPDATE accounts SET tokens_valid_after = MAX(tokens_valid_after, ?) WHERE id = ?",
                         (tokens_valid_after, account_id))

    def list_accounts(self, page_size: int, page_token: str | None) -> tuple[list[domain.Account], str | None]:
        after = decode_page_token(page_token) if page_token else ""
        rows = self._db.query(f"SELECT {_ACCOUNTS.columns} FROM accounts WHERE id > ? ORDER BY id LIMIT ?",
                              (after, page_size + 1))
        page = [_ACCOUNTS.row(r) for r in rows[:page_size]]
        return page, encode_page_token(page[-1].id) if len(rows) > page_size else None

    # sign-in throttling -----------------------------------------------------------------------

    def count_sign_in_attempt(self, key: str, now: datetime) -> domain.SignInThrottle:
        # One IMMEDIATE transaction: no other writer, in this process or another, runs between
        # the read and the write. LockedOut raised by the rule rolls it back.
        with self._db.transaction() as conn:
            conn.execute("DELETE FROM sign_in_throttles WHERE last_attempt_at < ?", (to_ms(now - domain.THROTTLE_MEMORY),))
            row = conn.execute("SELECT * FROM sign_in_throttles WHERE name_key = ?", (key,)).fetchone()
            current = domain.SignInThrottle(key) if row is None else domain.SignInThrottle(
                key, row["attempts"], from_ms_or_none(row["locked_until"]), from_ms_or_none(row["last_attempt_at"]))
            counted = domain.next_attempt(current, now)
            conn.execute("INSERT OR REPLACE INTO sign_in_throttles VALUES (?, ?, ?, ?)",
                         (key, counted.attempts, to_ms(counted.locked_until), to_ms(counted.last_attempt_at)))
        return counted

    def clear_sign_in_attempts(self, key: str) -> None:
        self._db.execute("DELETE FROM sign_in_throttles WHERE name_key = ?", (key,))

    # OAuth2 clients -----------------------------------------------------------------------------

    def create_client(self, client: domain.OAuthClient) -> None:
        with self._db.transaction() as conn:
            try:
                conn.execute(_CLIENTS.insert(), _CLIENTS.values(client))
            except sqlite3.IntegrityError:
                # Its secret hash, name and redirect URIs identify a client: the same again is a retry, not a clash.
                existing = conn.execute(f"SELECT {', '.join(_CLIENT_IDENTITY)} FROM oauth_clients WHERE client_id = ?",
                                        (client.client_id,)).fetchone()
                if existing is None or tuple(existing) != _CLIENTS.values(client, _CLIENT_IDENTITY):
                    raise DuplicateKey("client_id") from None

    def get_client(self, client_id: str) -> domain.OAuthClient | None:
        rows = self._db.query(f"SELECT {_CLIENTS.columns} FROM oauth_clients WHERE client_id = ?", (client_id,))
        return _CLIENTS.row(rows[0]) if rows else None

    # authorization codes ------------------------------------------------------------------------

    def add_authorization_code(self, code: domain.AuthorizationCode) -> None:
        with self._db.transaction() as conn:
            # Forgotten codes are dropped here, so the table does not grow without bound.
            conn.execute("DELETE FROM authorization_codes WHERE expires_at < ?",
                         (now_ms() - int(domain.CODE_REPLAY_MEMORY.total_seconds() * 1000),))
            conn.execute(_CODES.insert(), _CODES.values(code))

    def get_authorization_code(self, code_id: str) -> domain.AuthorizationCode | None:
        rows = self._db.query(f"SELECT {_CODES.columns} FROM authorization_codes WHERE code_id = ? AND expires_at > ?",
                              (code_id, now_ms() - int(domain.CODE_REPLAY_MEMORY.total_seconds() * 1000)))
        return _CODES.row(rows[0]) if rows else None

    def mark_authorization_code_used(self, code_id: str) -> bool:
        return self._db.execute("UPDATE authorization_codes SET used = 1 WHERE code_id = ? AND used = 0",
                                (code_id,)) == 1

    # refresh tokens -----------------------------------------------------------------------------

    def add_refresh_token(self, token: domain.RefreshToken) -> None:
        self._db.execute(_REFRESH_TOKENS.insert(), _REFRESH_TOKENS.values(token))

    def get_refresh_token(self, token_id: str) -> domain.RefreshToken | None:
        rows = self._db.query(f"SELECT {_REFRESH_TOKENS.columns} FROM refresh_tokens WHERE token_id = ? AND expires_at > ?",
                              (token_id, now_ms()))
        return _REFRESH_TOKENS.row(rows[0]) if rows else None

    def mark_refresh_token_used(self, token_id: str) -> bool:
        return self._db.execute("UPDATE refresh_tokens SET used = 1 WHERE token_id = ? AND used = 0 AND expires_at > ?",
                                (token_id, now_ms())) == 1

    def revoke_family(self, family_id: str, expires_at: datetime) -> None:
        with self._db.transaction() as conn:
            conn.execute("INSERT OR REPLACE INTO revoked_families VALUES (?, ?)", (family_id, to_ms(expires_at)))
            # Expired rows are dropped here, so neither table grows without bound.
            conn.execute("DELETE FROM revoked_families WHERE expires_at < ?", (now_ms(),))
            conn.execute("DELETE FROM refresh_tokens WHERE expires_at < ?", (now_ms(),))

    def is_family_revoked(self, family_id: str) -> bool:
        return bool(self._db.query("SELECT 1 FROM revoked_families WHERE family_id = ?", (family_id,)))

    def revoke_subject_tokens(self, subject: str) -> None:
        # One statement, so every family is revoked or none is; each kept until its last token expires.
        self._db.execute("INSERT OR REPLACE INTO revoked_families (family_id, expires_at) "
                         "SELECT family_id, MAX(expires_at) FROM refresh_tokens WHERE subject = ? GROUP BY family_id",
                         (subject,))

    # signing keys -------------------------------------------------------------------------------

    def add_signing_key(self, key: domain.SigningKey) -> None:
        self._db.execute("INSERT INTO signing_keys VALUES (?,?,?,?)",
                         (key.kid, key.private_pem, to_ms(key.created_at), to_ms(key.retired_at)))

    def list_signing_keys(self) -> list[domain.SigningKey]:
        rows = self._db.query("SELECT * FROM signing_keys ORDER BY created_at DESC, kid")
        return [domain.SigningKey(kid=r["kid"], private_pem=bytes(r["private_pem"]), created_at=from_ms(r["created_at"]),
                           retired_at=from_ms_or_none(r["retired_at"])) for r in rows]

    def retire_signing_key(self, kid: str, retired_at: datetime) -> None:
        self._db.execute("UPDATE signing_keys SET retired_at = ? WHERE kid = ?", (to_ms(retired_at), kid))
