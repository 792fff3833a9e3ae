"""Sign-in throttling over real HTTP (issue 8, items 9, 10 and 12): parallel guesses are all counted,
an unknown username is answered exactly like a real one, and a deactivated account's live token
can no longer act."""

import re

import requests

from harness.concurrency import race
from harness.servers import PASSWORD
from harness.shop import make_product, order, stock_of

WRONG = "wrong password!!"


def _sign_in(stack, username, password=WRONG):
    return requests.post(f"{stack.url}/oauth2/token", timeout=30,
                         data={"grant_type": "password", "username": username, "password": password})


def test_eight_clients_guessing_three_times_at_once_get_five_checked_guesses_then_a_lock(stack):
    stack.register("parallel")
    outcomes = race(8, lambda _: [_sign_in(stack, "parallel").status_code for _ in range(3)])
    statuses = sorted(s for client in outcomes for s in client)
    assert statuses == [400] * 5 + [429] * 19, statuses
    assert _sign_in(stack, "parallel", PASSWORD).status_code == 429


def _answers(stack, username, attempts=7):
    """Each reply as the client sees it, with the seconds of the retry delay masked."""
    seen = []
    for _ in range(attempts):
        reply = _sign_in(stack, username)
        body = reply.json()
        seen.append((reply.status_code, body["error"], re.sub(r"\d+", "N", body["error_description"]),
                     "Retry-After" in reply.headers, reply.headers["Content-Type"]))
    return seen


def test_an_unknown_username_gets_the_same_answers_as_a_real_one(stack):
    stack.register("existing")
    real, unknown = _answers(stack, "existing"), _answers(stack, "nosuchuser")
    assert [status for status, *_ in real] == [400] * 5 + [429] * 2
    assert unknown == real


def test_a_deactivated_account_cannot_act_with_a_live_token(stack):
    product = make_product(stack, stock=3)
    account = stack.register("leaving")
    token = stack.token("leaving")["access_token"]
    auth = {"Authorization": f"Bearer {token}"}
    url = f"{stack.url}/v1/accounts/{account['id']}"
    assert requests.post(f"{url}:deactivate", json={}, headers=auth, timeout=10).status_code == 200
    patched = requests.patch(url, json={"bio": "still here"}, headers=auth, timeout=10)
    changed = requests.post(f"{url}:changePassword", headers=auth, timeout=10,
                            json={"currentPassword": PASSWORD, "newPassword": "another long passphrase"})
    for reply in (patched, changed):
        assert reply.status_code == 403 and reply.json()["reason"] == "ACCOUNT_DEACTIVATED", reply.text
    # orders refuses the token itself (its standing check, runtime/standing.py) before anything is placed.
    placed = order(stack, token, product)
    assert placed.status_code == 403 and placed.json()["reason"] == "ACCOUNT_DEACTIVATED", placed.text
    assert stock_of(stack, product) == 3
