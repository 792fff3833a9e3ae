"""What the Cassandra driver may repeat by itself when a node is lost or slow, and what it must
leave to the code that knows what a statement means.

A request whose coordinator dies, or whose coordinator times out waiting for replicas, may or
may not have been applied. The driver's stock policy sends every statement again to the next
node after a lost connection, conditional ones included; but a compare-and-set sent again after
its own lost success reports "not applied", and if the value it compares came back in between,
it applies twice. So here:

- Reads, and writes that put the same cells however often they run, are idempotent: a plain
  INSERT, UPDATE or DELETE with bound values (the driver sends a repeat with the same client
  timestamp), with no IF condition, no counter or list increment and no now()/uuid(). Each store
  declares which of its statements those are (`runtime.cassandra.read`, `write`, `conditional`,
  which set the driver's `is_idempotent`); the driver repeats them on another node after a lost
  connection, a timeout or an "unavailable".
- A conditional statement (IF ...) or a batch is never repeated by the driver once its outcome is
  unknown: the error reaches the store, which settles it (`runtime.cassandra.Unknown`): it reads
  at SERIAL and decides again, re-runs a claim (its row tells who wrote it), or reports the outage.
- A request the coordinator refused before doing anything (overloaded, still bootstrapping, not
  enough replicas alive) may go to another node, whatever it is.

Native protocol v5 (Cassandra 4.0 and later) reports a compare-and-set whose outcome is unknown
with an error code of its own, CAS_WRITE_UNKNOWN, where v4 sent a write timeout of write type
CAS. The driver does not know that code yet, so `CasWriteUnknownMessage` teaches it: the error
is read as the write timeout it means, and everything above applies to it unchanged.
"""

from __future__ import annotations

from cassandra import OperationTimedOut, ReadTimeout, Unavailable, WriteTimeout
from cassandra.cluster import NoHostAvailable
from cassandra.connection import ConnectionException
from cassandra.policies import ExponentialReconnectionPolicy, RetryPolicy, WriteType
from cassandra.protocol import (
    IsBootstrappingErrorMessage,
    OverloadedErrorMessage,
    WriteTimeoutErrorMessage,
    read_consistency_level,
    read_int,
)

# Errors after which a write may or may not have taken effect (a lost reply or a lost coordinator),
# or did not take effect at all (nothing done, or the read of a compare-and-set timed out).
OUTCOME_UNKNOWN = (WriteTimeout, OperationTimedOut, ConnectionException, ReadTimeout, Unavailable, NoHostAvailable)

_PLAIN_WRITES = frozenset({WriteType.SIMPLE, WriteType.BATCH, WriteType.UNLOGGED_BATCH, WriteType.BATCH_LOG})
# A read that timed out waited for a replica that just died or is slow: other coordinators may do better.
_READ_ATTEMPTS = 3


class CasWriteUnknownMessage(WriteTimeoutErrorMessage):
    """CAS_WRITE_UNKNOWN (0x1700, native protocol v5): a compare-and-set that a contending one may
    or may not complete. Registered with the driver by being defined (its error classes register
    themselves by code); the driver then treats it as the write timeout of a CAS that it is."""

    summary = "Compare-and-set outcome unknown"
    error_code = 0x1700

    @staticmethod
    def recv_error_info(f, protocol_version):
        # <cl><received><blockfor> (native_protocol_v5.spec, section 9); the write type is implied.
        return {"consistency": read_consistency_level(f), "received_responses": read_int(f),
                "required_responses": read_int(f), "write_type": WriteType.CAS}


class NodeLossRetryPolicy(RetryPolicy):
    """Repeats on another node what is idempotent, or what the coordinator refused outright."""

    def on_read_timeout(self, query, consistency, required_responses, received_responses, data_retrieved, retry_num):
        return (self.RETRY_NEXT_HOST, None) if retry_num < _READ_ATTEMPTS - 1 else (self.RETHROW, None)

    def on_write_timeout(self, query, consistency, write_type, required_responses, received_responses, retry_num):
        if retry_num == 0 and _idempotent(query) and write_type in _PLAIN_WRITES:
            return self.RETRY_NEXT_HOST, None
        return self.RETHROW, None  # CAS, counters, or not repeatable: the outcome is the caller's to settle

    def on_unavailable(self, query, consistency, required_replicas, alive_replicas, retry_num):
        # Nothing was done; another coordinator may already see a node come back (or not yet see one go).
        return (self.RETRY_NEXT_HOST, None) if retry_num == 0 else (self.RETHROW, None)

    def on_request_error(self, query, consistency, error, retry_num):
        refused = isinstance(error, (OverloadedErrorMessage, IsBootstrappingErrorMessage))
        if refused or _idempotent(query):
            return self.RETRY_NEXT_HOST, None
        return self.RETHROW, None  # a lost connection: the statement may have been applied


def _idempotent(query) -> bool:
    return bool(getattr(query, "is_idempotent", False))


def reconnection_policy() -> ExponentialReconnectionPolicy:
    """Tries a node that went away again after 0.5 s, backing off to every 10 s (the driver's
    default grows to 10 minutes, so a node back after a restart could stay unused that long)."""
    return ExponentialReconnectionPolicy(base_delay=0.5, max_delay=10.0)
