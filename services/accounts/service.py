"""Account use cases: the domain rules applied against the store.

The servicer calls these and translates; nothing here knows gRPC.
"""

from __future__ import annotations

import dataclasses
import threading
import time
import uuid
from collections.abc import Callable

from services.accounts import domain
from services.common.ids import parse_uuid
from services.common.paging import bad_page_token, page_size
from services.accounts.domain import Account, InvalidArgument, NotFound
from services.accounts.store.base import AccountStore, DuplicateKey, InvalidPageToken


class WrongPassword(domain.AccountError):
    """The current password given to change it is not the account's: the caller holds a token but
    not the password, so this is a refusal (403), not a malformed request."""

    reason = "WRONG_PASSWORD"

    def __init__(self):
        super().__init__("current_password does not match", [("current_password", "does not match")])


class _RecentlyActive:
    """Accounts seen active in the last `ttl` seconds (an id set with expiry times, bounded)."""

    def __init__(self, ttl: float, size: int = 100_000, clock: Callable[[], float] = time.monotonic):
        self._ttl, self._size, self._clock = ttl, size, clock
        self._until: dict[str, float] = {}
        self._lock = threading.Lock()

    def __contains__(self, account_id: str) -> bool:
        return self._until.get(account_id, 0.0) > self._clock()

    def add(self, account_id: str) -> None:
        if self._ttl <= 0:
            return
        with self._lock:
            now = self._clock()
            if len(self._until) >= self._size:  # full: keep what has not expired, or start over
                self._until = {k: v for k, v in self._until.items() if v > now}
                if len(self._until) >= self._size:
                    self._until.clear()
            self._until[account_id] = now + self._ttl

    def forget(self, account_id: str) -> None:
        with self._lock:
            self._until.pop(account_id, None)


class AccountsService:
    def __init__(self, store: AccountStore, hasher: domain.PasswordHasher, clock: Callable = domain.utcnow,
                 active_ttl: float = 0.0):
        self._store = store
        self._hasher = hasher
        self._clock = clock
        # "Is this token's account still active?" is asked on every call; a yes is trusted for active_ttl
        # seconds. A deactivation here forgets it at once; other replicas learn it within active_ttl.
        self._recently_active = _RecentlyActive(active_ttl)

    def register(self, username: str, email: str, password: str, profile: dict[str, str], roles=("customer",)) -> Account:
        problems = domain.registration_problems(username, email, password)
        if problems:
            raise InvalidArgument(problems)
        now = self._clock()
        account = Account(
            id=str(uuid.uuid4()), username=username.strip(), email=email.strip(),
            password_hash=self._hasher.hash(password), created_at=now, updated_at=now,
            display_name=profile.get("display_name", ""), bio=profile.get("bio", ""),
            locale=profile.get("locale", ""), roles=tuple(roles),
        )
        try:
            self._store.create_account(account)
        except DuplicateKey as taken:
            raise domain.AlreadyExists(f"{taken.field} is already registered", violations=[(taken.field, "is already registered")]) from None
        return account

    def get(self, account_id: str) -> Account:
        account = self._store.get_account(parse_uuid(account_id))
        if account is None:
            raise NotFound(f"account {account_id} does not exist")
        return account

    def is_active(self, account_id: str) -> bool:
        """Whether the account exists and is active (False for a malformed id too)."""
        if account_id in self._recently_active:
            return True
        try:
            active = self.get(account_id).active
        except (NotFound, InvalidArgument):
            return False
        if active:
            self._recently_active.add(account_id)
        return active

    def update_profile(self, account_id: str, changes: dict[str, str], paths: list[str]) -> Account:
        account = self._active(account_id)
        account = domain.apply_profile_changes(account, changes, paths, self._clock())
        self._store.save_account(account)
        return account

    def authenticate(self, username: str, password: str) -> Account:
        """The account whose password this is. Every attempt is throttled per username, whether
        or not an account has it, and does the same work either way (one throttle count, then one
        lookup and one full hash unless locked), so neither answers nor timing tell which names exist."""
        # Counted before the lookup, so while the name is locked no name costs more than another.
        key = self._count_attempt(username)
        account = self._store.find_account_by_username(username) if username else None
        if not self._check_password(key, password, account):
            raise domain.InvalidCredentials("invalid username or password")
        if not account.active:
            raise domain.AccountInactive("account is deactivated")
        return account

    def change_password(self, account_id: str, current: str, new: str) -> None:
        account = self._active(account_id)
        # The same throttle as sign-in: a stolen access token must not become a password oracle.
        if not self._check_password(self._count_attempt(account.username), current, account):
            raise WrongPassword()
        problems = domain.password_problems(new, username=account.username, email=account.email, field_name="new_password")
        if problems:
            raise InvalidArgument(problems)
        self._store.save_account(dataclasses.replace(account, password_hash=self._hasher.hash(new), updated_at=self._clock()))
        # A password change ends every session that the old password opened.
        self._store.revoke_subject_tokens(account.id)

    def _count_attempt(self, username: str) -> str:
        """Counts a password attempt on the username's throttle and returns its key (LockedOut while locked)."""
        key = domain.sign_in_key(username)
        self._store.count_sign_in_attempt(key, self._clock())
        return key

    def _check_password(self, key: str, password: str, account: Account | None) -> bool:
        """Whether the password is the account's, with the same hash work when there is no account;
        a match clears the count of the throttle `key`."""
        if not self._hasher.verify(password, account.password_hash if account else None):
            return False
        self._store.clear_sign_in_attempts(key)
        return True

    def _active(self, account_id: str) -> Account:
        """The account, refusing a deactivated one: nobody acts on it any more (it can still be read)."""
        account = self.get(account_id)
        if not account.active:
            raise domain.AccountInactive(f"account {account_id} is deactivated")
        return account

    def deactivate(self, account_id: str) -> Account:
        """Idempotent: deactivating a deactivated account returns it unchanged."""
        account = self.get(account_id)
        self._recently_active.forget(account.id)
        if account.active:
            account = dataclasses.replace(account, state=domain.DEACTIVATED, updated_at=self._clock())
            self._store.save_account(account)
        self._recently_active.forget(account.id)  # and once more, should a check have slipped in between
        self._store.revoke_subject_tokens(account.id)
        return account

    def list(self, size: int, page_token: str) -> tuple[list[Account], str | None]:
        try:
            return self._store.list_accounts(page_size(size), page_token or None)
        except InvalidPageToken:
            raise bad_page_token() from None
