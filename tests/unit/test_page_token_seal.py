"""Sealed page tokens: a position opens only with the seal and the query it was sealed for."""

import pytest

from runtime.page_tokens import PageTokenSeal
from runtime.paging import InvalidPageToken, encode_page_token

POSITION = encode_page_token("0f8fad5b-d9cb-469f-a165-70867728950e")


def test_a_sealed_position_opens_for_its_own_query():
    seal = PageTokenSeal(b"replica key")
    token = seal.seal(POSITION, b"ListOrders\0alice\0")
    assert len(token) == 43 and POSITION not in token
    assert PageTokenSeal(b"replica key").open(token, b"ListOrders\0alice\0") == POSITION  # another replica, same key


@pytest.mark.parametrize("how", ["other query", "other user", "other key", "bare position", "edited", "truncated",
                                 "not base64"])
def test_a_token_carried_elsewhere_edited_or_made_up_does_not_open(how):
    seal, binding = PageTokenSeal(b"replica key"), b"ListOrders\0alice\0"
    token = seal.seal(POSITION, binding)
    attempt = {
        "other query": lambda: seal.open(token, b"ListOrders\0alice\0\x1a\x04mugs"),
        "other user": lambda: seal.open(token, b"ListOrders\0bob\0"),
        "other key": lambda: PageTokenSeal(b"another key").open(token, binding),
        "bare position": lambda: seal.open(POSITION, binding),
        "edited": lambda: seal.open(("B" if token[0] == "A" else "A") + token[1:], binding),
        "truncated": lambda: seal.open(token[:-2], binding),
        "not base64": lambda: seal.open("%" * 43, binding),
    }[how]
    with pytest.raises(InvalidPageToken):
        attempt()
