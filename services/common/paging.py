"""How every list operation pages: the same sizes, and the same answer to a bad page token."""

from services.common.errors import InvalidArgument

DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE = 20, 100


def page_size(requested: int) -> int:
    """The page size to use for a request's page_size: 0 means the default; out of range is InvalidArgument."""
    if not 0 <= requested <= MAX_PAGE_SIZE:
        raise InvalidArgument([("page_size", f"must be between 0 and {MAX_PAGE_SIZE}")])
    return requested or DEFAULT_PAGE_SIZE


def bad_page_token() -> InvalidArgument:
    """The error for a page token the service did not issue (raise it from the store's InvalidPageToken)."""
    return InvalidArgument([("page_token", "is not a token this service issued")])
