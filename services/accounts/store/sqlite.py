"""Embedded adapter of the accounts store: SQLite from the standard library.

Uniqueness lives in UNIQUE constraints on the case-folded username and email, so two
concurrent registrations cannot both pass; everything a use case writes together is
written in one transaction. Creating the same account or client again (a retried write)
is a no-op, as on Cassandra.
"""

from __future__ import annotations

import json
import sqlite3
from datetime import datetime

from runtime.sqlite import SqliteStore, Transaction, from_ms, from_ms_or_none, now_ms, to_ms
from services.accounts.domain import (
    CODE_REPLAY_MEMORY,
    THROTTLE_MEMORY,
    Account,
    AuthorizationCode,
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
)

_SCHEMA = [
    """CREATE TABLE IF NOT EXISTS accounts (
        id TEXT PRIMARY KEY, username TEXT NOT NULL, username_key TEXT NOT NULL UNIQUE,
        email TEXT NOT NULL, email_key TEXT NOT NULL UNIQUE, password_hash TEXT NOT NULL,
        display_name TEXT NOT NULL, bio TEXT NOT NULL, locale TEXT NOT NULL, state TEXT NOT NULL,
        roles TEXT NOT NULL, created_at INTEGER NOT NULL, updated_at INTEGER NOT NULL,
        tokens_valid_after INTEGER NOT NULL DEFAULT 0)""",
    """CREATE TABLE IF NOT EXISTS sign_in_throttles (
        name_key TEXT PRIMARY KEY, attempts INTEGER NOT NULL, locked_until INTEGER, last_attempt_at INTEGER NOT NULL)""",
    "CREATE INDEX IF NOT EXISTS sign_in_throttles_by_age ON sign_in_throttles (last_attempt_at)",
    """CREATE TABLE IF NOT EXISTS oauth_clients (
        client_id TEXT PRIMARY KEY, name TEXT NOT NULL, secret_hash TEXT NOT NULL,
        scopes TEXT NOT NULL, created_at INTEGER NOT NULL, redirect_uris TEXT NOT NULL DEFAULT '[]')""",
    """CREATE TABLE IF NOT EXISTS authorization_codes (
        code_id TEXT PRIMARY KEY, secret_hash TEXT NOT NULL, client_id TEXT NOT NULL, redirect_uri TEXT NOT NULL,
        subject TEXT NOT NULL, scope TEXT NOT NULL, code_challenge TEXT NOT NULL, family_id TEXT NOT NULL,
        expires_at INTEGER NOT NULL, used INTEGER NOT NULL)""",
    """CREATE TABLE IF NOT EXISTS refresh_tokens (
        token_id TEXT PRIMARY KEY, family_id TEXT NOT NULL, subject TEXT NOT NULL, client_id TEXT NOT NULL,
        scope TEXT NOT NULL, secret_hash TEXT NOT NULL, expires_at INTEGER NOT NULL, used INTEGER NOT NULL)""",
    "CREATE INDEX IF NOT EXISTS refresh_tokens_by_subject ON refresh_tokens (subject)",
    """CREATE TABLE IF NOT EXISTS revoked_families (family_id TEXT PRIMARY KEY, expires_at INTEGER NOT NULL)""",
    """CREATE TABLE IF NOT EXISTS signing_keys (
        kid TEXT PRIMARY KEY, private_pem BLOB NOT NULL, created_at INTEGER NOT NULL, retired_at INTEGER)""",
]
_ACCOUNT_COLUMNS = ("id, username, username_key, email, email_key, password_hash, display_name, bio, locale, "
                    "state, roles, created_at, updated_at, tokens_valid_after")
# Columns of an older schema (sign-in counters lived on the account); dropped from existing files at open.
_LEGACY_ACCOUNT_COLUMNS = ("failed_logins", "locked_until")
# Columns added since a table was first created (table, column, definition); added to existing files at open.
_ADDED_COLUMNS = (("oauth_clients", "redirect_uris", "TEXT NOT NULL DEFAULT '[]'"),
                  ("accounts", "tokens_valid_after", "INTEGER NOT NULL DEFAULT 0"))


def _holder(conn: Transaction, key_column: str, key: str) -> str | None:
    """Id of the account holding a unique key (username_key or email_key), if any."""
    row = conn.execute(f"SELECT id FROM accounts WHERE {key_column} = ?", (key,)).fetchone()
    return row["id"] if row else None


def _account(row: sqlite3.Row) -> Account:
    return Account(
        id=row["id"], username=row["username"], email=row["email"], password_hash=row["password_hash"],
        created_at=from_ms(row["created_at"]), updated_at=from_ms(row["updated_at"]), display_name=row["display_name"],
        bio=row["bio"], locale=row["locale"], state=row["state"], roles=tuple(json.loads(row["roles"])),
        tokens_valid_after=row["tokens_valid_after"],
    )


class SqliteAccountStore(SqliteStore, AccountStore):
    SCHEMA = _SCHEMA

    @classmethod
    def open(cls, path: str):
        store = super().open(path)
        with store._db.transaction() as conn:
            present = {row["name"] for row in conn.execute("PRAGMA table_info(accounts)")}
            for column in _LEGACY_ACCOUNT_COLUMNS:
                if column in present:
                    conn.execute(f"ALTER TABLE accounts DROP COLUMN {column}")
            for table, column, definition in _ADDED_COLUMNS:
                if column not in {row["name"] for row in conn.execute(f"PRAGMA table_info({table})")}:
                    conn.execute(f"ALTER TABLE {table} ADD COLUMN {column} {definition}")
        return store

    # accounts ----------------------------------------------------------------------------------

    def create_account(self, account: Account) -> None:
        a = account
        with self._db.transaction() as conn:
            try:
                conn.execute(
                    f"INSERT INTO accounts ({_ACCOUNT_COLUMNS}) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
                    (a.id, a.username, a.username_key, a.email, a.email_key, a.password_hash, a.display_name, a.bio,
                     a.locale, a.state, json.dumps(list(a.roles)), to_ms(a.created_at), to_ms(a.updated_at),
                     a.tokens_valid_after))
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

    def get_account(self, account_id: str) -> Account | None:
        rows = self._db.query(f"SELECT {_ACCOUNT_COLUMNS} FROM accounts WHERE id = ?", (account_id,))
        return _account(rows[0]) if rows else None

    def find_account_by_username(self, username: str) -> Account | None:
        rows = self._db.query(f"SELECT {_ACCOUNT_COLUMNS} FROM accounts WHERE username_key = ?",
                              (username_key(username),))
        return _account(rows[0]) if rows else None

    def save_account(self, account: Account) -> None:
        a = account
        self._db.execute(
            "UPDATE accounts SET password_hash=?, display_name=?, bio=?, locale=?, state=?, roles=?, updated_at=? "
            "WHERE id=?",
            (a.password_hash, a.display_name, a.bio, a.locale, a.state, json.dumps(list(a.roles)),
             to_ms(a.updated_at), a.id))

    def end_sessions(self, account_id: str, tokens_valid_after: int) -> None:
        self._db.execute("UPDATE accounts SET tokens_valid_after = MAX(tokens_valid_after, ?) WHERE id = ?",
                         (tokens_valid_after, account_id))

    def list_accounts(self, page_size: int, page_token: str | None) -> tuple[list[Account], str | None]:
        after = decode_page_token(page_token) if page_token else ""
        rows = self._db.query(f"SELECT {_ACCOUNT_COLUMNS} FROM accounts WHERE id > ? ORDER BY id LIMIT ?",
                              (after, page_size + 1))
        page = [_account(r) for r in rows[:page_size]]
        return page, encode_page_token(page[-1].id) if len(rows) > page_size else None

    # sign-in throttling -----------------------------------------------------------------------

    def count_sign_in_attempt(self, key: str, now: datetime) -> SignInThrottle:
        # One IMMEDIATE transaction: no other writer, in this process or another, runs between
        # the read and the write. LockedOut raised by the rule rolls it back.
        with self._db.transaction() as conn:
            conn.execute("DELETE FROM sign_in_throttles WHERE last_attempt_at < ?", (to_ms(now - THROTTLE_MEMORY),))
            row = conn.execute("SELECT * FROM sign_in_throttles WHERE name_key = ?", (key,)).fetchone()
            current = SignInThrottle(key) if row is None else SignInThrottle(
                key, row["attempts"], from_ms_or_none(row["locked_until"]), from_ms_or_none(row["last_attempt_at"]))
            counted = next_attempt(current, now)
            conn.execute("INSERT OR REPLACE INTO sign_in_throttles VALUES (?, ?, ?, ?)",
                         (key, counted.attempts, to_ms(counted.locked_until), to_ms(counted.last_attempt_at)))
        return counted

    def clear_sign_in_attempts(self, key: str) -> None:
        self._db.execute("DELETE FROM sign_in_throttles WHERE name_key = ?", (key,))

    # OAuth2 clients -----------------------------------------------------------------------------

    def create_client(self, client: OAuthClient) -> None:
        with self._db.transaction() as conn:
            try:
                conn.execute("INSERT INTO oauth_clients (client_id, name, secret_hash, scopes, created_at, redirect_uris) "
                             "VALUES (?,?,?,?,?,?)", (
                                 client.client_id, client.name, client.secret_hash, json.dumps(list(client.scopes)),
                                 to_ms(client.created_at), json.dumps(list(client.redirect_uris))))
            except sqlite3.IntegrityError:
                # Its secret hash, name and redirect URIs identify a client: the same again is a retry, not a clash.
                existing = conn.execute("SELECT secret_hash, name, redirect_uris FROM oauth_clients WHERE client_id = ?",
                                        (client.client_id,)).fetchone()
                if existing is None or (existing["secret_hash"], existing["name"], existing["redirect_uris"]) != (
                        client.secret_hash, client.name, json.dumps(list(client.redirect_uris))):
                    raise DuplicateKey("client_id") from None

    def get_client(self, client_id: str) -> OAuthClient | None:
        rows = self._db.query("SELECT * FROM oauth_clients WHERE client_id = ?", (client_id,))
        if not rows:
            return None
        r = rows[0]
        return OAuthClient(client_id=r["client_id"], name=r["name"], secret_hash=r["secret_hash"],
                           scopes=tuple(json.loads(r["scopes"])), created_at=from_ms(r["created_at"]),
                           redirect_uris=tuple(json.loads(r["redirect_uris"])))

    # authorization codes ------------------------------------------------------------------------

    def add_authorization_code(self, code: AuthorizationCode) -> None:
        c = code
        with self._db.transaction() as conn:
            # Forgotten codes are dropped here, so the table does not grow without bound.
            conn.execute("DELETE FROM authorization_codes WHERE expires_at < ?",
                         (now_ms() - int(CODE_REPLAY_MEMORY.total_seconds() * 1000),))
            conn.execute("INSERT INTO authorization_codes VALUES (?,?,?,?,?,?,?,?,?,?)", (
                c.code_id, c.secret_hash, c.client_id, c.redirect_uri, c.subject, c.scope, c.code_challenge,
                c.family_id, to_ms(c.expires_at), int(c.used)))

    def get_authorization_code(self, code_id: str) -> AuthorizationCode | None:
        rows = self._db.query("SELECT * FROM authorization_codes WHERE code_id = ? AND expires_at > ?",
                              (code_id, now_ms() - int(CODE_REPLAY_MEMORY.total_seconds() * 1000)))
        if not rows:
            return None
        r = rows[0]
        return AuthorizationCode(code_id=r["code_id"], secret_hash=r["secret_hash"], client_id=r["client_id"],
                                 redirect_uri=r["redirect_uri"], subject=r["subject"], scope=r["scope"],
                                 code_challenge=r["code_challenge"], family_id=r["family_id"],
                                 expires_at=from_ms(r["expires_at"]), used=bool(r["used"]))

    def mark_authorization_code_used(self, code_id: str) -> bool:
        return self._db.execute("UPDATE authorization_codes SET used = 1 WHERE code_id = ? AND used = 0",
                                (code_id,)) == 1

    # refresh tokens -----------------------------------------------------------------------------

    def add_refresh_token(self, token: RefreshToken) -> None:
        t = token
        self._db.execute("INSERT INTO refresh_tokens VALUES (?,?,?,?,?,?,?,?)", (
            t.token_id, t.family_id, t.subject, t.client_id, t.scope, t.secret_hash, to_ms(t.expires_at), int(t.used)))

    def get_refresh_token(self, token_id: str) -> RefreshToken | None:
        rows = self._db.query("SELECT * FROM refresh_tokens WHERE token_id = ? AND expires_at > ?",
                              (token_id, now_ms()))
        if not rows:
            return None
        r = rows[0]
        return RefreshToken(token_id=r["token_id"], family_id=r["family_id"], subject=r["subject"],
                            client_id=r["client_id"], scope=r["scope"], secret_hash=r["secret_hash"],
                            expires_at=from_ms(r["expires_at"]), used=bool(r["used"]))

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

    def add_signing_key(self, key: SigningKey) -> None:
        self._db.execute("INSERT INTO signing_keys VALUES (?,?,?,?)",
                         (key.kid, key.private_pem, to_ms(key.created_at), to_ms(key.retired_at)))

    def list_signing_keys(self) -> list[SigningKey]:
        rows = self._db.query("SELECT * FROM signing_keys ORDER BY created_at DESC, kid")
        return [SigningKey(kid=r["kid"], private_pem=bytes(r["private_pem"]), created_at=from_ms(r["created_at"]),
                           retired_at=from_ms_or_none(r["retired_at"])) for r in rows]

    def retire_signing_key(self, kid: str, retired_at: datetime) -> None:
        self._db.execute("UPDATE signing_keys SET retired_at = ? WHERE kid = ?", (to_ms(retired_at), kid))
