"""What schemathesis (tests/security/test_openapi.py) is told beyond the OpenAPI document.

The password policy is more than its field's declared rules (length, five different characters):
not a common password, not containing the username or the email's name (services/accounts/domain.py;
the field's description in the document says so). JSON Schema cannot state those rules, so the
fuzzer's schema-valid bodies are filtered by the same policy function the service runs; every
other generated body is sent as it comes, and every check stays on for these operations too.

A page token is more than its declared shape: it must be one the service sealed for the same query
and user (runtime/page_tokens.py), which no generator can produce. Generated queries holding a
well-shaped token are dropped; malformed ones are still sent, and must be refused.
"""

import re

import schemathesis

from services.accounts import domain

_WELL_SHAPED_PAGE_TOKEN = re.compile(r"[A-Za-z0-9_-]{42}[AEIMQUYcgkosw048]\Z")
_PASSWORDS = {"password": ("username", "email"), "newPassword": (None, None)}


@schemathesis.hook
def filter_body(context, body) -> bool:
    if not isinstance(body, dict):
        return True
    for field, (username_key, email_key) in _PASSWORDS.items():
        password = body.get(field)
        if isinstance(password, str):
            username = body.get(username_key) if username_key else ""
            email = body.get(email_key) if email_key else ""
            if domain.password_problems(password, username=username if isinstance(username, str) else "",
                                        email=email if isinstance(email, str) else ""):
                return False
    return True


@schemathesis.hook
def filter_query(context, query) -> bool:
    token = query.get("pageToken") if isinstance(query, dict) else None
    return not (isinstance(token, str) and _WELL_SHAPED_PAGE_TOKEN.match(token))
