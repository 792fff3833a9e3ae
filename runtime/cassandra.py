"""Cassandra sessions for any service: connection from settings, keyspace, idempotent schema.

    session = connect(settings)                  # retries until the cluster answers
    ensure_keyspace(session, settings)
    apply_schema(session, keyspace, ["CREATE TABLE IF NOT EXISTS ..."])
    add_missing_columns(session, keyspace, [table.cassandra])   # columns its spec gained (runtime/tables.py)

Every statement names its table with the keyspace (`qualified`): the session never selects one
(no `USE`), so Cassandra 4 and later have no prepared statement to warn about as ambiguous, and
any protocol version works alike. Stores write their CQL with bare table names; CassandraStore
qualifies it once, when it prepares it.

Reads and writes run at the configured consistency (LOCAL_QUORUM by default); lightweight
transactions use the configured serial consistency. Each statement a store runs gets a span
from its start to its result (observability/store.py), named and described once per prepared
statement.

A lightweight transaction whose reply is lost (a timeout, a coordinator that died) may or may
not have been applied. `lightweight()` runs it again in that case, and `applied(result,
column=value)` then counts a row that already names us as ours: that is how a claim (`INSERT ...
IF NOT EXISTS`) survives a lost node without turning its own earlier success into a conflict.
What the driver repeats by itself, and what it leaves to the stores, is decided in
`runtime.cassandra_policies`; every prepared statement of a store is marked idempotent or not
from its CQL.
"""

from __future__ import annotations

import contextlib
import enum
import logging
import random
import re
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC
from typing import TYPE_CHECKING, ClassVar, TypeVar

from cassandra import ConsistencyLevel, CoordinationFailure, OperationTimedOut, Timeout, Unavailable
from cassandra.cluster import EXEC_PROFILE_DEFAULT, Cluster, ExecutionProfile, NoHostAvailable, ResultSet, Session
from cassandra.connection import ConnectionException
from cassandra.policies import (
    ConstantSpeculativeExecutionPolicy,
    DCAwareRoundRobinPolicy,
    RoundRobinPolicy,
    TokenAwarePolicy,
)
from cassandra.query import BatchStatement, SimpleStatement

from observability import store as spans
from runtime.calls import served
from runtime.cassandra_policies import OUTCOME_UNKNOWN, NodeLossRetryPolicy, reconnection_policy
from runtime.settings import CassandraSettings
from runtime.stores import outages_become_unavailable

if TYPE_CHECKING:
    from runtime.tables import CassandraTable, Table

_LOGGER = logging.getLogger(__name__)
_REQUEST_TIMEOUT_S = 10.0
# A connection that received nothing for _HEARTBEAT_S is asked for a heartbeat, and dropped (its
# node marked down, then tried again by the reconnection policy) when none comes back within as
# long again: a node that stays up but cannot be reached is out of the query plans in seconds,
# not after the driver's default 30 + 30 s.
_HEARTBEAT_S = 2.0
_SPECULATE_AFTER_S = 1.0
ANSWER_MARGIN_S = 0.3  # kept back from a call's deadline for the service's answer (statement_timeout)
_DEFAULT_PORT = 9042
# How a store settles what it cannot know at once (see the module's docstring).
UNKNOWN_OUTCOMES = 3  # unknown outcomes (a timeout, a lost coordinator) settled before the error goes up
CONTENDED_ROUNDS = 100  # compare-and-set rounds lost to other writers before the caller is told to retry
_PING = SimpleStatement("SELECT release_version FROM system.local", is_idempotent=True)
# Where a statement names its table: after FROM, INTO, UPDATE or TABLE [IF NOT EXISTS]; group 1 a keyspace already there.
_TABLE_REFERENCE = re.compile(r"\b(?:FROM|INTO|UPDATE|TABLE(?:\s+IF\s+NOT\s+EXISTS)?)\s+(\w+\.)?", re.IGNORECASE)
# The cluster (or enough replicas) did not answer: retry later, nothing is the caller's fault.
OUTAGES: tuple[type[Exception], ...] = (NoHostAvailable, Unavailable, Timeout, CoordinationFailure, OperationTimedOut,
                                        ConnectionException)


def _contact_point(point: str) -> tuple[str, int]:
    """(host, port) of "host", "host:port" or "[ipv6]:port"."""
    if point.startswith("["):
        host, _, rest = point[1:].partition("]")
        port = rest.removeprefix(":")
    elif point.count(":") == 1:
        host, _, port = point.partition(":")
    else:  # a bare host name or a bare IPv6 address
        host, port = point, ""
    if not host or (port and not port.isdigit()):
        raise ValueError(f"CASSANDRA_CONTACT_POINTS: {point!r} is not host or host:port")
    return host, int(port or _DEFAULT_PORT)


def _contact_points(settings: CassandraSettings) -> tuple[list[str], int]:
    points = [_contact_point(point) for point in settings.contact_points]
    # The driver takes one port for the whole cluster.
    ports = {port for _, port in points}
    if len(ports) != 1:
        raise ValueError(f"CASSANDRA_CONTACT_POINTS must share one port, got {sorted(ports)}")
    return [host for host, _ in points], ports.pop()


def connect(settings: CassandraSettings, *, wait_seconds: float = 60.0) -> Session:
    """A session on the cluster (no keyspace selected), retrying while the cluster starts."""
    hosts, port = _contact_points(settings)
    balancing = DCAwareRoundRobinPolicy(local_dc=settings.local_dc) if settings.local_dc else RoundRobinPolicy()
    profile = ExecutionProfile(
        load_balancing_policy=TokenAwarePolicy(balancing),
        consistency_level=ConsistencyLevel.name_to_value[settings.consistency.upper()],
        serial_consistency_level=ConsistencyLevel.name_to_value[settings.serial_consistency.upper()],
        request_timeout=_REQUEST_TIMEOUT_S,
        retry_policy=NodeLossRetryPolicy(),
        # A read (or repeatable write) left unanswered this long is sent to the next replica as well:
        # a node cut off from the network answers nothing and refuses nothing, until it is found out.
        speculative_execution_policy=ConstantSpeculativeExecutionPolicy(_SPECULATE_AFTER_S, 2),
    )
    options = {"protocol_version": settings.protocol_version} if settings.protocol_version else {}
    deadline = time.monotonic() + wait_seconds
    while True:
        cluster = Cluster(hosts, port=port, execution_profiles={EXEC_PROFILE_DEFAULT: profile},
                          reconnection_policy=reconnection_policy(), connect_timeout=5,
                          idle_heartbeat_interval=_HEARTBEAT_S, idle_heartbeat_timeout=_HEARTBEAT_S, **options)
        try:
            return cluster.connect()
        except NoHostAvailable as error:
            cluster.shutdown()
            if time.monotonic() > deadline:
                raise
            _LOGGER.warning("Cassandra not reachable yet (%s); retrying", error)
            time.sleep(2)


def qualified(cql: str, keyspace: str) -> str:
    """The statement with its table named with the keyspace: `FROM products` -> `FROM shop.products`.
    Raises ValueError for a statement that names no table it can find (at start, not per call)."""
    found = _TABLE_REFERENCE.search(cql)
    if found is None:
        raise ValueError(f"no table to qualify with keyspace {keyspace} in {cql!r}")
    if found.group(1):
        return cql
    return f"{cql[:found.end()]}{keyspace}.{cql[found.end():]}"


def ensure_keyspace(session: Session, settings: CassandraSettings) -> None:
    """Creates the service's keyspace if missing. The session does not select it: statements name it."""
    if settings.local_dc:
        replication = f"{{'class': 'NetworkTopologyStrategy', '{settings.local_dc}': {settings.replication_factor}}}"
    else:
        replication = f"{{'class': 'SimpleStrategy', 'replication_factor': {settings.replication_factor}}}"
    session.execute(f"CREATE KEYSPACE IF NOT EXISTS {settings.keyspace} WITH replication = {replication}")


def _agree_on_schema(session: Session) -> None:
    if not session.cluster.control_connection.wait_for_schema_agreement():
        # Not fatal (a node may be down), but statements prepared next may fail on a lagging node.
        _LOGGER.warning("Cassandra nodes do not agree on the schema yet")


def apply_schema(session: Session, keyspace: str, statements: Sequence[str]) -> None:
    """Runs idempotent DDL (CREATE ... IF NOT EXISTS) in the keyspace and waits until every node agrees on it."""
    for statement in statements:
        session.execute(qualified(statement, keyspace), timeout=30)
    _agree_on_schema(session)


def add_missing_columns(session: Session, keyspace: str, tables: Sequence[CassandraTable]) -> None:
    """Adds each column a table spec has and its table in the keyspace lacks: the schema rule both
    stores honour (runtime/tables.py; rows written before read NULL there as the field's default).
    The cluster's schema metadata decides, not `ADD IF NOT EXISTS`, which older Cassandra versions lack."""
    added = False
    for table in tables:
        session.cluster.refresh_table_metadata(keyspace, table.name)
        present = session.cluster.metadata.keyspaces[keyspace].tables[table.name].columns
        for definition in table.columns_to_add(present):
            _LOGGER.info("adding to table %s the column %s", table.name, definition)
            session.execute(f"ALTER TABLE {keyspace}.{table.name} ADD {definition}", timeout=30)
            added = True
    if added:
        _agree_on_schema(session)


def execute(session: Session, statement, params=None, described: spans.Statement | None = None) -> ResultSet:
    """Runs one statement; with `described`, inside its span (observability/store.py), which lasts
    until the result or the error and then tells the coordinator, the rows returned (reads) and
    whether a lightweight transaction applied."""
    timeout = statement_timeout()
    if described is None or (span := spans.start(described)) is None:
        return _heeded(session.execute(statement, params, timeout=timeout))
    try:
        result = session.execute(statement, params, timeout=timeout)
    except BaseException as error:
        spans.failed(span, error)
        span.end()
        raise
    span.set_attributes(_outcome(described, result))
    span.end()
    return _heeded(result)


_WARNINGS_REPEAT_S = 60.0  # a warning like one already logged (its numbers aside) waits this long
_warned: dict[str, float] = {}  # a warning with its numbers taken out -> when one like it was last logged
_warned_lock = threading.Lock()
_NUMBERS = re.compile(r"\d+")


def _heeded(result: ResultSet) -> ResultSet:
    """Logs what Cassandra warned of with the result (a read through more tombstones than
    tombstone_warn_threshold, a batch over batch_size_warn_threshold, ...), which the driver keeps
    to itself: once a minute at most for warnings that differ only in their numbers (counts,
    sizes, tokens, key values)."""
    warnings = result.response_future.warnings
    if warnings:
        now = time.monotonic()
        for warning in warnings:
            kind = _NUMBERS.sub("#", warning)
            with _warned_lock:
                if now - _warned.get(kind, -_WARNINGS_REPEAT_S) < _WARNINGS_REPEAT_S:
                    continue
                if len(_warned) > 1000:
                    _warned.clear()
                _warned[kind] = now
            _LOGGER.warning("Cassandra warns: %s", warning)
    return result


class NoTimeLeft(OperationTimedOut):
    """A statement not sent: the call it was for has no time left. An outage to the caller like any
    timeout (StoreUnavailable), but nothing to settle or repeat: nothing was sent."""


def statement_timeout() -> float:
    """How long a statement may wait for its reply: the driver's request timeout, or less when the
    call being served (runtime.calls.served) ends sooner. ANSWER_MARGIN_S is kept back, so a
    statement lost with a node cut off is an outage the service answers (UNAVAILABLE, retry
    later) before its caller gives up on it, not a caller's timeout with the outcome unknown.
    OperationTimedOut, without sending anything, when no time is left."""
    call = served()
    if call is None:
        return _REQUEST_TIMEOUT_S
    left = call.deadline - time.monotonic() - ANSWER_MARGIN_S
    if left <= 0:
        raise NoTimeLeft("the call being served has no time left for a statement")
    return min(_REQUEST_TIMEOUT_S, left)


def _outcome(described: spans.Statement, result: ResultSet) -> dict:
    """What a result says for its span: read from the driver's objects, nothing sent or parsed."""
    outcome: dict = {}
    host = getattr(getattr(result, "response_future", None), "coordinator_host", None)
    if host is not None:
        outcome["server.address"], outcome["server.port"] = host.endpoint.address, host.endpoint.port
        if host.datacenter:
            outcome["cassandra.coordinator.dc"] = host.datacenter
    if described.conditional:
        with contextlib.suppress(RuntimeError):  # no [applied] column to read (another row factory)
            outcome["shop.lwt.applied"] = bool(result.was_applied)
    elif described.operation == "SELECT":
        outcome["db.response.returned_rows"] = len(result.current_rows)  # the first page: where the span ends
    return outcome


class Unknown(enum.Enum):
    """How a compare-and-set settles a write whose outcome is unknown (the module's docstring)."""

    REPEAT = "repeat the statement"
    DECIDE_AGAIN = "read again and decide again"
    RAISE = "report the outage"


def lightweight(session: Session, statement, params=(), *, described: spans.Statement | None = None) -> ResultSet:
    """Runs one lightweight transaction, settling an unknown outcome by Unknown.REPEAT; each attempt
    is a statement of its own, with its own span.

    Only for statements that are harmless to run twice and whose row tells who wrote it (a
    claim), or that fail safe when the repeat reports "not applied". Never for a compare-and-set
    on a counter-like value: a repeat after a lost success would look like a lost race.
    """
    for _ in range(UNKNOWN_OUTCOMES):
        try:
            return execute(session, statement, params, described)
        except NoTimeLeft:
            raise
        except OUTCOME_UNKNOWN as error:
            _LOGGER.warning("lightweight transaction outcome unknown (%s); running it again", error)
    return execute(session, statement, params, described)


State = TypeVar("State")
Change = TypeVar("Change")


def compare_and_set(read: Callable[[], State], decide: Callable[[State], Change | None],
                    write: Callable[[State, Change], ResultSet], *, unknown: Unknown,
                    contended: Callable[[], Exception]) -> tuple[State, Change | None]:
    """Reads, decides and writes conditionally (the write's IF holds what was read), round after
    round until a write applies or `decide` says there is nothing to write (None). Returns what
    was last read and the change applied (None when none was needed).

    A round lost to another writer reads again after a short random pause. A write whose outcome
    is unknown is settled by `unknown`: DECIDE_AGAIN reads again (up to UNKNOWN_OUTCOMES times),
    RAISE passes the error on at once. `contended()` is raised after CONTENDED_ROUNDS lost rounds.
    """
    if unknown is Unknown.REPEAT:
        raise ValueError("a compare-and-set decides again or raises; REPEAT is lightweight()'s")
    unknowns = 0
    for _ in range(CONTENDED_ROUNDS):
        current = read()
        change = decide(current)
        if change is None:
            return current, None
        try:
            result = write(current, change)
        except NoTimeLeft:
            raise
        except OUTCOME_UNKNOWN as error:
            unknowns += 1
            if unknown is Unknown.RAISE or unknowns > UNKNOWN_OUTCOMES:
                raise
            _LOGGER.warning("compare-and-set outcome unknown (%s); reading again", error)
            continue
        if applied(result):
            return current, change
        time.sleep(random.uniform(0, 0.01))
    raise contended()


def applied(result: ResultSet, **ours) -> bool:
    """Whether a lightweight transaction (IF ...) took effect.

    With `ours` (column=value), a transaction that was not applied still counts when the row it
    found holds those values: our own earlier attempt won, and only its reply was lost.
    """
    if result.was_applied:
        return True
    if not ours:
        return False
    existing = result.one()
    return existing is not None and all(getattr(existing, column, None) == value for column, value in ours.items())


def utc(value):
    """The driver returns naive UTC datetimes; services work with aware ones."""
    return None if value is None else value.replace(tzinfo=UTC)


@dataclass(frozen=True)
class Cql:
    """A statement as a store declares it: its text (bare table names) and what running it again does.

    `idempotent`: running it twice leaves what running it once does, so the driver may send it
    again to another node when its coordinator is lost. `serial`: a read that precedes a
    compare-and-set, run at the serial consistency so that it sees in-flight transactions too."""

    text: str
    idempotent: bool
    serial: bool = False


def read(text: str, *, serial: bool = False) -> Cql:
    """A SELECT."""
    return Cql(text, idempotent=True, serial=serial)


def write(text: str) -> Cql:
    """A plain INSERT, UPDATE or DELETE that puts the same cells however often it runs: bound values,
    no IF condition, no counter or list increment, no now() or uuid()."""
    return Cql(text, idempotent=True)


def conditional(text: str) -> Cql:
    """A lightweight transaction (IF ...), or any write a repeat could apply twice: the driver never
    repeats it; its store settles an unknown outcome (Unknown)."""
    return Cql(text, idempotent=False)


class CassandraStore:
    """Base of every Cassandra adapter: its schema applied at connect, its statements prepared once
    (qualified with the keyspace, and described for their spans).

    Subclasses set TABLES (runtime.tables.Table specs: created, and given the columns they gained
    since the keyspace was made), SCHEMA (the rest of the idempotent DDL, applied after them) and
    STATEMENTS (name -> Cql, each made by `read`, `write` or `conditional`). Table names are written
    bare: the keyspace is added here.
    The public methods of an adapter raise StoreUnavailable for the driver's OUTAGES.
    """

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        outages_become_unavailable(cls, OUTAGES)

    TABLES: ClassVar[tuple[Table, ...]] = ()
    SCHEMA: ClassVar[list[str]] = []
    STATEMENTS: ClassVar[dict[str, Cql]] = {}

    def __init__(self, session: Session, keyspace: str):
        self._session = session
        self._keyspace = keyspace
        profile = session.get_execution_profile(EXEC_PROFILE_DEFAULT)
        # SERIAL or LOCAL_SERIAL, as configured: for lightweight transactions (batches name it themselves)
        # and for the reads that precede them.
        self._serial = profile.serial_consistency_level or ConsistencyLevel.SERIAL
        self._consistency = profile.consistency_level
        self._texts = {name: qualified(cql.text, keyspace) for name, cql in self.STATEMENTS.items()}
        self._q = {name: session.prepare(text) for name, text in self._texts.items()}
        for name, cql in self.STATEMENTS.items():
            self._q[name].is_idempotent = cql.idempotent
            if cql.serial:
                self._q[name].consistency_level = self._serial
        self._described = {name: self._describe(self._texts[name], self._q[name].consistency_level)
                           for name in self._texts}

    def _describe(self, text: str, consistency: int | None) -> spans.Statement:
        level = ConsistencyLevel.value_to_name[consistency or self._consistency]
        return spans.describe(spans.CASSANDRA, self._keyspace, text, **{"cassandra.consistency.level": level})

    @classmethod
    def connect(cls, settings: CassandraSettings, **options):
        """A store on a new session, its schema applied; `options` go to the adapter's constructor."""
        session = connect(settings)
        ensure_keyspace(session, settings)
        tables = [table.cassandra for table in cls.TABLES]
        apply_schema(session, settings.keyspace, [table.ddl for table in tables])
        add_missing_columns(session, settings.keyspace, tables)
        apply_schema(session, settings.keyspace, cls.SCHEMA)
        return cls(session, settings.keyspace, **options)

    def _run(self, name: str, *params):
        return execute(self._session, self._q[name], params, self._described[name])

    def _lwt(self, name: str, *params):
        """A lightweight transaction, repeated when its outcome is unknown (Unknown.REPEAT)."""
        return lightweight(self._session, self._q[name], params, described=self._described[name])

    def _batch(self, *statements: tuple[str, tuple]):
        """The named statements, each with its parameters, as one logged batch (conditional when one
        of them is: every condition then runs at the serial consistency)."""
        batch = BatchStatement(serial_consistency_level=self._serial)
        for name, params in statements:
            batch.add(self._q[name], params)
        texts = tuple(self._texts[name] for name, _ in statements)
        level = ConsistencyLevel.value_to_name[self._consistency]
        described = spans.describe_batch(spans.CASSANDRA, self._keyspace, texts, **{"cassandra.consistency.level": level})
        return execute(self._session, batch, None, described)

    def ping(self) -> None:
        self._session.execute(_PING, timeout=5)

    def close(self) -> None:
        self._session.cluster.shutdown()


outages_become_unavailable(CassandraStore, OUTAGES)
