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
    ("password123", "commonly used"),
    ("my-ada-password", "must not contain the username"),
    ("ada-mail-secret", "must not contain the email"),
])
def test_weak_passwords_are_rejected_with_the_reason(password, expected):
    """Beyond the field's declared rules (tests/unit/test_field_rules.py): the policy's own lists."""
    problems = domain.password_problems(password, username="ada", email="ada-mail@example.com")
    assert any(expected in description for _, description in problems), problems


def test_a_long_passphrase_is_accepted():
    assert domain.password_problems("correct horse battery", username="ada", email="ada@example.com") == []


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


def test_the_fifth_attempt_locks_sign_in_and_each_later_one_doubles_the_lock_up_to_a_cap():
    now, throttle = utcnow(), domain.SignInThrottle("k")
    for expected in range(1, 5):
        throttle = domain.next_attempt(throttle, now)
        assert (throttle.attempts, throttle.locked_until) == (expected, None)
    throttle = domain.next_attempt(throttle, now)
    assert throttle.locked_until == now + timedelta(seconds=30)
    with pytest.raises(LockedOut) as locked:
        domain.next_attempt(throttle, now + timedelta(seconds=1))
    assert 28 < locked.value.retry_after <= 29
    later = now + timedelta(seconds=30)
    throttle = domain.next_attempt(throttle, later)
    assert throttle.locked_until == later + timedelta(seconds=60)
    for _ in range(20):
        later = throttle.locked_until
        throttle = domain.next_attempt(throttle, later)
    assert throttle.locked_until == later + timedelta(minutes=15)


def test_attempts_older_than_the_throttle_memory_are_forgotten():
    now = utcnow()
    throttle = domain.SignInThrottle("k", attempts=9, locked_until=now, last_attempt_at=now)
    fresh = domain.next_attempt(throttle, now + domain.THROTTLE_MEMORY)
    assert (fresh.attempts, fresh.locked_until) == (1, None)


def test_the_throttle_key_ignores_case_and_does_not_keep_the_name():
    assert domain.sign_in_key(" Ada ") == domain.sign_in_key("ADA")
    assert domain.sign_in_key("ada") != domain.sign_in_key("adb")
    assert "ada" not in domain.sign_in_key("ada") and len(domain.sign_in_key("ada")) == 64


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
