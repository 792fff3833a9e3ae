"""A real Cassandra session that loses the replies of chosen statements, as when the coordinator
dies right after applying them (or right before): the store sees the error a lost node gives,
while the cluster holds whatever really happened.

    session = LostReplies(real_session)
    session.lose("IF used = false")               # the next such statement runs, its reply is lost
    session.lose("IF attempts = ?", applied=False)  # ... or it never reaches the cluster
    store = CassandraAccountStore(session, keyspace)

Everything else goes to the real session unchanged.
"""

from __future__ import annotations

import threading

from cassandra.connection import ConnectionShutdown


class LostReplies:
    def __init__(self, session):
        self._session = session
        self._lock = threading.Lock()
        self._pending: list[tuple[str, bool]] = []  # (CQL fragment, applied before the reply is lost)
        self.lost: list[str] = []  # the CQL of each statement whose reply was lost, in order

    def lose(self, fragment: str, *, applied: bool = True, times: int = 1) -> None:
        with self._lock:
            self._pending += [(fragment, applied)] * times

    def execute(self, query, parameters=None, **options):
        text = getattr(query, "query_string", None) or str(query)
        with self._lock:
            fault = next((f for f in self._pending if f[0] in text), None)
            if fault:
                self._pending.remove(fault)
        if fault is None:
            return self._session.execute(query, parameters, **options)
        if fault[1]:
            self._session.execute(query, parameters, **options)
        self.lost.append(text)
        raise ConnectionShutdown("connection to the coordinator closed (reply lost on purpose)")

    def __getattr__(self, name):
        return getattr(self._session, name)
