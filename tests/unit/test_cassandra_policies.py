"""What the Cassandra driver may repeat by itself when a node is lost: idempotent statements
anywhere, conditional ones never once their outcome is unknown (the stores settle those)."""

import io
import re
import struct

import pytest
from cassandra import ConsistencyLevel, WriteTimeout
from cassandra.connection import ConnectionShutdown
from cassandra.policies import RetryPolicy, WriteType
from cassandra.protocol import ErrorMessage, OverloadedErrorMessage, WriteTimeoutErrorMessage
from cassandra.query import BatchStatement, SimpleStatement

from runtime import cassandra as cql
from runtime.cassandra_policies import OUTCOME_UNKNOWN, NodeLossRetryPolicy
from services.accounts.store.cassandra import CassandraAccountStore
from services.catalog.store.cassandra import CassandraCatalogStore
from services.orders.store.cassandra import CassandraOrderStore

STORES = (CassandraAccountStore, CassandraCatalogStore, CassandraOrderStore)
POLICY = NodeLossRetryPolicy()
PLAIN = SimpleStatement("UPDATE stock SET holds[?] = ? WHERE product_id = ?", is_idempotent=True)
CONDITIONAL = SimpleStatement("UPDATE stock SET quantity = ? WHERE product_id = ? IF quantity = ?")


# A review aid, not what decides: a condition, a counter or list increment, a value the server makes up.
_NOT_REPEATABLE = re.compile(r"\bIF\b|(\w+)\s*=\s*(\1\s*[-+]|\?\s*\+\s*\1\b)|\b(now|uuid)\s*\(", re.IGNORECASE)


@pytest.mark.parametrize("store", STORES, ids=lambda store: store.__name__)
def test_every_statement_of_a_store_is_declared_with_what_a_repeat_of_it_does(store):
    """A store declares each statement (read, write, conditional); a write declared repeatable that
    holds a condition or an increment would be sent twice by the driver after a lost reply."""
    for name, statement in store.STATEMENTS.items():
        assert isinstance(statement, cql.Cql), name
        assert statement.idempotent == (not _NOT_REPEATABLE.search(statement.text)), name
        assert not statement.serial or statement.text.lstrip().upper().startswith("SELECT"), name


@pytest.mark.parametrize("text", [
    "UPDATE hits SET count = count + 1 WHERE page = ?",
    "UPDATE carts SET items = items + ? WHERE id = ?",
    "UPDATE carts SET items = ? + items WHERE id = ?",
    "INSERT INTO events (id, at) VALUES (now(), ?)",
    "INSERT INTO users (id) VALUES (?) IF NOT EXISTS",
    "DELETE FROM claims WHERE key = ? IF owner = ?",
])
def test_the_review_aid_knows_increments_server_made_values_and_conditions(text):
    assert _NOT_REPEATABLE.search(text)


def test_a_lost_connection_repeats_an_idempotent_statement_elsewhere_but_not_a_conditional_one():
    lost = ConnectionShutdown("node stopped")
    assert POLICY.on_request_error(PLAIN, None, lost, 0) == (RetryPolicy.RETRY_NEXT_HOST, None)
    assert POLICY.on_request_error(CONDITIONAL, None, lost, 0) == (RetryPolicy.RETHROW, None)
    assert POLICY.on_request_error(BatchStatement(), None, lost, 0) == (RetryPolicy.RETHROW, None)


def test_a_request_the_coordinator_refused_goes_elsewhere_whatever_it_is():
    overloaded = OverloadedErrorMessage(0, "overloaded", None)
    assert POLICY.on_request_error(CONDITIONAL, None, overloaded, 0) == (RetryPolicy.RETRY_NEXT_HOST, None)


def test_a_write_timeout_repeats_a_plain_idempotent_write_once_and_never_a_compare_and_set():
    assert POLICY.on_write_timeout(PLAIN, None, WriteType.SIMPLE, 2, 1, 0) == (RetryPolicy.RETRY_NEXT_HOST, None)
    assert POLICY.on_write_timeout(PLAIN, None, WriteType.SIMPLE, 2, 1, 1) == (RetryPolicy.RETHROW, None)
    assert POLICY.on_write_timeout(PLAIN, None, WriteType.CAS, 2, 0, 0) == (RetryPolicy.RETHROW, None)
    assert POLICY.on_write_timeout(CONDITIONAL, None, WriteType.SIMPLE, 2, 1, 0) == (RetryPolicy.RETHROW, None)


def test_reads_and_unavailable_replies_try_other_coordinators_a_bounded_number_of_times():
    assert [POLICY.on_read_timeout(PLAIN, None, 2, 1, False, n)[0] for n in range(3)] == [
        RetryPolicy.RETRY_NEXT_HOST, RetryPolicy.RETRY_NEXT_HOST, RetryPolicy.RETHROW]
    assert [POLICY.on_unavailable(CONDITIONAL, None, 2, 1, n)[0] for n in range(2)] == [
        RetryPolicy.RETRY_NEXT_HOST, RetryPolicy.RETHROW]


def test_a_v5_cas_write_unknown_error_is_read_as_the_cas_write_timeout_the_stores_settle():
    # An ERROR frame body as Cassandra 5 sends it: code 0x1700, message, then <cl><received><blockfor>.
    message = b"CAS operation result is unknown - proposal accepted by 1 but not a quorum."
    body = (struct.pack(">i", 0x1700) + struct.pack(">H", len(message)) + message
            + struct.pack(">H", ConsistencyLevel.SERIAL) + struct.pack(">ii", 1, 2))
    error = ErrorMessage.recv_body(io.BytesIO(body), 5)
    assert isinstance(error, WriteTimeoutErrorMessage)  # so the driver asks the retry policy's on_write_timeout
    assert POLICY.on_write_timeout(CONDITIONAL, retry_num=0, **error.info) == (RetryPolicy.RETHROW, None)
    raised = error.to_exception()
    assert isinstance(raised, WriteTimeout) and raised.write_type == WriteType.CAS
    assert isinstance(raised, OUTCOME_UNKNOWN)
