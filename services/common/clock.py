"""The time domains work with."""

from datetime import UTC, datetime


def utcnow() -> datetime:
    """Now, in UTC, to the millisecond: the precision every store keeps (Cassandra's timestamp)."""
    now = datetime.now(UTC)
    return now.replace(microsecond=now.microsecond // 1000 * 1000)
