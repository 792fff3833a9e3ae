"""Account use cases: the domain rules applied against the store.

The servicer calls these and translates; nothing here knows gRPC.
"""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import Callable

from services.accounts import domain
from services.accounts.domain import Account, InvalidArgument, NotFound
from services.accounts.store.base import AccountStore, DuplicateKey, InvalidPageToken
from services.common.ids import parse_uuid
from services.common.paging import bad_page_token, page_size


class WrongPassword(domain.AccountError):
    """The current password given to change it is not the account's: the caller holds a token but
    not the password, so this is a refusal (403), not a malformed request."""

    reason = "WRONG_PASSWORD"

    def __init__(self):
        super().__init__("current_password does not match", [("current_password", "does not match")])


# Accounts read per page while looking for another active administrator.
_ADMIN_SCAN_PAGE = 100


class AccountsService:
    """`standing_changed(account_id)` is told after every change of what the account's tokens may do
    (deactivation, reactivation, ended sessions), so this replica's cached standing is dropped at once."""

    def __init__(self, store: AccountStore, hasher: domain.PasswordHasher, clock: Callable = domain.utcnow,
                 standing_changed: Callable[[str], None] = lambda account_id: None):
        self._store = store
        self._hasher = hasher
        self._clock = clock
        self._standing_changed = standing_changed

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
        if not self._check_password(key, password, account) or account is None:  # no account never matches
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
        self._end_sessions(account.id)

    def sign_out_everywhere(self, account_id: str) -> None:
        """Ends every session of an active account: its refresh tokens, and its access tokens issued until now."""
        self._end_sessions(self._active(account_id).id)

    def _end_sessions(self, account_id: str) -> None:
        """Revokes the account's refresh tokens and refuses its access tokens issued until now."""
        self._store.end_sessions(account_id, domain.tokens_cutoff(self._clock()))
        self._store.revoke_subject_tokens(account_id)
        self._standing_changed(account_id)

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

    def deactivate(self, account_id: str, actor: str) -> Account:
        """Deactivates the account for `actor` (the caller's subject) and ends its sessions, so that a
        reactivation does not bring back tokens issued before. AdminLockout for an administrator's own
        account or the last active administrator. Idempotent: a deactivated account is returned unchanged."""
        account = self.get(account_id)
        if account.active:
            problem = domain.deactivation_problem(account, actor, lambda: self._other_active_admin(account.id, actor))
            if problem:
                raise domain.AdminLockout(problem)
            account = dataclasses.replace(account, state=domain.DEACTIVATED, updated_at=self._clock())
            self._store.save_account(account)
        self._end_sessions(account.id)
        return account

    def reactivate(self, account_id: str) -> Account:
        """Makes the account active again; its ended sessions stay ended. Idempotent."""
        account = self.get(account_id)
        if not account.active:
            account = dataclasses.replace(account, state=domain.ACTIVE, updated_at=self._clock())
            self._store.save_account(account)
            self._standing_changed(account.id)
        return account

    def _other_active_admin(self, account_id: str, actor: str) -> bool:
        """Whether an active administrator other than `account_id` exists. Usually the actor is one (one
        read); otherwise (a client with accounts.admin) accounts are read page by page until one is found,
        all of them only when there is none: a rare administrative act, not worth an index of roles."""
        caller = self._store.get_account(actor) if actor and actor != account_id else None
        if caller is not None and caller.is_admin and caller.active:
            return True
        page_token = None
        while True:
            page, page_token = self._store.list_accounts(_ADMIN_SCAN_PAGE, page_token)
            if any(a.is_admin and a.active and a.id != account_id for a in page):
                return True
            if page_token is None:
                return False

    def list(self, size: int, page_token: str) -> tuple[list[Account], str | None]:
        try:
            return self._store.list_accounts(page_size(size), page_token or None)
        except InvalidPageToken:
            raise bad_page_token() from None
