"""The accounts tables that both adapters keep alike, each written once (runtime/tables.py).

A field added to one of these dataclasses becomes a column in both stores, added to existing
tables when a store opens; only what differs from the field's annotation is declared here. The
claim tables, sign-in throttles, revocations and signing keys are each adapter's own.
"""

from runtime.tables import CASSANDRA_ONLY, SQLITE_ONLY, TEXT, Table, column
from services.accounts.domain import Account, AuthorizationCode, OAuthClient, RefreshToken

ACCOUNTS = Table("accounts", Account, key="id", columns=[
    # SQLite decides uniqueness by constraints on the case-folded names; Cassandra by its claim tables.
    column("username_key", TEXT, stores=SQLITE_ONLY, constraint="UNIQUE", derived=True),
    column("email_key", TEXT, stores=SQLITE_ONLY, constraint="UNIQUE", derived=True),
])
# What save_account never writes: the names and the creation time never change, and tokens_valid_after
# changes only through end_sessions, so saving an account read earlier cannot undo it.
ACCOUNT_NEVER_SAVED = ("username", "email", "created_at", "tokens_valid_after")

OAUTH_CLIENTS = Table("oauth_clients", OAuthClient, key="client_id")

# `used_by`: on Cassandra the compare-and-set that flips `used` names its attempt there, so that a
# repeat after a lost reply recognises its own success. Written and read by those statements alone.
AUTHORIZATION_CODES = Table("authorization_codes", AuthorizationCode, key="code_id",
                            columns=[column("used_by", TEXT, stores=CASSANDRA_ONLY)])
REFRESH_TOKENS = Table("refresh_tokens", RefreshToken, key="token_id",
                       columns=[column("used_by", TEXT, stores=CASSANDRA_ONLY)])
