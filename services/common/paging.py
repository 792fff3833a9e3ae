"""How every list operation pages: the same default size, and the same answer to a bad page token.
The bounds of page_size and the shape of page_token are declared on the request fields in the
protos and checked before a method runs (runtime/validation.py)."""

from services.common.errors import InvalidArgument

DEFAULT_PAGE_SIZE = 20


def page_size(requested: int) -> int:
    """The page size to use for a request's page_size: 0 means the default."""
    return requested or DEFAULT_PAGE_SIZE


def bad_page_token() -> InvalidArgument:
    """The error for a page token the service did not issue (raise it from the store's InvalidPageToken)."""
    return InvalidArgument([("page_token", "is not a token this service issued")])
