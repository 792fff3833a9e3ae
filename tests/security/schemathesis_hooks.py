"""What schemathesis (tests/security/test_openapi.py) is told beyond the OpenAPI document.

The password policy is more than its field's declared rules (length, five different characters):
not a common password, not containing the username or the email's name (services/accounts/domain.py;
the field's description in the document says so). JSON Schema cannot state those rules, so the
fuzzer's schema-valid bodies are filtered by the same policy function the service runs; every
other generated body is sent as it comes, and every check stays on for these operations too.
"""

import schemathesis

from services.accounts import domain

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
