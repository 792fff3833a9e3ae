"""The rules the protos declare on fields (`(validation.v1.rules)`, REQUIRED) as the services enforce
them (runtime/validation.py), and the same declarations as the OpenAPI document states them
(edge/openapi.py): for every rule-bearing request field, sample values are judged alike by both."""

import re
import uuid

import jsonschema
import pytest
from google.protobuf import descriptor_pool, field_mask_pb2, message_factory

from edge.openapi import Schemas, integer_range_pattern
from runtime.validation import python_pattern, rules_of, violations
from shop.accounts.v1 import accounts_pb2 as accounts
from shop.catalog.v1 import catalog_pb2 as catalog
from shop.orders.v1 import orders_pb2 as orders

A = str(uuid.uuid4())


def problems(message) -> dict[str, str]:
    """Field path -> what is wrong with it (several reasons joined by "; ")."""
    found: dict[str, str] = {}
    for path, problem in violations(message):
        found[path] = f"{found[path]}; {problem}" if path in found else problem
    return found


@pytest.mark.parametrize("password, expected", [
    ("short", "at least 10 characters"),
    ("aaaaaaaaaaaa", "5 different characters"),
    ("abababababab", "5 different characters"),
    ("x" * 129, "at most 128"),
])
def test_passwords_break_their_declared_rules_with_the_reason(password, expected):
    found = problems(accounts.CreateAccountRequest(username="ada", email="ada@example.com", password=password))
    assert expected in found["password"], found


@pytest.mark.parametrize("username", ["ab", "1abc", "has space", "a" * 33, "semi;colon", "ada\n"])
def test_invalid_usernames_are_named(username):
    assert "username" in problems(accounts.CreateAccountRequest(username=username, email="x@example.com",
                                                                password="correct horse battery"))


@pytest.mark.parametrize("email", ["plain", "a@b", "a b@example.com", "@example.com", "a@b.c\n", "a\x00b@example.com",
                                   "\x1b[2Ja@example.com", "moc.elpmaxe\u202e@example.com", "<script>@example.com",
                                   '"quoted"@example.com', ".a@example.com", "a.@example.com", "a..b@example.com",
                                   "a" * 65 + "@example.com", "a." * 64 + "a@example.com"])
def test_invalid_emails_are_named(email):
    assert "email" in problems(accounts.CreateAccountRequest(username="ada", email=email, password="correct horse battery"))


def test_a_valid_registration_has_no_violation():
    assert problems(accounts.CreateAccountRequest(username="ada", email="ada@example.com",
                                                  password="correct horse battery")) == {}


def test_an_update_checks_only_the_fields_its_mask_names_and_only_known_names():
    long_bio = accounts.Profile(bio="y" * 501, display_name="x" * 65, locale="english!")
    masked = accounts.UpdateAccountRequest(id=A, profile=long_bio, update_mask=field_mask_pb2.FieldMask(paths=["bio"]))
    assert problems(masked) == {"profile.bio": "must be at most 500 characters"}
    unmasked = accounts.UpdateAccountRequest(id=A, profile=long_bio)  # no mask: the fields given a value
    assert set(problems(unmasked)) == {"profile.bio", "profile.display_name", "profile.locale"}
    unknown = accounts.UpdateAccountRequest(id=A, profile=accounts.Profile(),
                                            update_mask=field_mask_pb2.FieldMask(paths=["email"]))
    assert "unknown field 'email'" in problems(unknown)["update_mask"]
    renamed = catalog.UpdateProductRequest(id=A, product=catalog.Product(), update_mask=field_mask_pb2.FieldMask(paths=["name"]))
    assert problems(renamed) == {"product.name": "is required"}


@pytest.mark.parametrize("items, field", [
    ([], "items"), ([("not-a-uuid", 1)], "items[0].product_id"), ([(A, 0)], "items[0].quantity"),
    ([(A, 1001)], "items[0].quantity"), ([(A, 1)] * 51, "items"),
])
def test_bad_order_lines_name_the_field(items, field):
    request = orders.CreateOrderRequest(items=[orders.OrderItem(product_id=p, quantity=q) for p, q in items])
    assert field in problems(request)


@pytest.mark.parametrize("key, valid", [("x" * 128, True), ("", True), ("x" * 129, False), ("has space", False),
                                        ("tab\there", False), ("ünicode", False)])
def test_idempotency_keys_are_short_visible_ascii(key, valid):
    request = orders.CreateOrderRequest(items=[orders.OrderItem(product_id=A, quantity=1)], idempotency_key=key)
    assert ("idempotency_key" not in problems(request)) == valid


@pytest.mark.parametrize("name, currency, price, field", [
    ("", "EUR", 1, "product.name"), ("   ", "EUR", 1, "product.name"), ("Mug", "eur", 1, "product.price.currency_code"),
    ("Mug", "EUR", -1, "product.price.amount_minor"), ("Mug", "EUR", 10**12, "product.price.amount_minor"),
])
def test_product_rules_name_the_field(name, currency, price, field):
    request = catalog.CreateProductRequest(product=catalog.Product(
        name=name, price=catalog.Money(currency_code=currency, amount_minor=price)))
    assert field in problems(request)


def test_a_page_token_is_empty_or_of_the_issued_shape():
    from runtime.page_tokens import PageTokenSeal
    from runtime.paging import encode_page_token

    sealed = PageTokenSeal(b"key").seal(encode_page_token(A), b"query")
    assert problems(catalog.ListProductsRequest(page_token=sealed)) == {}
    assert "page_token" in problems(catalog.ListProductsRequest(page_token=encode_page_token(A)))  # bare position
    assert problems(catalog.ListProductsRequest()) == {}
    assert "page_token" in problems(catalog.ListProductsRequest(page_token="not a token"))
    assert "page_size" in problems(catalog.ListProductsRequest(page_size=101))


def test_an_integer_range_pattern_matches_exactly_the_range_written_canonically():
    for low, high in [(0, 999_999_999_999), (1, 1000), (-1_000_000_000, 1_000_000_000), (13, 4567), (-5, -3)]:
        pattern = re.compile(integer_range_pattern(low, high))
        for n in [*range(-1100, 5000, 7), low, high, low - 1, high + 1, 10**9, 10**12]:
            assert bool(pattern.match(str(n))) == (low <= n <= high), (low, high, n)
        assert not pattern.match("007") and not pattern.match("-0") and not pattern.match("+5")


# --- the server's check and the document's schema agree ----------------------------------------

_SAMPLES = {
    str: ["", " ", "a", "Ab3", "ada", "ada@example.com", "a@b", "EUR", "eur", "en-GB", "english!", "x" * 10,
          "aaaaaaaaaaaa", "abcde12345", "x" * 101, "y" * 129, "z" * 501, "shop-web", "orders.read", "nope.scope",
          "https://shop.example/cb", "http://127.0.0.1:8080/cb", "http://evil.example/", "https://a.b/#x",
          "AAAAAAAAAAAAAAAAAAAAAA", "AAAAAAAAAAAAAAAAAAAAAB", "A" * 43, "A" * 42 + "B", A, A.upper(), A.replace("-", ""), "tab\there",
          "\u001c\u00daM@example.com", "ünicode", "ada\n", " \u00a0 ", "Tea", "nul\x00", "\x1b[31mred",
          "a\u202eb", "\u2066x", "<b>x</b>@example.com", "a..b@example.com", "o'neil+tag@example.com",
          "two\nlines", "\ttabbed"],
    int: [0, 1, -1, 50, 100, 101, 1000, 1001, 10**9, 10**9 + 1, -10**9, -10**9 - 1, 10**12 - 1, 10**12],
}


def _ecma_pattern(validator, pattern, instance, schema):
    """JSON Schema's `pattern` is ECMA-262, whose `$` never matches before a final newline (the
    jsonschema library searches with Python's `re`, whose `$` does)."""
    if isinstance(instance, str) and not re.search(python_pattern(pattern), instance):
        yield jsonschema.ValidationError(f"{instance!r} does not match {pattern!r}")


_EcmaValidator = jsonschema.validators.extend(jsonschema.Draft202012Validator, {"pattern": _ecma_pattern})


def _rule_fields():
    pool = descriptor_pool.Default()
    for file_name in ("shop/accounts/v1/accounts.proto", "shop/catalog/v1/catalog.proto", "shop/orders/v1/orders.proto"):
        for message in pool.FindFileByName(file_name).message_types_by_name.values():
            for field in message.fields:
                if rules_of(field) is not None and field.message_type is None:
                    yield pytest.param(field, id=field.full_name)


@pytest.mark.parametrize("field", list(_rule_fields()))
def test_the_document_and_the_server_judge_every_sample_alike(field):
    schema = Schemas().field(field)
    element_schema = schema.get("items", schema)
    validator = _EcmaValidator(element_schema, format_checker=None)
    samples = _SAMPLES[str] if field.type == field.TYPE_STRING else _SAMPLES[int]
    if field.type == field.TYPE_INT32:
        samples = [n for n in samples if abs(n) < 2**31]
    request_class = message_factory.GetMessageClass(field.containing_type)
    for value in samples:
        request = request_class()
        if field.is_repeated:
            getattr(request, field.name).append(value)
        else:
            setattr(request, field.name, value)
        paths = {path for path, _ in violations(request)}
        by_server = not any(path == field.name or path.startswith(f"{field.name}[") for path in paths)
        as_string = isinstance(value, int) and "string" in element_schema.get("type", [])  # int64: digits too
        by_document = validator.is_valid(value) and (not as_string or validator.is_valid(str(value)))
        assert by_server == by_document, (field.full_name, value, by_server, by_document)


@pytest.mark.parametrize("field", list(_rule_fields()))
def test_a_declared_example_follows_its_own_rules(field):
    """What the documentation shows as an example is a value the server accepts."""
    example = rules_of(field).example
    if not example:
        return
    request = message_factory.GetMessageClass(field.containing_type)()
    value = example if field.type == field.TYPE_STRING else int(example)
    if field.is_repeated:
        getattr(request, field.name).append(value)
    else:
        setattr(request, field.name, value)
    assert not [path for path, _ in violations(request) if path.split("[")[0] == field.name], (field.full_name, example)
    schema = Schemas().field(field)
    assert _EcmaValidator(schema.get("items", schema)).is_valid(value)


def test_the_grantable_scopes_and_the_updatable_fields_are_the_ones_the_protos_declare():
    """What a client may be registered with is every scope the services declare (listed by the
    edge's document; the shape is the field's pattern), and the fields an update may name are the
    domain's."""
    from runtime.validation import updatable_fields
    from services.accounts import domain as accounts_domain
    from services.catalog import domain as catalog_domain
    from services.registry import scope_grants

    field = accounts.CreateClientRequest.DESCRIPTOR.fields_by_name["scopes"]
    declared = set(scope_grants({}).scopes)
    assert rules_of(field).declared_scope
    pattern = re.compile(python_pattern(rules_of(field).pattern))
    assert all(pattern.search(scope) for scope in declared)
    assert not any(pattern.search(scope) for scope in ("orders", "Orders.read", "orders.", ".read", "a b.c", ""))
    assert Schemas(declared).field(field)["items"]["enum"] == sorted(declared)
    assert updatable_fields(accounts.Profile.DESCRIPTOR) == accounts_domain.PROFILE_FIELDS
    assert updatable_fields(catalog.Product.DESCRIPTOR) == catalog_domain.PRODUCT_FIELDS
