"""Account use cases: the domain rules applied against the store.

The servicer calls these and translates; nothing here knows gRPC.
"""

from __future__ import annotations

import dataclasses
import uuid
from typing import Callable

from services.accounts import domain
from services.common.ids import parse_uuid
from services.common.paging import bad_page_token, page_size
from services.accounts.domain import Account, InvalidArgument, NotFound
from services.accounts.store.base import AccountStore, DuplicateKey, InvalidPageToken

class WrongPassword(InvalidArgument):
    reason = "WRONG_PASSWORD"

    def __init__(self):
        super().__init__([("current_password", "does not match")])


class AccountsService:
    def __init__(self, store: AccountStore, hasher: domain.PasswordHasher, clock: Callable = domain.utcnow):
        self._store = store
        self._hasher = hasher
        self._clock = clock

    def register(self, username: str, email: str, password: str, profile: dict[str, str], roles=("customer",)) -> Account:
        problems = domain.registration_problems(username, email, password, profile)
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

    def update_profile(self, account_id: str, changes: dict[str, str], paths: list[str]) -> Account:
        account = domain.apply_profile_changes(self.get(account_id), changes, paths, self._clock())
        self._store.save_account(account)
        return account

    def authenticate(self, username: str, password: str) -> Account:
        """The account whose password this is; throttles repeated failures per account."""
        account = self._store.find_account_by_username(username) if username else None
        now = self._clock()
        if account is not None:
            domain.check_not_locked(account, now)
        # verify() does the full work even for an unknown username, so timing reveals nothing.
        if not self._hasher.verify(password, account.password_hash if account else None):
            if account is not None:
                self._store.save_account(domain.after_failed_login(account, now))
            raise domain.InvalidCredentials("invalid username or password")
        if not account.active:
            raise domain.AccountInactive("account is deactivated")
        if account.failed_logins:
            account = domain.after_successful_login(account)
            self._store.save_account(account)
        return account

    def change_password(self, account_id: str, current: str, new: str) -> None:
        account = self.get(account_id)
        now = self._clock()
        domain.check_not_locked(account, now)
        if not self._hasher.verify(current, account.password_hash):
            self._store.save_account(domain.after_failed_login(account, now))
            raise WrongPassword()
        problems = domain.password_problems(new, username=account.username, email=account.email, field_name="new_password")
        if problems:
            raise InvalidArgument(problems)
        self._store.save_account(dataclasses.replace(
            domain.after_successful_login(account), password_hash=self._hasher.hash(new), updated_at=now))
        # A password change ends every session that the old password opened.
        self._store.revoke_subject_tokens(account.id)

    def deactivate(self, account_id: str) -> Account:
        """Idempotent: deactivating a deactivated account returns it unchanged."""
        account = self.get(account_id)
        if account.active:
            account = dataclasses.replace(account, state=domain.DEACTIVATED, updated_at=self._clock())
            self._store.save_account(account)
        self._store.revoke_subject_tokens(account.id)
        return account

    def list(self, size: int, page_token: str) -> tuple[list[Account], str | None]:
        try:
            return self._store.list_accounts(page_size(size), page_token or None)
        except InvalidPageToken:
            raise bad_page_token() from None
