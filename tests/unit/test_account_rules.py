"""Account rules in the domain: validation, password hashing, sign-in throttling, profile changes."""

from datetime import timedelta

import pytest

from services.accounts import domain
from services.accounts.domain import Account, InvalidArgument, LockedOut, PasswordHasher, utcnow

FAST = PasswordHasher(n=2**10)


def account(**fields) -> Account:
    now = utcnow()
    return Account(id="a", username="ada", email="ada@example.com", password_hash="", created_at=now, updated_at=now, **fields)


def fields_of(problems):
    return {field for field, _ in problems}


@pytest.mark.parametrize("password, expected", [
    ("short", "at least 10 characters"),
    ("password123", "commonly used"),
    ("aaaaaaaaaaaa", "5 different characters"),
    ("my-ada-password", "must not contain the username"),
    ("x" * 129, "at most 128"),
])
def test_weak_passwords_are_rejected_with_the_reason(password, expected):
    problems = domain.password_problems(password, username="ada", email="ada@example.com")
    assert any(expected in description for _, description in problems), problems


def test_a_long_passphrase_is_accepted():
    assert domain.password_problems("correct horse battery", username="ada", email="ada@example.com") == []


@pytest.mark.parametrize("username", ["ab", "1abc", "has space", "a" * 33, "semi;colon"])
def test_invalid_usernames_are_named(username):
    assert "username" in fields_of(domain.registration_problems(username, "x@example.com", "correct horse battery", {}))


@pytest.mark.parametrize("email", ["plain", "a@b", "a b@example.com", "@example.com"])
def test_invalid_emails_are_named(email):
    assert "email" in fields_of(domain.registration_problems("ada", email, "correct horse battery", {}))


def test_profile_limits_are_checked():
    problems = domain.profile_problems({"display_name": "x" * 65, "bio": "y" * 501, "locale": "english!"})
    assert fields_of(problems) == {"profile.display_name", "profile.bio", "profile.locale"}


def test_uniqueness_keys_ignore_case_and_surrounding_space():
    assert domain.username_key(" Ada ") == domain.username_key("ADA") == "ada"
    assert domain.email_key("Ada@Example.COM") == "ada@example.com"


def test_password_hash_round_trip_and_salting():
    first, second = FAST.hash("correct horse battery"), FAST.hash("correct horse battery")
    assert first != second  # a fresh salt each time
    assert FAST.verify("correct horse battery", first) and not FAST.verify("correct horse batterY", first)
    assert "correct horse battery" not in first


def test_default_hash_parameters_are_memory_hard():
    assert PasswordHasher().hash("x").split("$")[1:4] == ["16384", "8", "1"]


@pytest.mark.parametrize("stored", [None, "bcrypt$12$abc", "scrypt$garbage", ""])
def test_unknown_user_or_unreadable_hash_never_verifies(stored):
    assert FAST.verify("anything at all", stored) is False


def test_five_failures_lock_sign_in_and_the_lock_doubles_up_to_a_cap():
    now, current = utcnow(), account()
    for _ in range(4):
        current = domain.after_failed_login(current, now)
    assert current.locked_until is None
    current = domain.after_failed_login(current, now)
    assert current.locked_until == now + timedelta(seconds=30)
    with pytest.raises(LockedOut) as locked:
        domain.check_not_locked(current, now)
    assert 29 < locked.value.retry_after <= 30
    current = domain.after_failed_login(current, now)
    assert current.locked_until == now + timedelta(seconds=60)
    for _ in range(20):
        current = domain.after_failed_login(current, now)
    assert current.locked_until == now + timedelta(minutes=15)
    assert domain.after_successful_login(current).failed_logins == 0


def test_profile_change_with_a_mask_touches_only_the_named_fields():
    before = account(display_name="Old", bio="keep")
    after = domain.apply_profile_changes(before, {"display_name": "New", "bio": "drop"}, ["display_name"], utcnow())
    assert (after.display_name, after.bio) == ("New", "keep")


def test_profile_change_without_a_mask_applies_the_fields_given():
    after = domain.apply_profile_changes(account(bio="keep"), {"display_name": "New", "bio": ""}, [], utcnow())
    assert (after.display_name, after.bio) == ("New", "keep")


@pytest.mark.parametrize("paths, changes", [(["email"], {}), ([], {})])
def test_profile_change_rejects_unknown_paths_and_empty_updates(paths, changes):
    with pytest.raises(InvalidArgument):
        domain.apply_profile_changes(account(), changes, paths, utcnow())
