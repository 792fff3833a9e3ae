"""Sign-in does the same work and gives the same answers whether or not the username exists.

The use case runs on the real embedded store and the real scrypt hasher; only counting is added
around them, so the test sees how many hashes and which store operations each attempt costs.
"""

from datetime import timedelta

import pytest

from services.accounts import domain
from services.accounts.service import AccountsService
from services.accounts.store.sqlite import SqliteAccountStore

PASSWORD = "correct horse battery"
ATTEMPTS = domain.MAX_FAILED_LOGINS + 2


class CountingHasher(domain.PasswordHasher):
    """The real scrypt hasher, counting its key derivations."""

    derivations = 0

    def derive(self, password, salt, n, r, p):
        self.derivations += 1
        return domain.PasswordHasher.derive(password, salt, n, r, p)


class RecordingStore:
    """The real store, recording the name of every operation asked of it."""

    def __init__(self, store):
        self._store = store
        self.operations: list[str] = []

    def __getattr__(self, name):
        operation = getattr(self._store, name)

        def recorded(*args, **kwargs):
            self.operations.append(name)
            return operation(*args, **kwargs)

        return recorded


def _wrong_passwords(tmp_path, username: str, register: bool):
    store = RecordingStore(SqliteAccountStore.open(str(tmp_path / f"{username}.sqlite3")))
    hasher = CountingHasher(n=2**10)
    now = domain.utcnow()
    accounts = AccountsService(store, hasher, clock=lambda: now)  # one instant: retry delays compare equal
    if register:
        accounts.register("ada", "ada@example.com", PASSWORD, {})
    hasher.derivations = 0
    answers, operations = [], []
    for _ in range(ATTEMPTS):
        store.operations = []
        try:
            accounts.authenticate(username, "wrong password!!")
        except domain.AccountError as error:
            answers.append((type(error).__name__, error.reason, str(error), getattr(error, "retry_after", None)))
        operations.append(store.operations)
    return answers, hasher.derivations, operations


def test_unknown_and_real_usernames_get_the_same_answers_for_the_same_work(tmp_path):
    real = _wrong_passwords(tmp_path, "ada", register=True)
    unknown = _wrong_passwords(tmp_path, "nobody", register=False)
    answers, derivations, operations = real
    assert [a[0] for a in answers] == ["InvalidCredentials"] * domain.MAX_FAILED_LOGINS + ["LockedOut"] * 2
    assert answers == unknown[0]
    # One full scrypt per checked attempt (none while locked), and the same store operations in order;
    # while locked, nothing but the count (no lookup that could take longer for a real name).
    assert derivations == unknown[1] == domain.MAX_FAILED_LOGINS
    assert operations == unknown[2]
    assert operations[-2:] == [["count_sign_in_attempt"]] * 2


def test_a_correct_password_clears_the_count_for_the_next_sign_in(tmp_path):
    store = SqliteAccountStore.open(str(tmp_path / "a.sqlite3"))
    clock = [domain.utcnow()]
    accounts = AccountsService(store, domain.PasswordHasher(n=2**10), clock=lambda: clock[0])
    accounts.register("ada", "ada@example.com", PASSWORD, {})
    for _ in range(2):
        for _ in range(domain.MAX_FAILED_LOGINS - 1):
            with pytest.raises(domain.InvalidCredentials):
                accounts.authenticate("ada", "wrong password!!")
        # The fifth attempt would lock if the earlier success had not started the count over.
        assert accounts.authenticate("ADA", PASSWORD).username == "ada"
        clock[0] += timedelta(seconds=1)
