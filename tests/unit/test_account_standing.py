"""Account standing without a network: how long an answer is trusted (an injected clock), which access
tokens ending an account's sessions refuses, and who may not be deactivated."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import jwt
import pytest

from runtime.standing import AccountStandings, Standing, StandingUnavailable
from services.accounts.domain import AdminLockout, PasswordHasher
from services.accounts.oauth import AuthorizationServer, TokenSettings
from services.accounts.service import AccountsService
from services.accounts.store.sqlite import SqliteAccountStore

PASSWORD = "correct horse battery"
WINDOW = 5.0


class Ticks:
    """A monotonic clock that moves only when told."""

    def __init__(self):
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


class Source:
    """A standing source that counts the questions it is asked."""

    def __init__(self, standing: Standing | None = None):
        self.standing = Standing(active=True) if standing is None else standing
        self.asked = 0
        self.down = False  # accounts does not answer
        self.during: list = []  # run while answering, as a change racing the read would

    def __call__(self, account_id: str) -> Standing | None:
        self.asked += 1
        if self.down:
            raise StandingUnavailable("accounts is down")
        for action in self.during:
            action()
        return None if account_id == "nobody" else self.standing


def test_an_answer_is_trusted_for_the_window_and_asked_again_after_it():
    source, ticks = Source(), Ticks()
    standings = AccountStandings(source, WINDOW, clock=ticks)
    assert standings.get("a") == Standing(active=True)
    source.standing = Standing(active=False)
    ticks.now += WINDOW - 0.01
    assert standings.get("a") == Standing(active=True) and source.asked == 1
    ticks.now += 0.02
    assert standings.get("a") == Standing(active=False) and source.asked == 2


def test_an_unknown_account_is_remembered_too_and_a_failure_is_not():
    source, ticks = Source(), Ticks()
    standings = AccountStandings(source, WINDOW, clock=ticks)
    assert standings.get("nobody") is None and standings.get("nobody") is None
    assert source.asked == 1
    source.down = True
    with pytest.raises(StandingUnavailable):
        standings.get("a")
    source.down = False  # accounts is back: the next check asks it
    assert standings.get("a") == Standing(active=True) and source.asked == 3


def test_forgetting_an_account_asks_again_at_once():
    source = Source()
    standings = AccountStandings(source, WINDOW, clock=Ticks())
    standings.get("a")
    source.standing = Standing(active=False)
    standings.forget("a")
    assert standings.get("a") == Standing(active=False) and source.asked == 2


def test_an_answer_read_while_the_account_changes_is_not_kept():
    source = Source()
    standings = AccountStandings(source, WINDOW, clock=Ticks())
    source.during = [lambda: standings.forget("a")]  # deactivated while its old standing was being read
    assert standings.get("a") == Standing(active=True)
    source.during = []
    source.standing = Standing(active=False)
    assert standings.get("a") == Standing(active=False)


def test_at_most_size_accounts_are_remembered_the_least_recently_asked_going_first():
    source = Source()
    standings = AccountStandings(source, WINDOW, size=2, clock=Ticks())
    for account in ("a", "b", "a", "c"):  # "b" is the least recently asked when "c" arrives
        standings.get(account)
    assert source.asked == 3
    standings.get("a")
    assert source.asked == 3
    standings.get("b")
    assert source.asked == 4


def test_a_window_of_zero_asks_on_every_call():
    source = Source()
    standings = AccountStandings(source, 0.0, clock=Ticks())
    standings.get("a")
    standings.get("a")
    assert source.asked == 2


# --- ending sessions, against the embedded store -------------------------------------------------

class WallClock:
    """The accounts service's clock (UTC datetimes), set by the test."""

    def __init__(self, now: datetime):
        self.now = now

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def shop(tmp_path):
    clock = WallClock(datetime(2030, 1, 1, 12, 0, 0, 200_000, tzinfo=UTC))
    store = SqliteAccountStore.open(str(tmp_path / "accounts.sqlite3"))
    accounts = AccountsService(store, PasswordHasher(n=2**10), clock=clock)
    oauth = AuthorizationServer(store, accounts, TokenSettings(issuer="https://i", audience="a", password_grant=True),
                                clock=clock)
    yield accounts, oauth, clock, store
    store.close()


def _issued_at(oauth: AuthorizationServer, username: str) -> int:
    token = oauth.issue("password", username=username, password=PASSWORD).access_token
    return jwt.decode(token, options={"verify_signature": False})["iat"]


@pytest.mark.parametrize("end", ["sign_out_everywhere", "change_password", "deactivate_and_reactivate"])
def test_ending_sessions_refuses_every_token_issued_until_then_and_none_issued_after(shop, end):
    accounts, oauth, clock, _store = shop
    account = accounts.register("ada", "ada@example.com", PASSWORD, {})
    password = PASSWORD
    before = _issued_at(oauth, "ada")
    clock.now += timedelta(milliseconds=500)  # the same second: the earlier token's iat equals this second
    if end == "sign_out_everywhere":
        accounts.sign_out_everywhere(account.id)
    elif end == "change_password":
        accounts.change_password(account.id, PASSWORD, password := "another long passphrase")
    else:
        accounts.deactivate(account.id, actor=account.id)
        accounts.reactivate(account.id)
    standing = Standing(True, accounts.get(account.id).tokens_valid_after)
    assert standing.refuses_issued_at(before)
    clock.now += timedelta(milliseconds=100)  # still the same second
    after = oauth.issue("password", username="ada", password=password).access_token
    claims = jwt.decode(after, options={"verify_signature": False})
    assert not standing.refuses_issued_at(claims["iat"])
    assert claims["iat"] - clock.now.timestamp() < 1 and claims["nbf"] <= clock.now.timestamp()


def test_a_profile_saved_from_an_earlier_read_does_not_undo_ended_sessions(shop):
    accounts, _oauth, _clock, store = shop
    account = accounts.register("bob", "bob@example.com", PASSWORD, {})
    accounts.sign_out_everywhere(account.id)
    store.save_account(account)  # as an update that read the account before the sign-out would
    assert accounts.get(account.id).tokens_valid_after > 0


# --- administrators cannot lock themselves out ---------------------------------------------------

def _admin(accounts: AccountsService, name: str):
    return accounts.register(name, f"{name}@example.com", PASSWORD, {}, roles=("admin",))


def test_an_administrator_cannot_deactivate_its_own_account(shop):
    accounts, _oauth, _clock, _store = shop
    first, second = _admin(accounts, "first"), _admin(accounts, "second")
    with pytest.raises(AdminLockout, match="own account"):
        accounts.deactivate(first.id, actor=first.id)
    assert accounts.get(first.id).active
    assert not accounts.deactivate(first.id, actor=second.id).active


def test_the_last_active_administrator_cannot_be_deactivated_by_anyone(shop):
    accounts, _oauth, _clock, _store = shop
    first, second = _admin(accounts, "first"), _admin(accounts, "second")
    for n in range(3):  # customers do not count, however many
        accounts.register(f"customer{n}", f"customer{n}@example.com", PASSWORD, {})
    accounts.deactivate(second.id, actor=first.id)
    with pytest.raises(AdminLockout, match="last active administrator"):
        accounts.deactivate(first.id, actor="client-with-accounts-admin")
    assert accounts.get(first.id).active
    accounts.reactivate(second.id)
    assert not accounts.deactivate(first.id, actor="client-with-accounts-admin").active


def test_a_customer_may_still_deactivate_its_own_account(shop):
    accounts, _oauth, _clock, _store = shop
    customer = accounts.register("carol", "carol@example.com", PASSWORD, {})
    assert not accounts.deactivate(customer.id, actor=customer.id).active
