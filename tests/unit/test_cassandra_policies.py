"""What the Cassandra driver may repeat by itself when a node is lost: idempotent statements
anywhere, conditional ones never once their outcome is unknown (the stores settle those)."""

import io
import struct

import pytest
from cassandra import ConsistencyLevel, WriteTimeout
from cassandra.connection import ConnectionShutdown
from cassandra.policies import RetryPolicy, WriteType
from cassandra.protocol import ErrorMessage, OverloadedErrorMessage, WriteTimeoutErrorMessage
from cassandra.query import BatchStatement, SimpleStatement

from runtime.cassandra_policies import OUTCOME_UNKNOWN, NodeLossRetryPolicy, is_idempotent
from services.accounts.store.cassandra import CassandraAccountStore
from services.catalog.store.cassandra import CassandraCatalogStore
from services.orders.store.cassandra import CassandraOrderStore

STORES = (CassandraAccountStore, CassandraCatalogStore, CassandraOrderStore)
POLICY = NodeLossRetryPolicy()
PLAIN = SimpleStatement("UPDATE stock SET holds[?] = ? WHERE product_id = ?", is_idempotent=True)
CONDITIONAL = SimpleStatement("UPDATE stock SET quantity = ? WHERE product_id = ? IF quantity = ?")


@pytest.mark.parametrize("store", STORES, ids=lambda store: store.__name__)
def test_every_conditional_statement_of_a_store_is_left_to_the_store_and_every_other_one_is_repeatable(store):
    for name, cql in store.STATEMENTS.items():
        assert is_idempotent(cql) == (" IF " not in f" {cql} ".upper()), name


@pytest.mark.parametrize("cql", [
    "UPDATE hits SET count = count + 1 WHERE page = ?",
    "UPDATE carts SET items = items + ? WHERE id = ?",
    "UPDATE carts SET items = ? + items WHERE id = ?",
    "INSERT INTO events (id, at) VALUES (now(), ?)",
    "INSERT INTO users (id) VALUES (?) IF NOT EXISTS",
    "DELETE FROM claims WHERE key = ? IF owner = ?",
])
def test_increments_server_made_values_and_conditions_are_not_repeatable(cql):
    assert not is_idempotent(cql)


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
