"""The JWKS cache every verifier uses (issue 8, item 11): a rotated-in key verifies at once, a key
withdrawn from the JWKS stops verifying after the next refresh, and made-up kids cannot flood the
JWKS RPC. Time is a clock the test moves; the keys are real ES256 keys."""

import threading
import time

import pytest

from harness.concurrency import race
from runtime.tokens import JwksCache, TokenError, TokenVerifier, VerifierSettings
from tests.support.bad_tokens import AUDIENCE, ISSUER, good_claims, jwks_of, new_issuer_key, sign

OLD, NEW = new_issuer_key(), new_issuer_key()


class Clock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self):
        return self.now


class Jwks:
    """The published key set, counting how often it is fetched."""

    def __init__(self, *keys):
        self.keys = list(keys)
        self.fetches = 0
        self.failing = False

    def __call__(self):
        self.fetches += 1
        if self.failing:
            raise ConnectionError("key server down")
        return jwks_of(*self.keys)


def _verifier(jwks, clock, refresh=30.0):
    return TokenVerifier(VerifierSettings(issuer=ISSUER, audience=AUDIENCE), JwksCache(jwks, refresh, clock=clock))


def _verifies(verifier, key) -> bool:
    try:
        return bool(verifier.verify(sign(key, good_claims())))
    except TokenError:
        return False


def test_a_key_rotated_in_verifies_on_its_first_token():
    jwks, clock = Jwks(OLD), Clock()
    verifier = _verifier(jwks, clock)
    assert _verifies(verifier, OLD)
    jwks.keys.append(NEW)
    clock.now += 0.1  # well inside the refresh period
    assert _verifies(verifier, NEW)
    assert jwks.fetches == 2


def test_a_key_withdrawn_from_the_jwks_stops_verifying_after_the_next_refresh():
    jwks, clock = Jwks(NEW, OLD), Clock()
    verifier = _verifier(jwks, clock)
    assert _verifies(verifier, OLD)
    jwks.keys.remove(OLD)
    clock.now += 29
    assert _verifies(verifier, OLD)  # until the refresh, the set in hand serves
    clock.now += 1
    assert not _verifies(verifier, OLD)
    assert _verifies(verifier, NEW)


def test_a_flood_of_made_up_kids_fetches_at_most_once_per_miss_interval():
    jwks, clock = Jwks(OLD), Clock()
    cache = JwksCache(jwks, 30.0, miss_interval=1.0, clock=clock)
    assert cache.key(OLD.kid) is not None
    for i in range(3000):
        clock.now += 0.001
        assert cache.key(f"made-up-{i}") is None
    assert jwks.fetches == 1 + 3  # the first fetch, then one per second of the three the flood lasted


def test_concurrent_misses_run_one_fetch_at_a_time():
    in_flight, most = [0], [0]
    lock = threading.Lock()

    def slow_jwks():
        with lock:
            in_flight[0] += 1
            most[0] = max(most[0], in_flight[0])
        time.sleep(0.05)
        with lock:
            in_flight[0] -= 1
        return jwks_of(OLD)

    cache = JwksCache(slow_jwks, 30.0, miss_interval=0.0)
    race(16, lambda i: [cache.key(f"made-up-{i}-{n}") for n in range(5)])
    assert most[0] == 1


def test_a_failing_key_server_leaves_the_last_set_in_use_for_a_while_then_nothing_verifies():
    jwks, clock = Jwks(OLD), Clock()
    verifier = _verifier(jwks, clock)
    assert _verifies(verifier, OLD)
    jwks.failing = True
    clock.now += 31
    assert _verifies(verifier, OLD)
    clock.now += 0.5
    assert _verifies(verifier, OLD)
    assert jwks.fetches == 2  # one failed refresh; no second try within the miss interval
    clock.now += 300
    with pytest.raises(ConnectionError):  # too old to trust: the failure is the caller's answer
        verifier.verify(sign(OLD, good_claims()))
    assert not _verifies(verifier, OLD)
    jwks.failing = False
    clock.now += 1
    assert _verifies(verifier, OLD)


# --- remembered tokens ------------------------------------------------------------------------

def test_a_verified_token_is_remembered_until_its_key_leaves_the_jwks():
    jwks, clock = Jwks(OLD), Clock()
    verifier = _verifier(jwks, clock)
    token = sign(OLD, good_claims())
    first = verifier.verify(token)
    assert verifier.verify(token) is first, "the second use is answered from memory"
    clock.now += 31  # the next refresh publishes the same key: still the same object, still remembered
    assert verifier.verify(token) is first
    jwks.keys = [NEW]  # the key is withdrawn
    clock.now += 31
    with pytest.raises(TokenError):
        verifier.verify(token)


def test_a_remembered_token_still_expires():
    jwks, wall = Jwks(OLD), Clock()
    wall.now = time.time()
    verifier = TokenVerifier(VerifierSettings(issuer=ISSUER, audience=AUDIENCE, leeway_seconds=0),
                             JwksCache(jwks, clock=Clock()), clock=wall)
    claims = good_claims()
    claims["exp"] = int(wall.now) + 1
    token = sign(OLD, claims)
    assert verifier.verify(token) is verifier.verify(token)  # remembered
    wall.now += 2
    with pytest.raises(TokenError, match="expired"):
        verifier.verify(token)


def test_only_the_very_same_token_is_remembered():
    jwks, clock = Jwks(OLD), Clock()
    verifier = _verifier(jwks, clock)
    token = sign(OLD, good_claims())
    verifier.verify(token)
    header, payload, signature = token.split(".")
    forged = f"{header}.{payload}.{signature[:-4]}AAAA"
    with pytest.raises(TokenError):
        verifier.verify(forged)


def test_remembered_tokens_are_bounded_least_recently_used_first():
    jwks, clock = Jwks(OLD), Clock()
    verifier = TokenVerifier(VerifierSettings(issuer=ISSUER, audience=AUDIENCE, cache_size=2), JwksCache(jwks, clock=clock))
    a, b, c = (sign(OLD, good_claims(subject=s)) for s in ("a-user", "b-user", "c-user"))
    first_a, first_b = verifier.verify(a), verifier.verify(b)
    verifier.verify(a)  # a is now the most recently used
    verifier.verify(c)  # b goes
    assert verifier.verify(a) is first_a  # remembered: the same claims, not verified again
    assert verifier.verify(b) is not first_b  # forgotten: verified again, new claims
